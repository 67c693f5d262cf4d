"""Engine 2 on PETSc/SLEPc: the options database, the distributed assembly of the
generator (`generator.Generator`), MFN stepping c(t) = exp(G t) c(0) between output
times, pulses, and the readout of the coefficients on rank 0 (docs/liouvillian.md).

Rows are distributed over the ranks of a communicator in PETSc's default contiguous
layout; each rank builds its rows with vectorized numpy in chunks (`Generator.csr`).
The MFN object honours the PETSc options database (`init_petsc`, -mfn_type,
-mfn_tol, -mfn_ncv, -log_view ...).  PETSc, SLEPc and MPI are imported inside the
functions, so importing this module loads none of them.
"""
import math
import shlex
import sys

import numpy as np

from ...errors import SolverError
from ..base import never
from .basis import label, output_times
from .cost import STEP_NORM
from .generator import CHUNK_ROWS, Generator

#: MFN defaults unless -mfn_type, -mfn_ncv, -mfn_tol are given (tuned in docs/performance.md).
DEFAULT_TYPE, DEFAULT_NCV, DEFAULT_TOL = "krylov", 8, 1e-10


def init_petsc(argv=None):
    """Initialize PETSc and SLEPc with the command line ``argv`` (a list, e.g. sys.argv):
    its -options reach every PETSc/SLEPc object through setFromOptions.  If PETSc was
    already initialized (imported), the options are inserted into its database instead,
    and -log_view starts logging, so that no option is silently lost."""
    import petsc4py
    import slepc4py
    args = [str(a) for a in (argv or [])]
    already = "petsc4py.PETSc" in sys.modules
    petsc4py.init(args)
    slepc4py.init(args)
    if already and len(args) > 1:
        from petsc4py import PETSc
        options = PETSc.Options()
        options.insertString(" ".join(shlex.quote(a) for a in args[1:]))
        if options.hasName("log_view"):
            PETSc.Log.begin()


def ownership(size, nranks, rank):
    """PETSc's default contiguous row layout (PetscSplitOwnership): (start, stop) of ``rank``."""
    base, extra = divmod(size, nranks)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def assemble(gen, comm):
    """The generator as a preallocated PETSc AIJ matrix on ``comm`` (mpi4py or PETSc comm)."""
    from petsc4py import PETSc
    pcomm = PETSc.Comm(comm)
    start, stop = ownership(gen.size, pcomm.getSize(), pcomm.getRank())
    d_nnz, o_nnz = gen.nnz(start, stop, start, stop)
    A = PETSc.Mat().create(comm=pcomm)
    A.setSizes(((stop - start, gen.size), (stop - start, gen.size)))
    A.setType(PETSc.Mat.Type.AIJ)
    A.setPreallocationNNZ((d_nnz.astype(PETSc.IntType), o_nnz.astype(PETSc.IntType)))
    A.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
    for a in range(start, stop, CHUNK_ROWS):
        b = min(a + CHUNK_ROWS, stop)
        indptr, cols, vals = gen.csr(a, b)
        A.setValuesIJV(indptr.astype(PETSc.IntType), cols.astype(PETSc.IntType), vals,
                       rowmap=np.arange(a, b, dtype=PETSc.IntType))
    A.assemble()
    return A


class Evolution:
    """The PETSc/SLEPc objects of one realization on a communicator: the assembled
    generator, two state vectors and the MFN solver (configured from the options
    database).  Use as a context manager so that everything is destroyed.

    ``checkpoint(comm)`` (`tlsmpi.engines.Engine.checkpoint`) is called on every rank
    before each MFN solve; its `Interrupted` leaves `run`."""

    def __init__(self, real, comm=None, checkpoint=never):
        from mpi4py import MPI
        from petsc4py import PETSc
        from slepc4py import SLEPc
        self.comm = MPI.COMM_SELF if comm is None else comm
        self.where = label(real)
        self.checkpoint = checkpoint
        self._objects = []
        self._PETSc = PETSc
        try:
            gen = Generator(real)
            self.A = self._own(assemble(gen, self.comm))
            self.x, self.y = (self._own(v) for v in self.A.createVecs())
            start, stop = self.x.getOwnershipRange()
            self.c0 = gen.initial_coefficients(real.initial_density_matrices(), start, stop)
            self.x.setArray(self.c0)
            self.gen, self.rows = gen, (start, stop)
            self.mfn = self._own(SLEPc.MFN().create(comm=self.A.getComm()))
            self.mfn.setOperator(self.A)
            self.fn = self.mfn.getFN()
            self.fn.setType(SLEPc.FN.Type.EXP)
            self.mfn.setType(DEFAULT_TYPE)
            self.mfn.setDimensions(min(DEFAULT_NCV, gen.size))
            self.mfn.setTolerances(tol=DEFAULT_TOL)
            self.mfn.setFromOptions()
            norm = self.A.norm(PETSc.NormType.NORM_1)
            step_norm = PETSc.Options().getReal("tlsmpi_step_norm", STEP_NORM)
            self.max_step = step_norm / norm if norm > 0 else math.inf
        except BaseException:
            self.destroy()
            raise

    def _own(self, obj):
        self._objects.append(obj)
        return obj

    def destroy(self):
        for obj in reversed(self._objects):
            obj.destroy()
        self._objects = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def step(self, t0, t1):
        """c(t1) = exp(G (t1 - t0)) c(t0) in place, in equal substeps of at most
        ``max_step``; SolverError if an MFN solve fails or gives non-finite numbers."""
        n = max(1, math.ceil((t1 - t0) / self.max_step))
        self.fn.setScale((t1 - t0) / n)
        for _ in range(n):
            self.checkpoint(self.comm)
            self.mfn.solve(self.x, self.y)
            reason = self.mfn.getConvergedReason()
            if reason < 0:
                raise SolverError(
                    f"{self.where}: SLEPc MFN ({self.mfn.getType()}) did not converge on the step "
                    f"t = {t0:.6g} -> {t1:.6g} (reason {_reason_name(reason)} after "
                    f"{self.mfn.getIterationNumber()} iterations; try a larger -mfn_ncv or "
                    f"-mfn_max_it, a smaller -tlsmpi_step_norm, or -mfn_type expokit)")
            if not math.isfinite(self.y.norm()):
                raise SolverError(f"{self.where}: non-finite state on the step t = {t0:.6g} -> "
                                  f"{t1:.6g}")
            self.x, self.y = self.y, self.x

    def run(self, times, indices, protocol=None, pulsed=None):
        """Coefficients c_mu(t) for the global ``indices`` at each of ``times``
        (non-decreasing, from t = 0), gathered on rank 0 of the communicator by a
        VecScatter: (T, len(indices)) there, None on the other ranks.

        With the pi pulses of ``protocol`` (`tlsmpi.physics.pulses.Protocol`, docs/echo.md)
        on the sites ``pulsed`` (mask) every output time is evolved from c(0) through its
        intervals, the pulses applied between them as `pulse_signs`."""
        PETSc = self._PETSc
        t = output_times(times)
        root = self.comm.Get_rank() == 0
        mine = np.asarray(indices if root else [], dtype=PETSc.IntType)
        sel = PETSc.IS().createGeneral(mine, comm=PETSc.COMM_SELF)
        local = PETSc.Vec().createSeq(len(mine), comm=PETSc.COMM_SELF)
        scatter = PETSc.Scatter().create(self.x, sel, local, None)
        coeffs = np.empty((len(t), len(mine)))

        def read(k):
            scatter.scatter(self.x, local, PETSc.InsertMode.INSERT_VALUES,
                            PETSc.ScatterMode.FORWARD)
            coeffs[k] = local.getArray(readonly=True)
        try:
            if protocol is None or protocol.free:
                t_prev = 0.0
                for k, tk in enumerate(t):
                    if tk > t_prev:
                        self.step(t_prev, tk)
                        t_prev = tk
                    read(k)
            else:
                self._run_pulsed(t, protocol, pulsed, read)
        finally:
            for obj in (scatter, local, sel):
                obj.destroy()
        return coeffs if root else None

    def _run_pulsed(self, t, protocol, pulsed, read):
        signs = pulse_signs(self.gen, protocol, pulsed, *self.rows)
        for idx, durations in protocol.segments(t):
            for k, steps in zip(idx, durations):
                self.x.setArray(self.c0)
                now = 0.0
                for q, dt in enumerate(steps):
                    if q:
                        self.x.setArray(self.x.getArray(readonly=True) * signs)
                    if dt > 0:
                        self.step(now, now + dt)
                        now += dt
                read(k)


def pulse_signs(gen, protocol, pulsed, start, stop):
    """The pi pulses of ``protocol`` on the sites ``pulsed`` (mask) as a map of the Pauli
    coefficients of rows [start, stop): S^a rho S^a keeps P_a and 1 and flips the sign of
    the two other Paulis on each pulsed site (docs/echo.md), so c_mu -> +-c_mu."""
    flip = (2, 3) if protocol.axis == "x" else (1, 3)
    d = gen.digits(np.arange(start, stop, dtype=np.int64))
    odd = (np.isin(d, flip) & pulsed[None, :]).sum(1) % 2
    return 1.0 - 2.0 * odd


def _reason_name(reason):
    from slepc4py import SLEPc
    names = {v: k for k, v in vars(SLEPc.MFN.ConvergedReason).items() if not k.startswith("_")}
    return names.get(reason, str(reason))


def _petsc_library():
    """Path of the PETSc shared library loaded by petsc4py (from /proc/self/maps)."""
    import re
    with open("/proc/self/maps") as fh:
        found = re.findall(r"(/\S*libpetsc\S*\.so\S*)", fh.read())
    return found[0] if found else "libpetsc.so"


def unused_petsc_options():
    """Options of the PETSc database that nothing read, after a probe MFN on a 1 x 1
    matrix has read its options as every realization's solver does (PETSc's
    PetscOptionsLeftGet, called through ctypes: petsc4py does not wrap it)."""
    import ctypes
    from petsc4py import PETSc
    from slepc4py import SLEPc
    A = PETSc.Mat().createAIJ([1, 1], nnz=1, comm=PETSc.COMM_SELF)
    A.setValue(0, 0, 0.0)
    A.assemble()
    mfn = SLEPc.MFN().create(comm=PETSc.COMM_SELF)
    try:
        mfn.setOperator(A)
        mfn.getFN().setType(SLEPc.FN.Type.EXP)
        mfn.setFromOptions()
        PETSc.Options().getReal("tlsmpi_step_norm", STEP_NORM)
        lib = ctypes.CDLL(_petsc_library())
        n = ctypes.c_int()
        names = ctypes.POINTER(ctypes.c_char_p)()
        values = ctypes.POINTER(ctypes.c_char_p)()
        if lib.PetscOptionsLeftGet(
            None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values)
        ):
            return []
        left = [names[i].decode() for i in range(n.value)]
        lib.PetscOptionsLeftRestore(
            None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values)
        )
        return left
    finally:
        mfn.destroy()
        A.destroy()


def versions():
    """The PETSc and SLEPc versions, for the run file's provenance."""
    from petsc4py import PETSc
    from slepc4py import SLEPc
    return {"petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
            "slepc_version": ".".join(map(str, SLEPc.Sys.getVersion()))}
