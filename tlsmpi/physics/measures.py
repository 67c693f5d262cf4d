"""Entanglement measures of Sec. IV B: concurrence (Eq. 27) and entanglement entropy (Eq. 29).

All functions act on stacks of density matrices (..., d, d).
"""
import numpy as np

_SIGMA_YY_SIGN = np.array([-1.0, 1.0, 1.0, -1.0])   # sigma_y (x) sigma_y = antidiag(-1, 1, 1, -1)


#: Eigenvalues of rho below this times the largest are rounding noise of a zero eigenvalue.
EIG_FLOOR = 4 * np.finfo(float).eps
#: |fl(det4(a)) - det4(a)| <= DET_ROUNDING * det4(|a|, bound=True): per minor two rounded
#: complex products and a difference (<= 5 eps/2 relative), then a product of minors
#: (<= 5 eps/2) and a sum of six terms (<= 5 eps/2), ~8 eps in all; twice that for safety.
DET_ROUNDING = 16 * np.finfo(float).eps


def det4(a, bound=False):
    """Determinant of a stack of 4x4 matrices by Laplace expansion in 2x2 minors of the
    top and bottom row pairs (several times faster than LU for small batched matrices).
    With ``bound``: the same sum with every sign +, for a = |matrix| the scale of the
    determinant's rounding error (see DET_ROUNDING)."""
    t = 1 if bound else -1

    def minor(r, c1, c2):
        return a[..., r, c1] * a[..., r + 1, c2] + t * a[..., r, c2] * a[..., r + 1, c1]
    return (minor(0, 0, 1) * minor(2, 2, 3) + t * minor(0, 0, 2) * minor(2, 1, 3)
            + minor(0, 0, 3) * minor(2, 1, 2) + minor(0, 1, 2) * minor(2, 0, 3)
            + t * minor(0, 1, 3) * minor(2, 0, 2) + minor(0, 2, 3) * minor(2, 0, 1))


def partial_transpose(rho):
    """rho^{T_B}: the transpose on the second qubit of two-qubit states (..., 4, 4)."""
    r = rho.reshape(rho.shape[:-2] + (2, 2, 2, 2))
    return r.swapaxes(-3, -1).reshape(rho.shape)


def certainly_separable(rho):
    """True where det(rho^{T_B}) > 0 beyond its rounding error.  The partial transpose of
    a two-qubit state has at most one negative eigenvalue, so then it is positive definite
    and the state separable, C = 0 (Peres-Horodecki).  States with a singular rho^{T_B},
    such as pure product states, are not certified and return False."""
    pt = partial_transpose(rho)
    return det4(pt).real > DET_ROUNDING * det4(np.abs(pt), bound=True)


def concurrence(rho, screen=True):
    """Wootters concurrence C = max(0, l1 - l2 - l3 - l4) (Eq. 27) of two-qubit states
    (..., 4, 4), with an error of a few eps for trace-1 states.

    Notes
    -----
    The l_a (square roots of the eigenvalues of R = rho rho~) are the singular values of
    M = A^T (sigma_y x sigma_y) A for any factor rho = A A^dagger: R is similar to
    M M^dagger on the range of A.  A = V sqrt(w) comes from ``eigh`` (eigenvalues below
    EIG_FLOOR times the largest set to zero), and the singular values of M carry absolute
    errors ~ eps ||rho||, instead of the sqrt(eps) of square roots of eigenvalues of R.

    Near a rank-deficient state C is only Hoelder-1/2 in rho: dropping an eigenvalue d of
    rho can move C by up to ~2 sqrt(d), and ``eigh`` resolves eigenvalues only to
    ~eps ||rho||.  For states given to rounding (|drho| ~ eps) the error of C stays a few
    eps (tests/test_exact.py); for a state known only to |drho| = delta, C is known only
    to ~sqrt(delta) (docs/liouvillian.md).  Graded separable states (a nearly pure
    marginal) are certified by the screen, whose determinant keeps relative accuracy.

    With ``screen``, states that `certainly_separable` certifies skip the factorization
    (C = 0); no entangled state is screened.
    """
    rho = np.asarray(rho)
    C = np.zeros(rho.shape[:-2])
    sel = ~certainly_separable(rho) if screen else np.ones(C.shape, bool)
    if not sel.any():
        return C
    w, V = np.linalg.eigh(rho[sel])
    w = np.where(w > EIG_FLOOR * w[..., -1:], w, 0.0)
    A = V * np.sqrt(w)[..., None, :]
    M = A.swapaxes(-1, -2) @ (_SIGMA_YY_SIGN[:, None] * A[..., ::-1, :])
    s = np.linalg.svd(M, compute_uv=False)
    C[sel] = np.maximum(0.0, s[..., 0] - s[..., 1:].sum(-1))
    return C


def mean_pair_concurrence(pair_states, N, axis=0):
    """C(t) = (1/N) sum_{i<j} C_ij(t), Eq. (28), the one place of this formula.

    Parameters
    ----------
    pair_states : iterable of ndarray
        Stacks of pair density matrices (..., 4, 4) with the pairs on ``axis`` (after the
        matrix axes are dropped), together all N(N-1)/2 pairs; summed stack by stack, so
        that a caller can produce them in chunks.
    N : int
        Number of TLSs.
    axis : int
        Axis of the pairs in ``concurrence(stack)``.
    """
    total = 0.0
    for rho in pair_states:
        total = total + concurrence(rho).sum(axis)
    return total / N


def entropy_vn(rho):
    """Von Neumann entropy -Tr rho ln rho (natural log, Eq. 29) of Hermitian rho."""
    w = np.clip(np.linalg.eigvalsh(rho), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(w > 0, w * np.log(w), 0.0).sum(-1)
