"""Engine 1: exact reduced density matrices from the factorized GKSL dynamics.

H (Eq. 23) is diagonal in the S^z basis and every dissipator of Eq. (15) is
on-site, so an element <s_A|rho_A(t)|s'_A> of any reduced density matrix is a
product of 2x2 problems (docs/design.md section 4, generalizing App. B):

    prod_{i in C} rho0_i[s_i, s'_i] exp((i nu_i d_i/2 - Gc_i) t)
      x prod_{k in A\\C} [exp(M_k t) p_k]_{s_k}  x  prod_{j not in A} 1^T exp(M_j t) p_j,

C the sites with s_i != s'_i, d_i = s_i - s'_i = +-2, M_j = Q_j - i w_j diag(1, -1),
w_j = 2 sum_{i in C} J_ij d_i.  Populations relax down->up at 4Y(1+f), up->down
at 4Yf; coherences decay at Gc = 2Y(1+2f).  Basis order: (up, down), up = S^z = +1.

Pair density matrices (`pair_rdms`) use the four independent coherence patterns
(d_i, d_j) in {(0,0), (2,0), (0,2), (2,+-2)}; the others follow by Hermiticity.
One-coherent-site patterns cost O(N^2 T) with prefix/suffix products; the two
doubly coherent patterns are the O(N^3 T) core, where at T = 0 (unitary or not)
angle addition (e^{-i(a+b)t} = e^{-iat} e^{-ibt}) turns every factor into
products of precomputed per-site tables, with no transcendental function in the
inner loop; at T > 0 the closed form is evaluated directly.
"""
import numpy as np

from ..errors import ConfigError
from ..physics import observables as registry
from ..physics.propagators import coherences, propagate_populations, trace_factor
from .base import Engine, never, register
from .subsystems import half_system_entropy, route_costs


def exclusive_products(F):
    """P[i, j] = prod_{k != j} F[i, k] along axis 1, without division (prefix x suffix)."""
    ones = np.ones_like(F[:, :1])
    prefix = np.cumprod(np.concatenate([ones, F[:, :-1]], axis=1), axis=1)
    suffix = np.cumprod(np.concatenate([ones, F[:, :0:-1]], axis=1), axis=1)[:, ::-1]
    return prefix * suffix


class PairTables:
    """Two-site reduced density matrices rho_ij(t) of one realization, all pairs i < j.

    Precomputes the O(N^2 T) tables once; `rows(i)` returns rho_ij for j > i.
    """

    def __init__(self, real, times):
        self.real = real
        self.t = t = np.asarray(times, dtype=float)
        self.unitary = not np.any(real.Y)
        rho0 = real.initial_density_matrices()
        self.p_up = rho0[:, 0, 0].real
        N = real.N
        site = (self.p_up, real.Y, real.f)
        self.c = coherences(real, t)                                   # (N, T)
        self.pop = np.stack(propagate_populations(0.0, t, *site), 1)   # (N, 2, T)
        # site j seen by a coherence at i with d_i = +2: omega_j = 4 J_ij
        v = np.stack(propagate_populations(4 * real.J, t, *site), 2)   # (i, j, 2, T)
        self.v = v
        F = v.sum(2)
        F[np.arange(N), np.arange(N)] = 1.0
        self.excl = exclusive_products(F)     # excl[i, j] = prod_{k != i, j} F[i, k]
        # at T = 0 the doubly coherent factors are products of per-site tables
        self.tables = not np.any(real.f)
        if self.tables:
            self.E = np.exp(-4j * real.J[:, :, None] * t)              # e^{-i 4 J_ik t}
            self.Ec = self.E.conj()
            self.decay = np.exp(-4 * np.outer(real.Y, t))              # e^{-4 Y_k t}
            self.m = 2 * self.p_up - 1

    def _omega(self, i, sign):
        """omega_k = 4 (J_ik + sign J_jk) for j > i, shape (N-i-1, N)."""
        J = self.real.J
        return 4 * (J[i][None, :] + sign * J[i + 1:])

    def _double(self, i, sign):
        """prod_{k != i, j} 1^T exp(M_k t) p_k with omega_k = 4 (J_ik + sign J_jk), j > i.

        At T = 0 (kappa = 2Y - i omega) the factor is
        F = X (1 + c)/2 + e^{-4Yt} X* (1 - c)/2,  X = e^{-i omega t},  c = (2Y - i omega m)/(2Y - i
        omega),
        m = 2 p_up - 1, and X = e^{-i 4 J_ik t} e^{-i 4 sign J_jk t} by angle addition.
        """
        N, Y = self.real.N, self.real.Y
        if self.tables:
            G = self.E[i] * (self.E[i + 1:] if sign > 0 else self.Ec[i + 1:])
            if self.unitary:                                           # c = m: Re X + i m Im X
                G.imag *= self.m[:, None]
            else:
                w = self._omega(i, sign)
                z = 2 * Y - 1j * w
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = np.where(z == 0, self.m, (2 * Y - 1j * w * self.m) / z)
                G = G * ((1 + c) / 2)[..., None] + self.decay * G.conj() * ((1 - c) / 2)[..., None]
        else:
            G = trace_factor(self._omega(i, sign), self.t, self.p_up, Y, self.real.f)
        G[:, i] = 1.0
        G[np.arange(N - i - 1), np.arange(i + 1, N)] = 1.0
        return G.prod(axis=1)

    def rows(self, i):
        """rho_ij(t) for j = i+1..N-1, shape (N-i-1, T, 4, 4), basis |s_i s_j> with
        index 2 a_i + a_j (a = 0 for up)."""
        N, T = self.real.N, len(self.t)
        js = np.arange(i + 1, N)
        rho = np.zeros((len(js), T, 4, 4), dtype=complex)
        pi, pj = self.pop[i], self.pop[js]
        for a in range(2):
            for b in range(2):
                rho[:, :, 2 * a + b, 2 * a + b] = pi[a] * pj[:, b]
        ci, cj = self.c[i], self.c[js]
        # coherent at i only: <up b|rho|down b>; site j sees omega = 4 J_ij
        left = ci * self.excl[i, js]
        for b in range(2):
            rho[:, :, b, 2 + b] = left * self.v[i, js, b]
        # coherent at j only: <a up|rho|a down>; site i sees omega = 4 J_ji
        right = cj * self.excl[js, i]
        for a in range(2):
            rho[:, :, 2 * a, 2 * a + 1] = right * self.v[js, i, a]
        rho[:, :, 0, 3] = ci * cj * self._double(i, +1)
        rho[:, :, 1, 2] = ci * cj.conj() * self._double(i, -1)
        upper = np.triu_indices(4, 1)
        rho[:, :, upper[1], upper[0]] = rho[:, :, upper[0], upper[1]].conj()
        return rho


def pair_rdms(real, times):
    """All rho_ij(t), i < j, stacked in row-major pair order: shape (N(N-1)/2, T, 4, 4)."""
    engine = PairTables(real, times)
    return np.concatenate([engine.rows(i) for i in range(real.N - 1)])


def site_rdms(tables):
    """rho_i(t) of every site from the tables of `PairTables`, shape (T, N, 2, 2): the
    populations, and <up|rho_i|down> = c_i prod_{k != i} 1^T exp(M_k t) p_k (the
    coherence of site i seen by every other site, omega_k = 4 J_ik; docs/design.md
    section 4 with A = {i})."""
    N = tables.real.N
    F = tables.v.sum(2)                                            # (i, k, T)
    F[np.arange(N), np.arange(N)] = 1.0
    coherence = tables.c * F.prod(axis=1)
    rho = np.empty((len(tables.t), N, 2, 2), dtype=complex)
    rho[:, :, 0, 0] = tables.pop[:, 0].T
    rho[:, :, 1, 1] = tables.pop[:, 1].T
    rho[:, :, 0, 1] = coherence.T
    rho[:, :, 1, 0] = coherence.conj().T
    return rho


def pair_observables(real, times, request, checkpoint=never, tables=None):
    """The pair observables of ``request`` (`tlsmpi.physics.observables`), e.g. C(t) =
    (1/N) sum_{i<j} C_ij(t) of Eq. (28), accumulated row by row of `PairTables` (memory
    O(N T)); ``checkpoint()`` is called before each row."""
    tables = tables or PairTables(real, times)

    def rows():
        for i in range(real.N - 1):
            checkpoint()
            yield tables.rows(i)
    return registry.reduce(request, "pair", real.N, rows(), axis=0)


def average_concurrence(real, times, checkpoint=never):
    """C(t) of Eq. (28) alone (`pair_observables`)."""
    return pair_observables(real, times, registry.Request(), checkpoint)["concurrence"]


def compute(real, times, request, comm=None, checkpoint=never):
    """Engine 1 entry point: the observables of ``request`` for one realization, each (T,)
    (and the ``_resolved`` rows); ``checkpoint()`` is called between rows of pairs and
    between bipartitions and time chunks of the entropy."""
    if real.params.flipflop:
        raise ValueError("model.flipflop > 0 breaks the factorization of Engine 1: "
                         "use engine.name = 'liouvillian' (N <= 11) or set model.flipflop = 0")
    out = {}
    tables = None
    if request.wants("site") or request.wants("pair"):
        tables = PairTables(real, times)
    if request.wants("site"):
        out.update(registry.reduce(request, "site", real.N, [site_rdms(tables)], axis=1))
    if request.wants("pair"):
        out.update(pair_observables(real, times, request, checkpoint, tables))
    if "entropy" in request.observables:
        out["entropy"] = half_system_entropy(real, times, real.bubbles(request.bipartitions),
                                             checkpoint=checkpoint)
    return {name: out[name] for name in registry.outputs(request)}


#: Largest N for the entropy (rho_A of N/2 sites: 2^(N/2) x 2^(N/2) per time).
MAX_N_ENTROPY = 24


@register
class ExactEngine(Engine):
    """Engine 1 in the registry: one realization per rank, any N, open or closed."""
    name = "exact"
    kinds = ("site", "pair")
    observables = ("entropy",)

    def check(self, cases, request):
        for p in cases:
            if p.flipflop:
                raise ConfigError(f"model.flipflop = {p.flipflop}: flip-flop couplings break the "
                                  "exact factorization; set engine.name = \"liouvillian\" or "
                                  "flipflop = 0")
            if "entropy" in request.observables and p.N > MAX_N_ENTROPY:
                raise ConfigError(f"model.N = {p.N} with observables.entropy: the exact engine "
                                  f"handles N <= {MAX_N_ENTROPY} for the entropy; lower N "
                                  "or disable the entropy")

    def memory(self, params, times, request, ranks=1):
        """The O(N^2 T) complex tables of `PairTables` (v, E, Ec, excl and one row's
        doubly coherent factors: about 8 arrays of N^2 T complex numbers)."""
        N, T = params.N, len(times)
        return 8 * 16.0 * N * N * T + 2 * 16.0 * N * T * 16

    def cost(self, params, times, request, draw):
        """O(N^3 T) pair core plus O(N^2 T) tables (within a factor 2 of the measured
        seconds for N = 8..64, docs/performance.md; twice as much with dissipation), plus
        the entropy's own cost model (`tlsmpi.engines.subsystems.route_costs`)."""
        N, T = params.N, len(times)
        seconds = T * (1.5e-6 * N**2 + 1.1e-8 * N**3) * (2.0 if params.epsilon else 1.0) + 1e-3
        if "entropy" in request.observables:
            n_bubbles = request.bipartitions or N
            routes = route_costs(N, N // 2, T, n_bubbles)
            seconds += routes["factorized"] if params.epsilon else min(routes.values())
        return seconds

    def compute(self, real, times, request, comm=None):
        return compute(real, times, request, comm, self.checkpoint)
