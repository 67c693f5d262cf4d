"""The cost and memory models of Engine 2: bytes per rank of the MFN path, predicted
seconds of either path, and the choice between them (`prefer_spectral`;
docs/liouvillian.md, docs/performance.md).  No PETSc.
"""
import numpy as np

from .generator import CHUNK_ROWS, norm1_estimate, pair_block, site_block
from .spectral import block_size, delta_m_needed, use_spectral

#: Each MFN solve covers at most ||G||_1 h = STEP_NORM (option -tlsmpi_step_norm): restarted
#: Krylov cost grows faster than linearly in ||G|| h, so long intervals are split into substeps.
STEP_NORM = 100.0
#: Seconds per n^3 of a complex n x n eig with eigenvectors plus the LU of V, one core; a
#: real one (the Delta m = 0 block) costs a quarter (fitted to python -m tlsmpi.bench
#: liouvillian --window; docs/performance.md, "Liouvillian over long windows").
EIG_SECONDS = 2.3e-9
#: Seconds of one MFN solve (default options, ||G||_1 h <= STEP_NORM) on one core: a fixed
#: part and a part per matrix entry, fitted over the paper's window at N = 5 and 7
#: (docs/liouvillian.md); only for choosing the path (`prefer_spectral`, N <= 7).
MFN_SOLVE_SECONDS, MFN_ENTRY_SECONDS = 8e-3, 6e-8
#: Per-rank baseline of the interpreter, numpy, MPI, PETSc and SLEPc (bytes).
BASELINE = 150e6


def spectral_seconds(params, request):
    """Predicted seconds of the spectral path: EIG_SECONDS n^3 over the needed blocks
    (n^3 / 4 for the real Delta m = 0 block)."""
    return sum(EIG_SECONDS * block_size(params.N, dm) ** 3.0 * (0.25 if dm == 0 else 1.0)
               for dm in range(delta_m_needed(params.N, request) + 1))


def mfn_solves(real, times):
    """MFN solves over ``times``: one per output interval plus the substeps of
    ||G||_1 h <= STEP_NORM (`norm1_estimate`)."""
    return len(times) + norm1_estimate(real) * float(times[-1]) / STEP_NORM


def prefer_spectral(real, times, request, method="auto"):
    """True if the spectral path runs for this realization: engine.method = "spectral",
    or "auto" where `use_spectral` allows it and `spectral_seconds` is below the
    predicted MFN time (`mfn_solves` x (MFN_SOLVE_SECONDS + entries x
    MFN_ENTRY_SECONDS)): the spectral path's cost does not depend on the window, MFN's
    grows with t_max (at N = 7 the spectral path wins from t_max ~ 1e3)."""
    if not use_spectral(real.params, method):
        return False
    if method == "spectral":
        return True
    N = real.N
    entries = 4.0**N * mean_nnz_per_row(N, flipflop_kind(real.params))
    mfn = mfn_solves(real, times) * (MFN_SOLVE_SECONDS + entries * MFN_ENTRY_SECONDS)
    return spectral_seconds(real.params, request) < mfn


def _pair_offdiag(flipflop):
    """Off-diagonal entries of a generic pair block, (mean, max) per row; ``flipflop`` is
    False or the flip-flop form ("exchange" or "xx"; True means "exchange")."""
    form = "exchange" if flipflop is True else (flipflop or "exchange")
    K = 1.0 if flipflop else 0.0
    count = ((pair_block(1.0, K, K, form) != 0) & ~np.eye(16, dtype=bool)).sum(1)
    return count.mean(), count.max()


def mean_nnz_per_row(N, flipflop=False):
    """Average entries per row for generic parameters (all couplings and rates non-zero):
    1 + 3N/4 + N(N-1)/4 without flip-flop terms (``flipflop``: see `_pair_offdiag`)."""
    site = site_block(1.0, 1.0, 1.0)
    per_site = (site[~np.eye(4, dtype=bool)] != 0).sum() / 4
    return 1 + N * per_site + N * (N - 1) / 2 * _pair_offdiag(flipflop)[0]


def mfn_memory(N, nranks, ncv=30, flipflop=False):
    """Bytes per rank: AIJ matrix (8-byte values, 4-byte column indices, ~4 ints of row
    bookkeeping per row), ncv + 4 vectors (Krylov basis, state, result, work), ghost
    values and communication buffers (two vectors' worth when nranks > 1), the assembly
    chunk temporaries and a fixed baseline."""
    rows = 4**N / nranks
    matrix = rows * (mean_nnz_per_row(N, flipflop) * 12 + 16)
    vectors = (ncv + 4 + (2 if nranks > 1 else 0)) * rows * 8
    slots = 1 + N + N * (N - 1) / 2 * _pair_offdiag(flipflop)[1]
    assembly = min(CHUNK_ROWS, rows) * slots * 40
    return matrix + vectors + assembly + BASELINE


def flipflop_kind(params):
    """The ``flipflop`` argument of the memory model for ``params``."""
    return params.flipflop_form if params.flipflop else False
