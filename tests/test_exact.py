"""Engine 1 against a dense Lindblad integration, App. B, and the laws of density matrices."""
import itertools

import numpy as np
import pytest

import dense
from tlsmpi import exact
from tlsmpi.bench.pairs import app_b_pair_rdms
from tlsmpi.model import ModelParams, sample
from tlsmpi.observables import Request, concurrence, partial_transpose_det

TIMES = np.array([0.0, 0.03, 0.3, 1.0, 4.0, 20.0])
CASES = [dict(N=2), dict(N=3), dict(N=4), dict(N=3, epsilon=1.0), dict(N=4, epsilon=1.0),
         dict(N=4, epsilon=30.0, T_K=2000.0), dict(N=3, epsilon=5.0, T_K=500.0, eta=1e4)]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("index", [0, 1])
def test_pairs_match_dense_lindblad(kw, index):
    real = sample(ModelParams(**kw), 11, index)
    rho = dense.evolve(real, TIMES)
    got = exact.pair_rdms(real, TIMES)
    for k, (i, j) in enumerate(itertools.combinations(range(real.N), 2)):
        assert np.abs(got[k] - dense.reduced(rho, [i, j], real.N)).max() < 1e-12


def test_unitary_equals_appendix_b():
    real = sample(ModelParams(N=9), 4, 2)
    t = np.logspace(-2, 3, 30)
    assert np.abs(exact.pair_rdms(real, t) - app_b_pair_rdms(real, t)).max() < 1e-12


@pytest.mark.parametrize("kw", [dict(), dict(epsilon=1.0)])
def test_angle_addition_tables_equal_closed_form(kw):
    """The T = 0 table path (unitary and dissipative) equals the general closed form."""
    real = sample(ModelParams(N=8, **kw), 9, 0)
    t = np.logspace(-2, 3, 20)
    fast = exact.PairEngine(real, t)
    slow = exact.PairEngine(real, t)
    assert fast.tables
    slow.tables = False
    for i in range(real.N - 1):
        assert np.abs(fast.rows(i) - slow.rows(i)).max() < 1e-12


@pytest.mark.parametrize("kw", [dict(), dict(epsilon=1.0), dict(epsilon=1.0, T_K=800.0)])
def test_density_matrix_laws_large_N(kw):
    real = sample(ModelParams(N=30, **kw), 3, 0)
    t = np.logspace(-3, 4, 25)
    rho = exact.pair_rdms(real, t)
    assert np.abs(rho - rho.conj().swapaxes(-1, -2)).max() < 1e-14
    assert np.abs(np.trace(rho, axis1=-2, axis2=-1) - 1).max() < 1e-12
    assert np.linalg.eigvalsh(rho).min() > -1e-12


def test_long_time_limit_is_thermal():
    """With dissipation every pair relaxes to the product of Gibbs states (detailed balance)."""
    p = ModelParams(N=5, epsilon=30.0, T_K=1500.0)
    real = sample(p, 1, 0)
    rho = exact.pair_rdms(real, [1e6])[:, 0]
    up = (1 + real.f) / (1 + 2 * real.f)                  # 4Y(1+f) p_down = 4Yf p_up
    k = 0
    for i, j in itertools.combinations(range(5), 2):
        gibbs = np.kron(np.diag([up[i], 1 - up[i]]), np.diag([up[j], 1 - up[j]]))
        assert np.abs(rho[k] - gibbs).max() < 1e-10
        k += 1


def test_concurrence_known_states():
    bell = np.zeros((4, 4)); bell[[0, 0, 3, 3], [0, 3, 0, 3]] = 0.5
    product = np.kron(np.diag([1.0, 0]), np.full((2, 2), 0.5))
    assert np.isclose(concurrence(bell), 1) and concurrence(product) == 0
    # Werner states: C = max(0, (3p - 1)/2)
    p = np.linspace(0, 1, 11)
    werner = p[:, None, None] * bell + (1 - p[:, None, None]) * np.eye(4) / 4
    assert np.allclose(concurrence(werner), np.maximum(0, (3 * p - 1) / 2))
    # cos(a)|00> + sin(a)|11>: C = |sin 2a|
    a = np.linspace(0, np.pi, 7)
    psi = np.zeros((7, 4)); psi[:, 0] = np.cos(a); psi[:, 3] = np.sin(a)
    assert np.allclose(concurrence(psi[:, :, None] * psi[:, None, :]), np.abs(np.sin(2 * a)))


def test_concurrence_screen_and_eigvals_of_R():
    """The PPT screen drops no entangled state; values equal sqrt(eigvals(R)) computed directly."""
    real = sample(ModelParams(N=12, epsilon=1.0), 2, 0)
    rho = exact.pair_rdms(real, np.logspace(-3, 2, 15)).reshape(-1, 4, 4)
    s = np.array([-1.0, 1.0, 1.0, -1.0])
    R = rho @ (s[:, None] * s * rho[:, ::-1, ::-1].conj())
    lam = np.sort(np.sqrt(np.abs(np.linalg.eigvals(R).real)), axis=-1)[:, ::-1]
    direct = np.maximum(0, lam[:, 0] - lam[:, 1:].sum(-1))
    assert np.abs(concurrence(rho) - direct).max() < 1e-7
    assert np.array_equal(concurrence(rho) > 0, partial_transpose_det(rho) < 0)
    assert (direct > 1e-6).any()


def test_average_concurrence_and_compute():
    real = sample(ModelParams(N=6), 8, 1)
    t = np.logspace(-2, 2, 10)
    rho = exact.pair_rdms(real, t)
    expected = concurrence(rho).sum(0) / 6
    out = exact.compute(real, t, Request())
    assert np.allclose(out["concurrence"], expected, atol=1e-15)
    with pytest.raises(ValueError, match="flipflop"):
        exact.compute(sample(ModelParams(N=4, flipflop=0.1), 1, 0), t, Request())
