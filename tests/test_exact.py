"""Engine 1 against a dense Lindblad integration, App. B, and the laws of density matrices."""
import itertools

import numpy as np
import pytest

import dense
import concurrence_states
from tlsmpi.engines import exact
from tlsmpi.physics.reference import app_b_pair_rdms
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.measures import EIG_FLOOR, certainly_separable, concurrence
from tlsmpi.physics.observables import Request
from tolerances import pair_rate, phase, rounding, summed

TIMES = np.array([0.0, 0.03, 0.3, 1.0, 4.0, 20.0])
CASES = [dict(N=2), dict(N=3), dict(N=4), dict(N=3, epsilon=1.0), dict(N=4, epsilon=1.0),
         dict(N=4, epsilon=30.0, T_K=2000.0), dict(N=3, epsilon=5.0, T_K=500.0, eta=1e4)]


@pytest.fixture(scope="module")
def constructed_states():
    return concurrence_states.states()


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("index", [0, 1])
def test_pairs_match_dense_lindblad(kw, index):
    real = sample(ModelParams(**kw), 11, index)
    rho = dense.evolve(real, TIMES)
    got = exact.pair_rdms(real, TIMES)
    # both sides exponentiate arguments up to t_max ||L||: scipy's expm of the whole
    # generator (bounded by the sum over all sites) and the engine's per-site factors
    tol = phase(TIMES[-1] * pair_rate(real) * real.N / 2 + real.N)
    for k, (i, j) in enumerate(itertools.combinations(range(real.N), 2)):
        assert np.abs(got[k] - dense.reduced(rho, [i, j], real.N)).max() < tol


def test_unitary_equals_appendix_b():
    real = sample(ModelParams(N=9), 4, 2)
    t = np.logspace(-2, 3, 30)
    # N factors of exp(i omega t), each with a rounded argument (scale t |omega|)
    tol = phase(t[-1] * pair_rate(real) + real.N)
    assert np.abs(exact.pair_rdms(real, t) - app_b_pair_rdms(real, t)).max() < tol


@pytest.mark.parametrize("kw", [dict(), dict(epsilon=1.0)])
def test_angle_addition_tables_equal_closed_form(kw):
    """The T = 0 table path (unitary and dissipative) equals the general closed form."""
    real = sample(ModelParams(N=8, **kw), 9, 0)
    t = np.logspace(-2, 3, 20)
    fast = exact.PairTables(real, t)
    slow = exact.PairTables(real, t)
    assert fast.tables
    slow.tables = False
    # the tables multiply N rounded phases e^{-i omega_k t}; the closed form rounds their sum
    tol = phase(t[-1] * pair_rate(real) + real.N)
    for i in range(real.N - 1):
        assert np.abs(fast.rows(i) - slow.rows(i)).max() < tol


@pytest.mark.parametrize("kw", [dict(), dict(epsilon=1.0), dict(epsilon=1.0, T_K=800.0)])
def test_density_matrix_laws_large_N(kw):
    real = sample(ModelParams(N=30, **kw), 3, 0)
    t = np.logspace(-3, 4, 25)
    rho = exact.pair_rdms(real, t)
    # Hermiticity is by construction (conjugated copies); trace and positivity hold to the
    # rounding of the N-factor products with arguments up to t_max times the pair's rates
    assert np.abs(rho - rho.conj().swapaxes(-1, -2)).max() == 0
    tol = phase(t[-1] * pair_rate(real) + real.N)
    assert np.abs(np.trace(rho, axis1=-2, axis2=-1) - 1).max() < tol
    assert np.linalg.eigvalsh(rho).min() > -tol


def test_long_time_limit_is_thermal():
    """With dissipation every pair relaxes to the product of Gibbs states (detailed balance)."""
    p = ModelParams(N=5, epsilon=30.0, T_K=1500.0)
    real = sample(p, 1, 0)
    t = 1e6
    assert 2 * real.Y.min() * t > 40                     # the initial state has decayed
    rho = exact.pair_rdms(real, [t])[:, 0]
    up = (1 + real.f) / (1 + 2 * real.f)                  # 4Y(1+f) p_down = 4Yf p_up
    tol = phase(t * pair_rate(real) + real.N)              # arguments up to t x rates
    for k, (i, j) in enumerate(itertools.combinations(range(5), 2)):
        gibbs = np.kron(np.diag([up[i], 1 - up[i]]), np.diag([up[j], 1 - up[j]]))
        assert np.abs(rho[k] - gibbs).max() < tol


def test_concurrence_known_states():
    """Closed forms; each state is a few rounded operations on numbers <= 1 (scale 1)."""
    tol = rounding()
    bell = np.zeros((4, 4))
    bell[[0, 0, 3, 3], [0, 3, 0, 3]] = 0.5
    product = np.kron(np.diag([1.0, 0]), np.full((2, 2), 0.5))
    assert abs(concurrence(bell) - 1) < tol and concurrence(product) < tol
    # Werner states: C = max(0, (3p - 1)/2)
    p = np.linspace(0, 1, 11)
    werner = p[:, None, None] * bell + (1 - p[:, None, None]) * np.eye(4) / 4
    assert np.abs(concurrence(werner) - np.maximum(0, (3 * p - 1) / 2)).max() < tol
    # cos(a)|00> + sin(a)|11>: C = |sin 2a|
    a = np.linspace(0, np.pi, 7)
    psi = np.zeros((7, 4))
    psi[:, 0], psi[:, 3] = np.cos(a), np.sin(a)
    C = concurrence(psi[:, :, None] * psi[:, None, :])
    assert np.abs(C - np.abs(np.sin(2 * a))).max() < tol


def test_concurrence_of_constructed_states_matches_extended_precision(constructed_states):
    """Wootters' formula evaluated with 40 digits on a few hundred states: pure and mixed
    product states, weakly entangled pure states (C >= 1e-9), the same with white noise,
    rank-deficient and full-rank mixed states.  Each rho is rounded once to double, and C
    is Lipschitz in the factor A of rho = A A^dagger, so the error is a few eps."""
    rho = np.array([s[1] for s in constructed_states])
    exact_C = np.array([s[2] for s in constructed_states])
    tol = rounding()
    for screen in (True, False):
        err = np.abs(concurrence(rho, screen=screen) - exact_C)
        assert err.max() < tol, [constructed_states[k][0] for k in np.flatnonzero(err >= tol)]
    weak = [s for s in constructed_states if s[0] == "weakly entangled pure"]
    assert min(s[2] for s in weak) < 2e-9 and concurrence(np.array([s[1] for s in weak])).min() > 0


def test_concurrence_screen_certifies_only_separable_engine_states():
    """On the engine's states: certified states have C = 0 and uncertified ones agree with
    the unscreened computation bit for bit."""
    real = sample(ModelParams(N=12, epsilon=1.0), 2, 0)
    rho = exact.pair_rdms(real, np.logspace(-3, 2, 15)).reshape(-1, 4, 4)
    sure = certainly_separable(rho)
    full = concurrence(rho, screen=False)
    assert sure.any() and (~sure).any() and (full > 1e-6).any()
    # without the screen, dropping eigenvalues below EIG_FLOOR ||rho|| moves C by up to
    # 2 sqrt(EIG_FLOOR) (Hoelder-1/2 near rank-deficient states); with it C = 0 exactly
    assert full[sure].max() < 2 * np.sqrt(EIG_FLOOR)
    assert concurrence(rho)[sure].max() == 0
    assert np.array_equal(concurrence(rho)[~sure], full[~sure])


def test_average_concurrence_and_compute():
    real = sample(ModelParams(N=6), 8, 1)
    t = np.logspace(-2, 2, 10)
    rho = exact.pair_rdms(real, t)
    expected = concurrence(rho).sum(0) / 6
    out = exact.compute(real, t, Request())
    # the same N(N-1)/2 values of C <= 1, summed in another order
    assert np.abs(out["concurrence"] - expected).max() < summed(real.N * (real.N - 1) / 2)
    assert expected.max() > 1e-3
    with pytest.raises(ValueError, match="flipflop"):
        exact.compute(sample(ModelParams(N=4, flipflop=0.1), 1, 0), t, Request())
