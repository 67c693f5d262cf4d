"""The run file as other software reads it: named dimensions, CF attributes, provenance,
the docs/output.md xarray example, and the previous layout."""
import os
import re
import subprocess

import h5py
import numpy as np
import pytest

from tlsmpi.results import Run

from conftest import ROOT, run_tlsmpi

SMALL = ["--set", "model.N=6", "--set", "ensemble.realizations=3", "--set", "time.n_times=7",
         "--set", "observables.entropy=true"]


@pytest.fixture(scope="module")
def default_h5(tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "default.h5"
    res = run_tlsmpi(["--out", out, *SMALL])
    assert res.returncode == 0, res.stderr
    return out


def groups(path):
    with h5py.File(path, "r") as f:
        names = [None]
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Group) else None)
    return names


def test_xarray_sees_named_dimensions_only(default_h5):
    xr = pytest.importorskip("xarray", reason="xarray (Debian python3-xarray) is not installed")
    pytest.importorskip("h5netcdf", reason="h5netcdf (Debian python3-h5netcdf) is not installed")
    seen = set()
    for group in groups(default_h5):
        ds = xr.open_dataset(default_h5, engine="h5netcdf", group=group)
        assert not [d for d in ds.dims if d.startswith("phony_dim")], (group, dict(ds.dims))
        seen |= set(ds.dims)
    assert {"time", "realization", "site", "site_other", "xyz"} <= seen


def test_docs_xarray_example_runs(default_h5, monkeypatch):
    """The xarray example of docs/output.md, as written there, on a real run file."""
    pytest.importorskip("xarray", reason="xarray (Debian python3-xarray) is not installed")
    pytest.importorskip("h5netcdf", reason="h5netcdf (Debian python3-h5netcdf) is not installed")
    text = open(f"{ROOT}/docs/output.md").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(b for b in blocks if "xarray" in b)
    monkeypatch.chdir(default_h5.parent)
    scope = {}
    exec(compile(example, "docs/output.md", "exec"), scope)
    run = Run(default_h5)
    m, _ = run.cases[1].mean_sem("concurrence")
    assert float(scope["c_end"]) == pytest.approx(m[-1], rel=8 * np.finfo(float).eps)
    assert scope["disorder"].J.dims == ("realization", "site", "site_other")


def test_cf_attributes_and_provenance(default_h5):
    with h5py.File(default_h5, "r") as f:
        assert f.attrs["Conventions"] == "CF-1.8"
        assert f["time"].attrs["units"] == "1" and "hbar/W" in f["time"].attrs["long_name"]
        status = f["case_000/status"]
        assert list(status.attrs["flag_values"]) == [0, 1, -1]
        assert status.attrs["flag_meanings"] == "pending done failed"
        c = f["case_000/concurrence"]
        assert (
            np.isnan(c.attrs["_FillValue"]) and c.attrs["ancillary_variables"] == "status checksum"
        )
        assert c.dims[0].label == "" and c.dims[0][0].name == "/realization"
        for key in ("tlsmpi_version", "command_line", "config", "created", "mpi_version",
                    "hdf5_version", "python_version", "n_ranks"):
            assert f.attrs[key] != "", key
        assert "--out" in f.attrs["command_line"]
        assert f["end_time"][()].decode().startswith(f.attrs["created"][:4])
        commit = f.attrs["git_commit"]
    if os.path.exists(os.path.join(ROOT, ".git")):   # the tests run the checkout's code
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert commit in (head, head + "-dirty"), (commit, head)


def test_previous_layout_is_read(tmp_path):
    """A layout-1 file (tlsmpi 0.1: /times, no checksums) made by hand as 0.1 wrote it."""
    path = tmp_path / "old.h5"
    rows = np.array([[0.1, 0.2], [np.nan, np.nan], [0.3, 0.4]])
    with h5py.File(path, "w") as f:
        f.attrs.update(layout_version=1, engine="exact", config="[model]\n", seed=1)
        f["times"] = [1.0, 2.0]
        f["complete"] = np.int8(1)
        g = f.create_group("case_000")
        g.attrs.update(N=4, label="N=4")
        g["status"] = np.array([1, -1, 1], dtype="i1")
        g["error"] = np.array([b"", b"boom", b""], dtype="S240")
        g["wall_seconds"] = [1.0, 1.0, 1.0]
        g["concurrence"] = rows
    run = Run(path)
    assert run.layout == 1 and run.complete and list(run.times) == [1.0, 2.0]
    case = run.cases[0]
    assert case.n_done == 2 and case.errors == {1: "boom"}
    assert np.array_equal(case.values("concurrence"), rows[[0, 2]])


def test_extra_engine_rows_are_stored_and_verified(tmp_path):
    """An engine's extra per-realization rows (Engine.outputs): the ed engine's jackknife
    error of C over trajectory blocks is a checksummed dataset with CF attributes, 0
    where the dynamics is exact (epsilon = 0), positive where trajectories were run."""
    out = tmp_path / "ed.h5"
    res = run_tlsmpi(["--out", out, "--set", 'engine.name="ed"', "--set", "model.N=4",
                      "--set", "model.flipflop=1.0", "--set", "engine.trajectories=40",
                      "--set", "ensemble.realizations=2", "--set", "time.n_times=6",
                      "--set", "time.t_max=100.0"])
    assert res.returncode == 0, res.stderr
    run = Run(out)
    closed, open_ = run.cases
    assert np.array_equal(closed.values("concurrence_err"), np.zeros((2, 6)))
    assert np.all(open_.values("concurrence_err")[:, 1:].max(1) > 0)
    with h5py.File(out, "r") as f:
        assert "concurrence_err" in f["case_001/checksum"].attrs["datasets"].split()
        assert "jackknife" in f["case_001/concurrence_err"].attrs["long_name"]
    with h5py.File(out, "r+") as f:
        f["case_001/concurrence_err"][0, 2] = 0.5
    assert Run(out, verify=False).problems[0][:3] == ("case_001", 0, "concurrence_err")
