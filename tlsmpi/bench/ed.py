"""Benchmark of Engine 3 (exact diagonalization per sector, quantum-jump trajectories).

    OMP_NUM_THREADS=1 python -m tlsmpi.bench ed [--sizes 6 10 12 14] [--reference 6]
        [--trajectory-sizes 12] [--trajectories 20] [--form exchange] [--times 50]
        [--t-min 1e-2] [--t-max 1e4] [--flipflop 1.0]

One realization per N (paper defaults, seed 2021, realization 0), flip-flop on, log-spaced
output times over the paper's window.

* epsilon = 0 (`--sizes`): wall time of the sector diagonalizations and of the
  observables (C and S_E over all N bubbles), the peak resident memory so far and the
  engine's estimate; for N in `--reference` the same realization with the Liouvillian
  engine (SLEPc MFN, default options): its time, the ratio and max |dC|.
* epsilon = 1 (`--trajectory-sizes`): set-up (H_eff eigendecompositions, their largest
  condition number) and seconds per trajectory over `--trajectories` trajectories, the
  mean number of jumps, and the extrapolated time of 1000 trajectories.
* `--bias N`: the bias of C(t) computed from the average of M trajectories, against the
  Liouvillian at epsilon = 1 (t <= `--bias-t-max`): 4000 trajectories split into
  4000 / M disjoint sets for M = 25, 100, 400, 1000; per M the mean over sets and times of
  C_M(t) - C(t) with its standard error, the same against the average of all 4000
  (C_all: the noise common to all rows cancels, what remains is the bias at M relative to
  M = 4000), the mean |C_M - C| and the jackknife error of `tlsmpi.engines.trajectories.average`.

Times are CPU seconds of this process (time.process_time; set OMP_NUM_THREADS=1), which a
shared machine perturbs less than wall time.  The peak memory (ru_maxrss) is a running
maximum: run the largest N alone to measure it.
"""
import argparse
import resource
import time

import numpy as np

from ..engines import ed, trajectories
from ..engines.readout import StateReadout
from ..engines.sectors import sector_sizes
from ..physics.model import ModelParams, sample
from ..physics.observables import Request


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def unitary_row(params, times, request, reference):
    """One epsilon = 0 line of the table."""
    real = sample(params, 2021, 0)
    start = time.process_time()
    psi = ed.unitary_states(real, times)
    t_ed = time.process_time() - start
    readout = StateReadout(real, request)
    start = time.process_time()
    out = readout.observables(readout.densities(psi))
    t_obs = time.process_time() - start
    est = ed.sector_memory(params, times, request) / 1e9
    line = (f"{params.N:>3} {max(sector_sizes(params.N, params.flipflop_form)):>6} {t_ed:>8.2f} "
            f"{t_obs:>8.2f} {t_ed + t_obs:>8.2f} {peak_gb():>8.2f} {est:>8.2f}")
    if params.N in reference:
        from ..engines import liouvillian
        liouvillian.init_petsc(["bench"])
        start = time.process_time()
        ref = liouvillian.compute(real, times, request, method="mfn")
        t_ref = time.process_time() - start
        dC = np.abs(ref["concurrence"] - out["concurrence"]).max()
        line += f" {t_ref:>9.2f} {t_ref / (t_ed + t_obs):>9.0f} {dC:>8.1e}"
    return line


def trajectory_row(params, times, request, M):
    """One epsilon = 1 line of the table."""
    real = sample(params, 2021, 0)
    start = time.process_time()
    setup = trajectories.Setup(real, request)
    t_setup = time.process_time() - start
    start = time.process_time()
    total = trajectories.block_sums(setup, times, 0, M)
    per = (time.process_time() - start) / total["count"]
    return (f"{params.N:>3} {max(sector_sizes(params.N, params.flipflop_form)):>6} {t_setup:>8.2f} "
            f"{total['cond']:>9.3g} {per:>9.3f} {total['jumps'] / total['count']:>6.2f} "
            f"{(t_setup + 1000 * per) / 60:>9.1f} {peak_gb():>8.2f}")


def bias_table(N, t_max, form, flipflop, total=4000, sizes=(25, 100, 400, 1000)):
    """The `--bias` table (module docstring), printed line by line."""
    from ..engines import liouvillian
    liouvillian.init_petsc(["bench"])
    params = ModelParams(N=N, epsilon=1.0, flipflop=flipflop, flipflop_form=form)
    real = sample(params, 2021, 0)
    times = np.logspace(-1, np.log10(t_max), 12)
    C_ref = liouvillian.compute(real, times, Request())["concurrence"]
    setup = trajectories.Setup(real, Request())
    readout = setup.readout
    start = time.process_time()
    rho = np.empty((total, len(times), N * (N - 1) // 2, 4, 4), dtype=complex)
    for m in range(total):
        rng = np.random.default_rng([real.index, real.seed, 2, m])
        states = trajectories.trajectory(setup.nojump, setup.jumps, setup.psi0, times, rng)[0]
        rho[m] = readout.densities(states)["pairs"]
    print(f"bias of C from M trajectories, N = {N} ({form}, flipflop = {flipflop}), epsilon = 1, "
          f"12 times in [0.1, {t_max:g}], {total} trajectories in "
          f"{time.process_time() - start:.0f} s; "
          f"mean C(t) = {C_ref.mean():.4f}, max C(t) = {C_ref.max():.4f}")
    C_all = readout.observables({"pairs": rho.mean(0)})["concurrence"]
    print(f"all {total}: mean(C_all - C) = {(C_all - C_ref).mean():.2e}")
    print(f"{'M':>5} {'sets':>5} {'mean(C_M - C)':>14} {'+-':>8} {'mean(C_M - C_all)':>17} "
          f"{'+-':>8} {'mean|C_M - C|':>14} {'jackknife':>10}")
    for M in sizes:
        sets = total // M
        C = np.array([readout.observables({"pairs": rho[k * M:(k + 1) * M].mean(0)})["concurrence"]
                      for k in range(sets)])
        d = (C - C_ref).mean(1)                                     # per set, mean over times
        a = (C - C_all).mean(1)                                     # without the common noise
        err = trajectories.average(real, times, Request(), M)["concurrence_err"]
        print(f"{M:>5} {sets:>5} {d.mean():>14.2e} {d.std(ddof=1) / np.sqrt(sets):>8.1e} "
              f"{a.mean():>17.2e} {a.std(ddof=1) / np.sqrt(sets):>8.1e} "
              f"{np.abs(C - C_ref).mean():>14.2e} {np.nanmean(err):>10.2e}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench ed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[6, 10, 12, 14])
    parser.add_argument("--reference", type=int, nargs="*", default=[6],
                        help="sizes also run with the Liouvillian engine")
    parser.add_argument("--trajectory-sizes", type=int, nargs="*", default=[12])
    parser.add_argument("--trajectories", type=int, default=20, help="trajectories timed (<= 20)")
    parser.add_argument("--form", choices=["exchange", "xx"], default="exchange")
    parser.add_argument("--flipflop", type=float, default=1.0)
    parser.add_argument("--times", type=int, default=50, help="log-spaced output times")
    parser.add_argument("--t-min", type=float, default=1e-2)
    parser.add_argument("--t-max", type=float, default=1e4)
    parser.add_argument("--bias", type=int, metavar="N", help="measure the bias of C at N (e.g. 5)")
    parser.add_argument("--bias-t-max", type=float, default=100.0)
    args = parser.parse_args(argv)
    if args.bias:
        bias_table(args.bias, args.bias_t_max, args.form, args.flipflop)
        return 0
    times = np.logspace(np.log10(args.t_min), np.log10(args.t_max), args.times)
    request = Request(("concurrence", "entropy"))
    base = ModelParams(flipflop=args.flipflop, flipflop_form=args.form)
    print(f"Engine 3 (ed), flipflop = {args.flipflop} ({args.form}), {args.times} log-spaced times "
          f"in [{args.t_min:g}, {args.t_max:g}], C and S_E (all bubbles), one process")
    if args.sizes:
        print("epsilon = 0: exact diagonalization per sector")
        print(f"{'N':>3} {'D_max':>6} {'eigh[s]':>8} {'obs[s]':>8} {'total[s]':>8} {'peak[GB]':>8} "
              f"{'est[GB]':>8} {'liouv[s]':>9} {'ratio':>9} {'max|dC|':>8}")
        for N in args.sizes:
            print(unitary_row(base.replace(N=N), times, request, args.reference), flush=True)
    if args.trajectory_sizes:
        print(f"epsilon = 1: {args.trajectories} quantum-jump trajectories (concurrence only)")
        print(f"{'N':>3} {'D_max':>6} {'setup[s]':>8} {'cond':>9} {'s/traj':>9} {'jumps':>6} "
              f"{'M=1000[min]':>9} {'peak[GB]':>8}")
        for N in args.trajectory_sizes:
            print(trajectory_row(base.replace(N=N, epsilon=1.0), times, Request(),
                                 min(args.trajectories, trajectories.BLOCK)), flush=True)
    return 0
