"""Experiments on the TLSs: site selections, initial states and pi-pulse protocols
(docs/echo.md).

* `Selection`: which TLSs, by frequency band (hbar nu_i of Eq. 11 in units of W) or by
  index; resolved per realization, since nu is random.
* `InitialState`: the product state at t = 0: the paper's random pure state (Eq. 26), the
  thermal populations at model.T_K, the ground state or fixed Bloch angles, then a
  rotation by any angle about x or y on a selection (the pi/2 pulse of an echo).
* `Protocol`: free evolution (the paper's), a Hahn echo, CPMG-n or pi pulses at given
  times, about x or y, on a selection.  Hahn and CPMG make every output time t its own
  experiment with pi pulses at (2k - 1) t / (2n), k = 1..n, and the echo read at t.

A pi pulse about x on site i maps rho -> X_i rho X_i: populations swap, a coherence
rho[up, down] becomes rho[down, up]; about y the coherence also changes sign.  H (Eq. 23)
stays diagonal and the dissipator (Eq. 15) on-site, so Engine 1 keeps its factorization
with one 2x2 problem per site and interval (`tlsmpi.physics.propagators.propagate_sequence`).
"""
from dataclasses import dataclass, field, replace

import numpy as np

from .model import bose

STATES = ("random", "thermal", "ground", "bloch")
KINDS = ("free", "hahn", "cpmg", "pulses")
AXES = ("x", "y")
SELECTIONS = ("all", "band", "sites")


@dataclass(frozen=True)
class Selection:
    """A set of TLSs: ``kind`` "all", "band" (nu_min <= hbar nu_i <= nu_max, in units of W,
    Eq. 11) or "sites" (the indices ``sites``)."""
    kind: str = "all"
    nu_min: float = 0.0
    nu_max: float = 0.0
    sites: tuple = ()

    def mask(self, real):
        """Boolean mask (N,) of the selected TLSs of realization ``real``."""
        if self.kind == "all":
            return np.ones(real.N, dtype=bool)
        if self.kind == "band":
            return (real.nu >= self.nu_min) & (real.nu <= self.nu_max)
        out = np.zeros(real.N, dtype=bool)
        out[list(self.sites)] = True
        return out


def rotate_bloch(n, angle, axis):
    """Bloch vectors n (..., 3) rotated by ``angle`` (rad) about ``axis`` "x" or "y", the
    action of exp(-i angle S^axis / 2) (S = Pauli matrix)."""
    x, y, z = np.moveaxis(np.asarray(n, dtype=float), -1, 0)
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.stack([x, c * y - s * z, s * y + c * z], -1)
    return np.stack([c * x + s * z, y, c * z - s * x], -1)


@dataclass(frozen=True)
class InitialState:
    """The product state at t = 0 (docs/echo.md): ``state`` then a rotation by ``angle``
    degrees about ``axis`` of the TLSs of ``select``.  "bloch" puts every TLS at polar
    angle ``theta`` and azimuth ``phi`` (degrees; theta = 0 is up, the ground state)."""
    state: str = "random"
    theta: float = 0.0
    phi: float = 0.0
    angle: float = 0.0
    axis: str = "x"
    select: Selection = field(default_factory=Selection)

    @property
    def is_default(self):
        return self.state == "random" and self.angle == 0

    def mixed(self, params):
        """True if the state of a realization of ``params`` is mixed (thermal at T > 0)."""
        return self.state == "thermal" and params.T_K > 0

    def apply(self, real):
        """``real`` with this initial state: its Bloch angles (theta, phi) and, for a mixed
        state, the lengths ``radius`` of its Bloch vectors.  The default returns ``real``
        itself (Eq. 26, bitwise the paper's draw)."""
        if self.is_default:
            return real
        N = real.N
        radius = None
        if self.state == "random":
            theta, phi = real.theta, real.phi
        elif self.state == "bloch":
            theta = np.full(N, np.radians(self.theta))
            phi = np.full(N, np.radians(self.phi))
        else:
            theta, phi = np.zeros(N), np.zeros(N)
            if self.state == "thermal":
                f = bose(real.nu, real.params.kT)       # p_up - p_down = 1 / (1 + 2f)
                radius = 1.0 / (1.0 + 2.0 * f)
        if self.angle:
            n = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                          np.cos(theta)], -1)
            sel = self.select.mask(real)
            n[sel] = rotate_bloch(n[sel], np.radians(self.angle), self.axis)
            theta = np.arccos(np.clip(n[:, 2], -1.0, 1.0))
            phi = np.arctan2(n[:, 1], n[:, 0])
        return replace(real, theta=theta, phi=phi, radius=radius)


@dataclass(frozen=True)
class Protocol:
    """Pi pulses about ``axis`` on the TLSs of ``select`` (docs/echo.md): ``kind`` "free"
    (none), "hahn" (one at t/2), "cpmg" (``n_pulses`` at (2k - 1) t / 2n) or "pulses" (at
    the fixed ``pulse_times``; a pulse at tau is applied before a reading at t = tau)."""
    kind: str = "free"
    n_pulses: int = 1
    pulse_times: tuple = ()
    axis: str = "x"
    select: Selection = field(default_factory=Selection)

    @property
    def free(self):
        return self.kind == "free"

    @property
    def count(self):
        """Pulses per experiment of a Hahn or CPMG echo."""
        return {"hahn": 1, "cpmg": self.n_pulses}.get(self.kind, 0)

    def segments(self, times):
        """Groups of output times with the same number m of pulses before them: a list of
        (index array into ``times``, durations (len, m + 1) of the intervals between
        pulses, summing to t)."""
        t = np.asarray(times, dtype=float)
        if self.kind in ("hahn", "cpmg"):
            n = self.count
            edges = np.concatenate([[0.0], (2 * np.arange(1, n + 1) - 1) / (2 * n), [1.0]])
            return [(np.arange(len(t)), np.outer(t, np.diff(edges)))]
        taus = np.asarray(self.pulse_times, dtype=float)
        applied = np.searchsorted(taus, t, side="right")
        out = []
        for m in np.unique(applied):
            idx = np.flatnonzero(applied == m)
            edges = np.concatenate([np.zeros((len(idx), 1)),
                                    np.broadcast_to(taus[:m], (len(idx), m)), t[idx, None]], 1)
            out.append((idx, np.diff(edges, axis=1)))
        return out
