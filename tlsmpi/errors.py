"""Exceptions shared by the layers, the exit status of every command (the one place
they are defined; docs/reliability.md explains each), and the one-line messages and exit
statuses of operating-system errors (`os_message`, `os_status`)."""
import errno
import os

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


#: errnos that say the named path is missing or of the wrong kind (a file where a directory
#: belongs or the reverse): bad input, exit status 2.  Any other errno is the operating
#: system refusing the operation (read-only filesystem, permission, disk full, quota, file
#: too large, a device error): exit status 4 (`EXIT_IO`).
PATH_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)


def os_status(err):
    """The exit status of the OSError ``err``: 2 (a path error) or 4 (an I/O error)."""
    return EXIT_INPUT if err.errno in PATH_ERRNOS else EXIT_IO


def os_message(err, path, doing, then=""):
    """'DOING PATH failed: MEANING [ENAME] (at WHERE); THEN' for the OSError ``err``, one
    line (`os_meaning`); THEN says what to do."""
    return f"{doing} {path} failed: {os_meaning(err, path)}" + (f"; {then}" if then else "")


def os_meaning(err, path=None):
    """'MEANING [ENAME] (at WHERE)': the errno's meaning (EROFS, EACCES, ENOSPC, EDQUOT,
    EISDIR, EFBIG, ...), not the library's text around it (HDF5's spans lines), with the
    errno's name, so that the line can be searched, and the file the error names when it
    is not ``path``."""
    meaning = os.strerror(err.errno) if err.errno else " ".join(str(err.strerror or err).split())
    name = errno.errorcode.get(err.errno, "")
    where = err.filename if isinstance(err.filename, str) and err.filename != str(path) else None
    return meaning + (f" [{name}]" if name else "") + (f" (at {where})" if where else "")


def with_errno(err, *texts):
    """``err``, or when it has no errno (HDF5 and MPI-IO report the system's words, not its
    number) an OSError with the errno whose words occur in its message or in ``texts``
    (the longest match); ``err`` itself if none do."""
    if err.errno:
        return err
    said = " ".join(map(str, (err, *texts)))
    found = [e for e in errno.errorcode if os.strerror(e) in said]
    if not found:
        return err
    code = max(found, key=lambda e: len(os.strerror(e)))
    return OSError(code, os.strerror(code), err.filename)
