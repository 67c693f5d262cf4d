"""Benchmark of Engine 2 (PETSc AIJ + SLEPc MFN) against scipy's expm_multiply.

    python -m tlsmpi.bench liouvillian [--sizes 8 9] [--times 50] [--t-min 1e-2] [--t-max 10]
                                        [PETSc/SLEPc options, e.g. -mfn_type expokit -mfn_ncv 30]
    mpirun -n 2 python -m mpi4py -m tlsmpi.bench liouvillian ...   (MFN on 2 ranks)

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

from ..model import ModelParams, sample
from ..observables import Request
from .. import liouvillian


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench liouvillian", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 9])
    parser.add_argument("--times", type=int, default=50, help="log-spaced output times")
    parser.add_argument("--t-min", type=float, default=1e-2)
    parser.add_argument("--t-max", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--no-reference", action="store_true", help="skip expm_multiply (large N)")
    args, petsc_args = parser.parse_known_args(argv)
    liouvillian.init_petsc([sys.argv[0]] + petsc_args)
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    root = comm.rank == 0
    times = np.logspace(np.log10(args.t_min), np.log10(args.t_max), args.times)
    request = Request(concurrence=True)

    def say(*a):
        if root:
            print(*a, flush=True)

    say(f"Engine 2 vs scipy expm_multiply: {args.times} log-spaced times in [{args.t_min:g}, "
        f"{args.t_max:g}], {comm.size} rank(s); options: {' '.join(petsc_args) or '(defaults)'}")
    say(f"{'N':>3} {'||G||_1':>8} {'MFN':>14} {'assembly[s]':>11} {'evolve[s]':>10} {'peak[GB]':>9} "
        f"{'scipy[s]':>9} {'speed-up':>8} {'max|dC|':>8}")
    runs = []
    for N in args.sizes:                     # all MFN runs first: the peak RSS is theirs
        real = sample(ModelParams(N=N), args.seed, 0)
        readout = liouvillian.Readout(real, request)
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
            peak = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, op=MPI.MAX)
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
