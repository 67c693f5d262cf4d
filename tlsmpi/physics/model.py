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
#: Cells the TLSs fill (see ModelParams and `cell`).
GEOMETRIES = ("periodic", "open", "film")
#: Laws of the dipole contraction D_ij (see ModelParams and `tensor_couplings`).
COUPLINGS = ("gaussian", "tensor")
#: Largest volume fraction (pi/6) d_min^3 / L0^3 a minimum separation may fill; random
#: sequential addition jams at 0.38 in 3D.
PACKING_LIMIT = 0.3


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

    Variants of the paper's choices (docs/beta.md), each at the paper's by default:
    ``geometry`` is the cell (`cell`): ``"periodic"`` cube (Sec. IV A), ``"open"`` cube, or
    ``"film"`` of thickness ``film_nm``, periodic in x and y only; ``d_min_nm`` > 0 is a
    minimum TLS separation (`place`); ``couplings = "tensor"`` contracts random
    elastic-dipole tensors by Eq. (A27) (`tensor_couplings`) instead of drawing D_ij
    Gaussian.

    ``eps_min``, ``eps_max`` (units of W) restrict the asymmetries to a window of the
    paper's eps ~ U(0, W) (Eq. 4) at the same density of states, P0 = 1 / (W L0^3) per unit
    of eps and volume: the N TLSs fill the volume N / (P0 w), w = eps_max - eps_min, so
    the cell grows as L = L0 (N W / w)^(1/3) and the couplings J ~ 1/r^3 (Eq. 22) shrink
    by w / W, while P0 U0 (U0 = J r^3) stays the material's (`window`, docs/echo.md
    section 7).  The window [0, w] holds every TLS with hbar nu <= 2 w (hbar nu >= 2 eps).
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
    geometry: str = "periodic"
    film_nm: float = 0.0
    d_min_nm: float = 0.0
    couplings: str = "gaussian"
    eps_min: float = 0.0
    eps_max: float = 1.0

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
            if f.name in ("N", "flipflop_form", "material", "geometry", "couplings"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise ValueError(f"model.{f.name} = {value!r}: expected a number")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"model.{f.name} = {value!r}: must be finite and >= 0")
        for name in ("W_eV", "Dbar", "gamma", "rho_g_cm3", "vL_km_s", "vT_km_s", "L0_nm"):
            if getattr(self, name) == 0:
                raise ValueError(f"model.{name} = 0: must be > 0")
        self._check_variants()

    def _check_variants(self):
        """Refuse an unknown geometry or coupling law, a film without thickness, an
        asymmetry window outside [0, W] or of width 0, and a minimum separation that random
        sequential addition cannot pack (`PACKING_LIMIT`)."""
        for key, allowed in (("geometry", GEOMETRIES), ("couplings", COUPLINGS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key} = {getattr(self, key)!r}: choose one of "
                                 f"{list(allowed)}")
        if self.geometry == "film" and self.film_nm == 0:
            raise ValueError("model.geometry = \"film\" needs model.film_nm > 0 (the film "
                             "thickness in nm)")
        if self.eps_max > 1:
            raise ValueError(f"model.eps_max = {self.eps_max!r}: the window of the asymmetries "
                             "must lie in [0, W] (eps ~ U(0, W), Eq. 4); use eps_max <= 1")
        if self.eps_max <= self.eps_min:
            raise ValueError(f"model.eps_min = {self.eps_min!r} >= model.eps_max = "
                             f"{self.eps_max!r}: the window of the asymmetries needs eps_min < "
                             "eps_max (units of W)")
        d, spacing = self.d_min_nm, self.L0_nm * self.window ** (-1 / 3)
        fill = math.pi / 6 * d**3 / spacing**3
        if fill > PACKING_LIMIT:
            most = spacing * (6 * PACKING_LIMIT / math.pi)**(1 / 3)
            raise ValueError(f"model.d_min_nm = {d!r}: spheres of that diameter fill {fill:.2f}"
                             f" > {PACKING_LIMIT} of the volume at a TLS spacing of {spacing:.4g}"
                             f" nm; use d_min_nm <= {most:.3g}")

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
    def window(self):
        """Width w = eps_max - eps_min of the asymmetry window, in units of W: the TLSs
        drawn are a fraction w of the glass's, at the density P0 w = w / L0^3."""
        return self.eps_max - self.eps_min

    @property
    def box(self):
        """Side of the periodic cube, L = (N / (P0 w))^(1/3) = L0 (N / w)^(1/3) (nm); the
        paper's L0 N^(1/3) for the full window w = 1."""
        return self.L0_nm * (self.N / self.window) ** (1 / 3)

    @property
    def cell(self):
        """(sides, periodic): the cell's three sides (nm) and which are periodic.  A cube
        of side `box` (periodic or open), or a film of thickness film_nm and side
        sqrt(N L0^3 / (w film_nm)) in x and y: every geometry keeps the density w / L0^3."""
        if self.geometry == "film":
            side = math.sqrt(self.N * self.L0_nm**3 / self.film_nm / self.window)
            return np.array([side, side, self.film_nm]), np.array([True, True, False])
        return np.full(3, self.box), np.full(3, self.geometry == "periodic")


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


def displacements(positions, sides, periodic):
    """r_i - r_j, shape (N, N, 3), by the minimum image along the periodic sides."""
    d = positions[:, None, :] - positions[None, :, :]
    d -= np.where(periodic, sides, 0.0) * np.round(d / sides)
    return d


def distances(positions, params):
    """r_ij in the cell of ``params`` (`ModelParams.cell`)."""
    if params.geometry == "periodic":
        return minimum_image_distances(positions, params.box)
    return np.sqrt((displacements(positions, *params.cell)**2).sum(-1))


def place(params, rng, seed, index):
    """TLS positions (N, 3) in nm, uniform in the cell (`ModelParams.cell`).

    With d_min_nm = 0 the N positions are independent (a Poisson process at fixed N; the
    paper's draw).  With d_min_nm > 0 they are placed by random sequential addition: the
    same first draw from ``rng``, then each TLS closer than d_min to an earlier one is
    redrawn from the stream ``default_rng([index, seed, 2])`` until it is not, so the
    density is unchanged and the other draws of the realization stay the same.
    """
    if params.geometry == "periodic":
        positions = rng.uniform(0.0, params.box, size=(params.N, 3))
    else:
        positions = rng.uniform(0.0, params.cell[0], size=(params.N, 3))
    if params.d_min_nm == 0:
        return positions
    sides, periodic = params.cell
    extra = np.random.default_rng([index, seed, 2])
    for i in range(1, params.N):
        for _ in range(100_000):
            d = displacements(positions[: i + 1], sides, periodic)[i, :i]
            if not len(d) or np.sqrt((d**2).sum(-1)).min() >= params.d_min_nm:
                break
            positions[i] = extra.uniform(0.0, sides)
        else:                                            # pragma: no cover
            raise ValueError(f"model.d_min_nm = {params.d_min_nm}: TLS {i} found no place "
                             "in 100000 draws; use a smaller d_min_nm")
    return positions


def tensor_couplings(dipoles, positions, params):
    """Dimensionless contractions D_ij of elastic-dipole tensors, Eq. (A27), (N, N).

    ``dipoles`` (N, 3, 3) are symmetric.  In real space, with n the unit vector of
    r_i - r_j (minimum image) and v the Debye velocity (Eq. A9),
    D_ij = -2 (v/v_T)^2 [Tr(D_i D_j) - 3 n.D_i D_j.n] + v^2 (1/v_L^2 - 1/v_T^2)
    [-Tr D_i Tr D_j - 2 Tr(D_i D_j) + 3 Tr D_i n.D_j.n + 3 Tr D_j n.D_i.n
    + 12 n.D_i D_j.n - 15 (n.D_i.n)(n.D_j.n)],
    which is Eq. (A27) with C_0^ac = delta^ac - 3 n^a n^c and C_0^abcd + 2 C_2^abcd read off
    Eq. (A18) (tests/test_variants.py checks both against the static strain field).
    """
    d = displacements(positions, *params.cell)
    r = np.sqrt((d**2).sum(-1))
    np.fill_diagonal(r, 1.0)
    n = d / r[:, :, None]
    tr = np.trace(dipoles, axis1=1, axis2=2)
    nDn = np.einsum("ija,iab,ijb->ij", n, dipoles, n)             # n.D_i.n
    nDDn = np.einsum("ija,iab,jbc,ijc->ij", n, dipoles, dipoles, n)
    trDD = np.einsum("iab,jba->ij", dipoles, dipoles)
    v2 = params.v_m_s**2
    vL2, vT2 = (1e3 * params.vL_km_s)**2, (1e3 * params.vT_km_s)**2
    out = (-2 * v2 / vT2 * (trDD - 3 * nDDn)
           + v2 * (1 / vL2 - 1 / vT2) * (-np.outer(tr, tr) - 2 * trDD + 3 * tr[:, None] * nDn.T
                                         + 3 * tr[None, :] * nDn + 12 * nDDn - 15 * nDn * nDn.T))
    out = np.triu(out, 1)
    return out + out.T


def random_dipoles(g, seed, index):
    """Elastic-dipole tensors D_i = g_i M_i / |M_i|_F, (N, 3, 3): M_i symmetric with
    independent Gaussian entries (the Gaussian orthogonal ensemble: isotropic in
    orientation), drawn from the stream ``default_rng([index, seed, 3])``; Tr(D_i^2) = g_i^2
    as in the Gaussian model of Sec. IV A, so Eq. (21) keeps its rates."""
    m = np.random.default_rng([index, seed, 3]).standard_normal((len(g), 3, 3))
    m = m + m.transpose(0, 2, 1)
    return g[:, None, None] * m / np.sqrt((m**2).sum(axis=(1, 2)))[:, None, None]


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
        return distances(self.positions, self.params)

    def bubbles(self, count=0):
        """Bubble bipartitions (Sec. IV B): A_i = TLS i and its floor(N/2) - 1 nearest
        TLSs (`distances` in the cell), sorted, shape (n, floor(N/2)).  ``count`` = 0 gives all N;
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
    positions = place(params, rng, seed, index)
    eps = rng.uniform(params.eps_min, params.eps_max, size=N)
    log_span = params.nD / 2 * np.log(10.0)
    Delta = params.Dbar * np.exp(rng.uniform(-log_span, log_span, size=N))
    iu = np.triu_indices(N, 1)
    D = np.zeros((N, N))
    D[iu] = rng.standard_normal(len(iu[0]))
    D += D.T
    g = rng.standard_normal(N)
    theta = np.arccos(rng.uniform(-1.0, 1.0, size=N))
    phi = rng.uniform(0.0, 2 * np.pi, size=N)

    if params.couplings == "tensor":
        D = tensor_couplings(random_dipoles(g, seed, index), positions, params)
    hnu = 2 * np.sqrt(eps**2 + Delta**2)
    r = distances(positions, params)
    np.fill_diagonal(r, np.inf)
    a = params.gamma * eps / hnu
    J = params.eta * params.J_scale * np.outer(a, a) * D / r**3
    Y = params.epsilon * params.Y_scale * Delta**2 * params.gamma**2 * hnu * g**2
    f = bose(hnu, params.kT)
    return Realization(params=params, seed=seed, index=index, positions=positions, eps=eps,
                       Delta=Delta, g=g, D=D, theta=theta, phi=phi, nu=hnu, J=J, Y=Y, f=f)
