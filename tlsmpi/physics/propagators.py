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
    g = _Generator(omega, Y, f)
    x = np.stack(g.apply(p_up, 1 - p_up))
    e_plus, e_minus = g.exponentials(t)
    return e_plus, e_minus, x


class _Generator:
    """M = -R/2 + N of `propagator_modes`: N = [[z, r_up], [r_down, -z]], z = 2Y - i omega,
    kappa = sqrt(z^2 + r_up r_down), for broadcast arrays ``omega, Y, f``."""

    def __init__(self, omega, Y, f):
        r_down, self.r_up = rates(Y, f)
        self.r_down = r_down
        R = self.r_up + r_down
        self.z = z = 2 * Y - 1j * omega
        kappa = np.sqrt(z * z + self.r_up * r_down)
        self.inv = np.divide(1.0, kappa, out=np.zeros_like(kappa), where=kappa != 0)
        # kappa - R/2 without cancellation: kappa^2 - R^2/4 = -omega (omega + 4iY), which is
        # 0 at omega = 0 (trace preservation) where kappa - R/2 would carry an error ~eps R
        self.lam = np.divide(-omega * (omega + 4j * Y), kappa + R / 2,
                             out=np.zeros_like(kappa), where=kappa + R / 2 != 0)
        self.mu = kappa + R / 2

    def apply(self, v_up, v_down, times=False):
        """N v / kappa for populations (v_up, v_down) of the broadcast shape, or with
        ``times`` of that shape + (T,)."""
        z, r_up, r_down, inv = ((a[..., None] if times else a)
                                for a in (self.z, self.r_up, self.r_down, self.inv))
        return (z * v_up + r_up * v_down) * inv, (r_down * v_up - z * v_down) * inv

    def exponentials(self, t):
        """(e_plus, e_minus) = (exp((kappa - R/2) t), exp(-(kappa + R/2) t)), t last axis."""
        t = np.asarray(t, dtype=float)
        return np.exp(self.lam[..., None] * t), np.exp(-self.mu[..., None] * t)


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


def pulsed_coherences(real, durations, protocol):
    """The coherent factors of every TLS under the pi pulses of ``protocol`` (docs/echo.md):
    (c, sign, pulsed) with c[i] = rho0_i[pattern of interval 0] exp(i nu_i sum_q s_i^(q)
    dt_q - Gc_i t) (times (-1)^m for pulses about y), shape (N, T); the signs s_i^(q) =
    (-1)^(m - q) of a pulsed site's coherence in interval q (1 for the others), shape
    (N, m + 1); the mask of pulsed sites.  ``durations`` (T, m + 1) are the intervals
    between the m pulses of each output time (`Protocol.segments`)."""
    D = np.asarray(durations, dtype=float)
    m = D.shape[1] - 1
    rho0 = real.initial_density_matrices()
    pulsed = protocol.select.mask(real)
    sign = np.where(pulsed[:, None], (-1.0) ** (m - np.arange(m + 1)), 1.0)
    first = np.where(sign[:, 0] > 0, rho0[:, 0, 1], rho0[:, 1, 0])
    phase = np.where(pulsed & (protocol.axis == "y") & (m % 2 == 1), -1.0, 1.0)
    gc = coherence_decay(real.Y, real.f)
    c = (phase * first)[:, None] * np.exp(1j * real.nu[:, None] * (sign @ D.T)
                                          - np.outer(gc, D.sum(1)))
    return c, sign, pulsed


def propagate_sequence(omegas, durations, p_up, Y, f, swap):
    """Populations of one TLS through intervals separated by pi pulses (docs/echo.md):
    v = exp(M_m dt_m) S ... S exp(M_0 dt_0) p with M_k = Q - i omegas[k] diag(1, -1) and S
    the swap of up and down where ``swap`` (the TLS is pulsed), else 1.

    ``omegas``: m + 1 arrays broadcast against ``p_up, Y, f, swap``; ``durations`` (T, m + 1)
    the lengths of the intervals of each output time.  Returns (v_up, v_down), each of
    the broadcast shape + (T,); without pulses this is `propagate_populations`."""
    durations = np.asarray(durations, dtype=float)
    v_up, v_down = propagate_populations(omegas[0], durations[:, 0], p_up, Y, f)
    swap = np.asarray(swap)[..., None]
    generators, exponentials = {}, {}      # the same omega object or interval: computed once
    for k in range(1, durations.shape[1]):
        v_up, v_down = np.where(swap, v_down, v_up), np.where(swap, v_up, v_down)
        key = id(omegas[k])
        if key not in generators:
            generators[key] = _Generator(*np.broadcast_arrays(
                *(np.asarray(v, dtype=float) for v in (omegas[k], Y, f))))
        g = generators[key]
        step = (key, durations[:, k].tobytes())
        if step not in exponentials:
            exponentials[step] = g.exponentials(durations[:, k])
        e_plus, e_minus = exponentials[step]
        x_up, x_down = g.apply(v_up, v_down, times=True)
        v_up = 0.5 * ((v_up + x_up) * e_plus + (v_up - x_up) * e_minus)
        v_down = 0.5 * ((v_down + x_down) * e_plus + (v_down - x_down) * e_minus)
    return v_up, v_down
