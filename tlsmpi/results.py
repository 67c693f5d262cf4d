"""Reading run files (public names; the reader lives in `tlsmpi.runfile.reader`).

    >>> from tlsmpi.results import Run
    >>> run = Run("default.h5")
"""
from .runfile.reader import Case, DamagedRun, NotARunFile, Run, summary

__all__ = ["Case", "DamagedRun", "NotARunFile", "Run", "summary"]
