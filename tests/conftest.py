"""Shared test helpers: launching the runner serially or under mpirun."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # tests import dense, conftest
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mpi_env():
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_tlsmpi(args, ranks=1, timeout=300, cwd=None, module="tlsmpi.run"):
    """Run ``python -m MODULE ARGS`` (under mpirun when ranks > 1)."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(),
                          cwd=cwd or ROOT)

