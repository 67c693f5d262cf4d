"""Quantum-jump (Monte-Carlo wave-function) trajectories of the GKSL equation (15) on
the sectors of Engine 3 (`tlsmpi.engines.ed`).

Eq. (15) is the GKSL form with two jump operators per TLS (docs/design.md section 2),

    L_i^relax = sqrt(Y_i (1 + f_i)) S+_i   (down -> up, rate 4 Y_i (1 + f_i)),
    L_i^excite = sqrt(Y_i f_i) S-_i        (up -> down, rate 4 Y_i f_i),

since S-S+ = 4 P_down and S+S- = 4 P_up.  Between jumps a state evolves with

    H_eff = H - (i/2) sum L^dag L = H - i Gamma,  Gamma(s) = 2 sum_i Y_i ((1 + f_i) b_i + f_i (1 -
    b_i)),

diagonal in the S^z basis, so H_eff keeps the sectors of H (magnetization or parity).
Each sector block of H_eff (complex symmetric, not Hermitian) is diagonalized once,
H_eff = V diag(lambda) V^-1; a block whose eigenvector condition number
||V||_1 ||V^-1||_1 exceeds `SECTOR_COND_MAX` is evolved with scipy's expm_multiply instead.

One trajectory: draw r ~ U(0, 1]; the next jump is at the time tau where the no-jump
norm ||exp(-i H_eff tau) psi||^2 falls to r (Brent's method on its logarithm); the
channel is drawn with probability proportional to ||L psi||^2; the state is normalized
after the jump.  Between jumps the normalized states at the output times are recorded.
The average of |psi><psi| over trajectories solves Eq. (15); observables come from the
averaged reduced density matrices, never from averaging C.

Reproducibility: trajectory m of realization r (master seed s) draws from
numpy.random.default_rng([r, s, 2, m]) only.  Trajectories are summed in blocks of
`BLOCK` consecutive indices, and blocks are added in block order, so the result is
bitwise the same however the blocks are spread over ranks (or over a work queue).
"""
import math

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.optimize import brentq
from scipy.sparse.linalg import expm_multiply

from ..errors import SolverError
from ..physics.basis import product_amplitudes
from ..physics.measures import mean_pair_concurrence
from ..physics.propagators import rates
from .base import never
from .readout import StateReadout
from .sectors import Sectors

#: Trajectories per block, the unit of exact combination and a work item of the runner.
BLOCK = 20
#: Largest eigenvector condition number of an H_eff block evolved by its eigenvectors:
#: the rounding error of exp(-i H_eff t) psi is ~ eps * cond (2e-10 at SECTOR_COND_MAX).
SECTOR_COND_MAX = 1e6
#: Output times evaluated together between jumps (one matrix-matrix product).
CHUNK = 8


class NoJump:
    """exp(-i H_eff (t - t0)) psi(t0) per sector (module docstring).

    Parameters
    ----------
    sectors : tlsmpi.engines.sectors.Sectors
    checkpoint : callable, optional
        Called before each sector's eigendecomposition (`tlsmpi.engines.Engine.checkpoint`).

    Attributes
    ----------
    cond : list of float
        Eigenvector condition number of each sector block.
    """

    def __init__(self, sectors, checkpoint=never):
        real = sectors.real
        up_down, down_up = rates(real.Y, real.f)
        b = sectors.bits.astype(float)
        gamma = 0.5 * (b @ down_up + (1 - b) @ up_down)
        self.N = real.N
        self.blocks, self.cond = [], []
        for idx in sectors.indices:
            checkpoint()
            H = sectors.hamiltonian(idx) - 1j * np.diag(gamma[idx])
            try:
                lam, V = scipy.linalg.eig(H)
                Vinv = np.linalg.inv(V)
                cond = np.linalg.norm(V, 1) * np.linalg.norm(Vinv, 1)
            except np.linalg.LinAlgError:
                cond = math.inf
            self.cond.append(cond)
            if cond <= SECTOR_COND_MAX:
                self.blocks.append((idx, lam, V, Vinv))
            else:
                self.blocks.append((idx, None, scipy.sparse.csr_matrix(H), None))
        self.t0, self.coef = 0.0, []

    def start(self, psi, t0):
        """Take the state ``psi`` (2^N) at time ``t0`` as the start of the evolution."""
        self.t0 = t0
        self.coef = [
            psi[idx] if lam is None else Vinv @ psi[idx] for idx, lam, _, Vinv in self.blocks
        ]

    def states(self, times):
        """Unnormalized no-jump states at ``times`` >= t0, shape (len(times), 2^N)."""
        tau = np.asarray(times, dtype=float) - self.t0
        out = np.empty((len(tau), 2**self.N), dtype=complex)
        for (idx, lam, V, _), a in zip(self.blocks, self.coef):
            if lam is not None:
                out[:, idx] = (np.exp(-1j * np.outer(tau, lam)) * a) @ V.T
            else:
                out[:, idx] = [expm_multiply(-1j * x * V, a) for x in tau]
        return out

    def norm2(self, t):
        """||exp(-i H_eff (t - t0)) psi(t0)||^2."""
        return float(np.sum(np.abs(self.states([t])[0]) ** 2))


class Jumps:
    """The jump operators of Eq. (15) on the configurations of ``sectors``."""

    def __init__(self, sectors):
        real = sectors.real
        self.N, self.bits = real.N, sectors.bits
        up_down, down_up = rates(real.Y, real.f)
        self.rates = np.concatenate([down_up, up_down])     # relax channels, then excite

    def apply(self, psi, u):
        """The normalized state after a jump from the normalized ``psi``; ``u`` ~ U(0, 1)
        picks the channel with probability ||L psi||^2 / sum ||L psi||^2."""
        down = (np.abs(psi) ** 2) @ self.bits
        w = self.rates * np.concatenate([down, 1 - down])
        c = min(int(np.searchsorted(np.cumsum(w), u * w.sum(), side="right")), len(w) - 1)
        site, relax = c % self.N, c < self.N
        src = np.flatnonzero(self.bits[:, site] == (1 if relax else 0))
        new = np.zeros_like(psi)
        new[src ^ (1 << (self.N - 1 - site))] = psi[src]
        return new / np.linalg.norm(new)


def trajectory(nojump, jumps, psi0, times, rng):
    """One trajectory: the normalized states at ``times`` (T, 2^N) and the number of jumps."""
    t = np.asarray(times, dtype=float)
    out = np.empty((len(t), len(psi0)), dtype=complex)
    nojump.start(psi0, 0.0)
    r, k, n_jumps = 1.0 - rng.random(), 0, 0            # r in (0, 1]
    while k < len(t):
        phi = nojump.states(t[k:k + CHUNK])
        n2 = np.sum(np.abs(phi) ** 2, axis=1)
        below = np.flatnonzero(n2 <= r)
        m = below[0] if below.size else len(n2)
        out[k:k + m] = phi[:m] / np.sqrt(n2[:m, None])
        k += m
        if m == len(n2):
            continue
        lo = max(nojump.t0, t[k - 1]) if k else nojump.t0

        def excess(x):
            return math.log(nojump.norm2(x) / r)
        # the norm at lo was above r; recomputed alone it may round to r or below
        tj = lo if excess(lo) <= 0 else brentq(excess, lo, t[k], xtol=1e-14 * t[k], rtol=1e-14)
        psi = nojump.states([tj])[0]
        psi = jumps.apply(psi / np.linalg.norm(psi), rng.random())
        nojump.start(psi, tj)
        r, n_jumps = 1.0 - rng.random(), n_jumps + 1
    return out, n_jumps


class Setup:
    """What all trajectories of one realization share: the reduced density matrices to
    read (`tlsmpi.engines.readout.StateReadout`), the no-jump evolution and the jump operators.

    Parameters
    ----------
    real : tlsmpi.physics.model.Realization
    request : tlsmpi.physics.observables.Request
    checkpoint : callable, optional
        Passed to `NoJump`.
    """

    def __init__(self, real, request, checkpoint=never):
        self.real = real
        self.readout = StateReadout(real, request)
        sectors = Sectors(real)
        self.nojump, self.jumps = NoJump(sectors, checkpoint), Jumps(sectors)
        self.psi0 = product_amplitudes(real)


def n_blocks(M):
    """Number of blocks of `BLOCK` trajectories that hold M trajectories."""
    return -(-M // BLOCK)


def block_sums(setup, times, block, M, checkpoint=never):
    """Block ``block`` of the M trajectories of ``setup.real``: the sums over trajectories
    BLOCK * block ... (up to M) of the reduced density matrices of ``setup.readout``, in
    trajectory order; ``checkpoint()`` is called before each trajectory.

    Returns
    -------
    dict
        {"sites", "pairs", "bubbles"} sums, "count" trajectories, "jumps" their jumps,
        "cond" the largest eigenvector condition number of the H_eff blocks.
    """
    real = setup.real
    total = {"count": 0, "jumps": 0}
    for m in range(BLOCK * block, min(BLOCK * (block + 1), M)):
        checkpoint()
        rng = np.random.default_rng([real.index, real.seed, 2, m])
        states, n = trajectory(setup.nojump, setup.jumps, setup.psi0, times, rng)
        for key, value in setup.readout.densities(states, checkpoint).items():
            total[key] = total[key] + value if key in total else value
        total["count"] += 1
        total["jumps"] += n
    total["cond"] = max(setup.nojump.cond)
    return total


def combine(readout, blocks):
    """Trajectory average from the `block_sums` of all blocks, added in block order (so
    the result is bitwise the same wherever the blocks ran):

    observables : dict
        The requested observables (`tlsmpi.engines.readout.Readout.observables`) of
        the averaged density matrices.
    concurrence_err : (T,) array
        Jackknife standard error of C over the blocks (None with one block).
    pairs, pairs_err : (T, P, 4, 4) arrays
        Averaged pair density matrices (pairs i < j in order) and their standard error
        over the blocks (of the modulus of the deviations).
    jumps : float
        Mean number of jumps per trajectory.
    cond : float
        Largest eigenvector condition number of the H_eff blocks.

    Raises SolverError if the average is not finite.
    """
    total = dict(blocks[0])
    for s in blocks[1:]:
        for key in ("sites", "pairs", "bubbles", "count", "jumps"):
            total[key] = total[key] + s[key]
    result = _statistics(readout, total, np.array([s["pairs"] for s in blocks]),
                         np.array([s["count"] for s in blocks]))
    result["cond"] = max(s["cond"] for s in blocks)
    if not np.all(np.isfinite(result["observables"].get("concurrence", 0.0))):
        raise SolverError(f"N = {readout.N}: non-finite trajectory average (largest H_eff "
                          f"condition number {result['cond']:.3g})")
    return result


def average(real, times, request, M):
    """Average of M trajectories of one realization on one process: `combine` of all
    `block_sums` (the runner spreads the blocks over ranks as work items instead)."""
    setup = Setup(real, request)
    return combine(setup.readout, [block_sums(setup, times, b, M) for b in range(n_blocks(M))])


def _statistics(readout, total, pair_blocks, counts):
    """Averages and jackknife errors over blocks (see `average`)."""
    M = total["count"]
    rho = {key: total[key] / M for key in ("sites", "pairs", "bubbles")}
    out = {"observables": readout.observables(rho), "pairs": rho["pairs"],
           "jumps": total["jumps"] / M, "concurrence_err": None, "pairs_err": None}
    B = len(counts)
    if B > 1:
        w = counts[:, None, None, None, None]
        loo = (total["pairs"] - pair_blocks) / (M - w)                 # leave one block out
        C = mean_pair_concurrence([loo], readout.N, axis=-1)          # (B, T)
        out["concurrence_err"] = np.sqrt((B - 1) / B * ((C - C.mean(0)) ** 2).sum(0))
        dev = loo - loo.mean(0)
        out["pairs_err"] = np.sqrt((B - 1) / B * (np.abs(dev) ** 2).sum(0))
    return out
