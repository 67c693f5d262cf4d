"""Exceptions shared by the layers, and the exit status of every command (the one place
they are defined; docs/reliability.md explains each)."""

#: ``python -m tlsmpi.run``: 0 done, 1 crash, 2 bad input or refused, 3 stopped (resume
#: with --resume), 4 I/O error.  ``python -m tlsmpi.post``: 0 ok, 1 a damaged run file,
#: 2 bad input; ``post check`` adds 3, incomplete and resumable.  ``--check-install``:
#: 1 something missing.
EXIT_OK = 0
EXIT_CRASH = EXIT_DAMAGED = EXIT_MISSING = 1
EXIT_INPUT = 2
EXIT_STOPPED = EXIT_RESUMABLE = 3
EXIT_IO = 4


class ConfigError(ValueError):
    """Bad user input: the message names the value and the fix; the runner exits with 2."""


class SolverError(RuntimeError):
    """A numerical solve failed for one realization (e.g. SLEPc MFN not converged, or
    non-finite numbers).  The runner records the realization as failed and goes on."""
