"""Concurrence of Haar-random N-qubit states (App. C, Fig. 12).

    mpirun -n P python -m mpi4py -m tlsmpi.randomstates --sizes 3 4 5 6 7 --states 100000 \\
        --out randomstates.h5 [--seed 2021] [--per-state]

A random state is a complex Gaussian vector of length 2^N, normalized (uniform on
CP^(2^N - 1)).  State k of size N is drawn from ``default_rng([k, N, seed])`` and
states are dealt out to MPI ranks by index (rank r takes k = r, r + P, ...), so every
per-state number is independent of the rank count.  For each state the concurrence
(Eq. 27) of every pair of qubits is computed and averaged over the N(N-1)/2 pairs;
sums over states are reduced with MPI and rank 0 writes a small HDF5 file:

    /N (n,)  /mean (n,) <C>  /sem (n,)  /count (n,) states  /nonzero (n,) pairs with C > 0
    /per_state/N=<N> (K,)   per-state pair averages, in state order (with --per-state)
    attrs: seed, states, kind = "tlsmpi-randomstates"

`fit_scaling` fits log2(-ln <C>) = log2(a) + b N (Eq. C7).  For N >~ 7, <C> is
exp(-a 2^N) < 1e-7 and a finite sample finds no entangled pair at all, so <C> = 0
exactly: only sizes with at least ``MIN_NONZERO`` entangled pairs enter the fit.
"""
import argparse
import sys

import numpy as np

from .physics.measures import concurrence

KIND = "tlsmpi-randomstates"
MIN_NONZERO = 10
BATCH = 2048


def random_state(N, index, seed):
    """State ``index`` of size N: a normalized complex Gaussian vector of length 2^N."""
    rng = np.random.default_rng([index, N, seed])
    psi = rng.standard_normal(2**N) + 1j * rng.standard_normal(2**N)
    return psi / np.linalg.norm(psi)


def pair_density_matrices(psi, N):
    """rho_ij for all pairs i < j of a stack of states psi (B, 2^N): shape (B, npairs, 4, 4)."""
    B = psi.shape[0]
    a = psi.reshape((B,) + (2,) * N)
    out = []
    for i in range(N - 1):
        for j in range(i + 1, N):
            m = np.moveaxis(a, (i + 1, j + 1), (1, 2)).reshape(B, 4, -1)
            out.append(m @ m.conj().swapaxes(1, 2))
    return np.stack(out, 1)


def state_concurrences(N, indices, seed):
    """Per-state pair-averaged concurrence and the number of entangled pairs of each state."""
    mean, nonzero = [], []
    for start in range(0, len(indices), BATCH):
        psi = np.array([random_state(N, k, seed) for k in indices[start:start + BATCH]])
        C = concurrence(pair_density_matrices(psi, N))
        mean.append(C.mean(1))
        nonzero.append((C > 0).sum(1))
    if not mean:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(mean), np.concatenate(nonzero).astype(np.int64)


def fit_scaling(N, mean, sem, nonzero, min_nonzero=MIN_NONZERO):
    """log2(-ln <C>) = log2(a) + b N (Eq. C7, Fig. 12), weighted least squares.

    Sizes with fewer than ``min_nonzero`` entangled pairs (or <C> >= 1) are left out.
    The error of y = log2(-ln <C>) is sem / (<C> |ln <C>| ln 2).  Returns a dict with a,
    a_err, b, b_err, chi2_dof, N_used; parameter errors come from the weighted fit's
    covariance, scaled by sqrt(chi2/dof) when that exceeds 1.
    """
    N, mean, sem, nonzero = (np.asarray(x, dtype=float) for x in (N, mean, sem, nonzero))
    use = (nonzero >= min_nonzero) & (mean > 0) & (mean < 1) & (sem > 0)
    out = {"N_used": [int(n) for n in N[use]]}
    if use.sum() < 2:
        return {**out, "a": np.nan, "a_err": np.nan, "b": np.nan, "b_err": np.nan,
                "chi2_dof": np.nan}
    x, m, s = N[use], mean[use], sem[use]
    y = np.log2(-np.log(m))
    sy = s / (m * np.abs(np.log(m)) * np.log(2))
    A = np.stack([np.ones_like(x), x], 1) / sy[:, None]
    cov = np.linalg.inv(A.T @ A)
    p = cov @ (A.T @ (y / sy))
    dof = len(x) - 2
    chi2 = float(((A @ p - y / sy) ** 2).sum() / dof) if dof > 0 else np.nan
    if dof > 0 and chi2 > 1:
        cov = cov * chi2
    a = 2 ** p[0]
    return {**out, "a": float(a), "a_err": float(a * np.log(2) * np.sqrt(cov[0, 0])),
            "b": float(p[1]), "b_err": float(np.sqrt(cov[1, 1])), "chi2_dof": chi2}


def run(sizes, states, seed, comm, per_state=False):
    """Compute on all ranks of ``comm``; rank 0 gets the dict of results (others None)."""
    from mpi4py import MPI
    res = {"N": np.array(sizes), "mean": [], "sem": [], "count": [], "nonzero": [],
           "per_state": {}}
    for N in sizes:
        mine = np.arange(comm.rank, states, comm.size)
        c, nz = state_concurrences(N, mine, seed)
        local = np.array([c.sum(), (c * c).sum(), len(c), nz.sum()], dtype=float)
        tot = np.zeros_like(local)
        comm.Reduce(local, tot, op=MPI.SUM, root=0)
        if per_state:
            parts = comm.gather(c, root=0)
        if comm.rank == 0:
            s, s2, n, nzs = tot
            mean = s / n
            var = max(s2 / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else np.nan
            res["mean"].append(mean)
            res["sem"].append(np.sqrt(var / n))
            res["count"].append(int(n))
            res["nonzero"].append(int(nzs))
            if per_state:
                full = np.empty(states)
                for r, part in enumerate(parts):
                    full[r::comm.size] = part
                res["per_state"][N] = full
    return res if comm.rank == 0 else None


def write(path, res, seed, states):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs.update(kind=KIND, seed=seed, states=states)
        for key in ("N", "mean", "sem", "count", "nonzero"):
            f[key] = np.asarray(res[key])
        for N, values in res["per_state"].items():
            f[f"per_state/N={N}"] = values


def read(path):
    """The dict written by `write`; raises ValueError if the file is not one."""
    import h5py
    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != KIND:
            raise ValueError(f"{path}: not a tlsmpi random-state file")
        out = {k: f[k][...] for k in ("N", "mean", "sem", "count", "nonzero")}
        out["seed"], out["states"] = int(f.attrs["seed"]), int(f.attrs["states"])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tlsmpi.randomstates",
                                description="Average concurrence of Haar-random states (App. C).")
    p.add_argument("--sizes", type=int, nargs="+", required=True, help="qubit numbers N >= 2")
    p.add_argument("--states", type=int, required=True, help="random states per size")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--per-state", action="store_true", help="also store every state's value")
    args = p.parse_args(argv)
    if min(args.sizes) < 2 or args.states < 2:
        p.error("need N >= 2 and at least 2 states")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    res = run(args.sizes, args.states, args.seed, comm, args.per_state)
    if comm.rank == 0:
        write(args.out, res, args.seed, args.states)
        fit = fit_scaling(res["N"], res["mean"], res["sem"], res["nonzero"])
        for N, m, s, nz in zip(res["N"], res["mean"], res["sem"], res["nonzero"]):
            print(f"N = {N:2d}: <C> = {m:.6g} ± {s:.2g} ({nz} entangled pairs)")
        print(f"fit over N = {fit['N_used']}: a = {fit['a']:.4g} ± {fit['a_err']:.2g}, "
              f"b = {fit['b']:.4g} ± {fit['b_err']:.2g} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
