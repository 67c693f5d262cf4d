"""The model of Secs. II-III and IV A against independent SI-unit evaluations."""
import numpy as np
import pytest

from tlsmpi.model import EV, HBAR, MATERIALS, ModelParams, bose, minimum_image_distances, sample


def test_realization_is_a_function_of_seed_and_index():
    p = ModelParams(N=12)
    a, b, c = sample(p, 5, 3), sample(p, 5, 3), sample(p, 5, 4)
    assert np.array_equal(a.J, b.J) and np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.J, c.J)
    # epsilon, eta and T change couplings and rates, not the disorder
    d = sample(p.replace(epsilon=1.0, eta=10.0, T_K=300.0), 5, 3)
    assert np.array_equal(a.positions, d.positions) and np.array_equal(a.D, d.D)
    assert np.allclose(d.J, a.J * 10 / 1e5)


def test_distributions():
    p = ModelParams(N=4000, Dbar=0.1, nD=2)
    r = sample(p, 1, 0)
    assert 0 <= r.eps.min() and r.eps.max() <= 1
    logD = np.log10(r.Delta)
    assert logD.min() >= -2 and logD.max() <= 0
    assert abs(logD.mean() + 1) < 0.03                    # <log Delta> = log Dbar
    assert abs(np.std(np.cos(r.theta)) - 1 / np.sqrt(3)) < 0.02   # cos(theta) ~ U(-1, 1)
    assert np.all(r.positions >= 0) and np.all(r.positions < p.box)
    assert np.allclose(r.nu, 2 * np.sqrt(r.eps**2 + r.Delta**2))


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
    J = p.eta * gamma * eps[i] / hnu[i] * gamma * eps[j] / hnu[j] * r.D[i, j] / (4 * np.pi * rho * v**2 * dist[i, j] ** 3)
    assert np.isclose(r.J[i, j], J / W, rtol=1e-12) and r.J[i, j] == r.J[j, i]
    nu = hnu[2] / HBAR
    Y = Delta[2] ** 2 * gamma**2 * nu * r.g[2] ** 2 / (12 * np.pi * rho * HBAR**3 * v**5)
    assert np.isclose(r.Y[2], Y * HBAR / W, rtol=1e-12)
    assert np.all(np.diag(r.J) == 0)


def test_minimum_image():
    pos = np.array([[0.1, 0.1, 0.1], [2.9, 0.1, 0.1], [1.5, 1.5, 1.5]])
    d = minimum_image_distances(pos, 3.0)
    assert np.isclose(d[0, 1], 0.2) and np.isclose(d[0, 2], np.sqrt(3) * 1.4)


def test_bose_and_temperature():
    assert np.all(bose([0.5, 1.0], 0.0) == 0)
    kT = 0.3
    assert np.isclose(bose(1.0, kT), 1 / (np.exp(1 / kT) - 1))
    p = ModelParams(N=3, T_K=1000.0, W_eV=0.1)
    assert np.isclose(p.kT, 8.617333262e-5 * 1000 / 0.1)


def test_materials_table_I():
    p = ModelParams.from_material("SiO2")
    m = MATERIALS["SiO2"]
    assert np.isclose(p.W_eV, 0.13) and np.isclose(p.nD, np.log10(13 / 1e-7))
    assert np.isclose(p.Dbar * m["W_meV"], 1e-3) and np.isclose(p.L0_nm, 0.3 ** (-1 / 3))
    with pytest.raises(ValueError, match="material"):
        ModelParams.from_material("glass")


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
