"""What the observables read from a state: the reduced density matrices of all pairs
i < j (concurrence, Eq. 28) and of the bubble bipartitions (entropy, Eq. 29).

`Readout` selects the subsystems once per realization and turns their density matrices
into observables; a subclass says how the density matrices come out of its engine's
state (`StateReadout`: state vectors of Engine 3; Engine 2 reads Pauli coefficients).
"""
import numpy as np

from ..physics.basis import reduced
from ..physics.measures import entropy_vn, mean_pair_concurrence
from .base import never


class Readout:
    """The pairs and bubbles of ``request`` for one realization.

    Parameters
    ----------
    real : tlsmpi.physics.model.Realization
    request : tlsmpi.physics.measures.Request
    """

    def __init__(self, real, request):
        self.N = N = real.N
        self.request = request
        self.pairs = ([(i, j) for i in range(N) for j in range(i + 1, N)]
                      if request.concurrence else [])
        self.bubbles = (real.bubbles(request.bipartitions) if request.entropy
                        else np.zeros((0, 0), int))

    def pair_states(self, state):
        """rho_ij of every pair of ``state``, shape (T, pairs, 4, 4)."""
        raise NotImplementedError

    def bubble_states(self, state):
        """rho_A of every bubble of ``state``, shape (T, bubbles, d, d)."""
        raise NotImplementedError

    def observables(self, state):
        """{"concurrence": C(t) (Eq. 28), "entropy": mean S_E(t) over the bubbles
        (Eq. 29)} as requested, each (T,)."""
        out = {}
        if self.request.concurrence:
            out["concurrence"] = mean_pair_concurrence([self.pair_states(state)], self.N, axis=1)
        if self.request.entropy:
            out["entropy"] = entropy_vn(self.bubble_states(state)).mean(1)
        return out


class StateReadout(Readout):
    """Readout of state vectors: `densities` of psi (T, 2^N), whose sums over
    trajectories are the trajectory averages; `observables` reads those densities."""

    def densities(self, psi, checkpoint=never):
        """{"pairs": (T, P, 4, 4), "bubbles": (T, n_bubbles, d, d)} of the states ``psi``
        (T, 2^N); ``checkpoint()`` is called before each density matrix."""
        d = 2 ** self.bubbles.shape[1]
        out = {"pairs": np.zeros((len(psi), len(self.pairs), 4, 4), complex),
               "bubbles": np.zeros((len(psi), len(self.bubbles), d, d), complex)}
        for p, pair in enumerate(self.pairs):
            checkpoint()
            out["pairs"][:, p] = reduced(psi, pair, self.N)
        for b, A in enumerate(self.bubbles):
            checkpoint()
            out["bubbles"][:, b] = reduced(psi, A, self.N)
        return out

    def pair_states(self, state):
        return state["pairs"]

    def bubble_states(self, state):
        return state["bubbles"]
