"""The provenance attributes of a run file: tlsmpi, its commit, the command, the host
and the versions of MPI, HDF5, numpy and the engine's libraries (docs/output.md)."""
import datetime
import os
import shlex
import socket
import subprocess
import sys

import numpy as np

from .. import __version__

#: The directory holding the tlsmpi package (tlsmpi/run/provenance.py, three levels up):
#: a checkout's root when tlsmpi runs from one (tests/test_output.py checks the commit).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def provenance(comm, engine, argv, command=None):
    """Root attributes: who made the file, with what, from which command (``command``:
    the text of a call that is not ``python -m tlsmpi.run argv``).  With the serial
    communicator (`tlsmpi.runfile.writer.SERIAL`) the MPI versions are empty."""
    from ..runfile.writer import SERIAL, h5py_module
    h5py = h5py_module()
    mpi = {"mpi_version": "", "mpi4py_version": ""}
    if comm is not SERIAL:
        from mpi4py import MPI
        import mpi4py
        mpi = {"mpi_version": MPI.Get_library_version().replace("\0", "").splitlines()[0].strip(),
               "mpi4py_version": mpi4py.__version__}
    return {"tlsmpi_version": __version__, "git_commit": git_commit(),
            "command_line": command or shlex.join([sys.executable, "-m", "tlsmpi.run", *argv]),
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": socket.gethostname(), "n_ranks": comm.size,
            **mpi, "h5py_version": h5py.version.version,
            "hdf5_version": h5py.version.hdf5_version, "numpy_version": np.__version__,
            "python_version": sys.version.split()[0], **engine.versions()}


def git_commit():
    """The commit of the tlsmpi checkout this code runs from ('' if not a checkout),
    with '-dirty' when it has uncommitted changes."""
    here = CHECKOUT
    if not os.path.exists(os.path.join(here, ".git")):
        return ""
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty and commit else "")
