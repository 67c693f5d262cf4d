"""Ensemble runner: ``mpirun -n P python -m tlsmpi.run [CONFIG.toml] [options]``.

Disorder realizations (for every case of the sweep) are dealt out cyclically to
groups of ``engine.ranks_per_realization`` ranks; realization r of every case is
drawn from ``default_rng([r, seed])``, so the results do not depend on the rank
count.  Ranks work in rounds of one realization per group; one non-blocking allreduce
per round (read a round later, see `Rounds`) shares the stop flag
(SIGUSR1/SIGTERM), the progress count and the checkpoint decision, so all ranks
stop, flush and close together without waiting on each other every round.

Exit status: 0 done; 2 bad input (nothing on disk touched); 3 stopped by a signal,
resume with ``--resume``; 1 crash (the whole job is aborted, see the log).
"""
import argparse
import datetime
import logging
import os
import signal
import socket
import sys
import tempfile
import time
import traceback

import numpy as np

from . import __version__
from . import config as configuration
from . import engines, environment
from .errors import ConfigError, SolverError
from .model import sample
from .output import LAYOUT_VERSION, PENDING, RunFile, h5py_module

EXIT_OK, EXIT_CRASH, EXIT_INPUT, EXIT_STOPPED = 0, 1, 2, 3
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

log = logging.getLogger("tlsmpi")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m tlsmpi.run", description=__doc__.split("\n\n")[0],
        epilog="Other options starting with '-' (e.g. -mfn_tol 1e-10, -log_view) go to "
               "PETSc/SLEPc when engine.name = 'liouvillian'.")
    p.add_argument("config", nargs="?", help="TOML run configuration (default: the small default job)")
    p.add_argument("--out", help="output HDF5 file (default: CONFIG stem + .h5, or default.h5)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a configuration value, e.g. --set model.N=20 (repeatable)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --out (same configuration)")
    p.add_argument("--version", action="store_true", help="print the tlsmpi version and exit")
    p.add_argument("--check-install", action="store_true",
                   help="print what is installed (MPI, parallel HDF5, PETSc) and exit: 0 if a "
                        "run can start, 1 if something is missing")
    return p.parse_known_args(argv)


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
    """Everything that can fail on bad input, before any file is touched: (args, config, extra)."""
    argv, solver = split_solver_options(argv)
    args, extra = parse_args(argv)
    extra += solver
    cfg = configuration.load(args.config, args.overrides)
    if extra and cfg.engine != "liouvillian":
        raise ConfigError(f"unknown option(s) {' '.join(extra)}: see python -m tlsmpi.run --help "
                          "(solver options are only for engine.name = 'liouvillian')")
    if args.out is None:
        stem = os.path.splitext(os.path.basename(args.config))[0] if args.config else "default"
        args.out = stem + ".h5"
    check_output(args, cfg)
    return args, cfg, extra


def check_output(args, cfg):
    out = args.out
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise ConfigError(f"--out {out}: directory {directory} does not exist; create it first")
    try:                                   # the real test (os.access is blind for root)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write in {directory} ({err.strerror}); "
                          "choose another --out") from None
    exists = os.path.exists(out)
    if exists and os.path.isdir(out):
        raise ConfigError(f"--out {out} is a directory: give a file name")
    if args.resume:
        if not exists:
            raise ConfigError(f"--resume: {out} does not exist; start the run without --resume")
        check_resumable(out, cfg)
    elif exists and not args.overwrite:
        raise ConfigError(f"{out} exists: pass --resume to continue it, --overwrite to replace "
                          "it, or choose another --out")


def check_resumable(path, cfg):
    """Refuse to resume a file of another configuration, seed or layout."""
    from .results import NotARunFile, Run
    try:
        run = Run(path)
    except (NotARunFile, OSError, KeyError) as err:
        raise ConfigError(f"--resume: {err}; start a new run with --overwrite or another --out") from None
    if run.attrs.get("seed") != cfg.seed:
        raise ConfigError(f"--resume: {path} was written with seed {run.attrs.get('seed')}, "
                          f"not {cfg.seed}; use the same seed or another --out")
    if run.config != cfg.to_toml():
        raise ConfigError(f"--resume: {path} was written with a different configuration; "
                          "resume with the same config and --set options, or use another --out")


def metadata(comm, engine):
    from mpi4py import MPI
    import mpi4py
    h5py = h5py_module()
    meta = {"tlsmpi_version": __version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": socket.gethostname(), "n_ranks": comm.size,
            "mpi_version": MPI.Get_library_version().replace("\0", "").splitlines()[0].strip(),
            "mpi4py_version": mpi4py.__version__, "h5py_version": h5py.version.version,
            "hdf5_version": h5py.version.hdf5_version, "numpy_version": np.__version__}
    meta.update(engine.versions())
    return meta


def setup_logging(rank):
    handler = logging.StreamHandler(sys.stdout if rank == 0 else sys.stderr)
    prefix = "" if rank == 0 else f"[rank {rank}] "
    handler.setFormatter(logging.Formatter(f"%(asctime)s tlsmpi {prefix}%(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    log.propagate = False


class StopFlag:
    """Set by SIGUSR1/SIGTERM; checked by all ranks together between rounds."""

    def __init__(self):
        self.signal = 0
        for s in STOP_SIGNALS:
            signal.signal(s, self._handler)

    def _handler(self, signum, frame):
        self.signal = signum


class Rounds:
    """The per-round agreement of all ranks: [stop signal, realizations written, flush due]
    summed by a non-blocking allreduce whose result is read one round later.  A rank
    only waits when another is more than a round behind, yet every rank takes the same
    decision (stop, flush) at the same round."""

    def __init__(self, comm):
        self.comm = comm
        self.request = None

    def exchange(self, flags):
        """Start this round's reduction; return the previous round's totals (or None)."""
        previous = self.finish()
        self.send = np.array(flags, dtype=np.int64)
        self.recv = np.empty_like(self.send)
        self.request = self.comm.Iallreduce(self.send, self.recv)
        return previous

    def finish(self):
        if self.request is None:
            return None
        self.request.Wait()
        self.request = None
        return self.recv


class Progress:
    def __init__(self, total, every):
        self.total, self.every = total, every
        self.start = self.last = time.monotonic()

    def report(self, done, force=False):
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(f"{done}/{self.total} realizations done, {rate:.3g}/s, ETA {eta:.0f} s")


def run_item(engine, params, cfg, times, r, group_comm):
    """Compute one realization; a SolverError or non-finite result is a failed realization."""
    t0 = time.perf_counter()
    real = sample(params, cfg.seed, r)
    try:
        results = engine.compute(real, times, cfg.request, group_comm)
        bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
        if bad:
            raise SolverError(f"non-finite values in {', '.join(bad)}")
    except SolverError as err:
        return real, None, str(err), time.perf_counter() - t0
    return real, results, None, time.perf_counter() - t0


def check_liouvillian_memory(engine, cases, rpr, comm):
    """Log the memory estimate and refuse (ConfigError on all ranks) what will not fit
    the node with the most ranks; rank 0's verdict rules."""
    from mpi4py import MPI
    on_node = comm.allreduce(comm.Split_type(MPI.COMM_TYPE_SHARED).size, op=MPI.MAX)
    error = None
    if comm.rank == 0:
        for N, flipflop in sorted({(p.N, bool(p.flipflop)) for p in cases}):
            log.info(engine.memory_report(N, rpr, on_node, flipflop=flipflop))
            try:
                engine.check_memory(N, rpr, ranks_on_node=on_node, flipflop=flipflop)
            except ConfigError as err:
                error = str(err)
                break
    error = comm.bcast(error, root=0)
    if error:
        raise ConfigError(error)


def resume_command(args):
    words = ["python -m tlsmpi.run", args.config or ""] + [f"--set {o}" for o in args.overrides]
    return " ".join(w for w in words + ["--out", args.out, "--resume"] if w)


def execute(args, cfg, comm, extra=()):
    """The main loop; returns the exit status."""
    engine = engines.get(cfg.engine)(cfg.engine_options)
    engine.init([sys.argv[0], *extra])
    rpr = cfg.ranks_per_realization
    if comm.size % rpr:
        raise ConfigError(f"engine.ranks_per_realization = {rpr} does not divide the {comm.size} "
                          "MPI ranks: launch a multiple of it")
    n_groups = comm.size // rpr
    group = comm.rank // rpr
    group_comm = comm.Split(group, comm.rank)
    cases, times = cfg.cases(), cfg.times
    if cfg.engine == "liouvillian":
        from . import liouvillian
        check_liouvillian_memory(liouvillian, cases, rpr, comm)

    if args.resume:
        run = RunFile.open(args.out, comm)
    else:
        run = RunFile.create(args.out, comm, cfg, metadata(comm, engine))
    pending = [(c, r) for c in range(len(cases)) for r, s in enumerate(run.status(c)) if s == PENDING]
    total = len(cases) * cfg.realizations
    done_before = total - len(pending)
    log.info(f"tlsmpi {__version__}: {len(cases)} case(s) x {cfg.realizations} realizations, "
             f"{len(times)} times, engine {cfg.engine}, {comm.size} rank(s) in {n_groups} group(s); "
             f"{len(pending)} to compute -> {args.out}")

    stop = StopFlag()
    rounds = Rounds(comm)
    progress = Progress(total, cfg.section("output")["progress_seconds"])
    checkpoint = cfg.section("output")["checkpoint_seconds"]
    last_flush = time.monotonic()
    mine = 0
    for start in range(0, len(pending), n_groups):
        k = start + group
        if k < len(pending):
            c, r = pending[k]
            try:
                real, results, error, wall = run_item(engine, cases[c], cfg, times, r, group_comm)
            except Exception:
                log.error(f"rank {comm.rank} crashed on {cases[c]!r} realization {r}:\n"
                          f"{traceback.format_exc()}")
                sys.stdout.flush(); sys.stderr.flush()
                comm.Abort(EXIT_CRASH)
            if group_comm.rank == 0:
                if error is None:
                    run.write_realization(c, r, results, real, wall)
                else:
                    log.warning(f"realization {r} of case {c} failed: {error}")
                    run.write_failure(c, r, error, wall)
                mine += 1
        flush_due = comm.rank == 0 and time.monotonic() - last_flush > checkpoint
        if flush_due:                      # rank 0 alone decides when to checkpoint
            last_flush = time.monotonic()
        totals = rounds.exchange([stop.signal, mine, flush_due])
        if totals is None:
            continue
        progress.report(done_before + int(totals[1]))
        if totals[2] or totals[0]:
            run.flush()
        if totals[0]:
            rounds.finish()
            run.close()
            log.info(f"stopped by signal after {done_before + int(totals[1])}/{total} "
                     f"realizations; the file is consistent. Resume with: {resume_command(args)}")
            return EXIT_STOPPED
    rounds.finish()
    complete = run.finalize()
    run.close()
    progress.report(total, force=True)
    if comm.rank == 0:
        from .results import Run, summary
        print(summary(Run(args.out)), flush=True)
    return EXIT_OK if complete else EXIT_STOPPED


def main(argv=None):
    """Run and return the exit status.  Any unexpected exception on any rank aborts the
    whole MPI job (no rank is left waiting in a collective), so plain
    ``mpirun python -m tlsmpi.run`` is safe without ``-m mpi4py``."""
    argv = sys.argv[1:] if argv is None else argv
    args, _ = parse_args(split_solver_options(argv)[0])
    status = environment.preflight(args.version, args.check_install)
    if status is not None:
        return status
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    setup_logging(comm.rank)
    try:
        return _main(comm, argv)
    except Exception:
        log.error(f"rank {comm.rank} crashed:\n{traceback.format_exc()}")
        if comm.size > 1:
            sys.stdout.flush(); sys.stderr.flush()
            comm.Abort(EXIT_CRASH)
        return EXIT_CRASH


def _main(comm, argv):
    error = None
    try:
        args, cfg, extra = prepare(argv)
    except ConfigError as err:
        error = str(err)
    if comm.size > 1:                      # rank 0's verdict on shared paths rules
        error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0:
            print(f"tlsmpi: error: {error}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    try:
        return execute(args, cfg, comm, extra)
    except ConfigError as err:
        if comm.rank == 0:
            print(f"tlsmpi: error: {err}", file=sys.stderr, flush=True)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
