"""Engine 2 (tlsmpi.engines.liouvillian) against independent computations: the dense 4^N
superoperator of tests/dense.py, Engine 1, pure-state evolution, and itself under mpirun."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import expm

pytest.importorskip("slepc4py", reason="needs_petsc: slepc4py is not installed "
                    "(pip install 'tlsmpi[liouvillian]')")
from petsc4py import PETSc  # noqa: E402

import dense  # noqa: E402
from tlsmpi.engines import exact, liouvillian  # noqa: E402
from tlsmpi.errors import ConfigError, SolverError  # noqa: E402
from tlsmpi.physics.model import ModelParams, sample  # noqa: E402
from tlsmpi.physics.measures import concurrence, entropy_vn  # noqa: E402
from tlsmpi.physics.observables import Request  # noqa: E402
from tolerances import mfn, spectral, summed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "mpi_liouvillian_driver.py")
TIGHT = {"mfn_tol": "1e-13"}


def mfn_error(real, times, tol=float(TIGHT["mfn_tol"])):
    """tolerances.mfn at the tests' -mfn_tol."""
    return mfn(real, times, tol)


def observable_error(real, times, n_sites, tol=float(TIGHT["mfn_tol"])):
    """Bounds of (|dC|, |dS_E|) from mfn_error d: C of a pair moves by at most ~2 sum |drho_ab|
    <= 32 d (measured: dC ~ d, docs/liouvillian.md; near rank-deficient states it can move
    like sqrt(d)); S_E of n_sites sites by 2^n ||drho||_2 |ln d| <= 4^n d |ln d|."""
    d = mfn_error(real, times, tol)
    return 32 * d, 4**n_sites * d * max(1.0, abs(np.log(d)))


@pytest.fixture
def petsc_options():
    """Set PETSc options for one test (as -key value on the command line would)."""
    db, added = PETSc.Options(), []

    def set_options(**options):
        for key, value in options.items():
            db.setValue(key, value)
            added.append(key)
    yield set_options
    for key in added:
        db.delValue(key)


def random_realization(N, seed, flipflop=0.3, form="exchange"):
    """A sampled realization with O(1) random nu, J, Y, f (T > 0) and flip-flop couplings."""
    rng = np.random.default_rng(seed)
    real = sample(
        ModelParams(N=N, flipflop=flipflop, flipflop_form=form, T_K=300.0, epsilon=1.0), seed, 0
    )
    J = np.triu(rng.normal(size=(N, N)), 1)
    return dataclasses.replace(real, nu=rng.uniform(0.5, 2, N), J=J + J.T,
                               Y=rng.uniform(0.05, 0.3, N), f=rng.uniform(0, 1, N))


def pauli_generator_from_dense(real):
    """G_ba = 2^-N Tr(P_b L(P_a)) from the dense superoperator of tests/dense.py."""
    N = real.N
    P = np.array([np.ones((1, 1))])
    for _ in range(N):
        P = np.einsum("aij,bkl->abikjl", P, liouvillian.PAULI).reshape(
            4 * len(P), 2 * P.shape[1], -1
        )
    images = (dense.generator(real) @ P.reshape(len(P), -1).T).T.reshape(P.shape)
    return np.einsum("bji,aij->ba", P, images) / 2**N


@pytest.mark.parametrize(
    "N, flipflop, form",
    [(2, 0.0, "exchange"), (3, 0.4, "exchange"), (3, 0.4, "xx"), (4, 0.0, "exchange"),
     (4, 0.3, "exchange"), (4, 0.3, "xx")],
)
def test_generator_matches_dense_superoperator(N, flipflop, form):
    """Both flip-flop forms against the dense generator of tests/dense.py, whose Hamiltonian
    is written with Pauli matrices (K X X, or 2 K (X X + Y Y) per pair)."""
    real = random_realization(N, seed=N, flipflop=flipflop, form=form)
    reference = pauli_generator_from_dense(real)
    # each entry of the reference is a trace over 4^N terms of size max|L|; the engine's
    # entries add at most N + N(N-1)/2 block entries
    tol = summed(4**N, np.abs(reference).max())
    assert np.abs(reference.imag).max() < tol
    A = liouvillian.assemble(liouvillian.Generator(real), PETSc.COMM_SELF)
    try:
        G = A.convert("dense").getDenseArray().copy()
    finally:
        A.destroy()
    np.testing.assert_allclose(G, reference.real, rtol=0, atol=tol)
    if form == "xx":  # S+S+ + S-S- terms: not the exchange form
        other = liouvillian.Generator(
            dataclasses.replace(real, params=real.params.replace(flipflop_form="exchange"))
        )
        assert (
            np.abs(
                liouvillian.assemble(other, PETSc.COMM_SELF).convert("dense").getDenseArray() - G
            ).max()
            > 0.1
        )


@pytest.mark.parametrize(
    "N, flipflop, form", [(3, 0.4, "exchange"), (3, 0.4, "xx"), (4, 0.3, "exchange")]
)
def test_evolution_matches_dense_expm(N, flipflop, form, petsc_options):
    petsc_options(**TIGHT)
    real = random_realization(N, seed=10 + N, flipflop=flipflop, form=form)
    times = [0.0, 0.3, 1.7, 4.0]
    with liouvillian.Evolution(real) as evo:
        c = evo.run(times, np.arange(4**N))
    rho = liouvillian.density_from_pauli(c, N)
    np.testing.assert_allclose(rho, dense.evolve(real, times), rtol=0, atol=mfn_error(real, times))


def test_subsystem_coefficients_give_partial_traces():
    N = 4
    real = random_realization(N, seed=3)
    rho = dense.evolve(real, [1.3])[0]
    V = np.array([np.ones((1, 1))])
    for _ in range(N):
        V = np.einsum("aij,bkl->abikjl", V, liouvillian.PAULI).reshape(
            4 * len(V), 2 * V.shape[1], -1
        )
    c = np.einsum("aij,ji->a", V, rho).real                     # c_mu = Tr(rho P_mu)
    for keep in [(0, 1), (1, 3), (0, 2, 3)]:
        idx = liouvillian.subsystem_indices(N, keep)
        np.testing.assert_allclose(liouvillian.density_from_pauli(c[idx], len(keep)),
                                   dense.reduced(rho, list(keep), N), rtol=0,
                                   atol=summed(4**N))   # sums over 4^N elements of size <= 1


def test_observables_match_dense_with_flipflop(petsc_options):
    petsc_options(**TIGHT)
    N = 4
    real = random_realization(N, seed=7, flipflop=0.5)
    times = [0.0, 0.5, 2.0]
    out = liouvillian.compute(real, times, Request(("concurrence", "entropy")), method="mfn")
    rho = dense.evolve(real, times)
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    C = sum(concurrence(dense.reduced(rho, [i, j], N)) for i, j in pairs) / N
    S = np.mean([entropy_vn(dense.reduced(rho, list(A), N)) for A in real.bubbles()], axis=0)
    tol_C, tol_S = observable_error(real, times, N // 2)
    np.testing.assert_allclose(out["concurrence"], C, rtol=0, atol=tol_C)
    np.testing.assert_allclose(out["entropy"], S, rtol=0, atol=tol_S)


def pure_state_observables(real, times):
    """C(t) and S_E(t) of the unitary dynamics from the 2^N state vector (H from tests/dense.py)."""
    N = real.N
    psi = np.ones(1)
    for amplitude in real.initial_states():
        psi = np.kron(psi, amplitude)
    H = dense.hamiltonian(real)
    C, S = [], []
    for t in times:
        p = expm(-1j * H * t) @ psi
        rho = np.outer(p, p.conj())
        C.append(
            sum(
                concurrence(dense.reduced(rho, [i, j], N))
                for i in range(N)
                for j in range(i + 1, N)
            )
            / N
        )
        S.append(np.mean([entropy_vn(dense.reduced(rho, list(A), N)) for A in real.bubbles()]))
    return np.array(C), np.array(S)


@pytest.mark.parametrize("N, method", [(6, "mfn"), (7, "mfn"), (6, "spectral")])
@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_matches_engine1(N, method, epsilon, petsc_options):
    petsc_options(**TIGHT)
    real = sample(ModelParams(N=N, epsilon=epsilon, T_K=50.0, eta=1e4), 5, 2)
    times = np.logspace(-1, 1.5, 6)
    request = Request(("concurrence", "entropy"), bipartitions=3)
    out = liouvillian.compute(real, times, request, method=method)
    ref = exact.compute(real, times, request)
    assert ref["concurrence"].max() > 1e-3
    tol_C, tol_S = observable_error(real, times, N // 2)
    np.testing.assert_allclose(out["concurrence"], ref["concurrence"], rtol=0, atol=tol_C)
    np.testing.assert_allclose(out["entropy"], ref["entropy"], rtol=0, atol=tol_S)


@pytest.mark.parametrize("method", ["mfn", "spectral"])
def test_unitary_flipflop_matches_state_vector(method, petsc_options):
    petsc_options(**TIGHT)
    real = sample(ModelParams(N=6, flipflop=0.5, eta=1e4), 5, 3)
    times = [0.0, 0.4, 3.0, 12.0]
    out = liouvillian.compute(real, times, Request(("concurrence", "entropy")), method=method)
    C, S = pure_state_observables(real, times)
    tol_C, tol_S = observable_error(real, times, real.N // 2)
    np.testing.assert_allclose(out["concurrence"], C, rtol=0, atol=tol_C)
    np.testing.assert_allclose(out["entropy"], S, rtol=0, atol=tol_S)


def test_nonconvergence_raises_solver_error(petsc_options):
    petsc_options(mfn_type="krylov", mfn_ncv="3", mfn_max_it="1", mfn_tol="1e-14")
    real = sample(ModelParams(N=4), 1, 7)
    with pytest.raises(SolverError, match="realization 7.*t = 0 -> 50"):
        liouvillian.compute(real, [50.0], Request(), method="mfn")


def test_times_must_be_non_decreasing():
    real = sample(ModelParams(N=2), 1, 0)
    with pytest.raises(ConfigError, match="non-decreasing"):
        liouvillian.compute(real, [1.0, 0.5], Request())


def test_init_petsc_options_reach_mfn():
    liouvillian.init_petsc(["prog", "-mfn_ncv", "7"])
    try:
        with liouvillian.Evolution(sample(ModelParams(N=2), 1, 0)) as evo:
            assert evo.mfn.getDimensions() == 7
    finally:
        PETSc.Options().delValue("mfn_ncv")


def test_nnz_model_matches_assembled_matrix():
    N = 5
    real = sample(ModelParams(N=N, epsilon=1.0), 2, 0)           # all Y > 0, no flip-flop
    A = liouvillian.assemble(liouvillian.Generator(real), PETSc.COMM_SELF)
    try:
        nnz = A.getInfo()["nz_used"]
    finally:
        A.destroy()
    assert nnz == 4**N * (1 + 3 * N / 4 + N * (N - 1) / 4) == 4**N * liouvillian.mean_nnz_per_row(N)
    for form in ("exchange", "xx"):
        real_ff = sample(ModelParams(N=N, epsilon=1.0, flipflop=0.2, flipflop_form=form), 2, 0)
        A = liouvillian.assemble(liouvillian.Generator(real_ff), PETSc.COMM_SELF)
        try:
            assert A.getInfo()["nz_used"] == 4**N * liouvillian.mean_nnz_per_row(N, form), form
        finally:
            A.destroy()


def test_memory_check_refuses_with_largest_fitting_N():
    from tlsmpi import config
    from tlsmpi.run.resources import memory_verdict
    assert 1.5e9 < liouvillian.mfn_memory(11, 1) < 4e9        # docs/design.md section 5: ~2 GB
    assert liouvillian.mfn_memory(11, 4) < liouvillian.mfn_memory(11, 1) / 3
    cfg = config.load(None, ['engine.name="liouvillian"', "model.N=12"])
    engine = liouvillian.LiouvillianEngine()
    params = cfg.cases()[0]
    line, error = memory_verdict(engine, params.replace(N=9), cfg, 1, 8e9)
    assert error is None and "per rank" in line
    line, error = memory_verdict(engine, params, cfg, 1, 8e9)
    assert "N = 12" in error and "the largest N that fits is 11" in error


# --------------------------------------------------------------------------- spectral path

WINDOW = np.logspace(-2, 4, 41)          # the paper's window, 41 log-spaced times


def ketbra_permutation(N):
    """Row-major index a 2^N + b of tests/dense.py for every global ket-bra index
    sum_k (2 a_k + b_k) 4^(N-1-k) of tlsmpi.engines.liouvillian.block_codes."""
    codes = (np.arange(4**N)[:, None] >> (2 * (N - 1 - np.arange(N)))) & 3
    bit = 1 << (N - 1 - np.arange(N))
    return ((codes >> 1) @ bit) * 2**N + (codes & 1) @ bit


@pytest.mark.parametrize("N, flipflop", [(3, 0.0), (3, 0.4), (4, 0.0), (4, 0.3)])
def test_ketbra_blocks_reassemble_dense_superoperator(N, flipflop):
    """All Delta m blocks, placed on the diagonal, give the whole dense generator: the
    exchange form conserves Delta m exactly."""
    real = random_realization(N, seed=20 + N, flipflop=flipflop)
    perm = ketbra_permutation(N)
    reference = dense.generator(real)[np.ix_(perm, perm)]
    full = np.zeros_like(reference)
    for dm in range(-N, N + 1):
        G, codes = liouvillian.block_generator(real, dm)
        assert len(G) == liouvillian.block_size(N, dm)
        index = codes @ (4 ** np.arange(N - 1, -1, -1))
        full[np.ix_(index, index)] = G
    # an entry of the reference is a sum of N + N(N-1) terms of size <= max|L|
    np.testing.assert_allclose(full, reference, rtol=0, atol=summed(N * N, np.abs(reference).max()))


def test_xx_form_has_no_delta_m_blocks():
    real = random_realization(3, seed=1, flipflop=0.4, form="xx")
    with pytest.raises(ValueError, match="does not conserve Delta m"):
        liouvillian.block_generator(real, 0)
    assert liouvillian.spectral_refusal(real.params).startswith("model.flipflop_form = 'xx'")
    assert liouvillian.spectral_refusal(real.params.replace(flipflop=0.0)) is None


def spectral_error(real, times, spec):
    """Bound of |drho| (T,) of the spectral path (tolerances.spectral) at each time, with
    ||G||_1 <= norm1_estimate and the Pauli coefficients' scale ||c||_2 <= 2^(N/2) (as
    mfn_error)."""
    norm = liouvillian.norm1_estimate(real)
    return np.array([spectral(spec.cond, norm * t, 2 ** (real.N / 2)) for t in times])


def spectral_against_dense(real, times):
    """(rho_pairs, C(t)) of the spectral path and of dense expm, and the rho bound (T,)."""
    request = Request()
    readout = liouvillian.PauliReadout(real, request)
    spec = liouvillian.Spectral(real, readout.indices)
    c = spec.run(times)
    rho = liouvillian.density_from_pauli(c[:, readout.pair_pos], 2)
    full = dense.evolve(real, times)
    ref = np.stack([dense.reduced(full, [i, j], real.N) for i, j in readout.pairs], 1)
    C_ref = concurrence(ref).sum(1) / real.N
    return rho, readout.observables(c)["concurrence"], ref, C_ref, spectral_error(real, times, spec)


@pytest.mark.parametrize(
    "N, times", [(4, WINDOW), pytest.param(5, WINDOW[::5], marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("flipflop", [0.0, 1.0])
def test_spectral_matches_dense_expm_over_the_window(N, times, flipflop):
    """epsilon = 1 over t in [1e-2, 1e4] (N = 5: every fifth time, dense expm costs ~3 s a time)."""
    real = sample(ModelParams(N=N, epsilon=1.0, flipflop=flipflop), 2021, 1)
    rho, C, ref, C_ref, bound = spectral_against_dense(real, times)
    assert np.abs(C_ref).max() > 1e-3
    assert (np.abs(rho - ref).max(axis=(1, 2, 3)) <= bound).all()
    # C moves by at most ~2 sum |drho_ab| <= 32 |drho| (Lipschitz, observable_error)
    assert (np.abs(C - C_ref) <= 32 * bound).all()
    out = liouvillian.compute(real, times, Request(), method="spectral")
    np.testing.assert_array_equal(out["concurrence"], C)


def test_spectral_matches_mfn(petsc_options):
    """N = 5 on a short window, where MFN is cheap: both within their bounds."""
    petsc_options(**TIGHT)
    real = sample(ModelParams(N=5, epsilon=1.0, flipflop=1.0, T_K=300.0), 2021, 2)
    times = np.logspace(-2, 1, 8)
    request = Request(("concurrence", "entropy"))
    spec = liouvillian.Spectral(real, liouvillian.PauliReadout(real, request).indices)
    out = liouvillian.compute(real, times, request, method="spectral")
    ref = liouvillian.compute(real, times, request, method="mfn")
    d = spectral_error(real, times, spec).max()
    tol_C, tol_S = observable_error(real, times, 2)
    np.testing.assert_allclose(out["concurrence"], ref["concurrence"], rtol=0, atol=tol_C + 32 * d)
    np.testing.assert_allclose(out["entropy"], ref["entropy"], rtol=0,
                               atol=tol_S + 4**2 * d * max(1.0, abs(np.log(d))))


@pytest.mark.parametrize("flipflop", [0.0, 0.5])
def test_spectral_entropy_matches_dense(flipflop):
    N = 4
    real = random_realization(N, seed=8, flipflop=flipflop)
    times = [0.0, 0.5, 2.0, 50.0]
    request = Request(("concurrence", "entropy"))
    spec = liouvillian.Spectral(real, liouvillian.PauliReadout(real, request).indices)
    out = liouvillian.compute(real, times, request, method="spectral")
    rho = dense.evolve(real, times)
    S = np.mean([entropy_vn(dense.reduced(rho, list(A), N)) for A in real.bubbles()], axis=0)
    d = spectral_error(real, times, spec).max()
    # S_E of n = 2 sites moves by 2^n ||drho||_2 |ln d| <= 4^n d |ln d| (observable_error)
    np.testing.assert_allclose(out["entropy"], S, rtol=0, atol=4**2 * d * max(1.0, abs(np.log(d))))


def test_spectral_refused_where_it_cannot_run():
    from tlsmpi import config
    with pytest.raises(ConfigError, match=r'engine.method = "spectral": model.N = 9: the Delta m = '
                                          r'0 '
                       r'block has C\(2N, N\) = 48620 elements, more than SPECTRAL_MAX = '
                       r'4000.*"mfn"'):
        liouvillian.use_spectral(ModelParams(N=9), "spectral")
    assert not liouvillian.use_spectral(ModelParams(N=9), "auto")
    assert liouvillian.use_spectral(ModelParams(N=7), "auto")
    assert not liouvillian.use_spectral(ModelParams(N=5), "mfn")
    base = ['engine.name="liouvillian"', 'engine.method="spectral"']
    with pytest.raises(ConfigError, match='engine.method = "spectral": model.N = 9'):
        config.load(None, base + ["model.N=9"])
    with pytest.raises(ConfigError, match='engine.method = "spectral": model.flipflop_form = .xx.'):
        config.load(None, base + ["model.N=4", "model.flipflop=0.5", 'model.flipflop_form="xx"'])
    with pytest.raises(ConfigError, match='engine.method = .fast.: expected one of "auto"'):
        config.load(None, ['engine.name="liouvillian"', 'engine.method="fast"', "model.N=4"])
    assert config.load(None, base + ["model.N=4"]).engine_options == {"method": "spectral"}


def test_ill_conditioned_realization_falls_back_to_mfn(monkeypatch, caplog):
    real = sample(ModelParams(N=4, epsilon=1.0, flipflop=1.0), 2021, 0)
    times = [0.0, 0.5, 3.0]
    request = Request(("concurrence", "entropy"))
    mfn = liouvillian.compute(real, times, request, method="mfn")
    monkeypatch.setattr(liouvillian.spectral, "SPECTRAL_COND_MAX", 0.0)
    with caplog.at_level("WARNING", logger="tlsmpi"):
        out = liouvillian.compute(real, times, request, method="spectral")
    assert "condition number" in caplog.text and "MFN stepping instead" in caplog.text
    for key in mfn:
        np.testing.assert_array_equal(out[key], mfn[key])


def test_engine_cost_and_memory_follow_the_method():
    params, request = ModelParams(N=6), Request()
    times = WINDOW
    auto, mfn = liouvillian.LiouvillianEngine(), liouvillian.LiouvillianEngine({"method": "mfn"})
    draw = lambda: sample(params, 1, 0)                     # noqa: E731
    n = [liouvillian.block_size(6, dm) for dm in range(3)]
    cubes = n[0]**3 / 4 + n[1]**3 + n[2]**3                   # the Delta m = 0 block is real
    assert auto.cost(params, times, request, draw) == pytest.approx(liouvillian.EIG_SECONDS * cubes)
    steps = len(times) + liouvillian.norm1_estimate(draw()) * times[-1] / liouvillian.STEP_NORM
    expected = 4**6 * liouvillian.mean_nnz_per_row(6) * steps * 2e-8
    assert mfn.cost(params, times, request, draw) == pytest.approx(expected)
    p7 = params.replace(N=7)
    assert auto.memory(p7, times, request) == 64.0 * 3432**2 + liouvillian.BASELINE
    outputs = 640.0 * len(times) * 21          # the 21 pairs' coefficients and states at every time
    assert mfn.memory(p7, times, request) == liouvillian.mfn_memory(7, 1) + outputs


# --------------------------------------------------------------------------- under mpirun

def mpirun(ranks, *args):
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "mpi4py", DRIVER, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


DRIVER_TIMES = [0.0, 0.1, 1.0, 3.0]


def driver_realization(group, N=5):
    return sample(ModelParams(N=N, epsilon=1.0, T_K=300.0, flipflop=0.2), 11, group)


def serial(group, method):
    """What the driver computes for ``group``, in this process."""
    return liouvillian.compute(driver_realization(group), DRIVER_TIMES,
                               Request(("concurrence", "entropy")), method=method)


@pytest.mark.mpi
@pytest.mark.parametrize(
    "ranks, group_size, method", [(2, 0, "mfn"), (3, 0, "mfn"), (3, 2, "mfn"), (3, 2, "auto")]
)
def test_mpi_matches_serial(ranks, group_size, method, petsc_options):
    """MFN on distributed matrices; "auto" (spectral on each group's rank 0, broadcast)."""
    petsc_options(**TIGHT)
    records = mpirun(ranks, "--group-size", group_size, "--method", method, "-mfn_tol", "1e-13")
    assert len(records) == ranks
    expected = {}
    for rec in records:
        assert "error" not in rec, rec
        ref = expected.setdefault(rec["group"], serial(rec["group"], method))
        for key, value in ref.items():
            if method != "mfn":              # the same eigendecomposition on one rank
                np.testing.assert_array_equal(rec["result"][key], value)
                continue
            # the same solves on other row layouts: sums in another order, far below the MFN error
            tol = observable_error(driver_realization(rec["group"]), DRIVER_TIMES, 2)
            np.testing.assert_allclose(rec["result"][key], value, rtol=0,
                                       atol=tol[0] if key == "concurrence" else tol[1])


@pytest.mark.mpi
def test_mpi_solver_error_on_every_rank():
    records = mpirun(2, "--method", "mfn", "-mfn_type", "krylov", "-mfn_ncv", "3", "-mfn_max_it",
                     "1", "-mfn_tol", "1e-14", "--times", "50")
    assert all("realization 0" in rec.get("error", "") for rec in records), records


@pytest.mark.parametrize("N", [5, 6])
def test_pulses_match_engine1(N, petsc_options):
    """Hahn, CPMG-4 about y on a subset, pulses at fixed times: the Pauli sign maps between
    MFN solves (Engine 2) against the pulsed factorization (Engine 1)."""
    from tlsmpi.physics.pulses import InitialState, Protocol, Selection
    petsc_options(**TIGHT)
    some = Selection("sites", sites=(0, 2, 3))
    real = InitialState("random", angle=60.0, axis="y", select=some).apply(
        sample(ModelParams(N=N, epsilon=1.0, T_K=500.0, eta=1e4), 5, 2))
    times = np.logspace(-1, 1.5, 5)
    for protocol in (Protocol("hahn"), Protocol("cpmg", n_pulses=4, axis="y", select=some),
                     Protocol("pulses", pulse_times=(0.3, 2.0), select=some)):
        request = Request(protocol=protocol)
        out = liouvillian.compute(real, times, request, method="mfn")
        ref = exact.compute(real, times, request)
        assert ref["concurrence"].max() > 1e-3
        # each output time is its own run of up to 5 intervals from t = 0
        tol_C, _ = observable_error(real, np.repeat(times, 5), 2)
        np.testing.assert_allclose(out["concurrence"], ref["concurrence"], rtol=0, atol=tol_C)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_pulse_signs_are_the_conjugation_by_the_pulse(axis):
    """S^a_P P_mu S^a_P = +-P_mu for every Pauli string of N = 3 (explicit matrices),
    pulses on sites 0 and 2: the signs of liouvillian.pulse_signs."""
    from tlsmpi.physics.pulses import Protocol
    real = sample(ModelParams(N=3), 1, 0)
    gen = liouvillian.Generator(real)
    pulsed = np.array([True, False, True])
    signs = liouvillian.pulse_signs(gen, Protocol("hahn", axis=axis), pulsed, 0, 64)
    S = liouvillian.PAULI[1 if axis == "x" else 2]
    U = np.kron(np.kron(S, np.eye(2)), S)
    for mu in range(64):
        P = np.ones((1, 1))
        for d in gen.digits(np.array([mu]))[0]:
            P = np.kron(P, liouvillian.PAULI[d])
        assert np.array_equal(U @ P @ U.conj().T, signs[mu] * P)
