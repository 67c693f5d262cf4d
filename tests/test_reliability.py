"""Reliability: bad input, kills and resume, stop signals, crashes, failed realizations."""
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tlsmpi.results import Run

from conftest import ROOT, mpi_env, run_tlsmpi
from runfiles import agree

pytestmark = pytest.mark.needs_mpi   # runs python -m tlsmpi.run

TINY = ["--set", "model.N=5", "--set", "ensemble.realizations=3", "--set", "time.n_times=5"]


def snapshot(directory):
    return {p: hashlib.sha256(open(os.path.join(directory, p), "rb").read()).hexdigest()
            for p in sorted(os.listdir(directory))}


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("existing")
    res = run_tlsmpi(["--out", d / "old.h5", *TINY])
    assert res.returncode == 0, res.stderr
    return d


BAD_CONFIGS = {"syntax.toml": "[model\nN = 3\n", "unknown_key.toml": "[model]\nN = 4\nwidth = 2\n",
               "unknown_section.toml": "[physics]\nN = 4\n",
               "wrong_type.toml": "[model]\nN = \"ten\"\n", "float_N.toml": "[model]\nN = 4.5\n",
               "N_too_small.toml": "[model]\nN = 1\n", "negative.toml": "[model]\neta = -1.0\n",
               "nan.toml": "[model]\nepsilon = nan\n", "inf.toml": "[model]\nT_K = inf\n",
               "zero_realizations.toml": "[ensemble]\nrealizations = 0\n",
               "time_decreasing.toml": "[time]\nvalues = [0.0, 2.0, 1.0]\n",
               "time_reversed.toml": "[time]\nt_min = 10.0\nt_max = 1.0\n",
               "bad_engine.toml": "[engine]\nname = \"dense\"\n",
               "flipflop_exact.toml": "[model]\nflipflop = 0.1\n",
               "entropy_too_large.toml": "[model]\nN = 40\n[observables]\nentropy = true\n",
               "nothing_to_compute.toml": "[observables]\nconcurrence = false\n",
               "bad_sweep.toml": "[sweep]\nepsilon = []\n",
               "sweep_unknown.toml": "[sweep]\nseed = [1, 2]\n",
               "bad_material.toml": "[model]\nmaterial = \"glass\"\n",
               "ranks_exact.toml": "[engine]\nranks_per_realization = 2\n",
               "bipartitions.toml": "[model]\nN = 4\n[observables]\nbipartitions = 9\n",
               "liouvillian_too_large.toml": "[model]\nN = 14\n[engine]\nname = \"liouvillian\"\n",
               "exact_too_large.toml": "[model]\nN = 1000000\n",
               "file_too_large.toml": "[model]\nN = 400\n[ensemble]\nrealizations = 100000000\n",
               "empty_times.toml": "[time]\nvalues = []\n"}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_file(name, existing_run, tmp_path):
    cfg = tmp_path / name
    cfg.write_text(BAD_CONFIGS[name])
    before = snapshot(existing_run)
    res = run_tlsmpi([cfg, "--out", existing_run / "new.h5"])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlsmpi: error:"), res.stderr
    assert snapshot(existing_run) == before


def bad_cli_cases(d):
    corrupt = d / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    foreign = d / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    other_code = d / "other_code.h5"             # a file written by another commit
    shutil.copyfile(d / "old.h5", other_code)
    with h5py.File(other_code, "r+") as f:
        f.attrs["git_commit"] = "0123456789abcdef0123456789abcdef01234567"
        f.attrs["tlsmpi_version"] = "0.0.1"
    return {
        "missing config": ([d / "nope.toml"], "does not exist"),
        "config is a directory": ([d], "cannot be read"),
        "existing output": (["--out", d / "old.h5"], "exists"),
        "resume missing": (["--out", d / "missing.h5", "--resume"], "does not exist"),
        "resume corrupt": (["--out", corrupt, "--resume"], "not a readable HDF5"),
        "resume foreign": (["--out", foreign, "--resume"], "not a tlsmpi run file"),
        "resume other config": (
            ["--out", d / "old.h5", "--resume", "--set", "model.N=6"],
            "another configuration (3 key(s) differ: ensemble.realizations: "
            "file 3, given 24; model.N: file 5, given 6; time.n_times: file 5, given 71)",
        ),
        "resume with other code": (
            ["--out", other_code, "--resume", *TINY],
            "was written by tlsmpi 0.0.1 at commit 0123456789abcdef0123456789abcdef01234567"),
        "resume other seed": (
            ["--out", d / "old.h5", "--resume", *TINY, "--set", "ensemble.seed=9"],
            "seed",
        ),
        "unwritable directory": (["--out", "/proc/tlsmpi.h5"], "cannot write"),
        "no directory": (["--out", d / "nodir" / "x.h5"], "does not exist"),
        "bad --set": (["--set", "N=4"], "section.key=value"),
        "unknown option": (["--frobnicate"], "unknown argument"),
        "abbreviated option": (["--out", d / "old.h5", "--overw"], "unknown argument(s) --overw"),
        "repair without resume": (["--out", d / "old.h5", "--repair"],
                                  "--repair goes with --resume"),
        "solver option, exact engine": (["-mfn_tol", "1e-9"], "takes no solver options"),
    }


def test_bad_command_lines(existing_run):
    d = existing_run
    for name, (args, words) in bad_cli_cases(d).items():
        before = snapshot(d)
        res = run_tlsmpi(args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2, name
        assert len(lines) == 1 and words in lines[0], (name, res.stderr)
        assert snapshot(d) == before, name


# -- kills, signals and resume -------------------------------------------------------------

WORK = ["--set", "model.N=36", "--set", "ensemble.realizations=24", "--set", "time.n_times=40",
        "--set", "sweep.epsilon=[0.0, 1.0]", "--set", "output.checkpoint_seconds=0.2"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    res = run_tlsmpi(["--out", out, *WORK], ranks=2)
    assert res.returncode == 0, res.stderr
    return read_all(out)


def read_all(path):
    with h5py.File(path, "r") as f:
        return {
            f"{c}/{k}": f[c][k][...]
            for c in f
            if c.startswith("case_")
            for k in ("concurrence", "concurrence_mean", "concurrence_sem", "status", "disorder/nu")
        }


def start(args, ranks=2):
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "tlsmpi.run", *map(str, args)]
    return subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill_job(proc, sig, launcher=True):
    """Signal every rank of an mpirun job (Open MPI gives each rank its own process
    group, so killing mpirun's group alone would leave the ranks running) and mpirun."""
    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    for pid in ranks.stdout.split():
        try:
            os.kill(int(pid), sig)
        except ProcessLookupError:
            pass
    if launcher:
        os.killpg(proc.pid, sig)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert agree(a[key], b[key]), key


@pytest.mark.mpi
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path, reference):
    rng = random.Random(1234)
    for trial in range(5):
        out = tmp_path / f"kill{trial}.h5"
        proc = start(["--out", out, *WORK])
        time.sleep(rng.uniform(0.5, 3.5))
        kill_job(proc, signal.SIGKILL)
        proc.wait()
        locked = os.path.exists(str(out) + ".lock")   # killed after the lock was taken
        # the process that creates the file is a child of rank 0 that finishes its work (and
        # removes its temporary) on its own: wait for it, bounded
        deadline = time.monotonic() + 60
        while [p for p in os.listdir(tmp_path) if ".creating" in p] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in os.listdir(tmp_path) if ".creating" in p]
        if out.exists():
            Run(out)                        # a killed file always opens and verifies
            res = run_tlsmpi(["--out", out, "--resume", *WORK], ranks=2)
        else:                               # killed while the file was being created
            res = run_tlsmpi(["--out", out, *WORK], ranks=2)
        assert res.returncode == 0, res.stdout + res.stderr
        # the killed job's lock (holder gone from this host) is taken over without post unlock
        assert ("took over the lock" in res.stdout) == locked, res.stdout
        assert not os.path.exists(str(out) + ".lock")
        assert_same(read_all(out), reference)


@pytest.mark.mpi
@pytest.mark.parametrize("how", ["SIGUSR1 to mpirun", "SIGTERM to the ranks"])
def test_stop_signal_then_resume(tmp_path, reference, how):
    out = tmp_path / "stopped.h5"
    proc = start(["--out", out, *WORK])
    deadline = time.time() + 60
    while not (out.exists() and Run(out).cases[0].n_done > 0) and time.time() < deadline:
        time.sleep(0.1)
    if how.startswith("SIGUSR1"):
        proc.send_signal(signal.SIGUSR1)
    else:                                      # as srun/SLURM do: every task gets SIGTERM
        kill_job(proc, signal.SIGTERM, launcher=False)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stdout + stderr
    assert "--resume" in stdout
    partial = Run(out)
    assert not partial.complete and any(c.n_pending for c in partial.cases)
    res = run_tlsmpi(["--out", out, "--resume", *WORK], ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same(read_all(out), reference)


def faulty(kind, args, ranks=2, timeout=180, where="1:*"):
    """The real runner with TLSMPI_FAULT = KIND:RANK:REALIZATION
    (tlsmpi.run.signals.inject_fault)."""
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "tlsmpi.run", *map(str, args)]
    env = dict(mpi_env(), TLSMPI_FAULT=f"{kind}:{where}")
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.mpi
@pytest.mark.parametrize("kind, what", [("exception", "RuntimeError: injected fault"),
                                        ("keyboard", "KeyboardInterrupt"),
                                        ("exit", "SystemExit: 0"),
                                        ("memory", "MemoryError: injected fault")])
def test_any_base_exception_on_one_rank_ends_the_job(tmp_path, kind, what):
    """Any BaseException on rank 1 (in its first realization) ends the whole job in
    seconds, naming rank and realization; the job's lock is released, and the file left
    behind verifies and resumes."""
    out = tmp_path / "crash.h5"
    t0 = time.time()
    res = faulty(kind, ["--out", out, *TINY, "--set", "ensemble.realizations=6"])
    assert res.returncode != 0 and time.time() - t0 < 30
    lines = [x for x in res.stderr.splitlines() if x.startswith("tlsmpi:")]
    assert len(lines) == 1 and "rank 1 crashed on realization" in lines[0] and what in lines[0], (
        res.stderr
    )
    assert not os.path.exists(str(out) + ".lock")
    assert run_tlsmpi(["--out", out, "--resume", *TINY, "--set", "ensemble.realizations=6"],
                      ranks=2).returncode == 0


@pytest.mark.mpi
def test_failed_realization_recorded_not_averaged(tmp_path):
    out = tmp_path / "failed.h5"
    res = faulty("solver", ["--out", out, *TINY, "--set", "ensemble.realizations=5"], where="*:2")
    assert res.returncode == 0, res.stderr
    assert "failed: epsilon=0 realization 2: injected solver fault" in res.stdout
    run = Run(out)
    case = run.cases[0]
    assert case.status[2] == -1 and case.n_done == 4 and case.errors == {2: "injected solver fault"}
    with h5py.File(out, "r") as f:
        rows = f["case_000/concurrence"][...]
        assert np.isnan(rows[2]).all()
        mean = rows[[0, 1, 3, 4]].mean(0)
        # same formula, same bytes
        assert np.array_equal(f["case_000/concurrence_mean"][...], mean)


@pytest.mark.mpi
def test_liouvillian_stop_and_resume(tmp_path):
    """Engine 2 under the same stop/resume contract: SIGUSR1, exit 3, --resume, identical data."""
    work = ["--set", 'engine.name="liouvillian"', "--set", "model.N=5", "--set",
            "ensemble.realizations=16", "--set", "time.t_max=30.0", "--set", "time.n_times=8",
            "--set", "sweep.epsilon=[1.0]"]
    ref = tmp_path / "ref.h5"
    assert run_tlsmpi(["--out", ref, *work], ranks=2).returncode == 0
    out = tmp_path / "stopped.h5"
    # every rank raises the stop signal in its first realization: certain to come mid-run
    res = faulty("stop", ["--out", out, *work], where="*:*")
    assert res.returncode == 3, res.stdout + res.stderr
    assert Run(out).cases[0].n_done < 16      # items in progress are given up at the stop
    res = run_tlsmpi(["--out", out, "--resume", *work], ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same(read_all(out), read_all(ref))


# -- the command line itself ---------------------------------------------------------------

@pytest.mark.parametrize("ranks", [1, 2])
def test_help_and_version_exit_0_usage_errors_exit_2_with_one_line(tmp_path, ranks):
    """--help and --version print once and exit 0 (no traceback, no abort banner);
    usage errors exit 2 with one line, also under mpirun -n 2.  There, Open MPI adds its
    own banner for non-zero exits unless told to be quiet (mpirun -q, or
    OMPI_MCA_orte_execute_quiet=1 as here; docs/reliability.md): tlsmpi itself prints
    one line from one rank."""
    quiet = {"OMPI_MCA_orte_execute_quiet": "1"}
    for args, words in ((["--help"], "usage: python -m tlsmpi.run"), (["--version"], "tlsmpi ")):
        res = run_tlsmpi(args, ranks=ranks, env=quiet)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert res.stdout.count(words) == 1, res.stdout
    for args, words in ((["--out"], "expected one argument"),
                        (["--overwrite", "--resume"], "not allowed with argument"),
                        (["--frobnicate"], "unknown argument"),
                        (["--set", "model.N"], "section.key=value")):
        res = run_tlsmpi(args if args == ["--out"] else ["--out", tmp_path / "x.h5", *args],
                         ranks=ranks, env=quiet)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, (args, res.stderr)
        assert words in lines[0] and lines[0].startswith("tlsmpi: error:"), res.stderr
    for args in (["check", "--frobnicate"], ["unlock"], ["all"]):
        res = run_tlsmpi(args, module="tlsmpi.post")
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)


@pytest.mark.mpi
def test_stop_signal_during_start_up_stops_cleanly(tmp_path, reference):
    """A batch system's warning may come before the run has started (SLURM sends it up to
    60 s early): the stop flag exists from the first line of main, so a SIGUSR1 on every
    rank right after MPI start-up ends the job with 3 and a resumable file, never with
    the signal's default action (death, exit 138)."""
    out = tmp_path / "early.h5"
    res = faulty("stop", ["--out", out, *WORK], where="*:start")
    assert res.returncode == 3, res.stdout + res.stderr
    assert run_tlsmpi(["check", out], module="tlsmpi.post").returncode == 3
    res = run_tlsmpi(["--out", out, "--resume", *WORK], ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same(read_all(out), reference)
