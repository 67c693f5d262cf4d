"""Random-state concurrence (App. C): analytic N = 2 value, an independent Wootters check,
the fit, and the MPI reduction against the serial result."""
import math
import os
import shutil
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest

import concurrence_states
import randomstates_reference as reference
from tlsmpi import randomstates as rs
from tolerances import rounding, summed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_qubit_haar_average_is_3pi_over_16():
    """<C> = 3 pi / 16 for Haar-random pure two-qubit states (C = 2|ad - bc|)."""
    c, nz = rs.state_concurrences(2, np.arange(20000), seed=11)
    sem = c.std(ddof=1) / math.sqrt(len(c))
    assert abs(c.mean() - 3 * math.pi / 16) < 4 * sem
    psi = np.array([rs.random_state(2, k, 11) for k in range(5)])
    # a few rounded operations on amplitudes <= 1
    assert (
        np.abs(c[:5] - 2 * np.abs(psi[:, 0] * psi[:, 3] - psi[:, 1] * psi[:, 2])).max() < rounding()
    )


def pair_states_mp(psi, N):
    """rho_ij of the pure state psi for every pair i < j, traced in 40-digit arithmetic
    from the exact double amplitudes (so positive semi-definite to 1e-40)."""
    with mp.workdps(concurrence_states.DIGITS):
        amp = [mp.mpc(complex(a)) for a in psi]
        out = []
        for i in range(N):
            for j in range(i + 1, N):
                rho = mp.zeros(4, 4)
                for x in range(2**N):
                    for y in range(2**N):
                        bx, by = ([(x >> (N - 1 - k)) & 1 for k in range(N)],
                                  [(y >> (N - 1 - k)) & 1 for k in range(N)])
                        if all(bx[k] == by[k] for k in range(N) if k not in (i, j)):
                            rho[2 * bx[i] + bx[j], 2 * by[i] + by[j]] += amp[x] * mp.conj(amp[y])
                out.append(rho)
        return out


@pytest.mark.parametrize("N", [3, 4])
def test_pair_average_against_explicit_partial_traces(N):
    """The pair average against Wootters' formula in 40 digits on partial traces taken
    independently; C <= 1 per pair, averaged over N(N-1)/2 pairs (scale 1)."""
    seed, K = 5, 4
    got, _ = rs.state_concurrences(N, np.arange(K), seed)
    for k in range(K):
        with mp.workdps(concurrence_states.DIGITS):
            vals = [
                concurrence_states.reference(r)
                for r in pair_states_mp(rs.random_state(N, k, seed), N)
            ]
            want = float(sum(vals) / len(vals))
        assert abs(got[k] - want) < rounding(), (k, got[k] - want)


def test_fit_recovers_a_b_and_skips_empty_sizes():
    N = np.arange(2, 9)
    a, b = 0.13, 1.01
    mean = np.exp(-a * 2 ** (b * N))
    sem = 1e-3 * mean
    nonzero = np.array([100] * 5 + [3, 0])
    mean[-1] = 0.0
    fit = rs.fit_scaling(N, mean, sem, nonzero)
    assert fit["N_used"] == [2, 3, 4, 5, 6]
    assert fit["a"] == pytest.approx(a, rel=1e-6) and fit["b"] == pytest.approx(b, rel=1e-6)
    assert 0 < fit["b_err"] < 1e-2


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun")
def test_mpi_reduction_matches_serial(tmp_path):
    h5py = pytest.importorskip("h5py")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "rs.h5"
    args = ["-m", "tlsmpi.randomstates", "--sizes", "3", "4", "--states", "301", "--seed", "9",
            "--per-state", "--out", str(out)]
    subprocess.run(["mpirun", "-n", "2", sys.executable, "-m", "mpi4py"] + args, check=True,
                   env=env, cwd=tmp_path, capture_output=True, timeout=300)
    with h5py.File(out, "r") as f:
        for k, N in enumerate((3, 4)):
            serial, nz = rs.state_concurrences(N, np.arange(301), 9)
            assert np.array_equal(f[f"per_state/N={N}"][...], serial)          # bit for bit
            # the reduction sums the 301 values (and their squares) in another order; the
            # variance loses a further factor mean^2 / variance to cancellation
            assert abs(f["mean"][k] / serial.mean() - 1) < summed(301)
            cancel = 1 + serial.mean() ** 2 / serial.var()
            assert abs(f["sem"][k] / (serial.std(ddof=1) / math.sqrt(301)) - 1) < summed(
                301, cancel
            )
            assert f["count"][k] == 301 and f["nonzero"][k] == nz.sum()
    data = rs.read(str(out))
    assert data["states"] == 301 and data["seed"] == 9


@pytest.mark.parametrize("N", [2, 3, 4, 5, 6, 7])
def test_states_bit_for_bit_as_one_generator_per_state(N):
    """The vectorized seeding gives every state's amplitudes and pair average exactly as
    ``default_rng([k, N, seed])`` per state (tests/randomstates_reference.py), across a batch
    boundary, at the largest 32-bit index and past it (numpy's own generator then)."""
    idx = np.r_[0:40, rs.BATCH - 3:rs.BATCH + 3, 2**32 - 3:2**32 + 2]
    for seed in (2021, 0, 2**32 + 7):
        got = rs.random_states(N, idx, seed)
        want = np.array([reference.random_state(N, int(k), seed) for k in idx])
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), seed
    idx = np.arange(rs.BATCH + 5)
    for got, want in zip(rs.state_concurrences(N, idx, 3),
                         reference.state_concurrences(N, idx, 3)):
        assert np.array_equal(got, want) and got.dtype == want.dtype
