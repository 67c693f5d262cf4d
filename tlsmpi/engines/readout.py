"""What the observables read from a state: the reduced density matrices of every site,
of all pairs i < j and of the bubble bipartitions (Eq. 29), as the request needs them.

`Readout` selects the subsystems once per realization and turns their density matrices
into the registered observables (`tlsmpi.physics.observables`); a subclass says how the
density matrices come out of its engine's state (`StateReadout`: state vectors of
Engine 3; Engine 2 reads Pauli coefficients).
"""
import numpy as np

from ..physics import observables as registry
from ..physics.basis import reduced
from .base import never


class Readout:
    """The sites, pairs and bubbles of ``request`` for one realization.

    Parameters
    ----------
    real : tlsmpi.physics.model.Realization
    request : tlsmpi.physics.observables.Request
    """

    def __init__(self, real, request):
        self.N = N = real.N
        self.request = request
        self.sites = [(i,) for i in range(N)] if request.wants("site") else []
        self.pairs = ([(i, j) for i in range(N) for j in range(i + 1, N)]
                      if request.wants("pair") else [])
        self.bubbles = (real.bubbles(request.bipartitions) if request.wants("subsystem")
                        else np.zeros((0, 0), int))

    def site_states(self, state):
        """rho_i of every site of ``state``, shape (T, sites, 2, 2)."""
        raise NotImplementedError

    def pair_states(self, state):
        """rho_ij of every pair of ``state``, shape (T, pairs, 4, 4)."""
        raise NotImplementedError

    def bubble_states(self, state):
        """rho_A of every bubble of ``state``, shape (T, bubbles, d, d)."""
        raise NotImplementedError

    def observables(self, state):
        """The requested observables, each (T,) (and (T, items) ``_resolved`` rows):
        site and pair means, C(t) of Eq. (28), the mean S_E(t) over the bubbles (Eq. 29)."""
        out = {}
        for kind, states in (("site", self.site_states), ("pair", self.pair_states),
                             ("subsystem", self.bubble_states)):
            if self.request.wants(kind):
                out.update(registry.reduce(self.request, kind, self.N, [states(state)], axis=1))
        return {name: out[name] for name in registry.outputs(self.request)}


class StateReadout(Readout):
    """Readout of state vectors: `densities` of psi (T, 2^N), whose sums over
    trajectories are the trajectory averages; `observables` reads those densities."""

    def densities(self, psi, checkpoint=never):
        """{"sites": (T, S, 2, 2), "pairs": (T, P, 4, 4), "bubbles": (T, n_bubbles, d, d)}
        of the states ``psi`` (T, 2^N); ``checkpoint()`` is called before each density
        matrix."""
        d = 2 ** self.bubbles.shape[1]
        out = {}
        for key, subsystems, size in (("sites", self.sites, 2), ("pairs", self.pairs, 4),
                                      ("bubbles", self.bubbles, d)):
            out[key] = np.zeros((len(psi), len(subsystems), size, size), complex)
            for k, A in enumerate(subsystems):
                checkpoint()
                out[key][:, k] = reduced(psi, A, self.N)
        return out

    def site_states(self, state):
        return state["sites"]

    def pair_states(self, state):
        return state["pairs"]

    def bubble_states(self, state):
        return state["bubbles"]
