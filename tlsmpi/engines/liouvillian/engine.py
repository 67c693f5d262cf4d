"""Engine 2 in the registry (`LiouvillianEngine`) and its entry point `compute`, which
picks the spectral path or MFN stepping for each realization (docs/liouvillian.md).
"""
import logging

import numpy as np

from ...errors import ConfigError, SolverError
from ..base import Engine, Interrupted, never, register
from .basis import PauliReadout, label, output_times
from .cost import (BASELINE, flipflop_kind, mean_nnz_per_row, mfn_memory, mfn_solves,
                   prefer_spectral, spectral_seconds)
from .mfn import Evolution, init_petsc, unused_petsc_options, versions
from .spectral import (METHODS, SPECTRAL_COND_MAX, block_size, delta_m_needed,
                       spectral_coefficients, spectral_refusal, use_spectral)

log = logging.getLogger("tlsmpi")


def compute(real, times, request, comm=None, method="auto", checkpoint=never):
    """Engine 2 entry point: the observables of ``request`` for one realization.

    With the spectral path (`prefer_spectral`; rank 0 of ``comm`` alone) c(t) comes from
    the eigendecomposition of the Delta m blocks (`Spectral`); otherwise, or if that is
    ill-conditioned, c(t) = exp(G t) c(0) is evolved from output time to output time
    with SLEPc MFN (FN exp, scale = t_k - t_{k-1}, the first interval from t = 0) on the
    ranks of ``comm`` (an mpi4py communicator; None = this process alone).  Every rank
    returns the same dict of (T,) arrays.  Raises SolverError on every rank if a solve
    does not converge or gives non-finite numbers, and `Interrupted` on every rank
    when ``checkpoint(comm)`` (`tlsmpi.engines.Engine.checkpoint`) stops: before each
    MFN solve, collective on ``comm``; before each block of the spectral path, rank 0
    deciding alone (the others wait for its result).
    """
    from mpi4py import MPI
    comm = MPI.COMM_SELF if comm is None else comm
    t = output_times(times)
    readout = PauliReadout(real, request)
    root = comm.Get_rank() == 0
    coeffs = None
    spectral = False
    protocol = request.protocol
    if protocol.free and prefer_spectral(real, t, request, method):
        if root:
            try:
                coeffs = spectral_coefficients(real, t, readout.indices, checkpoint)
                spectral = coeffs is not None
            except Interrupted:        # rank 0 decides alone: the others wait in bcast
                spectral = None
        spectral = comm.bcast(spectral, root=0)
        if spectral is None:
            raise Interrupted
    if not spectral:
        with Evolution(real, comm, checkpoint) as evo:
            coeffs = evo.run(t, readout.indices, protocol, protocol.select.mask(real))
    result = None
    if root:
        try:
            result = readout.observables(coeffs)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
            result = SolverError(f"{label(real)}: observables failed: {err}")
    result = comm.bcast(result, root=0)
    if isinstance(result, SolverError):
        raise result
    return result


@register
class LiouvillianEngine(Engine):
    """Engine 2 in the registry: one realization on a group of ranks (PETSc matrix), or
    the spectral path on the group's rank 0 (``engine.method``, `use_spectral`)."""
    name = "liouvillian"
    kinds = ("site", "pair", "subsystem")
    pulses = True
    parallel = True
    solver_options = True
    option_schema = {"method": ("auto", lambda v: v in METHODS,
                          "one of \"auto\" (eigendecomposition of the Delta m blocks where "
                          "possible, else MFN), \"mfn\", \"spectral\"")}
    option_docs = {"method": '"auto", "mfn" or "spectral" (docs/liouvillian.md, "Long windows")'}

    def check(self, cases, request):
        """Refuse method = "spectral" where it cannot run; log the path of every N."""
        if not request.protocol.free and self.options["method"] == "spectral":
            raise ConfigError(f'engine.method = "spectral" with protocol.kind = '
                              f'"{request.protocol.kind}": pulses are applied between MFN '
                              'solves; set engine.method = "mfn" or "auto"')
        said = set()
        for p in cases:
            spectral = use_spectral(p, self.options["method"])
            if spectral:
                sizes = [block_size(p.N, dm) for dm in range(delta_m_needed(p.N, request) + 1)]
                where = "" if self.options["method"] == "spectral" else (
                    " where predicted faster than MFN stepping "
                    f"(~{spectral_seconds(p, request):.2g} s "
                    "against MFN's growth with the window)")
                line = (f"engine.method = {self.options['method']!r}, N = {p.N}: spectral "
                        f"path{where}, "
                        f"eigendecomposition of the Delta m = 0..{len(sizes) - 1} blocks ({sizes} "
                        "elements); MFN stepping for a realization with condition number > "
                        f"{SPECTRAL_COND_MAX:.2g}")
            else:
                why = "" if self.options["method"] == "mfn" else f" ({spectral_refusal(p)})"
                line = f"engine.method = {self.options['method']!r}, N = {p.N}: MFN stepping{why}"
            if line not in said:
                log.info(line)
                said.add(line)

    def memory(self, params, times, request, ranks=1):
        """`mfn_memory` plus the T x 16 pairs Pauli coefficients and pair states of
        the outputs, or for the spectral path the largest block's G, V, its LU
        factors and eig's work space (4 n^2 complex numbers), if more."""
        pairs = max(1, params.N * (params.N - 1) // 2)
        outputs = 640.0 * len(times) * pairs / ranks   # coefficients and pair states at all times
        mfn = mfn_memory(params.N, ranks, flipflop=flipflop_kind(params)) + outputs
        if not use_spectral(params, self.options["method"]):
            return mfn
        return max(mfn, 64.0 * block_size(params.N, 0) ** 2 + BASELINE)

    def cost(self, params, times, request, draw):
        """The path `prefer_spectral` picks: `spectral_seconds`, or for MFN the
        matrix-vector products x entries, 4^N nnz/row x `mfn_solves` (only ratios matter
        to the scheduler)."""
        real = draw()
        if prefer_spectral(real, times, request, self.options["method"]):
            return spectral_seconds(params, request)
        return (
            4.0**params.N
            * mean_nnz_per_row(params.N, flipflop_kind(params))
            * mfn_solves(real, times)
            * 2e-8
        )

    def init(self, argv):
        init_petsc(argv)

    def unused_options(self):
        return unused_petsc_options()

    def versions(self):
        return versions()

    def compute(self, real, times, request, comm=None):
        return compute(real, times, request, comm, self.options["method"], self.checkpoint)
