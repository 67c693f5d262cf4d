"""tlsmpi.post.analysis and tlsmpi.physics.phase_diagram recover known parameters from
synthetic data."""

import math

import numpy as np
import pytest

from tlsmpi.post import analysis as A
from tlsmpi.physics import phase_diagram
from tlsmpi.physics.model import MATERIALS
from tolerances import rounding, summed

T = np.logspace(-3, 8, 111)


def decay_rows(beta, plateau, R=400, noise=0.3, seed=1):
    """Rise ~ t, power law t^-beta from t = 0.05, plateau; multiplicative noise per point."""
    rng = np.random.default_rng(seed)
    c = 0.2 * np.minimum(T / 0.05, (T / 0.05) ** -beta) + plateau
    return c * (1 + noise * rng.standard_normal((R, len(T))))


def test_bootstrap_error_of_a_mean_is_the_standard_error():
    x = np.random.default_rng(3).standard_normal((2000, 1))
    value, err, reps = A.bootstrap([x], lambda m: m[0], n_boot=400, seed=5)
    assert abs(value - x.mean()) <= summed(len(x), np.abs(x).mean())     # a mean of 2000 terms
    assert err == pytest.approx(x.std(ddof=1) / math.sqrt(len(x)), rel=0.15)
    assert reps.shape == (400,)
    again = A.bootstrap([x], lambda m: m[0], n_boot=400, seed=5)[1]
    assert again == err                                   # seeded


def test_paired_groups_share_indices():
    x = np.arange(50.0)[:, None]
    _, _, reps = A.bootstrap([x, x], lambda a, b: a[0] - b[0], n_boot=50, groups=[0, 0])
    assert np.all(reps == 0)
    _, _, reps = A.bootstrap([x, x], lambda a, b: a[0] - b[0], n_boot=50, groups=[0, 1])
    assert np.any(reps != 0)


@pytest.mark.parametrize("beta", [0.4, 0.9])
def test_power_law_exponent_within_error(beta):
    est = A.beta_estimate(T, decay_rows(beta, 2e-4), seed=2)
    assert 0 < est.err < 0.05
    assert abs(est.value - beta) < 4 * est.err
    t0, t1 = est.info["t_window"]
    # window rule: starts where C <= C_max / 2, ends while C >= 10 C(inf)
    assert t0 >= 0.05 * 2 ** (1 / beta) * 0.9
    assert 0.2 * (t1 / 0.05) ** -beta + 2e-4 >= 10 * 2e-4 * 0.9


def test_beta_extrapolation_in_inverse_n():
    """beta(N) = 0.5 + 2/N on two different time grids -> beta_inf = 0.5, slope 2."""
    N = [8, 10, 16, 32, 64]
    rows = [decay_rows(0.5 + 2 / n, 2e-4, R=300, noise=0.1, seed=n) for n in N]
    times = [T] * len(N)
    times[0], rows[0] = T[::2], rows[0][:, ::2]
    est = A.beta_extrapolation(N, times, rows, n_boot=100)
    assert est.info["N_used"] == N
    assert abs(est.value - 0.5) < 4 * est.err and est.err < 0.05
    assert abs(est.info["slope"].value - 2) < 4 * est.info["slope"].err


def test_no_window_without_decay():
    flat = np.ones((20, len(T))) * np.minimum(T / 0.05, 1)
    assert np.isnan(A.beta_estimate(T, flat).value)


def test_peak_time_parabola_in_log_t():
    C = 1 - (np.log(T) - np.log(0.037)) ** 2 / 50
    t_peak, c_max = A.peak(T, C)
    # vertex -b/2a of a quadratic fit at x = ln t, spacing h: the 3x3 Vandermonde system has
    # condition ~ (x/h)^2, and the vertex error scales with |x|
    x, h = abs(math.log(0.037)), math.log(T[1] / T[0])
    assert abs(math.log(t_peak / 0.037)) < rounding((x / h) ** 2 * x)
    assert c_max == C.max()                               # the grid value, not the fit


def test_alpha_from_exponential_plateaus():
    rng = np.random.default_rng(4)
    N = [4, 6, 8, 10, 12]
    rows = [np.exp(-0.8 * n) * (1 + 0.5 * rng.standard_normal((600, 40))) for n in N]
    est = A.alpha_estimate(N, rows, seed=1)
    assert est.info["N_used"] == N
    assert 0 < est.err < 0.02
    assert abs(est.value - 0.8) < 4 * est.err
    assert abs(est.info["ln_prefactor"]) < 0.2


def test_alpha_skips_insignificant_plateaus():
    rng = np.random.default_rng(5)
    rows = [np.exp(-0.8 * n) + 0.01 * rng.standard_normal((100, 20)) for n in (2, 3, 4, 20)]
    assert A.alpha_estimate([2, 3, 4, 20], rows).info["N_used"] == [2, 3, 4]
    assert A.alpha_estimate([2, 3, 4, 20], rows, n_min=3).info["N_used"] == [3, 4]


def test_stretched_exponential_recovers_delta_and_tau():
    rng = np.random.default_rng(6)
    c_inf, A0, tau, delta = 0.02, 0.95, 3e3, 0.25
    R = 300
    base = np.minimum(T / 0.05, 1) * (0.1 * np.exp(-np.log1p(T)) + c_inf)
    rows_0 = base * (1 + 0.2 * rng.standard_normal((R, 1)))
    y = np.where(T > 1, A0 * np.exp(-(T / tau) ** delta), 1.0)
    rows_e = rows_0 / base * c_inf * y * (1 + 0.1 * rng.standard_normal((R, len(T))))
    est = A.stretched_estimate(T, rows_e, rows_0, n_boot=100, seed=3)
    assert abs(est.value - delta) < 4 * est.err and est.err < 0.05
    assert abs(np.log(est.info["tau"].value / tau)) < 4 * est.info["tau"].err / tau + 0.05
    assert est.info["A"].value == pytest.approx(A0, rel=0.1)


def test_stretched_exp_fit_exact_data():
    t = np.logspace(0, 8, 40)
    A0, tau, delta = 1.1, 50.0, 0.3
    fit = A.stretched_exp_fit(t, A0 * np.exp(-(t / tau) ** delta))
    # the least-squares stopping tolerance
    assert fit == pytest.approx((A0, tau, delta), rel=1e-6)


def test_eta_collapse():
    """Curves F(t eta) collapse exactly under t -> t eta/1e5, not without."""
    t = np.logspace(-3, 8, 200)
    def F(x):
        return x / (1 + x**1.5)

    curves = [(eta, t, F(t * eta / 1e5), 0.01 * F(t * eta / 1e5) + 1e-6) for eta in (1e4, 1e5, 1e6)]
    q = A.eta_collapse(curves)
    assert q["rescaled"] < 1e-2 < 10 < q["raw"]


def test_volume_law_slope():
    rng = np.random.default_rng(7)
    N = [6, 8, 10, 12]
    rows = [(0.3 * n + 0.1) * (1 + 0.05 * rng.standard_normal((200, 30))) for n in N]
    est = A.entropy_volume_law(N, rows)
    assert abs(est.value - 0.3) < 4 * est.err
    assert est.info["per_N"][0].value == pytest.approx((0.3 * 6 + 0.1) / 6, rel=0.02)


def test_coupling_scales():
    J = np.zeros((2, 3, 3))
    J[:, 0, 1] = J[:, 1, 0] = 8.0
    J[:, 0, 2] = J[:, 2, 0] = 2.0
    J[:, 1, 2] = J[:, 2, 1] = 1.0
    s = A.coupling_scales(J)
    assert s["J_typ"] == pytest.approx(16 ** (1 / 3))
    assert s["J_nn"] == pytest.approx(8.0)                 # max per TLS: 8, 8, 2


def test_phase_ratio_table_one():
    m = MATERIALS["SiO2"]
    got = phase_diagram.materials()["SiO2"]
    assert got["ratio"] == pytest.approx((1e-3 / 130) ** 2 * (130 / 1.8) ** 3)
    assert got["spread_decades"] == pytest.approx(
        math.log10(m["Dmax_meV"] / m["Dmin_meV"]) / math.sqrt(12)
    )
    # the standard deviation of log10 of a log-uniform sample
    x = np.random.default_rng(0).uniform(-7, math.log10(13), 200000)
    assert np.std(x) == pytest.approx(got["spread_decades"], rel=0.01)
    for v in phase_diagram.materials().values():
        assert v["ratio"] < 1e-4                              # Fig. 2: deep in the MBL region
