"""The ``tlsmpi`` console command (tlsmpi/command.py): the same commands as the
``python -m`` forms, also under mpirun; one line and status 2 for a wrong command."""
import pytest

from tlsmpi.results import Run

from conftest import run_tlsmpi

SMALL = ["--set", "model.N=4", "--set", "ensemble.realizations=3", "--set", "time.n_times=5"]


@pytest.mark.mpi
def test_run_check_and_post_through_the_tlsmpi_command(tmp_path):
    out = tmp_path / "small.h5"
    res = run_tlsmpi(["run", *SMALL, "--out", out], ranks=2, module="tlsmpi.command")
    assert res.returncode == 0, res.stderr
    run = Run(out)
    assert run.complete and run.attrs["n_ranks"] == 2 and len(run.cases) == 2
    res = run_tlsmpi(["check", out], module="tlsmpi.command")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_tlsmpi(["post", "summary", out], module="tlsmpi.command")
    assert res.returncode == 0 and "epsilon=1" in res.stdout, res.stdout + res.stderr
    # the runner's own refusal, with its status
    res = run_tlsmpi(["run", *SMALL, "--out", out], module="tlsmpi.command")
    assert res.returncode == 2 and "exists" in res.stderr


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["config", "--nope"]])
def test_a_wrong_command_is_one_line_and_status_2(argv):
    res = run_tlsmpi(argv, module="tlsmpi.command")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr and "tlsmpi" in res.stderr


def test_help_lists_the_commands():
    res = run_tlsmpi(["--help"], module="tlsmpi.command")
    assert res.returncode == 0
    for word in ("run", "post", "check", "bench", "config"):
        assert f"tlsmpi {word}" in res.stdout


def test_the_installed_tlsmpi_script(tmp_path):
    """The console script of the pip install (setup.cfg entry point), next to this Python."""
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(sys.executable), "tlsmpi")
    if not os.path.exists(script):
        pytest.skip(f"no {script}: tlsmpi is not pip-installed here (pip install .)")
    res = subprocess.run([script, "config", "--set", "model.N=6"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0 and "\nN = 6 " in res.stdout, res.stderr
    res = subprocess.run([script, "frobnicate"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "run, post, check, bench, config" in res.stderr
