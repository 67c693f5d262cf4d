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
import logging
import os
import sys
import traceback

from .. import engines
from ..cli import wants_help
from ..errors import EXIT_CRASH, EXIT_INPUT, EXIT_IO, EXIT_OK, ConfigError
from ..runfile.lock import LockError
from . import environment
from .command_line import parser, prepare, split_solver_options
from .output import OutputError, RunFileError, claim_output
from .resources import check_resources
from .signals import JobState, StopFlag, abort, inject_fault
from .steps import Job

log = logging.getLogger("tlsmpi")


def setup_logging(rank):
    handler = logging.StreamHandler(sys.stdout if rank == 0 else sys.stderr)
    prefix = "" if rank == 0 else f"[rank {rank}] "
    handler.setFormatter(logging.Formatter(f"%(asctime)s tlsmpi {prefix}%(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    log.propagate = False


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
        return abort(comm, state, EXIT_IO, f"tlsmpi: error: {err}", now=True)
    except BaseException as err:
        detail = traceback.format_exc()
        what = type(err).__name__ + (f": {err}" if str(err) else "")
        where = f" on {state.item}" if state.item else ""
        return abort(comm, state, EXIT_CRASH, f"tlsmpi: rank {comm.rank} crashed{where} "
                      f"({what}); the whole job is stopped; no data already on disk is lost"
                      f"\n{detail}")


def _main(comm, argv, state):
    inject_fault(comm.rank, "start")
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
