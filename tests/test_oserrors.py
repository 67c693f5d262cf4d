"""Operating-system errors (issue 19): every one is one line on stderr naming the path and
the errno's meaning, with its documented exit status (docs/reliability.md, "Operating-system
errors"), no traceback, and no file on disk lost.

A read-only place for root needs a read-only mount (file modes do not stop root): these
tests mount a tmpfs, write into it and remount it read-only; they skip, with the reason,
where mounting is not permitted.  Permission errors (EACCES) run the command as user
nobody; file-size limits (EFBIG) come from RLIMIT_FSIZE with SIGXFSZ ignored (set in the
child before it starts; the MPI runner sets it itself after MPI starts, TLSMPI_FAULT=fsize,
because Open MPI's start-up makes files larger than any useful limit)."""
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import pytest

from tlsmpi.runfile import lock

from conftest import ROOT, mpi_env, run_tlsmpi
from runfiles import agree

pytestmark = pytest.mark.needs_mpi   # the run files are made by python -m tlsmpi.run

TINY = ["--set", "model.N=4", "--set", "ensemble.realizations=2", "--set", "time.n_times=5"]
# rows of the second case lie beyond 100 kB, where TLSMPI_FAULT=fsize makes writes fail
WIDE = ["--set", "model.N=4", "--set", "ensemble.realizations=40", "--set", "time.n_times=100"]


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def tree(directory):
    """{name: sha256} of every file under ``directory``."""
    return {os.path.relpath(os.path.join(d, f), directory): digest(os.path.join(d, f))
            for d, _, files in os.walk(directory) for f in files}


def rows(path):
    """{case: (status, concurrence rows)} of a run file."""
    with h5py.File(path, "r") as f:
        return {k: (f[k]["status"][...], f[k]["concurrence"][...])
                for k in f if k.startswith("case_")}


def one_error(res, status, *words):
    """Exit ``status``, exactly one line on stderr (tlsmpi's error line, holding ``words``),
    no traceback."""
    lines = res.stderr.splitlines()
    assert res.returncode == status, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("tlsmpi") and ": error: " in lines[0], res.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def post(args, **kwargs):
    return run_tlsmpi(args, module="tlsmpi.post", **kwargs)


def limited(args, size, module="tlsmpi.post", env=None):
    """``python -m MODULE ARGS`` with a file-size limit of ``size`` bytes (EFBIG)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=dict(mpi_env(), **(env or {})),
                          preexec_fn=limit)


def as_nobody(args, env):
    """``python -m tlsmpi.post ARGS`` as user nobody: file modes apply (EACCES)."""
    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return subprocess.run([sys.executable, "-m", "tlsmpi.post", *map(str, args)], text=True,
                          capture_output=True, timeout=300, cwd=ROOT, preexec_fn=drop,
                          env=dict(mpi_env(), **env))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A complete run file, a run stopped after a few realizations (rows beyond 100 kB
    still pending) and the complete run of the same configuration."""
    d = tmp_path_factory.mktemp("made")
    res = run_tlsmpi(["--out", d / "run.h5", *TINY])
    assert res.returncode == 0, res.stderr
    res = run_tlsmpi(["--out", d / "stopped.h5", *WIDE], env={"TLSMPI_FAULT": "stop:0:3"})
    assert res.returncode == 3, res.stderr
    res = run_tlsmpi(["--out", d / "reference.h5", *WIDE])
    assert res.returncode == 0, res.stderr
    return d


def mount_tmpfs(where, size="4m"):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs (CI and the dev machines run as root)")
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", where],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"mount -t tmpfs is not permitted here ({res.stderr.strip()})")


@pytest.fixture()
def readonly(tmp_path, made):
    """A read-only tmpfs holding run.h5, a second copy locked.h5 with a provably stale lock
    (this host, a pid that is gone), and a directory figs/ with nothing in it."""
    mnt = tmp_path / "ro"
    mount_tmpfs(mnt)
    try:
        shutil.copy(made / "run.h5", mnt / "run.h5")
        shutil.copy(made / "run.h5", mnt / "locked.h5")
        gone = subprocess.Popen(["true"])
        gone.wait()
        record = {"host": socket.gethostname(), "boot": lock.boot_id(), "pid": gone.pid,
                  "start": None, "job": "", "time": 0.0, "fcntl": False}
        (mnt / "locked.h5.lock").write_text(json.dumps(record))
        (mnt / "figs").mkdir()
        res = subprocess.run(["mount", "-o", "remount,ro", mnt], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        yield mnt
    finally:
        subprocess.run(["umount", mnt])


@pytest.fixture()
def full(tmp_path, made):
    """A 1 MiB tmpfs holding run.h5, filled to the last byte (ENOSPC)."""
    mnt = tmp_path / "full"
    mount_tmpfs(mnt, "1m")
    try:
        shutil.copy(made / "run.h5", mnt / "run.h5")
        with open(mnt / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", mnt])


# -- read-only filesystem (EROFS) ----------------------------------------------------------

def test_post_all_outdir_on_readonly_fs(readonly):
    before = tree(readonly)
    res = post(["all", readonly / "run.h5", "--outdir", readonly / "new", "--boot", 5])
    one_error(res, 4, readonly / "new", "Read-only file system [EROFS]", "no figure was written")
    res = post(["fig2", "--outdir", readonly / "figs"])
    one_error(res, 4, readonly / "figs" / "fig2.png", "Read-only file system [EROFS]")
    assert tree(readonly) == before


def test_post_check_and_summary_on_readonly_fs_need_no_writing(readonly):
    res = post(["check", readonly / "run.h5", readonly / "locked.h5"])
    assert res.returncode == 0 and res.stderr == "", res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{readonly / 'run.h5'}: complete, 4/4 realizations"
    assert "stale lock" in lines[1] and len(lines) == 2
    res = post([readonly / "run.h5", "--boot", 5])
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_post_unlock_on_readonly_fs(readonly):
    """The stale lock is found and may be removed, but the filesystem refuses: exit 4,
    one line, the lock and the run file untouched."""
    before = tree(readonly)
    res = post(["unlock", readonly / "locked.h5"])
    one_error(res, 4, f"removing {readonly / 'locked.h5.lock'} failed: Read-only file system "
              "[EROFS]", "untouched")
    assert tree(readonly) == before


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.mpi)])
def test_run_out_on_readonly_fs(readonly, ranks):
    before = tree(readonly)
    res = run_tlsmpi(["--out", readonly / "new.h5", *TINY], ranks=ranks)
    if ranks == 1:
        one_error(res, 4, f"--out {readonly / 'new.h5'}: cannot write in {readonly}",
                  "Read-only file system [EROFS]", "nothing was written")
    else:                                  # mpirun adds its banner: one line from tlsmpi
        assert res.returncode == 4, res.stderr
        assert [line for line in res.stderr.splitlines() if line.startswith("tlsmpi")] == [
            f"tlsmpi: error: --out {readonly / 'new.h5'}: cannot write in {readonly} (Read-only "
            "file system [EROFS]); nothing was written: fix it or choose another --out"]
        assert "Traceback" not in res.stderr
    assert tree(readonly) == before


def test_run_resume_on_readonly_fs(readonly):
    before = tree(readonly)
    res = run_tlsmpi(["--out", readonly / "run.h5", "--resume", *TINY])
    one_error(res, 4, "Read-only file system [EROFS]",
              "the file is unchanged: resume with --resume once it is fixed")
    assert tree(readonly) == before


# -- full filesystem (ENOSPC) ---------------------------------------------------------------

def test_run_resume_and_post_on_a_full_fs(full):
    """--resume passes no size check (the file exists): the probe byte meets ENOSPC before
    the lock is made; post cannot write a figure.  Exit 4, nothing changed."""
    before = tree(full)
    res = run_tlsmpi(["--out", full / "run.h5", "--resume", *TINY])
    one_error(res, 4, "No space left on device [ENOSPC]", "the file is unchanged")
    res = post(["fig2", "--outdir", full])
    one_error(res, 4, f"writing {full / 'fig2.png'} failed: No space left on device [ENOSPC]")
    assert tree(full) == before


# -- file too large (EFBIG) -----------------------------------------------------------------

def test_post_all_figure_too_large_keeps_the_earlier_figure(made, tmp_path):
    """A figure write that fails leaves the figure of the earlier call, not a truncated one,
    and no temporary file."""
    figs = tmp_path / "figs"
    res = post(["fig2", "--outdir", figs])
    assert res.returncode == 0, res.stderr
    before, run_before = tree(figs), digest(made / "run.h5")
    assert os.path.getsize(figs / "fig2.png") > 20_000        # the limit below cuts it
    res = limited(["all", made / "run.h5", "--outdir", figs, "--boot", 5], 20_000)
    one_error(res, 4, f"writing {figs / 'fig2.png'} failed: File too large [EFBIG]")
    assert tree(figs) == before and digest(made / "run.h5") == run_before


def test_run_rows_too_large_lose_nothing(made, tmp_path):
    """Writing rows beyond a 100 kB file-size limit (set by rank 0 after MPI starts) fails:
    exit 4, one line with the errno's meaning (which MPI-IO gives only on stderr), the rows
    on disk stay valid, and --resume completes the file as an uninterrupted run."""
    out = tmp_path / "run.h5"
    shutil.copy(made / "stopped.h5", out)
    stopped = rows(out)
    res = run_tlsmpi(["--out", out, "--resume", *WIDE], env={"TLSMPI_FAULT": "fsize:0:*"})
    one_error(res, 4, f"writing {out} failed: File too large [EFBIG]",
              "no data on disk was lost: resume with --resume")
    after, reference = rows(out), rows(made / "reference.h5")
    for case, (status, values) in stopped.items():
        done = status == 1
        assert np.array_equal(after[case][1][done], values[done])    # still there, bit for bit
        now = after[case][0] == 1
        assert agree(after[case][1][now], reference[case][1][now])
    assert any((after[c][0] == 0).any() for c in after)               # the limit did bite
    res = post(["check", out])
    assert res.returncode == 3, res.stdout + res.stderr
    res = run_tlsmpi(["--out", out, "--resume", *WIDE])
    assert res.returncode == 0, res.stderr
    assert all(agree(rows(out)[c][1], reference[c][1]) for c in reference)


# -- a directory where a file belongs, and the reverse (EISDIR, ENOTDIR) --------------------

def test_out_is_a_directory_and_outdir_is_a_file(made, tmp_path):
    (tmp_path / "d").mkdir()
    before = tree(tmp_path)
    res = run_tlsmpi(["--out", tmp_path / "d", *TINY])
    one_error(res, 2, f"--out {tmp_path / 'd'}: Is a directory [EISDIR]")
    res = post(["all", made / "run.h5", "--outdir", made / "run.h5", "--boot", 5])
    one_error(res, 2, f"--outdir {made / 'run.h5'} is a file (Not a directory [ENOTDIR])")
    res = post(["summary", tmp_path / "d"])
    one_error(res, 2, f"{tmp_path / 'd'}: not a readable HDF5 file")
    assert tree(tmp_path) == before


# -- permission (EACCES) --------------------------------------------------------------------

@pytest.fixture()
def nobody_dir(made):
    """A directory user nobody can reach: an unreadable run file, a read-only directory."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as user nobody")
    d = tempfile.mkdtemp(prefix="tlsmpi-oserr-")
    try:
        os.chmod(d, 0o755)
        shutil.copy(made / "run.h5", os.path.join(d, "secret.h5"))
        os.chmod(os.path.join(d, "secret.h5"), 0o600)
        for name, mode in (("closed", 0o555), ("mpl", 0o777)):      # mpl: matplotlib's cache
            os.mkdir(os.path.join(d, name))
            os.chmod(os.path.join(d, name), mode)
        yield d
    finally:
        shutil.rmtree(d)


def test_permission_denied_is_one_line(nobody_dir):
    d = nobody_dir
    env = {"MPLCONFIGDIR": os.path.join(d, "mpl")}
    secret = digest(os.path.join(d, "secret.h5"))
    for args in (["summary"], ["check"]):
        res = as_nobody([*args, os.path.join(d, "secret.h5")], env)
        one_error(res, 4, f"reading {os.path.join(d, 'secret.h5')} failed: Permission denied "
                  "[EACCES]")
    res = as_nobody(["fig2", "--outdir", os.path.join(d, "closed")], env)
    one_error(res, 4, f"writing {os.path.join(d, 'closed', 'fig2.png')} failed: Permission "
              "denied [EACCES]")
    assert digest(os.path.join(d, "secret.h5")) == secret
    assert os.listdir(os.path.join(d, "closed")) == []
