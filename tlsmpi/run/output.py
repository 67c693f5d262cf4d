"""The run file as the job touches it: the lock and the checks of --out before it is
written (`claim_output`, `check_directory`, `check_resumable`), and the errors of
writing to it (`writing`: exit status 4 with one line, docs/reliability.md)."""
import contextlib
import errno
import logging
import os
import sys
import tempfile

from .. import config as configuration
from ..errors import (EXIT_INPUT, ConfigError, os_meaning, os_message, os_status,
                      with_errno)
from ..runfile.lock import RunLock, lock_path

log = logging.getLogger("tlsmpi")

def claim_output(args, cfg):
    """Rank 0: take the run's lock, then check what --out holds.  Returns the lock and
    the damaged rows to recompute (--repair) and the realization count of a file to grow
    (None if it does not grow); raises ConfigError, LockError or OutputError."""
    out = args.out
    try:
        held = RunLock(out).acquire()
    except OSError as err:
        raise os_refusal(err, os_message(err, lock_path(out), "--out: making the lock",
                                         untouched(args.resume))) from None
    try:
        if held.taken_over:
            log.warning(f"took over the lock of {out} from {held.taken_over}")
        exists = os.path.exists(out)
        repair, had = [], None
        if args.resume:
            if not exists:
                raise ConfigError(f"--resume: {out} does not exist; start the run without --resume")
            repair, had = check_resumable(out, cfg, args.repair)
        elif exists and not args.overwrite:
            raise ConfigError(f"{out} exists: pass --resume to continue it, --overwrite to replace "
                              "it, or choose another --out")
        return held, repair, had
    except BaseException:
        held.release()
        raise


def check_directory(out, resume=False):
    """--out names a file in an existing directory where this process can write a byte
    (ConfigError, or OutputError for what the system refuses: `os_refusal`)."""
    directory = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise ConfigError(f"--out {out}: {os_meaning(OSError(errno.EISDIR, ''))}; give a file name")
    if not os.path.isdir(directory):
        raise ConfigError(f"--out {out}: directory {directory} does not exist; create it first")
    try:                                   # the real test (os.access is blind for root); a
        with tempfile.TemporaryFile(dir=directory) as probe:   # byte needs a block (ENOSPC,
            probe.write(b"x")                                   # EDQUOT), an empty file not
            probe.flush()
    except OSError as err:
        raise os_refusal(err, f"--out {out}: cannot write in {directory} "
                         f"({os_meaning(err, err.filename)}); {untouched(resume)}") from None


def untouched(resume):
    """What to do after an error before the run file was written."""
    return ("the file is unchanged: resume with --resume once it is fixed" if resume else
            "nothing was written: fix it or choose another --out")


class OutputError(RuntimeError):
    """The system refused a file operation on --out, its directory or lock before the run
    file was open, on every rank alike: one line and exit status 4 (no abort needed)."""


def os_refusal(err, message):
    """The exception for ``message`` about the OSError ``err``: ConfigError (status 2) for
    a path that is missing or of the wrong kind, else OutputError (4)
    (`tlsmpi.errors.os_status`)."""
    return ConfigError(message) if os_status(err) == EXIT_INPUT else OutputError(message)


def check_resumable(path, cfg, repair):
    """Refuse to resume a file of another configuration, seed or layout, or with damaged
    rows (unless ``repair``); return the damaged rows [(case, index)] to recompute and,
    when only ``ensemble.realizations`` grew, the file's realization count (else None)."""
    from ..runfile.writer import LAYOUT_VERSION
    from ..runfile.reader import DamagedRun, NotARunFile, Run
    try:
        run = Run(path, verify=False)
    except (NotARunFile, OSError, KeyError) as err:
        if isinstance(err, OSError) and err.errno:   # the system refused to read it
            raise os_refusal(err, os_message(err, path, "--resume: reading",
                                             untouched(True))) from None
        raise ConfigError(
            f"--resume: {err}; start a new run with --overwrite or another --out"
        ) from None
    if run.layout != LAYOUT_VERSION:
        raise ConfigError(f"--resume: {path} has layout {run.layout}, this tlsmpi writes layout "
                          f"{LAYOUT_VERSION}; finish it with the tlsmpi that started it or start "
                          "anew")
    if run.attrs.get("seed") != cfg.seed:
        raise ConfigError(f"--resume: {path} was written with seed {run.attrs.get('seed')}, "
                          f"not {cfg.seed}; use the same seed or another --out")
    check_same_code(path, run.attrs)
    had = len(run.cases[0].status)
    known = configuration.defaults(cfg.engine)    # keys added since the file was written
    keys = configuration.differing_keys(run.config, cfg.to_toml(), known)
    grows = keys == ["ensemble.realizations"]
    if grows and cfg.realizations < had:
        raise ConfigError(f"--resume: {path} holds {had} realizations, more than "
                          f"ensemble.realizations = {cfg.realizations}; a run grows but never "
                          f"shrinks: resume with ensemble.realizations >= {had}")
    if keys and not grows:
        raise ConfigError(f"--resume: {path} was written with another configuration "
                          f"({configuration.differences(run.config, cfg.to_toml(), defaults=known)}"
                          "); resume with "
                          "the same config and --set options (only ensemble.realizations may "
                          "grow), or use another --out")
    if run.problems and not repair:
        raise ConfigError(f"--resume: {DamagedRun(path, run.problems)}")
    names = [c.name for c in run.cases]
    return sorted({(names.index(c), r) for c, r, _, _ in run.problems}), had if grows else None


def check_same_code(path, attrs):
    """Refuse to resume (or grow) a run file with other code than the one that wrote it:
    the file records one tlsmpi version and commit (docs/output.md), so its rows must
    all come from them.  Without a commit (not a checkout) the versions are compared; a
    commit with uncommitted changes ("-dirty") cannot be told from another such state."""
    from .provenance import git_commit
    from .. import __version__
    theirs = (str(attrs.get("tlsmpi_version", "")), str(attrs.get("git_commit", "")))
    ours = (__version__, git_commit())
    same = theirs[1] == ours[1] if theirs[1] and ours[1] else theirs[0] == ours[0]
    if not same:
        def code(v):
            return f"tlsmpi {v[0]}" + (f" at commit {v[1]}" if v[1] else "")
        checkout = (f" (e.g. git worktree add ../tlsmpi-{theirs[1][:12]} "
                    f"{theirs[1].removesuffix('-dirty')}, and run from there)"
                    if theirs[1] else "")
        raise ConfigError(f"--resume: {path} was written by {code(theirs)}, this is "
                          f"{code(ours)}: its rows would come from two codes; finish it with "
                          f"the code that started it{checkout}, or start anew with another "
                          "--out")


class RunFileError(RuntimeError):
    """The open run file could not be written on one rank (the message names the cause
    and the path): that rank aborts the job at once with status 4."""


RESUME = "no data on disk was lost: resume with --resume once it is fixed"


def write_rows(run, path):
    with writing(path):
        run.write_buffer()


@contextlib.contextmanager
def writing(path):
    """Around writes to the open run file ``path``: an OSError becomes RunFileError naming
    the errno's meaning, which MPI-IO does not pass on (Open MPI's OMPIO prints it on
    stderr: it is held and read, so that the error stays one line)."""
    with held_stderr() as said:
        try:
            yield
        except OSError as err:
            err = with_errno(err, said())
            raise RunFileError(os_message(err, path, "writing", RESUME)) from None


@contextlib.contextmanager
def held_stderr():
    """Hold what is printed on file descriptor 2 during the block (C libraries included)
    and yield a function that returns it; what was not read is passed on to stderr at
    the end (nothing is held where no temporary file can be made)."""
    try:
        held = tempfile.TemporaryFile()
    except OSError:
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(held.fileno(), 2)
    read = []

    def said():
        read.append(True)
        held.seek(0)
        return held.read().decode(errors="replace")

    try:
        yield said
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if not read:
            held.seek(0)
            os.write(2, held.read())
        held.close()
