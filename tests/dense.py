"""Independent reference: the full GKSL generator of Eq. (15) as a dense 4^N x 4^N
complex matrix in the S^z product basis, built from explicit operators, exponentiated
with scipy.  Only for tests (N <= 5)."""
import math

import numpy as np
import scipy.linalg

#: theta_7 of Al-Mohy & Higham (2009): scipy's expm uses a Pade approximant of degree
#: <= 7 without scaling when its estimates of ||A^k||^(1/k) (<= ||A||_1) are below it.
THETA_7 = 0.950417899616293


def expm(A):
    """scipy.linalg.expm without its degree-9 branch, which in scipy < 1.13 reads an
    uninitialized scratch array when n >= 400 (scipy gh-18086, fixed by gh-20234; errors
    ~1e-7 at N = 5): exp(A) = exp(A / 2^j)^(2^j) with ||A / 2^j||_1 <= theta_7."""
    if len(A) < 400:
        return scipy.linalg.expm(A)
    j = max(0, math.ceil(math.log2(max(np.abs(A).sum(0).max(), 1e-300) / THETA_7)))
    E = scipy.linalg.expm(A / 2**j)
    for _ in range(j):
        E = E @ E
    return E

SX = np.array([[0, 1], [1, 0]], dtype=complex)     # Pauli matrices, basis (up, down),
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)  # up = S^z = +1
SZ = np.diag([1.0, -1.0]).astype(complex)
SP = SX + 1j * SY                                  # S+ = Sx + i Sy = [[0, 2], [0, 0]], down -> up
SM = SX - 1j * SY
I2 = np.eye(2, dtype=complex)


def embed(op, i, N):
    out = np.ones((1, 1), dtype=complex)
    for k in range(N):
        out = np.kron(out, op if k == i else I2)
    return out


def hamiltonian(real):
    """Eq. (23), sum over ordered pairs i != j, plus the flip-flop term of footnote 67 in
    the form of real.params.flipflop_form, written with Pauli matrices only:
    "xx": sum_{i != j} K_ij X_i X_j; "exchange": sum_{i < j} 2 K_ij (X_i X_j + Y_i Y_j)."""
    N = real.N
    H = sum(-0.5 * real.nu[i] * embed(SZ, i, N) for i in range(N))
    for i in range(N):
        for j in range(N):
            if i != j:
                H = H + real.J[i, j] * embed(SZ, i, N) @ embed(SZ, j, N)
                if real.params.flipflop_form == "xx":
                    H = H + real.K[i, j] * embed(SX, i, N) @ embed(SX, j, N)
                elif i < j:
                    H = H + 2 * real.K[i, j] * (embed(SX, i, N) @ embed(SX, j, N)
                                                + embed(SY, i, N) @ embed(SY, j, N))
    return H


def generator(real):
    """L with d vec(rho)/dt = L vec(rho), vec = row-major flattening
    (vec(A X B) = (A kron B^T) vec X)."""
    N = real.N
    d = 2**N
    Id = np.eye(d)
    H = hamiltonian(real)
    L = -1j * (np.kron(H, Id) - np.kron(Id, H.T))

    def sandwich(A, B):     # X -> A X B
        return np.kron(A, B.T)

    for i in range(N):
        sp, sm, sz = embed(SP, i, N), embed(SM, i, N), embed(SZ, i, N)
        Y, f = real.Y[i], real.f[i]
        L += Y * f * (sandwich(sp, sm) + sandwich(sm, sp) - 4 * np.eye(d * d))
        L += Y * (sandwich(sp, sm) + sandwich(sz, Id) + sandwich(Id, sz) - 2 * np.eye(d * d))
    return L


def initial_state(real):
    rho = np.ones((1, 1), dtype=complex)
    for r in real.initial_density_matrices():
        rho = np.kron(rho, r)
    return rho


def evolve(real, times):
    """rho(t) for each t, shape (T, 2^N, 2^N)."""
    L = generator(real)
    d = 2**real.N
    v0 = initial_state(real).reshape(-1)
    return np.array([(expm(L * t) @ v0).reshape(d, d) for t in times])


def reduced(rho, keep, N):
    """Partial trace of rho (..., 2^N, 2^N) keeping the sites ``keep`` in the given order."""
    lead = rho.shape[:-2]
    r = rho.reshape(lead + (2,) * (2 * N))
    nl = len(lead)
    traced = [k for k in range(N) if k not in keep]
    letters = "abcdefghijklmnopqrstuvwxyz"
    ket = [letters[k] for k in range(N)]
    bra = [letters[k].upper() for k in range(N)]
    for k in traced:
        bra[k] = ket[k]
    lead_s = "".join(letters[20 + m] for m in range(nl)) if nl else ""
    out = lead_s + "".join(ket[k] for k in keep) + "".join(bra[k] for k in keep)
    res = np.einsum(lead_s + "".join(ket) + "".join(bra) + "->" + out, r)
    dk = 2 ** len(keep)
    return res.reshape(lead + (dk, dk))


def evolve_pulsed(real, times, protocol):
    """rho(t) for each t, shape (T, 2^N, 2^N), with the pi pulses of ``protocol``
    (`tlsmpi.physics.pulses.Protocol`) applied as explicit unitaries prod_{i in P} S^axis_i
    between exact exponentials of the generator (pulse times from its own schedule)."""
    N, d = real.N, 2**real.N
    L = generator(real)
    sel = protocol.select.mask(real)
    U = np.eye(d, dtype=complex)
    for i in np.flatnonzero(sel):
        U = U @ embed(SX if protocol.axis == "x" else SY, i, N)
    out = []
    for t in times:
        if protocol.kind == "free":
            taus = []
        elif protocol.kind == "pulses":
            taus = [tau for tau in protocol.pulse_times if tau <= t]
        else:
            n = protocol.count
            taus = [(2 * k - 1) * t / (2 * n) for k in range(1, n + 1)]
        rho, now = initial_state(real), 0.0
        for tau in taus:
            rho = (expm(L * (tau - now)) @ rho.reshape(-1)).reshape(d, d)
            rho, now = U @ rho @ U.conj().T, tau
        out.append((expm(L * (t - now)) @ rho.reshape(-1)).reshape(d, d))
    return np.array(out)
