"""Dynamical phase diagram, Eq. (24) and Fig. 2: hbar Y / J ~ (Dbar/W)^2 (W / hbar tau^-1)^3.

A glass shows the MBL transient when the ratio is below 1.  The spread of the tunnelling
amplitudes is the standard deviation of log10 Delta for the log-uniform law (Eq. 5) on
[Delta_min, Delta_max]: log10(Delta_max/Delta_min) / sqrt(12) decades (Fig. 2 error bars).
"""
import math

from .model import EV, HBAR, MATERIALS


def ratio(dbar_over_w, w_over_hbar_tau):
    """hbar Y / J of Eq. (24)."""
    return dbar_over_w**2 * w_over_hbar_tau**3


def log10_spread(delta_min, delta_max):
    """Standard deviation of log10 Delta for Delta log-uniform on [delta_min, delta_max]."""
    return math.log10(delta_max / delta_min) / math.sqrt(12)


def materials():
    """Table I glasses: name -> dict(dbar_over_w, w_over_hbar_tau, ratio, spread_decades)."""
    out = {}
    for name, m in MATERIALS.items():
        d, x = m["Dbar_meV"] / m["W_meV"], m["W_meV"] / m["hbar_tau_meV"]
        out[name] = dict(dbar_over_w=d, w_over_hbar_tau=x, ratio=ratio(d, x),
                         spread_decades=log10_spread(m["Dmin_meV"], m["Dmax_meV"]))
    return out


def numerics(params):
    """The same numbers for a tlsmpi ModelParams, hbar tau^-1 = hbar v / L0 (Sec. IV A);
    ``effective_ratio`` includes the artificial factors epsilon / eta of Eq. (25)."""
    hbar_tau = HBAR * params.v_m_s / (params.L0_nm * 1e-9) / (params.W_eV * EV)   # in W
    r = ratio(params.Dbar, 1 / hbar_tau)
    return dict(dbar_over_w=params.Dbar, w_over_hbar_tau=1 / hbar_tau, ratio=r,
                effective_ratio=r * params.epsilon / params.eta,
                spread_decades=params.nD / math.sqrt(12))
