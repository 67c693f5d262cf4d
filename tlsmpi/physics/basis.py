"""Kernels on the 2^N configurations of the S^z product basis, shared by the engines that
hold state vectors: index s = sum_k b_k 2^(N-1-k), b_k = 0 for up (S^z = +1), site 0 most
significant (the order of tests/dense.py).
"""
import numpy as np


def product_amplitudes(real):
    """prod_i psi_i[s_i] for all 2^N configurations, site 0 most significant."""
    psi = np.ones(1, dtype=complex)
    for amp in real.initial_states():
        psi = np.multiply.outer(psi, amp).reshape(-1)
    return psi


def energies(real):
    """E(s) = -1/2 sum_i nu_i s_i + sum_{i != j} J_ij s_i s_j for all 2^N configurations."""
    N = real.N
    shifts = np.arange(N - 1, -1, -1)
    E = np.empty(2**N)
    step = 2**16
    for start in range(0, 2**N, step):
        idx = np.arange(start, min(start + step, 2**N))
        s = 1.0 - 2.0 * ((idx[:, None] >> shifts) & 1)
        E[idx] = -0.5 * s @ real.nu + np.einsum("ci,ci->c", s @ real.J, s)
    return E


def subsystem_matrix(psi, sites, N):
    """The states ``psi`` (T, 2^N) as matrices (T, 2^|A|, 2^(N-|A|)) with the sites of A
    (in the given order, first most significant) as rows: rho_A = M M^dagger (the partial
    trace of a pure state), and the singular values of M are its Schmidt values."""
    A = np.asarray(sites)
    B = np.setdiff1d(np.arange(N), A)
    M = psi.reshape((len(psi),) + (2,) * N).transpose([0, *(1 + A), *(1 + B)])
    return M.reshape(len(psi), 2 ** len(A), -1)


def reduced(psi, sites, N):
    """rho_A = Tr_B |psi><psi| for each row of ``psi`` (T, 2^N), shape (T, 2^|A|, 2^|A|),
    sites of A in the given order (first most significant, as tests/dense.reduced)."""
    M = subsystem_matrix(psi, sites, N)
    return M @ M.conj().swapaxes(-1, -2)
