"""Half-system entanglement entropy (Eq. 29): rho_A against a dense Lindblad integration, the
two unitary routes against each other, the grouped factorization against a per-element
evaluation, and the laws of density matrices and entropies."""
import dataclasses

import numpy as np
import pytest

import dense
from tlsmpi.engines import exact
from tlsmpi.physics.reference import naive_rdm
from tlsmpi.engines.subsystems import half_system_entropy, route_costs, subsystem_rdm
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.measures import entropy_vn
from tlsmpi.physics.observables import Request
from tolerances import evolution, phase, rounding, summed

TIMES = np.array([0.0, 0.03, 0.3, 1.0, 4.0, 20.0])
CASES = [dict(N=4), dict(N=3), dict(N=4, epsilon=1.0), dict(N=4, epsilon=30.0),
         dict(N=4, epsilon=30.0, T_K=2000.0), dict(N=3, epsilon=5.0, T_K=500.0, eta=1e4)]
SUBSYSTEMS = [[0], [2], [1, 2], [2, 0], [0, 1, 2], [2, 0, 1], [3, 1, 0], [1, 3, 0, 2]]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("index", [0, 1])
def test_rdm_matches_dense_lindblad(kw, index):
    real = sample(ModelParams(**kw), 5, index)
    rho = dense.evolve(real, TIMES)
    for A in SUBSYSTEMS:
        if max(A) < real.N:
            got = subsystem_rdm(real, TIMES, A)
            assert np.abs(got - dense.reduced(rho, A, real.N)).max() < evolution(real, TIMES[-1]), A


def test_site_without_dissipation_in_dissipative_system():
    """Sites with Y = 0 next to dissipative ones (the degenerate kappa = 0 propagator)."""
    real = sample(ModelParams(N=4, epsilon=30.0, T_K=2000.0), 2, 0)
    Y = real.Y.copy()
    Y[[0, 3]] = 0.0
    real = dataclasses.replace(real, Y=Y)
    rho = dense.evolve(real, TIMES)
    for A in ([0], [1, 3], [3, 2, 1]):
        assert np.abs(subsystem_rdm(real, TIMES, A) - dense.reduced(rho, A, 4)).max() < evolution(
            real, TIMES[-1]
        )


def test_pure_route_matches_dense_entropy():
    real = sample(ModelParams(N=4), 8, 0)
    rho = dense.evolve(real, TIMES)
    bubbles = [[0, 1], [1, 3], [0, 2]]
    got = half_system_entropy(real, TIMES, bubbles, route="pure", per_bipartition=True)
    want = np.stack([entropy_vn(dense.reduced(rho, A, 4)) for A in bubbles], 1)
    # entropies of rho_A with eigenvalues down to w_min: dS ~ |ln w_min| |drho|
    w_min = min(np.linalg.eigvalsh(dense.reduced(rho[1:], A, 4)).min() for A in bubbles)
    assert np.abs(got - want).max() < evolution(real, TIMES[-1]) * max(1, abs(np.log(w_min)))


@pytest.mark.parametrize("N", [10, 11])
def test_unitary_routes_agree(N):
    real = sample(ModelParams(N=N), 3, 1)
    t = np.logspace(-2, 4, 12)
    bubbles = real.bubbles()
    pure = half_system_entropy(real, t, bubbles, route="pure", per_bipartition=True)
    fact = half_system_entropy(real, t, bubbles, route="factorized", per_bipartition=True)
    # sum of 2^|A| eigenvalue terms
    assert np.abs(pure - fact).max() < evolution(real, t[-1]) * 2**(N // 2)
    assert pure[-1].mean() > 0.5               # the comparison is not between zeros


@pytest.mark.parametrize("kw", [dict(N=9, epsilon=1.0), dict(N=8, epsilon=30.0, T_K=2000.0)])
def test_grouped_factorization_matches_per_element_formula(kw):
    real = sample(ModelParams(**kw), 4, 0)
    t = np.logspace(-2, 3, 7)
    A = real.bubbles()[2]
    assert np.abs(subsystem_rdm(real, t, A) - naive_rdm(real, t, A)).max() < evolution(real, t[-1])


@pytest.mark.parametrize("kw", [dict(N=10), dict(N=10, epsilon=1.0),
                                dict(N=9, epsilon=30.0, T_K=2000.0)])
def test_density_matrix_and_entropy_laws(kw):
    real = sample(ModelParams(**kw), 6, 0)
    t = np.concatenate([[0.0], np.logspace(-2, 6, 17)])
    A = real.bubbles()[0]
    rho = subsystem_rdm(real, t, A)
    assert np.abs(rho - rho.conj().swapaxes(-1, -2)).max() == 0
    tol = evolution(real, t[-1]) * 2**len(A)                  # traces: 2^|A| elements
    assert np.abs(np.trace(rho, axis1=-2, axis2=-1) - 1).max() < tol
    assert np.linalg.eigvalsh(rho).min() > -tol
    S = half_system_entropy(real, t, real.bubbles(), per_bipartition=True)
    # at t = 0 rho_A is pure up to rounding r = 2^|A| eps: -r ln r is its entropy
    r = rounding(2**len(A))
    assert np.abs(S[0]).max() < -2**len(A) * r * np.log(r)
    assert S.min() > -tol and S.max() < len(A) * np.log(2) + tol
    assert S.max() > 0.1


def test_mean_over_bipartitions_and_route_choice():
    real = sample(ModelParams(N=8), 1, 0)
    t = np.logspace(-1, 3, 5)
    bubbles = real.bubbles(3)
    # the mean against an independent pure-state computation from the dense Hamiltonian
    psi0 = np.ones(1)
    for amplitude in real.initial_states():
        psi0 = np.kron(psi0, amplitude)
    H = np.diag(dense.hamiltonian(real)).real                   # diagonal in the S^z basis
    psi = np.exp(-1j * H[None, :] * t[:, None]) * psi0           # (T, 2^N)
    rho = psi[:, :, None] * psi[:, None, :].conj()
    want = np.mean([entropy_vn(dense.reduced(rho, list(A), real.N)) for A in bubbles], axis=0)
    # phases t |E| with |E| <= sum |nu|/2 + sum |J|; entropy of 16 x 16 states is Lipschitz
    # away from zero eigenvalues (t > 0 here), so the same scale bounds its error
    scale = t[-1] * (np.abs(real.nu).sum() / 2 + np.abs(real.J).sum())
    got = half_system_entropy(real, t, bubbles)
    assert np.abs(got - want).max() < phase(scale) and want.min() > 0.1
    cost = route_costs(20, 10, 50, 20)
    assert cost["factorized"] < cost["pure"]
    with pytest.raises(ValueError, match="unitary"):
        half_system_entropy(sample(ModelParams(N=6, epsilon=1.0), 1, 0), t, [[0, 1, 2]],
                            route="pure")
    with pytest.raises(ValueError, match="distinct"):
        subsystem_rdm(real, t, [1, 1])


def test_engine_entry_point_averages_the_requested_bubbles():
    real = sample(ModelParams(N=7, epsilon=1.0), 2, 3)
    t = np.logspace(-1, 3, 6)
    out = exact.compute(real, t, Request(("entropy",), bipartitions=3))
    per = [entropy_vn(subsystem_rdm(real, t, A)) for A in real.bubbles(3)]
    assert np.abs(out["entropy"] - np.mean(per, axis=0)).max() < summed(
        3, len(real.bubbles(3)[0]) * np.log(2)
    )
