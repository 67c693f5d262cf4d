"""The random-state program's per-state computation as it was before the seeding was
vectorized (one ``default_rng`` per state): the reference that every per-state value of
`tlsmpi.randomstates` must equal bit for bit, and the 'before' of its benchmark."""
import numpy as np

from tlsmpi.physics.measures import concurrence
from tlsmpi.randomstates import BATCH, pair_density_matrices


def random_state(N, index, seed):
    """State ``index`` of size N from its own ``default_rng([index, N, seed])``."""
    rng = np.random.default_rng([index, N, seed])
    psi = rng.standard_normal(2**N) + 1j * rng.standard_normal(2**N)
    return psi / np.linalg.norm(psi)


def state_concurrences(N, indices, seed):
    """Per-state pair-averaged concurrence and entangled-pair count, state by state."""
    mean, nonzero = [], []
    for start in range(0, len(indices), BATCH):
        psi = np.array([random_state(N, k, seed) for k in indices[start:start + BATCH]])
        C = concurrence(pair_density_matrices(psi, N))
        mean.append(C.mean(1))
        nonzero.append((C > 0).sum(1))
    return np.concatenate(mean), np.concatenate(nonzero).astype(np.int64)


def benchmark(sizes, states, seed=2021, repeats=3):
    """States per core-second of this reference ('before') and of
    `tlsmpi.randomstates.state_concurrences` ('after'), timed alternately on the same
    states (best of ``repeats``: the machine is shared); asserts they agree bit for bit."""
    import time

    from tlsmpi import randomstates
    print(f"{'N':>2} {'before /s':>10} {'after /s':>10} {'ratio':>6}   ({states} states, "
          f"best of {repeats}, one core)")
    for N in sizes:
        best = {}
        for _ in range(repeats):
            for name, fn in (("before", state_concurrences),
                             ("after", randomstates.state_concurrences)):
                start = time.process_time()
                got = fn(N, np.arange(states), seed)
                best[name] = min(best.get(name, np.inf), time.process_time() - start)
                best.setdefault("values", got)
                assert all(np.array_equal(a, b) for a, b in zip(best["values"], got))
        print(f"{N:2d} {states / best['before']:10.0f} {states / best['after']:10.0f} "
              f"{best['before'] / best['after']:6.2f}")


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="random-state speed, before and after")
    p.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7])
    p.add_argument("--states", type=int, default=4096)
    args = p.parse_args()
    benchmark(args.sizes, args.states)
