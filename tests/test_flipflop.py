"""The footnote-67 post-processing (tlsmpi.post.flipflop) against the rows of its run files
read with plain h5py: the per-case peak, the paired differences and C at chosen times."""
import h5py
import numpy as np
import pytest

from conftest import run_tlsmpi
from tlsmpi.post import flipflop


@pytest.fixture(scope="module")
def ed_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("flipflop") / "ed0.h5"
    res = run_tlsmpi(
        ["--out", out, "--set", "model.N=4", "--set", "ensemble.realizations=6", "--set",
         "time.n_times=12", "--set", "time.t_max=1e4", "--set", "sweep.epsilon=[0.0]", "--set",
         'engine.name="ed"', "--set", "sweep.flipflop=[0.0, 1.0]", "--set",
         "observables.entropy=true"]
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def rows(path):
    """{flipflop: (R, T) concurrence} and the times, read without tlsmpi."""
    with h5py.File(path, "r") as f:
        return {
            float(f[k].attrs["flipflop"]): f[k]["concurrence"][...]
            for k in f
            if k.startswith("case_")
        }, f["time"][...]


def numbers(line):
    out = []
    for word in line.replace("±", " ").split():
        try:
            out.append(float(word))
        except ValueError:
            pass
    return out


def test_table_and_times_match_the_rows(ed_file, capsys, tmp_path):
    C, t = rows(ed_file)
    figure = tmp_path / "ff.png"
    assert flipflop.main([str(ed_file), "--at", "0.1", "100", "--figure", str(figure)]) == 0
    assert figure.stat().st_size > 0
    out = capsys.readouterr().out.splitlines()
    table = [
        line for line in out if line.split()[:3] in (["0", "4", "none"], ["0", "4", "exchange"])
    ]
    none, ff = table[0], table[1]                       # the case table comes first
    EPS = np.finfo(float).eps
    for line, c, skip in ((none, C[0.0], 2), (ff, C[1.0], 3)):    # (ff: "exchange 1")
        n, c_max, _, t_peak = numbers(line)[skip:skip + 4]
        mean = c.mean(0)
        k = int(np.argmax(mean))
        assert n == len(c)
        assert abs(c_max - mean.max()) <= 5e-5  # printed with 4 decimals
        assert t[max(k - 1, 0)] <= t_peak * (1 + 1e-3) and t_peak <= t[min(k + 1, len(t) - 1)] * (
            1 + 1e-3
        )
    d = C[1.0] - C[0.0]
    per_real = d.mean(1)
    m, e, dk, ek = numbers(ff)[-4:]
    assert m == pytest.approx(per_real.mean(), rel=1e-2, abs=100 * EPS)
    assert e == pytest.approx(per_real.std(ddof=1) / np.sqrt(len(d)), rel=0.1)
    k = np.argmax(np.abs(d.mean(0)))
    assert dk == pytest.approx(d.mean(0)[k], rel=1e-2)
    at = [line for line in out if line.split()[:3] == ["0", "4", "exchange"]][-2:]
    for line, want in zip(at, (0.1, 100.0)):
        k = int(np.argmin(np.abs(np.log(t / want))))
        v = numbers(line)                                # eps N K/J n t C err dC err
        assert v[4] == pytest.approx(t[k], rel=1e-2)
        assert v[5] == pytest.approx(C[1.0][:, k].mean(), rel=1e-3)
        assert v[7] == pytest.approx(d[:, k].mean(), rel=1e-2, abs=1e-14)


def test_paired_with_fewer_realizations(ed_file, tmp_path, capsys):
    """A flip-flop run with fewer realizations than its reference is paired on the
    realization indices both have (same seed: same disorder)."""
    small = tmp_path / "small.h5"
    res = run_tlsmpi(
        ["--out", small, "--set", "model.N=4", "--set", "ensemble.realizations=4", "--set",
         "time.n_times=12", "--set", "time.t_max=1e4", "--set", "sweep.epsilon=[0.0]", "--set",
         'engine.name="ed"', "--set", "sweep.flipflop=[1.0]"]
    )
    assert res.returncode == 0, res.stdout + res.stderr
    C, _ = rows(ed_file)
    assert flipflop.main([str(ed_file), str(small)]) == 0
    line = [
        x for x in capsys.readouterr().out.splitlines() if x.split()[:3] == ["0", "4", "exchange"]
    ][-1]
    d = C[1.0][:4] - C[0.0][:4]
    assert numbers(line)[-4] == pytest.approx(d.mean(1).mean(), rel=1e-2, abs=1e-14)


class _Case:
    """The part of a run file's case that `flipflop.case_row` reads."""
    observables, N = ("concurrence",), 4

    def __init__(self, C):
        self.C = C

    def values(self, name):
        return self.C


def test_beta_of_a_curve_that_is_no_power_law_has_no_error():
    """beta follows the chi^2 rule of every fit: a decay that bends (exp(-t)) fails and
    shows no error; a power law t^-2 onto a plateau with the same noise passes."""
    t = np.logspace(-2, 4, 90)
    rng = np.random.default_rng(0)
    for curve, fails in ((np.exp(-t) + 1e-4, True), (0.1 * t ** -2.0 + 1e-4, False)):
        peaked = np.where(t < 0.05, 10 * t, np.minimum(curve, 0.5))   # a peak, then decay
        C = peaked * (1 + 1e-2 * rng.standard_normal((200, len(t))))
        beta = flipflop.case_row(t, _Case(C))["beta"]
        assert beta.fails is fails, beta.info["chi2_dof"]
