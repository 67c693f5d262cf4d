"""Benchmark of the half-system entanglement entropy S_E(t) (Eq. 29), one realization per size.

    python -m tlsmpi.bench entropy [--sizes 12 16 20] [--times 50] [--naive-bipartitions 2]
                                   [--pure-bipartitions K]

Times are CPU seconds of this process (OMP_NUM_THREADS=1), less sensitive than wall time
to other jobs on a shared machine.  Unitary (epsilon = 0): the factorized route over all N
bubble bipartitions against the pure-state route (on the first K bipartitions if given,
compared per bipartition), and the route the cost model picks.  Dissipative (epsilon = 1): the
factorized route over all bipartitions; at the smallest size also a naive per-element
evaluation of the same formula (`naive_rdm`) on a few bipartitions, compared per bipartition.
"""
import argparse
import time

import numpy as np

from ..engines.subsystems import half_system_entropy, route_costs, subsystem_rdm
from ..physics.model import ModelParams, sample
from ..physics.measures import entropy_vn
from ..physics.reference import naive_rdm


def _timed(fn):
    t0 = time.process_time()
    result = fn()
    return time.process_time() - t0, result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench entropy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--times", type=int, default=50, help="log-spaced output times")
    parser.add_argument("--naive-bipartitions", type=int, default=2,
                        help="bipartitions for the per-element reference at the smallest size")
    parser.add_argument("--pure-bipartitions", type=int, default=0,
                        help="bipartitions for the pure-state reference (0: all)")
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args(argv)
    times = np.logspace(-2, 4, args.times)
    print(f"S_E(t), {args.times} log-spaced times, all N bipartitions, one realization, one core")
    print(f"{'N':>3} {'dynamics':>12} {'factorized [s]':>15} {'reference [s]':>14} "
          f"{'ratio':>6} {'max |dS|':>9}  reference / note")
    for N in args.sizes:
        real = sample(ModelParams(N=N), args.seed, 0)
        bubbles = real.bubbles()
        model = route_costs(N, bubbles.shape[1], len(times), len(bubbles))
        few = bubbles[:args.pure_bipartitions or len(bubbles)]
        t_f, S_f = _timed(lambda: half_system_entropy(real, times, bubbles, route="factorized",
                                                      per_bipartition=True))
        t_p, S_p = _timed(lambda: half_system_entropy(real, times, few, route="pure",
                                                      per_bipartition=True))
        t_p *= len(bubbles) / len(few)
        print(f"{N:>3} {'unitary':>12} {t_f:>15.3f} {t_p:>14.3f} {t_p / t_f:>6.2f} "
              f"{np.abs(S_f[:, :len(few)] - S_p).max():>9.1e}  pure-state route on {len(few)} "
              f"bipartitions (scaled to {len(bubbles)}); model "
              f"{model['factorized']:.2f} s vs {model['pure']:.2f} s -> auto picks "
              f"{min(model, key=model.get)}", flush=True)
        real = sample(ModelParams(N=N, epsilon=1.0), args.seed, 0)
        t_d, S_d = _timed(lambda: half_system_entropy(real, times, bubbles, route="factorized"))
        note = f"S_E(t_max) = {S_d[-1]:.3f}, peak {S_d.max():.3f}"
        if N == min(args.sizes):
            few = bubbles[:args.naive_bipartitions]
            t_g, S_g = _timed(lambda: [entropy_vn(subsystem_rdm(real, times, A)) for A in few])
            t_n, S_n = _timed(lambda: [entropy_vn(naive_rdm(real, times, A)) for A in few])
            print(f"{N:>3} {'epsilon=1':>12} {t_d:>15.3f} {t_n * len(bubbles) / len(few):>14.3f} "
                  f"{t_n / t_g:>6.1f} {np.abs(np.subtract(S_g, S_n)).max():>9.1e}  per-element "
                  f"formula on {len(few)} bipartitions (scaled to {len(bubbles)}); {note}",
                  flush=True)
        else:
            print(f"{N:>3} {'epsilon=1':>12} {t_d:>15.3f} {'':>14} {'':>6} {'':>9}  {note}",
                  flush=True)
    return 0
