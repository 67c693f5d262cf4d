"""Gathering the partial results of items that belong together (the parts of one
realization) on one rank per family, in part order."""
import numpy as np

from .transport import PART, poll_recv


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
            self.sending.append(self.comm.isend((item, value), dest=self.home(f), tag=PART))
        self.sending = [r for r in self.sending if not r.Test()]

    def _receive(self, item, value):
        f = int(self.families[item])
        self.store.setdefault(f, {})[int(self.parts[item])] = value

    def poll(self):
        """Receive what has arrived; return the families now complete on this rank as
        [(family, [values in part order]), ...] (each once)."""
        from mpi4py import MPI
        status = MPI.Status()
        while self.comm.Iprobe(MPI.ANY_SOURCE, PART, status):
            self._receive(*self.comm.recv(source=status.Get_source(), tag=PART))
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
        expected = np.bincount(self.families, weights=computed, minlength=len(self.size)).astype(
            int
        )
        mine = [f for f in range(len(self.size))
                if self.home(f) == self.rank and expected[f] and f not in self.handed]
        waiting = sum(expected[f] - len(self.store.get(f, ())) for f in mine)
        for _ in range(waiting):
            self._receive(*poll_recv(self.comm, MPI.ANY_SOURCE, PART)[0])
        done = self._complete(expected)
        MPI.Request.Waitall(self.sending)
        self.comm.Free()
        incomplete = [f for f in mine if expected[f] < self.size[f]]
        return done, incomplete
