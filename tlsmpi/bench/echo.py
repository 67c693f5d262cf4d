"""Benchmark of Engine 1 under pi pulses: an echo curve against a free-evolution curve of
the same size on the same realization (docs/performance.md, "Echoes").

    python -m tlsmpi.bench echo [--N 200] [--times 100] [--repeat 2] [--epsilon 0 1]
                                [--pairs free hahn ...] [--rows-every 10]

For each epsilon it times C(t) of Eq. (28) (all pairs), the single-site coherences from
the pair tables ("sites") and from the rows alone ("rows", `coherence_rows`: the echo
signal's path, for a band of every ``--rows-every``-th TLS) for free evolution, a Hahn echo
(pulses on all TLSs), a Hahn echo on half of them, CPMG-4 and CPMG-16, and prints each
against free evolution and CPMG-16 against Hahn, measured in the same process;
``--pairs`` limits the C(t) timings to the protocols named (the others print nan; name
"free" too for the ratios).  Times are CPU seconds of this process (time.process_time;
set OMP_NUM_THREADS=1), which a shared machine's load disturbs less than wall time.
"""
import argparse
import time

import numpy as np

from ..engines.exact import average_concurrence, coherence_rows, site_coherences
from ..physics.model import ModelParams, sample
from ..physics.pulses import Protocol, Selection


def _best(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench echo", description=__doc__)
    parser.add_argument("--N", type=int, default=200)
    parser.add_argument("--times", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--pairs", nargs="+", default=None)
    parser.add_argument("--rows-every", type=int, default=10,
                        help="the rows timed: every K-th TLS (1: all)")
    args = parser.parse_args(argv)
    t = np.logspace(-2, 3, args.times)
    half = Selection("sites", sites=tuple(range(0, args.N, 2)))
    protocols = {"free": Protocol(), "hahn": Protocol("hahn"),
                 "hahn, half pulsed": Protocol("hahn", select=half),
                 "cpmg-4": Protocol("cpmg", n_pulses=4), "cpmg-16": Protocol("cpmg", n_pulses=16)}
    print(f"Engine 1, N = {args.N}, {args.times} output times, best of {args.repeat} "
          "(CPU seconds)")
    for eps in args.epsilon:
        real = sample(ModelParams(N=args.N, epsilon=eps), 1, 0)
        print(f"epsilon = {eps}")
        print(f"  {'protocol':<20} {'C(t)':>9} {'/free':>7} {'sites':>9} {'/free':>7} "
              f"{'rows':>9} {'/free':>7}")
        seconds = {}
        band = np.arange(0, args.N, args.rows_every)
        for name, p in protocols.items():
            pairs = args.pairs is None or name in args.pairs
            seconds[name] = (
                _best(lambda: average_concurrence(real, t, protocol=p), args.repeat)
                if pairs else np.nan, _best(lambda: site_coherences(real, t, p), args.repeat),
                _best(lambda: coherence_rows(real, t, p, band), args.repeat))
            free = seconds["free"]
            print(f"  {name:<20} " + " ".join(
                f"{s:9.4f} {s / f:7.2f}" for s, f in zip(seconds[name], free)), flush=True)
        ratio = [a / b for a, b in zip(seconds["cpmg-16"], seconds["hahn"])]
        print(f"  cpmg-16 / hahn: C(t) {ratio[0]:.2f}, sites {ratio[1]:.2f}, "
              f"rows {ratio[2]:.2f}")
    return 0
