"""tlsmpi: quantum dynamics of interacting two-level systems in glasses, on MPI clusters.

Following Artiaco, Balducci & Scardicchio, "Signatures of Many-Body Localization in
the Dynamics of Two-Level Systems in Glasses".  See README.md and docs/.

From Python: ``tlsmpi.simulate`` (a run in this process, `tlsmpi.api`) and
``tlsmpi.open_run`` (a run file as one xarray Dataset), imported on first use.
"""
__version__ = "0.1.0"
__all__ = ["open_run", "simulate"]


def __getattr__(name):
    """``simulate`` and ``open_run`` of `tlsmpi.api`, imported when first asked for (so
    that ``import tlsmpi`` stays light and imports no engine)."""
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'tlsmpi' has no attribute {name!r}")
