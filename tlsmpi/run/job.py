"""Ensemble runner: ``mpirun -n P python -m tlsmpi.run [CONFIG.toml] [options]``.

The runner wires configuration, engine, work queue and run file together; it knows
no physics.  Realization r of every case is drawn from ``default_rng([r, seed])`` and
computed by one rank group alone, or, if the engine splits it into parts
(`tlsmpi.engines.Engine.parts`, e.g. blocks of trajectories), part by part anywhere
and combined in part order on one rank, so the numbers do not depend on the rank
count.  Work items (realizations or parts) are shared through
`tlsmpi.parallel.WorkQueue` (largest predicted cost first, no collective per item);
completed rows are buffered per rank and written at checkpoints by independent I/O.
SIGUSR1/SIGTERM stop every rank at its next item boundary, or inside an item at the
engine's next checkpoint (`tlsmpi.engines.Engine.checkpoint`: the item is given up); the
file stays resumable (a realization with parts not computed stays pending).

Exit status (docs/reliability.md): 0 done; 1 crash (the whole job is aborted, see the
log); 2 bad input or refused (nothing on disk touched; also an --out whose directory
is missing or that is a directory); 3 stopped by a signal, resume with ``--resume``; 4
the operating system refused a file operation on --out, its directory or its lock
(read-only filesystem, permission, disk full, quota, file too large): one line names
the path, the errno's meaning and whether anything was written (docs/reliability.md).
"""
import contextlib
import datetime
import errno
import functools
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

from .. import __version__
from .. import config as configuration
from .. import engines
from . import environment
from ..cli import Parser, wants_help
from ..errors import (EXIT_CRASH, EXIT_INPUT, EXIT_IO, EXIT_OK, EXIT_STOPPED, ConfigError,
                      SolverError, os_meaning, os_message, os_status, with_errno)
from ..runfile.lock import LockError, RunLock, lock_path, read_holder
from ..physics.observables import result_bytes

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
#: Fault injection for the tests: "KIND:RANK:WHERE" (RANK and WHERE may be *); does nothing
#: unless set.  WHERE is a realization index (* = any), "create" (rank 0 creating the file),
#: "grow" (rank 0 growing it) or "start" (right after MPI start-up, before the configuration
#: is read).
#: KIND: exception, keyboard, exit, memory, solver, stop (SIGUSR1 to self), or fsize (a
#: 100 kB file-size limit from here on: writes fail with EFBIG, as a quota would).
FAULT_VARIABLE = "TLSMPI_FAULT"

log = logging.getLogger("tlsmpi")


def parser():
    """The command line of ``python -m tlsmpi.run`` (usage errors raise ConfigError)."""
    p = Parser(
        prog="python -m tlsmpi.run", description=__doc__.split("\n\n")[0], error_type=ConfigError,
        epilog="Options with a single dash (e.g. -mfn_tol 1e-10, -log_view) go to PETSc/SLEPc "
               "for engines that take solver options.  Exit status: 0 done, 1 crash, 2 bad "
               "input, 3 stopped (resume with --resume), 4 I/O error.  The configuration "
               "keys (SECTION.KEY of the TOML file and of --set): docs/configuration.md, or "
               "`tlsmpi config [CONFIG]` (every key with its value, default and a one-line "
               "description).")
    p.add_argument("config", nargs="?", help="TOML run configuration (default: the small default "
                                             "job)")
    p.add_argument("--out", help="output HDF5 file (default: CONFIG stem + .h5, or default.h5)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE",
                   help="override a configuration value, e.g. --set model.N=20 (repeatable; "
                        "the keys: docs/configuration.md, tlsmpi config)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --out (same configuration), or "
                            "grow a finished one: a larger ensemble.realizations adds "
                            "realizations (docs/output.md)")
    p.add_argument("--repair", action="store_true",
                   help="with --resume: recompute rows that fail verification (checksum, status)")
    p.add_argument("--strict-options", action="store_true",
                   help="make solver options that no solver used an error (default: a warning)")
    p.add_argument("--version", action="store_true", help="print the tlsmpi version and exit")
    p.add_argument("--check-install", action="store_true",
                   help="print what is installed (MPI, parallel HDF5, PETSc) and exit: 0 if a "
                        "run can start, 1 if something is missing")
    return p


def parse_args(argv):
    args, extra = parser().parse_known_args(argv)
    if args.repair and not args.resume:
        raise ConfigError("--repair goes with --resume: python -m tlsmpi.run ... --resume --repair")
    return args, extra


def split_solver_options(argv):
    """Separate PETSc/SLEPc options (``-name [value]``, a single dash) from tlsmpi's own
    arguments, so that option values are never taken for the config file."""
    ours, solver = [], []
    words = list(argv)
    while words:
        word = words.pop(0)
        if word.startswith("-") and not word.startswith("--") and word not in ("-h", "-") \
                and not _is_number(word):
            solver.append(word)
            if words and (not words[0].startswith("-") or _is_number(words[0])):
                solver.append(words.pop(0))
        else:
            ours.append(word)
    return ours, solver


def _is_number(word):
    try:
        float(word)
        return True
    except ValueError:
        return False


def prepare(argv):
    """Parse and validate everything that needs no file: (args, config, solver options)."""
    argv, solver = split_solver_options(argv)
    args, extra = parse_args(argv)
    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}: see python -m tlsmpi.run --help")
    cfg = configuration.load(args.config, args.overrides)
    engine = engines.get(cfg.engine)
    if solver and not engine.solver_options:
        raise ConfigError(f"unknown option(s) {' '.join(solver)}: engine {cfg.engine!r} takes no "
                          "solver options (see python -m tlsmpi.run --help)")
    if args.out is None:
        stem = os.path.splitext(os.path.basename(args.config))[0] if args.config else "default"
        args.out = stem + ".h5"
    return args, cfg, solver


# --------------------------------------------------------------------------- resources

def check_resources(engine, cfg, args, comm):
    """Refuse (ConfigError) what cannot fit: memory per node for the largest case, and
    the run file against the free space of its filesystem.  Rank 0's verdict rules."""
    from mpi4py import MPI
    on_node = comm.allreduce(comm.Split_type(MPI.COMM_TYPE_SHARED).size, op=MPI.MAX)
    error = None
    if comm.rank == 0:
        try:
            check_directory(args.out, args.resume)
            check_memory(engine, cfg, on_node)
            if not args.resume:
                check_space(args.out, cfg, engine, args.overwrite and os.path.isfile(args.out))
        except (ConfigError, OutputError) as err:
            error = err
    error = comm.bcast(error, root=0)
    if error:
        raise error


def check_space(out, cfg, engine, replaces=False, doing="the run file"):
    """Refuse (ConfigError) a run file ``out`` of ``cfg`` that its filesystem cannot hold
    (``replaces``: the file it replaces is freed first)."""
    from ..runfile.writer import file_size_estimate
    need = file_size_estimate(cfg, engine.outputs(cfg.request))
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(out))).free
    if replaces:
        free += os.path.getsize(out)
    if need * 1.05 + 1e6 > free:
        raise ConfigError(f"--out {out}: {doing} needs ~{_bytes(need)} but its filesystem has "
                          f"{_bytes(free)} free; free space, choose another --out, or save less "
                          "(observables.save_disorder = false)")


#: Bytes of rank 0's bookkeeping per work item (item and pending lists of tuples, predicted
#: costs, the queue's arrays), an upper bound (docs/reliability.md).
ITEM_BYTES = 500.0


def check_memory(engine, cfg, on_node):
    """Refuse (ConfigError) a work list or a case that does not fit in the memory of a
    node with ``on_node`` ranks; log the engine's estimate per case."""
    from ..engines.base import available_memory
    available = available_memory()
    items = cfg.realizations * sum(engine.parts(p, cfg.request) for p in cfg.cases())
    if available is not None and items * ITEM_BYTES > available / 2:
        raise ConfigError(f"{items} work items (ensemble.realizations = {cfg.realizations} x "
                          f"cases x parts) need ~{_bytes(items * ITEM_BYTES)} of rank 0's memory "
                          f"for the work list but {_bytes(available)} is available: split the "
                          "ensemble into several runs (ensemble.realizations, ensemble.seed)")
    said = set()
    for params in cfg.cases():
        line, error = memory_verdict(engine, params, cfg, on_node, available)
        if line not in said:
            log.info(line)
            said.add(line)
        if error:
            raise ConfigError(error)


def memory_verdict(engine, params, cfg, on_node, available):
    """(log line, error or None): the engine's memory per rank for one case, plus three
    copies of a realization's rows (the engine's result, its resolved parts, the write
    buffer's stack; `tlsmpi.physics.observables.result_bytes`), times the ranks on a
    node, against ``available`` bytes (None: unknown, never refused); the error names
    the largest N that would fit."""
    rpr = cfg.ranks_per_realization

    def need(N):
        rows = 3 * result_bytes(cfg.request, N, cfg.n_times)
        return (engine.memory(params.replace(N=N), cfg.times_stub, cfg.request, rpr)
                + rows) * on_node

    per_rank = need(params.N) / on_node
    line = (f"engine {engine.name}, N = {params.N}: ~{_bytes(per_rank)} per rank "
            f"x {on_node} rank(s) on a node = {_bytes(need(params.N))}")
    if available is None or need(params.N) <= available:
        return line, None
    low, high = 2, params.N                      # need() grows with N: bisect the largest fit
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= available else (low, mid)
    largest = (f"the largest N that fits is {low}" if need(low) <= available else
               f"no N fits with {cfg.n_times} output times (time.n_times or time.values)")
    return line, (
        f"engine {engine.name!r} with N = {params.N} needs ~{_bytes(need(params.N))} on "
        f"a node ({_bytes(per_rank)} per rank x {on_node} ranks, ranks_per_realization "
        f"= {rpr}) but {_bytes(available)} is available: {largest}; lower model.N or "
        "time.n_times, or use fewer ranks per node"
        + (" or more ranks per realization" if engine.parallel else "")
    )


def _bytes(n):
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


# --------------------------------------------------------------------------- the file

def claim_output(args, cfg):
    """Rank 0: take the run's lock, then check what --out holds.  Returns the lock and
    the damaged rows to recompute (--repair) and the realization count of a file to grow
    (None if it does not grow); raises ConfigError, LockError or OutputError."""
    out = args.out
    try:
        held = RunLock(out).acquire()
    except OSError as err:
        raise os_refusal(err, os_message(err, lock_path(out), "--out: making the lock",
                                         untouched(args.resume))) from None
    try:
        if held.taken_over:
            log.warning(f"took over the lock of {out} from {held.taken_over}")
        exists = os.path.exists(out)
        repair, had = [], None
        if args.resume:
            if not exists:
                raise ConfigError(f"--resume: {out} does not exist; start the run without --resume")
            repair, had = check_resumable(out, cfg, args.repair)
        elif exists and not args.overwrite:
            raise ConfigError(f"{out} exists: pass --resume to continue it, --overwrite to replace "
                              "it, or choose another --out")
        return held, repair, had
    except BaseException:
        held.release()
        raise


def check_directory(out, resume=False):
    """--out names a file in an existing directory where this process can write a byte
    (ConfigError, or OutputError for what the system refuses: `os_refusal`)."""
    directory = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise ConfigError(f"--out {out}: {os_meaning(OSError(errno.EISDIR, ''))}; give a file name")
    if not os.path.isdir(directory):
        raise ConfigError(f"--out {out}: directory {directory} does not exist; create it first")
    try:                                   # the real test (os.access is blind for root); a
        with tempfile.TemporaryFile(dir=directory) as probe:   # byte needs a block (ENOSPC,
            probe.write(b"x")                                   # EDQUOT), an empty file not
            probe.flush()
    except OSError as err:
        raise os_refusal(err, f"--out {out}: cannot write in {directory} "
                         f"({os_meaning(err, err.filename)}); {untouched(resume)}") from None


def untouched(resume):
    """What to do after an error before the run file was written."""
    return ("the file is unchanged: resume with --resume once it is fixed" if resume else
            "nothing was written: fix it or choose another --out")


class OutputError(RuntimeError):
    """The system refused a file operation on --out, its directory or lock before the run
    file was open, on every rank alike: one line and exit status 4 (no abort needed)."""


def os_refusal(err, message):
    """The exception for ``message`` about the OSError ``err``: ConfigError (status 2) for
    a path that is missing or of the wrong kind, else OutputError (4)
    (`tlsmpi.errors.os_status`)."""
    return ConfigError(message) if os_status(err) == EXIT_INPUT else OutputError(message)


def check_resumable(path, cfg, repair):
    """Refuse to resume a file of another configuration, seed or layout, or with damaged
    rows (unless ``repair``); return the damaged rows [(case, index)] to recompute and,
    when only ``ensemble.realizations`` grew, the file's realization count (else None)."""
    from ..runfile.writer import LAYOUT_VERSION
    from ..runfile.reader import DamagedRun, NotARunFile, Run
    try:
        run = Run(path, verify=False)
    except (NotARunFile, OSError, KeyError) as err:
        if isinstance(err, OSError) and err.errno:   # the system refused to read it
            raise os_refusal(err, os_message(err, path, "--resume: reading",
                                             untouched(True))) from None
        raise ConfigError(
            f"--resume: {err}; start a new run with --overwrite or another --out"
        ) from None
    if run.layout != LAYOUT_VERSION:
        raise ConfigError(f"--resume: {path} has layout {run.layout}, this tlsmpi writes layout "
                          f"{LAYOUT_VERSION}; finish it with the tlsmpi that started it or start "
                          "anew")
    if run.attrs.get("seed") != cfg.seed:
        raise ConfigError(f"--resume: {path} was written with seed {run.attrs.get('seed')}, "
                          f"not {cfg.seed}; use the same seed or another --out")
    had = len(run.cases[0].status)
    known = configuration.defaults(cfg.engine)    # keys added since the file was written
    keys = configuration.differing_keys(run.config, cfg.to_toml(), known)
    grows = keys == ["ensemble.realizations"]
    if grows and cfg.realizations < had:
        raise ConfigError(f"--resume: {path} holds {had} realizations, more than "
                          f"ensemble.realizations = {cfg.realizations}; a run grows but never "
                          f"shrinks: resume with ensemble.realizations >= {had}")
    if keys and not grows:
        raise ConfigError(f"--resume: {path} was written with another configuration "
                          f"({configuration.differences(run.config, cfg.to_toml(), defaults=known)}"
                          "); resume with "
                          "the same config and --set options (only ensemble.realizations may "
                          "grow), or use another --out")
    if run.problems and not repair:
        raise ConfigError(f"--resume: {DamagedRun(path, run.problems)}")
    names = [c.name for c in run.cases]
    return sorted({(names.index(c), r) for c, r, _, _ in run.problems}), had if grows else None


def provenance(comm, engine, argv, command=None):
    """Root attributes: who made the file, with what, from which command (``command``:
    the text of a call that is not ``python -m tlsmpi.run argv``).  With the serial
    communicator (`tlsmpi.runfile.writer.SERIAL`) the MPI versions are empty."""
    from ..runfile.writer import SERIAL, h5py_module
    h5py = h5py_module()
    mpi = {"mpi_version": "", "mpi4py_version": ""}
    if comm is not SERIAL:
        from mpi4py import MPI
        import mpi4py
        mpi = {"mpi_version": MPI.Get_library_version().replace("\0", "").splitlines()[0].strip(),
               "mpi4py_version": mpi4py.__version__}
    return {"tlsmpi_version": __version__, "git_commit": git_commit(),
            "command_line": command or shlex.join([sys.executable, "-m", "tlsmpi.run", *argv]),
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": socket.gethostname(), "n_ranks": comm.size,
            **mpi, "h5py_version": h5py.version.version,
            "hdf5_version": h5py.version.hdf5_version, "numpy_version": np.__version__,
            "python_version": sys.version.split()[0], **engine.versions()}


def git_commit():
    """The commit of the tlsmpi checkout this code runs from ('' if not a checkout),
    with '-dirty' when it has uncommitted changes."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(here, ".git")):
        return ""
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty and commit else "")


# --------------------------------------------------------------------------- the loop

def setup_logging(rank):
    handler = logging.StreamHandler(sys.stdout if rank == 0 else sys.stderr)
    prefix = "" if rank == 0 else f"[rank {rank}] "
    handler.setFormatter(logging.Formatter(f"%(asctime)s tlsmpi {prefix}%(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    log.propagate = False


class StopFlag:
    """Set by SIGUSR1/SIGTERM; every rank stops at its next work-item boundary, or
    inside an item at the engine's next checkpoint (the flag is the engine's
    ``should_stop``, `tlsmpi.engines.Engine.checkpoint`)."""

    def __init__(self):
        self.signal = 0
        for s in STOP_SIGNALS:
            signal.signal(s, self._handler)

    def _handler(self, signum, frame):
        self.signal = signum

    def __call__(self):
        return bool(self.signal)


def _fault(rank, where):
    """Raise the fault of TLSMPI_FAULT = "KIND:RANK:WHERE" (tests only)."""
    spec = os.environ.get(FAULT_VARIABLE)
    if not spec:
        return
    kind, at_rank, at = spec.split(":")
    anywhere = at == "*" and where not in ("create", "grow", "start")
    if at_rank in ("*", str(rank)) and (at == str(where) or anywhere):
        if kind == "stop":
            os.kill(os.getpid(), signal.SIGUSR1)
            return
        if kind == "fsize":
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
            return
        raise {"exception": RuntimeError("injected fault"), "keyboard": KeyboardInterrupt(),
               "exit": SystemExit(0), "memory": MemoryError("injected fault"),
               "solver": SolverError("injected solver fault")}[kind]


class JobState:
    """What the job shares with the crash handler of `main` and the engine, kept up to
    date as the job goes: the stop flag (``stop``, a `StopFlag`, set up on the first line
    of `main`: a batch system's warning may come before the run starts), the item this
    rank computes (``item``, a label or None) and the lock of the run file (``lock_path``,
    ``lock_record``: released by `_abort`)."""

    def __init__(self, stop):
        self.stop = stop
        self.item = None
        self.lock_path = self.lock_record = None


@functools.cache
def _threadpools():
    """The BLAS/OpenMP thread pools of this process, found once (after the engines loaded
    numpy and scipy)."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS and OpenMP run on one thread.

    The engines compute inside it, in the job and in `tlsmpi.simulate`: the MPI ranks are
    the parallelism, and BLAS threads on top of them oversubscribe the cores
    (docs/performance.md, "One BLAS thread per rank"); the thread count of the machine is
    then no input of a result either."""
    return _threadpools().limit(limits=1)


def run_item(engine, params, cfg, times, r, group_comm, rank, state, part=None):
    """Compute one realization, or part ``part`` of it (`tlsmpi.engines.Engine.parts`),
    with one BLAS thread (`one_blas_thread`); a SolverError or a non-finite result makes
    the realization a failed one.  The item is named in ``state`` (`JobState`) while it
    runs.

    Returns (real, results or partial result, error message or None, wall seconds), or
    None if the engine gave the item up at a stop (`tlsmpi.engines.Interrupted`)."""
    state.item = (("" if part is None else f"part {part} of ") +
                  f"realization {cfg.first_realization + r} of case {params.N=}, "
                  f"{params.epsilon=}".replace("params.", ""))
    t0 = time.perf_counter()
    real = cfg.realization(params, r)
    try:
        _fault(rank, r)
        with one_blas_thread():
            if part is None:
                results = _finite(engine.compute(real, times, cfg.request, group_comm))
            else:
                results = engine.compute_part(real, times, cfg.request, part, group_comm)
    except SolverError as err:
        results, error = None, str(err)
    except engines.Interrupted:
        log.info(f"stop: gave up {state.item} after {time.perf_counter() - t0:.1f} s; "
                 "it stays pending")
        state.item = None
        return None
    else:
        error = None
    state.item = None                      # left set by an exception: main names the item
    return real, results, error, time.perf_counter() - t0


def combine_parts(engine, params, cfg, times, r, values):
    """The row of realization r from the (partial result, error, wall) of its parts, in
    part order: (real, results, error, summed wall seconds), as `run_item`."""
    real = cfg.realization(params, r)
    wall = sum(v[2] for v in values)
    errors = [v[1] for v in values if v[1]]
    if errors:
        return real, None, errors[0], wall
    try:
        with one_blas_thread():
            results = engine.combine(real, times, cfg.request, [v[0] for v in values])
        return real, _finite(results), None, wall
    except SolverError as err:
        return real, None, str(err), wall


def compute_realization(engine, params, cfg, times, r):
    """Realization r of ``params`` in this process alone, every part in part order (the
    MPI-free step of the job, for ``tlsmpi.simulate``): (real, results, error, wall) as
    `run_item`; the same numbers as any rank of the job computes."""
    state = JobState(None)
    if engine.parts(params, cfg.request) == 1:
        return run_item(engine, params, cfg, times, r, None, 0, state)
    values = [run_item(engine, params, cfg, times, r, None, 0, state, part)[1:]
              for part in range(engine.parts(params, cfg.request))]
    return combine_parts(engine, params, cfg, times, r, values)


def _finite(results):
    bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
    if bad:
        raise SolverError(f"non-finite values in {', '.join(bad)}")
    return results


def record(run, c, r, real, results, error, wall):
    """Buffer the row of realization r of case c (or its failure)."""
    if error is None:
        run.add(c, r, results, real, wall)
    else:
        log.warning(f"realization {r} of case {c} failed: {error}")
        run.add_failure(c, r, error, wall)


def resume_command(args):
    words = ["python -m tlsmpi.run", args.config or ""] + [f"--set {o}" for o in args.overrides]
    return " ".join(w for w in words + ["--out", args.out, "--resume"] if w)


def predicted_costs(engine, cfg, cases, times):
    """Predicted seconds of every item (case, row r), shape (n_cases, R); rank 0 computes."""
    R = cfg.realizations
    costs = np.empty((len(cases), R))
    for c, params in enumerate(cases):
        for r in range(R):
            costs[c, r] = engine.cost(
                params, times, cfg.request, lambda: cfg.realization(params, r)
            )
    return costs


def warn_stop_margin(costs, widths):
    """Warn if an item, on the group width it will run on, is predicted to outlast the
    job script's stop margin (TLSMPI_STOP_MARGIN_SECONDS): a stop then relies on the
    engine's checkpoints inside the item (docs/reliability.md)."""
    margin = os.environ.get("TLSMPI_STOP_MARGIN_SECONDS")
    if not margin:
        return
    longest = float(np.max(costs / widths)) if costs.size else 0.0
    if longest > float(margin):
        log.warning(f"the longest work item (a realization or a part of one) is predicted to take "
                    f"~{longest:.0f} s, more than the stop margin TLSMPI_STOP_MARGIN_SECONDS = "
                    f"{margin} s: a stop gives it up at the engine's next checkpoint, so the "
                    "margin must cover the longest step between checkpoints (one MFN solve, "
                    "one eigendecomposition, one trajectory) and closing the file; an engine "
                    "without checkpoints stops only after the item: then raise the margin or "
                    "lower the cost")


def execute(args, cfg, solver, comm, argv, state):
    """Everything after validation: engine set-up, resources, the lock, the loop."""
    engine = engines.get(cfg.engine)(cfg.engine_options)
    engine.init([sys.argv[0], *solver])
    left = engine.unused_options() if solver else []
    if left:
        message = (f"solver option(s) {' '.join('-' + o for o in left)} were not used by any "
                   "solver (misspelt?)")
        if args.strict_options:
            raise ConfigError(message + "; fix them or drop --strict-options")
        log.warning(message)
    if engine.parallel and comm.size % cfg.ranks_per_realization:
        raise ConfigError(f"engine.ranks_per_realization = {cfg.ranks_per_realization} does not "
                          f"divide the {comm.size} MPI ranks: launch a multiple of it")
    check_resources(engine, cfg, args, comm)

    held, repair, had, error = None, [], None, None
    if comm.rank == 0:
        try:
            held, repair, had = claim_output(args, cfg)
        except (ConfigError, OutputError) as err:
            error = err
        except LockError as err:
            error = ConfigError(str(err))
    error, record = comm.bcast((error, held.record if held else None), root=0)
    if error:
        raise error
    state.lock_path, state.lock_record = args.out, record
    try:
        return Job(args, cfg, engine, comm, state).run(argv, held, repair, had)
    finally:
        if held is not None:
            held.release()


class Job:
    """One job after validation and locking, as named steps: `create_file`, `plan`,
    `make_groups`, `work` (the item loop) and `finish`.  Rank 0 reads and decides; the
    other ranks follow its broadcasts.  An exception in any step aborts the whole job
    (`main`): no collective clean-up happens here."""

    def __init__(self, args, cfg, engine, comm, state):
        self.args, self.cfg, self.engine, self.comm, self.state = args, cfg, engine, comm, state
        self.cases, self.times = cfg.cases(), cfg.times

    def run(self, argv, held, repair, had=None):
        """All steps (``had``: the realization count of a file to grow, rank 0); returns
        the exit status."""
        from ..runfile.writer import RunFile
        self.create_file(argv, had)
        try:                               # collective: every rank gets the same error
            self.file = RunFile(self.args.out, self.comm)
        except OSError as err:
            raise os_refusal(err, os_message(with_errno(err), self.args.out, "opening",
                                             RESUME)) from None
        self.plan(repair)
        self.make_groups()
        stopped = self.work()
        return self.finish(stopped, held)

    def create_file(self, argv, had=None):
        """Rank 0 creates the run file (not on --resume), or grows it from ``had``
        realizations; OutputError or ConfigError on every rank if that fails."""
        from ..runfile.writer import create
        args, failure = self.args, None
        if self.comm.rank == 0 and had is not None and had < self.cfg.realizations:
            failure = self.grow_file(argv, had)
        elif self.comm.rank == 0 and not args.resume:
            try:
                _fault(0, "create")
                create(args.out, self.cfg, provenance(self.comm, self.engine, argv),
                       self.engine.outputs(self.cfg.request), overwrite=args.overwrite)
            except OSError as err:
                failure = os_refusal(err, os_message(
                    err, args.out, "creating", "nothing was written (no file, no temporary, "
                    "no lock left): fix it or choose another --out"))
        failure = self.comm.bcast(failure, root=0)
        if failure:
            raise failure

    def grow_file(self, argv, had):
        """Rank 0: rewrite the run file with ``cfg.realizations`` rows (`writer.grow`);
        returns the error for every rank, or None.  A fault leaves the file as it was."""
        from ..runfile.writer import LayoutMismatch, grow
        args, cfg = self.args, self.cfg
        when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        record = (f"{when}: {had} -> {cfg.realizations} realizations by "
                  f"{shlex.join([sys.executable, '-m', 'tlsmpi.run', *argv])} (tlsmpi "
                  f"{__version__}, {self.comm.size} rank(s))")
        try:
            check_space(args.out, cfg, self.engine, doing=f"growing to {cfg.realizations} "
                        "realizations (a new copy of the file)")
            _fault(0, "grow")
            grow(args.out, cfg, record, self.engine.outputs(cfg.request))
        except ConfigError as err:
            return err
        except LayoutMismatch as err:
            return ConfigError(f"--resume: cannot grow {args.out} ({err}); finish it with the "
                               "tlsmpi that started it, or start a run with all realizations")
        except OSError as err:
            return os_refusal(err, os_message(err, args.out, "growing",
                                              "the file is unchanged: fix it and resume again"))
        log.info(f"grew {args.out} from {had} to {cfg.realizations} realizations")
        return None

    def plan(self, repair):
        """The pending realizations and their work items: every part of every pending
        realization (one part unless the engine splits it), with predicted costs."""
        from ..runfile.writer import PENDING
        cfg, engine, cases = self.cfg, self.engine, self.cases
        status = costs = None
        if self.comm.rank == 0:
            if repair:
                log.warning(f"--repair: recomputing {len(repair)} damaged row(s)")
                self.file.mark_pending(repair)
            status = np.array([self.file.status(c) for c in range(len(cases))])
            costs = predicted_costs(engine, cfg, cases, self.times)
        status, costs = self.comm.bcast((status, costs), root=0)
        self.pending = [(int(c), int(r)) for c, r in zip(*np.nonzero(status == PENDING))]
        self.n_parts = np.array([engine.parts(p, cfg.request) for p in cases], dtype=int)
        self.items = [
            (f, p) for f, (c, r) in enumerate(self.pending) for p in range(self.n_parts[c])
        ]
        self.item_costs = np.array([costs[self.pending[f]] / self.n_parts[self.pending[f][0]]
                                    for f, _ in self.items])
        self.split = len(self.items) > len(self.pending)
        self.done_cost = float(costs[status != PENDING].sum())
        self.done_items = int(self.n_parts[np.nonzero(status != PENDING)[0]].sum())

    def make_groups(self):
        """Rank groups (`tlsmpi.parallel.plan_groups`): heavy items may get groups of up
        to a quarter of the ranks (never all of them: at a few ranks, running items side
        by side beats any parallel speed-up)."""
        from ..parallel import plan_groups
        comm, engine = self.comm, self.engine
        base = self.cfg.ranks_per_realization if engine.parallel else 1
        largest = max(base, comm.size // 4)
        allowed = tuple(base << k for k in range(comm.size.bit_length()) if base << k <= largest)
        sizes, self.widths = plan_groups(self.item_costs, comm.size,
                                         allowed if engine.parallel else (1,))
        color = int(np.searchsorted(np.cumsum(sizes), comm.rank, side="right"))
        self.group_comm = comm.Split(color, comm.rank)
        self.leader = self.group_comm.rank == 0
        parts = f" in {len(self.items)} parts" if self.split else ""
        log.info(f"tlsmpi {__version__}: {len(self.cases)} case(s) x {self.cfg.realizations} "
                 f"realizations, {len(self.times)} times, engine {self.cfg.engine}, {comm.size} "
                 f"rank(s) in {len(sizes)} group(s); {len(self.pending)} to compute{parts} "
                 f"-> {self.args.out}")
        if comm.rank == 0:
            warn_stop_margin(self.item_costs, self.widths)

    def work(self):
        """The item loop: take chunks from the queue until it is empty or a stop was
        agreed, compute, buffer rows, write at checkpoints.  Returns True if stopped."""
        from ..parallel import Collector, WorkQueue
        items, split, group_comm = self.items, self.split, self.group_comm
        stop = self.state.stop
        self.engine.should_stop = stop
        self.given_up = False              # this group gave an item up at a stop
        queue = WorkQueue(self.comm, self.item_costs, worker=self.leader, width=self.widths,
                          group_size=group_comm.size,
                          progress_seconds=self.cfg.section("output")["progress_seconds"],
                          done_cost=self.done_cost, done_items=self.done_items,
                          log_label="parts of realizations" if split else "realizations",
                          families=[f for f, _ in items] if split else None,
                          kinds=[self.pending[f][0] for f, _ in items] if split else "auto")
        # the parts of a realization are gathered on one rank, which writes its row
        self.collector = Collector(self.comm, [f for f, _ in items], [p for _, p in items],
                                   sorted(queue.group_sizes)) if split else None
        self.checkpoint = self.cfg.section("output")["checkpoint_seconds"]
        self.last_write = time.monotonic()
        completed = []
        while True:
            chunk = (queue.take(completed, stop=bool(stop.signal) or self.given_up)
                     if self.leader else None)
            if group_comm.size > 1:
                chunk = group_comm.bcast(chunk, root=0)
            if not chunk:
                break
            completed = self.compute_chunk(chunk, stop)
        stopped = queue.close()
        # a given-up item leaves the job incomplete, also where the queue saw no stop
        stopped = self.comm.allreduce(int(stopped or self.given_up)) > 0
        if self.collector is not None:
            done, incomplete = self.collector.finish()
            self.record_parts(done)
            for f in incomplete:
                c, r = self.pending[f]
                log.info(f"realization {r} of case {c}: not all its parts were computed before "
                         "the stop; it stays pending")
        if self.leader:
            write_rows(self.file, self.args.out)
        return stopped

    def compute_chunk(self, chunk, stop):
        """Compute the items of ``chunk`` (all ranks of the group) until a stop; returns
        [(item, wall seconds)] of those computed."""
        completed = []
        for k in chunk:
            halt = bool(stop.signal)
            if self.group_comm.size > 1:
                halt = self.group_comm.allreduce(halt)
            if halt:
                break
            f, part = self.items[k]
            c, r = self.pending[f]
            whole = self.n_parts[c] == 1
            outcome = run_item(
                self.engine, self.cases[c], self.cfg, self.times, r, self.group_comm,
                self.comm.rank, self.state, None if whole else part)
            if outcome is None:            # the whole group gave it up: not recorded
                self.given_up = True
                break
            real, results, error, wall = outcome
            completed.append((k, wall))
            if not self.leader:
                continue
            if whole:
                record(self.file, c, r, real, results, error, wall)
            else:
                self.collector.put(k, (results, error, wall))
                self.record_parts(self.collector.poll())
            if time.monotonic() - self.last_write > self.checkpoint:
                write_rows(self.file, self.args.out)
                self.last_write = time.monotonic()
        return completed

    def record_parts(self, done):
        """Buffer the rows of the realizations whose parts are all here."""
        for f, values in done:
            c, r = self.pending[f]
            record(self.file, c, r,
                   *combine_parts(self.engine, self.cases[c], self.cfg, self.times, r, values))

    def finish(self, stopped, held):
        """Close the file: resumable after a stop, else verified, with means and the
        summary; returns the exit status."""
        args, comm = self.args, self.comm
        if stopped:
            self.file.close()
            log.info("stopped by signal; the file is consistent. Resume with: "
                     f"{resume_command(args)}")
            return EXIT_STOPPED
        end = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with writing(args.out):
            complete, problems = self.file.finalize(end)
        self.file.close()
        if problems:
            from ..runfile.reader import DamagedRun
            raise RunFileError(f"{DamagedRun(args.out, [p for p in problems])}")
        if comm.rank == 0:
            from ..runfile.reader import Run, summary
            held.release()                     # the file is closed: readers need not wait
            print(summary(Run(args.out)), flush=True)
        return EXIT_OK if complete else EXIT_STOPPED


class RunFileError(RuntimeError):
    """The open run file could not be written on one rank (the message names the cause
    and the path): that rank aborts the job at once with status 4."""


RESUME = "no data on disk was lost: resume with --resume once it is fixed"


def write_rows(run, path):
    with writing(path):
        run.write_buffer()


@contextlib.contextmanager
def writing(path):
    """Around writes to the open run file ``path``: an OSError becomes RunFileError naming
    the errno's meaning, which MPI-IO does not pass on (Open MPI's OMPIO prints it on
    stderr: it is held and read, so that the error stays one line)."""
    with held_stderr() as said:
        try:
            yield
        except OSError as err:
            err = with_errno(err, said())
            raise RunFileError(os_message(err, path, "writing", RESUME)) from None


@contextlib.contextmanager
def held_stderr():
    """Hold what is printed on file descriptor 2 during the block (C libraries included)
    and yield a function that returns it; what was not read is passed on to stderr at
    the end (nothing is held where no temporary file can be made)."""
    try:
        held = tempfile.TemporaryFile()
    except OSError:
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(held.fileno(), 2)
    read = []

    def said():
        read.append(True)
        held.seek(0)
        return held.read().decode(errors="replace")

    try:
        yield said
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if not read:
            held.seek(0)
            os.write(2, held.read())
        held.close()


# --------------------------------------------------------------------------- entry point

def main(argv=None):
    """Run and return the exit status.  Any BaseException on any rank (an exception,
    KeyboardInterrupt, SystemExit, MemoryError) aborts the whole MPI job within seconds
    with one line naming the rank, so plain ``mpirun python -m tlsmpi.run`` never hangs.
    Before MPI starts, `tlsmpi.run.environment` answers --version and --check-install and
    refuses a launch that cannot work (no mpi4py, serial h5py under mpirun, ...)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    state = JobState(StopFlag())   # from the very start: a batch system's warning may come early
    words = split_solver_options(argv)[0]
    if wants_help(words):                  # on every rank, before MPI: only one prints
        if environment.launcher_rank(os.environ) == 0:
            parser().print_help()
        return EXIT_OK
    status = environment.preflight("--version" in words, "--check-install" in words)
    if status is not None:
        return status
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    setup_logging(comm.rank)
    try:
        return _main(comm, argv, state)
    except RunFileError as err:
        # HDF5 may crash when it closes a file whose write failed: leave at once
        return _abort(comm, state, EXIT_IO, f"tlsmpi: error: {err}", now=True)
    except BaseException as err:
        detail = traceback.format_exc()
        what = type(err).__name__ + (f": {err}" if str(err) else "")
        where = f" on {state.item}" if state.item else ""
        return _abort(comm, state, EXIT_CRASH, f"tlsmpi: rank {comm.rank} crashed{where} "
                      f"({what}); the whole job is stopped; no data already on disk is lost"
                      f"\n{detail}")


def _abort(comm, state, code, message, now=False):
    """Report, release this job's lock (the whole job ends now), abort every rank (with
    ``now``, a single process exits at once, without the interpreter's clean-up)."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    if state.lock_path and read_holder(state.lock_path) == state.lock_record:
        try:
            os.unlink(lock_path(state.lock_path))
        except OSError:
            pass
    if comm.size > 1:
        comm.Abort(code)
    if now:
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(comm, argv, state):
    _fault(comm.rank, "start")
    error = None
    try:
        args, cfg, solver = prepare(argv)
    except ConfigError as err:
        error = str(err)
    if comm.size > 1:                      # rank 0's verdict rules
        error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0:
            print(f"tlsmpi: error: {error}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    try:
        return execute(args, cfg, solver, comm, argv, state)
    except (ConfigError, OutputError) as err:  # raised on every rank alike: rank 0 says it
        if comm.rank == 0:
            print(f"tlsmpi: error: {err}", file=sys.stderr, flush=True)
        return EXIT_INPUT if isinstance(err, ConfigError) else EXIT_IO

