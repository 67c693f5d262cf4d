"""Engine 3: exact diagonalization per symmetry sector (flip-flop couplings, footnote 67).

State vectors live on the 2^N configurations of the S^z product basis, index
s = sum_k b_k 2^(N-1-k) with b_k = 0 for up (S^z = +1), site 0 most significant (the
order of tests/dense.py and tlsmpi.engines.subsystems).  The Hamiltonian is Eq. (23) plus the
flip-flop term of `tlsmpi.physics.model.ModelParams`:

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
carry the quantum-jump trajectories of `tlsmpi.engines.trajectories`.
"""
import numpy as np

from ..errors import ConfigError
from ..physics.basis import product_amplitudes
from .base import Engine, never, register
from .readout import StateReadout
from .sectors import Sectors, sector_sizes
from .trajectories import BLOCK, Setup, block_sums, combine, n_blocks

#: Complex numbers per time chunk of the state vectors psi(t) (64 MB).
BUDGET = 2**22
#: Bytes of everything else per rank (interpreter, numpy, scipy, MPI).
BASELINE = 150e6
#: Cost model (seconds on one core, fitted to ``python -m tlsmpi.bench ed``; docs/performance.md,
#: "Engine 3"): real symmetric eigh per D^3, complex non-symmetric eig + inverse
#: per D^3, one complex multiply-add of a matrix-vector product, one amplitude moved
#: into a reduced density matrix.
COST = dict(eigh=3e-10, eig=2.7e-9, mac=6e-10, rdm=2.3e-8, call=1e-3)


def time_chunks(T, N):
    """Slices of range(T) with about BUDGET / 2^N times each."""
    step = max(1, BUDGET // 2**N)
    return [slice(a, min(a + step, T)) for a in range(0, T, step)]


def unitary_states(real, times, sectors=None, checkpoint=never):
    """|psi(t)> under H of Eq. (23) plus the flip-flop term, from the product state of Eq. (26).

    Parameters
    ----------
    real : tlsmpi.physics.model.Realization
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
    psi0 = product_amplitudes(real)
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
        The requested observables (`tlsmpi.engines.readout.Readout.observables`),
        each (T,) (``_resolved``: (T, items)); computed in time chunks of `BUDGET`
        amplitudes.
        ``checkpoint()`` is called before each sector and each reduced density matrix.
    """
    readout = StateReadout(real, request)
    psi = unitary_states(real, times, checkpoint=checkpoint)
    out = {}
    for sl in time_chunks(len(psi), real.N):
        for key, value in readout.observables(readout.densities(psi[sl], checkpoint)).items():
            out.setdefault(key, []).append(value)
    return {key: np.concatenate(v) for key, v in out.items()}


def sector_memory(params, times, request, trajectories=0):
    """Bytes per rank for one realization: the largest sector's matrix and eigenvectors
    (eigh: H, numpy's copy, LAPACK's divide-and-conquer work ~ 2 D^2 and the output V,
    5 real D^2; trajectories: H_eff, V, V^-1 of every sector kept, complex, plus eig's
    work on the largest), the states psi(t) (T x 2^N
    complex, twice with a chunk of temporaries), the reduced density matrices (with
    trajectories: the sums of a block, and the ceil(M / BLOCK) blocks of one realization
    that its home rank gathers) and the configuration tables (2^N x (N + 24) bytes).
    docs/performance.md ("Engine 3") compares it with the measured peak memory."""
    N, T = params.N, len(times)
    sizes = sector_sizes(N, params.flipflop_form)
    D = max(sizes)
    d = 2 ** (N // 2) if request.wants("subsystem") else 0
    n_bubbles = (request.bipartitions or N) if request.wants("subsystem") else 0
    tables = 2**N * (N + 24)
    if params.epsilon and trajectories:
        matrices = 16.0 * (2 * sum(s * s for s in sizes) + 3 * D * D)
        states = 16.0 * 2**N * (T + min(T, BUDGET // 2**N))
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
    n_rdm = (N * (N - 1) / 2 if request.wants("pair") else 0) + (
        (request.bipartitions or N) if request.wants("subsystem") else 0
    ) + (N if request.wants("site") else 0)
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


#: The extra row of open cases: the jackknife error of C(t) over blocks of trajectories.
CONCURRENCE_ERR = {"concurrence_err": (
    "1", "statistical error of C(t) over trajectories (jackknife over blocks)")}


@register
class EDEngine(Engine):
    """Engine 3 in the registry: exact diagonalization per sector (epsilon = 0) and
    quantum-jump trajectories (epsilon > 0, ``trajectories = M``), whose blocks of
    `tlsmpi.engines.trajectories.BLOCK` trajectories are the parts of a realization (each a
    work item of the runner)."""
    name = "ed"
    kinds = ("site", "pair", "subsystem")
    option_schema = {"trajectories": (0, lambda v: v >= 0, "an integer >= 0 (0: epsilon = 0 only)")}

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
                raise ConfigError(f"model.epsilon = {p.epsilon}: the ed engine treats dissipation "
                                  "with quantum-jump trajectories; set engine.trajectories = M > 0 "
                                  "(e.g. 1000) or epsilon = 0")

    def memory(self, params, times, request, ranks=1):
        return sector_memory(params, times, request, self.options["trajectories"])

    def cost(self, params, times, request, draw):
        """`cost_estimate` with `expected_jumps` of the realization (drawn only when
        trajectories are run)."""
        M = self.options["trajectories"]
        jumps = expected_jumps(draw(), float(times[-1])) if params.epsilon and M else 0.0
        return cost_estimate(params, times, request, M, jumps)

    def outputs(self, request):
        """The observables, and with at least two blocks of trajectories (a jackknife
        needs two) the statistical error of C(t), ``concurrence_err``."""
        extra = "concurrence" in request.observables and self.options["trajectories"] >= 2 * BLOCK
        return {**super().outputs(request), **(CONCURRENCE_ERR if extra else {})}

    def parts(self, params, request):
        """One part per block of trajectories for epsilon > 0, else 1."""
        M = self.options["trajectories"]
        return n_blocks(M) if params.epsilon and M else 1

    def compute_part(self, real, times, request, part, comm=None):
        """`tlsmpi.engines.trajectories.block_sums` of block ``part``; the H_eff eigendecompositions
        of the last realization are kept for its next block."""
        key = (real.params, real.seed, real.index, request)
        if self._setup[0] != key:
            self._setup = (None, None)     # free the old one first
            self._setup = (key, Setup(real, request, self.checkpoint))
        return block_sums(self._setup[1], times, part, self.options["trajectories"],
                          self.checkpoint)

    def combine(self, real, times, request, partials):
        """The trajectory average of `tlsmpi.engines.trajectories.combine`, with the jackknife
        error of C over blocks as ``concurrence_err``."""
        res = combine(StateReadout(real, request), partials)
        err = "concurrence_err" in self.outputs(request)
        return {**res["observables"],
                **({"concurrence_err": res["concurrence_err"]} if err else {})}

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
