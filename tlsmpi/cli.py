"""Command-line conventions shared by ``tlsmpi.run``, ``tlsmpi.post`` and ``post check``.

Every usage error is one line and exit status 2 (never argparse's usage block, never a
traceback, also under mpirun), and every operating-system error names the path and the
errno's meaning in one line (docs/reliability.md lists the exit status of each).
"""
import argparse
import errno


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


def os_message(err, path, doing):
    """'DOING PATH failed: MEANING' for an OSError ``err`` (EROFS, EACCES, ENOSPC, EDQUOT,
    EISDIR, EFBIG, ...); the errno's name is added so that the line can be searched."""
    meaning = err.strerror or str(err)
    name = errno.errorcode.get(err.errno, "")
    where = err.filename if isinstance(err.filename, str) and err.filename != str(path) else None
    return (f"{doing} {path} failed: {meaning}" + (f" [{name}]" if name else "")
            + (f" (at {where})" if where else ""))
