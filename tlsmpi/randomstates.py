"""Concurrence of Haar-random N-qubit states (App. C, Fig. 12).

    mpirun -n P python -m mpi4py -m tlsmpi.randomstates --sizes 3 4 5 6 7 --states 100000 \\
        --out randomstates.h5 [--seed 2021] [--first-state K] [--per-state]

A random state is a complex Gaussian vector of length 2^N, normalized (uniform on
CP^(2^N - 1)).  State k of size N is drawn from ``default_rng([k, N, seed])`` and
the file holds states k = K ... K + states - 1 (``--first-state K``, default 0), dealt out
to MPI ranks by index (rank r takes k = K + r, K + r + P, ...), so every per-state number
is independent of the rank count and of how the states are split into files.  For each
state the concurrence (Eq. 27) of every pair of qubits is computed and averaged over the
N(N-1)/2 pairs; sums over states are reduced with MPI and rank 0 writes a small HDF5 file
under a temporary name, renamed when complete (a killed run leaves no file at ``--out``):

    /N (n,)  /mean (n,) <C>  /sem (n,)  /count (n,) states  /nonzero (n,) pairs with C > 0
    /sum (n,)  /sum2 (n,)   sums of the per-state values and of their squares
    /per_state/N=<N> (K,)   per-state pair averages, in state order (with --per-state)
    attrs: seed, states, first_state, kind = "tlsmpi-randomstates"

`combine` pools files of disjoint state ranges of one seed and one set of sizes (a long
run made as chunks, docs/post.md); files written before ``first_state`` and ``sum`` existed
read as states 0 ... states - 1 with the sums recovered from mean and sem.

`fit_scaling` fits log2(-ln <C>) = log2(a) + b N (Eq. C7).  For N >~ 7, <C> is
exp(-a 2^N) < 1e-7 and a finite sample finds no entangled pair at all, so <C> = 0
exactly: only sizes with at least ``MIN_NONZERO`` entangled pairs enter the fit.
"""
import argparse
import os
import sys

import numpy as np

from .physics.measures import concurrence

KIND = "tlsmpi-randomstates"
MIN_NONZERO = 10
BATCH = 2048


def random_state(N, index, seed):
    """State ``index`` of size N: a normalized complex Gaussian vector of length 2^N."""
    return random_states(N, [index], seed)[0]


# numpy's SeedSequence (O'Neill's seed_seq_fe, pool of 4 words) and PCG64's seeding,
# vectorized over the state index; `random_states` checks the result against numpy
_HASH_A, _MULT_A, _HASH_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _POOL = 0xCA01F9DD, 0x4973F715, 4
_PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341
_MASK128 = (1 << 128) - 1


def _seed_words(entropy):
    """SeedSequence(entropy[b]).generate_state(4, uint64) for every row of the uint32 words
    ``entropy`` (B, n), as uint64 (B, 4) (numpy.random.SeedSequence, bit for bit)."""
    h = _HASH_A

    def hashmix(v):
        nonlocal h
        v = v ^ np.uint32(h)
        h = (h * _MULT_A) & 0xFFFFFFFF
        v = v * np.uint32(h)
        return v ^ (v >> np.uint32(16))

    def mix(x, y):
        r = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return r ^ (r >> np.uint32(16))

    with np.errstate(over="ignore"):
        zero = np.zeros(len(entropy), np.uint32)
        pool = [hashmix(entropy[:, i] if i < entropy.shape[1] else zero) for i in range(_POOL)]
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL, entropy.shape[1]):
            for dst in range(_POOL):
                pool[dst] = mix(pool[dst], hashmix(entropy[:, src]))
        h, out = _HASH_B, []
        for i in range(2 * _POOL):
            v = pool[i % _POOL] ^ np.uint32(h)
            h = (h * _MULT_B) & 0xFFFFFFFF
            v = v * np.uint32(h)
            out.append(v ^ (v >> np.uint32(16)))
    return np.ascontiguousarray(np.stack(out, 1).astype("<u4")).view("<u8")


def _pcg64_state(words):
    """PCG64's internal (state, inc) after seeding with the 4 words (pcg64_set_seed)."""
    w0, w1, w2, w3 = (int(x) for x in words)
    inc = ((((w2 << 64) | w3) << 1) | 1) & _MASK128
    state = (inc + ((w0 << 64) | w1)) & _MASK128
    return (state * _PCG_MULT + inc) & _MASK128, inc


def random_states(N, indices, seed):
    """States ``indices`` of size N (B, 2^N), each bit for bit ``default_rng([k, N, seed])``'s
    normalized complex Gaussian vector, without building B generators: the seed words are
    hashed for all k at once and one generator is set to each state's seeded PCG64 state."""
    indices = np.asarray(indices, dtype=np.int64)
    n = 2**N
    if not all(0 <= int(v) < 2**32 for v in (N, seed)) or (
            len(indices) and not 0 <= indices.min() <= indices.max() < 2**32):
        # entropy of other than three 32-bit words: numpy's own generator per state
        draws = np.array([np.random.default_rng([int(k), N, seed]).standard_normal(2 * n)
                          for k in indices]).reshape(len(indices), 2 * n)
    else:
        entropy = np.stack([indices.astype(np.uint32), np.full(len(indices), N, np.uint32),
                            np.full(len(indices), seed, np.uint32)], 1)
        rng = np.random.Generator(np.random.PCG64(0))
        bits = rng.bit_generator
        fresh = bits.state
        draws = np.empty((len(indices), 2 * n))
        for row, words in zip(draws, _seed_words(entropy)):
            state, inc = _pcg64_state(words)
            fresh["state"] = {"state": state, "inc": inc}
            bits.state = fresh
            rng.standard_normal(out=row)     # the real parts, then the imaginary parts
    psi = draws[:, :n] + 1j * draws[:, n:]
    norm = np.array([np.linalg.norm(row) for row in psi])
    return psi / norm[:, None]


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
        psi = random_states(N, indices[start:start + BATCH], seed)
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


def run(sizes, states, seed, comm, per_state=False, first_state=0):
    """States ``first_state`` ... ``first_state + states - 1`` of every size, computed on all
    ranks of ``comm``; rank 0 gets the dict of results (others None)."""
    from mpi4py import MPI
    res = {"N": np.array(sizes), "mean": [], "sem": [], "count": [], "nonzero": [],
           "sum": [], "sum2": [], "per_state": {}}
    for N in sizes:
        mine = np.arange(first_state + comm.rank, first_state + states, comm.size)
        c, nz = state_concurrences(N, mine, seed)
        local = np.array([c.sum(), (c * c).sum(), len(c), nz.sum()], dtype=float)
        tot = np.zeros_like(local)
        comm.Reduce(local, tot, op=MPI.SUM, root=0)
        if per_state:
            parts = comm.gather(c, root=0)
        if comm.rank == 0:
            s, s2, n, nzs = tot
            mean, sem = moments(s, s2, n)
            res["mean"].append(mean)
            res["sem"].append(sem)
            res["count"].append(int(n))
            res["nonzero"].append(int(nzs))
            res["sum"].append(s)
            res["sum2"].append(s2)
            if per_state:
                full = np.empty(states)
                for r, part in enumerate(parts):
                    full[r::comm.size] = part
                res["per_state"][N] = full
    return res if comm.rank == 0 else None


def moments(s, s2, n):
    """Mean and standard error of n values from their sum s and sum of squares s2."""
    mean = s / n
    var = max(s2 / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else np.nan
    return mean, np.sqrt(var / n)


def write(path, res, seed, states, first_state=0):
    """Write ``path`` + ".part" and rename it to ``path`` once closed and synced."""
    import h5py
    part = path + ".part"
    with h5py.File(part, "w") as f:
        for key in ("N", "mean", "sem", "count", "nonzero", "sum", "sum2"):
            f[key] = np.asarray(res[key])
        for N, values in res["per_state"].items():
            f[f"per_state/N={N}"] = values
        f.attrs.update(kind=KIND, seed=seed, states=states, first_state=first_state)
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, path)


def read(path):
    """The dict written by `write` (with its ``path``); raises ValueError if the file is
    not one."""
    import h5py
    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != KIND:
            raise ValueError(f"{path}: not a tlsmpi random-state file")
        out = {k: f[k][...] for k in ("N", "mean", "sem", "count", "nonzero")}
        out["seed"], out["states"] = int(f.attrs["seed"]), int(f.attrs["states"])
        out["first_state"] = int(f.attrs.get("first_state", 0))
        if "sum" in f:
            out["sum"], out["sum2"] = f["sum"][...], f["sum2"][...]
        else:   # written before the sums were stored: invert `moments`
            n = out["count"].astype(float)
            out["sum"] = out["mean"] * n
            out["sum2"] = n * (out["sem"] ** 2 * (n - 1) + out["mean"] ** 2)
    out["path"] = path
    return out


def combine(files):
    """One dict (as `read` gives) of the pooled states of ``files``, dicts of `read`.

    The files must share the seed and the sizes and hold disjoint state ranges; counts and
    entangled pairs add exactly, the sums to rounding, and mean and sem follow from the
    pooled sums.  ``ranges`` lists the (first, last + 1) state ranges, sorted; ``paths``
    the files.  Raises ValueError with one line naming the files that cannot be pooled.
    """
    files = sorted(files, key=lambda d: d["first_state"])
    head = files[0]
    for d in files[1:]:
        if d["seed"] != head["seed"]:
            raise ValueError(f"{head['path']} and {d['path']}: random states of seeds "
                             f"{head['seed']} and {d['seed']} cannot be pooled; give the "
                             "files of one seed")
        if not np.array_equal(d["N"], head["N"]):
            raise ValueError(f"{head['path']} and {d['path']}: sizes N = {list(head['N'])} "
                             f"and {list(d['N'])} differ; give files of the same --sizes")
    ranges = [(d["first_state"], d["first_state"] + d["states"]) for d in files]
    reach = 0      # the file reaching furthest so far
    for i, (first, _) in enumerate(ranges[1:], 1):
        if first < ranges[reach][1]:
            raise ValueError(f"{files[reach]['path']} and {files[i]['path']}: state {first} "
                             f"is in both (seed {head['seed']}); give chunks of disjoint "
                             "--first-state ranges")
        reach = i if ranges[i][1] > ranges[reach][1] else reach
    if len(files) == 1:
        return {**head, "ranges": ranges, "paths": [head["path"]]}
    out = {"N": head["N"], "seed": head["seed"], "first_state": head["first_state"],
           "ranges": ranges, "paths": [d["path"] for d in files]}
    for key in ("count", "nonzero", "sum", "sum2"):
        out[key] = np.sum([d[key] for d in files], axis=0)
    out["states"] = int(sum(d["states"] for d in files))
    out["mean"], out["sem"] = (np.array(x) for x in zip(
        *(moments(s, s2, n) for s, s2, n in zip(out["sum"], out["sum2"], out["count"]))))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tlsmpi.randomstates",
                                description="Average concurrence of Haar-random states (App. C).")
    p.add_argument("--sizes", type=int, nargs="+", required=True, help="qubit numbers N >= 2")
    p.add_argument("--states", type=int, required=True, help="random states per size")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--first-state", type=int, default=0,
                   help="index of the first state (chunks of one run: disjoint ranges)")
    p.add_argument("--per-state", action="store_true", help="also store every state's value")
    args = p.parse_args(argv)
    if min(args.sizes) < 2 or args.states < 2 or args.first_state < 0:
        p.error("need N >= 2, at least 2 states and --first-state >= 0")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    res = run(args.sizes, args.states, args.seed, comm, args.per_state, args.first_state)
    if comm.rank == 0:
        write(args.out, res, args.seed, args.states, args.first_state)
        fit = fit_scaling(res["N"], res["mean"], res["sem"], res["nonzero"])
        for N, m, s, nz in zip(res["N"], res["mean"], res["sem"], res["nonzero"]):
            print(f"N = {N:2d}: <C> = {m:.6g} ± {s:.2g} ({nz} entangled pairs)")
        print(f"fit over N = {fit['N_used']}: a = {fit['a']:.4g}, b = {fit['b']:.4g}, "
              f"chi2/dof {fit['chi2_dof']:.3g} (its chi^2 test and errors: python -m "
              f"tlsmpi.post fig12 {args.out}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
