"""Plain reference evaluations of the paper's formulas, element by element and slow,
written apart from the engines so that the tests and benchmarks can compare against
them: App. B's pair density matrices (`app_b_pair_rdms`, Eqs. B3-B4) and the reduced
density matrix of any subsystem from the factorized dynamics (`naive_rdm`, docs/design.md
section 4).
"""
import itertools

import numpy as np

from .propagators import coherences, propagate_populations, trace_factor

_S = np.array([1.0, -1.0])                 # S^z of (up, down)
_ELEMENTS = np.array(list(itertools.product(range(2), repeat=4)))   # (a_i, a_j, b_i, b_j)


def app_b_pair_rdms(real, times):
    """rho_ij(t) of the unitary dynamics by Eqs. (B3)-(B4), shape (N(N-1)/2, T, 4, 4)."""
    t = np.asarray(times, dtype=float)
    N, J, nu = real.N, real.J, real.nu
    rho0 = real.initial_density_matrices()
    p_up = rho0[:, 0, 0].real
    s, sp = _S[_ELEMENTS[:, :2]], _S[_ELEMENTS[:, 2:]]            # (16, 2) each
    out = []
    for i, j in itertools.combinations(range(N), 2):
        others = np.array([k for k in range(N) if k not in (i, j)])
        dH12 = (2 * J[i, j] * (s[:, 0] * s[:, 1] - sp[:, 0] * sp[:, 1])
                - nu[i] / 2 * (s[:, 0] - sp[:, 0]) - nu[j] / 2 * (s[:, 1] - sp[:, 1]))
        dH12k = (2 * J[i, others][None] * (s[:, :1] - sp[:, :1])
                 + 2 * J[j, others][None] * (s[:, 1:] - sp[:, 1:]))   # (16, N-2)
        phase = np.exp(-1j * dH12k[..., None] * t)
        prod = (p_up[others, None] * phase + (1 - p_up[others, None]) * phase.conj()).prod(1)
        amp = rho0[i][_ELEMENTS[:, 0], _ELEMENTS[:, 2]] * rho0[j][_ELEMENTS[:, 1], _ELEMENTS[:, 3]]
        elems = amp[:, None] * np.exp(-1j * np.outer(dH12, t)) * prod          # (16, T)
        rho = np.zeros((len(t), 4, 4), dtype=complex)
        rho[:, 2 * _ELEMENTS[:, 0] + _ELEMENTS[:, 1], 2 * _ELEMENTS[:, 2] + _ELEMENTS[:, 3]] = (
            elems.T
        )
        out.append(rho)
    return np.array(out)



def naive_rdm(real, times, A):
    """rho_A(t) by docs/design.md section 4 element by element: for every (s_A, s'_A) its own
    omega_j and product over all N sites with propagators.propagate_populations (no grouping by
    coherence pattern, no Hermiticity), shape (T, 2^|A|, 2^|A|)."""
    t = np.asarray(times, dtype=float)
    A = np.asarray(A)
    n, B = len(A), np.setdiff1d(np.arange(real.N), A)
    p_up = real.initial_density_matrices()[:, 0, 0].real
    site = lambda idx: (p_up[idx], real.Y[idx], real.f[idx])   # noqa: E731
    c = coherences(real, t)
    rho = np.empty((len(t), 2**n, 2**n), dtype=complex)
    for a, b in itertools.product(range(2**n), repeat=2):
        bits_a = (a >> np.arange(n - 1, -1, -1)) & 1
        bits_b = (b >> np.arange(n - 1, -1, -1)) & 1
        half_d = bits_b - bits_a                                  # d_k / 2 (s = +1 for bit 0)
        omega = 4.0 * half_d @ real.J[A]
        value = np.ones(len(t), dtype=complex)
        for k in np.flatnonzero(half_d):
            value *= c[A[k]] if half_d[k] > 0 else c[A[k]].conj()
        inc = np.flatnonzero(half_d == 0)
        if len(inc):
            v_up, v_down = propagate_populations(omega[A[inc]], t, *site(A[inc]))
            value *= np.where(bits_a[inc, None] == 0, v_up, v_down).prod(0)
        if len(B):
            value *= trace_factor(omega[B], t, *site(B)).prod(0)
        rho[:, a, b] = value
    return rho
