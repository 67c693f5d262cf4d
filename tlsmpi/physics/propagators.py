"""Closed-form dynamics of one TLS under Eq. (15): the transition rates, the coherence
decay and exp(M t) p for the 2x2 population problem with a phase omega (docs/design.md
section 4).  Engines 1 and 3 and the references of the tests build on these.
"""
import numpy as np


def rates(Y, f):
    """Transition rates (up->down, down->up) = (4Yf, 4Y(1+f)) of Eq. (15)."""
    return 4 * Y * f, 4 * Y * (1 + f)


def coherence_decay(Y, f):
    """Gc = 2Y(1+2f), the decay rate of a single-TLS coherence."""
    return 2 * Y * (1 + 2 * f)


def propagator_modes(omega, t, p_up, Y, f):
    """exp(M t) p for M = Q - i omega diag(1, -1) in spectral form.

    M = -R/2 + N with R = 4Y(1+2f) and N traceless, N^2 = kappa^2,
    kappa^2 = (2Y - i omega)^2 + 16 Y^2 f (1+f), so

        exp(M t) p = e_plus (p + x)/2 + e_minus (p - x)/2,   x = N p / kappa,
        e_plus = exp((kappa - R/2) t),  e_minus = exp(-(kappa + R/2) t),

    with all the time dependence in two exponentials (N/kappa := 0 where kappa = 0, then
    M = 0; either branch of the square root gives the same result).  ``omega`` broadcasts
    against the per-site ``p_up, Y, f``; ``t`` is appended as the last axis of e_plus,
    e_minus; x has shape (2,) + broadcast shape.
    """
    omega, p_up, Y, f = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (omega, p_up, Y, f))
    )
    r_down, r_up = rates(Y, f)
    R = r_up + r_down
    z = 2 * Y - 1j * omega                                   # N = [[z, r_up], [r_down, -z]]
    kappa = np.sqrt(z * z + r_up * r_down)
    inv = np.divide(1.0, kappa, out=np.zeros_like(kappa), where=kappa != 0)
    p_down = 1 - p_up
    x = np.stack([(z * p_up + r_up * p_down) * inv, (r_down * p_up - z * p_down) * inv])
    # kappa - R/2 without cancellation: kappa^2 - R^2/4 = -omega (omega + 4iY), which is 0
    # at omega = 0 (trace preservation) where kappa - R/2 would carry a rounding error ~eps R
    lam = np.divide(-omega * (omega + 4j * Y), kappa + R / 2,
                    out=np.zeros_like(kappa), where=kappa + R / 2 != 0)
    t = np.asarray(t, dtype=float)
    e_plus = np.exp(lam[..., None] * t)
    e_minus = np.exp(-(kappa + R / 2)[..., None] * t)
    return e_plus, e_minus, x


def propagate_populations(omega, t, p_up, Y, f):
    """(v_up, v_down) = exp(M t) p (see `propagator_modes`), each broadcast shape + t.shape."""
    e_plus, e_minus, x = propagator_modes(omega, t, p_up, Y, f)
    p_up = np.broadcast_to(np.asarray(p_up, dtype=float), x.shape[1:])[..., None]
    x = x[..., None]
    return tuple(
        0.5 * ((p + xk) * e_plus + (p - xk) * e_minus) for p, xk in zip((p_up, 1 - p_up), x)
    )


def trace_factor(omega, t, p_up, Y, f):
    """1^T exp(M t) p: the factor of a site outside the subsystem (App. B when Y = 0)."""
    e_plus, e_minus, x = propagator_modes(omega, t, p_up, Y, f)
    s = (x[0] + x[1])[..., None]
    return 0.5 * ((1 + s) * e_plus + (1 - s) * e_minus)


def coherences(real, t):
    """c_i(t) = rho0_i[up, down] exp((i nu_i - Gc_i) t), shape (N, T)."""
    rho0 = real.initial_density_matrices()
    gc = coherence_decay(real.Y, real.f)
    return rho0[:, 0, 1, None] * np.exp(np.outer(1j * real.nu - gc, t))
