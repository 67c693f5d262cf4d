"""Is a run file complete, resumable or damaged?  For job scripts and people.

    python -m tlsmpi.post check FILE...          one line per file, exit status below
    python -m tlsmpi.post unlock FILE [--force]  clear a stale lock (its holder is gone)

Exit status of ``check`` (the worst over the files): 0 complete and intact; 3
incomplete but resumable (stopped, killed, or being written by a running job); 1
damaged (the line says which rows and why: ``--resume --repair`` recomputes them);
2 not a run file or bad input; 4 the operating system refused to read it (permission,
device error: the file is untouched, fix the access and check again).  Job scripts
decide to resubmit from this status, not from mpirun's: Open MPI 4.1's mpirun returns 1
when it forwards SIGTERM, even if every rank stopped cleanly with status 3.

Exit status of ``unlock``: 0 removed (or not locked); 2 the holder is alive or cannot be
checked, or bad input; 4 the system refused to remove the lock (read-only filesystem,
permission): the lock and the run file are untouched.  Every error is one line on stderr
(`tlsmpi.errors.os_message` for operating-system errors).
"""
import os
import sys

import numpy as np

from ..runfile import lock
from ..cli import Parser, UsageError
from ..errors import (EXIT_DAMAGED, EXIT_INPUT, EXIT_IO, EXIT_OK, EXIT_RESUMABLE, os_message,
                      os_status)

_SEVERITY = {EXIT_OK: 0, EXIT_RESUMABLE: 1, EXIT_DAMAGED: 2, EXIT_INPUT: 3, EXIT_IO: 4}


def check(path):
    """(exit status, one line) for the run file ``path`` (EXIT_IO: an error line)."""
    from ..runfile.reader import NotARunFile, Run
    if not os.path.isfile(path):
        return EXIT_INPUT, f"{path}: no such file"
    try:
        run = Run(path, verify=False)
    except NotARunFile as err:
        return EXIT_INPUT, str(err)
    except (OSError, KeyError, ValueError) as err:
        if isinstance(err, OSError) and err.errno:  # the system refused to read it
            return os_status(err), os_message(err, path, "reading", "the file is untouched")
        return EXIT_DAMAGED, f"{path}: DAMAGED: the file's structure cannot be read ({err})"
    done, total = run.n_done, run.n_total
    if run.problems:
        shown = "; ".join(f"{c} realization {r} {d}: {why}" for c, r, d, why in run.problems[:3])
        more = f" (and {len(run.problems) - 3} more)" if len(run.problems) > 3 else ""
        return EXIT_DAMAGED, (f"{path}: DAMAGED: {len(run.problems)} row(s): {shown}{more}; "
                              "recompute them with python -m tlsmpi.run ... --resume --repair")
    if run.writer:
        return EXIT_RESUMABLE, f"{path}: being written by {run.writer}, {done}/{total} done"
    stale = ""
    if run.stale_lock and lock.provably_stale(path, lock.read_holder(path)):
        stale = f"; its stale lock ({run.stale_lock}) is taken over by the next run on this host"
    elif run.stale_lock:
        stale = (f"; it has a stale lock ({run.stale_lock}) that a run does not take over: if "
                 f"no job writes it, clear it with python -m tlsmpi.post unlock {path} (--force "
                 "for a holder on another host) before resuming")
    if not run.complete or any(c.n_pending for c in run.cases):
        return EXIT_RESUMABLE, (f"{path}: incomplete, {done}/{total} done (stopped or killed); "
                                f"resume with python -m tlsmpi.run ... --resume{stale}")
    for case in run.cases:
        for obs in case.observables:
            mean, _ = case.mean_sem(obs)
            stored = case.stored_means.get(obs)
            if stored is not None and not _same(stored, mean):
                return EXIT_DAMAGED, (f"{path}: DAMAGED: {case.name}/{obs}_mean differs from the "
                                      "mean of its verified rows")
    failed = sum(c.n_failed for c in run.cases)
    return EXIT_OK, (
        f"{path}: complete, {done}/{total} realizations"
        + (f" ({failed} failed, excluded from the means)" if failed else "")
        + stale
    )


def _same(stored, mean):
    """Stored and recomputed means agree to the rounding of a sum of n terms (the same
    formula on another machine may sum in another order)."""
    tol = 64 * np.finfo(float).eps * np.nanmax(np.abs(mean), initial=1.0)
    both_nan = np.isnan(stored) & np.isnan(mean)
    return bool(np.all(both_nan | (np.abs(stored - mean) <= tol)))


def main(argv):
    p = Parser(prog="python -m tlsmpi.post", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="verify run files; exit 0 complete, 3 resumable, "
                       "1 damaged, 2 not a run file")
    c.add_argument("files", nargs="+")
    u = sub.add_parser("unlock", help="clear the stale lock of a run file")
    u.add_argument("file")
    u.add_argument(
        "--force",
        action="store_true",
        help="also when the holder cannot be checked (another host): be sure no job runs",
    )
    try:
        args = p.parse_args(argv)
    except UsageError as err:
        print(f"tlsmpi-post: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except SystemExit as err:                    # --help
        return EXIT_INPUT if err.code else EXIT_OK
    if args.command == "unlock":
        try:
            holder = lock.break_lock(args.file, force=args.force)
        except lock.LockError as err:
            print(f"tlsmpi-post: error: {err}", file=sys.stderr)
            return EXIT_INPUT
        except OSError as err:
            print("tlsmpi-post: error: " + os_message(err, lock.lock_path(args.file), "removing",
                  "the lock and the run file are untouched"), file=sys.stderr)
            return os_status(err)
        print(f"{args.file}: " + (f"removed the stale lock of {lock.describe(holder)}"
                                  if holder else "not locked"))
        return EXIT_OK
    worst = EXIT_OK
    for path in args.files:
        code, line = check(path)
        if code == EXIT_IO:
            print(f"tlsmpi-post: error: {line}", file=sys.stderr, flush=True)
        else:
            print(line, flush=True)
        worst = max(worst, code, key=_SEVERITY.get)
    return worst
