"""Run files you can trust (issue 12): one writer, verified rows, no hangs, a clear
answer to every fault.  Each test reproduces one row of the fault catalogue in
docs/reliability.md."""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tlsmpi.engines import exact
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.observables import Request
from tlsmpi.runfile import lock
from tlsmpi.runfile.writer import crc
from tlsmpi.results import DamagedRun, Run

from conftest import ROOT, mpi_env, run_tlsmpi
from runfiles import agree

pytestmark = pytest.mark.needs_mpi   # every test runs python -m tlsmpi.run

TINY = ["--set", "model.N=5", "--set", "ensemble.realizations=4", "--set", "time.n_times=5"]
SLOW = ["--set", "model.N=40", "--set", "ensemble.realizations=40", "--set", "time.n_times=60",
        "--set", "output.checkpoint_seconds=0.1"]


def start(args, ranks=1, env=None):
    cmd = [sys.executable, "-m", "tlsmpi.run", *map(str, args)]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), *cmd]
    return subprocess.Popen(cmd, env=dict(mpi_env(), **(env or {})), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check(path):
    res = run_tlsmpi(["check", path], module="tlsmpi.post")
    return res.returncode, res.stdout.strip()


def one_line_error(res):
    """One line from tlsmpi on stderr, no traceback (mpirun may add its own banner)."""
    lines = [x for x in res.stderr.splitlines() if x.startswith("tlsmpi")]
    return len(lines) == 1 and "Traceback" not in res.stderr


def wait_for(predicate, seconds=60):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture()
def done_run(tmp_path):
    out = tmp_path / "run.h5"
    res = run_tlsmpi(["--out", out, *TINY])
    assert res.returncode == 0, res.stderr
    return out


def test_two_jobs_on_one_file_one_writer(tmp_path):
    """Two jobs with the same --out and different seeds started together: one writes,
    the other is refused (exit 2, naming the holder, or the existing file), and the file
    holds exactly the data of the seed it records."""
    out = tmp_path / "same.h5"
    jobs = [start(["--out", out, *SLOW, "--set", f"ensemble.seed={seed}"]) for seed in (101, 202)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in jobs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "being written by" in refused or "exists" in refused, refused
    run = Run(out)
    seed = run.attrs["seed"]
    real = sample(ModelParams(N=40), seed, 7)
    expected = exact.compute(real, run.times, Request())["concurrence"]
    assert agree(run.cases[0].values("concurrence")[7], expected)
    assert not [p for p in os.listdir(tmp_path) if p != "same.h5"]      # no lock, no temporaries


def test_resume_while_another_job_writes_is_refused_and_check_says_so(tmp_path):
    out = tmp_path / "busy.h5"
    job = start(["--out", out, *SLOW])
    try:
        wait_for(lambda: out.exists())
        res = run_tlsmpi(["--out", out, "--resume", *SLOW])
        assert res.returncode == 2 and one_line_error(res), res.stderr
        assert "is being written by" in res.stderr and f":{job.pid}" in res.stderr
        code, line = check(out)
        assert code == 3 and "being written by" in line and "done" in line, line
        assert "BEING WRITTEN" in run_tlsmpi([out], module="tlsmpi.post").stdout
    finally:
        job.send_signal(signal.SIGUSR1)
        job.wait(timeout=60)


@pytest.mark.parametrize("damage, named", [("nan", "non-finite value in a row marked done"),
                                           ("flip", "checksum mismatch"),
                                           ("status", "status 7 is not one of")])
def test_damaged_rows_are_named_and_repaired(done_run, damage, named):
    """A done row holding NaN, a row's bytes flipped (0.1 -> 1e307), a status outside the
    set: resume, post and check name the row and exit non-zero without a traceback;
    --resume --repair recomputes it and gives the original numbers back."""
    original = Run(done_run).cases[0].values("concurrence").copy()
    with h5py.File(done_run, "r+") as f:
        if damage == "nan":                 # written non-finite, with a matching checksum
            row = f["case_000/concurrence"][2]
            row[3] = np.nan
            f["case_000/concurrence"][2] = row
            names = f["case_000/checksum"].attrs["datasets"].split()
            f["case_000/checksum"][2, names.index("concurrence")] = crc(row)
        elif damage == "flip":
            f["case_000/concurrence"][2, 3] = 1e307
        else:
            f["case_000/status"][2] = 7
    where = "case_000 realization 2 " + ("status" if damage == "status" else "concurrence")
    res = run_tlsmpi(["--out", done_run, "--resume", *TINY])
    assert (
        res.returncode == 2 and one_line_error(res) and where in res.stderr and named in res.stderr
    )
    res = run_tlsmpi(["summary", done_run], module="tlsmpi.post")
    assert res.returncode == 1 and one_line_error(res) and where in res.stderr
    code, line = check(done_run)
    assert code == 1 and where in line and "--repair" in line
    with pytest.raises(DamagedRun, match=where):
        Run(done_run)
    res = run_tlsmpi(["--out", done_run, "--resume", "--repair", *TINY])
    assert res.returncode == 0, res.stderr
    assert check(done_run)[0] == 0
    assert np.array_equal(Run(done_run).cases[0].values("concurrence"), original)


def test_tampered_mean_is_damage(done_run):
    with h5py.File(done_run, "r+") as f:
        f["case_000/concurrence_mean"][1] += 1e-3
    code, line = check(done_run)
    assert code == 1 and "concurrence_mean differs" in line


def test_full_filesystem_refused_before_anything_is_written(tmp_path):
    """--out on a 200 KiB tmpfs: one line naming the need and the space, exit 2, nothing
    left (the space is checked against the file's size before creating it)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a 200 KiB tmpfs (CI and the dev machines run as root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt]).returncode:
        pytest.skip("mount -t tmpfs failed here (no CAP_SYS_ADMIN in this container)")
    try:
        res = run_tlsmpi(["--out", mnt / "x.h5"], ranks=2)
        assert res.returncode == 2 and one_line_error(res), res.stderr
        assert "free" in res.stderr and "needs" in res.stderr
        assert os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", mnt])


def test_io_error_while_creating_is_one_line_and_leaves_nothing(tmp_path):
    """A write error during creation (EFBIG from a 100 kB file-size limit set just
    before, as a quota would give) ends the run with exit 4 and one line naming the cause and the
    path;
    nothing that claims to be a run file, no temporary file and no lock is left."""
    out = tmp_path / "big.h5"
    res = subprocess.run([sys.executable, "-m", "tlsmpi.run", "--out", out], cwd=ROOT, text=True,
                         env=dict(mpi_env(), TLSMPI_FAULT="fsize:0:create"), capture_output=True,
                         timeout=120)
    assert res.returncode == 4 and one_line_error(res), res.stderr
    assert f"creating {out} failed: File too large" in res.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.mpi
def test_sigterm_to_mpirun_leaves_a_file_that_check_calls_resumable(tmp_path):
    """Open MPI's mpirun returns 1 when it forwards SIGTERM, though every rank stopped
    cleanly with 3: job scripts must ask `post check`, which says 3 (resumable)."""
    out = tmp_path / "term.h5"
    job = start(["--out", out, *SLOW], ranks=2)
    wait_for(lambda: out.exists() and Run(out).n_done > 0)
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=60)
    code, line = check(out)
    assert code == 3 and "incomplete" in line, line
    res = run_tlsmpi(["--out", out, "--resume", *SLOW], ranks=2)
    assert res.returncode == 0, res.stderr
    assert check(out)[0] == 0


def test_check_exit_codes(tmp_path, done_run):
    assert check(done_run) == (0, f"{done_run}: complete, 8/8 realizations")   # 2 cases x 4
    assert check(tmp_path / "none.h5")[0] == 2
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    assert check(foreign)[0] == 2


def write_lock(path, **record):
    import json
    import socket
    with open(str(path) + ".lock", "w") as fh:
        json.dump(dict({"host": socket.gethostname(), "job": "", "time": 0}, **record), fh)


@pytest.fixture
def sleeper():
    """A live process on this host (pid, start time), ended after the test."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid, lock.process_start(proc.pid)
    proc.kill()
    proc.wait()


def test_provably_stale_lock_is_taken_over(done_run, sleeper):
    """A lock whose holder is gone from this host -- no process with its pid, or a live
    process with another start time (the pid was reused) -- is taken over by the next
    run, which names the old holder; the file resumes to complete."""
    pid, start = sleeper
    for gone in ({"pid": 2**22 + 1}, {"pid": pid, "start": start + 1}):
        write_lock(done_run, **gone)
        res = run_tlsmpi(["check", done_run], module="tlsmpi.post")
        assert "is taken over by the next run on this host" in res.stdout, res.stdout
        res = run_tlsmpi(["--out", done_run, "--resume", *TINY])
        assert res.returncode == 0, res.stderr
        assert (
            f"took over the lock of {done_run} from a run on this host that is gone" in res.stdout
        )
        assert f":{gone['pid']}" in res.stdout and not os.path.exists(str(done_run) + ".lock")


def test_live_or_foreign_holder_is_never_taken_over(done_run, sleeper):
    """A live holder (pid and start time match) and a holder on another host (liveness
    unknown) refuse the run with the holder's name; `post unlock` refuses a live holder
    and clears a foreign one only with --force."""
    pid, start = sleeper
    lock_file = str(done_run) + ".lock"
    write_lock(done_run, pid=pid, start=start)
    res = run_tlsmpi(["--out", done_run, "--resume", *TINY])
    assert res.returncode == 2 and "is being written by" in res.stderr and f":{pid}" in res.stderr
    res = run_tlsmpi(["unlock", done_run], module="tlsmpi.post")
    assert res.returncode == 2 and "alive" in res.stderr and os.path.exists(lock_file)
    write_lock(done_run, host="elsewhere.invalid", pid=pid, start=start)
    res = run_tlsmpi(["--out", done_run, "--resume", *TINY])
    assert res.returncode == 2 and "stale lock" in res.stderr and "tlsmpi.post unlock" in res.stderr
    assert run_tlsmpi(["unlock", done_run], module="tlsmpi.post").returncode == 2
    assert run_tlsmpi(["unlock", done_run, "--force"], module="tlsmpi.post").returncode == 0
    assert not os.path.exists(lock_file)


def test_requeued_job_takes_over_its_own_lock(done_run):
    """SLURM keeps the job id on requeue: a lock with our own job id is ours (logged)."""
    import json
    with open(str(done_run) + ".lock", "w") as fh:
        json.dump({"host": "elsewhere", "pid": 1, "job": "4242", "time": 0}, fh)
    res = subprocess.run([sys.executable, "-m", "tlsmpi.run", "--out", done_run, "--resume", *TINY],
                         env=dict(mpi_env(), SLURM_JOB_ID="4242"), cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "took over the lock" in res.stdout + res.stderr, res.stderr
    assert not os.path.exists(str(done_run) + ".lock")


@pytest.mark.needs_petsc
def test_misspelt_solver_option_is_reported(tmp_path):
    base = ["--set", 'engine.name="liouvillian"', "--set", "model.N=3", "--set",
            "ensemble.realizations=1", "--set", "time.n_times=3", "--set", "time.t_max=1.0",
            "-mfn_tolx", "1e-8"]
    res = run_tlsmpi(["--out", tmp_path / "w.h5", *base])
    assert (
        res.returncode == 0 and "-mfn_tolx were not used by any solver" in res.stdout + res.stderr
    )
    res = run_tlsmpi(["--out", tmp_path / "s.h5", *base, "--strict-options"])
    assert res.returncode == 2 and one_line_error(res) and "-mfn_tolx" in res.stderr
    assert not (tmp_path / "s.h5").exists()


def test_post_outdir_that_is_a_file(done_run, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    res = run_tlsmpi(["all", done_run, "--outdir", target], module="tlsmpi.post")
    assert res.returncode == 2 and one_line_error(res) and "is a file" in res.stderr


@pytest.mark.parametrize("margin, warned", [("1e-9", True), ("1e9", False)])
def test_stop_margin_warning(tmp_path, margin, warned):
    """TLSMPI_STOP_MARGIN_SECONDS (exported by the job scripts): the runner warns when the
    longest realization is predicted to outlast it, and only then."""
    res = subprocess.run([sys.executable, "-m", "tlsmpi.run", "--out", tmp_path / "m.h5", *TINY],
                         env=dict(mpi_env(), TLSMPI_STOP_MARGIN_SECONDS=margin), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert ("more than the stop margin" in res.stdout + res.stderr) == warned
