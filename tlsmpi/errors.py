"""Exceptions shared by the engines and the runner."""


class ConfigError(ValueError):
    """Bad user input: the message names the value and the fix; the runner exits with 2."""


class SolverError(RuntimeError):
    """A numerical solve failed for one realization (e.g. SLEPc MFN not converged, or
    non-finite numbers).  The runner records the realization as failed and goes on."""
