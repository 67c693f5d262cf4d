"""The runner end to end: default job, rank-count independence, output layout, summary."""
import h5py
import numpy as np
import pytest

from tlsmpi.engines import exact
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.observables import Request
from tlsmpi.results import Run

from conftest import run_tlsmpi
from runfiles import agree, disagreeing

pytestmark = pytest.mark.needs_mpi   # runs python -m tlsmpi.run

SMALL = ["--set", "ensemble.realizations=7", "--set", "time.n_times=12",
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
    """Realization r is drawn from (seed, r) and computed by one rank alone, whichever rank
    the work queue gives it to: the disorder and status bit for bit, the rows to rounding
    (docs/design.md section 6; another BLAS or CPU may round differently, which is why
    this compares runs made here, never stored numbers)."""
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
        assert not disagreeing(data[1], data[ranks])


def test_file_contents_recompute(tmp_path):
    """Any realization can be recomputed from the file: seed, config and stored disorder."""
    out = tmp_path / "run.h5"
    res = run_tlsmpi(["--out", out, *SMALL])
    assert res.returncode == 0, res.stderr
    run = Run(out)
    case = run.cases[3]
    assert (
        case.params["N"] == 7 and case.params["epsilon"] == 0.5 and case.label == "epsilon=0.5 N=7"
    )
    real = sample(ModelParams(N=7, epsilon=0.5), run.attrs["seed"], 4)
    assert np.array_equal(case.disorder["J"][4], real.J)
    expected = exact.compute(real, run.times, Request())["concurrence"]
    assert agree(case.values("concurrence")[4], expected)
    m, s = case.mean_sem("concurrence")
    rows = case.values("concurrence")
    assert np.allclose(m, rows.mean(0)) and np.allclose(s, rows.std(0, ddof=1) / np.sqrt(7))
    with h5py.File(out, "r") as f:
        assert f["time"].attrs["long_name"] == "time in units of hbar/W"
        assert "[model]" in f.attrs["config"] and f.attrs["layout_version"] == 2
        assert "tlsmpi.run" in f.attrs["command_line"] and "--out" in f.attrs["command_line"]
        assert f["end_time"][()].decode() >= f.attrs["created"][:19]
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


@pytest.mark.mpi
def test_liouvillian_engine_through_the_runner(tmp_path):
    """Engine 2 in the runner: serial and 2 groups of 1 rank (engine.method = "auto": the
    spectral path at N = 4), 1 group of 2 ranks with MFN on the distributed matrix; solver
    options from the command line; agreement with Engine 1 on the same disorder."""
    base = ["--set", 'engine.name="liouvillian"', "--set", "model.N=4", "--set", "model.T_K=300.0",
            "--set", "ensemble.realizations=3", "--set", "time.t_max=10.0", "--set",
            "time.n_times=6", "--set", "sweep.epsilon=[0.0, 1.0]", "--set",
            "observables.entropy=true", "-mfn_tol", "1e-12"]
    runs = {}
    for name, ranks, extra in (("serial", 1, []), ("groups", 2, []),
                               ("shared", 2, ["--set", "engine.ranks_per_realization=2",
                                              "--set", 'engine.method="mfn"'])):
        out = tmp_path / f"{name}.h5"
        res = run_tlsmpi(["--out", out, *base, *extra], ranks=ranks)
        assert res.returncode == 0, res.stdout + res.stderr
        path = "MFN stepping" if name == "shared" else "spectral path"
        assert f"N = 4: {path}" in res.stdout, res.stdout
        runs[name] = Run(out)
    assert runs["serial"].attrs["petsc_version"].startswith("3.")
    from test_liouvillian import observable_error       # derived MFN bounds (needs PETSc)
    exact_run = tmp_path / "exact.h5"
    res = run_tlsmpi(["--out", exact_run, *base[:-2], "--set", 'engine.name="exact"'])
    assert res.returncode == 0, res.stderr
    times = runs["serial"].times
    for case_s, case_g, case_p, case_e in zip(
        *(runs[n].cases for n in ("serial", "groups", "shared")), Run(exact_run).cases
    ):
        params = ModelParams(N=4, T_K=300.0, epsilon=float(case_s.params["epsilon"]))
        # each run is within the bound of the truth, so two runs within twice the bound
        seed = int(runs["serial"].attrs["seed"])
        bounds = [observable_error(sample(params, seed, r), times, 2, tol=1e-12) for r in range(3)]
        tol = {"concurrence": 2 * max(b[0] for b in bounds),
               "entropy": 2 * max(b[1] for b in bounds)}
        for obs in ("concurrence", "entropy"):
            ref = case_s.values(obs)
            # one rank per realization
            assert agree(case_g.values(obs), ref)
            assert np.abs(case_p.values(obs) - ref).max() <= tol[obs]       # distributed matrix
            assert np.abs(case_e.values(obs) - ref).max() <= tol[obs]       # Engine 1


def test_solver_options_are_split_from_our_arguments():
    from tlsmpi.run.job import split_solver_options
    ours, solver = split_solver_options(
        ["-mfn_tol", "1e-12", "cfg.toml", "--out", "x.h5", "-log_view", "-mfn_ncv", "8",
         "--set", "model.eta=-1e3", "-h"])
    assert ours == ["cfg.toml", "--out", "x.h5", "--set", "model.eta=-1e3", "-h"]
    assert solver == ["-mfn_tol", "1e-12", "-log_view", "-mfn_ncv", "8"]
