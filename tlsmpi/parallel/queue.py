"""Work sharing of an ensemble: a shared queue of items ordered by predicted cost.

The runner turns every pending (case, realization) into an *item* with a predicted
cost (`tlsmpi.engines.Engine.cost`); this module knows nothing else about them.

- **Queue.**  Rank 0 owns the queue.  A free worker (a rank, or the leader of a rank
  group) asks for the next chunk and gets the largest pending items first; cheap items
  come in chunks (guided self-scheduling: a chunk is worth about ``remaining cost /
  (chunk_factor x ranks)``, at least one item, and at least ``min_chunk_seconds`` and
  at most ``max_chunk_seconds`` of measured wall time: `QueueSettings`), so the queue is no hot spot
  even for millisecond items, and rank 0 hears of progress at least every minute.
- **Families.**  Items that share a set-up (the blocks of trajectories of one
  realization) are dealt so that a worker stays with one family while it lasts, and
  their partial results are gathered on one rank per family (`tlsmpi.parallel.collector`).
- **Progress of the queue does not depend on MPI progress.**  An MPI library need not
  progress a non-blocking collective or a passive-target ``Win.Fetch_and_op`` while the
  target rank computes without MPI calls (docs/performance.md, "What progresses while
  a rank computes", has the measurements).  So rank 0 serves requests from a thread
  (mpi4py initializes ``MPI_THREAD_MULTIPLE``) on a duplicate of the communicator,
  and computes in its main thread; its own requests do not go through MPI.  The
  thread polls (``Iprobe`` and a sleep of 50 us to 1 ms) instead of blocking in ``recv``,
  because a blocking receive may spin and take a whole core from rank 0.
  Waiting workers poll the same way, so idle ranks do not steal the cores of busy
  ones when the job is oversubscribed.
- **No collective per item.**  A worker talks to rank 0 only when it needs work; the
  request carries the items it completed (with their wall times) and its stop flag.
- **Stop agreement.**  Once a worker reports a stop signal, rank 0 hands out nothing
  more; every worker gets ``[]`` at its next `WorkQueue.take`, so all stop at an item
  boundary and untaken items stay pending for ``--resume``.
- **Progress by predicted cost.**  Rank 0 logs items done, percent of the predicted
  work (including ``done_cost`` from earlier jobs), this job's rate and an ETA.  The
  ETA corrects the cost model on the fly with the measured rank-seconds per predicted
  cost: per kind of item (``kinds``, by default items of equal predicted cost; three
  items of every kind are handed out first) and from a fit against the cost, so
  neither the model's scale nor its errors between sizes and cases spoil the ETA.
- **Rank groups.**  `plan_groups` gives predicted-heavy items a larger group of ranks
  (a parallel engine), so that no single item outlasts the rest of the job.

Example (the runner's loop, one rank per item)::

    queue = WorkQueue(comm, costs, kinds=case_of_item)
    done = []
    while True:
        chunk = queue.take(done, stop=bool(stop_flag.signal))
        if not chunk:
            break
        done = [(k, compute(k)) for k in chunk]        # (item, wall seconds)
    stopped = queue.close()
"""
import logging
import threading
import time

import numpy as np

from .dealing import Dealer
from .progress import Progress
from .settings import QueueSettings
from .transport import BYE, CLOSED, POLL_PAUSE, REPLY, REPLY_SPIN, REQUEST, poll_recv

log = logging.getLogger("tlsmpi")



class WorkQueue:
    """The shared queue of one job's pending items (collective over ``comm``).

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        All ranks of the job (e.g. COMM_WORLD); queue traffic uses a duplicate.
    costs : array_like
        Predicted costs of the pending items, identical on all ranks; item k is an
        index into ``costs``.
    worker : bool
        Whether this rank asks for work (group leaders only; the other members of a
        group get their items from their leader).
    done_cost : float
        Predicted cost completed by earlier jobs (``--resume``), for percent done.
    done_items : int
        Items completed by earlier jobs, for the count in the log.
    log_label : str
        Name of the items in the log.
    width : array_like of int, optional
        Group size each item should run on (`plan_groups`); an item goes only to a
        worker whose group is at least that large, exact fits first.  Default: any.
    group_size : int
        Ranks in this worker's group (its leader included).
    kinds : array_like of int, "auto" or None
        A label of each item, e.g. its case.  Items of one kind are expected to take
        the same wall time per predicted cost: the ETA and the minimum chunk use each
        kind's measured ratio once one of its items is done (cost models err by
        different factors on different cases), and three items of every kind are handed
        out first, one per chunk, so that all ratios are known early.  "auto": items of equal
        predicted cost form a kind (the realizations of a case, when the cost does
        not depend on the disorder), if there are at most a quarter as many distinct
        costs as items.  None: no kinds (a fit of the ratio against the cost).
    families : array_like of int, optional
        A label of each item, e.g. the realization it is a part of (items of one family
        share a set-up that a worker keeps for its next item).  A worker keeps taking
        chunks of its current family; when it is exhausted it opens the next family
        (largest total cost first), and when all are open it takes from the back of
        the family with the most untaken cost.  So each family is set up about once
        per worker that helps with it.  With ``kinds``, the largest family of every
        kind is opened first (so that every kind is measured early).  Ignored unless
        every item has width 1.
    settings : QueueSettings, optional
        The tuning knobs: progress log interval, chunk sizes, serving from a thread
        (`tlsmpi.parallel.settings.QueueSettings`; default: its defaults).
    """

    def __init__(self, comm, costs, *, worker=True, width=None, group_size=1, kinds="auto",
                 families=None, done_cost=0.0, done_items=0, log_label="realizations",
                 settings=None):
        from mpi4py import MPI
        settings = QueueSettings() if settings is None else settings
        self.comm = comm.Dup()
        self.rank, self.size = self.comm.rank, self.comm.size
        self.worker = worker
        self.costs = np.asarray(costs, dtype=float)
        self.serve_in_thread = (settings.serve_in_thread
                                and MPI.Query_thread() >= MPI.THREAD_MULTIPLE)
        workers = self.comm.allgather(group_size if worker else 0)
        self.group_sizes = {r: g for r, g in enumerate(workers) if g}
        if not self.serve_in_thread and self.size > 1:
            self.group_sizes.pop(0, None)
        width = (
            np.ones(len(self.costs), dtype=int) if width is None else np.asarray(width, dtype=int)
        )
        largest = max(self.group_sizes.values(), default=0)
        if len(width) and width.max() > largest:
            raise ValueError(f"items of width {width.max()} but the largest working group "
                             f"has {largest} ranks")
        self._thread = None
        self._finished = False
        if self.rank != 0:
            return
        self.dealer = Dealer(self.costs, self.group_sizes, width=width, settings=settings,
                             now=time.monotonic(), kinds=kinds, families=families)
        self.progress = Progress(len(self.costs), float(self.costs.sum()), done_items=done_items,
                                 done_cost=done_cost, label=log_label,
                                 seconds=settings.progress_seconds, now=time.monotonic())
        self._lock = threading.RLock()
        self._served = False
        if self.size > 1 and self.serve_in_thread:
            self._thread = threading.Thread(target=self._serve, name="tlsmpi-queue", daemon=True)
            self._thread.start()

    # -- worker side ---------------------------------------------------------------

    def take(self, completed=(), stop=False):
        """Report completed items, return the next chunk (largest predicted cost first).

        Parameters
        ----------
        completed : sequence of (int, float)
            Items finished since the last call and their wall seconds.
        stop : bool
            True if this rank saw a stop signal: rank 0 then hands out nothing more.

        Returns
        -------
        list of int
            Item indices to compute, or [] when no work is left or a stop was agreed
            (then do not call `take` again; call `close`).
        """
        if not self.worker:
            raise RuntimeError("take() on a rank created with worker=False")
        completed = [(int(k), float(w)) for k, w in completed]
        if self.rank == 0:
            if not self.serve_in_thread and self.size > 1:
                self._serve()
                return []
            with self._lock:
                return self._handle(0, completed, stop)
        self.comm.send((completed, bool(stop)), dest=0, tag=REQUEST)
        return poll_recv(self.comm, 0, REPLY, REPLY_SPIN)[0]

    def close(self):
        """Collective: wait for all ranks, stop the server; True if stopped by a signal.

        A stop counts only if it was agreed while items were still untaken (so the
        job is incomplete).  Ranks still computing are waited for, without spinning."""
        if self._finished:
            raise RuntimeError("close() called twice")
        self._finished = True
        if self.rank != 0:
            self.comm.send(None, dest=0, tag=BYE)
            stopped = poll_recv(self.comm, 0, CLOSED)[0]
        else:
            if self._thread is not None:
                self._thread.join()
            elif self.size > 1 and not self._served:
                self._serve()
            stopped = self.dealer.stop_agreed
            requests = [self.comm.isend(stopped, dest=r, tag=CLOSED) for r in range(1, self.size)]
            for request in requests:
                request.wait()
            self._log(force=True)
        self.comm.Free()
        return stopped

    # -- rank 0: the server -----------------------------------------------------------

    def _serve(self):
        """Answer requests until every other rank has said goodbye in `close`."""
        from mpi4py import MPI
        status = MPI.Status()
        byes, pause = 0, POLL_PAUSE[0]
        while byes < self.size - 1:
            if not self.comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                with self._lock:
                    self._log()
                time.sleep(pause)
                pause = min(2 * pause, POLL_PAUSE[1])
                continue
            pause = POLL_PAUSE[0]
            source, tag = status.Get_source(), status.Get_tag()
            t0 = time.perf_counter()
            message = self.comm.recv(source=source, tag=tag)
            if tag == BYE:
                byes += 1
                continue
            with self._lock:
                chunk = self._handle(source, *message)
            self.comm.send(chunk, dest=source, tag=REPLY)
            with self._lock:  # moving average of the server's time per request
                self.dealer.service_seconds += 0.1 * (
                    time.perf_counter() - t0 - self.dealer.service_seconds
                )
        self._served = True

    def _handle(self, rank, completed, stop):
        """Record a worker's completed items and stop flag; return its next chunk."""
        agreed = self.dealer.stop_agreed
        chunk = self.dealer.handle(rank, completed, stop, time.monotonic())
        if self.dealer.stop_agreed and not agreed:
            log.info(f"stop signal reported by rank {rank}: no more {self.progress.label} handed "
                     "out")
        self._log()
        return chunk

    # -- rank 0: progress ---------------------------------------------------------------

    def eta(self):
        """Estimated seconds to the end of the job (rank 0; None before any result);
        see `Dealer.eta`."""
        with self._lock:
            return self.dealer.eta(time.monotonic())

    def _log(self, force=False):
        self.progress.log(self.dealer, time.monotonic(), force)
