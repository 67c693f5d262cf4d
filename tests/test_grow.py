"""Growing a run: --resume with a larger ensemble.realizations equals a run made with
that many realizations from the start (rows to rounding, `runfiles.agree`; serial, mpirun
-n 2 and -n 3), and a fault during the growth leaves the file as it was or resumable
(docs/reliability.md)."""
import hashlib
import os
import random
import signal
import time

import h5py
import numpy as np
import pytest

from tlsmpi.results import Run

from conftest import run_tlsmpi
from runfiles import case_datasets, disagreeing
from test_reliability import faulty, kill_job, start

pytestmark = pytest.mark.needs_mpi   # runs python -m tlsmpi.run

SMALL = ["--set", "model.N=5", "--set", "time.n_times=5", "--set", "sweep.epsilon=[0.0, 1.0]"]


def R(n):
    return ["--set", f"ensemble.realizations={n}"]


def case_data(path):
    """`runfiles.case_datasets` with the realization count and the complete flag."""
    out = case_datasets(path)
    with h5py.File(path, "r") as f:
        out["n_realizations"] = f.attrs["n_realizations"]
        out["complete"] = f["complete"][()]
    return out


def assert_same_rows(a, b):
    """The two runs hold the same realizations and results (`runfiles.disagreeing`: to
    rounding, computed in other processes)."""
    da, db = case_data(a), case_data(b)
    assert da.keys() == db.keys()
    assert not disagreeing(da, db)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """12 realizations from the start."""
    out = tmp_path_factory.mktemp("full") / "full.h5"
    res = run_tlsmpi(["--out", out, *SMALL, *R(12)], ranks=2)
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_grown_run_equals_run_made_whole(tmp_path, full, ranks):
    out = tmp_path / "grown.h5"
    res = run_tlsmpi(["--out", out, *SMALL, *R(6)], ranks=max(1, ranks - 1))
    assert res.returncode == 0, res.stderr
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(9)], ranks=ranks)
    assert res.returncode == 0, res.stderr
    assert "grew" in res.stdout and "6 to 9 realizations" in res.stdout
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(12)], ranks=ranks)
    assert res.returncode == 0, res.stderr
    assert_same_rows(out, full)
    run = Run(out)
    assert run.complete and all(c.n_done == 12 for c in run.cases)
    with h5py.File(out, "r") as f:
        grown = f.attrs["grown"].splitlines()
        assert len(grown) == 2 and "6 -> 9" in grown[0] and "9 -> 12" in grown[1]
        assert f["realization"][...].tolist() == list(range(12))
        assert "realizations=12" in f.attrs["config"].replace(" ", "")


@pytest.mark.mpi
def test_stopped_run_grows(tmp_path, full):
    out = tmp_path / "stopped.h5"
    res = faulty("stop", ["--out", out, *SMALL, *R(6)], where="*:1")
    assert res.returncode == 3, res.stdout + res.stderr
    assert any(c.n_pending for c in Run(out).cases)
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(12)], ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same_rows(out, full)


@pytest.fixture()
def six(tmp_path):
    out = tmp_path / "six.h5"
    res = run_tlsmpi(["--out", out, *SMALL, *R(6)], ranks=1)
    assert res.returncode == 0, res.stderr
    return out


def assert_refused(res, out, before, status, words):
    lines = res.stderr.split("-" * 20)[0].strip().splitlines()   # before mpirun's own report
    assert res.returncode == status, res.stdout + res.stderr
    assert len(lines) == 1 and lines[0].startswith("tlsmpi: error:"), res.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert sha(out) == before
    assert not [p for p in os.listdir(os.path.dirname(out)) if ".creating" in p]
    assert not os.path.exists(str(out) + ".lock")


def test_fewer_realizations_refused(six):
    before = sha(six)
    res = run_tlsmpi(["--out", six, "--resume", *SMALL, *R(5)], ranks=1)
    assert_refused(res, six, before, 2, ["holds 6 realizations", "ensemble.realizations >= 6"])


def test_growth_with_another_key_changed_refused(six):
    before = sha(six)
    res = run_tlsmpi(["--out", six, "--resume", *SMALL, *R(8), "--set", "model.eta=2.0"],
                     ranks=1)
    assert_refused(res, six, before, 2, ["model.eta", "only ensemble.realizations may grow"])


def test_growth_of_unknown_layout_refused(six):
    with h5py.File(six, "r+") as f:          # a per-realization dataset this tlsmpi lacks
        extra = f["case_000"].create_dataset("extra", data=np.zeros(6))
        extra.dims[0].attach_scale(f["realization"])
    before = sha(six)
    res = run_tlsmpi(["--out", six, "--resume", *SMALL, *R(8)], ranks=1)
    assert_refused(res, six, before, 2, ["cannot grow", "case_000/extra"])


@pytest.mark.mpi
def test_full_disk_during_growth_leaves_file_unchanged(six):
    before = sha(six)
    res = faulty("fsize", ["--out", six, "--resume", *SMALL, *R(400)], where="0:grow")
    assert_refused(res, six, before, 4, ["growing", "File too large", "unchanged"])
    res = run_tlsmpi(["--out", six, "--resume", *SMALL, *R(8)], ranks=2)
    assert res.returncode == 0, res.stderr


@pytest.mark.mpi
def test_stop_signal_during_growth_leaves_grown_resumable_file(tmp_path, full):
    out = tmp_path / "g.h5"
    res = run_tlsmpi(["--out", out, *SMALL, *R(6)], ranks=2)
    assert res.returncode == 0, res.stderr
    res = faulty("stop", ["--out", out, "--resume", *SMALL, *R(12)], where="0:grow")
    assert res.returncode == 3, res.stdout + res.stderr
    run = Run(out)
    assert not run.complete and all(len(c.status) == 12 and c.n_done == 6 for c in run.cases)
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(12)], ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same_rows(out, full)


BIG = ["--set", "model.N=36", "--set", "time.n_times=40", "--set", "sweep.epsilon=[0.0, 1.0]",
       "--set", "output.checkpoint_seconds=0.2"]


@pytest.mark.mpi
@pytest.mark.slow
def test_sigkill_during_growth_then_resume(tmp_path):
    whole = tmp_path / "whole.h5"
    res = run_tlsmpi(["--out", whole, *BIG, *R(16)], ranks=2)
    assert res.returncode == 0, res.stderr
    rng = random.Random(22)
    for trial in range(3):
        out = tmp_path / f"kill{trial}.h5"
        res = run_tlsmpi(["--out", out, *BIG, *R(8)], ranks=2)
        assert res.returncode == 0, res.stderr
        proc = start(["--out", out, "--resume", *BIG, *R(16)])
        time.sleep(rng.uniform(0.5, 3.0))
        kill_job(proc, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60       # the creating child finishes on its own
        while [p for p in os.listdir(tmp_path) if ".creating" in p] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in os.listdir(tmp_path) if ".creating" in p]
        run = Run(out)                         # the old file or the grown one, verified
        assert {len(c.status) for c in run.cases} in ({8}, {16})
        res = run_tlsmpi(["--out", out, "--resume", *BIG, *R(16)], ranks=2)
        assert res.returncode == 0, res.stdout + res.stderr
        assert_same_rows(out, whole)


@pytest.mark.mpi
def test_grown_run_of_parts_equals_run_made_whole(tmp_path):
    """Engine 3 with trajectories split into parts (combined on one rank): grown 3 -> 6
    on 3 ranks equals 6 from the start on 2 ranks."""
    ed = ["--set", "model.N=4", "--set", "time.n_times=4", "--set", "model.epsilon=1.0",
          "--set", "model.flipflop=1.0", "--set", "engine.name=ed",
          "--set", "engine.trajectories=8"]
    whole, grown = tmp_path / "whole.h5", tmp_path / "grown.h5"
    for out, n, ranks, extra in ((whole, 6, 2, []), (grown, 3, 2, []), (grown, 6, 3, ["--resume"])):
        res = run_tlsmpi(["--out", out, *ed, *R(n), *extra], ranks=ranks)
        assert res.returncode == 0, res.stderr
    assert_same_rows(grown, whole)


def test_file_from_before_a_key_existed_grows(tmp_path, full):
    """A file whose stored configuration lacks a key added later (at its default) resumes
    and grows: the missing key counts as its default; a missing key whose default the
    run does not use is named."""
    out = tmp_path / "old.h5"
    res = run_tlsmpi(["--out", out, *SMALL, *R(6)], ranks=1)
    assert res.returncode == 0, res.stderr
    with h5py.File(out, "r+") as f:
        text = f.attrs["config"]
        assert "\nresolved = false\n" in text
        f.attrs["config"] = text.replace("\nresolved = false\n", "\n")
    before = sha(out)
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(8), "--set",
                      "observables.resolved=true"], ranks=1)
    assert_refused(res, out, before, 2, ["observables.resolved: file (not set), given true"])
    res = run_tlsmpi(["--out", out, "--resume", *SMALL, *R(12)], ranks=1)
    assert res.returncode == 0, res.stderr
    assert_same_rows(out, full)
