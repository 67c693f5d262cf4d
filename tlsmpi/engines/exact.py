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
from ..physics.propagators import (coherences, propagate_populations, propagate_sequence,
                                   pulsed_coherences, trace_factor)
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
        Y = self.real.Y
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
        return _product_outside(G, i)

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


class PulsedPairTables(PairTables):
    """`PairTables` under pi pulses (docs/echo.md): the output times of one segment of a
    `tlsmpi.physics.pulses.Protocol`, ``durations`` (T, m + 1) of the intervals between
    its m pulses.

    Every element keeps its factorized form with the coherence pattern of each interval:
    a pulsed coherent site i has d_i^(k) = s_i^(k) d_i, s_i^(k) = (-1)^(m - k) in interval
    k = 0..m (d_i the pattern read at t), so a site j outside it sees omega_j^(k) =
    2 sum_i J_ij d_i^(k) and is propagated interval by interval with its populations
    swapped at its own pulses (`propagate_sequence`).  A coherent factor is
    rho0_i[pattern of interval 0] exp(i nu_i sum_k s_i^(k) dt_k - Gc_i t), times (-1)^m
    for pulses about y.  Without dissipation the trace factor of site k is cos Phi - i m_k
    sin Phi with Phi = 4 sum_i J_ik d_i/2 c_ik(t), c_ik = sum_q s_i^(q) u_k^(q) dt_q and
    u_k^(q) = +-1 the flips of site k itself, so the angle-addition tables of
    `PairTables` apply with the effective times c_ik(t).  With dissipation at T = 0
    (``zero_temperature``) every factor uses per-interval tables instead of the closed
    form (`_zero_temperature`).  ``closed_form`` takes the closed form everywhere (the
    reference of both table paths in the tests).
    """

    def __init__(self, real, durations, protocol, closed_form=False):
        self.real = real
        D = np.asarray(durations, dtype=float)
        self.t = t = D.sum(1)
        m = D.shape[1] - 1
        N = real.N
        self.unitary = not np.any(real.Y)
        rho0 = real.initial_density_matrices()
        self.p_up = rho0[:, 0, 0].real
        self.c, sign, pulsed = pulsed_coherences(real, D, protocol)    # sign s_i^(k)
        flips = np.where(pulsed[:, None], (-1.0) ** np.arange(m + 1), 1.0)   # u_k^(q)
        self.sign = sign
        self.tables = self.unitary and not closed_form
        self.zero_temperature = not (self.unitary or closed_form or np.any(real.f))
        self.durations, self.pulsed = D, pulsed
        self.intervals = self._interval_tables() if self.zero_temperature else None
        if self.tables:
            # populations constant between pulses: v_j = p_j[s0] e^{-i s0 4 J_ij c_ij(t)}
            # at s = s0 u_j^(m) (swapped if j was pulsed an odd number of times)
            ceff = np.einsum("iq,kq,tq->ikt", sign, flips, D)
            self.E = np.exp(-4j * real.J[:, :, None] * ceff)
            self.Ec = self.E.conj()
            self.m = 2 * self.p_up - 1
            p = np.stack([self.p_up, 1 - self.p_up])[:, :, None]          # (2, N, 1)
            odd = flips[:, -1] < 0
            self.pop = np.broadcast_to(np.where(odd[:, None], p[::-1], p).swapaxes(0, 1),
                                       (N, 2, len(t)))
            v = np.stack([p[0] * self.E, p[1] * self.Ec], 2)               # (i, j, s0, T)
            v = np.where(odd[None, :, None, None], v[:, :, ::-1], v)
        else:
            self.pop = np.stack(self.sequence([0.0] * (m + 1)), 1)            # (N, 2, T)
            v = np.stack(self._single(lambda q: 4 * real.J * sign[:, None, q]), 2)
        self.v = v
        F = v.sum(2)
        F[np.arange(N), np.arange(N)] = 1.0
        self.excl = exclusive_products(F)

    def sequence(self, omegas):
        """`propagate_sequence` of every site through the segment's intervals, site j seen
        as omega_j^(q) = ``omegas[q]`` (a method, not a closure over self: a reference cycle
        would keep these O(N^2 T) tables alive until the cyclic garbage collector runs,
        one more per realization in a run)."""
        return propagate_sequence(omegas, self.durations, self.p_up, self.real.Y, self.real.f,
                                  self.pulsed)

    def _alternating(self, omega):
        """[omega(q) for each interval q]: the signs s^(q) alternate, so two arrays, each
        passed as the same object wherever it repeats (`propagate_sequence` then builds
        its exponentials once per distinct interval)."""
        m = self.sign.shape[1] - 1
        last = [omega(m), omega(m - 1)] if m else [omega(m)]
        return [last[(m - q) % 2] for q in range(m + 1)]

    def _single(self, omega):
        """(v_up, v_down) of site j under a coherence at i with omega(q) (i, j): at T = 0 by
        `_zero_temperature`, else by the closed form interval by interval."""
        if not self.zero_temperature:
            return self.sequence(self._alternating(omega))
        s = self.sign
        return self._zero_temperature(lambda q, E, Ec: self._pick(s[:, q] > 0, E, Ec), omega)

    def _double(self, i, sign):
        if self.tables:
            return super()._double(i, sign)
        if self.zero_temperature:
            return self._double_zero_temperature(i, sign)
        up, down = self.sequence(self._alternating(self._pair_omega(i, sign)))
        return _product_outside(up + down, i)

    def _pair_omega(self, i, sign):
        """q -> omega_k^(q) = 4 (s_i^(q) J_ik + sign s_j^(q) J_jk) for the rows j > i."""
        J, s = self.real.J, self.sign
        return lambda q: 4 * (J[i][None, :] * s[i, q] + sign * J[i + 1:] * s[i + 1:, q, None])

    def _interval_tables(self):
        """Per interval q: (E, E*, e^{-4 Y_k dt_q}) with E = e^{-i 4 J_ik dt_q}, shapes
        (N, N, T), (N, N, T) and (N, T); intervals of one length share them."""
        J, Y, D = self.real.J, self.real.Y, self.durations
        keys = [D[:, q].tobytes() for q in range(D.shape[1])]
        tables = {}
        for q, key in enumerate(keys):
            if key not in tables:
                E = np.exp(-4j * J[:, :, None] * D[:, q])
                tables[key] = (E, E.conj(), np.exp(-4 * np.outer(Y, D[:, q])))
        return [tables[key] for key in keys]

    @staticmethod
    def _pick(mask, E, Ec):
        """Row r of E where mask[r], else of Ec (the table itself when mask is uniform)."""
        if mask.all():
            return E
        if not mask.any():
            return Ec
        return np.where(mask[:, None, None], E, Ec)

    def _zero_temperature(self, phases, omegas):
        """(v_up, v_down) = exp(M_m dt_m) S ... S exp(M_0 dt_0) p of every site k (axis -2,
        times last) with dissipation at T = 0 (f = 0), where each interval's propagator is
        upper triangular,

            exp(M dt) = [[X, g (X* e^{-4 Y_k dt} - X)], [0, X* e^{-4 Y_k dt}]],
            X = e^{-i omega dt},  g = 4 Y_k / (2 i omega - 4 Y_k)  (0 where Y_k = 0),

        (M = Q - i omega diag(1, -1), Q relaxing down -> up at 4 Y_k).  ``phases(q, E,
        E*)`` gives X of interval q from its tables E = e^{-i 4 J dt_q} by angle addition,
        so no transcendental function is evaluated per element and interval (the closed
        form, `propagate_sequence`, takes two complex exponentials); ``omegas(q)`` its
        omega."""
        Y, pulsed = self.real.Y, self.pulsed
        v_up, v_down = self.p_up[:, None], 1 - self.p_up[:, None]
        for q, (E, Ec, decay) in enumerate(self.intervals):
            if q and pulsed.all():
                v_up, v_down = v_down, v_up
            elif q and pulsed.any():
                flip = pulsed[:, None]
                v_up, v_down = np.where(flip, v_down, v_up), np.where(flip, v_up, v_down)
            X = phases(q, E, Ec)
            with np.errstate(invalid="ignore", divide="ignore"):
                g = np.where(Y == 0, 0.0, 4 * Y / (2j * omegas(q) - 4 * Y))[..., None]
            back = X.conj() * decay
            v_up, v_down = X * v_up + g * (back - X) * v_down, back * v_down
        return v_up, v_down

    def _double_zero_temperature(self, i, sign):
        """`_double` with dissipation at T = 0 (`_zero_temperature`): X = e^{-i 4 s_i J_ik
        dt} e^{-i 4 sign s_j J_jk dt} for the rows j > i."""
        s = self.sign

        def phases(q, E, Ec):
            Ei = E[i] if s[i, q] > 0 else Ec[i]
            return Ei * self._pick(sign * s[i + 1:, q] > 0, E[i + 1:], Ec[i + 1:])
        v_up, v_down = self._zero_temperature(phases, self._pair_omega(i, sign))
        return _product_outside(v_up + v_down, i)


def _product_outside(G, i):
    """prod_{k != i, j} G[j', k] for the rows j' = j - i - 1 of j > i (shape (N-i-1, N, T)):
    the sites i and j of each row excluded."""
    rows = G.shape[0]
    G[:, i] = 1.0
    G[np.arange(rows), np.arange(i + 1, i + 1 + rows)] = 1.0
    return G.prod(axis=1)


def pair_tables(real, times, protocol=None):
    """(index array into ``times``, tables) per segment of ``protocol`` (`PairTables`
    once for free evolution)."""
    if protocol is None or protocol.free:
        return [(np.arange(len(times)), PairTables(real, times))]
    return [(idx, PulsedPairTables(real, D, protocol)) for idx, D in protocol.segments(times)]


def pair_rdms(real, times, protocol=None):
    """All rho_ij(t), i < j, stacked in row-major pair order: shape (N(N-1)/2, T, 4, 4)."""
    out = np.empty((real.N * (real.N - 1) // 2, len(times), 4, 4), dtype=complex)
    for idx, tables in pair_tables(real, times, protocol):
        out[:, idx] = np.concatenate([tables.rows(i) for i in range(real.N - 1)])
    return out


def site_rdms(tables):
    """rho_i(t) of every site from the tables of `PairTables`, shape (T, N, 2, 2): the
    populations, and <up|rho_i|down> = c_i prod_{k != i} 1^T exp(M_k t) p_k (the
    coherence of site i seen by every other site, omega_k = 4 J_ik; docs/design.md
    section 4 with A = {i}; under pulses docs/echo.md)."""
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


def site_coherences(real, times, protocol=None):
    """rho_i[up, down](t) of every TLS under the pulses of ``protocol``, shape (N, T)."""
    out = np.empty((real.N, len(times)), dtype=complex)
    for idx, tables in pair_tables(real, times, protocol):
        out[:, idx] = site_rdms(tables)[:, :, 0, 1].T
    return out


#: Largest rows x N x T of one block of `coherence_rows` (complex elements per array).
ROW_BLOCK_ELEMENTS = 2**21


def row_block(N, T):
    """Rows of one block of `coherence_rows` for N TLSs and T output times."""
    return max(1, ROW_BLOCK_ELEMENTS // (N * T))


def coherence_rows(real, times, protocol=None, sites=None, checkpoint=never):
    """rho_i[up, down](t) of the TLSs ``sites`` alone (index array; all by default) under
    the pulses of ``protocol``, shape (len(sites), T): c_i prod_{k != i} 1^T exp(M_k t)
    p_k, the coherence of site i seen by every other site (docs/design.md section 4 with
    A = {i}; under pulses docs/echo.md), in the closed form (`trace_factor`,
    `propagate_sequence`) for `row_block` rows at a time.  Memory O(block N T) and time
    O(len(sites) N T) per interval, instead of the O(N^2 T) tables of `site_coherences`:
    the echo of a band of TLSs at large N.  ``checkpoint()`` is called between blocks."""
    t = np.asarray(times, dtype=float)
    sites = np.arange(real.N) if sites is None else np.asarray(sites, dtype=int)
    rho0 = real.initial_density_matrices()
    p_up, J = rho0[:, 0, 0].real, real.J
    segments = ([(np.arange(len(t)), None)] if protocol is None or protocol.free
                else protocol.segments(t))
    out = np.empty((len(sites), len(t)), dtype=complex)
    step = row_block(real.N, len(t))
    for idx, D in segments:
        if D is None:
            c = coherences(real, t)
        else:
            c, sign, pulsed = pulsed_coherences(real, D, protocol)
        for start in range(0, len(sites), step):
            checkpoint()
            rows = sites[start:start + step]
            if D is None:
                F = trace_factor(4 * J[rows], t, p_up, real.Y, real.f)
            else:   # s_i^(q) = (-1)^(m - q): two omega arrays, each passed as one object
                m, omegas = D.shape[1] - 1, {}
                for q in range(m + 1):
                    omegas.setdefault((m - q) % 2, 4 * J[rows] * sign[rows, None, q])
                F = sum(propagate_sequence([omegas[(m - q) % 2] for q in range(m + 1)], D,
                                           p_up, real.Y, real.f, pulsed))
            F[np.arange(len(rows)), rows] = 1.0
            out[start:start + len(rows), idx] = c[rows] * F.prod(axis=1)
    return out


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


def average_concurrence(real, times, checkpoint=never, protocol=None):
    """C(t) of Eq. (28) alone (`compute`), under the pulses of ``protocol`` (None: free)."""
    request = registry.Request() if protocol is None else registry.Request(protocol=protocol)
    return compute(real, times, request, checkpoint=checkpoint)["concurrence"]


def echo_rows(real, request, tables=None, times=None, checkpoint=never):
    """{"echo", "echo_imag"}: the real and imaginary parts of the echo signal (1/N)
    sum_{i in A} <S^-_i>(t), A the TLSs of [initial]'s selection (docs/echo.md), from the
    ``tables`` of the pair observables or, without them, from the rows of A alone
    (`coherence_rows` at ``times``)."""
    A = request.initial.select.mask(real)
    if tables is None:
        rows = coherence_rows(real, times, request.protocol, np.flatnonzero(A), checkpoint)
        values = registry.echo_site_values(_coherence_matrices(rows.T))
    else:
        values = registry.echo_site_values(site_rdms(tables)[:, A])
    signal = values.sum(1) / real.N
    return {"echo": signal.real, "echo_imag": signal.imag}


def _coherence_matrices(coherence):
    """2x2 matrices with only the off-diagonal elements ``coherence`` (..., ) -> (..., 2, 2):
    what a site observable of the coherence alone reads."""
    rho = np.zeros(coherence.shape + (2, 2), dtype=complex)
    rho[..., 0, 1], rho[..., 1, 0] = coherence, coherence.conj()
    return rho


def _site_and_pair(real, times, request, checkpoint, tables):
    out = {}
    if "echo" in request.observables:
        out.update(echo_rows(real, request, tables))
    if request.wants("site"):
        out.update(registry.reduce(request, "site", real.N, [site_rdms(tables)], axis=1))
    if request.wants("pair"):
        out.update(pair_observables(real, times, request, checkpoint, tables))
    return out


def compute(real, times, request, comm=None, checkpoint=never):
    """Engine 1 entry point: the observables of ``request`` for one realization, each (T,)
    (and the ``_resolved`` rows), under the pulses of ``request.protocol`` (each segment
    of output times with its own tables); ``checkpoint()`` is called between rows of
    pairs and between bipartitions and time chunks of the entropy."""
    if real.params.flipflop:
        raise ValueError("model.flipflop > 0 breaks the factorization of Engine 1: "
                         "use engine.name = 'liouvillian' (N <= 11) or set model.flipflop = 0")
    out = {}
    if _echo_alone(request):
        out.update(echo_rows(real, request, times=times, checkpoint=checkpoint))
    elif request.wants("site") or request.wants("pair") or "echo" in request.observables:
        segments = pair_tables(real, times, request.protocol)
        if len(segments) == 1:
            out = _site_and_pair(real, times, request, checkpoint, segments[0][1])
        for idx, tables in segments if len(segments) > 1 else ():
            for name, v in _site_and_pair(real, np.asarray(times)[idx], request, checkpoint,
                                          tables).items():
                out.setdefault(name, np.empty((len(times),) + v.shape[1:], v.dtype))[idx] = v
    if "entropy" in request.observables:
        out["entropy"] = half_system_entropy(real, times, real.bubbles(request.bipartitions),
                                             checkpoint=checkpoint, protocol=request.protocol)
    return {name: out[name] for name in ExactEngine().outputs(request)}


def _echo_alone(request):
    """True if the echo is the only observable of the tables (`coherence_rows` path)."""
    return "echo" in request.observables and not (request.wants("site")
                                                  or request.wants("pair"))


def _rows(request, N, draw):
    """Rows of `coherence_rows` for the echo: the TLSs of [initial]'s selection (the
    realization drawn only for a band)."""
    select = request.initial.select
    if select.kind == "band":
        return int(select.mask(draw()).sum())
    return N if select.kind == "all" else len(select.sites)


def _intervals(request, times):
    """Intervals between pulses summed over the output times (T for free evolution)."""
    if request.protocol.free:
        return len(times)
    return sum(D.size for _, D in request.protocol.segments(times))


#: Largest N for the entropy (rho_A of N/2 sites: 2^(N/2) x 2^(N/2) per time).
MAX_N_ENTROPY = 24


@register
class ExactEngine(Engine):
    """Engine 1 in the registry: one realization per rank, any N, open or closed."""
    name = "exact"
    kinds = ("site", "pair")
    observables = ("entropy", "echo")
    pulses = True

    def outputs(self, request):
        """The requested observables and, with the echo, its imaginary part ``echo_imag``."""
        out = super().outputs(request)
        if "echo" in out:
            out = {**out, "echo_imag": registry.ECHO_IMAG}
        return out

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
        doubly coherent factors: about 8 arrays of N^2 T complex numbers), one more for
        the site observables (`site_rdms`' trace factors); under pulses two more and two
        per distinct interval length of a segment (`PulsedPairTables`).  The echo alone
        takes blocks of `coherence_rows` instead: about 8 arrays of block x N x T, and four
        per distinct interval length (`propagate_sequence` keeps two exponentials per
        omega and interval)."""
        N, T = params.N, len(times)
        lengths = 0 if request.protocol.free else max(
            len({D[:, q].tobytes() for q in range(D.shape[1])})
            for _, D in request.protocol.segments(times))
        if _echo_alone(request):
            return (8 + 4 * lengths) * 16.0 * min(N, row_block(N, T)) * N * T + 16.0 * N * T * 16
        tables = 8 + (1 if request.wants("site") else 0)
        if lengths:
            tables += 2 + 2 * lengths
        return tables * 16.0 * N * N * T + 2 * 16.0 * N * T * 16

    def cost(self, params, times, request, draw):
        """O(N^3 T) pair core plus O(N^2 T) tables (within a factor 2 of the measured
        seconds for N = 8..64, docs/performance.md; twice as much with dissipation), plus
        the entropy's own cost model (`tlsmpi.engines.subsystems.route_costs`).  The echo
        alone: 6e-8 s per row, TLS and interval of every output time (`coherence_rows`,
        measured at N = 400), the rows those of the realization's selection."""
        N, T = params.N, len(times)
        if _echo_alone(request):
            seconds = 6e-8 * _rows(request, N, draw) * N * _intervals(request, times) + 1e-3
        else:
            seconds = (T * (1.5e-6 * N**2 + 1.1e-8 * N**3) * (2.0 if params.epsilon else 1.0)
                       + 1e-3)
        if "entropy" in request.observables:
            n_bubbles = request.bipartitions or N
            routes = route_costs(N, N // 2, T, n_bubbles)
            seconds += routes["factorized"] if params.epsilon else min(routes.values())
        return seconds

    def compute(self, real, times, request, comm=None):
        return compute(real, times, request, comm, self.checkpoint)
