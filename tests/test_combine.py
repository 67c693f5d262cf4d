"""post pools run files of one ensemble (docs/post.md): two 10-realization files
(realizations 0-9, and 10-19 made with ensemble.first_realization) give the same numbers
as the 20-realization file; overlapping realizations and files of the same cases with
another key are refused in one line naming them."""
import re

import numpy as np
import pytest

from tlsmpi import post
from tlsmpi.post import pooling
from tlsmpi.results import Run

from conftest import run_tlsmpi
from runfiles import agree

pytestmark = pytest.mark.needs_mpi   # runs python -m tlsmpi.run

SET = ["--set", "model.N=5", "--set", "time.n_times=30", "--set", "time.t_max=1e6",
       "--set", "sweep.epsilon=[0.0, 0.5]", "--set", "observables.entropy=true"]


def R(n, first=0):
    return ["--set", f"ensemble.realizations={n}"] + (
        ["--set", f"ensemble.first_realization={first}"] if first else [])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("combine")
    made = {"whole": (R(20), 1), "low": (R(10), 1), "high": (R(10, 10), 2)}
    for name, (extra, ranks) in made.items():
        res = run_tlsmpi(["--out", d / f"{name}.h5", *SET, *extra], ranks=ranks)
        assert res.returncode == 0, res.stderr
    return d


def test_second_file_holds_realizations_10_to_19(files):
    high, whole = Run(files / "high.h5"), Run(files / "whole.h5")
    for a, b in zip(high.cases, whole.cases):
        assert a.realizations.tolist() == list(range(10, 20))
        for name in ("concurrence", "entropy"):
            assert agree(a.rows(name), b.rows(name)[10:])
        assert a.disorder["J"].tobytes() == b.disorder["J"][10:].tobytes()


@pytest.mark.parametrize("order", [("low", "high"), ("high", "low")])
def test_two_files_pool_as_the_whole_file(files, order):
    """Rows to rounding (`runfiles.agree`), status and disorder bit for bit."""
    joined, = pooling.ensembles([Run(files / f"{n}.h5") for n in order])
    whole = Run(files / "whole.h5")
    assert joined.path == " + ".join(str(files / f"{n}.h5") for n in order)
    for a, b in zip(joined.cases, whole.cases):
        assert a.realizations.tolist() == list(range(20)) and a.n_done == 20
        assert a.status.tobytes() == b.status.tobytes()
        for name in ("concurrence", "entropy"):
            assert agree(a.rows(name), b.rows(name))
        for key in b.disorder:
            assert a.disorder[key].tobytes() == b.disorder[key].tobytes()


def numbers(text):
    """The report without file names."""
    return [re.sub(r"\S+\.h5( \+ \S+\.h5)*", "FILE", line).split()
            for line in text.splitlines()]


def test_post_report_of_two_files_equals_the_whole_file(files, capsys):
    assert post.main([str(files / "low.h5"), str(files / "high.h5"), "--boot", "40"]) == 0
    pooled = capsys.readouterr().out
    assert post.main([str(files / "whole.h5"), "--boot", "40"]) == 0
    whole = capsys.readouterr().out
    assert "low.h5 + " in pooled and "20/20" in pooled
    assert numbers(pooled) == numbers(whole)


def _refused(capsys, argv):
    assert post.main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("tlsmpi-post: error: ") and err.count("\n") == 1, err
    return err


def test_overlapping_realizations_refused(files, capsys):
    err = _refused(capsys, [str(files / "low.h5"), str(files / "whole.h5")])
    assert "both hold realizations 0-9" in err and "ensemble.first_realization" in err
    err = _refused(capsys, [str(files / "high.h5"), str(files / "high.h5")])
    assert "both hold realizations 10-19" in err


def test_same_cases_with_another_key_refused_naming_it(files, tmp_path, capsys):
    other = tmp_path / "seed.h5"
    res = run_tlsmpi(["--out", other, *SET, *R(10, 10), "--set", "ensemble.seed=7"])
    assert res.returncode == 0, res.stderr
    err = _refused(capsys, [str(files / "low.h5"), str(other)])
    assert "ensemble.seed: first 2021, second 7" in err and "not one ensemble" in err


def test_files_of_other_cases_stay_separate(files, tmp_path):
    other = tmp_path / "n4.h5"
    res = run_tlsmpi(["--out", other, *SET, *R(3), "--set", "model.N=4"])
    assert res.returncode == 0, res.stderr
    runs = pooling.ensembles([Run(files / "low.h5"), Run(other), Run(files / "high.h5")])
    assert [len(r.cases[0].status) for r in runs] == [20, 3]
    assert np.array_equal(runs[0].cases[0].realizations, np.arange(20))


def test_post_all_over_overlapping_files_says_which_case_and_why_a_figure_is_skipped(
        files, tmp_path, capsys):
    """A second file of another configuration holds the epsilon = 0 case with more
    realizations on other times: the report names the case given twice and the file
    used, and fig9 (no pair of equal times) is skipped with that reason."""
    other = tmp_path / "eps0.h5"
    res = run_tlsmpi(["--out", other, *SET, *R(12), "--set", "sweep.epsilon=[0.0]",
                      "--set", "time.n_times=20"])
    assert res.returncode == 0, res.stderr
    low = str(files / "low.h5")
    assert post.main(["all", low, str(other), "--outdir", str(tmp_path / "f"), "--boot",
                      "20"]) == 0
    out = capsys.readouterr().out
    assert (f"epsilon=0 is in {low} (10 done), {other} (12 done): the figures use {other}"
            in out)
    assert ("fig9: skipped (fig9 needs" in out and f"N=5 epsilon=0.5 ({low}): its epsilon = 0 "
            f"case ({other}) has other times" in out)
