"""Engine 3: exact diagonalization per symmetry sector (flip-flop couplings, footnote 67).

State vectors live on the 2^N configurations of the S^z product basis, index
s = sum_k b_k 2^(N-1-k) with b_k = 0 for up (S^z = +1), site 0 most significant (the
order of tests/dense.py and tlsmpi.entropy).  The Hamiltonian is Eq. (23) plus the
flip-flop term of `tlsmpi.model.ModelParams`:

    H = -1/2 sum_i nu_i S^z_i + sum_{i != j} J_ij S^z_i S^z_j + H_ff,

* ``"exchange"``: H_ff = sum_{i<j} K_ij (S+_i S-_j + S-_i S+_j), matrix element 4 K_ij
  between configurations that differ by swapping an anti-aligned pair (i, j); it
  conserves the number of down spins, so H splits into N + 1 magnetization sectors;
* ``"xx"``: H_ff = sum_{i<j} 2 K_ij S^x_i S^x_j, element 2 K_ij between configurations
  that differ by flipping both i and j; it conserves the parity of the number of down
  spins (two sectors of 2^(N-1)).

Without dissipation (epsilon = 0) each sector is diagonalized once (real symmetric
eigh) and |psi(t)> = sum_sectors V e^{-iEt} V^T |psi(0)> at every output time, so the
cost does not depend on the time window.  The initial state is the product state of
Eq. (26).  Pair density matrices give the concurrence (Eqs. 27-28), bubble
bipartitions the entropy (Eq. 29).  With dissipation (epsilon > 0) the same sectors
carry the quantum-jump trajectories of `tlsmpi.trajectories`.
"""
import math

import numpy as np

from .engines import Engine, never, register
from .entropy import _energies, _product_amplitudes
from .errors import ConfigError
from .observables import concurrence, entropy_vn

#: Complex numbers per time chunk of the state vectors psi(t) (64 MB).
BUDGET = 2**22
#: Bytes of everything else per rank (interpreter, numpy, scipy, MPI).
BASELINE = 150e6
#: Cost model (seconds), measured with ``python -m tlsmpi.bench ed`` on one core of the
#: development machine: real symmetric eigh per D^3, complex non-symmetric eig + inverse
#: per D^3, one complex multiply-add of a matrix-vector product, one amplitude moved
#: into a reduced density matrix.
COST = dict(eigh=3e-10, eig=2.7e-9, mac=6e-10, rdm=2.3e-8, call=1e-3)


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
    real : tlsmpi.model.Realization
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
        self.energies = _energies(real)

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


def reduced(psi, sites, N):
    """rho_A = Tr_B |psi><psi| for each row of ``psi`` (T, 2^N), shape (T, 2^|A|, 2^|A|),
    sites of A in the given order (first most significant, as tests/dense.reduced)."""
    A = list(sites)
    B = [k for k in range(N) if k not in A]
    M = psi.reshape((len(psi),) + (2,) * N).transpose([0, *(1 + np.asarray(A)), *(1 + np.asarray(B, int))])
    M = M.reshape(len(psi), 2 ** len(A), -1)
    return M @ M.conj().swapaxes(-1, -2)


def time_chunks(T, N):
    """Slices of range(T) with about BUDGET / 2^N times each."""
    step = max(1, BUDGET // 2**N)
    return [slice(a, min(a + step, T)) for a in range(0, T, step)]


class Readout:
    """The reduced density matrices the observables read: all pairs i < j (Eq. 28) and
    the bubble bipartitions (Eq. 29) of ``request``."""

    def __init__(self, real, request):
        self.N = N = real.N
        self.request = request
        self.pairs = [(i, j) for i in range(N) for j in range(i + 1, N)] if request.concurrence else []
        self.bubbles = real.bubbles(request.bipartitions) if request.entropy else np.zeros((0, 0), int)

    def densities(self, psi, checkpoint=never):
        """{"pairs": (T, P, 4, 4), "bubbles": (T, n_bubbles, d, d)} of the states ``psi``
        (T, 2^N); the sums of these over trajectories are the trajectory averages.
        ``checkpoint()`` is called before each density matrix."""
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

    def observables(self, rho):
        """{"concurrence": C(t) (Eq. 28), "entropy": mean S_E(t) (Eq. 29)} as requested,
        from the density matrices of `densities` (or their trajectory average)."""
        out = {}
        if self.request.concurrence:
            out["concurrence"] = concurrence(rho["pairs"]).sum(1) / self.N
        if self.request.entropy:
            out["entropy"] = entropy_vn(rho["bubbles"]).mean(1)
        return out


def unitary_states(real, times, sectors=None, checkpoint=never):
    """|psi(t)> under H of Eq. (23) plus the flip-flop term, from the product state of Eq. (26).

    Parameters
    ----------
    real : tlsmpi.model.Realization
    times : array_like, shape (T,)
    sectors : Sectors, optional
        Reused if given.
    checkpoint : callable, optional
        Called before each sector (`tlsmpi.engines.Engine.checkpoint`).

    Returns
    -------
    psi : ndarray, shape (T, 2^N), complex
        One real symmetric eigendecomposition per sector, |psi(t)> = V e^{-iEt} V^T |psi(0)>.
    """
    sec = sectors or Sectors(real)
    t = np.asarray(times, dtype=float)
    psi0 = _product_amplitudes(real)
    psi = np.empty((len(t), 2**real.N), dtype=complex)
    for idx in sec.indices:
        checkpoint()
        E, V = np.linalg.eigh(sec.hamiltonian(idx))
        X = np.exp(-1j * np.outer(t, E)) * (psi0[idx] @ V)
        psi[:, idx] = X.real @ V.T + 1j * (X.imag @ V.T)
        del E, V, X                        # before the next sector's H and eigh work space
    return psi


def unitary_observables(real, times, request, checkpoint=never):
    """Observables of ``request`` for epsilon = 0 (all Y = 0).

    Returns
    -------
    dict
        {"concurrence": C(t) (Eq. 28), "entropy": mean S_E(t) over the bubbles (Eq. 29)}
        as requested, each (T,); computed in time chunks of `BUDGET` amplitudes.
        ``checkpoint()`` is called before each sector and each reduced density matrix.
    """
    readout = Readout(real, request)
    psi = unitary_states(real, times, checkpoint=checkpoint)
    out = {}
    for sl in time_chunks(len(psi), real.N):
        for key, value in readout.observables(readout.densities(psi[sl], checkpoint)).items():
            out.setdefault(key, []).append(value)
    return {key: np.concatenate(v) for key, v in out.items()}


def memory_estimate(params, request, times, trajectories=0):
    """Bytes per rank for one realization: the largest sector's matrix and eigenvectors
    (eigh: H, numpy's copy, LAPACK's divide-and-conquer work ~ 2 D^2 and the output V,
    5 real D^2; N = 16 measured 6.07 GB, ~4.4 D^2 besides the states; trajectories: H_eff, V, V^-1 of every
    sector kept, complex, plus eig's work on the largest), the states psi(t) (T x 2^N
    complex, twice with a chunk of temporaries), the reduced density matrices (with
    trajectories: the sums of a block, and the ceil(M / BLOCK) blocks of one realization
    that its home rank gathers) and the configuration tables (2^N x (N + 24) bytes)."""
    N, T = params.N, len(times)
    sizes = sector_sizes(N, params.flipflop_form)
    D = max(sizes)
    d = 2 ** (N // 2) if request.entropy else 0
    n_bubbles = (request.bipartitions or N) if request.entropy else 0
    tables = 2**N * (N + 24)
    if params.epsilon and trajectories:
        matrices = 16.0 * (2 * sum(s * s for s in sizes) + 3 * D * D)
        states = 16.0 * 2**N * (T + min(T, BUDGET // 2**N))
        from .trajectories import n_blocks
        blocks = 1 + n_blocks(trajectories)                  # the sums, and a home's blocks
        rdm = 16.0 * blocks * T * (16 * N * (N - 1) / 2 + n_bubbles * d * d)
    else:
        matrices = 8.0 * 5 * D * D
        states = 16.0 * 2**N * (T + min(T, BUDGET // 2**N))
        rdm = 16.0 * min(T, BUDGET // 2**N) * (16 * N * N / 2 + n_bubbles * d * d)
    return matrices + states + rdm + tables + BASELINE


def cost_estimate(params, times, request, trajectories=0, jumps=0.0):
    """Predicted seconds on one core (constants `COST`): eigendecompositions per D^3,
    reduced density matrices per amplitude, and per trajectory (T + 10 per jump)
    products with the sector eigenvectors."""
    N, T = params.N, len(times)
    sizes = sector_sizes(N, params.flipflop_form)
    cubes = sum(float(s) ** 3 for s in sizes)
    n_rdm = (N * (N - 1) / 2 if request.concurrence else 0) + ((request.bipartitions or N) if request.entropy else 0)
    per_state = COST["rdm"] * n_rdm * 2**N * T
    if params.epsilon and trajectories:
        squares = sum(float(s) ** 2 for s in sizes)
        per_traj = COST["mac"] * squares * (T + 10 * jumps) + per_state + COST["call"]
        return COST["eig"] * cubes + trajectories * per_traj
    return COST["eigh"] * cubes + per_state + COST["call"]


def expected_jumps(real, t_max):
    """Rough number of jumps of one trajectory up to ``t_max``: the N/2 initially down
    spins relax once, and each TLS keeps jumping at its stationary rate: thermal cycling
    8 Y f (1 + f) / (1 + 2 f), plus, for the xx form, relaxation 4 Y (1 + f) of the down
    population ~ min(1/2, (sum_j 2 |K_ij| / nu_i)^2) that the S^x S^x term keeps
    creating (the local jump operators of Eq. 15 do not see the dressed ground state)."""
    Y, f = real.Y, real.f
    rate = 8 * Y * f * (1 + f) / (1 + 2 * f)
    if real.params.flipflop_form == "xx":
        admixture = np.minimum(0.5, (2 * np.abs(real.K).sum(1) / real.nu) ** 2)
        rate = rate + 4 * Y * (1 + f) * admixture
    return real.N / 2 + float(rate.sum()) * t_max


@register
class EDEngine(Engine):
    """Engine 3 in the registry: exact diagonalization per sector (epsilon = 0) and
    quantum-jump trajectories (epsilon > 0, ``trajectories = M``), whose blocks of
    `tlsmpi.trajectories.BLOCK` trajectories are the parts of a realization (each a
    work item of the runner)."""
    name = "ed"
    observables = ("concurrence", "entropy")
    options = {"trajectories": (0, lambda v: v >= 0, "an integer >= 0 (0: epsilon = 0 only)")}

    def __init__(self, options=None):
        super().__init__(options)
        self._setup = (None, None)         # (realization key, trajectories.Setup) last used

    def ignored_options(self, cases, request):
        """engine.trajectories is used only for open cases (epsilon > 0)."""
        if any(p.epsilon > 0 for p in cases):
            return {}
        return {"trajectories": "every case has epsilon = 0, computed exactly without trajectories"}

    def check(self, cases, request):
        M = self.options["trajectories"]
        for p in cases:
            if p.epsilon and not M:
                raise ConfigError(f"model.epsilon = {p.epsilon}: the ed engine treats dissipation with "
                                  "quantum-jump trajectories; set engine.trajectories = M > 0 "
                                  "(e.g. 1000) or epsilon = 0")

    def memory(self, params, request, times, ranks=1):
        return memory_estimate(params, request, times, self.options["trajectories"])

    def cost(self, params, times, request, draw):
        """`cost_estimate` with `expected_jumps` of the realization (drawn only when
        trajectories are run)."""
        M = self.options["trajectories"]
        jumps = expected_jumps(draw(), float(times[-1])) if params.epsilon and M else 0.0
        return cost_estimate(params, times, request, M, jumps)

    def outputs(self, request):
        """The observables, and with at least two blocks of trajectories (a jackknife
        needs two) the statistical error of C(t), ``concurrence_err``."""
        from .trajectories import BLOCK
        extra = request.concurrence and self.options["trajectories"] >= 2 * BLOCK
        return super().outputs(request) + (["concurrence_err"] if extra else [])

    def parts(self, params, request):
        """One part per block of trajectories for epsilon > 0, else 1."""
        from .trajectories import n_blocks
        M = self.options["trajectories"]
        return n_blocks(M) if params.epsilon and M else 1

    def compute_part(self, real, times, request, part, comm=None):
        """`tlsmpi.trajectories.block_sums` of block ``part``; the H_eff eigendecompositions
        of the last realization are kept for its next block."""
        from . import trajectories
        key = (real.params, real.seed, real.index, request)
        if self._setup[0] != key:
            self._setup = (None, None)     # free the old one first
            self._setup = (key, trajectories.Setup(real, request, self.checkpoint))
        return trajectories.block_sums(self._setup[1], times, part, self.options["trajectories"],
                                       self.checkpoint)

    def combine(self, real, times, request, partials):
        """The trajectory average of `tlsmpi.trajectories.combine`, with the jackknife
        error of C over blocks as ``concurrence_err``."""
        from .trajectories import combine
        res = combine(Readout(real, request), partials)
        err = "concurrence_err" in self.outputs(request)
        return {**res["observables"], **({"concurrence_err": res["concurrence_err"]} if err else {})}

    def compute(self, real, times, request, comm=None):
        """Observables of ``request``, each (T,): exact for Y = 0 (``concurrence_err`` 0),
        else `combine` of all blocks of trajectories computed here."""
        if np.any(real.Y):
            parts = range(self.parts(real.params, request))
            return self.combine(real, times, request,
                                [self.compute_part(real, times, request, p) for p in parts])
        result = unitary_observables(real, times, request, self.checkpoint)
        if "concurrence_err" in self.outputs(request):
            result["concurrence_err"] = np.zeros(len(times))
        return result
