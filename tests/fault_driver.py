"""Test driver: the runner with a fault injected into one realization.

    mpirun -n 2 python tests/fault_driver.py KIND INDEX -- RUNNER ARGS

KIND = crash raises RuntimeError, KIND = solver raises SolverError, in the
computation of realization INDEX (every case); everything else is the real runner.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlsmpi import exact, run                       # noqa: E402
from tlsmpi.errors import SolverError               # noqa: E402

kind, index = sys.argv[1], int(sys.argv[2])
args = sys.argv[sys.argv.index("--") + 1:]
original = exact.compute


def faulty(real, times, request, comm=None):
    if real.index == index:
        raise (RuntimeError if kind == "crash" else SolverError)(f"injected {kind} fault")
    return original(real, times, request, comm)


exact.compute = faulty
sys.exit(run.main(args))
