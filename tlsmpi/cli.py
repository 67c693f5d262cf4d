"""Command-line conventions shared by ``tlsmpi.run``, ``tlsmpi.post`` and ``post check``.

Every usage error is one line and exit status 2 (never argparse's usage block, never a
traceback, also under mpirun), and every operating-system error names the path and the
errno's meaning in one line (`tlsmpi.errors.os_message`, `tlsmpi.errors.os_status`;
docs/reliability.md, "Operating-system errors").
"""
import argparse


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
