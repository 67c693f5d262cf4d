"""Test tolerances derived from the arithmetic, k * eps * scale (docs/design.md section 8).

Each helper names what the rounding error grows with; a test passes the scale of its own
computation and says in a comment why that scale is the right one.  k absorbs the
constants of the error bounds (a few operations per term, LAPACK's n eps), not the
observed error on one machine.
"""
import numpy as np

EPS = np.finfo(float).eps


def rounding(scale=1.0, k=16):
    """A fixed, small number of operations on quantities of size ``scale``."""
    return k * EPS * scale


def summed(terms, scale=1.0, k=4):
    """A sum of ``terms`` quantities of size ``scale`` in an unspecified order
    (the worst-case bound grows linearly with the number of terms)."""
    return k * EPS * terms * scale


def mean_concurrence(N, k=64):
    """C = (1/N) sum_{i<j} C_ij (Eq. 28) of pair states known to rounding: each C_ij to a
    few eps of ||rho|| = 1 absolutely (`measures.concurrence`), not relative to C (a
    small C is a difference of singular values of size 1), N(N-1)/2 of them over N."""
    return rounding((N - 1) / 2, k)


def entropy_of(dim, k=64):
    """-sum p ln p of a dim x dim state known to rounding: each eigenvalue to k eps,
    moved through |d(p ln p)/dp| = |ln p| + 1 <= ln(1/(k eps)) + 1 for p >= k eps (below,
    |p ln p| itself is smaller)."""
    return dim * k * EPS * (1 + np.log(1 / (k * EPS)))


def phase(argument, scale=1.0, k=16):
    """exp(z) with |Im z| <= ``argument`` (e.g. t |nu| summed over the factors of a
    product): the argument is rounded to eps |z|, which becomes an absolute error of the
    phase, times the ``scale`` of the result.  Never below rounding(scale, k)."""
    return k * EPS * max(argument, 1.0) * scale


def solver(tol, scale=1.0, k=10):
    """An iterative solver run to relative tolerance ``tol`` on a result of size ``scale``."""
    return k * tol * scale


def site_rate(real):
    """Per site, |nu_i| + 8 Y_i (1 + 2 f_i) + 4 sum_j (|J_ij| + |K_ij|): a bound of every
    frequency and rate that site i contributes to the exponents of Eq. (15)'s solution
    (its column of tlsmpi.engines.liouvillian.norm1_estimate).  t times the sum over the sites of
    a reduced density matrix bounds the arguments of its exponentials at time t."""
    return (np.abs(real.nu) + 8 * real.Y * (1 + 2 * real.f)
            + 4 * (np.abs(real.J) + np.abs(real.K)).sum(1))


def pair_rate(real):
    """The largest sum of `site_rate` over two sites (the exponents of a pair density matrix)."""
    r = np.sort(site_rate(real))
    return float(r[-1] + r[-2])


def evolution(real, t, k=16):
    """Error of a density-matrix element at time t whose exponents add up to at most
    t sum_i site_rate_i over all N sites, from N rounded factors (phase of that argument)."""
    return phase(t * float(site_rate(real).sum()) + real.N, k=k)


def spectral(cond, argument, scale=1.0, k=16):
    """exp(G t) x evaluated as V exp(Lambda t) V^-1 x (eigendecomposition of a non-normal G
    with eigenvector condition number ``cond`` = ||V||_1 ||V^-1||_1): eig is backward
    stable, so an eigenvalue moves by up to cond eps ||G|| (LAPACK's eigenvalue bound),
    an error cond eps ||G|| t of the exponent, and V^-1 x and the sum over modes lose
    cond eps more.  ``argument`` = ||G||_1 t; k eps cond max(argument, 1) scale."""
    return cond * phase(argument, scale, k)


def mfn(real, times, tol):
    """Bound of |drho| for Engine 2 (tlsmpi.engines.liouvillian) run to -mfn_tol ``tol``: every
    MFN solve (output intervals plus substeps of ||G||_1 h <= STEP_NORM) leaves an
    error ~tol ||c||_2 on the Pauli coefficients, ||c||_2 = (2^N Tr rho^2)^(1/2) <=
    2^(N/2); plus the rounding of the exponentials (`evolution`)."""
    from tlsmpi.engines import liouvillian
    steps = len(times) + liouvillian.norm1_estimate(real) * max(times) / liouvillian.STEP_NORM
    return solver(tol, 2 ** (real.N / 2) * steps) + evolution(real, max(times))
