"""The TLS model of Secs. II-III and IV A: parameters, materials, disorder.

Units (docs/design.md section 2): energies in W, times in hbar/W, rates and
frequencies in W/hbar, lengths in nm.  The coupling formulas (21)-(22) mix W
with SI material constants, so a physical value ``W_eV`` fixes the scale.

A realization is fully determined by ``(seed, index)``: every random number
(positions, eps, Delta, dipole contractions, initial Bloch vectors) comes from
``numpy.random.default_rng([index, seed])`` in a fixed order, so results do not
depend on how realizations are spread over MPI ranks, and two runs that differ
only in ``epsilon``, ``eta`` or ``T_K`` see the same disorder.
"""
from dataclasses import dataclass, fields, replace
import math

import numpy as np

HBAR = 1.054571817e-34      # J s
EV = 1.602176634e-19        # J
KB_EV = 8.617333262e-5      # eV / K

#: Table I of the paper, in the units of the table.
MATERIALS = {
    "SiO2": dict(W_meV=130, Dmax_meV=13, Dbar_meV=1e-3, Dmin_meV=1e-7, gamma_eV=0.8,
                 rho=2.2, vL=5.8, vT=3.8, kTD_meV=30, rho_TLS=0.3, hbar_tau_meV=1.8),
    "BK7": dict(W_meV=70, Dmax_meV=7, Dbar_meV=1e-3, Dmin_meV=1e-7, gamma_eV=0.7,
                rho=2.5, vL=6.2, vT=3.8, kTD_meV=30, rho_TLS=0.2, hbar_tau_meV=1.7),
    "PMMA": dict(W_meV=30, Dmax_meV=3, Dbar_meV=1e-4, Dmin_meV=1e-8, gamma_eV=0.3,
                 rho=1.2, vL=3.2, vT=1.6, kTD_meV=10, rho_TLS=0.05, hbar_tau_meV=0.45),
}


#: Operator forms of the flip-flop term (see ModelParams).
FLIPFLOP_FORMS = ("exchange", "xx")


@dataclass(frozen=True)
class ModelParams:
    """Physical parameters; the defaults are the paper's numerics (Sec. IV A).

    ``material`` names the Table I preset the values came from ("" for the paper's
    numerics; see `from_material`).  Dbar and gamma are in units of W; ``epsilon``
    and ``eta`` are the artificial scale factors of Eq. (25); ``flipflop`` scales the optional
    flip-flop coupling K_ij = flipflop * J_ij (footnote 67), which Engine 1 cannot
    treat.  ``flipflop_form`` chooses its operator, in the ordered-pair convention of
    the S^z S^z term (each unordered pair enters twice):

    * ``"exchange"``: sum_{i<j} K_ij (S+_i S-_j + S-_i S+_j) = sum_{i<j} 2 K_ij (S^x_i S^x_j
      + S^y_i S^y_j); conserves the number of down spins.
    * ``"xx"``: sum_{i != j} K_ij S^x_i S^x_j = sum_{i<j} 2 K_ij S^x_i S^x_j, the paper's
      term (footnote 67); conserves only the parity of the number of down spins.
    """
    N: int = 16
    W_eV: float = 0.1
    Dbar: float = 0.1
    nD: float = 2.0
    gamma: float = 1.0
    rho_g_cm3: float = 2.0
    vL_km_s: float = 5.0
    vT_km_s: float = 5.0
    L0_nm: float = 1.0
    eta: float = 1e5
    epsilon: float = 0.0
    T_K: float = 0.0
    flipflop: float = 0.0
    flipflop_form: str = "exchange"
    material: str = ""

    def __post_init__(self):
        if self.material and self.material not in MATERIALS:
            raise ValueError(f"model.material = {self.material!r}: choose one of "
                             f"{sorted(MATERIALS)} "
                             "(or \"\" for the paper's numerics)")
        if self.flipflop_form not in FLIPFLOP_FORMS:
            raise ValueError(f"model.flipflop_form = {self.flipflop_form!r}: choose one of "
                             f"{list(FLIPFLOP_FORMS)}")
        if isinstance(self.N, bool) or not isinstance(self.N, (int, np.integer)) or self.N < 2:
            raise ValueError(f"model.N = {self.N!r}: the number of TLSs must be an integer >= 2")
        for f in fields(self):
            if f.name in ("N", "flipflop_form", "material"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise ValueError(f"model.{f.name} = {value!r}: expected a number")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"model.{f.name} = {value!r}: must be finite and >= 0")
        for name in ("W_eV", "Dbar", "gamma", "rho_g_cm3", "vL_km_s", "vT_km_s", "L0_nm"):
            if getattr(self, name) == 0:
                raise ValueError(f"model.{name} = 0: must be > 0")

    @classmethod
    def from_material(cls, name, **overrides):
        """Parameters of a Table I glass (`material_values`); ``overrides`` replace any of
        them and set the other fields."""
        return cls(**{**material_values(name), "material": name, **overrides})

    def replace(self, **changes):
        return replace(self, **changes)

    @property
    def v_m_s(self):
        """Debye-averaged sound velocity, 1/v^3 = (1/3) sum_alpha 1/v_alpha^3 (Eq. A9)."""
        vL, vT = 1e3 * self.vL_km_s, 1e3 * self.vT_km_s
        return (3.0 / (1 / vL**3 + 2 / vT**3)) ** (1 / 3)

    @property
    def J_scale(self):
        """W / (4 pi rho v^2 (1 nm)^3): Eq. (22) in units of W for r in nm, D_ij = 1."""
        rho = 1e3 * self.rho_g_cm3
        return self.W_eV * EV / (4 * np.pi * rho * self.v_m_s**2 * 1e-27)

    @property
    def Y_scale(self):
        """W^4 / (12 pi rho hbar^3 v^5): Eq. (21) in units of W/hbar per unit
        (Delta/W)^2 (gamma/W)^2 (hbar nu/W) Tr(D^2)."""
        rho = 1e3 * self.rho_g_cm3
        W = self.W_eV * EV
        return W**4 / (12 * np.pi * rho * HBAR**3 * self.v_m_s**5)

    @property
    def kT(self):
        """k_B T in units of W."""
        return KB_EV * self.T_K / self.W_eV

    @property
    def box(self):
        """Side of the periodic cube, L = L0 N^(1/3) (nm)."""
        return self.L0_nm * self.N ** (1 / 3)


def material_values(name):
    """The ModelParams values a Table I glass sets: W, Dbar/W, n_Delta =
    log10(Delta_max/Delta_min), gamma/W, rho, v_L, v_T and L0 = rho_TLS^(-1/3); ``eta``
    and ``epsilon`` are physical (1)."""
    try:
        m = MATERIALS[name]
    except KeyError:
        raise ValueError(f"material = {name!r}: choose one of {sorted(MATERIALS)}") from None
    return dict(W_eV=m["W_meV"] * 1e-3, Dbar=m["Dbar_meV"] / m["W_meV"],
                nD=math.log10(m["Dmax_meV"] / m["Dmin_meV"]),
                gamma=m["gamma_eV"] * 1e3 / m["W_meV"], rho_g_cm3=m["rho"],
                vL_km_s=m["vL"], vT_km_s=m["vT"], L0_nm=m["rho_TLS"] ** (-1 / 3),
                eta=1.0, epsilon=1.0)


def bose(E, kT):
    """f_T(E) = 1 / (exp(E/kT) - 1), zero at T = 0."""
    E = np.asarray(E, dtype=float)
    if kT == 0:
        return np.zeros_like(E)
    with np.errstate(over="ignore"):
        return 1.0 / np.expm1(E / kT)


def minimum_image_distances(positions, box):
    """r_ij in a periodic cube of side ``box`` (minimum-image convention)."""
    d = positions[:, None, :] - positions[None, :, :]
    d -= box * np.round(d / box)
    return np.sqrt((d**2).sum(-1))


@dataclass(frozen=True)
class Realization:
    """One disorder realization and its initial state, in the units of the module.

    nu[i]: TLS frequency (Eq. 11); J[i, j]: symmetric coupling with eta (Eq. 22,
    zero diagonal, each unordered pair enters H as 2 J_ij S^z_i S^z_j);
    Y[i]: rate of Eq. (21) with epsilon; f[i]: Bose factor f_T(hbar nu_i);
    theta, phi: Bloch angles of the initial product state (Eq. 26); radius: lengths of
    its Bloch vectors, None for pure states (a thermal state, `tlsmpi.physics.pulses`).
    """
    params: ModelParams
    seed: int
    index: int
    positions: np.ndarray
    eps: np.ndarray
    Delta: np.ndarray
    g: np.ndarray
    D: np.ndarray
    theta: np.ndarray
    phi: np.ndarray
    nu: np.ndarray
    J: np.ndarray
    Y: np.ndarray
    f: np.ndarray
    radius: np.ndarray = None

    @property
    def N(self):
        return self.params.N

    @property
    def K(self):
        """Flip-flop couplings K_ij (zero unless params.flipflop > 0)."""
        return self.params.flipflop * self.J

    def distances(self):
        return minimum_image_distances(self.positions, self.params.box)

    def bubbles(self, count=0):
        """Bubble bipartitions (Sec. IV B): A_i = TLS i and its floor(N/2) - 1 nearest
        TLSs (minimum image), sorted, shape (n, floor(N/2)).  ``count`` = 0 gives all N;
        otherwise a random subset of ``count`` centres, reproducible from (seed, index)
        and drawn from a stream separate from the disorder."""
        N = self.N
        centres = np.arange(N)
        if count and count < N:
            rng = np.random.default_rng([self.index, self.seed, 1])
            centres = np.sort(rng.choice(N, size=count, replace=False))
        order = np.argsort(self.distances()[centres], axis=1, kind="stable")
        return np.sort(order[:, : N // 2], axis=1)

    def initial_states(self):
        """Single-TLS amplitudes (cos(theta/2), e^{i phi} sin(theta/2)) in the (up, down)
        S^z eigenbasis, shape (N, 2); up (S^z = +1) is the ground state."""
        if self.radius is not None and np.any(self.radius != 1):
            raise ValueError("the initial state is mixed (thermal at T > 0): no state vector")
        return np.stack(
            [np.cos(self.theta / 2), np.exp(1j * self.phi) * np.sin(self.theta / 2)], -1
        )

    def initial_density_matrices(self):
        """rho0_i = |psi_i><psi_i|, or (1 + r n.S)/2 for Bloch vectors of lengths
        ``radius``, shape (N, 2, 2)."""
        if self.radius is None:
            psi = self.initial_states()
            return psi[:, :, None] * psi[:, None, :].conj()
        st, r = np.sin(self.theta), self.radius
        rho = np.empty((self.N, 2, 2), dtype=complex)
        rho[:, 0, 0] = (1 + r * np.cos(self.theta)) / 2
        rho[:, 1, 1] = (1 - r * np.cos(self.theta)) / 2
        rho[:, 0, 1] = r * st * np.exp(-1j * self.phi) / 2
        rho[:, 1, 0] = rho[:, 0, 1].conj()
        return rho


def sample(params, seed, index):
    """Draw realization ``index`` of the ensemble with master ``seed`` (Eqs. 4-6, 11, 21,
    22, 26)."""
    N = params.N
    rng = np.random.default_rng([index, seed])
    positions = rng.uniform(0.0, params.box, size=(N, 3))
    eps = rng.uniform(0.0, 1.0, size=N)
    log_span = params.nD / 2 * np.log(10.0)
    Delta = params.Dbar * np.exp(rng.uniform(-log_span, log_span, size=N))
    iu = np.triu_indices(N, 1)
    D = np.zeros((N, N))
    D[iu] = rng.standard_normal(len(iu[0]))
    D += D.T
    g = rng.standard_normal(N)
    theta = np.arccos(rng.uniform(-1.0, 1.0, size=N))
    phi = rng.uniform(0.0, 2 * np.pi, size=N)

    hnu = 2 * np.sqrt(eps**2 + Delta**2)
    r = minimum_image_distances(positions, params.box)
    np.fill_diagonal(r, np.inf)
    a = params.gamma * eps / hnu
    J = params.eta * params.J_scale * np.outer(a, a) * D / r**3
    Y = params.epsilon * params.Y_scale * Delta**2 * params.gamma**2 * hnu * g**2
    f = bose(hnu, params.kT)
    return Realization(params=params, seed=seed, index=index, positions=positions, eps=eps,
                       Delta=Delta, g=g, D=D, theta=theta, phi=phi, nu=hnu, J=J, Y=Y, f=f)
