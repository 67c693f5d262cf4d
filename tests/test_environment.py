"""Launch checks (tlsmpi.run.environment and the first lines of tlsmpi.run.main): --version,
--check-install, a missing mpi4py, a launcher whose size MPI does not see, serial h5py
under mpirun.  Every refusal is one line on stderr, exit 2, and nothing written."""
import os
import subprocess
import sys

import pytest

from tlsmpi import __version__
from tlsmpi.run import environment

from conftest import ROOT, mpi_env, run_tlsmpi


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, (4, "OMPI_COMM_WORLD_SIZE")),
    ({"PMI_SIZE": "8", "PMI_RANK": "3"}, (8, "PMI_SIZE")),
    ({"SLURM_NTASKS": "64", "SLURM_JOB_ID": "1"}, None),            # batch script, plain python
    ({"SLURM_NTASKS": "64", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "64"},
     (64, "SLURM_STEP_NUM_TASKS")),                                    # inside srun
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1", "OMPI_COMM_WORLD_SIZE": "4"},
     (4, "OMPI_COMM_WORLD_SIZE")),                                     # mpirun in srun --pty bash
])
def test_launcher_size_reads_what_identifies_the_launch(environ, expected):
    assert environment.launcher_size(environ) == expected


def test_launch_problems():
    assert environment.launch_problem(4, {"OMPI_COMM_WORLD_SIZE": "4"}, True) is None
    assert environment.launch_problem(1, {}, False) is None
    mismatch = environment.launch_problem(1, {"OMPI_COMM_WORLD_SIZE": "4"}, False, "MPICH 4.1")
    assert "started 4 processes" in mismatch and "MPICH 4.1" in mismatch
    assert environment.launch_problem(1, {"OMPI_COMM_WORLD_SIZE": "4",
                                          "TLSMPI_LAUNCH_CHECK": "0"}, False) is None
    assert "serial build" in environment.launch_problem(2, {"PMI_SIZE": "2"}, False)


def _one_line_exit_2(res):
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("tlsmpi: error: ") and res.stderr.count("\n") == 1, res.stderr


def test_version_needs_no_mpi():
    res = run_tlsmpi(["--version"])
    assert res.returncode == 0 and res.stdout == f"tlsmpi {__version__}\n"


def test_check_install_says_what_was_found():
    res = run_tlsmpi(["--check-install"])
    have_mpi = environment._version_of("mpi4py")[1] is None
    assert res.returncode == (0 if have_mpi else 1), res.stdout + res.stderr
    for name in ("tlsmpi", "Python", "numpy", "h5py", "HDF5", "mpi4py", "PETSc", "matplotlib"):
        assert name in res.stdout
    assert ("parallel (MPI) build" in res.stdout) or ("serial build" in res.stdout)


def test_without_mpi4py_run_exits_2_with_one_line(tmp_path):
    code = ("import sys; sys.modules['mpi4py'] = None; from tlsmpi.run import main; "
            "sys.exit(main(['--out', 'x.h5']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=mpi_env(), cwd=tmp_path, timeout=60)
    _one_line_exit_2(res)
    assert "pip install 'tlsmpi[mpi]'" in res.stderr and not list(tmp_path.iterdir())


@pytest.mark.needs_mpi
def test_launcher_size_mismatch_is_refused_before_writing(tmp_path):
    env = dict(mpi_env(), OMPI_COMM_WORLD_SIZE="4")
    res = subprocess.run([sys.executable, "-m", "tlsmpi.run", "--out", "x.h5"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    _one_line_exit_2(res)
    assert "OMPI_COMM_WORLD_SIZE=4" in res.stderr and not list(tmp_path.iterdir())


FAKE_H5PY = '''
class _Config:
    mpi = False


def get_config():
    return _Config()
'''


@pytest.mark.needs_mpirun
def test_serial_h5py_under_mpirun_is_refused(tmp_path):
    fake = tmp_path / "fake"
    (fake / "h5py").mkdir(parents=True)
    (fake / "h5py" / "__init__.py").write_text(FAKE_H5PY)
    env = mpi_env()
    env["PYTHONPATH"] = os.pathsep.join([str(fake), ROOT, env["PYTHONPATH"]])
    res = subprocess.run(["mpirun", "-n", "2", sys.executable, "-m", "tlsmpi.run", "--out", "x.h5"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    assert res.returncode == 2, res.stdout + res.stderr
    ours = [line for line in res.stderr.splitlines() if line.startswith("tlsmpi")]  # not mpirun's
    assert len(ours) == 1 and "h5py is a serial build" in ours[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake"]
