"""tlsmpi.post on a small run file made here: figures, summary, exit status 2 on bad files."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tlsmpi import post

pytestmark = pytest.mark.needs_mpi   # runs python -m tlsmpi.run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = """
[time]
t_min = 1e-3
t_max = 1e8
n_times = 45
[ensemble]
realizations = 12
[observables]
entropy = true
[sweep]
N = [4, 6]
epsilon = [0.0, 1e-4]
eta = [1e4, 1e5]
"""


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    subprocess.run([sys.executable] + args, check=True, env=env, cwd=cwd, capture_output=True,
                   timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("post")
    (d / "tiny.toml").write_text(CONFIG)
    _run(["-m", "tlsmpi.run", "tiny.toml", "--out", "tiny.h5"], d)
    _run(["-m", "tlsmpi.randomstates", "--sizes", "2", "3", "4", "--states", "400",
          "--out", "rs.h5"], d)
    return d


def test_all_figures_and_summary(files, capsys):
    out = files / "figs"
    assert post.main(["all", str(files / "tiny.h5"), str(files / "rs.h5"), "--outdir", str(out),
                      "--boot", "20"]) == 0
    text = capsys.readouterr().out
    for name in ("fig2", "fig4", "fig6a", "fig6b", "fig7", "fig8", "fig10", "fig11", "fig12"):
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000, name
    assert "fig5: skipped" in text
    assert "alpha (C(inf)" in text and "eta collapse" in text and "random states" in text
    assert "S_E(inf) = s N + c" in text


def test_summary_is_default(files, capsys):
    assert post.main([str(files / "tiny.h5"), "--boot", "5"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "beta" in out


def test_one_figure_written_to_outdir(files, tmp_path):
    assert (
        post.main(["fig6b", str(files / "tiny.h5"), "--outdir", str(tmp_path), "--boot", "5"]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig6b.pdf", "fig6b.png", "fig6b.txt"]


def _error(capsys, argv):
    assert post.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tlsmpi-post: error: ") and err.count("\n") == 1, err
    return err


def test_bad_files_exit_2_with_one_line(files, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    assert "corrupt.h5" in _error(capsys, [str(corrupt)])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    assert "not a tlsmpi" in _error(capsys, ["all", str(foreign)])
    assert "no such file" in _error(capsys, [str(tmp_path / "missing.h5")])
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((files / "tiny.h5").read_bytes()[:4096])
    _error(capsys, [str(truncated)])


def test_requested_figure_without_data_exits_2(files, capsys):
    assert "Dbar" in _error(capsys, ["fig5", str(files / "tiny.h5"), "--boot", "5"])


def test_requested_figure_without_data_is_one_line_and_no_table(files, capsys):
    assert post.main(["fig6a,fig5", str(files / "tiny.h5"), "--boot", "5"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("tlsmpi-post: error: fig5 cannot be made from ") and "Dbar" in err
    assert err.count("\n") == 1 and out == ""


@pytest.mark.parametrize("what", ["fig13", "fig2,fig13", "sumary"])
def test_unknown_figure_lists_the_valid_names(files, capsys, what):
    err = _error(capsys, [what, str(files / "tiny.h5")])
    assert "unknown WHAT" in err and what.split(",")[-1] in err
    for name in ("summary", "all", "fig2", "fig6", "fig12"):
        assert name in err
    assert "no such file" not in err


@pytest.mark.parametrize("module", ["tlsmpi.run", "tlsmpi.post"])
def test_help_points_to_the_configuration_keys(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "docs/configuration.md" in text and "tlsmpi config" in text
    assert os.path.exists(os.path.join(ROOT, "docs", "configuration.md"))
