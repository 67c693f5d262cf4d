"""The runner end to end: default job, rank-count independence, output layout, summary."""
import h5py
import numpy as np
import pytest

from tlsmpi import exact
from tlsmpi.model import ModelParams, sample
from tlsmpi.observables import Request
from tlsmpi.results import Run

from conftest import run_tlsmpi

SMALL = ["--set", "model.N=7", "--set", "ensemble.realizations=7", "--set", "time.n_times=12",
         "--set", "sweep.epsilon=[0.0, 0.5]", "--set", "sweep.N=[5, 7]"]


def test_default_job_serial(tmp_path):
    out = tmp_path / "default.h5"
    res = run_tlsmpi(["--out", out])
    assert res.returncode == 0, res.stderr
    assert "epsilon=0" in res.stdout and "complete" in res.stdout
    run = Run(out)
    assert run.complete and len(run.cases) == 2
    assert all(c.n_done == c.status.size for c in run.cases)


@pytest.mark.mpi
def test_results_identical_for_1_2_3_ranks(tmp_path):
    """Realization r is drawn from (seed, r) and computed by one rank: bit-for-bit equal."""
    data = {}
    for ranks in (1, 2, 3):
        out = tmp_path / f"r{ranks}.h5"
        res = run_tlsmpi(["--out", out, *SMALL], ranks=ranks)
        assert res.returncode == 0, res.stdout + res.stderr
        with h5py.File(out, "r") as f:
            data[ranks] = {f"{c}/{k}": f[c][k][...] for c in f if c.startswith("case_")
                           for k in ("concurrence", "concurrence_mean", "status", "disorder/J")}
            assert f.attrs["n_ranks"] == ranks
    for ranks in (2, 3):
        for key, value in data[1].items():
            assert np.array_equal(value, data[ranks][key], equal_nan=True), key


def test_file_contents_recompute(tmp_path):
    """Any realization can be recomputed from the file: seed, config and stored disorder."""
    out = tmp_path / "run.h5"
    res = run_tlsmpi(["--out", out, *SMALL])
    assert res.returncode == 0, res.stderr
    run = Run(out)
    case = run.cases[3]
    assert case.params["N"] == 7 and case.params["epsilon"] == 0.5 and case.label == "epsilon=0.5 N=7"
    real = sample(ModelParams(N=7, epsilon=0.5), run.attrs["seed"], 4)
    assert np.array_equal(case.disorder["J"][4], real.J)
    expected = exact.compute(real, run.times, Request())["concurrence"]
    assert np.array_equal(case.values("concurrence")[4], expected)
    m, s = case.mean_sem("concurrence")
    rows = case.values("concurrence")
    assert np.allclose(m, rows.mean(0)) and np.allclose(s, rows.std(0, ddof=1) / np.sqrt(7))
    with h5py.File(out, "r") as f:
        assert f["times"].attrs["units"] == "hbar/W"
        assert "[model]" in f.attrs["config"] and f.attrs["layout_version"] == 1
        assert np.array_equal(f["case_003/concurrence_mean"][...], m)
        for key in ("tlsmpi_version", "mpi_version", "hdf5_version", "h5py_version"):
            assert f.attrs[key]


def test_every_shipped_configuration_is_valid():
    import glob
    import os
    from conftest import ROOT
    from tlsmpi import config
    paths = sorted(glob.glob(os.path.join(ROOT, "run", "*.toml")))
    assert len(paths) >= 20
    for path in paths:
        cfg = config.load(path)
        assert cfg.cases() and len(cfg.times) > 1, path
