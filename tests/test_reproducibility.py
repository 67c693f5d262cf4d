"""What "the same numbers for any number of ranks" means (docs/design.md,
"Reproducibility"): the engines compute with one BLAS thread whatever the environment says,
and the comparison the parallel tests use tells rounding from a different result."""
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from tlsmpi import config, engines
from tlsmpi.run import job

from runfiles import agree, disagreeing
from tolerances import EPS


def test_engines_compute_with_one_blas_thread(monkeypatch):
    cfg = config.load(None, ["model.N=4", "time.n_times=3", "ensemble.realizations=1"])
    engine = engines.get(cfg.engine)(cfg.engine_options)
    seen = []

    def compute(real, times, request, comm=None):
        seen.append({p["internal_api"]: p["num_threads"] for p in threadpool_info()})
        return original(real, times, request, comm)

    original = engine.compute
    monkeypatch.setattr(engine, "compute", compute)
    with threadpool_limits(4):                  # as an OMP_NUM_THREADS=4 environment would
        outside = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
        real, results, error, _ = job.compute_realization(engine, cfg.cases()[0], cfg,
                                                          cfg.times, 0)
    assert error is None and seen and set(seen[0].values()) == {1}
    assert max(outside.values()) > 1           # the limit is the runner's, not the machine's


def test_agree_tells_rounding_from_another_result():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (7, 9))
    assert agree(x, x * (1 + 4 * EPS))          # a few roundings
    assert not agree(x, x + 1e-12)              # another realization would differ by O(1)
    assert not agree(x, x.astype(np.float32).astype(float))
    assert agree(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    assert not agree(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert not agree(np.arange(3), np.arange(3) + 1)
    assert not agree(x, x[:, :8])
    assert disagreeing({"a": x, "a/checksum": np.zeros(2)}, {"a": x, "a/checksum": np.ones(2)}) \
        == []
    assert disagreeing({"a": x}, {"a": x, "b": x}) == ["b"]
    J = {"case_000/disorder/J": x}
    assert disagreeing(J, {"case_000/disorder/J": x * (1 + 4 * EPS)}) == list(J)
