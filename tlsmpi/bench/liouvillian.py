"""Benchmark of Engine 2 (PETSc AIJ + SLEPc MFN) against scipy's expm_multiply, and of its
spectral path over the paper's window (`--window`).

    python -m tlsmpi.bench liouvillian [--sizes 8 9] [--times 50] [--t-min 1e-2] [--t-max 10]
                                        [PETSc/SLEPc options, e.g. -mfn_type expokit -mfn_ncv 30]
    mpirun -n 2 python -m mpi4py -m tlsmpi.bench liouvillian ...   (MFN on 2 ranks)
    OMP_NUM_THREADS=1 python -m tlsmpi.bench liouvillian --window [--sizes 5 6 7] [--mfn 5]
                                        [--dense 5] [--mfn-t-max 100]

`--window`: one realization per N (seed 2021, realization 0, epsilon = 1, flip-flop 1 in
the exchange form), C(t) at 41 log-spaced times in [1e-2, 1e4] (`--times`, `--t-min`,
`--t-max`), CPU seconds (time.process_time) of: the spectral path (block generators,
eig, readout); MFN stepping (`compute(method="mfn")`, default options) over the whole
window for N in `--mfn`, else over the times <= `--mfn-t-max` plus the remaining solves
(per output interval ceil(||G||_1 dt / STEP_NORM), `mfn_solves`) at the measured cost of a full
substep (mean of SUBSTEPS), marked ~; scipy.linalg.expm(G t_k) c(0) of the dense real 4^N
Pauli-basis generator at every time for N in `--dense`.  max |drho| (pair density
matrices) and max |dC| against the spectral path over the common times, and the ratios to
the spectral time.  cond is the largest ||V||_1 ||V^-1||_1 of the blocks; * marks
cond > SPECTRAL_COND_MAX, where the engine would fall back to MFN (the table still shows the
spectral result).

For one realization per N (paper defaults, Y = 0): the assembly time (generator blocks,
preallocation, insertion), the evolution time over log-spaced output times, the peak
resident memory (max over ranks, before any reference run), and the same evolution with
scipy.sparse.linalg.expm_multiply (the paper's scipy route) on the assembled matrix
converted to scipy CSR on rank 0, step by step between the same output times.  The
accuracy check is max |C_MFN(t) - C_scipy(t)| of Eq. (28).
"""
import argparse
import resource
import sys
import time

import numpy as np

from ..physics.model import ModelParams, sample
from ..physics.observables import Request
from ..engines import liouvillian


def scipy_csr(A):
    """The distributed PETSc matrix as a scipy CSR matrix on rank 0 (None elsewhere)."""
    from petsc4py import PETSc
    import scipy.sparse as sp
    n = A.getSize()[0]
    root = A.getComm().getRank() == 0
    rows = PETSc.IS().createStride(n if root else 0, first=0, step=1, comm=PETSc.COMM_SELF)
    sub = A.createSubMatrices(rows, rows)[0]
    try:
        indptr, indices, values = sub.getValuesCSR()
    finally:
        sub.destroy()
        rows.destroy()
    return sp.csr_matrix((values, indices, indptr), shape=(n, n)) if root else None


def expm_multiply_run(G, c0, times, indices):
    """c(t)[indices] by expm_multiply(G (t_k - t_{k-1}), c(t_{k-1})), and the wall time."""
    from scipy.sparse.linalg import expm_multiply
    start = time.perf_counter()
    c, t_prev, out = c0, 0.0, []
    for t in times:
        if t > t_prev:
            c = expm_multiply(G * (t - t_prev), c)
            t_prev = t
        out.append(c[indices])
    return np.array(out), time.perf_counter() - start


def _parser():
    """The command line of ``python -m tlsmpi.bench liouvillian``."""
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench liouvillian", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="default 8 9; --window: 5 6 7")
    parser.add_argument("--times", type=int,
                        help="log-spaced output times (default 50; --window: 41)")
    parser.add_argument("--t-min", type=float, default=1e-2)
    parser.add_argument("--t-max", type=float, help="default 10; --window: 1e4")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--no-reference", action="store_true", help="skip expm_multiply (large N)")
    parser.add_argument("--window", action="store_true",
                        help="spectral path against MFN and dense expm")
    parser.add_argument("--mfn", type=int, nargs="*", default=[5],
                        help="--window: MFN over the whole window")
    parser.add_argument("--mfn-t-max", type=float, default=100.0,
                        help="--window: MFN window of the other N")
    parser.add_argument("--dense", type=int, nargs="*", default=[5], help="--window: dense expm")
    return parser


def main(argv=None):
    parser = _parser()
    args, petsc_args = parser.parse_known_args(argv)
    liouvillian.init_petsc([sys.argv[0]] + petsc_args)
    if args.window:
        return window(args.sizes or [5, 6, 7], args.times or 41, args.t_min, args.t_max or 1e4,
                      args.seed, args.mfn, args.mfn_t_max, args.dense)
    args.sizes, args.times, args.t_max = args.sizes or [8, 9], args.times or 50, args.t_max or 10.0
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    root = comm.rank == 0
    times = np.logspace(np.log10(args.t_min), np.log10(args.t_max), args.times)
    request = Request()

    def say(*a):
        if root:
            print(*a, flush=True)

    say(f"Engine 2 vs scipy expm_multiply: {args.times} log-spaced times in [{args.t_min:g}, "
        f"{args.t_max:g}], {comm.size} rank(s); options: {' '.join(petsc_args) or '(defaults)'}")
    say(f"{'N':>3} {'||G||_1':>8} {'MFN':>14} {'assembly[s]':>11} {'evolve[s]':>10} "
        f"{'peak[GB]':>9} {'scipy[s]':>9} {'speed-up':>8} {'max|dC|':>8}")
    runs = []
    for N in args.sizes:                     # all MFN runs first: the peak RSS is theirs
        real = sample(ModelParams(N=N), args.seed, 0)
        readout = liouvillian.PauliReadout(real, request)
        comm.Barrier()
        start = time.perf_counter()
        with liouvillian.Evolution(real, comm) as evo:
            comm.Barrier()
            t_assembly = time.perf_counter() - start
            from petsc4py import PETSc
            norm = evo.A.norm(PETSc.NormType.NORM_1)
            method = f"{evo.mfn.getType()} ncv={evo.mfn.getDimensions()}"
            start = time.perf_counter()
            coeffs = evo.run(times, readout.indices)
            comm.Barrier()
            t_evolve = time.perf_counter() - start
            peak = comm.allreduce(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, op=MPI.MAX
            )
            G = None if args.no_reference else scipy_csr(evo.A)
        runs.append((real, readout, coeffs, G,
                     f"{N:>3} {norm:>8.1f} {method:>14} {t_assembly:>11.2f} {t_evolve:>10.2f} "
                     f"{peak / 1e9:>9.2f}", t_evolve))
    for real, readout, coeffs, G, line, t_evolve in runs:
        if root and G is not None:
            gen = liouvillian.Generator(real)
            c0 = gen.initial_coefficients(real.initial_density_matrices(), 0, gen.size)
            ref, t_ref = expm_multiply_run(G, c0, times, readout.indices)
            C = readout.observables(coeffs)["concurrence"]
            C_ref = readout.observables(ref)["concurrence"]
            line += f" {t_ref:>9.2f} {t_ref / t_evolve:>8.2f} {np.abs(C - C_ref).max():>8.1e}"
        say(line)
    return 0


#: Full MFN substeps timed to extrapolate the cost of a window (`window`).
SUBSTEPS = 20


def mfn_solves(times, max_step):
    """MFN solves of `Evolution.run`: per output interval ceil(dt / max_step) >= 1."""
    return sum(max(1, np.ceil(dt / max_step)) for dt in np.diff(times, prepend=0.0) if dt > 0)


def window(sizes, n_times, t_min, t_max, seed, mfn_full, mfn_t_max, dense):
    """The `--window` table (module docstring), printed line by line."""
    from scipy.linalg import expm
    times = np.logspace(np.log10(t_min), np.log10(t_max), n_times)
    request = Request()
    print(f"Engine 2 over a long window: {n_times} log-spaced times in [{t_min:g}, {t_max:g}], "
          "epsilon = 1, "
          "flipflop = 1 (exchange), C(t); CPU seconds, one process; |drho| (pair density "
          f"matrices) and |dC| against the spectral path")
    print(f"{'N':>3} {'blocks':>17} {'cond':>9} {'spectral[s]':>11} {'MFN[s]':>10} {'MFN/spec':>9} "
          f"{'|drho|,|dC| MFN':>17} {'dense[s]':>9} {'dense/spec':>10} {'|drho|,|dC| dense':>17}")

    def deviation(coeffs, ref):
        rho = [liouvillian.density_from_pauli(c[:, readout.pair_pos], 2) for c in (coeffs, ref)]
        C = [readout.observables(c)["concurrence"] for c in (coeffs, ref)]
        return f"{np.abs(rho[0] - rho[1]).max():.1e},{np.abs(C[0] - C[1]).max():.1e}"

    for N in sizes:
        real = sample(ModelParams(N=N, epsilon=1.0, flipflop=1.0), seed, 0)
        readout = liouvillian.PauliReadout(real, request)
        start = time.process_time()
        spec = liouvillian.Spectral(real, readout.indices)
        coeffs = spec.run(times)
        readout.observables(coeffs)
        t_spec = time.process_time() - start
        full = N in mfn_full
        t_mfn = times if full else times[times <= mfn_t_max]
        start = time.process_time()
        with liouvillian.Evolution(real) as evo:
            c_mfn = evo.run(t_mfn, readout.indices)
            readout.observables(c_mfn)
            s_mfn = time.process_time() - start
            if not full:                 # the remaining solves at the cost of a full substep
                start = time.process_time()
                evo.step(t_mfn[-1], t_mfn[-1] + SUBSTEPS * evo.max_step)
                per = (time.process_time() - start) / SUBSTEPS
                s_mfn += per * (mfn_solves(times, evo.max_step) - mfn_solves(t_mfn, evo.max_step))
        flag = "*" if spec.cond > liouvillian.SPECTRAL_COND_MAX else ""
        line = (f"{N:>3} {str(spec.sizes):>17} {f'{spec.cond:.1e}{flag}':>9} {t_spec:>11.2f} "
                f"{('' if full else '~') + f'{s_mfn:.1f}':>10} {s_mfn / t_spec:>9.0f} "
                f"{deviation(c_mfn, coeffs[:len(t_mfn)]):>17}")
        if N in dense:
            gen = liouvillian.Generator(real)
            c0 = gen.initial_coefficients(real.initial_density_matrices(), 0, gen.size)
            A = liouvillian.assemble(gen, _comm_self())
            try:
                G = scipy_csr(A).toarray()
            finally:
                A.destroy()
            start = time.process_time()
            c_dense = np.array([(expm(G * t) @ c0)[readout.indices] for t in times])
            readout.observables(c_dense)
            t_dense = time.process_time() - start
            line += f" {t_dense:>9.2f} {t_dense / t_spec:>10.1f} {deviation(c_dense, coeffs):>17}"
        print(line, flush=True)
    return 0


def _comm_self():
    from petsc4py import PETSc
    return PETSc.COMM_SELF
