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
