"""Benchmark of Engine 1 for pairs against a straightforward evaluation of App. B.

    python -m tlsmpi.bench pairs [--sizes 20 40 60] [--times 100] [--repeat 2]
    python -m tlsmpi.bench pairs --efficiency 2 [--realizations 200]

A second table times dissipative dynamics (epsilon = 1, T = 0): the angle-addition
tables against the general closed form that T > 0 uses, on the same realization.

``--efficiency P`` times the whole runner (``mpirun -n 1`` and ``mpirun -n P``, N = 40,
100 times, HDF5 output included) and prints the parallel efficiency T_1 / (P T_P).

The reference evaluates Eq. (B3) directly: all 16 elements of every rho_ij, each a
product over the other N - 2 sites of p_up e^{-i dH t} + p_down e^{+i dH t}, with
dH from Eq. (B4), vectorized with numpy over elements, sites and times.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..engines.exact import PairTables, average_concurrence
from ..physics.model import ModelParams, sample
from ..physics.measures import mean_pair_concurrence
from ..physics.reference import app_b_pair_rdms


def app_b_average_concurrence(real, times):
    """C(t) of Eq. (28) from the App. B reference."""
    return mean_pair_concurrence([app_b_pair_rdms(real, times)], real.N)


def _best_time(fn, repeat):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def parallel_efficiency(ranks, realizations, N=40):
    """Wall time of complete runs on 1 and ``ranks`` ranks (each launched with mpirun)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    args = ["--set", f"model.N={N}", "--set", f"ensemble.realizations={realizations}",
            "--set", "time.n_times=100", "--set", "sweep.epsilon=[0.0]"]
    print(f"Runner, N = {N}, {realizations} realizations, 100 times, HDF5 output included")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in (1, ranks):
            cmd = ["mpirun", "-n", str(p), sys.executable, "-m", "tlsmpi.run",
                   "--out", os.path.join(tmp, f"p{p}.h5"), *args]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times[p] = time.perf_counter() - t0
            print(f"  {p} rank(s): {times[p]:.2f} s", flush=True)
    print(f"  parallel efficiency at {ranks} ranks: {times[1] / (ranks * times[ranks]):.1%}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench pairs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 40, 60])
    parser.add_argument("--times", type=int, default=100, help="log-spaced output times")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--efficiency", type=int, metavar="P",
                        help="instead: parallel efficiency of the runner on P ranks")
    parser.add_argument("--realizations", type=int, default=200, help="for --efficiency")
    args = parser.parse_args(argv)
    if args.efficiency:
        return parallel_efficiency(args.efficiency, args.realizations)
    times = np.logspace(-2, 4, args.times)
    print(f"Engine 1 (pairs, unitary) vs App. B reference, {args.times} log-spaced times, "
          f"best of {args.repeat}, one core")
    print(f"{'N':>4} {'engine [s]':>11} {'App. B [s]':>11} {'speed-up':>9} {'max |dC|':>10}")
    for N in args.sizes:
        real = sample(ModelParams(N=N), args.seed, 0)
        t_engine, c_engine = _best_time(lambda: average_concurrence(real, times), args.repeat)
        t_ref, c_ref = _best_time(lambda: app_b_average_concurrence(real, times), args.repeat)
        print(f"{N:>4} {t_engine:>11.4f} {t_ref:>11.3f} {t_ref / t_engine:>9.1f} "
              f"{np.abs(c_engine - c_ref).max():>10.1e}", flush=True)
    print("\nWith dissipation (epsilon = 1, T = 0): angle-addition tables vs the general "
          "closed form (the T > 0 path)")
    print(f"{'N':>4} {'tables [s]':>11} {'closed [s]':>11} {'speed-up':>9} {'max |dC|':>10}")
    for N in args.sizes:
        real = sample(ModelParams(N=N, epsilon=1.0), args.seed, 0)
        t_tab, c_tab = _best_time(lambda: _concurrence(real, times, True), args.repeat)
        t_gen, c_gen = _best_time(lambda: _concurrence(real, times, False), args.repeat)
        print(f"{N:>4} {t_tab:>11.4f} {t_gen:>11.3f} {t_gen / t_tab:>9.1f} "
              f"{np.abs(c_tab - c_gen).max():>10.1e}", flush=True)
    return 0


def _concurrence(real, times, tables):
    """C(t) of Eq. (28) with the T = 0 tables switched on or off."""
    engine = PairTables(real, times)
    engine.tables = tables
    return mean_pair_concurrence((engine.rows(i) for i in range(real.N - 1)), real.N)
