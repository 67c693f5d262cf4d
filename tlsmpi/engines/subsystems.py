"""Half-system entanglement entropy S_E(t) = -Tr rho_A ln rho_A (paper Eq. 29) from Engine 1.

Two routes (docs/entropy.md):

* factorized (any dynamics): rho_A(t) element by element from docs/design.md section 4,

      <s_A|rho_A|s'_A> = prod_{i in C} rho0_i[s_i, s'_i] e^{(i nu_i d_i/2 - Gc_i) t}
                         x prod_{k in A\\C} [e^{M_k t} p_k]_{s_k} x prod_{j not in A} 1^T e^{M_j t}
                         p_j,

  with w_j = 2 sum_{i in C} J_ij d_i.  Everything except the coherent factors depends on the
  element only through its coherence pattern d in {0, +-2}^|A|, so the site factors are
  computed once per pattern (3^|A| patterns, halved by Hermiticity) and the 4^|A| elements
  are gathered from those tables; the spectrum of each rho_A comes from eigvalsh.
* pure (unitary dynamics only): |psi(t)> = sum_s prod_i psi_i[s_i] e^{-i E(s) t} |s>, with
  E(s) = -1/2 sum_i nu_i s_i + sum_{i != j} J_ij s_i s_j; the squared Schmidt values are the
  eigenvalues of the Gram matrix of psi reshaped to (2^|A|, 2^(N-|A|)), smaller side.

Basis of rho_A: sites in the order given, index sum_k a_k 2^(|A|-1-k), a = 0 for up
(S^z = +1), as in tests/dense.reduced.
"""
from dataclasses import dataclass
import functools

import numpy as np

from ..physics.basis import energies, product_amplitudes, subsystem_matrix
from ..physics.measures import entropy_vn
from ..physics.propagators import (coherences, propagate_populations, propagate_sequence,
                                   pulsed_coherences, trace_factor)
from .base import never

#: Complex numbers per large temporary (64 MB); times are processed in chunks below it.
BUDGET = 2**22

#: Cost model of the two routes, seconds per unit of work on one core, fitted to
#: ``python -m tlsmpi.bench entropy`` (docs/performance.md, "Entropy").
COST = dict(site=80e-9,     # one (pattern, site, time) propagator entry, two complex exps
            gather=12e-9,   # one gathered and multiplied site factor of an element of rho_A
            phase=30e-9,    # one amplitude of |psi(t)> (complex exp)
            copy=5e-9,      # one amplitude moved by the transpose to (A, B) order
            mac=0.2e-9,     # one complex multiply-add of the Gram matrix
            eig=0.3e-9,     # eigvalsh of a D x D Hermitian matrix, per D^3
            call=40e-6)     # Python and numpy overhead per bipartition and time chunk


def _factorized_per_time(n, m, patterns):
    """Complex numbers per time of the largest temporaries of the factorized route."""
    return max(patterns * 4 * n, patterns * m, 2 * 4**n)


def _chunks(T, per_time):
    """Slices of range(T) with about BUDGET / per_time times each."""
    step = max(1, BUDGET // max(per_time, 1))
    return [slice(a, min(a + step, T)) for a in range(0, T, step)]


@dataclass(frozen=True)
class _Layout:
    """The upper triangle (a <= b) of a 2^n x 2^n matrix grouped by coherence pattern.

    patterns[p, k] = d_k / 2 in {0, +1, -1} for the representative patterns (first
    nonzero entry +1; -d gives the conjugate transpose); element e = (rows[e], cols[e]) has
    pattern pidx[e]; flat[k, e] indexes the factor of site k in a table (P, n, 4) whose last
    axis is the site code 2 a_k + b_k (0, 3 populations; 1, 2 coherences d_k = +2, -2).
    """
    rows: np.ndarray
    cols: np.ndarray
    patterns: np.ndarray
    pidx: np.ndarray
    flat: np.ndarray


@functools.lru_cache(maxsize=2)
def _layout(n):
    rows, cols = np.triu_indices(2**n)
    shifts = np.arange(n - 1, -1, -1)
    a = ((rows[:, None] >> shifts) & 1).astype(np.int8)
    b = ((cols[:, None] >> shifts) & 1).astype(np.int8)
    d = b - a                                          # d_k / 2: s = +1 for a = 0
    key = (d % 3).astype(np.int64) @ 3**shifts
    _, first, pidx = np.unique(key, return_index=True, return_inverse=True)
    pidx = pidx.reshape(-1)
    flat = (pidx[None, :] * n + np.arange(n)[:, None]) * 4 + (2 * a + b).T
    return _Layout(rows, cols, d[first], pidx, flat)


class _Site:
    """Per-site factors of one realization for the factorized route, time-first: the
    coherences c_i(t) and, for the coherence patterns P of a subsystem A, the trace factor
    1^T exp(M_j t) p_j of a site j outside A and the populations exp(M_k t) p_k of a site k
    of A (`propagators.trace_factor`, `propagators.propagate_populations`), with w_j =
    4 sum_{i in A} P_i J_ij."""

    def __init__(self, real, t, A, patterns):
        self._sites(real)
        self.t, self.c = t, coherences(real, t)
        self.omega = 4.0 * patterns @ real.J[A]            # (patterns, N)

    def _sites(self, real):
        self.p_up = real.initial_density_matrices()[:, 0, 0].real
        self.Y, self.f = real.Y, real.f

    def trace(self, j, sl):
        """1^T exp(M_j t) p_j for the times ``sl``, shape (T, patterns)."""
        return trace_factor(self.omega[:, j], self.t[sl], self.p_up[j], self.Y[j],
                            self.f[j]).T

    def populations(self, k, rows, sl):
        """exp(M_k t) p_k for the patterns ``rows`` and times ``sl``, shape (2, T, rows)."""
        return np.stack(propagate_populations(self.omega[rows, k], self.t[sl], self.p_up[k],
                                              self.Y[k], self.f[k])).swapaxes(1, 2)


class _PulsedSite(_Site):
    """`_Site` under the pi pulses of a protocol (docs/echo.md): the output times of one
    segment, ``durations`` (T, m + 1); a pulsed coherent site i has the pattern s_i^(q) P_i
    in interval q, so site j sees w_j^(q) = 4 sum_i s_i^(q) P_i J_ij there and is
    propagated interval by interval, its populations swapped at its own pulses
    (`propagators.propagate_sequence`)."""

    def __init__(self, real, durations, protocol, A, patterns):
        self._sites(real)
        self.D = np.asarray(durations, dtype=float)
        self.c, sign, self.pulsed = pulsed_coherences(real, self.D, protocol)
        self.omegas = [4.0 * (patterns * sign[A, q]) @ real.J[A]
                       for q in range(self.D.shape[1])]

    def _sequence(self, k, rows, sl):
        return propagate_sequence([w[rows, k] for w in self.omegas], self.D[sl],
                                  self.p_up[k], self.Y[k], self.f[k], self.pulsed[k])

    def trace(self, j, sl):
        up, down = self._sequence(j, slice(None), sl)
        return (up + down).T

    def populations(self, k, rows, sl):
        return np.stack(self._sequence(k, rows, sl)).swapaxes(1, 2)


def _rdm_chunks(real, t, A, checkpoint=never, pulses=None):
    """Yield (slice of t, rho_A on those times), the factorized route (docs/design.md
    section 4); ``pulses`` = (durations (T, m + 1), protocol) for the output times of one
    segment of a pulse protocol (`_PulsedSite`), None for free evolution; ``checkpoint()``
    is called before each chunk."""
    A = np.asarray(A, dtype=int)
    N, n = real.N, len(A)
    if n == 0 or len(set(A.tolist())) != n or A.min() < 0 or A.max() >= N:
        raise ValueError(f"subsystem {A.tolist()}: need distinct TLS indices in [0, {N})")
    B = np.setdiff1d(np.arange(N), A)
    lay, D = _layout(n), 2**n
    P = lay.patterns
    incoherent = [np.flatnonzero(P[:, k] == 0) for k in range(n)]
    site = _Site(real, t, A, P) if pulses is None else _PulsedSite(real, *pulses, A, P)
    c = site.c[A]                          # rho0[up, down] e^{(i nu - Gc) t}: d = +2
    for sl in _chunks(len(t), _factorized_per_time(n, len(B), len(P))):
        checkpoint()
        T = len(t[sl])
        outside = np.ones((T, len(P)), dtype=complex)
        for j in B:
            outside *= site.trace(j, sl)
        W = np.empty((T, len(P), n, 4), dtype=complex)   # codes 0, 3 of coherent and
        # 1, 2 of incoherent sites are never gathered
        for k, i in enumerate(A):
            inc = incoherent[k]
            W[:, inc, k, 0], W[:, inc, k, 3] = site.populations(i, inc, sl)
            W[:, :, k, 1] = c[k, sl, None]
            W[:, :, k, 2] = c[k, sl, None].conj()
        W = W.reshape(T, -1)
        vals = np.take(outside, lay.pidx, axis=1)
        for k in range(n):
            vals *= np.take(W, lay.flat[k], axis=1)
        rho = np.empty((T, D, D), dtype=complex)
        rho[:, lay.cols, lay.rows] = vals.conj()
        rho[:, lay.rows, lay.cols] = vals
        yield sl, rho


def _segments(t, protocol):
    """(index array into t, the ``pulses`` argument of `_rdm_chunks`) per segment."""
    if protocol is None or protocol.free:
        return [(np.arange(len(t)), None)]
    return [(idx, (D, protocol)) for idx, D in protocol.segments(t)]


def subsystem_rdm(real, times, A, protocol=None):
    """rho_A(t), shape (T, 2^|A|, 2^|A|), for the TLSs ``A`` in the given order, with or
    without dissipation (docs/design.md section 4), under the pi pulses of ``protocol``
    (None: free evolution).  Memory O(T 4^|A|): for the entropy alone use
    `half_system_entropy`, which works chunk by chunk."""
    t = np.asarray(times, dtype=float)
    out = np.empty((len(t), 2**len(A), 2**len(A)), dtype=complex)
    for idx, pulses in _segments(t, protocol):
        for sl, rho in _rdm_chunks(real, t[idx], A, pulses=pulses):
            out[idx[sl]] = rho
    return out


def _factorized_entropies(real, t, bubbles, checkpoint, protocol=None):
    """S_E(t) of each bipartition, shape (T, n_bubbles), through rho_A (under the pulses of
    ``protocol``, segment by segment)."""
    S = np.empty((len(t), len(bubbles)))
    for idx, pulses in _segments(t, protocol):
        for b, A in enumerate(bubbles):
            for sl, rho in _rdm_chunks(real, t[idx], A, checkpoint, pulses):
                S[idx[sl], b] = entropy_vn(rho)
    return S


def _pure_entropies(real, t, bubbles, checkpoint):
    """S_E(t) of each bipartition, shape (T, n_bubbles), from the Schmidt values of |psi(t)>."""
    if np.any(real.Y):
        raise ValueError("the pure-state route needs unitary dynamics (all Y = 0)")
    N = real.N
    amp, E = product_amplitudes(real), energies(real)
    S = np.empty((len(t), len(bubbles)))
    for sl in _chunks(len(t), 2 * 2**N):
        psi = amp * np.exp(-1j * np.multiply.outer(t[sl], E))
        for b, A in enumerate(bubbles):
            checkpoint()
            M = subsystem_matrix(psi, A, N)
            if 2 * len(A) > N:
                M = M.swapaxes(-1, -2)
            S[sl, b] = entropy_vn(M @ M.conj().swapaxes(-1, -2))
    return S


def route_costs(N, n, T, n_bubbles=1):
    """Estimated seconds of the two routes for n_bubbles bipartitions |A| = n of N TLSs at
    T times (model COST above; the pure route only applies to unitary dynamics)."""
    c, m, D = COST, N - n, 2**n
    patterns = (3**n + 1) // 2
    elements = D * (D + 1) // 2
    chunks = len(_chunks(T, _factorized_per_time(n, m, patterns)))
    factorized = (c["site"] * patterns * (m + n / 3) + c["gather"] * elements * (n + 1)
                  + c["eig"] * D**3) * T + c["call"] * N * chunks
    small, large = sorted((D, 2**m))
    pure_chunks = len(_chunks(T, 2 * 2**N))
    pure = ((c["phase"] / n_bubbles + c["copy"]) * 2**N + c["mac"] * small**2 * large
            + c["eig"] * small**3) * T + c["call"] * pure_chunks
    return dict(factorized=factorized * n_bubbles, pure=pure * n_bubbles)


def half_system_entropy(real, times, bubbles, route="auto", per_bipartition=False,
                        checkpoint=never, protocol=None):
    """Mean of S_E(t) (Eq. 29) over the bipartitions ``bubbles`` (rows of TLS indices, e.g.
    ``real.bubbles()``), shape (T,); with ``per_bipartition`` the (T, n_bubbles) values.

    ``route``: "factorized" (any dynamics), "pure" (unitary only) or "auto" (the cheaper of
    the two by `route_costs` when all Y = 0, else factorized; always factorized under the
    pi pulses of ``protocol``).  ``checkpoint()`` (`tlsmpi.engines.Engine.checkpoint`) is
    called before each bipartition and time chunk.
    """
    t = np.asarray(times, dtype=float)
    bubbles = np.atleast_2d(np.asarray(bubbles, dtype=int))
    if protocol is not None and not protocol.free:
        if route == "pure":
            raise ValueError("route = 'pure' is free evolution only: use 'factorized' "
                             "under pulses")
        S = _factorized_entropies(real, t, bubbles, checkpoint, protocol)
        return S if per_bipartition else S.mean(axis=1)
    if route == "auto":
        route = "factorized"
        if not np.any(real.Y):
            cost = route_costs(real.N, bubbles.shape[1], len(t), len(bubbles))
            route = min(cost, key=cost.get)
    compute = {"factorized": _factorized_entropies, "pure": _pure_entropies}.get(route)
    if compute is None:
        raise ValueError(f"route = {route!r}: choose 'auto', 'factorized' or 'pure'")
    S = compute(real, t, bubbles, checkpoint)
    return S if per_bipartition else S.mean(axis=1)
