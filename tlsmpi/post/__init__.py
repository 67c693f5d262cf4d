"""Post-processing without MPI: ``python -m tlsmpi.post`` (`commands`), the pooled
analyses (`analysis`), the figures (`figures`), the flip-flop comparison (`flipflop`)
and ``post check`` (`check`)."""
from .commands import main

__all__ = ["main"]
