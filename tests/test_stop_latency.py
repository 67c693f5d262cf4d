"""Stops inside a long work item (docs/reliability.md, "Stops inside a work item").

Each test runs one long item three times: uninterrupted (the reference), stopped by
SIGTERM a few seconds into the item, and resumed.  The stopped job must exit 3 within
`GRACE` seconds plus a few indivisible steps (one MFN solve, one eigendecomposition, one
trajectory: measured here, in this process), well before the item would have ended; the
file must be resumable (``post check`` exits 3) and the resumed rows bitwise equal to the
reference.  The measured latency is printed (``pytest -s``).

SLOW: the long items last 15-25 s on the development machine (each test runs its item
twice), so the end-to-end tests take ~3-4 min on 2 shared cores (marked ``slow``;
``-m "not slow"`` leaves them out).  The in-process tests of the checkpoints take seconds.
"""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tlsmpi import config, engines
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.observables import Request

from conftest import ROOT, mpi_env, run_tlsmpi
from runfiles import agree


#: Seconds allowed for a stop besides the indivisible steps (the goal of docs/reliability.md).
GRACE = 10.0
#: Slack on the indivisible step measured in this process (a loaded machine, other threads).
STEP_SLACK = 3.0
#: Seconds into the item at which SIGTERM is sent (at most a quarter of the item).
DELAY = 4.0
#: Seconds after which a run counts as hung (a loaded machine slows MPI jobs a lot).
TIMEOUT = 900

LIOUVILLIAN = ["--set", 'engine.name="liouvillian"', "--set", 'engine.method="mfn"',
               "--set", "model.N=7", "--set", "model.epsilon=1.0", "--set", "time.n_times=20",
               "--set", "ensemble.realizations=1"]
ED_CLOSED = ["--set", 'engine.name="ed"', "--set", "model.N=12", "--set", "model.epsilon=0.0",
             "--set", "model.flipflop=1.0", "--set", "time.n_times=2000",
             "--set", "ensemble.realizations=1"]
ED_OPEN = ["--set", 'engine.name="ed"', "--set", "engine.trajectories=40", "--set", "model.N=10",
           "--set", "model.epsilon=1.0", "--set", "model.flipflop=1.0",
           "--set", "time.n_times=1000",
           "--set", "ensemble.realizations=1"]


def launch(args, ranks):
    """The runner as a child process (under mpirun when ranks > 1)."""
    cmd = [sys.executable, "-m", "tlsmpi.run", *map(str, args)]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), *cmd]
    return subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def rank_pid(launcher, rank):
    """Process id of MPI rank ``rank`` started by ``launcher`` (from its environment)."""
    children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True)
    for pid in children.stdout.split():
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                return int(pid)
    raise AssertionError(f"no rank {rank} among the children of mpirun")


def rows(path):
    """Every dataset of every case group except the compute times (and their checksums)."""
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda name, obj: out.setdefault(name, obj[...])
                     if isinstance(obj, h5py.Dataset) and name.startswith("case_") else None)
    return {k: v for k, v in out.items() if not k.endswith(("wall_seconds", "checksum"))}


def stop_and_resume(tmp_path, args, step, ranks=1, target_rank=None, parts=1):
    """Reference run, SIGTERM `DELAY` s (at most a quarter of the item) into the first item
    (to ``target_rank`` only, else to the process), resume; the assertions of the module
    docstring.  ``step``: seconds of the longest indivisible step, measured by the caller;
    ``parts``: items of the realization."""
    ref = tmp_path / "ref.h5"
    res = run_tlsmpi(["--out", ref, *args], ranks=ranks, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    with h5py.File(ref, "r") as f:
        item = float(f["case_000/wall_seconds"][0]) / parts

    out = tmp_path / "stopped.h5"
    proc = launch(["--out", out, *args], ranks)
    lines = []
    while not (lines and "to compute" in lines[-1]):      # logged just before the first item
        lines.append(proc.stdout.readline())
        assert lines[-1] or proc.poll() is None, "".join(lines) + proc.stderr.read()
    started = time.monotonic()
    time.sleep(min(DELAY, item / 4))
    os.kill(proc.pid if target_rank is None else rank_pid(proc, target_rank), signal.SIGTERM)
    signalled = time.monotonic()
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    latency = time.monotonic() - signalled
    bound = GRACE + STEP_SLACK * step
    print(f"\nstop latency {latency:.2f} s (bound {bound:.1f} s; indivisible step {step:.3f} s "
          f"measured here; the item takes {item:.1f} s uninterrupted)")
    assert proc.returncode == 3, stdout + stderr
    assert "gave up" in stdout and "--resume" in stdout, stdout + stderr
    assert latency < bound
    assert time.monotonic() - started < 0.75 * item, "the stop came no earlier than the item's end"
    check = run_tlsmpi(["check", out], module="tlsmpi.post")
    assert check.returncode == 3, check.stdout + check.stderr

    res = run_tlsmpi(["--out", out, "--resume", *args], ranks=ranks, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    want, got = rows(ref), rows(out)
    assert want.keys() == got.keys()
    for key in want:
        assert agree(want[key], got[key]), key


def realization(args):
    """(realization 0 of the first case, configuration) of the runner's ``args``."""
    cfg = config.load(None, args[1::2])
    return sample(cfg.cases()[0], cfg.seed, 0), cfg


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def mfn_step(args):
    """Seconds of one MFN solve of a full substep (the Liouvillian's indivisible step)."""
    from tlsmpi.engines import liouvillian
    liouvillian.init_petsc()
    real, _ = realization(args)
    with liouvillian.Evolution(real) as evo:
        return timed(lambda: evo.step(0.0, evo.max_step))


@pytest.mark.parametrize("ranks, t_max", [(1, 400), pytest.param(2, 800, marks=pytest.mark.mpi)])
@pytest.mark.needs_mpi
@pytest.mark.slow
def test_liouvillian_stop_inside_a_realization(tmp_path, ranks, t_max):
    """MFN stepping (N = 7: few solves of some compute each, so that two oversubscribed
    ranks are not slowed down by waiting in collectives); with two ranks they share the
    realization (collective PETSc calls): SIGTERM to rank 1 alone must stop rank 0 at the
    same MFN solve, or the job hangs.  (A 2-rank group is slow on an oversubscribed
    machine, waiting in PETSc's scatters: its item is shorter.)"""
    args = [*LIOUVILLIAN, "--set", f"time.t_max={t_max}",
            "--set", f"engine.ranks_per_realization={ranks}"]
    stop_and_resume(tmp_path, args, mfn_step(args), ranks=ranks, target_rank=ranks - 1 or None)


@pytest.mark.needs_mpi
@pytest.mark.slow
def test_ed_closed_stop_inside_a_realization(tmp_path):
    """epsilon = 0: the steps are the sector eigendecompositions and the reduced density
    matrices of a time chunk."""
    from tlsmpi.engines import ed
    real, _ = realization(ED_CLOSED)
    sectors = ed.Sectors(real)
    largest = max(sectors.indices, key=len)
    step = timed(lambda: np.linalg.eigh(sectors.hamiltonian(largest)))
    stop_and_resume(tmp_path, ED_CLOSED, step)


@pytest.mark.needs_mpi
@pytest.mark.slow
def test_ed_trajectories_stop_inside_a_block(tmp_path):
    """epsilon > 0: two blocks of 20 trajectories (two items); the steps are the H_eff
    eigendecompositions and one trajectory."""
    from tlsmpi.engines import trajectories
    real, cfg = realization(ED_OPEN)
    setup = []
    step = max(timed(lambda: setup.append(trajectories.Setup(real, cfg.request))),
               timed(lambda: trajectories.block_sums(setup[0], cfg.times, 0, 1)))
    stop_and_resume(tmp_path, ED_OPEN, step, parts=2)


# -- the checkpoints in process ---------------------------------------------------------

class Stopper:
    """An engine's ``should_stop`` that says True from its ``k``-th call on."""

    def __init__(self, k=np.inf):
        self.k, self.calls = k, 0

    def __call__(self):
        self.calls += 1
        return self.calls >= self.k


def liouvillian_engine(method):
    from tlsmpi.engines import liouvillian
    liouvillian.init_petsc()
    return liouvillian.LiouvillianEngine({"method": method})


T8 = np.linspace(0.0, 40.0, 8)
#: name -> (engine factory, params, request, part or None, fewest checkpoints per item)
ENGINES = {
    "exact with entropy": (lambda: engines.get("exact")(), ModelParams(N=8, epsilon=1.0),
                           Request(("concurrence", "entropy")), None, 7 + 8),  # pairs, bubbles
    "ed closed": (lambda: engines.get("ed")(), ModelParams(N=8, flipflop=1.0), Request(),
                  None, 9 + 28),                                     # sectors, pairs
    "ed trajectories": (lambda: engines.get("ed")({"trajectories": 40}),
                        ModelParams(N=6, epsilon=1.0, flipflop=1.0), Request(), 1,
                        7 + 20 * (1 + 15)),        # sectors, trajectories and their pairs
    "liouvillian mfn": (lambda: liouvillian_engine("mfn"), ModelParams(N=3, epsilon=1.0),
                        Request(), None, 7),                         # a solve per interval
    "liouvillian spectral": (lambda: liouvillian_engine("spectral"), ModelParams(N=3, epsilon=1.0),
                             Request(), None, 3),                    # Delta m = 0, 1, 2
}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_checkpoints_stop_an_item_at_once(name):
    """Every engine calls its checkpoint often (at least once per step named in
    docs/reliability.md), raises Interrupted at the first checkpoint that sees the stop
    and calls nothing after it; an item stopped and redone gives the same bytes as one
    that ran through (nothing of the stopped one is kept)."""
    if name.startswith("liouvillian"):
        pytest.importorskip("petsc4py")
    make, params, request, part, fewest = ENGINES[name]
    real = sample(params, 7, 0)

    def item(engine):
        if part is None:
            return engine.compute(real, T8, request)
        return engine.compute_part(real, T8, request, part)

    def same(a, b):
        if part is not None:              # a block's sums of density matrices
            a, b = {"pairs": a["pairs"]}, {"pairs": b["pairs"]}
        return a.keys() == b.keys() and all(agree(a[k], b[k]) for k in a)

    reference = item(make())
    engine = make()
    engine.should_stop = counter = Stopper()
    assert same(item(engine), reference)
    n = counter.calls
    assert n >= fewest, n
    for k in sorted({1, n // 2, n}):
        engine = make()                    # a fresh one: ed keeps a realization's set-up
        engine.should_stop = counter = Stopper(k)
        with pytest.raises(engines.Interrupted):
            item(engine)
        assert counter.calls == k
        engine.should_stop = Stopper()
        assert same(item(engine), reference), k
