"""Engine 3 (tlsmpi.engines.ed, tlsmpi.engines.trajectories) against independent computations:
Engine 1
without flip-flop terms, a dense expm of H built from explicit Pauli matrices, the dense
GKSL generator of tests/dense.py, the Liouvillian engine, and itself under mpirun
(trajectory blocks as work items)."""
import dataclasses

import numpy as np
import pytest
from scipy.linalg import expm

import dense
from tlsmpi import config, engines
from tlsmpi.engines import ed, exact, readout, sectors, trajectories
from tlsmpi.physics import basis
from tlsmpi.errors import ConfigError
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.measures import concurrence, entropy_vn
from tlsmpi.physics.observables import Request
from tolerances import entropy_of, mean_concurrence, mfn

EPS = np.finfo(float).eps
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
FULL = np.logspace(-2, 4, 25)                   # the paper's window


def pauli_hamiltonian(real):
    """H of Eq. (23) plus the flip-flop term, from explicit Pauli matrices:
    -1/2 sum nu_i Z_i + sum_{i != j} J_ij Z_i Z_j + sum_{i<j} 2 K_ij (X_i X_j [+ Y_i Y_j])."""
    N, K = real.N, real.K
    H = sum(-0.5 * real.nu[i] * dense.embed(Z, i, N) for i in range(N))
    for i in range(N):
        for j in range(i + 1, N):
            H = H + 2 * real.J[i, j] * dense.embed(Z, i, N) @ dense.embed(Z, j, N)
            xx = dense.embed(X, i, N) @ dense.embed(X, j, N)
            if real.params.flipflop_form == "exchange":
                xx = xx + dense.embed(Y, i, N) @ dense.embed(Y, j, N)
            H = H + 2 * K[i, j] * xx
    return H


def energy_scale(real):
    """An upper bound of ||H||: sum nu/2 + 2 sum_{i<j} (|J_ij| + 2 |K_ij|)."""
    return 0.5 * real.nu.sum() + np.abs(real.J).sum() + 2 * np.abs(real.K).sum()


def lindblad_pairs(real, times):
    """rho_ij(t) from a dense expm of the GKSL generator of Eq. (15) with the
    explicit-Pauli H (tests/dense.py for the dissipators), shape (T, P, 4, 4)."""
    closed = dataclasses.replace(real, params=real.params.replace(flipflop=0.0))
    d = 2**real.N
    H = pauli_hamiltonian(real) - dense.hamiltonian(closed)          # the flip-flop term
    L = dense.generator(closed) - 1j * (np.kron(H, np.eye(d)) - np.kron(np.eye(d), H.T))
    v0 = dense.initial_state(real).reshape(-1)
    rho = np.array([(expm(L * t) @ v0).reshape(d, d) for t in times])
    pairs = [(i, j) for i in range(real.N) for j in range(i + 1, real.N)]
    return np.stack([dense.reduced(rho, list(p), real.N) for p in pairs], 1)


def random_open(N, form, seed):
    """A realization with O(1) random nu, J, Y, f (T > 0, so both jump channels act)."""
    rng = np.random.default_rng(seed)
    real = sample(
        ModelParams(N=N, flipflop=0.5, flipflop_form=form, T_K=300.0, epsilon=1.0), seed, 0
    )
    J = np.triu(rng.normal(size=(N, N)), 1)
    return dataclasses.replace(real, nu=rng.uniform(0.5, 2, N), J=J + J.T,
                               Y=rng.uniform(0.05, 0.3, N), f=rng.uniform(0, 1, N))


@pytest.mark.parametrize("N", [8, 10])
def test_without_flipflop_equals_engine1(N):
    """flipflop = 0: pair density matrices and S_E equal Engine 1 over the full window.
    Both round the phases E t: tolerance 10 eps ||H|| t_max."""
    real = sample(ModelParams(N=N), 2021, 3)
    req = Request(("concurrence", "entropy"))
    psi = ed.unitary_states(real, FULL)
    reader = readout.StateReadout(real, req)
    rho = reader.densities(psi)
    ref = exact.pair_rdms(real, FULL).swapaxes(0, 1)
    tol = 10 * EPS * energy_scale(real) * FULL[-1]
    assert np.abs(rho["pairs"] - ref).max() < tol
    ours, theirs = reader.observables(rho), exact.compute(real, FULL, req)
    for key in ("concurrence", "entropy"):
        assert np.abs(ours[key] - theirs[key]).max() < 100 * tol   # sqrt-free functions of rho


@pytest.mark.parametrize("form", ["exchange", "xx"])
def test_unitary_flipflop_equals_dense_pauli_expm(form):
    """epsilon = 0, flip-flop on: |psi(t)> equals expm(-i H t) |psi0> with H from explicit
    Pauli matrices (N = 4), to 10 eps ||H|| t_max per amplitude."""
    real = sample(ModelParams(N=4, flipflop=1.0, flipflop_form=form), 7, 1)
    H = pauli_hamiltonian(real)
    psi0 = basis.product_amplitudes(real)
    ref = np.array([expm(-1j * H * t) @ psi0 for t in FULL])
    tol = 10 * EPS * np.linalg.norm(H, 2) * FULL[-1] * 2**real.N
    assert np.abs(ed.unitary_states(real, FULL) - ref).max() < tol


@pytest.mark.parametrize("N, form", [(5, "exchange"), (5, "xx"), (6, "exchange"), (6, "xx")])
def test_unitary_flipflop_equals_liouvillian(N, form):
    """epsilon = 0, flip-flop on, both forms, N = 5, 6: rho_ij(t), C(t) and S_E(t) equal
    Engine 2 (Pauli-basis GKSL generator, SLEPc MFN with -mfn_tol 1e-13) within its
    error bound d (tests/tolerances.mfn; C moves by at most 32 d, S_E of the N // 2
    sites of a bubble by 4^(N//2) d |ln d|, as in tests/test_liouvillian.py)."""
    liouvillian = pytest.importorskip("tlsmpi.engines.liouvillian")
    pytest.importorskip("slepc4py")
    from petsc4py import PETSc
    real = sample(ModelParams(N=N, flipflop=1.0, flipflop_form=form), 11, 0)
    t = np.logspace(-2, 2, 9)
    req = Request(("concurrence", "entropy"))
    ours = ed.unitary_observables(real, t, req)
    PETSc.Options().setValue("mfn_tol", "1e-13")
    try:
        theirs = liouvillian.compute(real, t, req, method="mfn")
        pairs = _liouvillian_pairs(liouvillian, real, t)
    finally:
        PETSc.Options().delValue("mfn_tol")
    d = mfn(real, t, 1e-13)
    assert (
        np.abs(
            readout.StateReadout(real, Request()).densities(ed.unitary_states(real, t))["pairs"]
            - pairs
        ).max()
        < d
    )
    assert np.abs(ours["concurrence"] - theirs["concurrence"]).max() < 32 * d
    assert np.abs(ours["entropy"] - theirs["entropy"]).max() < 4 ** (N // 2) * d * abs(np.log(d))


def within_errors(res, ref_pairs, N, k=4.0):
    """max over times of |C_traj - C_ref| / (k sigma_C), with C_ref from ``ref_pairs``;
    where both C vanish (no entangled pair) the difference is 0 and so is the ratio."""
    C_ref = concurrence(ref_pairs).sum(1) / N
    dC = np.abs(res["observables"]["concurrence"] - C_ref)
    err = res["concurrence_err"]
    return np.max(np.where(dC > 0, dC / np.maximum(k * err, 1e-300), 0.0))


def test_trajectories_equal_liouvillian_within_errors():
    """epsilon = 1, exchange flip-flop, N = 5 (paper parameters, T = 0): the trajectory
    average of C(t) is within 4 jackknife standard errors of Engine 2 at every time for
    M = 1000 and M = 4000 (the first 50 and all 200 blocks of the same trajectories), and
    max |rho_traj - rho| shrinks with M (M = 260, 1000, 4000; 1/sqrt(M))."""
    liouvillian = pytest.importorskip("tlsmpi.engines.liouvillian")
    pytest.importorskip("slepc4py")
    real = sample(ModelParams(N=5, flipflop=1.0, epsilon=1.0), 2021, 4)
    t = np.logspace(-1, 2, 10)
    setup = trajectories.Setup(real, Request())
    blocks = [trajectories.block_sums(setup, t, b, 4000) for b in range(200)]
    evo_pairs = _liouvillian_pairs(liouvillian, real, t)
    errors = []
    for n in (13, 50, 200):
        res = trajectories.combine(setup.readout, blocks[:n])
        errors.append(np.abs(res["pairs"] - evo_pairs).max())
        if n >= 50:
            assert res["jumps"] > 0.5               # the dissipation does act in the window
            assert within_errors(res, evo_pairs, real.N) <= 1.0
    assert errors[2] < errors[1] < errors[0]


def _liouvillian_pairs(liouvillian, real, t):
    """rho_ij(t) of Engine 2, shape (T, P, 4, 4)."""
    readout = liouvillian.PauliReadout(real, Request())
    with liouvillian.Evolution(real) as evo:
        coeffs = evo.run(t, readout.indices)
    return liouvillian.density_from_pauli(coeffs[:, readout.pair_pos], 2)


@pytest.mark.parametrize("form", ["exchange", "xx"])
def test_trajectories_equal_dense_lindblad_within_errors(form):
    """epsilon > 0 with both jump channels (T > 0) and either flip-flop form, N = 4: the
    average of M = 1000 trajectories is within 4 standard errors of a dense expm of the
    GKSL generator at every time, for C and for every element of rho_ij (the largest of
    the 6 x 16 x T element deviations, |z| < 5)."""
    real = random_open(4, form, 5)
    t = np.linspace(0.5, 5, 6)
    ref = lindblad_pairs(real, t)
    res = trajectories.average(real, t, Request(), 1000)
    assert res["jumps"] > 3
    assert within_errors(res, ref, real.N) <= 1.0
    assert np.max(np.abs(res["pairs"] - ref) / res["pairs_err"]) < 5.0


def test_ill_conditioned_sector_falls_back_to_expm_multiply(monkeypatch):
    """With SECTOR_COND_MAX below every condition number all sectors use expm_multiply; the
    trajectory states agree with the eigenvector route to 1e3 eps (cond < 10 here)."""
    real = random_open(4, "xx", 8)
    t = np.linspace(0.5, 5, 4)
    args = (Request(), 10)
    fast = trajectories.average(real, t, *args)
    assert fast["cond"] < 10
    monkeypatch.setattr(trajectories, "SECTOR_COND_MAX", 0.5)
    slow = trajectories.average(real, t, *args)
    assert np.abs(fast["pairs"] - slow["pairs"]).max() < 1e3 * EPS * 10


def test_entropy_from_trajectories_is_entropy_of_averaged_rho():
    """With one trajectory per block the bubble density matrices are averaged, not S_E:
    a single trajectory is pure, so its half-system entropy equals its complement's."""
    real = random_open(4, "exchange", 9)
    t = np.array([1.0, 3.0])
    res = trajectories.average(real, t, Request(("concurrence", "entropy")), 1)
    sec = sectors.Sectors(real)
    states, _ = trajectories.trajectory(trajectories.NoJump(sec), trajectories.Jumps(sec),
                                        basis.product_amplitudes(real), t,
                                        np.random.default_rng([real.index, real.seed, 2, 0]))
    A = real.bubbles()
    S = np.mean([entropy_vn(basis.reduced(states, a, 4)) for a in A], axis=0)
    assert np.abs(res["observables"]["entropy"] - S).max() < 100 * EPS


def test_engine_registered_and_checked():
    """engine.name = "ed" is valid; epsilon > 0 without trajectories and a model that does
    not fit the memory (the runner's check, with the engine's estimate) are refused with
    the value and the fix."""
    from tlsmpi.run.resources import memory_verdict
    assert "ed" in engines.names()
    cfg = config.load(None, ['engine.name="ed"', "engine.trajectories=10", "model.N=6"])
    assert cfg.engine_options == {"trajectories": 10}
    with pytest.raises(ConfigError, match="engine.trajectories"):
        config.load(None, ['engine.name="ed"', "model.N=6"])
    with pytest.raises(ConfigError, match="trajectories = -1"):
        config.load(None, ['engine.name="ed"', "engine.trajectories=-1"])
    engine = engines.get("ed")({"trajectories": 0})
    # ~0.5 GB
    assert memory_verdict(engine, ModelParams(N=14, flipflop=1.0), cfg, 1, 1e9)[1] is None
    xx = ModelParams(N=14, flipflop=1.0, flipflop_form="xx")                               # ~1.8 GB
    assert "engine 'ed' with N = 14" in memory_verdict(engine, xx, cfg, 1, 1e9)[1]


def test_sector_memory_grows_with_sector_size():
    """The estimate is dominated by the largest sector: xx (2^(N-1)) > exchange (C(N, N/2))."""
    req, t = Request(), np.zeros(50)
    ex = ed.sector_memory(ModelParams(N=14, flipflop=1.0), t, req)
    xx = ed.sector_memory(ModelParams(N=14, flipflop=1.0, flipflop_form="xx"), t, req)
    assert 8.0 * 3 * 3432**2 < ex < xx
    assert xx > 8.0 * 3 * 8192**2


def test_through_the_runner(tmp_path):
    """engine.name = "ed" in the runner: without flip-flop and dissipation it equals
    Engine 1 (same seed, same disorder)."""
    from conftest import run_tlsmpi
    from tlsmpi.results import Run

    base = ["--set", "model.N=4", "--set", "ensemble.realizations=3", "--set", "time.t_max=100.0",
            "--set", "time.n_times=6", "--set", "observables.entropy=true", "--set",
            "sweep.epsilon=[0.0]"]
    runs = {}
    for name, extra in (("ed", ["--set", 'engine.name="ed"', "--set", "sweep.flipflop=[0.0, 1.0]"]),
                        ("exact", [])):
        out = tmp_path / f"{name}.h5"
        res = run_tlsmpi(["--out", out, *base, *extra])
        assert res.returncode == 0, res.stdout + res.stderr
        runs[name] = Run(out)
    (ref,) = runs["exact"].cases
    closed = [c for c in runs["ed"].cases if c.params["flipflop"] == 0]
    seed, t_max = runs["exact"].attrs["seed"], runs["exact"].times[-1]
    scale = max(energy_scale(sample(ModelParams(N=4), seed, r)) for r in range(3))
    for obs in ("concurrence", "entropy"):       # as test_without_flipflop_equals_engine1
        assert np.abs(closed[0].values(obs) - ref.values(obs)).max() < 1000 * EPS * scale * t_max


@pytest.mark.mpi
def test_trajectory_blocks_are_work_items(tmp_path):
    """Blocks of trajectories are work items spread over the ranks: 1, 2 and 3 ranks, and a
    run stopped by a signal (parts of a realization left undone) and resumed, give
    the same rows, to rounding, as one process computing `trajectories.average`."""
    from conftest import run_tlsmpi
    from tlsmpi.results import Run
    M, R = 90, 4  # 5 blocks per realization
    base = ["--set", "model.N=4", "--set", f"ensemble.realizations={R}", "--set",
            "time.t_max=100.0", "--set", "time.n_times=5", "--set", "observables.entropy=true",
            "--set", "sweep.epsilon=[1.0]", "--set", "model.T_K=100.0", "--set", 'engine.name="ed"',
            "--set", f"engine.trajectories={M}", "--set", "sweep.flipflop=[0.0, 1.0]"]
    rows = {}
    for name, ranks, env in (("1", 1, {}), ("2", 2, {}), ("3", 3, {}),
                             ("stopped", 2, {"TLSMPI_FAULT": "stop:1:1"})):
        out = tmp_path / f"{name}.h5"
        res = run_tlsmpi(["--out", out, *base], ranks=ranks, env=env)
        if name == "stopped":
            assert res.returncode == 3, res.stdout + res.stderr
            assert not Run(out, verify=False).complete
            res = run_tlsmpi(["--out", out, *base, "--resume"], ranks=ranks)
        assert res.returncode == 0, res.stdout + res.stderr
        run = Run(out)
        rows[name] = [
            [c.values(o) for o in ("concurrence", "entropy", "concurrence_err")] for c in run.cases
        ]
    times = Run(tmp_path / "1.h5").times
    # rows of other processes agree to rounding (docs/design.md section 6), in the absolute
    # scale of each quantity: C and its jackknife error (differences of C over the B = 5
    # leave-one-block-out averages: at most 2 sqrt(B - 1) times the error of one C) from
    # pair states, S_E from half-system states (dim 4)
    tol = [mean_concurrence(4), entropy_of(4), 2 * np.sqrt(4) * mean_concurrence(4)]
    for c, flipflop in enumerate((0.0, 1.0)):
        params = ModelParams(N=4, epsilon=1.0, T_K=100.0, flipflop=flipflop)
        for r in range(R):
            res = trajectories.average(sample(params, 2021, r), times,
                                       Request(("concurrence", "entropy")), M)
            expect = [res["observables"]["concurrence"], res["observables"]["entropy"],
                      res["concurrence_err"]]
            for name in rows:
                for got, want, eps in zip(rows[name][c], expect, tol):
                    assert np.abs(got[r] - want).max() <= eps, (name, c, r)


@pytest.mark.mpi
def test_failed_part_fails_its_realization_only(tmp_path):
    """A SolverError in one block of trajectories (injected in every part of realization 1)
    makes that realization a failed row with the message; the others are done, on 2 ranks."""
    from conftest import run_tlsmpi
    from tlsmpi.results import Run
    out = tmp_path / "fail.h5"
    res = run_tlsmpi(
        ["--out", out, "--set", "model.N=4", "--set", "ensemble.realizations=3", "--set",
         "time.n_times=4", "--set", "sweep.epsilon=[1.0]", "--set", 'engine.name="ed"', "--set",
         "engine.trajectories=60", "--set", "sweep.flipflop=[1.0]"],
        ranks=2,
        env={"TLSMPI_FAULT": "solver:*:1"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (case,) = Run(out).cases
    assert list(case.status) == [1, -1, 1]
    assert "injected solver fault" in case.errors[1]
