"""Command-line conventions shared by ``tlsmpi.run``, ``tlsmpi.post`` and ``post check``.

Every usage error is one line and exit status 2 (never argparse's usage block, never a
traceback, also under mpirun), and every operating-system error names the path and the
errno's meaning in one line (`os_message`), with exit status 2 for a path that is missing
or of the wrong kind and 4 for any other refusal of the system (`os_status`;
docs/reliability.md, "Operating-system errors").
"""
import argparse
import errno
import os


class UsageError(Exception):
    """A bad command line (the message is one line); exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise ``error_type`` (one line, naming
    ``--help``) instead of printing the usage block and exiting."""

    def __init__(self, *args, error_type=UsageError, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.error_type = error_type

    def error(self, message):
        raise self.error_type(f"{message}; see {self.prog} --help")


def wants_help(words):
    """True if the command line asks for help (answered before anything else starts)."""
    return any(w in ("-h", "--help") for w in words)


#: errnos that say the named path is missing or of the wrong kind (a file where a directory
#: belongs or the reverse): bad input, exit status 2.  Any other errno is the operating
#: system refusing the operation (read-only filesystem, permission, disk full, quota, file
#: too large, a device error): exit status 4 (`EXIT_IO`).
PATH_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)
EXIT_INPUT, EXIT_IO = 2, 4


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
