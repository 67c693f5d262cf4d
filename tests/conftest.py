"""Shared test helpers: launching the runner serially or under mpirun, and the markers
that skip (with a reason, never silently) what this installation cannot run.

Markers (put ``pytestmark = pytest.mark.needs_...`` at the top of a module):

``needs_mpi``
    imports mpi4py or starts ``python -m tlsmpi.run`` (which needs it).
``needs_mpirun``
    starts ``mpirun``: needs the executable and mpi4py.  The ``mpi`` marker (runs
    mpirun with several ranks) implies it, and so does ``run_tlsmpi(..., ranks > 1)``.
``needs_petsc``
    imports petsc4py and slepc4py.  A test whose name contains ``liouvillian`` runs
    Engine 2 and gets this marker automatically.

A pip install without the ``[mpi]`` and ``[liouvillian]`` extras runs the rest.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # tests import dense, conftest
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _missing(*modules):
    """The first of ``modules`` that cannot be imported here, or None."""
    return next((m for m in modules if importlib.util.find_spec(m) is None), None)


def skip_reasons():
    """{marker name: reason to skip its tests here, or None when they can run}."""
    mpi = _missing("mpi4py")
    petsc = _missing("petsc4py", "slepc4py")
    return {
        "needs_mpi": mpi and "mpi4py is not installed (pip install 'tlsmpi[mpi]')",
        "needs_mpirun": (mpi and "mpi4py is not installed (pip install 'tlsmpi[mpi]')")
        or (shutil.which("mpirun") is None and "no mpirun on PATH"),
        "needs_petsc": petsc and f"{petsc} is not installed (pip install 'tlsmpi[liouvillian]')",
    }


def pytest_collection_modifyitems(config, items):
    reasons = skip_reasons()
    for item in items:
        if "liouvillian" in item.name:
            item.add_marker(pytest.mark.needs_petsc)
        if item.get_closest_marker("mpi"):
            item.add_marker(pytest.mark.needs_mpirun)
        for name, reason in reasons.items():
            if reason and item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=f"{name}: {reason}"))


def mpi_env():
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_tlsmpi(args, ranks=1, timeout=300, cwd=None, module="tlsmpi.run", env=None):
    """Run ``python -m MODULE ARGS`` (under mpirun when ranks > 1; the calling test is
    skipped, with the reason, when this installation cannot start mpirun, or the runner
    cannot start for want of mpi4py), with the variables ``env`` added to `mpi_env`."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    needs = "needs_mpirun" if ranks > 1 else ("needs_mpi" if module == "tlsmpi.run" else None)
    reason = needs and skip_reasons()[needs]
    if reason:
        pytest.skip(f"{needs}: {reason}")
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(mpi_env(), **(env or {})), cwd=cwd or ROOT)
