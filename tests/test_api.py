"""The in-process API (tlsmpi.simulate, tlsmpi.open_run, Run.to_xarray): the same numbers
as the MPI runner, bit for bit, and one xarray Dataset per run selectable by the swept
parameters."""
import h5py
import numpy as np
import pytest

import tlsmpi
from tlsmpi.errors import ConfigError
from tlsmpi.results import Run

from conftest import run_tlsmpi
from runfiles import agree, case_datasets, disagreeing

xr = pytest.importorskip("xarray", reason="xarray (pip install 'tlsmpi[notebook]') is missing")
pytest.importorskip("h5netcdf", reason="h5netcdf (pip install 'tlsmpi[notebook]') is missing")

#: A sweep over N and epsilon with the entropy; ed with two blocks of trajectories (two
#: parts combined).
SWEEP = {"time.n_times": 9, "time.t_max": 1e3, "ensemble.realizations": 5,
         "sweep.N": [4, 5], "sweep.epsilon": [0.0, 1.0], "observables.entropy": True,
         "observables.coherence": True}
ENGINES = {"exact": {}, "ed": {"engine.trajectories": 40}}


@pytest.mark.mpi
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_simulate_equals_the_mpi_runner(tmp_path, engine):
    overrides = {**SWEEP, "engine.name": engine, **ENGINES[engine]}
    words = [w for k, v in overrides.items()
             for w in ("--set", f"{k}={v!r}".replace("'", '"').replace("True", "true"))]
    res = run_tlsmpi([*words, "--out", tmp_path / "mpi.h5"], ranks=2)
    assert res.returncode == 0, res.stderr
    ds = tlsmpi.simulate(overrides=overrides, out=tmp_path / "serial.h5", progress=False)
    a, b = case_datasets(tmp_path / "mpi.h5"), case_datasets(tmp_path / "serial.h5")
    assert sorted(a) == sorted(b) and len(a) > 30 and "case_003/entropy" in a
    assert not disagreeing(a, b)
    assert Run(tmp_path / "mpi.h5").attrs["n_ranks"] == 2
    mpi = tlsmpi.open_run(tmp_path / "mpi.h5")
    assert ds.concurrence.shape == (4, 5, 9) and int((ds.status == 1).sum()) == 20
    for name in ds.data_vars:
        if name != "wall_seconds":
            assert agree(ds[name].values, mpi[name].values), name
    if engine == "ed":
        assert "concurrence_err" in ds and float(ds.concurrence_err.sel(epsilon=1.0).max()) > 0


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "sweep.h5"
    tlsmpi.simulate({"time": {"n_times": 6},
                     "ensemble": {"realizations": 3}, "sweep": {"N": [4, 6], "eta": [1.0, 2.0]}},
                    out=out, progress=False)
    return out


def test_open_run_selects_by_swept_parameter(sweep_file):
    ds = tlsmpi.open_run(sweep_file)
    run = Run(sweep_file)
    assert list(ds.indexes["case"].names) == ["N", "eta"]
    assert list(ds.label.values) == [c.label for c in run.cases]
    for k, case in enumerate(run.cases):
        one = ds.sel(N=case.params["N"], eta=case.params["eta"])
        assert one.concurrence.dims == ("realization", "time")
        assert np.array_equal(one.concurrence.values, case.rows("concurrence"))
        assert np.array_equal(ds.sel(case=(case.params["N"], case.params["eta"])).nu.values[
            :, :case.N], case.disorder["nu"])
        m, s = case.mean_sem("concurrence")
        assert np.array_equal(ds.concurrence_mean.isel(case=k).values, m)
    assert ds.sel(N=6).concurrence.dims == ("eta", "realization", "time")
    kept = ds.concurrence.where(ds.eta == 2.0).isel(time=-1, realization=0).values
    assert np.isnan(kept[[0, 2]]).all() and np.isfinite(kept[[1, 3]]).all()
    # sites beyond a case's N are NaN, the N = 6 cases fill all six
    assert np.isnan(ds.nu.sel(N=4).values[..., 4:]).all()
    assert np.isfinite(ds.J.sel(N=6).values).all()
    assert ds.time.attrs["units"] == "1" and ds.attrs["engine"] == "exact"


def test_only_verified_rows_are_values(sweep_file, tmp_path):
    """A row whose bytes changed after writing is NaN (status pending) with verify off, and
    open_run refuses the file, naming it."""
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(sweep_file.read_bytes())
    with h5py.File(damaged, "r+") as f:
        f["case_001/concurrence"][1, 2] += 1e-9
    with pytest.raises(ValueError, match="case_001 realization 1 concurrence"):
        tlsmpi.open_run(damaged)
    ds = Run(damaged, verify=False).to_xarray(disorder=False)
    assert "nu" not in ds
    assert int(ds.status[1, 1]) == 0 and np.isnan(ds.concurrence[1, 1]).all()
    assert np.isfinite(ds.concurrence[1, 0]).all() and int(ds.status[1, 0]) == 1


def test_each_case_group_has_its_time_coordinate(sweep_file, tmp_path):
    ds = xr.open_dataset(sweep_file, group="case_002", engine="h5netcdf")
    times = Run(sweep_file).times
    assert np.array_equal(ds.time.values, times)
    assert ds.concurrence.sel(time=times[3]).dims == ("realization",)
    # a file without it (made before it was written) is read and checked as before
    old = tmp_path / "old.h5"
    old.write_bytes(sweep_file.read_bytes())
    with h5py.File(old, "r+") as f:
        for k in range(4):
            del f[f"case_{k:03d}/time"]
    assert np.array_equal(tlsmpi.open_run(old).concurrence.values,
                          tlsmpi.open_run(sweep_file).concurrence.values)
    res = run_tlsmpi(["check", old], module="tlsmpi.post")
    assert res.returncode == 0, res.stdout + res.stderr


def test_simulate_refuses_what_the_runner_refuses(tmp_path):
    with pytest.raises(ConfigError, match="model.N = 1"):
        tlsmpi.simulate({"model": {"N": 1}}, progress=False)
    with pytest.raises(ConfigError, match="override 'N'"):
        tlsmpi.simulate(overrides={"N": 4}, progress=False)
    out = tmp_path / "exists.h5"
    out.write_bytes(b"")
    with pytest.raises(ConfigError, match="exists"):
        tlsmpi.simulate(overrides={"model.N": 4}, out=out, progress=False)
    assert out.read_bytes() == b""


def test_resolved_rows_are_padded_per_pair_and_site():
    ds = tlsmpi.simulate(overrides={"sweep.N": [4, 5], "ensemble.realizations": 2,
                                    "time.n_times": 3, "observables.resolved": True},
                         progress=False)
    rows = ds.concurrence_resolved
    assert rows.dims == ("case", "realization", "time", "pair") and rows.sizes["pair"] == 10
    assert np.isnan(rows.sel(N=4).values[..., 6:]).all()
    assert np.isfinite(rows.sel(N=4).values[..., :6]).all()
    assert np.isfinite(rows.sel(N=5).values).all()


def test_simulate_on_the_liouvillian_engine_agrees_with_engine1():
    """tlsmpi.simulate with engine.name = "liouvillian" (MFN, in this process, no MPI) gives
    the concurrence of Engine 1 on the same realizations to within the bound the MFN
    tolerance sets (tests/tolerances.mfn at the engine's default -mfn_tol, times the 32 of a
    pair's C, tests/test_liouvillian.observable_error)."""
    pytest.importorskip("slepc4py", reason="needs_petsc: slepc4py is not installed")
    from tlsmpi import config
    from tlsmpi.engines.liouvillian import DEFAULT_TOL
    from tolerances import mfn
    overrides = {"model.N": 4, "model.epsilon": 1.0, "model.T_K": 300.0, "time.n_times": 6,
                 "time.t_max": 100.0, "ensemble.realizations": 3}
    exact = tlsmpi.simulate(overrides=overrides, progress=False)
    liou = tlsmpi.simulate(overrides={**overrides, "engine.name": "liouvillian",
                                      "engine.method": "mfn"}, progress=False)
    cfg = config.load(None, [f"{k}={v!r}" for k, v in overrides.items()])
    a = exact.concurrence.values.reshape(3, -1)
    b = liou.concurrence.values.reshape(3, -1)
    assert a.max() > 1e-3                            # entangled: the comparison means something
    for r in range(3):
        real = cfg.realization(cfg.cases()[0], r)
        tol = 32 * mfn(real, cfg.times, DEFAULT_TOL)
        assert np.abs(a[r] - b[r]).max() <= tol < 1e-3 * a.max(), (r, tol)
