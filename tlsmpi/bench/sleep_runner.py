"""The real runner with the synthetic ``sleep`` engine registered (for ``bench schedule``).

    mpirun -n P python -m tlsmpi.bench.sleep_runner CONFIG --set engine.name=sleep ...
"""
import sys

from . import schedule  # noqa: F401  (registers the "sleep" engine)
from .. import run

if __name__ == "__main__":
    sys.exit(run.main())
