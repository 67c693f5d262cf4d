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
import itertools
import time

import numpy as np

from ..entropy import half_system_entropy, route_costs, subsystem_rdm
from ..exact import coherences, propagate_populations, trace_factor
from ..model import ModelParams, sample
from ..observables import entropy_vn


def naive_rdm(real, times, A):
    """rho_A(t) by DESIGN.md section 4 element by element: for every (s_A, s'_A) its own
    omega_j and product over all N sites with exact.propagate_populations (no grouping by
    coherence pattern, no Hermiticity), shape (T, 2^|A|, 2^|A|)."""
    t = np.asarray(times, dtype=float)
    A = np.asarray(A)
    n, B = len(A), np.setdiff1d(np.arange(real.N), A)
    p_up = real.initial_density_matrices()[:, 0, 0].real
    site = lambda idx: (p_up[idx], real.Y[idx], real.f[idx])   # noqa: E731
    c = coherences(real, t)
    rho = np.empty((len(t), 2**n, 2**n), dtype=complex)
    for a, b in itertools.product(range(2**n), repeat=2):
        bits_a = (a >> np.arange(n - 1, -1, -1)) & 1
        bits_b = (b >> np.arange(n - 1, -1, -1)) & 1
        half_d = bits_b - bits_a                                  # d_k / 2 (s = +1 for bit 0)
        omega = 4.0 * half_d @ real.J[A]
        value = np.ones(len(t), dtype=complex)
        for k in np.flatnonzero(half_d):
            value *= c[A[k]] if half_d[k] > 0 else c[A[k]].conj()
        inc = np.flatnonzero(half_d == 0)
        if len(inc):
            v_up, v_down = propagate_populations(omega[A[inc]], t, *site(A[inc]))
            value *= np.where(bits_a[inc, None] == 0, v_up, v_down).prod(0)
        if len(B):
            value *= trace_factor(omega[B], t, *site(B)).prod(0)
        rho[:, a, b] = value
    return rho


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
