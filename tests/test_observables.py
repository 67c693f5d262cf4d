"""The registry of observables (tlsmpi.physics.observables) against independent
computations: explicit operators and partial traces of dense states, eigenvalues of the
explicitly built partial transpose, mpmath entropies at 50 digits; the engines against
the dense Lindblad evolution of tests/dense.py and against each other."""
import os

import mpmath
import numpy as np
import pytest

import dense
from tlsmpi import config
from tlsmpi.engines import ed, exact, trajectories
from tlsmpi.errors import ConfigError
from tlsmpi.physics import measures, observables
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.physics.observables import Request
from runfiles import agree
from tolerances import EPS, rounding

NEW = ("coherence", "polarization", "negativity", "mutual_information", "zz", "purity")
SITE, PAIR = ("coherence", "polarization", "purity"), ("negativity", "mutual_information", "zz")


def random_state(dim, rank, rng, small=()):
    """A random mixed state of ``rank`` (Ginibre), or with ``small`` the eigenvalues
    ``small`` (near zero) plus the rest equal, in a random eigenbasis."""
    G = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    if small:
        U, _ = np.linalg.qr(G)
        w = np.array(list(small) + [(1 - sum(small)) / (dim - len(small))] * (dim - len(small)))
        return (U * w) @ U.conj().T
    A = G[:, :rank]
    rho = A @ A.conj().T
    return rho / np.trace(rho).real


def explicit_partial_transpose(rho):
    """rho^{T_B}[(a b), (c d)] = rho[(a d), (c b)], element by element."""
    out = np.empty_like(rho)
    for a, b, c, d in np.ndindex(2, 2, 2, 2):
        out[2 * a + b, 2 * c + d] = rho[2 * a + d, 2 * c + b]
    return out


def mp_entropy(rho):
    """-Tr rho ln rho with mpmath at 50 digits (eigenvalues of the Hermitian matrix)."""
    with mpmath.workdps(50):
        w = mpmath.eighe(mpmath.matrix(rho.tolist()), eigvals_only=True)
        return float(-sum(x * mpmath.log(x) for x in w if x > 0))


def dense_values(rho, N):
    """Per-site and per-pair values of every new observable from a dense N-qubit state,
    with explicit operators on the full space and dense.reduced partial traces."""
    out = {k: [] for k in NEW}
    for i in range(N):
        Z, P = dense.embed(dense.SZ, i, N), dense.embed(dense.SP, i, N)
        out["polarization"].append(np.trace(rho @ Z).real)
        out["coherence"].append(abs(np.trace(rho @ P)))
        r = dense.reduced(rho, [i], N)
        out["purity"].append(np.trace(r @ r).real)
    for i in range(N):
        for j in range(i + 1, N):
            Zi, Zj = dense.embed(dense.SZ, i, N), dense.embed(dense.SZ, j, N)
            out["zz"].append(np.trace(rho @ Zi @ Zj).real
                             - np.trace(rho @ Zi).real * np.trace(rho @ Zj).real)
            r = dense.reduced(rho, [i, j], N)
            w = np.linalg.eigvals(explicit_partial_transpose(r))      # QuTiP's tracenorm form
            out["negativity"].append((np.abs(w).sum() - 1) / 2)
            out["mutual_information"].append(
                mp_entropy(dense.reduced(rho, [i], N)) + mp_entropy(dense.reduced(rho, [j], N))
                - mp_entropy(r))
    return {k: np.array(v) for k, v in out.items()}


def entropy_tol(dim):
    """|dS| of a d x d state given to rounding: eigenvalues move by k eps, and
    |d(w ln w)| <= (|ln eps| + 1) k eps for w >= eps (below, w ln w < eps |ln eps|)."""
    return rounding(dim * (1 - np.log(EPS)))


# --------------------------------------------------------------------------- formulas

def test_registry_names_kinds_and_lookup():
    assert observables.names()[:2] == ["concurrence", "entropy"]
    assert set(NEW) <= set(observables.names())
    assert {observables.get(n).kind for n in SITE} == {"site"}
    assert {observables.get(n).kind for n in PAIR + ("concurrence",)} == {"pair"}
    with pytest.raises(ConfigError, match="observables.nope: no such observable"):
        observables.get("nope")
    with pytest.raises(TypeError, match="kind in"):
        observables.register(observables.Observable("x", "triple", np.trace, "1", "x"))
    request = Request(("zz", "polarization", "concurrence"))
    assert request.of_kind("pair") == ("concurrence", "zz")
    assert request.wants("site") and not request.wants("subsystem")


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_pair_formulas_of_random_two_qubit_states(rank):
    """Random mixed two-qubit states: the formulas against explicit operators, the
    explicit partial transpose and mpmath entropies; Bell and product states exactly."""
    rng = np.random.default_rng(rank)
    rho = np.array([random_state(4, rank, rng) for _ in range(20)])
    for r in rho:
        ref = dense_values(r, 2)
        assert abs(measures.negativity(r) - ref["negativity"][0]) < rounding(4)
        assert abs(measures.zz_connected(r) - ref["zz"][0]) < rounding(4)
        mi = ref["mutual_information"][0]
        assert abs(measures.mutual_information(r) - mi) < 3 * entropy_tol(4)
        for i, m in enumerate(measures.pair_marginals(r)):
            np.testing.assert_allclose(m, dense.reduced(r, [i], 2), rtol=0, atol=rounding())
    # the stacked call gives the element-by-element values
    assert np.array_equal(measures.negativity(rho)[3], measures.negativity(rho[3]))
    bell = np.zeros((4, 4))
    bell[np.ix_([0, 3], [0, 3])] = 0.5
    assert abs(measures.negativity(bell) - 0.5) < rounding()
    assert abs(measures.mutual_information(bell) - 2 * np.log(2)) < entropy_tol(4)
    assert abs(measures.zz_connected(bell) - 1.0) < rounding()
    product = np.kron(random_state(2, 2, rng), random_state(2, 1, rng))
    assert abs(measures.zz_connected(product)) < rounding()
    assert abs(measures.mutual_information(product)) < 3 * entropy_tol(4)


@pytest.mark.parametrize("small", [(1e-14,), (1e-10, 1e-12), (0.0, 0.0, 1e-15)])
def test_mutual_information_near_zero_eigenvalues(small):
    """States with eigenvalues near zero: the mutual information against mpmath at 50
    digits, to the entropy's rounding bound (no sqrt(eps) loss)."""
    rng = np.random.default_rng(len(small))
    r = random_state(4, 4, rng, small)
    m = [dense.reduced(r, [i], 2) for i in range(2)]
    ref = mp_entropy(m[0]) + mp_entropy(m[1]) - mp_entropy(r)
    assert abs(measures.mutual_information(r) - ref) < 3 * entropy_tol(4)
    assert abs(measures.entropy_vn(r) - mp_entropy(r)) < entropy_tol(4)


@pytest.mark.parametrize("N", [3, 4])
def test_site_and_pair_observables_of_dense_states(N):
    """Random dense N-qubit states: the registry's reductions of the explicit site and pair
    RDMs equal the means over sites (N) and pairs (N(N-1)/2) of the values from explicit
    operators on the full space; C is the pair sum over N (Eq. 28); resolved rows keep the
    per-item values, pairs i < j row-major."""
    rng = np.random.default_rng(N)
    rho = np.array([random_state(2**N, 3, rng) for _ in range(3)])       # 3 "times"
    ref = [dense_values(r, N) for r in rho]
    sites = np.array([[dense.reduced(r, [i], N) for i in range(N)] for r in rho])
    pairs = np.array([[dense.reduced(r, [i, j], N) for i in range(N) for j in range(i + 1, N)]
                      for r in rho])
    request = Request(("concurrence",) + NEW, resolved=True)
    out = {**observables.reduce(request, "site", N, [sites], axis=1),
           **observables.reduce(request, "pair", N, [pairs], axis=1)}
    for name in NEW:
        per_item = np.array([v[name] for v in ref])                       # (T, items)
        tol = 3 * entropy_tol(4) if name == "mutual_information" else rounding(2**N)
        np.testing.assert_allclose(out[name + "_resolved"], per_item, rtol=0, atol=tol)
        np.testing.assert_allclose(out[name], per_item.mean(1), rtol=0, atol=tol)
    C = np.array([[measures.concurrence(p) for p in r] for r in pairs])
    assert np.array_equal(out["concurrence"], measures.mean_pair_concurrence([pairs], N, axis=1))
    np.testing.assert_allclose(out["concurrence"], C.sum(1) / N, rtol=0, atol=rounding(N))


# --------------------------------------------------------------------------- engines

def lipschitz(name, delta):
    """Bound of |d obs| when every element of the density matrices moves by <= delta:
    polarization and coherence 2 delta; purity sum 2 |rho_ab| delta <= 8 delta; zz
    (1 + 2 + 2) x 4 delta; negativity 4 eigenvalues each within ||drho||_2 <= 4 delta;
    mutual information three entropies of d <= 4 states, each d ||drho|| |ln ||drho|||."""
    if name == "mutual_information":
        d = 4 * max(delta, EPS)
        return 3 * 4 * d * max(1.0, abs(np.log(d)))
    return {"polarization": 2, "coherence": 2, "purity": 8, "zz": 20,
            "negativity": 16, "concurrence": 32}[name] * delta


def open_realization(N, seed):
    return sample(ModelParams(N=N, epsilon=1.0, T_K=50.0, eta=1e4), seed, 1)


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_exact_engine_matches_dense_lindblad(epsilon):
    """Engine 1 at N = 4, closed and open with T > 0: every new observable, its mean and
    resolved rows, against the explicit operators on the dense GKSL evolution; the site
    RDMs from the tables equal the partial traces of Engine 1's pair RDMs."""
    real = sample(ModelParams(N=4, epsilon=epsilon, T_K=50.0, eta=1e4), 3, 1)
    t = np.logspace(-1, 1.5, 5)
    out = exact.compute(real, t, Request(("concurrence",) + NEW, resolved=True))
    ref = [dense_values(r, 4) for r in dense.evolve(real, t)]
    # the dense expm and the factorized exponentials both round phases of size t ||G||
    delta = 64 * EPS * (1 + t[-1] * float(np.abs(dense.generator(real)).sum(0).max()))
    for name in NEW:
        per_item = np.array([v[name] for v in ref])
        np.testing.assert_allclose(out[name + "_resolved"], per_item, rtol=0,
                                   atol=lipschitz(name, delta))
        np.testing.assert_allclose(out[name], per_item.mean(1), rtol=0,
                                   atol=lipschitz(name, delta))
    assert out["purity"].min() < 0.99 and out["mutual_information"].max() > 1e-3
    # H is diagonal in S^z and the dissipators on-site: populations stay a product, zz = 0
    assert np.abs(out["zz"]).max() < rounding()
    pairs = exact.pair_rdms(real, t)                                    # (P, T, 4, 4)
    sites = exact.site_rdms(exact.PairTables(real, t))
    np.testing.assert_allclose(sites[:, 0], measures.pair_marginals(pairs[0])[0], atol=delta)
    np.testing.assert_allclose(sites[:, 3], measures.pair_marginals(pairs[-1])[1], atol=delta)


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_exact_matches_liouvillian(epsilon):
    """Engine 1 against Engine 2 (SLEPc MFN at -mfn_tol 1e-13, element error bound d of
    tests/tolerances.mfn) at N = 5, closed and open: every new observable and C."""
    liouvillian = pytest.importorskip("tlsmpi.engines.liouvillian")
    pytest.importorskip("slepc4py")
    from petsc4py import PETSc
    from tolerances import mfn
    real = sample(ModelParams(N=5, epsilon=epsilon, T_K=50.0, eta=1e4), 5, 2)
    t = np.logspace(-1, 1.5, 5)
    request = Request(("concurrence",) + NEW)
    PETSc.Options().setValue("mfn_tol", "1e-13")
    try:
        theirs = liouvillian.compute(real, t, request, method="mfn")
    finally:
        PETSc.Options().delValue("mfn_tol")
    ours = exact.compute(real, t, request)
    d = mfn(real, t, 1e-13)
    for name in ("concurrence",) + NEW:
        assert np.abs(ours[name] - theirs[name]).max() < lipschitz(name, d), name


def test_exact_matches_ed_closed_and_trajectories_open():
    """Engine 1 against Engine 3: closed at N = 5 (both exact: phases E t rounded, 10 eps
    ||H|| t per element as tests/test_ed.py), and open at N = 4 with 400 trajectories:
    the trajectory observables are the formulas of the averaged RDMs, within 5 standard
    errors of the RDM elements (times the Lipschitz bound) of Engine 1."""
    real = sample(ModelParams(N=5), 4, 0)
    t = np.logspace(-1, 2, 6)
    request = Request(("concurrence",) + NEW)
    ours, theirs = exact.compute(real, t, request), ed.unitary_observables(real, t, request)
    scale = 0.5 * real.nu.sum() + np.abs(real.J).sum()
    delta = 10 * EPS * scale * t[-1]
    for name in ("concurrence",) + NEW:
        assert np.abs(ours[name] - theirs[name]).max() < max(lipschitz(name, delta),
                                                              rounding(10)), name
    real = open_realization(4, 6)
    t = np.linspace(0.5, 4, 4)
    res = trajectories.average(real, t, request, 400)
    ours = exact.compute(real, t, request)
    delta = 5 * res["pairs_err"].max()
    for name in ("polarization", "coherence", "zz", "negativity", "purity"):
        assert np.abs(res["observables"][name] - ours[name]).max() < lipschitz(name, delta), name


@pytest.mark.parametrize("form", ["exchange", "xx"])
def test_ed_with_flipflop_matches_dense_state_vector(form):
    """Engine 3 with flip-flop terms (zz != 0), N = 4: against expm(-i H t) psi0 with H of
    tests/dense.py and the explicit operators (phases rounded: 10 eps ||H|| t per element,
    times 2^N for the sums of the state vector's elements into rho)."""
    real = sample(ModelParams(N=4, flipflop=1.0, flipflop_form=form), 7, 1)
    t = np.array([0.3, 2.0, 9.0])
    out = ed.unitary_observables(real, t, Request(NEW, resolved=True))
    H = dense.hamiltonian(real)
    psi0 = dense.initial_state(real)
    U = [dense.expm(-1j * H * x) for x in t]
    ref = [dense_values(u @ psi0 @ u.conj().T, 4) for u in U]
    delta = 10 * EPS * np.linalg.norm(H, 2) * t[-1] * 2**real.N
    for name in NEW:
        per_item = np.array([v[name] for v in ref])
        np.testing.assert_allclose(out[name + "_resolved"], per_item, rtol=0,
                                   atol=lipschitz(name, delta))
    assert np.abs(out["zz"]).max() > 1e-3


# --------------------------------------------------------------------------- configuration

def test_configuration_refuses_what_no_engine_or_observable_uses():
    cfg = config.load(None, ["observables.negativity=true", "observables.polarization=true"])
    assert cfg.request.observables == ("concurrence", "polarization", "negativity")
    with pytest.raises(ConfigError, match="observables.resolved = true has no effect"):
        config.load(None, ["observables.concurrence=false", "observables.entropy=true",
                           "observables.resolved=true"])
    with pytest.raises(ConfigError, match="are all false: nothing to compute"):
        config.load(None, ["observables.concurrence=false"])
    assert config.load(None, ["observables.zz=true", "observables.resolved=true"]).request.resolved


# --------------------------------------------------------------------------- run file

RESOLVED = ["model.N=5", "sweep.epsilon=[0.0, 1.0]", "ensemble.realizations=3", "time.n_times=6",
            "observables.negativity=true", "observables.purity=true", "observables.resolved=true"]


@pytest.mark.needs_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_resolved_rows_through_the_runner(tmp_path, ranks):
    """observables.resolved: every requested site / pair observable is stored per site /
    pair, (realization, time, site|pair) with dimension scales and CF attributes, equal to
    the engine's values, with means only of the (realization, time) rows; the file size
    estimate counts them."""
    import h5py
    from conftest import run_tlsmpi
    from tlsmpi.results import Run
    from tlsmpi.runfile.writer import file_size_estimate
    out = tmp_path / "resolved.h5"
    args = ["--out", out]
    for o in RESOLVED:
        args += ["--set", o]
    res = run_tlsmpi(args, ranks=ranks)
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = config.load(None, RESOLVED)
    run = Run(out)
    for case, params in zip(run.cases, cfg.cases()):
        assert case.observables == ["concurrence", "negativity", "purity"]
        for r in range(3):
            want = exact.compute(sample(params, cfg.seed, r), run.times, cfg.request)
            for name in ("concurrence", "negativity", "purity", "concurrence_resolved",
                         "negativity_resolved", "purity_resolved"):
                assert agree(case.rows(name)[r], want[name]), name
    with h5py.File(out, "r") as f:
        g = f["case_000"]
        assert g["negativity_resolved"].shape == (3, 6, 10)
        assert g["purity_resolved"].shape == (3, 6, 5)
        assert g["negativity_resolved"].dims[2][0].name.endswith("/pair")
        assert g["purity_resolved"].dims[2][0].name.endswith("/site")
        assert "row-major" in g["pair"].attrs["long_name"]
        assert g["negativity_resolved"].attrs["units"] == "1"
        assert "negativity_resolved_mean" not in g and "negativity_mean" in g
        data = sum(ds.size * ds.dtype.itemsize for ds in _datasets(f))
        resolved = sum(ds.size * 8 for ds in _datasets(f) if ds.name.endswith("_resolved"))
    plain = Request(cfg.request.observables, resolved=False)
    grown = (file_size_estimate(cfg, observables.outputs(cfg.request))
             - file_size_estimate(cfg, observables.outputs(plain)))
    assert grown >= resolved                    # the estimate counts every resolved value
    # within the margin the runner allows (need * 1.05 + 1 MB), small scales left out
    assert data <= 1.05 * file_size_estimate(cfg, observables.outputs(cfg.request)) + 1e6


def _datasets(f):
    import h5py
    found = []
    f.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_memory_check_counts_resolved_rows():
    """A resolved request at N = 200 adds 3 copies of T N(N-1)/2 doubles per pair
    observable to the per-rank memory the runner checks."""
    from tlsmpi import engines
    from tlsmpi.run.job import memory_verdict
    base = ["model.N=200", "time.n_times=1000", "observables.zz=true",
            "observables.concurrence=false"]
    engine = engines.get("exact")()
    cfgs = [config.load(None, base + extra) for extra in ([], ["observables.resolved=true"])]
    sizes = [observables.result_bytes(c.request, 200, 1000) for c in cfgs]
    assert sizes[1] - sizes[0] == 8.0 * 1000 * 19900
    need = engine.memory(cfgs[1].cases()[0], cfgs[1].times_stub, cfgs[1].request)
    available = need + 2 * sizes[1]             # enough without, not with the rows
    assert memory_verdict(engine, cfgs[0].cases()[0], cfgs[0], 1, available)[1] is None
    _, error = memory_verdict(engine, cfgs[1].cases()[0], cfgs[1], 1, available)
    assert error and "needs ~" in error


# --------------------------------------------------------------------------- post

@pytest.mark.needs_mpi
def test_post_plots_any_stored_observable(tmp_path, capsys):
    """python -m tlsmpi.post observable FILE [--observable NAME]: the mean with its
    standard-error band of every stored observable (or the named ones); a name the file
    does not store is one line and exit status 2."""
    from conftest import run_tlsmpi
    from tlsmpi.post import commands
    out = tmp_path / "obs.h5"
    args = ["--out", out]
    for o in RESOLVED[:-1] + ["observables.mutual_information=true", "observables.zz=true",
                              "observables.polarization=true", "observables.coherence=true"]:
        args += ["--set", o]
    res = run_tlsmpi(args)
    assert res.returncode == 0, res.stdout + res.stderr
    figs = tmp_path / "figs"
    assert commands.main(["observable", str(out), "--outdir", str(figs),
                          "--observable", "negativity"]) == 0
    assert sorted(os.listdir(figs)) == ["observable_negativity.pdf", "observable_negativity.png",
                                     "observable_negativity.txt"]
    assert commands.main(["observable", str(out), "--outdir", str(figs)]) == 0
    stored = ["concurrence", "coherence", "polarization", "negativity", "mutual_information",
              "zz", "purity"]
    assert {f"observable_{n}.png" for n in stored} <= set(os.listdir(figs))
    capsys.readouterr()
    assert commands.main(["observable", str(out), "--outdir", str(figs),
                          "--observable", "entropy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "observable entropy: no case" in err[0]
    assert commands.main([str(out), "--observable", "zz"]) == 2


@pytest.mark.needs_mpi
def test_a_file_written_before_the_new_keys_resumes(tmp_path):
    """--resume of a run file whose stored configuration lacks the keys added since (the
    new observables, observables.resolved) accepts it: they take their defaults; another
    value of an old key is still refused."""
    import h5py
    from conftest import run_tlsmpi
    out = tmp_path / "old.h5"
    tiny = ["--set", "model.N=4", "--set", "ensemble.realizations=2", "--set", "time.n_times=3"]
    assert run_tlsmpi(["--out", out, *tiny]).returncode == 0
    new = [n for n in observables.names() if n not in ("concurrence", "entropy")] + ["resolved"]
    with h5py.File(out, "r+") as f:
        text = f.attrs["config"]
        f.attrs["config"] = "\n".join(line for line in text.splitlines()
                                      if line.split(" = ")[0] not in new)
        f["case_000/status"][1] = 0                       # one realization left to compute
    assert "resolved" not in h5py.File(out, "r").attrs["config"]
    res = run_tlsmpi(["--out", out, *tiny, "--resume"])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_tlsmpi(["--out", out, *tiny, "--set", "observables.zz=true", "--resume"])
    assert res.returncode == 2 and "observables.zz: file (not set), given true" in res.stderr
