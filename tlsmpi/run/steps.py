"""The job after validation and locking, as named steps (`Job`): create or grow the run
file, plan the pending items, form rank groups, the item loop, and the finish."""
import datetime
import logging
import shlex
import sys
import time

import numpy as np

from .. import __version__
from ..errors import EXIT_OK, EXIT_STOPPED, ConfigError, os_message, with_errno
from .command_line import resume_command
from .items import combine_parts, predicted_costs, record, run_item, warn_stop_margin
from .output import RESUME, RunFileError, os_refusal, write_rows, writing
from .provenance import provenance
from .resources import check_space
from .signals import inject_fault

log = logging.getLogger("tlsmpi")

class Job:
    """One job after validation and locking, as named steps: `create_file`, `plan`,
    `make_groups`, `work` (the item loop) and `finish`.  Rank 0 reads and decides; the
    other ranks follow its broadcasts.  An exception in any step aborts the whole job
    (`main`): no collective clean-up happens here."""

    def __init__(self, args, cfg, engine, comm, state):
        self.args, self.cfg, self.engine, self.comm, self.state = args, cfg, engine, comm, state
        self.cases, self.times = cfg.cases(), cfg.times

    def run(self, argv, held, repair, had=None):
        """All steps (``had``: the realization count of a file to grow, rank 0); returns
        the exit status."""
        from ..runfile.writer import RunFile
        self.create_file(argv, had)
        try:                               # collective: every rank gets the same error
            self.file = RunFile(self.args.out, self.comm)
        except OSError as err:
            raise os_refusal(err, os_message(with_errno(err), self.args.out, "opening",
                                             RESUME)) from None
        self.plan(repair)
        self.make_groups()
        stopped = self.work()
        return self.finish(stopped, held)

    def create_file(self, argv, had=None):
        """Rank 0 creates the run file (not on --resume), or grows it from ``had``
        realizations; OutputError or ConfigError on every rank if that fails."""
        from ..runfile.writer import create
        args, failure = self.args, None
        if self.comm.rank == 0 and had is not None and had < self.cfg.realizations:
            failure = self.grow_file(argv, had)
        elif self.comm.rank == 0 and not args.resume:
            try:
                inject_fault(0, "create")
                create(args.out, self.cfg, provenance(self.comm, self.engine, argv),
                       self.engine.outputs(self.cfg.request), overwrite=args.overwrite)
            except OSError as err:
                failure = os_refusal(err, os_message(
                    err, args.out, "creating", "nothing was written (no file, no temporary, "
                    "no lock left): fix it or choose another --out"))
        failure = self.comm.bcast(failure, root=0)
        if failure:
            raise failure

    def grow_file(self, argv, had):
        """Rank 0: rewrite the run file with ``cfg.realizations`` rows (`writer.grow`);
        returns the error for every rank, or None.  A fault leaves the file as it was."""
        from ..runfile.writer import LayoutMismatch, grow
        args, cfg = self.args, self.cfg
        when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        record = (f"{when}: {had} -> {cfg.realizations} realizations by "
                  f"{shlex.join([sys.executable, '-m', 'tlsmpi.run', *argv])} (tlsmpi "
                  f"{__version__}, {self.comm.size} rank(s))")
        try:
            check_space(args.out, cfg, self.engine, doing=f"growing to {cfg.realizations} "
                        "realizations (a new copy of the file)")
            inject_fault(0, "grow")
            grow(args.out, cfg, record, self.engine.outputs(cfg.request))
        except ConfigError as err:
            return err
        except LayoutMismatch as err:
            return ConfigError(f"--resume: cannot grow {args.out} ({err}); finish it with the "
                               "tlsmpi that started it, or start a run with all realizations")
        except OSError as err:
            return os_refusal(err, os_message(err, args.out, "growing",
                                              "the file is unchanged: fix it and resume again"))
        log.info(f"grew {args.out} from {had} to {cfg.realizations} realizations")
        return None

    def plan(self, repair):
        """The pending realizations and their work items: every part of every pending
        realization (one part unless the engine splits it), with predicted costs."""
        from ..runfile.writer import PENDING
        cfg, engine, cases = self.cfg, self.engine, self.cases
        status = costs = None
        if self.comm.rank == 0:
            if repair:
                log.warning(f"--repair: recomputing {len(repair)} damaged row(s)")
                self.file.mark_pending(repair)
            status = np.array([self.file.status(c) for c in range(len(cases))])
            costs = predicted_costs(engine, cfg, cases, self.times)
        status, costs = self.comm.bcast((status, costs), root=0)
        self.pending = [(int(c), int(r)) for c, r in zip(*np.nonzero(status == PENDING))]
        self.n_parts = np.array([engine.parts(p, cfg.request) for p in cases], dtype=int)
        self.items = [
            (f, p) for f, (c, r) in enumerate(self.pending) for p in range(self.n_parts[c])
        ]
        self.item_costs = np.array([costs[self.pending[f]] / self.n_parts[self.pending[f][0]]
                                    for f, _ in self.items])
        self.split = len(self.items) > len(self.pending)
        self.done_cost = float(costs[status != PENDING].sum())
        self.done_items = int(self.n_parts[np.nonzero(status != PENDING)[0]].sum())

    def make_groups(self):
        """Rank groups (`tlsmpi.parallel.plan_groups`): heavy items may get groups of up
        to a quarter of the ranks (never all of them: at a few ranks, running items side
        by side beats any parallel speed-up)."""
        from ..parallel import plan_groups
        comm, engine = self.comm, self.engine
        base = self.cfg.ranks_per_realization if engine.parallel else 1
        largest = max(base, comm.size // 4)
        allowed = tuple(base << k for k in range(comm.size.bit_length()) if base << k <= largest)
        sizes, self.widths = plan_groups(self.item_costs, comm.size,
                                         allowed if engine.parallel else (1,))
        color = int(np.searchsorted(np.cumsum(sizes), comm.rank, side="right"))
        self.group_comm = comm.Split(color, comm.rank)
        self.leader = self.group_comm.rank == 0
        parts = f" in {len(self.items)} parts" if self.split else ""
        log.info(f"tlsmpi {__version__}: {len(self.cases)} case(s) x {self.cfg.realizations} "
                 f"realizations, {len(self.times)} times, engine {self.cfg.engine}, {comm.size} "
                 f"rank(s) in {len(sizes)} group(s); {len(self.pending)} to compute{parts} "
                 f"-> {self.args.out}")
        if comm.rank == 0:
            warn_stop_margin(self.item_costs, self.widths)

    def work(self):
        """The item loop: take chunks from the queue until it is empty or a stop was
        agreed, compute, buffer rows, write at checkpoints.  Returns True if stopped."""
        from ..parallel import Collector, QueueSettings, WorkQueue
        items, split, group_comm = self.items, self.split, self.group_comm
        stop = self.state.stop
        self.engine.should_stop = stop
        self.given_up = False              # this group gave an item up at a stop
        queue = WorkQueue(self.comm, self.item_costs, worker=self.leader, width=self.widths,
                          group_size=group_comm.size, settings=QueueSettings(
                              progress_seconds=self.cfg.section("output")["progress_seconds"]),
                          done_cost=self.done_cost, done_items=self.done_items,
                          log_label="parts of realizations" if split else "realizations",
                          families=[f for f, _ in items] if split else None,
                          kinds=[self.pending[f][0] for f, _ in items] if split else "auto")
        # the parts of a realization are gathered on one rank, which writes its row
        self.collector = Collector(self.comm, [f for f, _ in items], [p for _, p in items],
                                   sorted(queue.group_sizes)) if split else None
        self.checkpoint = self.cfg.section("output")["checkpoint_seconds"]
        self.last_write = time.monotonic()
        completed = []
        while True:
            chunk = (queue.take(completed, stop=bool(stop.signal) or self.given_up)
                     if self.leader else None)
            if group_comm.size > 1:
                chunk = group_comm.bcast(chunk, root=0)
            if not chunk:
                break
            completed = self.compute_chunk(chunk, stop)
        stopped = queue.close()
        # a given-up item leaves the job incomplete, also where the queue saw no stop
        stopped = self.comm.allreduce(int(stopped or self.given_up)) > 0
        if self.collector is not None:
            done, incomplete = self.collector.finish()
            self.record_parts(done)
            for f in incomplete:
                c, r = self.pending[f]
                log.info(f"realization {r} of case {c}: not all its parts were computed before "
                         "the stop; it stays pending")
        if self.leader:
            write_rows(self.file, self.args.out)
        return stopped

    def compute_chunk(self, chunk, stop):
        """Compute the items of ``chunk`` (all ranks of the group) until a stop; returns
        [(item, wall seconds)] of those computed."""
        completed = []
        for k in chunk:
            halt = bool(stop.signal)
            if self.group_comm.size > 1:
                halt = self.group_comm.allreduce(halt)
            if halt:
                break
            f, part = self.items[k]
            c, r = self.pending[f]
            whole = self.n_parts[c] == 1
            outcome = run_item(
                self.engine, self.cases[c], self.cfg, self.times, r, self.group_comm,
                self.comm.rank, self.state, None if whole else part)
            if outcome is None:            # the whole group gave it up: not recorded
                self.given_up = True
                break
            real, results, error, wall = outcome
            completed.append((k, wall))
            if not self.leader:
                continue
            if whole:
                record(self.file, c, r, real, results, error, wall)
            else:
                self.collector.put(k, (results, error, wall))
                self.record_parts(self.collector.poll())
            if time.monotonic() - self.last_write > self.checkpoint:
                write_rows(self.file, self.args.out)
                self.last_write = time.monotonic()
        return completed

    def record_parts(self, done):
        """Buffer the rows of the realizations whose parts are all here."""
        for f, values in done:
            c, r = self.pending[f]
            record(self.file, c, r,
                   *combine_parts(self.engine, self.cases[c], self.cfg, self.times, r, values))

    def finish(self, stopped, held):
        """Close the file: resumable after a stop, else verified, with means and the
        summary; returns the exit status."""
        args, comm = self.args, self.comm
        if stopped:
            self.file.close()
            log.info("stopped by signal; the file is consistent. Resume with: "
                     f"{resume_command(args)}")
            return EXIT_STOPPED
        end = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with writing(args.out):
            complete, problems = self.file.finalize(end)
        self.file.close()
        if problems:
            from ..runfile.reader import DamagedRun
            raise RunFileError(f"{DamagedRun(args.out, [p for p in problems])}")
        if comm.rank == 0:
            from ..runfile.reader import Run, summary
            held.release()                     # the file is closed: readers need not wait
            print(summary(Run(args.out)), flush=True)
        return EXIT_OK if complete else EXIT_STOPPED
