"""The model of Secs. II-III and IV A against independent SI-unit evaluations."""
import logging
import math

import numpy as np
import pytest

from tlsmpi import config
from tlsmpi.errors import ConfigError
from tlsmpi.physics.model import EV, HBAR, ModelParams, bose, minimum_image_distances, sample
from tolerances import rounding

#: Table I of the paper, typed in again (meV, eV, g/cm^3, km/s, nm^-3), independent of MATERIALS.
TABLE_I = {"SiO2": (130, 13, 1e-3, 1e-7, 0.8, 2.2, 5.8, 3.8, 0.3),
           "BK7": (70, 7, 1e-3, 1e-7, 0.7, 2.5, 6.2, 3.8, 0.2),
           "PMMA": (30, 3, 1e-4, 1e-8, 0.3, 1.2, 3.2, 1.6, 0.05)}


def test_realization_is_a_function_of_seed_and_index():
    p = ModelParams(N=12)
    a, b, c = sample(p, 5, 3), sample(p, 5, 3), sample(p, 5, 4)
    assert np.array_equal(a.J, b.J) and np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.J, c.J)
    # epsilon, eta and T change couplings and rates, not the disorder
    d = sample(p.replace(epsilon=1.0, eta=10.0, T_K=300.0), 5, 3)
    assert np.array_equal(a.positions, d.positions) and np.array_equal(a.D, d.D)
    # one rescaling
    assert np.abs(d.J - a.J * 10 / 1e5).max() <= rounding(np.abs(a.J).max() * 1e-4)


def test_distributions():
    p = ModelParams(N=4000, Dbar=0.1, nD=2)
    r = sample(p, 1, 0)
    assert 0 <= r.eps.min() and r.eps.max() <= 1
    logD = np.log10(r.Delta)
    assert logD.min() >= -2 and logD.max() <= 0
    assert abs(logD.mean() + 1) < 0.03                    # <log Delta> = log Dbar
    assert abs(np.std(np.cos(r.theta)) - 1 / np.sqrt(3)) < 0.02   # cos(theta) ~ U(-1, 1)
    assert np.all(r.positions >= 0) and np.all(r.positions < p.box)
    # Eq. (11), hbar nu <= 2 sqrt(2)
    assert np.abs(r.nu - 2 * np.sqrt(r.eps**2 + r.Delta**2)).max() <= rounding(2)


def test_couplings_in_si_units():
    """Eqs. (21)-(22) evaluated directly in SI units, then converted to units of W."""
    p = ModelParams(N=6, epsilon=1.0, vT_km_s=3.0, W_eV=0.13)
    r = sample(p, 3, 1)
    W = p.W_eV * EV
    rho, vL, vT = p.rho_g_cm3 * 1e3, p.vL_km_s * 1e3, p.vT_km_s * 1e3
    v = (3 / (1 / vL**3 + 2 / vT**3)) ** (1 / 3)
    gamma = p.gamma * W
    eps, Delta, hnu = r.eps * W, r.Delta * W, r.nu * W
    dist = r.distances() * 1e-9
    i, j = 1, 4
    J = (
        p.eta
        * gamma
        * eps[i]
        / hnu[i]
        * gamma
        * eps[j]
        / hnu[j]
        * r.D[i, j]
        / (4 * np.pi * rho * v**2 * dist[i, j] ** 3)
    )
    # ~20 rounded products and quotients on each side
    assert abs(r.J[i, j] / (J / W) - 1) < rounding(k=64) and r.J[i, j] == r.J[j, i]
    nu = hnu[2] / HBAR
    Y = Delta[2] ** 2 * gamma**2 * nu * r.g[2] ** 2 / (12 * np.pi * rho * HBAR**3 * v**5)
    assert abs(r.Y[2] / (Y * HBAR / W) - 1) < rounding(k=64)
    assert np.all(np.diag(r.J) == 0)


def _si_typical(name):
    """hbar Y/W and J/W from Eqs. (21)-(22) in SI units with Table I (TABLE_I above) at the
    typical values Delta = Dbar, hbar nu = W (eps ~ W/2), Tr(D^2) = |D_ij| = 1,
    eps/(hbar nu) = 1/2 and r = L0 = rho_TLS^(-1/3); see docs/reproduction.md."""
    W_meV, _, Dbar_meV, _, gamma_eV, rho, vL, vT, n_tls = TABLE_I[name]
    W, Delta, gamma = W_meV * 1e-3 * EV, Dbar_meV * 1e-3 * EV, gamma_eV * EV   # J
    rho, vL, vT = rho * 1e3, vL * 1e3, vT * 1e3                                 # kg/m^3, m/s
    v = (3 / (1 / vL**3 + 2 / vT**3)) ** (1 / 3)                                # Eq. (A9)
    nu = W / HBAR                                                               # 1/s
    Y = Delta**2 * gamma**2 * nu / (12 * np.pi * rho * HBAR**3 * v**5)          # 1/s
    r = n_tls ** (-1 / 3) * 1e-9                                                # m
    J = gamma**2 / 4 / (4 * np.pi * rho * v**2 * r**3)                          # J
    return HBAR * Y / W, J / W


@pytest.mark.parametrize("name, Y_typ, J_typ", [("SiO2", 3.5e-9, 1.2e-4), ("BK7", 2.2e-9, 1.0e-4),
                                                ("PMMA", 6.0e-10, 1.2e-4)])
def test_preset_scales_against_the_derivation(name, Y_typ, J_typ):
    """The presets' couplings and rates equal Eqs. (21)-(22) in SI units, realization by
    realization; their typical values are those of docs/reproduction.md: hbar Y/W a few
    1e-9 and J/W ~ 1e-4, below the paper's order-of-magnitude estimates 1e-8 and 1e-3
    (Sec. III, after Eq. 22) by the factors explained there."""
    Y_si, J_si = _si_typical(name)
    assert abs(Y_si / Y_typ - 1) < 0.05 and abs(J_si / J_typ - 1) < 0.05
    assert 1e-8 / 20 < Y_si < 1e-8 and 1e-3 / 20 < J_si < 1e-3
    p = config.load(None, [f'model.material="{name}"', "model.N=6"]).cases()[1]
    real = sample(p, 3, 0)
    W = p.W_eV * EV
    assert abs(p.Y_scale * p.Dbar**2 * p.gamma**2 / Y_si - 1) < rounding(100)
    assert abs(p.J_scale * p.gamma**2 / 4 / p.L0_nm**3 / J_si - 1) < rounding(100)
    # every realization value against Eqs. (21)-(22) evaluated in SI units
    v = p.v_m_s
    rho = p.rho_g_cm3 * 1e3
    gamma = p.gamma * W
    Y = (
        (real.Delta * W) ** 2
        * gamma**2
        * (real.nu * W / HBAR)
        * real.g**2
        / (12 * np.pi * rho * HBAR**3 * v**5)
    )
    assert np.abs(real.Y / (Y * HBAR / W) - 1).max() < rounding(100)
    r = real.distances() * 1e-9 + np.eye(6)
    a = gamma * real.eps / real.nu                       # gamma eps / (hbar nu), in J
    J = np.outer(a, a) * real.D / (4 * np.pi * rho * v**2 * r**3) / W
    np.fill_diagonal(J, 0)
    assert np.abs(real.J - J).max() < rounding(100) * np.abs(J).max()


def test_minimum_image():
    pos = np.array([[0.1, 0.1, 0.1], [2.9, 0.1, 0.1], [1.5, 1.5, 1.5]])
    d = minimum_image_distances(pos, 3.0)
    # box 3
    assert abs(d[0, 1] - 0.2) < rounding(3) and abs(d[0, 2] - np.sqrt(3) * 1.4) < rounding(3)


def test_bose_and_temperature():
    assert np.all(bose([0.5, 1.0], 0.0) == 0)
    kT = 0.3
    assert abs(bose(1.0, kT) / (1 / (np.exp(1 / kT) - 1)) - 1) < rounding(1 / kT)   # exp of 1/kT
    p = ModelParams(N=3, T_K=1000.0, W_eV=0.1)
    assert abs(p.kT / (8.617333262e-5 * 1000 / 0.1) - 1) < rounding()


@pytest.mark.parametrize("name", sorted(TABLE_I))
def test_material_preset_stores_table_I(name):
    """--set model.material=NAME gives every case exactly the Table I values (in units of W)."""
    W, Dmax, Dbar, Dmin, gamma, rho, vL, vT, n_tls = TABLE_I[name]
    cfg = config.load(None, [f'model.material="{name}"'])
    for p in cfg.cases():
        want = dict(material=name, W_eV=W * 1e-3, Dbar=Dbar / W, nD=math.log10(Dmax / Dmin),
                    gamma=gamma * 1e3 / W, rho_g_cm3=rho, vL_km_s=vL, vT_km_s=vT,
                    L0_nm=n_tls ** (-1 / 3), eta=1.0, N=16)
        for key, value in want.items():
            got = getattr(p, key)
            assert (
                got == value
                if isinstance(value, (str, int))
                else abs(got - value) <= rounding(value)
            ), key
    assert {p.epsilon for p in cfg.cases()} == {0.0, 1.0}          # the default job's sweep
    assert 'material = "%s"' % name in cfg.to_toml() and "W_eV = %r" % (W * 1e-3) in cfg.to_toml()
    with pytest.raises(ValueError, match="material"):
        ModelParams.from_material("glass")


def test_presets_change_the_disorder():
    """The three presets and the paper's numerics give different couplings and rates."""
    reals = [sample(p, 7, 0) for p in
             [config.load(None, [f'model.material="{m}"', "model.N=8"]).cases()[1]
              for m in ("", "SiO2", "BK7", "PMMA")]]
    for a in range(4):
        for b in range(a):
            assert not np.allclose(reals[a].J, reals[b].J) and not np.allclose(
                reals[a].Y, reals[b].Y
            )


def test_explicit_values_override_a_preset(tmp_path, caplog):
    path = tmp_path / "bk7.toml"
    path.write_text('[model]\nmaterial = "BK7"\nN = 6\nW_eV = 0.05\neta = 1.0\n[sweep]\nDbar = '
                    '[1e-3]\n')
    with caplog.at_level(logging.INFO, logger="tlsmpi"):
        (p,) = config.load(str(path)).cases()
    assert (p.W_eV, p.Dbar, p.gamma, p.material) == (0.05, 1e-3, 0.7e3 / 70, "BK7")
    messages = [r.getMessage() for r in caplog.records]
    assert any("model.W_eV = 0.05 overrides BK7's 0.07" in m for m in messages), messages
    assert any(m.startswith("sweep.Dbar") for m in messages)
    # equal to the preset, or no preset key
    assert not any("eta" in m or "model.N" in m for m in messages)
    again = tmp_path / "again.toml"                               # the stored, resolved config
    again.write_text(config.load(str(path)).to_toml())
    assert config.load(str(again)).cases() == [p]


def test_empty_time_values_is_an_error():
    with pytest.raises(ConfigError, match="time.values"):
        config.load(None, ["time.values=[]"])


@pytest.mark.parametrize("bad", [dict(N=1), dict(N=2.5), dict(eta=-1.0), dict(epsilon=float("nan")),
                                 dict(W_eV=0.0), dict(T_K=float("inf")), dict(Dbar="0.1")])
def test_bad_parameters(bad):
    with pytest.raises(ValueError):
        ModelParams(**bad)


def test_bubbles():
    r = sample(ModelParams(N=9), 2, 0)
    b = r.bubbles()
    d = r.distances()
    assert b.shape == (9, 4)
    for i, A in enumerate(b):
        assert i in A
        outside = np.setdiff1d(np.arange(9), A)
        assert d[i, A].max() <= d[i, outside].min()
    sub = r.bubbles(3)
    assert sub.shape == (3, 4) and np.array_equal(sub, r.bubbles(3))


#: False-alarm rate of the Kolmogorov-Smirnov tests of the drawn distributions.
KS_ALPHA = 1e-4


def test_asymmetry_window_draws_uniform_eps_in_the_window():
    """eps ~ U(eps_min, eps_max) (docs/echo.md section 7): all in the window, and a
    Kolmogorov-Smirnov test at false-alarm rate KS_ALPHA accepts the uniform law (and
    rejects a law 10 % narrower, so the test can fail); Delta keeps its law."""
    from scipy import stats
    p = ModelParams(N=4000, Dbar=1e-4, nD=6, eps_min=2e-4, eps_max=1e-3)
    r = sample(p, 7, 0)
    assert r.eps.min() >= 2e-4 and r.eps.max() <= 1e-3
    assert np.all(r.nu >= 2 * 2e-4)                         # hbar nu >= 2 eps (Eq. 11)
    w = p.eps_max - p.eps_min
    assert stats.kstest(r.eps, stats.uniform(2e-4, w).cdf).pvalue >= KS_ALPHA
    assert stats.kstest(r.eps, stats.uniform(2e-4, 0.9 * w).cdf).pvalue < KS_ALPHA
    logD = np.log10(r.Delta / 1e-4)
    assert stats.kstest(logD, stats.uniform(-3, 6).cdf).pvalue >= KS_ALPHA


@pytest.mark.parametrize("geometry", ["periodic", "film"])
def test_asymmetry_window_keeps_the_density_and_P0_U0(geometry):
    """The N TLSs of a window of width w fill the volume N L0^3 / w: L = (N / (P0 w))^(1/3)
    with P0 = 1 / (W L0^3); the positions are the paper's draw stretched to that cell, and
    U0 = J r^3 per unit of the dipole factors (gamma eps / hbar nu)^2 D_ij is unchanged."""
    extra = dict(geometry=geometry, film_nm=2.0 if geometry == "film" else 0.0)
    full = ModelParams(N=50, L0_nm=1.3, **extra)
    win = full.replace(eps_min=1e-4, eps_max=1e-4 + 2.5e-3)
    w = 2.5e-3
    sides, _ = win.cell
    volume = np.prod(sides)
    assert abs(volume * win.window / win.L0_nm**3 - 50) <= rounding(50)
    if geometry == "periodic":
        assert abs(win.box - 1.3 * (50 / w) ** (1 / 3)) <= rounding(win.box)
    a, b = sample(full, 3, 2), sample(win, 3, 2)
    scale = sides / full.cell[0]                    # a film keeps its thickness
    assert np.abs(b.positions - a.positions * scale).max() <= rounding(sides.max())
    assert np.array_equal(a.D, b.D) and np.array_equal(a.Delta, b.Delta)

    def u0(r, params):
        dist = r.distances()
        np.fill_diagonal(dist, 1.0)
        c = params.gamma * r.eps / r.nu
        with np.errstate(invalid="ignore", divide="ignore"):
            return r.J * dist**3 / (np.outer(c, c) * r.D)
    mask = ~np.eye(50, dtype=bool)
    assert np.abs(u0(b, win)[mask] / u0(a, full)[mask] - 1).max() <= rounding(1, 64)


def test_default_window_is_the_papers_draw():
    """eps_min = 0, eps_max = 1 given explicitly: every array of the realization bitwise
    equal to the default's (the run files of the default stay as they were)."""
    a = sample(ModelParams(N=20, epsilon=1.0, T_K=0.5), 4, 1)
    b = sample(ModelParams(N=20, epsilon=1.0, T_K=0.5, eps_min=0.0, eps_max=1.0), 4, 1)
    for k in ("positions", "eps", "Delta", "g", "D", "theta", "phi", "nu", "J", "Y", "f"):
        assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k


@pytest.mark.parametrize("keys, words", [
    (["model.eps_max=1.5"], "model.eps_max = 1.5: the window of the asymmetries must lie in "
                            "[0, W]"),
    (["model.eps_min=0.3", "model.eps_max=0.3"], "model.eps_min = 0.3 >= model.eps_max = 0.3"),
    (["model.eps_min=0.5", "model.eps_max=0.2"], "model.eps_min = 0.5 >= model.eps_max = 0.2"),
    (["model.eps_min=-0.1"], "model.eps_min = -0.1: must be finite and >= 0"),
])
def test_inconsistent_window_is_refused_in_one_line(keys, words):
    with pytest.raises(ConfigError) as err:
        config.load(None, keys)
    assert words in str(err.value) and "\n" not in str(err.value)
