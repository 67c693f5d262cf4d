"""Which pairs carry the late concurrence (docs/beta.md, the asymptotic argument)?

    python tools/beta_pairs.py [--N 32] [--realizations 400] [--set model.K=V ...]

For realizations 0 .. R-1 of the run/beta.toml model (seed 2021, as the runs) the
concurrence C_ij(t) of every pair at the times `TIMES` (hbar/W) by Engine 1's pair
states; for the entangled pairs (C_ij > 0) the site factors a = gamma eps / h nu of the
two TLSs (Eq. 22), the coupling |J_ij| t, r_ij^3 t (nm^3 hbar/W) and the dephasing |J|-sum
G_i t = t sum_{k != i, j} |J_ik| of the pair's TLSs.  The table has per time: entangled
pairs per realization (with its Poisson standard error), realizations with one, and the
medians of max(a_i, a_j) t, |J_ij| t, r_ij^3 t and max(G_i, G_j) t over the entangled
pairs (docs/beta.md: the first three tend to constants if C ~ t^-3 by its argument), and the
fraction of them with max(a_i, a_j) < `A_SMALL` (of all pairs: the last line).
"""
import argparse

import numpy as np

from tlsmpi import config
from tlsmpi.engines.exact import pair_rdms
from tlsmpi.physics.measures import concurrence
from tlsmpi.physics.model import sample

TIMES = np.array([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0])
A_SMALL = 0.25


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=32)
    parser.add_argument("--realizations", type=int, default=400)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args(argv)
    cfg = config.load("run/beta.toml", [f"model.N={args.N}", *args.sets])
    params = cfg.cases()[0]
    iu = np.triu_indices(args.N, 1)
    found = [[] for _ in TIMES]
    realizations_with = np.zeros(len(TIMES), dtype=int)
    all_small = []
    for r in range(args.realizations):
        real = sample(params, cfg.seed, r)
        C = concurrence(pair_rdms(real, TIMES))                   # (pairs, T)
        a = params.gamma * real.eps / real.nu
        absJ = np.abs(real.J)
        G = absJ.sum(1)
        r3 = real.distances()**3
        all_small.append(np.maximum(a[iu[0]], a[iu[1]]) < A_SMALL)
        for k, t in enumerate(TIMES):
            hit = np.flatnonzero(C[:, k] > 0)
            realizations_with[k] += len(hit) > 0
            for p in hit:
                i, j = iu[0][p], iu[1][p]
                dephase = max(G[i] - absJ[i, j], G[j] - absJ[i, j]) * t
                found[k].append((max(a[i], a[j]) * t, absJ[i, j] * t, r3[i, j] * t, dephase,
                                 C[p, k]))
    print(f"N = {args.N}, {args.realizations} realizations, "
          f"{' '.join(args.sets) or 'paper model'}; medians over the entangled pairs")
    print("t      pairs/realization     realizations  max(a)t  |J|t     r^3 t    max(G)t  "
          f"C_ij     max(a)<{A_SMALL}")
    for k, t in enumerate(TIMES):
        n = len(found[k])
        rate = n / args.realizations
        med = np.median(np.array(found[k]), 0) if n else [np.nan] * 5
        small = np.mean([f[0] < A_SMALL * t for f in found[k]]) if n else np.nan
        print(f"{t:<6g} {rate:9.4g} +- {np.sqrt(n) / args.realizations:<9.2g} "
              f"{realizations_with[k]:8d}     " + "  ".join(f"{m:7.3g}" for m in med)
              + f"  {small:8.3f}")
    print(f"all pairs: max(a) < {A_SMALL} for {np.mean(np.concatenate(all_small)):.3f}")


if __name__ == "__main__":
    main()
