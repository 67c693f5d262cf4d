"""docs/extending.md: a user's engine registered from outside the package, validated by
the configuration and run in-process and through the runner (serial and 2 ranks)."""
import os

import h5py
import numpy as np
import pytest

from conftest import ROOT, run_tlsmpi
from tlsmpi import config, engines
from tlsmpi.errors import ConfigError
from tlsmpi.physics.model import ModelParams, sample
from tlsmpi.results import Run
import toy_engine

#: eps: a trace rho_up + rho_down = 1 holds to a few eps, the rest is exact arithmetic
EPS = np.finfo(float).eps
TOY = ['engine.name="toy"', "engine.tau=2.0", "model.N=5", "sweep.epsilon=[0.0]"]


def test_toy_engine_is_registered_and_validated():
    assert "toy" in engines.names()
    cfg = config.load(None, TOY)
    assert cfg.engine_options == {"tau": 2.0}
    with pytest.raises(ConfigError, match="engine.tau = -1.0: expected a dephasing time"):
        config.load(None, TOY + ["engine.tau=-1.0"])
    with pytest.raises(ConfigError, match="unknown key engine.trajectories"):
        config.load(None, TOY + ["engine.trajectories=3"])
    with pytest.raises(ConfigError, match="model.epsilon = 1.0: the toy engine"):
        config.load(None, TOY[:-1])                         # default sweep has epsilon = 1


def test_toy_engine_computes_in_process():
    cfg = config.load(None, TOY)
    engine = engines.get(cfg.engine)(cfg.engine_options)
    real = sample(ModelParams(N=5), cfg.seed, 0)
    t = cfg.times
    out = engine.compute(real, t, cfg.request)
    assert list(out) == list(engine.outputs(cfg.request)) == ["concurrence", "bell_coherence"]
    assert np.allclose(out["concurrence"], 2 * np.exp(-t / 2.0) / 5, rtol=4 * np.finfo(float).eps)
    assert isinstance(toy_engine.ToyEngine(), engines.Engine)


@pytest.mark.needs_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_toy_engine_through_the_runner(tmp_path, ranks):
    out = tmp_path / "toy.h5"
    args = ["--out", out, "--set", "ensemble.realizations=3", "--set", "time.n_times=7"]
    for o in TOY:
        args += ["--set", o]
    res = run_tlsmpi(args, ranks=ranks, module="toy_driver", cwd=os.path.join(ROOT, "tests"))
    assert res.returncode == 0, res.stdout + res.stderr
    (case,) = Run(out).cases
    t = Run(out).times
    C = case.values("concurrence")
    assert C.shape == (3, len(t))
    assert np.allclose(C, 2 * np.exp(-t / 2.0) / 5, rtol=4 * np.finfo(float).eps)
    # the toy's own row, declared only in tests/toy_engine.py, is stored and read back
    assert np.allclose(case.values("bell_coherence"), np.exp(-t / 2.0) / 2,
                       rtol=4 * np.finfo(float).eps)
    with h5py.File(out, "r") as f:
        ds = f["case_000/bell_coherence"]
        assert dict(ds.attrs)["units"] == "1"
        assert dict(ds.attrs)["long_name"] == "coherence |<00|rho|11>| of each Bell pair"
        assert "bell_coherence" in f["case_000/checksum"].attrs["datasets"].split()
        assert "bell_coherence_mean" not in f["case_000"]        # means only of the observables


# --------------------------------------------------------------------------- an observable

POP = ["model.N=4", "sweep.epsilon=[0.0, 1.0]", "model.T_K=50.0",
       "observables.toy_population=true", "observables.polarization=true"]


def test_toy_observable_is_one_registration():
    """Registered in tests/toy_observable.py alone: no file of the package mentions it, the
    configuration accepts it, the toy engine (no site density matrices) is refused by
    name, and the exact engine computes it as (1 - <S^z>)/2 to rounding."""
    import toy_observable  # noqa: F401
    from tlsmpi.physics.observables import get
    package = os.path.join(ROOT, "tlsmpi")
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as fh:
                    assert "toy_population" not in fh.read(), name
    assert get("toy_population").kind == "site"
    cfg = config.load(None, POP)
    assert "toy_population" in cfg.request.observables
    with pytest.raises(ConfigError, match="observables.toy_population = true: engine 'toy' "
                                          "does not compute it"):
        config.load(None, TOY + ["observables.toy_population=true"])
    engine = engines.get("exact")()
    for params in cfg.cases():
        out = engine.compute(sample(params, cfg.seed, 0), cfg.times, cfg.request)
        assert np.abs(out["toy_population"] - (1 - out["polarization"]) / 2).max() < 8 * EPS


@pytest.mark.needs_mpi
def test_toy_observable_through_the_runner_and_post(tmp_path):
    out = tmp_path / "pop.h5"
    args = ["--out", out, "--set", "ensemble.realizations=3", "--set", "time.n_times=7",
            "--set", "observables.resolved=true"]
    for o in POP:
        args += ["--set", o]
    res = run_tlsmpi(args, module="toy_driver", cwd=os.path.join(ROOT, "tests"))
    assert res.returncode == 0, res.stdout + res.stderr
    run = Run(out)
    for case in run.cases:
        assert "toy_population" in case.observables
        pop, pol = case.values("toy_population"), case.values("polarization")
        assert np.abs(pop - (1 - pol) / 2).max() < 8 * EPS   # Tr rho_i = 1 to rounding
        assert case.values("toy_population_resolved").shape == (3, 7, 4)
        assert case.cf["toy_population"]["long_name"].startswith(
            "mean over sites of the upper-level")
    from tlsmpi.post import commands
    assert commands.main(["observable", str(out), "--outdir", str(tmp_path / "f"),
                          "--observable", "toy_population"]) == 0
    assert os.path.isfile(tmp_path / "f" / "observable_toy_population.png")
