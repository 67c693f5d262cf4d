"""The Pauli and ket-bra bases of Engine 2 and the density matrices read from them
(docs/design.md section 5; docs/liouvillian.md).

rho = 2^-N sum_mu c_mu P_mu with P_mu = P_{a_0} x ... x P_{a_{N-1}}, P_0..3 = (I, X, Y, Z)
in the (up, down) S^z basis, and c_mu = Tr(rho P_mu) real.  The string index is
mu = sum_k a_k 4^(N-1-k): site 0 is the most significant base-4 digit, the same order as
the Kronecker products of tests/dense.py, so reshaping c to (4,)*N puts site k on axis k.
The reduced density matrices of sites, pairs (Eq. 28) and bubbles (Eq. 29) are sums over
the strings that are the identity outside the subsystem (`PauliReadout`).  Also the
checks of the output times both paths share.  Pure numpy.
"""
import numpy as np

from ...errors import ConfigError
from ..readout import Readout

#: Single-site Paulis (I, X, Y, Z) in the (up, down) basis; up = S^z = +1.
PAULI = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
#: Single-site ket-bra units |s><s'| with code q = 2 s + s' (s = 0 up, 1 down).
UNITS = np.eye(4).reshape(4, 2, 2)
#: Delta m = m_ket - m_bra of each code (m = number of up spins): |u><d| has +1.
DELTA_M = np.array([0, 1, -1, 0])


def strings(local, k):
    """Kronecker products of the four 2x2 matrices ``local`` on k sites, (4^k, 2^k, 2^k),
    first site most significant."""
    P = local
    for _ in range(k - 1):
        P = np.einsum("aij,bkl->abikjl", P, local).reshape(
            len(P) * 4, 2 * P.shape[1], 2 * P.shape[1]
        )
    return P


def subsystem_indices(N, sites):
    """Global indices of the 4^|A| strings that are the identity outside ``sites``,
    in the order of `density_from_pauli` (first listed site most significant)."""
    idx = np.zeros(1, dtype=np.int64)
    for s in sites:
        idx = (idx[:, None] + (np.arange(4, dtype=np.int64) << (2 * (N - 1 - s)))).ravel()
    return idx


def density_from_pauli(c, n):
    """rho_A = 2^-n sum_mu c_mu P_mu from coefficients c (..., 4^n) -> (..., 2^n, 2^n)
    in the Kronecker basis (first site most significant).  With c the coefficients of
    strings that are the identity outside A, this is the partial trace over the rest."""
    lead = c.shape[:-1]
    t = c.reshape(lead + (4,) * n)
    for _ in range(n):
        t = np.tensordot(t, PAULI, axes=([len(lead)], [0]))        # appends (ket, bra) of a site
    L = len(lead)
    t = t.transpose(
        tuple(range(L))
        + tuple(L + 2 * k for k in range(n))
        + tuple(L + 2 * k + 1 for k in range(n))
    )
    return t.reshape(lead + (2**n, 2**n)) / 2**n


class PauliReadout(Readout):
    """Readout of the Pauli coefficients of Engine 2: the coefficients of the sites, pairs
    and bubbles (``indices``, read from the state vector) and their density matrices."""

    def __init__(self, real, request):
        super().__init__(real, request)
        N = self.N
        groups = (self.pairs, self.bubbles, self.sites)
        parts = [subsystem_indices(N, A) for group in groups for A in group]
        self.indices, inverse = np.unique(
            np.concatenate(parts + [np.zeros(0, np.int64)]), return_inverse=True
        )
        pos, start = [], 0
        for group, size in zip(groups, (2, self.bubbles.shape[1], 1)):
            n = len(group) * 4**size
            pos.append(inverse[start:start + n].reshape(len(group), 4**size))
            start += n
        self.pair_pos, self.bubble_pos, self.site_pos = pos

    def site_states(self, coeffs):
        """rho_i (T, sites, 2, 2) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.site_pos], 1)

    def pair_states(self, coeffs):
        """rho_ij (T, pairs, 4, 4) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.pair_pos], 2)

    def bubble_states(self, coeffs):
        """rho_A (T, bubbles, d, d) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.bubble_pos], self.bubbles.shape[1])


def output_times(times):
    """``times`` as a float array; ConfigError unless 1-d, non-decreasing and >= 0."""
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or (t < 0).any() or (np.diff(t) < 0).any():
        raise ConfigError(f"output times must be a non-decreasing 1-d array of t >= 0, got {t!r}")
    return t


def label(real):
    """The realization in an error or log message."""
    return f"realization {real.index} (seed {real.seed}, N = {real.N})"
