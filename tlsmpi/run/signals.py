"""Stopping and aborting the job: the stop signals (`StopFlag`), the state the crash
handler needs (`JobState`), `abort` (one line, the lock released, every rank ended) and
the fault injection of the tests (`inject_fault`, TLSMPI_FAULT; docs/reliability.md)."""
import os
import signal
import sys

from ..errors import SolverError
from ..runfile.lock import lock_path, read_holder

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
#: Fault injection for the tests: "KIND:RANK:WHERE" (RANK and WHERE may be *); does nothing
#: unless set.  WHERE is a realization index (* = any), "create" (rank 0 creating the file),
#: "grow" (rank 0 growing it) or "start" (right after MPI start-up, before the configuration
#: is read).
#: KIND: exception, keyboard, exit, memory, solver, stop (SIGUSR1 to self), or fsize (a
#: 100 kB file-size limit from here on: writes fail with EFBIG, as a quota would).
FAULT_VARIABLE = "TLSMPI_FAULT"


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


def inject_fault(rank, where):
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
    ``lock_record``: released by `abort`)."""

    def __init__(self, stop):
        self.stop = stop
        self.item = None
        self.lock_path = self.lock_record = None


def abort(comm, state, code, message, now=False):
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
