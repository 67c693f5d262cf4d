"""The symmetry sectors of H with flip-flop couplings (Engine 3, footnote 67): the
configurations of the S^z product basis (`tlsmpi.physics.basis`) grouped by the number
of down spins (``"exchange"`` form) or its parity (``"xx"``), and the dense real
symmetric block of H in each sector.
"""
import math

import numpy as np

from ..physics.basis import energies


def configurations(N):
    """b[s, k] = 1 if site k is down in configuration s, shape (2^N, N), uint8."""
    s = np.arange(2**N, dtype=np.int64)
    return ((s[:, None] >> np.arange(N - 1, -1, -1)) & 1).astype(np.uint8)


def sector_labels(bits, form):
    """Conserved quantum number of each configuration: the number of down spins
    (``"exchange"``) or its parity (``"xx"``)."""
    ndown = bits.sum(1, dtype=np.int64)
    return ndown if form == "exchange" else ndown % 2


def sector_sizes(N, form):
    """Dimensions of the sectors of H for N TLSs."""
    sizes = [math.comb(N, k) for k in range(N + 1)]
    return sizes if form == "exchange" else [2 ** (N - 1)] * 2


class Sectors:
    """The configurations of one realization grouped by conserved sector, with the
    diagonal energies of Eq. (23) and the sector blocks of H (dense, real symmetric).

    Parameters
    ----------
    real : tlsmpi.physics.model.Realization
    """

    def __init__(self, real):
        self.real = real
        self.N = N = real.N
        self.form = real.params.flipflop_form
        self.bits = configurations(N)
        labels = sector_labels(self.bits, self.form)
        self.indices = [np.flatnonzero(labels == q) for q in np.unique(labels)]
        self.position = np.empty(2**N, dtype=np.int64)
        for idx in self.indices:
            self.position[idx] = np.arange(len(idx))
        self.energies = energies(real)

    def hamiltonian(self, idx):
        """H restricted to the configurations ``idx`` of one sector, (D, D) real."""
        N, K = self.N, self.real.K
        H = np.diag(self.energies[idx])
        b = self.bits[idx]
        for i in range(N):
            for j in range(i + 1, N):
                if K[i, j] == 0:
                    continue
                mask = (1 << (N - 1 - i)) | (1 << (N - 1 - j))
                if self.form == "exchange":
                    src, value = np.flatnonzero(b[:, i] != b[:, j]), 4 * K[i, j]
                else:
                    src, value = np.arange(len(idx)), 2 * K[i, j]
                H[src, self.position[idx[src] ^ mask]] += value
        return H
