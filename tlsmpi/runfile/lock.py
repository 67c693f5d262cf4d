"""One writer per run file: a lock file ``FILE.lock`` held for the whole job.

The lock file is created with ``O_CREAT | O_EXCL`` (atomic on local and network
filesystems) and records who holds it: host, boot id, pid, the process's start time,
batch job id and wall-clock time.  Where the filesystem supports it, an ``fcntl`` lock
is also taken on it, which the kernel drops when the holder dies.

A lock is *provably stale* when its holder was on this host and is gone: the host was
rebooted since (another boot id), no process has its pid, or the process with its pid
started at another time (the pid was reused) or has exited (a zombie); and nobody holds
its ``fcntl`` lock.  A run takes such a lock over and logs the old holder.  Any
other lock is refused with the holder's name: a live holder, or one on another host
(whose liveness cannot be seen from here: ``python -m tlsmpi.post unlock FILE --force``
clears it).  The one exception is a job that finds its own batch job id in the lock
(SLURM and PBS keep the id when a job is requeued): the earlier incarnation of the same
job is gone by construction, and the takeover is logged.
"""
import errno
import fcntl
import json
import os
import socket
import time

#: Environment variables that name the batch job (first one set wins).
JOB_ID_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")


class LockError(RuntimeError):
    """The run file is locked by another job (or by a stale lock); the message says which."""


def lock_path(path):
    return str(path) + ".lock"


def job_id():
    for name in JOB_ID_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return ""


def read_holder(path):
    """The holder record of ``path``'s lock (a dict), or None if it is not locked."""
    try:
        with open(lock_path(path)) as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        return {"unreadable": err.strerror}
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {"unreadable": "not a lock record"}
    except ValueError:
        return {"unreadable": "not a lock record (being written?)"}


def _stat(pid):
    """Fields 3 onwards of /proc/PID/stat (state first), or None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()       # after the name, which may hold spaces


def process_start(pid):
    """Start time of process ``pid`` in clock ticks since boot (/proc/PID/stat field
    22), or None where /proc cannot tell."""
    fields = _stat(pid)
    return None if fields is None else int(fields[22 - 3])


def exited(pid):
    """True if ``pid`` has exited and waits to be reaped (a zombie: e.g. a rank killed with
    SIGKILL in a container whose init does not reap); it holds no locks any more."""
    fields = _stat(pid)
    return fields is not None and fields[0] in ("Z", "X")


def boot_id():
    """This boot's id ('' where the kernel does not say)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def describe(holder):
    """'host:pid (job J) since T' for messages."""
    if holder is None:
        return "nobody"
    if "unreadable" in holder:
        return f"an unreadable lock ({holder['unreadable']})"
    job = f", job {holder['job']}" if holder.get("job") else ""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("time", 0)))
    return f"{holder.get('host', '?')}:{holder.get('pid', '?')}{job}, since {since}"


def held_here(holder):
    """True if ``holder`` is this very process."""
    return (
        bool(holder)
        and holder.get("host") == socket.gethostname()
        and holder.get("pid") == os.getpid()
    )


def holder_alive(path, holder):
    """True if the holder still runs, False if it is certainly gone, None if unknown
    (another host, and no fcntl lock to ask).  A holder on this host is alive while a
    process with its pid and start time exists (also on a filesystem without fcntl)."""
    if held_here(holder):
        return True                              # this process (an fcntl probe would drop it)
    try:
        fd = os.open(lock_path(path), os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        fd = None
    if fd is not None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EAGAIN):
                return True                      # the kernel says someone holds it
        else:
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    here = _here(holder)
    if here is not None:
        return here
    return False if holder and holder.get("fcntl") else None  # it held an fcntl lock, free now


def _here(holder):
    """Liveness of a holder on this host from its pid and start time (None: not this
    host, or a record without a pid)."""
    if (
        not holder
        or holder.get("host") != socket.gethostname()
        or not isinstance(holder.get("pid"), int)
    ):
        return None
    if holder.get("boot") and boot_id() and holder["boot"] != boot_id():
        return False                             # recorded before this host's last boot
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if exited(holder["pid"]):
        return False
    start = process_start(holder["pid"])
    if holder.get("start") is not None and start is not None:
        return start == holder["start"]          # another start time: the pid was reused
    return True


def provably_stale(path, holder):
    """True if ``holder`` was on this host and is gone (pid, start time, boot id) and
    nobody holds the fcntl lock: the only locks `RunLock` takes over without a job id."""
    return _here(holder) is False and holder_alive(path, holder) is False


def status(path):
    """(holder, alive) of ``path``'s lock; holder None if there is none."""
    holder = read_holder(path)
    return holder, (holder_alive(path, holder) if holder is not None else False)


class RunLock:
    """The lock of one run file, held from `acquire` to `release`.

    Parameters
    ----------
    path : str
        The run file (the lock is ``path + '.lock'``).
    """

    def __init__(self, path):
        self.path = str(path)
        self.fd = self.record = None
        self.taken_over = None

    def acquire(self):
        """Take the lock, or raise LockError naming the holder and what to do, or the
        OSError (with the lock's path) of a lock the system will not let it make.

        A provably stale lock (`provably_stale`) and a lock with this batch job's id are
        taken over; ``taken_over`` then says whose and why."""
        name = lock_path(self.path)
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder, alive = status(self.path)
            mine = job_id()
            if mine and holder and holder.get("job") == mine and holder.get("pid") != os.getpid():
                # our own job, requeued: the old one is gone
                why = "an earlier run of this batch job"
            elif provably_stale(self.path, holder):
                why = "a run on this host that is gone"
            else:
                why = None
            if why:
                self._remove(holder)
                self.taken_over = f"{why}: {describe(holder)}"
                return self.acquire()
            if alive:
                raise LockError(f"{self.path} is being written by {describe(holder)}: one job "
                                "per run file; wait for it, or choose another --out") from None
            state = (
                "whose holder is gone"
                if alive is False
                else "whose holder cannot be checked from here"
            )
            raise LockError(f"{self.path} has a stale lock ({describe(holder)}) {state}; if no job "
                            f"is writing it, clear the lock with: python -m tlsmpi.post unlock "
                            f"{self.path}") from None
        except OSError as err:
            raise OSError(err.errno, err.strerror, name) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except OSError:
            locked = False                           # filesystem without fcntl locks
        record = {"host": socket.gethostname(), "boot": boot_id(), "pid": os.getpid(),
                  "start": process_start(os.getpid()), "job": job_id(), "time": time.time(),
                  "fcntl": locked}
        try:
            os.write(fd, json.dumps(record).encode())
            os.fsync(fd)
        except OSError as err:
            os.close(fd)
            os.unlink(name)
            raise OSError(err.errno, err.strerror, name) from None
        self.fd, self.record = fd, record
        return self

    def _remove(self, holder):
        """Unlink the lock of ``holder``, under its fcntl lock, and only if the file still
        holds that record: two jobs taking over one stale lock cannot remove each
        other's new lock."""
        name = lock_path(self.path)
        try:
            fd = os.open(name, os.O_RDWR)
        except FileNotFoundError:
            return                                   # gone already: acquire creates it anew
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EACCES, errno.EAGAIN):
                    raise LockError(f"{self.path}: another job is taking over its lock") from None
            if read_holder(self.path) != holder:
                raise LockError(f"{self.path}: its lock changed while it was being taken over "
                                f"(now {describe(read_holder(self.path))}); try again")
            os.unlink(name)
        finally:
            os.close(fd)

    def release(self):
        """Remove the lock (idempotent; safe on every exit path)."""
        if self.fd is None:
            return
        try:
            os.unlink(lock_path(self.path))
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def break_lock(path, force=False):
    """Remove a stale lock of ``path``; refuse if its holder is alive (or unknown, unless
    ``force``).  Returns the removed holder record (None if there was no lock)."""
    holder, alive = status(path)
    if holder is None:
        return None
    if alive or (alive is None and not force):
        why = (
            "is alive"
            if alive
            else "cannot be checked from this host (add --force if you are sure)"
        )
        raise LockError(f"{path} is locked by {describe(holder)}, which {why}")
    os.unlink(lock_path(path))
    return holder
