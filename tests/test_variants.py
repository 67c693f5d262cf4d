"""Model variants (docs/beta.md): cells, minimum separation and the tensor couplings of
Eq. (A27), each against an independent computation."""
import itertools
import math
import tomllib

import numpy as np
import pytest
import sympy as sp
from scipy import integrate

from tlsmpi import config
from tlsmpi.errors import ConfigError
from tlsmpi.physics.model import (ModelParams, distances, random_dipoles, sample,
                                  tensor_couplings)

EPS = np.finfo(float).eps


def brute_distances(positions, sides, periodic):
    """min over the periodic images (shifts of -1, 0, 1 side along each periodic axis)."""
    shifts = [(-1, 0, 1) if p else (0,) for p in periodic]
    best = np.full((len(positions),) * 2, np.inf)
    for k in itertools.product(*shifts):
        d = positions[:, None, :] - positions[None, :, :] + np.array(k) * sides
        best = np.minimum(best, np.sqrt((d**2).sum(-1)))
    return best


@pytest.mark.parametrize("geometry, film_nm", [("periodic", 0.0), ("open", 0.0),
                                                ("film", 0.7), ("film", 5.0)])
def test_distances_are_the_nearest_image_of_the_cell(geometry, film_nm):
    p = ModelParams(N=12, geometry=geometry, film_nm=film_nm)
    sides, periodic = p.cell
    assert np.prod(sides) == pytest.approx(p.N * p.L0_nm**3, rel=8 * EPS)   # density 1/L0^3
    x = sample(p, 7, 3).positions
    assert np.all((x >= 0) & (x < sides))
    assert np.allclose(distances(x, p), brute_distances(x, sides, periodic),
                       rtol=0, atol=16 * EPS * sides.max())
    assert list(periodic) == {"periodic": [1, 1, 1], "open": [0, 0, 0],
                              "film": [1, 1, 0]}[geometry]


def test_a_film_as_thick_as_the_cube_is_the_cube_open_in_z():
    """film_nm = L0 N^(1/3): the cube's sides, the z images gone (the 27-image brute force
    of the periodic cube is then an upper bound: equal in x, y, shorter or equal in z)."""
    cube = ModelParams(N=16)
    film = ModelParams(N=16, geometry="film", film_nm=cube.box)
    assert np.allclose(film.cell[0], cube.box, rtol=8 * EPS)
    x = sample(cube, 3, 1).positions
    r_film, r_cube = distances(x, film), distances(x, cube)
    assert np.all(r_cube <= r_film + 16 * EPS * cube.box)
    assert np.any(r_cube < r_film - 1e-3)          # some pair's nearest image is across z


def test_default_draws_are_unchanged_by_the_variants_keys():
    """periodic + Gaussian + d_min 0 is the paper's draw; open/film/tensor/d_min change only
    what they are about (same eps, Delta, g, initial state)."""
    base = sample(ModelParams(N=10), 5, 2)
    for changes in ({"geometry": "open"}, {"geometry": "film", "film_nm": 0.5},
                    {"couplings": "tensor"}, {"d_min_nm": 0.6}):
        other = sample(ModelParams(N=10, **changes), 5, 2)
        for name in ("eps", "Delta", "g", "theta", "phi", "nu", "Y"):
            assert np.array_equal(getattr(base, name), getattr(other, name)), (changes, name)
        assert not np.array_equal(base.J, other.J), changes


@pytest.mark.parametrize("geometry", ["periodic", "open", "film"])
def test_minimum_separation_is_respected_and_positions_stay_uniform(geometry):
    p = ModelParams(N=30, geometry=geometry, film_nm=1.5, d_min_nm=0.7)
    sides = p.cell[0]
    pooled = []
    for index in range(200):
        x = sample(p, 11, index).positions
        r = distances(x, p)
        np.fill_diagonal(r, np.inf)
        assert r.min() >= p.d_min_nm
        assert np.all((x >= 0) & (x < sides))
        pooled.append(x / sides)
    u = np.concatenate(pooled)                     # 6000 points per axis
    # the mean stays at 1/2 (mirror symmetry; SEM 1/sqrt(12 n)); along a periodic axis
    # the density is even (variance 1/12, SEM sqrt(1/180 n)); along an open one the hard
    # core leaves more room near the walls (fewer neighbours), so there it is not
    assert np.all(abs(u.mean(0) - 0.5) < 5 / math.sqrt(12 * len(u)))
    var = u.var(0)[p.cell[1]]
    assert np.all(abs(var - 1 / 12) < 5 * math.sqrt(1 / 180 / len(u)))
    unconstrained = sample(ModelParams(N=30, geometry=geometry, film_nm=1.5), 11, 0)
    assert not np.array_equal(unconstrained.positions, sample(p, 11, 0).positions)


@pytest.mark.parametrize("model, match", [
    ({"d_min_nm": 0.9}, "model.d_min_nm = 0.9: .* use d_min_nm <= 0.83"),
    ({"geometry": "film"}, "model.geometry = \"film\" needs model.film_nm > 0"),
    ({"film_nm": 2.0}, "model.film_nm = 2.0 has no effect"),
    ({"geometry": "sphere"}, "model.geometry = 'sphere': expected one of"),
    ({"couplings": "dipolar"}, "model.couplings = 'dipolar': expected one of"),
])
def test_variants_refuse_what_they_cannot_do(model, match):
    with pytest.raises(ConfigError, match=match):
        config.validate({"model": {"N": 6, **model}})


# --- Eq. (A27), the literal route: rotate into the frame z || r_ij, use Eq. (A18) ----------

#: Eq. (A18) as sum_l C_l zeta^l s_l(zeta) / zeta^5 (four indices) or / zeta^3 (two):
#: C_0 ... C_4 of each multiset of indices (x and y alike), read off the printed formulas.
A18_FOUR = {"xxxx": (9, -9, -3, 0, 0), "xxyy": (3, -3, -1, 0, 0), "xxzz": (-12, 12, 5, -1, 0),
            "zzzz": (24, -24, -12, 4, 1)}
A18_TWO = {(2, 0): (1, -1, 0), (0, 2): (-2, 2, 1)}


def c_four(idx):
    counts = [idx.count(k) for k in range(3)]
    if any(c % 2 for c in counts):
        return (0,) * 5
    kind = {4: "zzzz", 2: "xxzz"}.get(counts[2], "xxyy" if 2 in counts else "xxxx")
    return A18_FOUR[kind]


def c_two(idx):
    if idx[0] != idx[1]:
        return (0,) * 3
    return A18_TWO[(2, 0) if idx[0] < 2 else (0, 2)]


def test_a18_table_is_the_angular_integral_a16():
    """The coefficients above reproduce Eqs. (A16)-(A17) by quadrature at two zeta."""
    def angular(idx, zeta):
        def f(phi, th):
            q = (math.sin(th) * math.cos(phi), math.sin(th) * math.sin(phi), math.cos(th))
            return math.prod(q[a] for a in idx) * math.cos(zeta * q[2]) * math.sin(th)
        return integrate.dblquad(f, 0, math.pi, 0, 2 * math.pi, epsabs=1e-12)[0] / (4 * math.pi)

    def series(coefs, zeta, power):
        return sum(c * zeta**k * (math.cos(zeta) if k % 2 else math.sin(zeta))
                   for k, c in enumerate(coefs)) / zeta**power
    for zeta in (0.7, 3.1):
        for idx in ((0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (1, 1, 2, 2), (2, 2, 2, 2),
                    (0, 0, 0, 1), (0, 2, 0, 2)):
            assert angular(idx, zeta) == pytest.approx(series(c_four(idx), zeta, 5), abs=1e-9)
        for idx in ((0, 0), (2, 2), (0, 2)):
            assert angular(idx, zeta) == pytest.approx(series(c_two(idx), zeta, 3), abs=1e-9)


def literal_a27(Di, Dj, rij, params):
    """Eq. (A27) with C_0^ac and C_0^abcd + 2 C_2^abcd of Eq. (A18) in the frame z || r_ij."""
    z = rij / np.linalg.norm(rij)
    x = np.cross(z, [0.3, -0.8, 0.5])
    x /= np.linalg.norm(x)
    R = np.array([x, np.cross(z, x), z])              # rows: the frame's axes
    Di, Dj = R @ Di @ R.T, R @ Dj @ R.T
    v2 = params.v_m_s**2
    vL2, vT2 = (1e3 * params.vL_km_s)**2, (1e3 * params.vT_km_s)**2
    total = 0.0
    for a, b, c, d in itertools.product(range(3), repeat=4):
        c4 = c_four((a, b, c, d))
        term = -2 * c_two((a, c))[0] * (b == d) / vT2 + (c4[0] + 2 * c4[2]) * (1 / vT2 - 1 / vL2)
        total += v2 * term * Di[a, b] * Dj[c, d]
    return total


def kelvin_a27(Di, Dj, rij, params):
    """The static strain field of an elastic dipole in an isotropic solid (Kelvin's Green
    function G_bd = [(3 - 4 nu) delta_bd + n_b n_d] / (16 pi mu (1 - nu) r)): the coupling
    8 pi rho v^2 r^3 sum D_i^ab D_j^cd d_a d_c G_bd(r), with rho = 1."""
    X = sp.symbols("x0:3", real=True)
    r = sp.sqrt(sum(s**2 for s in X))
    vL2, vT2 = (1e3 * params.vL_km_s)**2, (1e3 * params.vT_km_s)**2
    mu, nu = vT2, (vL2 - 2 * vT2) / (2 * (vL2 - vT2))
    point = dict(zip(X, rij))
    total = 0.0
    for a, b, c, d in itertools.product(range(3), repeat=4):
        if Di[a, b] == 0 or Dj[c, d] == 0:
            continue
        G = ((3 - 4 * nu) * (b == d) + X[b] * X[d] / r**2) / (16 * sp.pi * mu * (1 - nu) * r)
        total += Di[a, b] * Dj[c, d] * float(sp.diff(G, X[a], X[c]).subs(point))
    return 8 * math.pi * params.v_m_s**2 * np.linalg.norm(rij)**3 * total


@pytest.mark.parametrize("material", ["", "SiO2", "PMMA"])
def test_tensor_contraction_is_eq_a27_and_the_strain_field(material):
    p = (ModelParams.from_material(material, N=6, couplings="tensor") if material
         else ModelParams(N=6, couplings="tensor"))
    g = np.random.default_rng(4).standard_normal(6)
    dip = random_dipoles(g, 9, 1)
    assert np.allclose(np.einsum("iab,iba->i", dip, dip), g**2, rtol=16 * EPS)
    assert np.array_equal(dip, dip.transpose(0, 2, 1))
    x = np.random.default_rng(5).uniform(0, p.box, size=(6, 3))
    D = tensor_couplings(dip, x, p)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    sides, periodic = p.cell
    scale = np.abs(dip).max()**2 * p.v_m_s**2 / (1e3 * p.vT_km_s)**2
    for i, j in ((0, 1), (2, 5), (4, 3)):
        d = x[i] - x[j]
        d -= sides * np.round(d / sides)
        # 81 products of O(scale) summed (and a rotation): 500 eps scale bounds the rounding
        assert D[i, j] == pytest.approx(literal_a27(dip[i], dip[j], d, p), abs=500 * EPS * scale)
        if p.vL_km_s != p.vT_km_s:
            assert D[i, j] == pytest.approx(kelvin_a27(dip[i], dip[j], d, p),
                                            abs=500 * EPS * scale)


def test_tensor_couplings_enter_j_by_eq_22():
    p = ModelParams(N=8, couplings="tensor", vL_km_s=5.8, vT_km_s=3.8)
    s = sample(p, 2, 4)
    D = tensor_couplings(random_dipoles(s.g, 2, 4), s.positions, p)
    assert np.array_equal(s.D, D)
    a = p.gamma * s.eps / s.nu
    r = s.distances()
    np.fill_diagonal(r, 1.0)
    expect = p.eta * p.J_scale * np.outer(a, a) * D / r**3
    assert np.allclose(s.J, expect, rtol=8 * EPS, atol=0)


def test_tensor_couplings_have_zero_mean():
    """Isotropic dipoles: D_ij is odd in each g_i, so its mean vanishes; its spread is
    O(1) (docs/beta.md quotes it)."""
    p = ModelParams(N=40, couplings="tensor")
    vals = np.concatenate([sample(p, 1, k).D[np.triu_indices(40, 1)] for k in range(50)])
    assert abs(vals.mean()) < 5 * vals.std() / math.sqrt(len(vals))
    assert 0.3 < vals.std() < 3


def test_a_file_written_before_the_variants_resumes():
    """The resolved TOML of a default run is the text of the code before the variant keys
    (so --resume of such a file compares equal); a variant shows and reads back."""
    text = config.load(None).to_toml()
    assert not any(k in text for k in config.QUIET_KEYS["model"])
    cfg = config.load(None, ["model.geometry=\"film\"", "model.film_nm=2.0"])
    assert 'geometry = "film"' in cfg.to_toml() and "film_nm = 2.0" in cfg.to_toml()
    assert config.validate(tomllib.loads(cfg.to_toml())).data == cfg.data
