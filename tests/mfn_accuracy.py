"""Measure the Liouvillian's error in pair density matrices and concurrences against
Engine 1 as a function of -mfn_tol (the table in docs/liouvillian.md).

    ./dev.sh python tests/mfn_accuracy.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from petsc4py import PETSc  # noqa: E402

from tlsmpi.engines import exact, liouvillian  # noqa: E402
from tlsmpi.physics.model import ModelParams, sample  # noqa: E402
from tlsmpi.physics.measures import concurrence  # noqa: E402
from tlsmpi.physics.observables import Request  # noqa: E402


def main(N=6, tols=(1e-4, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-14)):
    times = np.logspace(-1, 2, 10)
    reals = [sample(ModelParams(N=N, epsilon=e, eta=1e4, T_K=T), 5, k)
             for e, T in ((0.0, 0.0), (1.0, 50.0)) for k in (2, 3, 4)]
    readouts = [liouvillian.PauliReadout(r, Request()) for r in reals]
    refs = [exact.pair_rdms(r, times).swapaxes(0, 1) for r in reals]       # (T, pairs, 4, 4)
    options = PETSc.Options()
    print(
        f"{'-mfn_tol':>9} {'max|drho|':>10} {'max|dC_ij|':>11} {'max|dC(t)|':>11} {'time [s]':>9}"
    )
    for tol in tols:
        options.setValue("mfn_tol", str(tol))
        d_rho = d_C = d_avg = 0.0
        t0 = time.perf_counter()
        for real, readout, ref in zip(reals, readouts, refs):
            with liouvillian.Evolution(real) as evo:
                c = evo.run(times, readout.indices)
            rho = liouvillian.density_from_pauli(c[:, readout.pair_pos], 2)
            C, C_ref = concurrence(rho), concurrence(ref)
            d_rho = max(d_rho, np.abs(rho - ref).max())
            d_C = max(d_C, np.abs(C - C_ref).max())
            d_avg = max(d_avg, np.abs(C.sum(1) - C_ref.sum(1)).max() / N)
        print(f"{tol:>9.0e} {d_rho:>10.1e} {d_C:>11.1e} {d_avg:>11.1e} "
              f"{time.perf_counter() - t0:>9.2f}")
    options.delValue("mfn_tol")


if __name__ == "__main__":
    main()
