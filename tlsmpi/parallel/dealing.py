"""The dealing policy of the work queue, without MPI: rank groups for heavy items
(`plan_groups`) and `Dealer`, which decides which items a worker gets, keeps families
together and measures the progress (`tlsmpi.parallel.queue` has the whole picture).
"""
import collections

import numpy as np

from .settings import QueueSettings

#: Items of every kind handed out first, one per chunk (`Dealer`).
SAMPLES = 3


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
        raise ValueError(
            f"{n_ranks} ranks are not a multiple of the smallest group size {sizes[0]}"
        )
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
    settings : QueueSettings, optional
        Its ``chunk_factor``, ``min_chunk_seconds`` and ``max_chunk_seconds``
        (`tlsmpi.parallel.settings.QueueSettings`; default: its defaults).
    now : float
        Start time of the job.
    kinds : array_like of int, "auto" or None
        A label of each item (e.g. its case): see `WorkQueue`.
    families : array_like of int, optional
        A label of each item: see `WorkQueue`.
    """

    def __init__(self, costs, group_sizes, *, width=None, settings=None, now=0.0, kinds="auto",
                 families=None):
        settings = QueueSettings() if settings is None else settings
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
        self.chunk_factor = settings.chunk_factor
        self.min_chunk_seconds = settings.min_chunk_seconds
        self.max_chunk_seconds = settings.max_chunk_seconds
        width = (
            np.ones(len(self.costs), dtype=int) if width is None else np.asarray(width, dtype=int)
        )
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
            place[by_kind] = np.arange(len(order)) - np.searchsorted(
                ordered[by_kind], ordered[by_kind]
            )
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
        scale = self._round_trip_scale(worker, completed, now)
        for k, wall in completed:
            wall *= scale
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

    def _round_trip_scale(self, worker, completed, now):
        """Factor (>= 1) from the items' compute seconds to the wall time their chunk
        took from hand-out to this report (writing rows, checkpoints, messages, waiting
        for the server): the ETA and the chunk sizes count what an item really costs the
        job, not only its engine call.  Forgets the worker's chunk in flight."""
        chunk = self.in_flight.pop(worker, None)
        computed = sum(wall for _, wall in completed)
        if chunk is None or computed <= 0:
            return 1.0
        return max(1.0, (now - chunk[1]) / computed)

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
            target = min(
                max(target, g * seconds / ratio), g * max(seconds, self.max_chunk_seconds) / ratio
            )
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
        while items and (
            not chunk or cost + self.costs[items[0] if front else items[-1]] <= target
        ):
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
