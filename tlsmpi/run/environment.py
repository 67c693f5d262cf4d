"""The installation and the launch: what ``python -m tlsmpi.run`` checks before it starts.

Nothing here belongs to the paper; this module answers the questions a cluster user
has before a run writes anything:

* is mpi4py installed, and does its MPI agree with the launcher (``mpirun -n 4`` with an
  mpi4py built against another MPI starts four singleton jobs that would all write the
  same file)?
* is h5py a parallel (MPI) build when the run has more than one rank?
* what was found (``python -m tlsmpi.run --check-install``; ``--version``)?

mpi4py, petsc4py and slepc4py are imported inside functions only, so the analysis side of
tlsmpi installs and imports on a login node without MPI (see docs/install.md).
"""
import os
import platform
import sys

from .. import __version__
from ..errors import EXIT_INPUT, EXIT_MISSING, EXIT_OK
from ..runfile.writer import h5py_module


#: Variables that a launcher sets in every process it starts, with the number of
#: processes it started.  They identify the launch, unlike SLURM_NTASKS, which is set
#: in the whole batch script, also for a plain ``python`` line.
LAUNCHER_SIZE = ("OMPI_COMM_WORLD_SIZE",     # Open MPI mpirun/mpiexec/prterun
                 "PMI_SIZE",                 # MPICH/Intel MPI hydra, srun --mpi=pmi2
                 "MV2_COMM_WORLD_SIZE",      # MVAPICH2 mpirun_rsh
                 "PMIX_SIZE")                # some PMIx launchers
#: The launcher's own rank of this process, to print a refusal once, not once per process.
LAUNCHER_RANK = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK",
                 "SLURM_PROCID")

INSTALL_HINT = {
    "mpi4py": "pip install 'tlsmpi[mpi]' (builds mpi4py with the mpicc on PATH; see "
              "docs/install.md)",
    "h5py": "pip install h5py, or a parallel build for MPI runs (see docs/install.md)",
    "numpy": "pip install numpy",
    "scipy": "pip install scipy",
    "threadpoolctl": "pip install threadpoolctl (Debian: python3-threadpoolctl)",
}


def launcher_size(environ):
    """The number of processes the launcher started, from its environment.

    Parameters
    ----------
    environ : mapping
        The process environment (``os.environ``).

    Returns
    -------
    (int, str) or None
        The size and the variable it was read from; None when no launcher variable is
        set (a plain ``python`` line).  ``SLURM_STEP_NUM_TASKS`` counts only inside a
        job step (``srun``), which sets ``SLURM_STEP_ID``; an MPI launcher's own
        variables come first, because ``mpirun`` inside an ``srun --pty bash`` step
        inherits the step's variables.
    """
    names = list(LAUNCHER_SIZE)
    if "SLURM_STEP_ID" in environ:
        names.append("SLURM_STEP_NUM_TASKS")
    for name in names:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value), name
    return None


def launcher_rank(environ):
    """This process's rank according to the launcher (0 when there is none)."""
    for name in LAUNCHER_RANK:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def launch_problem(mpi_size, environ, h5py_parallel, mpi_library=""):
    """Why this launch must not start, in one line, or None when it may.

    Parameters
    ----------
    mpi_size : int
        ``MPI.COMM_WORLD.size`` as mpi4py sees it.
    environ : mapping
        The process environment.
    h5py_parallel : bool
        Whether h5py is an MPI build (``h5py.get_config().mpi``).
    mpi_library : str
        mpi4py's MPI library, named in the message.

    Returns
    -------
    str or None
    """
    launched = launcher_size(environ)
    if environ.get("TLSMPI_LAUNCH_CHECK", "1") != "0" and launched and launched[0] != mpi_size:
        n, name = launched
        return (f"the launcher started {n} processes ({name}={n}) but MPI sees {mpi_size}: "
                f"mpi4py is built against another MPI ({mpi_library or 'unknown'}) than the "
                "launcher's; rebuild mpi4py with this MPI's mpicc or launch with mpi4py's MPI "
                "(python -m tlsmpi.run --check-install; TLSMPI_LAUNCH_CHECK=0 skips this check)")
    if mpi_size > 1 and not h5py_parallel:
        return (f"{mpi_size} MPI ranks but h5py is a serial build: install a parallel h5py "
                "(CC=mpicc HDF5_MPI=ON pip install --no-binary=h5py h5py, conda-forge "
                "h5py=*=mpi_*, or Debian's python3-h5py-mpi; see docs/install.md), or run on "
                "one rank")
    return None


def mpi_library(MPI):
    """The MPI library's name and version (its version string up to the first comma)."""
    return MPI.Get_library_version().replace("\0", "").strip().splitlines()[0].split(",")[0].strip()


def preflight(show_version=False, check_install=False, environ=None):
    """What ``python -m tlsmpi.run`` does before MPI work starts.

    Parameters
    ----------
    show_version : bool
        Print ``tlsmpi X.Y.Z`` and stop.
    check_install : bool
        Print `report` and stop.
    environ : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    int or None
        An exit status when the command ends here (0 after ``--version``, 0 or 1 after
        ``--check-install``, 2 for a launch that must not start, with one line on
        stderr); None when the run may go on.
    """
    environ = os.environ if environ is None else environ
    first = launcher_rank(environ) == 0        # under mpirun, only the first process prints
    if show_version:
        if first:
            print(f"tlsmpi {__version__}")
        return EXIT_OK
    if check_install:
        lines, ok = report()
        if first:
            print("\n".join(lines))
        return EXIT_OK if ok else EXIT_MISSING
    try:
        from mpi4py import MPI
    except ImportError as err:
        why = (
            "is not installed"
            if getattr(err, "name", None) == "mpi4py"
            else f"does not load ({err})"
        )
        print(f"tlsmpi: error: python -m tlsmpi.run needs mpi4py, which {why}: "
              f"{INSTALL_HINT['mpi4py']}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    problem = launch_problem(MPI.COMM_WORLD.size, environ,
                             bool(h5py_module().get_config().mpi), mpi_library(MPI))
    if problem is None:
        return None
    if MPI.COMM_WORLD.rank == 0 and launcher_rank(environ) == 0:
        print(f"tlsmpi: error: {problem}", file=sys.stderr, flush=True)
    return EXIT_INPUT


def _version_of(module, attribute="__version__"):
    """Import ``module``; return (version or None, error text or None)."""
    try:
        mod = __import__(module)
    except ImportError as err:
        return None, str(err)
    return getattr(mod, attribute, "?"), None


def report():
    """What is installed, one line per component, for ``--check-install``.

    Returns
    -------
    lines : list of str
    ok : bool
        False when something ``python -m tlsmpi.run`` needs (numpy, scipy, threadpoolctl,
        h5py, mpi4py) is missing.
    """
    lines = [f"tlsmpi      {__version__} ({os.path.dirname(os.path.abspath(__file__))})",
             f"Python      {platform.python_version()} ({sys.executable})"]
    ok = True
    for name in ("numpy", "scipy", "threadpoolctl"):
        version, error = _version_of(name)
        lines.append(f"{name:<11} {version or 'MISSING: ' + INSTALL_HINT[name]}")
        ok &= error is None
    try:
        h5py = h5py_module()
        parallel = "parallel (MPI) build" if h5py.get_config().mpi else \
            "serial build: one rank only (docs/install.md builds a parallel one)"
        lines.append(f"h5py        {h5py.version.version}, {parallel}")
        lines.append(f"HDF5        {h5py.version.hdf5_version}")
    except ImportError:
        lines.append(f"h5py        MISSING: {INSTALL_HINT['h5py']}")
        ok = False
    try:
        import mpi4py
        from mpi4py import MPI
        vendor, (major, minor, micro) = MPI.get_vendor()
        lines.append(f"mpi4py      {mpi4py.__version__}, MPI standard "
                     f"{'.'.join(map(str, MPI.Get_version()))}")
        lines.append(f"MPI         {vendor} {major}.{minor}.{micro} ({mpi_library(MPI)})")
    except ImportError as err:
        lines.append(f"mpi4py      MISSING ({err}): needed by python -m tlsmpi.run; "
                     f"{INSTALL_HINT['mpi4py']}")
        ok = False
    lines.append(_petsc_line())
    version, error = _version_of("matplotlib")
    lines.append(
        "matplotlib  "
        f"{version or 'MISSING (figures of python -m tlsmpi.post): pip install matplotlib'}"
    )
    lines.append("all that python -m tlsmpi.run needs is here" if ok else
                 "python -m tlsmpi.run cannot start: install what is MISSING above")
    return lines, ok


def _petsc_line():
    """PETSc and SLEPc versions and scalar type, or why the Liouvillian engine is off."""
    try:
        from petsc4py import PETSc
        from slepc4py import SLEPc
    except ImportError as err:
        return (f"PETSc/SLEPc not available ({err}): only engine.name = 'liouvillian' needs "
                "them; pip install 'tlsmpi[liouvillian]'")
    import numpy as np
    scalar = np.dtype(PETSc.ScalarType)
    kind = "real scalars" if scalar.kind == "f" else \
        "COMPLEX scalars: the Liouvillian engine needs a real-scalar PETSc"
    petsc = ".".join(map(str, PETSc.Sys.getVersion()))
    slepc = ".".join(map(str, SLEPc.Sys.getVersion()))
    return f"PETSc       {petsc}, {kind} ({scalar.name}); SLEPc {slepc}"
