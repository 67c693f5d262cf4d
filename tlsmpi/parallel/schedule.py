"""Work sharing of an ensemble: a shared queue of items ordered by predicted cost.

The runner turns every pending (case, realization) into an *item* with a predicted
cost (`tlsmpi.engines.Engine.cost`); this module knows nothing else about them.

- **Queue.**  Rank 0 owns the queue.  A free worker (a rank, or the leader of a rank
  group) asks for the next chunk and gets the largest pending items first; cheap items
  come in chunks (guided self-scheduling: a chunk is worth about ``remaining cost /
  (chunk_factor x ranks)``, at least one item, and at least ``min_chunk_seconds`` and
  at most ``max_chunk_seconds`` of measured wall time), so the queue is no hot spot
  even for millisecond items, and rank 0 hears of progress at least every minute.
- **Families.**  Items that share a set-up (the blocks of trajectories of one
  realization) are dealt so that a worker stays with one family while it lasts, and
  their partial results are gathered on one rank per family (`Collector`).
- **Progress of the queue does not depend on MPI progress.**  With Open MPI 4.1 on
  the development machine (shared memory), neither a non-blocking allreduce nor a
  passive-target ``Win.Fetch_and_op`` completes while the target rank computes: both
  waited the full second that rank 0 spent in a computation without MPI calls
  (docs/performance.md, "Scheduling").  So rank 0 serves requests from a thread
  (mpi4py initializes ``MPI_THREAD_MULTIPLE``) on a duplicate of the communicator,
  and computes in its main thread; its own requests do not go through MPI.  The
  thread polls (``Iprobe`` and a sleep of 50 us to 1 ms) instead of blocking in ``recv``,
  because Open MPI's blocking receive spins: it took a whole core from rank 0.
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
import collections
import logging
import threading
import time

import numpy as np

log = logging.getLogger("tlsmpi")

_REQUEST, _REPLY, _BYE, _CLOSED, _PART = 11, 12, 13, 14, 15
#: Polling pauses (s) of the server thread and of waiting workers: the pause doubles
#: from the first to the second value while no message arrives.
POLL_PAUSE = (5e-5, 1e-3)
#: Items of every kind handed out first, one per chunk (`Dealer`).
SAMPLES = 3
#: Seconds a worker probes without sleeping for the reply to its request.
REPLY_SPIN = 3e-4


def poll_recv(comm, source, tag, spin=0.0):
    """A blocking receive that probes without pause for ``spin`` seconds, then sleeps
    between probes instead of spinning (Open MPI's blocking receive spins); returns
    (message, source)."""
    from mpi4py import MPI
    pause = POLL_PAUSE[0]
    status = MPI.Status()
    spin_until = time.perf_counter() + spin
    while not comm.Iprobe(source, tag, status):
        if time.perf_counter() > spin_until:
            time.sleep(pause)
            pause = min(2 * pause, POLL_PAUSE[1])
    return comm.recv(source=status.Get_source(), tag=status.Get_tag()), status.Get_source()


def group_efficiency(size, overhead):
    """Parallel efficiency assumed for one item on ``size`` ranks: 1 / (1 + overhead log2 size).

    An item of predicted cost c then takes c / (size x efficiency) on the group."""
    return 1.0 / (1.0 + overhead * np.log2(size))


def plan_groups(costs, n_ranks, sizes=(1, 2, 4, 8, 16, 32, 64), *, overhead=0.1, share=0.5):
    """Split ``n_ranks`` into rank groups so that no single item outlasts the job.

    The fair share of a rank is ``S = sum(costs) / n_ranks``.  Item k gets the smallest
    group size g of ``sizes`` (at most ``n_ranks``) whose wall time
    ``costs[k] / (g x group_efficiency(g, overhead))`` is at most ``share x S``; with
    largest-first dealing such items all end well before the job does.  Each size g
    > ``sizes[0]`` in use then gets as many groups as first-fit decreasing needs to
    pack the wall times of its items into bins of S (at least one group, and ranks
    left for the smaller sizes); the rest are groups of ``sizes[0]``.  A group also
    takes items narrower than itself once its own are gone (`WorkQueue`).

    Parameters
    ----------
    costs : array_like
        Predicted cost of every item on one rank.
    n_ranks : int
        Ranks to split; a multiple of ``sizes[0]``.
    sizes : sequence of int
        Allowed group sizes, ascending, each a multiple of ``sizes[0]``.
    overhead : float
        Parallel overhead per doubling of the group (see `group_efficiency`).
    share : float
        Largest wall time of an item as a fraction of the fair share.

    Returns
    -------
    group_sizes : list of int
        Sizes of the groups, largest first, summing to ``n_ranks``.
    widths : ndarray of int
        The group size that item k should run on (pass as ``width`` to `WorkQueue`).
    """
    costs = np.asarray(costs, dtype=float)
    if n_ranks % sizes[0]:
        raise ValueError(f"{n_ranks} ranks are not a multiple of the smallest group size {sizes[0]}")
    usable = [g for g in sizes if g <= n_ranks]
    limit = share * costs.sum() / n_ranks
    widths = np.full(costs.shape, usable[-1], dtype=int)
    for g in reversed(usable):
        widths[costs / (g * group_efficiency(g, overhead)) <= limit] = g
    group_sizes, left = [], n_ranks
    for g in reversed(usable[1:]):
        walls = costs[widths == g] / (g * group_efficiency(g, overhead))
        if not len(walls):
            continue
        room = (left - sizes[0] * bool(np.any(widths < g))) // g
        n = max(min(_bins(walls, costs.sum() / n_ranks), room), 0 if group_sizes else 1)
        group_sizes += [g] * n             # (the widest items need a group)
        left -= g * n
    group_sizes += [sizes[0]] * (left // sizes[0])
    return group_sizes, widths


def _bins(sizes, capacity):
    """Number of bins of ``capacity`` that first-fit decreasing fills with ``sizes``."""
    free = []
    for size in sorted(sizes, reverse=True):
        for i, room in enumerate(free):
            if size <= room:
                free[i] -= size
                break
        else:
            free.append(capacity - size)
    return len(free)


class Dealer:
    """The queue's rules without MPI: which items a worker gets, progress and ETA.

    `WorkQueue` runs one on rank 0; the scheduling benchmark replays the same rules in
    a discrete-event simulation (``python -m tlsmpi.bench schedule``).  Times ``now``
    are seconds on any monotonic clock.

    Parameters
    ----------
    costs : array_like
        Predicted cost of every item.
    group_sizes : dict
        Worker id -> ranks in its group.
    width : array_like of int, optional
        Smallest group size of each item (default 1).
    chunk_factor, min_chunk_seconds, max_chunk_seconds :
        See `WorkQueue`.
    now : float
        Start time of the job.
    kinds : array_like of int, "auto" or None
        A label of each item (e.g. its case): see `WorkQueue`.
    families : array_like of int, optional
        A label of each item: see `WorkQueue`.
    """

    def __init__(self, costs, group_sizes, width=None, chunk_factor=2.0, min_chunk_seconds=0.05,
                 now=0.0, kinds="auto", families=None, max_chunk_seconds=60.0):
        self.costs = np.asarray(costs, dtype=float)
        if isinstance(kinds, str) and kinds == "auto":     # equal predicted costs: one kind
            values, inverse = np.unique(self.costs, return_inverse=True)
            kinds = inverse if len(values) <= len(self.costs) // 4 else None
        # per kind: measured rank-seconds and predicted cost of the completed items
        self.kinds = None if kinds is None else np.asarray(kinds, dtype=int)
        n_kinds = 0 if kinds is None else int(self.kinds.max(initial=-1)) + 1
        self.kind_seconds, self.kind_cost = np.zeros(n_kinds), np.zeros(n_kinds)
        self.kind_count = np.zeros(n_kinds)
        self.group_sizes = dict(group_sizes)
        self.n_ranks = sum(self.group_sizes.values())
        self.chunk_factor, self.min_chunk_seconds = chunk_factor, min_chunk_seconds
        self.max_chunk_seconds = max_chunk_seconds
        width = np.ones(len(self.costs), dtype=int) if width is None else np.asarray(width, dtype=int)
        # largest first; equal costs (the realizations of one case, or of cases the model
        # does not tell apart) in a fixed shuffled order, so that the measured ratio of wall
        # time to predicted cost is not that of one case only
        ties = np.random.default_rng(0).permutation(len(self.costs))
        order = np.lexsort((ties, -self.costs))
        samples = np.zeros(len(self.costs), dtype=bool)
        if self.kinds is not None:         # SAMPLES items of every kind first, one per chunk:
            ordered = self.kinds[order]    # their ratio is known early
            by_kind = np.argsort(ordered, kind="stable")
            place = np.empty(len(order), dtype=int)
            place[by_kind] = np.arange(len(order)) - np.searchsorted(ordered[by_kind], ordered[by_kind])
            first = np.flatnonzero(place < SAMPLES)
            samples[order[first]] = True
            order = np.concatenate((order[first], np.delete(order, first)))
        # per width: items by decreasing cost, their cumulative cost, the next untaken position
        self.pending = {int(w): order[width[order] == w] for w in np.unique(width)}
        self.cumulative = {w: np.concatenate(([0.0], np.cumsum(self.costs[items])))
                           for w, items in self.pending.items()}
        self.next = dict.fromkeys(self.pending, 0)
        self.samples = {w: int(samples[items].sum()) for w, items in self.pending.items()}
        self.in_flight = {}                       # worker -> (items, time handed out)
        self.stop_agreed = False
        self.done = 0
        self.predicted_done = 0.0
        # least-squares fit of log(rank-seconds / cost) against log(cost) of the completed
        # items: count and sums of x, y, x^2, x y, y^2
        self.fit = np.zeros(6)
        #: Server seconds per request (set by the server), for the hot-spot guard.
        self.service_seconds = 0.0
        self.start = now
        self.families = None
        if families is not None and np.all(width == 1):
            self._init_families(np.asarray(families, dtype=int))

    def _init_families(self, families):
        """Family dealing (`WorkQueue` ``families``): untaken items per family in item
        order, families in the order they are opened (largest total cost first)."""
        self.families = families
        n = int(families.max(initial=-1)) + 1
        self.family_left = np.bincount(families, weights=self.costs, minlength=n)
        self.family_count = np.bincount(families, minlength=n)
        by_family = np.argsort(families, kind="stable")
        starts = np.searchsorted(families[by_family], np.arange(n + 1))
        self.family_items = [collections.deque(int(k) for k in by_family[starts[f]:starts[f + 1]])
                             for f in range(n)]
        ties = np.random.default_rng(0).permutation(n)
        opening = [int(f) for f in np.lexsort((ties, -self.family_left)) if self.family_count[f]]
        if self.kinds is not None:         # the largest family of every kind first: all
            first, seen = [], set()        # kinds are measured early (cf. SAMPLES)
            for f in opening:
                kind = int(self.kinds[by_family[starts[f]]])
                if kind not in seen:
                    seen.add(kind)
                    first.append(f)
            chosen = set(first)
            opening = first + [f for f in opening if f not in chosen]
        self.to_open = collections.deque(opening)
        self.opener, self.current = {}, {}       # family -> worker; worker -> family

    def handle(self, worker, completed, stop, now):
        """Record a worker's completed items [(k, wall), ...] and stop flag; return its
        next chunk (a list of item indices, [] when nothing is left or a stop was agreed)."""
        g = self.group_sizes[worker]
        self.in_flight.pop(worker, None)
        for k, wall in completed:
            self.done += 1
            self.predicted_done += self.costs[k]
            if self.kinds is not None:
                self.kind_seconds[self.kinds[k]] += g * wall
                self.kind_count[self.kinds[k]] += 1
                self.kind_cost[self.kinds[k]] += self.costs[k]
            if self.costs[k] > 0 and wall > 0:
                x, y = np.log(self.costs[k]), np.log(g * wall / self.costs[k])
                self.fit += (1.0, x, y, x * x, x * y, y * y)
        if stop and self.untaken() > 0:
            self.stop_agreed = True
        if self.stop_agreed:
            chunk = []
        else:
            chunk = self._chunk(g) if self.families is None else self._family_chunk(worker, g)
        if chunk:
            self.in_flight[worker] = (chunk, now)
        return chunk

    def untaken(self, widths=None):
        """Predicted cost of the items not handed out yet (of the given widths)."""
        if self.families is not None:
            return float(self.family_left.sum())
        return sum(self.cumulative[w][-1] - self.cumulative[w][self.next[w]]
                   for w in (self.pending if widths is None else widths))

    def _target(self, g, untaken, k):
        """Predicted cost of a guided chunk for a group of g ranks whose next item is k.

        Worth about g x untaken / (chunk_factor x ranks), at least one item (the
        caller), at least ``min_chunk_seconds`` and 4 x workers x server seconds per
        request of wall time (so the server stays below a quarter of its capacity),
        and at most ``max_chunk_seconds`` (so that rank 0 hears of progress and a
        single rank does not take half the job at once), converted with the measured
        wall time per cost of items like k (no extrapolation: a wrong guess would make
        one huge chunk)."""
        target = g * untaken / (self.chunk_factor * self.n_ranks)
        ratio = self._measured_ratio(k)
        if ratio:
            seconds = max(self.min_chunk_seconds, 4 * len(self.group_sizes) * self.service_seconds)
            target = min(max(target, g * seconds / ratio), g * max(seconds, self.max_chunk_seconds) / ratio)
        return target

    def _chunk(self, g):
        """Guided chunk (`_target`) for a group of g ranks: exact-width items first, then
        narrower."""
        widths = [w for w in sorted(self.pending, reverse=True)
                  if w <= g and self.next[w] < len(self.pending[w])]
        if not widths:
            return []
        w = widths[0]
        start, cumulative = self.next[w], self.cumulative[w]
        target = self._target(g, self.untaken(widths), self.pending[w][start])
        end = np.searchsorted(cumulative, cumulative[start] + target, side="right") - 1
        if start < self.samples[w]:
            end = start + 1
        self.next[w] = end = min(max(end, start + 1), len(self.pending[w]))
        return [int(k) for k in self.pending[w][start:end]]

    def _family_chunk(self, worker, g):
        """Guided chunk (as `_chunk`) from one family: the worker's current family while
        it has untaken items, else the next unopened family, else (stealing) the family
        with the most untaken cost.  The worker that opened a family takes its items from
        the front, others from the back, so each keeps a run of consecutive parts."""
        f = self.current.get(worker)
        if f is None or not self.family_items[f]:
            while self.to_open and not self.family_items[self.to_open[0]]:
                self.to_open.popleft()
            if self.to_open:
                f = self.to_open.popleft()
                self.opener[f] = worker
            elif self.family_count.any():
                f = int(np.argmax(np.where(self.family_count > 0, self.family_left, -np.inf)))
            else:
                return []
            self.current[worker] = f
        items, front = self.family_items[f], self.opener.get(f) == worker
        k = items[0] if front else items[-1]
        # one item until a measurement gives the wall time per cost (as the samples of `_chunk`)
        target = self._target(g, self.untaken(), k) if self._measured_ratio(k) else 0.0
        chunk, cost = [], 0.0
        while items and (not chunk or cost + self.costs[items[0] if front else items[-1]] <= target):
            chunk.append(items.popleft() if front else items.pop())
            cost += self.costs[chunk[-1]]
        self.family_left[f] -= cost
        self.family_count[f] -= len(chunk)
        return sorted(chunk)

    def _untaken_items(self):
        if self.families is not None:
            return np.array([k for items in self.family_items for k in items], dtype=int)
        return np.concatenate([self.pending[w][self.next[w]:] for w in self.pending]
                              + [np.zeros(0, dtype=int)])

    def _measured_ratio(self, k):
        """Measured rank-seconds per cost of item k's kind, or of all completed items
        (geometric mean) without kinds; None before a measurement."""
        if self.kinds is not None:
            cost = self.kind_cost[self.kinds[k]]
            return self.kind_seconds[self.kinds[k]] / cost if cost > 0 else None
        n, _, sy = self.fit[:3]
        return float(np.exp(sy / n)) if n else None

    def rank_seconds_of(self, costs):
        """Predicted rank-seconds of items of predicted ``costs`` (None before any result):
        a c^(1 + b), with log a and b fitted by least squares to log(rank-seconds / c)
        against log c of the completed items.  So the ETA is right when the model's
        scale is off, and also when its error grows with the size (items come largest
        first, so the remaining ones are smaller than those measured).  The slope b is
        extrapolated to smaller costs, so it is used only when it differs from 0 by more
        than 3 standard errors (else b = 0), and kept within [-1, 1]."""
        n, sx, sy, sxx, sxy, syy = self.fit
        if n == 0:
            return None
        spread, covariance = sxx - sx * sx / n, sxy - sx * sy / n
        b = 0.0
        if n >= 10 and spread > 1e-6 * n:
            b = covariance / spread
            residual = max(syy - sy * sy / n - b * covariance, 0.0) / (n - 2)
            b = float(np.clip(b, -1.0, 1.0)) if b * b > 9 * residual / spread else 0.0
        log_a = (sy - b * sx) / n
        return np.exp(log_a) * np.asarray(costs, dtype=float) ** (1.0 + b)

    def predicted_seconds(self, items):
        """Predicted rank-seconds of ``items`` (None before any result): `rank_seconds_of`
        their cost, and for an item of a kind with n completed items the mean of that
        and the kind's measured rank-seconds per cost, weights 1 and n (a single
        measurement of a kind, on a shared machine, can be off)."""
        items = np.asarray(items, dtype=int)
        fitted = self.rank_seconds_of(self.costs[items])
        if fitted is None or self.kinds is None:
            return fitted
        kinds = self.kinds[items]
        known = self.kind_cost[kinds] > 0
        n = self.kind_count[kinds[known]]
        ratio = self.kind_seconds[kinds[known]] / self.kind_cost[kinds[known]]
        fitted[known] = (fitted[known] + n * self.costs[items[known]] * ratio) / (1 + n)
        return fitted

    def eta(self, now):
        """Estimated seconds to the end of the job (None before any result).

        Predicted rank-seconds (`predicted_seconds`) of the untaken items plus the
        unfinished part of the chunks in flight, divided by the ranks; at least the
        longest remaining chunk in flight."""
        left = self.predicted_seconds(self._untaken_items())
        if left is None:
            return None
        left, longest = float(left.sum()), 0.0
        for worker, (chunk, since) in self.in_flight.items():
            g = self.group_sizes[worker]
            seconds = max(float(self.predicted_seconds(chunk).sum()) / g - (now - since), 0.0)
            left += seconds * g
            longest = max(longest, seconds)
        return max(left / self.n_ranks, longest)


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
    progress_seconds : float
        Interval of the progress log on rank 0 (INFO, logger "tlsmpi").
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
    chunk_factor : float
        Guided chunking: a chunk is worth about remaining cost / (chunk_factor x ranks).
    min_chunk_seconds, max_chunk_seconds : float
        Smallest and largest chunk in measured wall seconds (converted with the
        measured ratio of wall time to predicted cost, once items have completed); a
        chunk has at least one item.
    serve_in_thread : bool
        True: rank 0 serves from a thread and computes too.  False: rank 0 only
        serves (its `take` serves until the job ends, then returns []); chosen
        automatically when MPI does not provide ``MPI_THREAD_MULTIPLE``.
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
    """

    def __init__(self, comm, costs, *, worker=True, progress_seconds=10.0, done_cost=0.0,
                 done_items=0, log_label="realizations", width=None, group_size=1,
                 chunk_factor=2.0, min_chunk_seconds=0.05, serve_in_thread=True, kinds="auto",
                 families=None, max_chunk_seconds=60.0):
        from mpi4py import MPI
        self.comm = comm.Dup()
        self.rank, self.size = self.comm.rank, self.comm.size
        self.worker = worker
        self.costs = np.asarray(costs, dtype=float)
        self.serve_in_thread = serve_in_thread and MPI.Query_thread() >= MPI.THREAD_MULTIPLE
        workers = self.comm.allgather(group_size if worker else 0)
        self.group_sizes = {r: g for r, g in enumerate(workers) if g}
        if not self.serve_in_thread and self.size > 1:
            self.group_sizes.pop(0, None)
        width = np.ones(len(self.costs), dtype=int) if width is None else np.asarray(width, dtype=int)
        largest = max(self.group_sizes.values(), default=0)
        if len(width) and width.max() > largest:
            raise ValueError(f"items of width {width.max()} but the largest working group "
                             f"has {largest} ranks")
        self._thread = None
        self._finished = False
        if self.rank != 0:
            return
        self.dealer = Dealer(self.costs, self.group_sizes, width, chunk_factor, min_chunk_seconds,
                             time.monotonic(), kinds, families, max_chunk_seconds)
        self.done_items, self.done_cost = done_items, done_cost
        self.total_items = done_items + len(self.costs)
        self.total_cost = done_cost + float(self.costs.sum())
        self.progress_seconds = progress_seconds
        self.label = log_label
        self.last_log = time.monotonic()
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
        self.comm.send((completed, bool(stop)), dest=0, tag=_REQUEST)
        return poll_recv(self.comm, 0, _REPLY, REPLY_SPIN)[0]

    def close(self):
        """Collective: wait for all ranks, stop the server; True if stopped by a signal.

        A stop counts only if it was agreed while items were still untaken (so the
        job is incomplete).  Ranks still computing are waited for, without spinning."""
        if self._finished:
            raise RuntimeError("close() called twice")
        self._finished = True
        if self.rank != 0:
            self.comm.send(None, dest=0, tag=_BYE)
            stopped = poll_recv(self.comm, 0, _CLOSED)[0]
        else:
            if self._thread is not None:
                self._thread.join()
            elif self.size > 1 and not self._served:
                self._serve()
            stopped = self.dealer.stop_agreed
            requests = [self.comm.isend(stopped, dest=r, tag=_CLOSED) for r in range(1, self.size)]
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
            if tag == _BYE:
                byes += 1
                continue
            with self._lock:
                chunk = self._handle(source, *message)
            self.comm.send(chunk, dest=source, tag=_REPLY)
            with self._lock:                   # moving average of the server's time per request
                self.dealer.service_seconds += 0.1 * (time.perf_counter() - t0 - self.dealer.service_seconds)
        self._served = True

    def _handle(self, rank, completed, stop):
        """Record a worker's completed items and stop flag; return its next chunk."""
        agreed = self.dealer.stop_agreed
        chunk = self.dealer.handle(rank, completed, stop, time.monotonic())
        if self.dealer.stop_agreed and not agreed:
            log.info(f"stop signal reported by rank {rank}: no more {self.label} handed out")
        self._log()
        return chunk

    # -- rank 0: progress ---------------------------------------------------------------

    def eta(self):
        """Estimated seconds to the end of the job (rank 0; None before any result);
        see `Dealer.eta`."""
        with self._lock:
            return self.dealer.eta(time.monotonic())

    def _log(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_log < self.progress_seconds:
            return
        self.last_log = now
        dealer = self.dealer
        elapsed = max(now - dealer.start, 1e-9)
        done_cost = self.done_cost + dealer.predicted_done
        percent = 100 * done_cost / self.total_cost if self.total_cost > 0 else 100.0
        rate = 100 * 60 * dealer.predicted_done / self.total_cost / elapsed if self.total_cost > 0 else 0.0
        eta = dealer.eta(now)
        eta = "unknown" if eta is None else _clock(eta)
        log.info(f"{self.done_items + dealer.done}/{self.total_items} {self.label} done, "
                 f"{percent:.1f}% of the predicted work, {rate:.3g}%/min in this job, ETA {eta}")


class Collector:
    """Partial results of items that belong together (the parts of one realization),
    gathered on one rank per family and handed back complete, in part order.

    Each family f has a *home*, the worker ``workers[f % len(workers)]``, that
    receives the partial results of its parts from the ranks that computed them
    (point-to-point, non-blocking, on a duplicate of the communicator), so the
    work of combining and writing families is spread evenly and nothing waits for
    it: homes pick up what has arrived at their item boundaries (`poll`).

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        All ranks of the job (collective).
    families : array_like of int
        Family of every item (items with a family of one part are not collected).
    parts : array_like of int
        Position of every item in its family, 0 ... n - 1.
    workers : sequence of int
        Ranks that compute items and may be homes (the same list on every rank).
    """

    def __init__(self, comm, families, parts, workers):
        self.comm = comm.Dup()
        self.rank = self.comm.rank
        self.families = np.asarray(families, dtype=int)
        self.parts = np.asarray(parts, dtype=int)
        self.size = np.bincount(self.families)                 # parts per family
        self.workers = list(workers)
        self.store = {}                                         # family -> {part: value}
        self.handed = set()                                     # families returned complete
        self.sending = []
        self.computed = np.zeros(len(self.families), dtype=np.int8)

    def home(self, family):
        """Rank that gathers ``family``."""
        return self.workers[family % len(self.workers)]

    def put(self, item, value):
        """Hand in the partial result of ``item`` (computed on this rank)."""
        self.computed[item] = 1
        f = int(self.families[item])
        if self.home(f) == self.rank:
            self._receive(item, value)
        else:
            self.sending.append(self.comm.isend((item, value), dest=self.home(f), tag=_PART))
        self.sending = [r for r in self.sending if not r.Test()]

    def _receive(self, item, value):
        f = int(self.families[item])
        self.store.setdefault(f, {})[int(self.parts[item])] = value

    def poll(self):
        """Receive what has arrived; return the families now complete on this rank as
        [(family, [values in part order]), ...] (each once)."""
        from mpi4py import MPI
        status = MPI.Status()
        while self.comm.Iprobe(MPI.ANY_SOURCE, _PART, status):
            self._receive(*self.comm.recv(source=status.Get_source(), tag=_PART))
        return self._complete()

    def _complete(self, expected=None):
        done = []
        for f in sorted(self.store):
            if len(self.store[f]) == (self.size[f] if expected is None else expected[f]):
                values = self.store.pop(f)
                if len(values) == self.size[f]:
                    done.append((f, [values[p] for p in range(self.size[f])]))
                    self.handed.add(f)
        return done

    def finish(self):
        """Collective, after the last item: wait for the partial results of every item
        that some rank computed and return the complete families (as `poll`) and the
        families left incomplete (parts not computed because of a stop)."""
        from mpi4py import MPI
        computed = self.computed.copy()
        self.comm.Allreduce(MPI.IN_PLACE, computed, op=MPI.MAX)
        expected = np.bincount(self.families, weights=computed, minlength=len(self.size)).astype(int)
        mine = [f for f in range(len(self.size))
                if self.home(f) == self.rank and expected[f] and f not in self.handed]
        waiting = sum(expected[f] - len(self.store.get(f, ())) for f in mine)
        for _ in range(waiting):
            self._receive(*poll_recv(self.comm, MPI.ANY_SOURCE, _PART)[0])
        done = self._complete(expected)
        MPI.Request.Waitall(self.sending)
        self.comm.Free()
        incomplete = [f for f in mine if expected[f] < self.size[f]]
        return done, incomplete


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
