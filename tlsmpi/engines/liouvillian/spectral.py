"""The spectral path of Engine 2 (engine.method; docs/liouvillian.md, "Long windows"): no
PETSc.

Without flip-flop terms or with the exchange form, Eq. (15) conserves
Delta m = m_ket - m_bra in the ket-bra basis; for N <= 7 the blocks Delta m = 0 .. 2
(pairs) or .. N/2 (bubbles) are diagonalized once (`Spectral`) and rho(t) is evaluated at
all output times at once, at a cost independent of the window; an ill-conditioned
eigenbasis falls back to MFN.
"""
import logging
import math

import numpy as np

from ...errors import ConfigError
from ..base import never
from .basis import DELTA_M, PAULI, label, output_times
from .generator import ketbra_block, pair_superop, site_superop

log = logging.getLogger("tlsmpi")

#: Values of engine.method: "auto" (spectral where `spectral_refusal` allows and it is
#: predicted faster than MFN stepping, `prefer_spectral`), "mfn" (always MFN stepping),
#: "spectral" (refused where it cannot be used).
METHODS = ("auto", "mfn", "spectral")
#: Largest Delta m block, C(2N, N) elements (Delta m = 0), that the spectral path
#: diagonalizes: N <= 7 (3432); N = 7 takes ~100 s and <= 0.75 GB for C(t) (docs/performance.md).
SPECTRAL_MAX = 4000
#: Largest eigenvector condition number ||V||_1 ||V^-1||_1 (LAPACK's estimate) accepted,
#: eps^(-1/2): the rounding of the spectral path grows like eps cond, and near this bound
#: the block is within ~sqrt(eps) of a defective matrix, where eigenvalue errors stop being
#: first order (docs/liouvillian.md).  Above it the realization falls back to MFN stepping.
SPECTRAL_COND_MAX = float(np.finfo(float).eps) ** -0.5


def block_size(N, dm):
    """Ket-bra elements |a><b| with m(a) - m(b) = dm: C(2N, N + dm) (Vandermonde)."""
    return math.comb(2 * N, N + dm)


def spectral_refusal(params):
    """Why the spectral path cannot treat ``params`` (a sentence), or None if it can."""
    if params.flipflop and params.flipflop_form != "exchange":
        return (f"model.flipflop_form = {params.flipflop_form!r} with model.flipflop = "
                f"{params.flipflop:g}: its S+S+ and S-S- terms change Delta m by 2, so the "
                "generator has no blocks smaller than 4^N / 2")
    if block_size(params.N, 0) > SPECTRAL_MAX:
        return (f"model.N = {params.N}: the Delta m = 0 block has C(2N, N) = "
                f"{block_size(params.N, 0)} elements, more than SPECTRAL_MAX = {SPECTRAL_MAX} (N "
                "<= 7)")
    return None


def use_spectral(params, method="auto"):
    """True if engine.method = ``method`` selects the spectral path for ``params``;
    ConfigError for an unknown method, or for "spectral" where `spectral_refusal` objects."""
    if method not in METHODS:
        raise ConfigError(f"engine.method = {method!r}: choose one of {list(METHODS)}")
    if method == "mfn":
        return False
    why = spectral_refusal(params)
    if why and method == "spectral":
        raise ConfigError(f"engine.method = \"spectral\": {why}; use engine.method = \"auto\" "
                          "(spectral where possible, else MFN) or \"mfn\"")
    return why is None


def delta_m_needed(N, request):
    """Largest Delta m the observables read: 1 for site states, 2 for pair states
    (Eq. 28), the bubble size floor(N/2) for S_E (Eq. 29)."""
    need = {"site": 1, "pair": 2, "subsystem": N // 2}
    return min(N, max([0] + [m for kind, m in need.items() if request.wants(kind)]))


def block_codes(N, dm):
    """Per-site codes (n, N) and sorted global indices (n,) of the Delta m = ``dm`` block.

    The global index of a ket-bra product |a><b| is sum_k q_k 4^(N-1-k) with
    q_k = 2 a_k + b_k, the digit layout of the Pauli strings (`Generator`)."""
    shift = 2 * (N - 1 - np.arange(N))
    index = np.arange(4**N, dtype=np.int64)
    codes = (index[:, None] >> shift) & 3
    keep = DELTA_M[codes].sum(1) == dm
    return codes[keep], index[keep]


def ketbra_terms(real):
    """(sites, ket-bra block) of every site and non-zero pair term of Eq. (15)."""
    N, K, form = real.N, real.K, real.params.flipflop_form
    terms = [
        ((k,), ketbra_block(site_superop(real.nu[k], real.Y[k], real.f[k]), 1)) for k in range(N)
    ]
    for i in range(N):
        for j in range(i + 1, N):
            B = ketbra_block(pair_superop(real.J[i, j], K[i, j], K[j, i], form), 2)
            if B.any():
                terms.append(((i, j), B))
    return terms


def block_generator(real, dm):
    """The Delta m = ``dm`` block of the ket-bra GKSL generator of Eq. (15), dense complex
    (n, n), and its `block_codes`.  ValueError if a term leaves the block (xx flip-flop)."""
    N = real.N
    codes, index = block_codes(N, dm)
    n = len(index)
    G = np.zeros((n, n), dtype=complex, order="F")      # LAPACK order: eig needs no copy
    shift = 2 * (N - 1 - np.arange(N))
    for sites, B in ketbra_terms(real):
        sites = list(sites)
        k = len(sites)
        local = 4 ** np.arange(k - 1, -1, -1)
        c_in = codes[:, sites] @ local                       # local code of every column
        base = index - codes[:, sites] @ (1 << shift[sites])  # those digits cleared
        for c_out in range(len(B)):
            val = B[c_out, c_in]
            cols = np.flatnonzero(val)
            if not len(cols):
                continue
            target = base[cols] + ((c_out // local) % 4) @ (1 << shift[sites])
            rows = np.minimum(np.searchsorted(index, target), n - 1)
            if (index[rows] != target).any():
                raise ValueError(f"the term on sites {tuple(sites)} does not conserve Delta m")
            G[rows, cols] += val[cols]
    return G, codes


class _HermitianPairs:
    """The unitary map x = S y from real coordinates y to the Delta m = 0 block.

    The block maps rho -> rho^dagger into itself: |a><a| stays, |a><b| and |b><a| pair up
    (``lo``, ``hi``: the first and second index of each pair).  With
    x_lo = (y_lo + i y_hi) / sqrt(2), x_hi = conj(x_lo), Hermitian rho have real y, and
    S^H G S is real because the GKSL generator preserves Hermiticity: eig on it costs
    about a quarter of the complex eig.
    """

    def __init__(self, codes):
        N = codes.shape[1]
        weights = 4 ** np.arange(N - 1, -1, -1)
        index = codes @ weights
        partner = np.searchsorted(index, np.array([0, 2, 1, 3])[codes] @ weights)   # |b><a|
        own = np.arange(len(codes))
        self.lo, self.hi = own[own < partner], partner[own < partner]

    def real_generator(self, G):
        """S^H G S (real, Fortran order); overwrites G."""
        r = math.sqrt(0.5)
        lo, hi = self.lo, self.hi
        a, b = G[:, lo], G[:, hi]
        G[:, lo], G[:, hi] = r * (a + b), 1j * r * (a - b)
        a, b = G[lo], G[hi]
        G[lo], G[hi] = r * (a + b), -1j * r * (a - b)
        assert np.abs(G.imag).max(initial=0) <= 1e-12 * max(1.0, np.abs(G.real).max()), (
            "not Hermiticity preserving"
        )
        return np.asfortranarray(G.real)

    def ketbra(self, W):
        """S W: eigenvectors in real coordinates -> in the ket-bra block (in place)."""
        r = math.sqrt(0.5)
        a, b = W[self.lo], W[self.hi]
        W[self.lo], W[self.hi] = r * (a + 1j * b), r * (a - 1j * b)
        return W


class Spectral:
    """The spectral path of Engine 2 for one realization (docs/liouvillian.md).

    For Delta m = 0 .. m_max (the largest Delta m any string of ``indices`` reads),
    the block G_dm = V diag(lambda) V^-1 of the ket-bra generator is diagonalized
    once, and the Pauli coefficients of ``indices`` follow at any time from

        c_mu(t) = sum_dm w_dm Re[ R_dm V exp(lambda t) V^-1 x_dm(0) ],

    w_0 = 1, w_dm = 2 (the -dm block is the complex conjugate, rho = rho^dagger),
    R_{mu,(a,b)} = (P_mu)_ba (c_mu = Tr rho P_mu).  The dm = 0 block is diagonalized
    as a real matrix (`_HermitianPairs`).  ``cond`` is the largest
    ||V||_1 ||V^-1||_1 (LAPACK zgecon estimate); diagonalization stops at the first
    block above ``cond_max``, and then `run` must not be used.  ``checkpoint()`` is
    called before each block's eigendecomposition.
    """

    def __init__(self, real, indices, cond_max=math.inf, checkpoint=never):
        from scipy.linalg import eig, lu_factor, lu_solve
        from scipy.linalg.lapack import zgecon
        N = real.N
        idx = np.asarray(indices, dtype=np.int64)
        digits = (idx[:, None] >> (2 * (N - 1 - np.arange(N)))) & 3
        m_max = int(np.isin(digits, (1, 2)).sum(1).max(initial=0))
        rho0 = real.initial_density_matrices()
        self.blocks, self.cond, self.sizes = [], 0.0, []
        for dm in range(m_max + 1):
            checkpoint()
            G, codes = block_generator(real, dm)
            ket, bra = codes >> 1, codes & 1
            x0 = rho0[np.arange(N), ket, bra].prod(1)
            R = np.ones((len(idx), len(codes)), dtype=complex)                # (P_mu)_{ba}
            for k in range(N):
                R *= PAULI[digits[:, k, None], bra[None, :, k], ket[None, :, k]]
            if dm == 0:                  # Hermiticity: a real matrix in a unitary basis
                pairing = _HermitianPairs(codes)
                G = pairing.real_generator(G)
            lam, V = eig(G, overwrite_a=True, check_finite=False)
            del G
            if dm == 0:
                V = pairing.ketbra(V)
            lu = lu_factor(V, check_finite=False)
            rcond, info = zgecon(lu[0], np.abs(V).sum(0).max(), norm="1")
            self.cond = max(self.cond, 1 / rcond if rcond > 0 else math.inf)
            self.sizes.append(len(lam))
            if self.cond > cond_max:
                break
            self.blocks.append((1.0 if dm == 0 else 2.0, lam, R @ V, lu_solve(lu, x0)))

    def run(self, times):
        """Coefficients c_mu(t) of ``indices`` at all ``times`` at once, (T, len(indices))."""
        t = output_times(times)
        return sum(w * ((np.exp(np.outer(t, lam)) * z) @ W.T).real for w, lam, W, z in self.blocks)


def spectral_coefficients(real, times, indices, checkpoint=never):
    """`Spectral` coefficients, or None (logged) if eig fails or cond > SPECTRAL_COND_MAX."""
    try:
        spec = Spectral(real, indices, SPECTRAL_COND_MAX, checkpoint)
    except np.linalg.LinAlgError as err:
        log.warning(f"{label(real)}: eigendecomposition failed ({err}); MFN stepping instead")
        return None
    if spec.cond > SPECTRAL_COND_MAX:
        log.warning(f"{label(real)}: eigenvector condition number {spec.cond:.2g} of a Delta m "
                    "block "
                    f"exceeds SPECTRAL_COND_MAX = {SPECTRAL_COND_MAX:.2g}; MFN stepping instead")
        return None
    return spec.run(times)
