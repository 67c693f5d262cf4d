"""Engine 2: the GKSL generator of Eq. (15) on the 4^N Pauli basis, distributed with
PETSc and evolved with SLEPc MFN (docs/design.md section 5; docs/liouvillian.md).

Pauli basis.  rho = 2^-N sum_mu c_mu P_mu with P_mu = P_{a_0} x ... x P_{a_{N-1}},
P_0..3 = (I, X, Y, Z) in the (up, down) S^z basis, and c_mu = Tr(rho P_mu) real.  The
string index is mu = sum_k a_k 4^(N-1-k): site 0 is the most significant base-4 digit,
the same order as the Kronecker products of tests/dense.py, so reshaping c to (4,)*N
puts site k on axis k.  dc/dt = G c with the real matrix

    G_{nu mu} = 2^-N Tr(P_nu L(P_mu)),

a sum of local blocks (Eqs. 15 and 23): per site the 4x4 block
Tr(P_b L_i(P_a))/2 of -i[-nu_i S^z_i / 2, .] and the dissipator of site i, per pair
i < j the 16x16 block Tr(P_b L_ij(P_a))/4 of -i[h_ij, .] with
h_ij = 2 J_ij S^z_i S^z_j + (flip-flop term), the ordered-pair sums of Eq. (23) and of
the flip-flop term (footnote 67) in the form ``model.flipflop_form``:
K_ij S+_i S-_j + K_ji S-_i S+_j ("exchange") or (K_ij + K_ji) S^x_i S^x_j ("xx").
A pair term is a commutator with strings that have no identity factor, so it changes
both digits of a row: its entries never coincide with the site entries, and each row
is a diagonal plus distinct off-diagonal entries.

Rows are distributed over the ranks of a communicator in PETSc's default contiguous
layout; each rank builds its rows with vectorized numpy in chunks (`Generator.csr`).
The MFN object honours the PETSc options database (`init_petsc`, -mfn_type,
-mfn_tol, -mfn_ncv, -log_view ...).

Spectral path (engine.method, `use_spectral`).  Without flip-flop terms or with the
exchange form, Eq. (15) conserves Delta m = m_ket - m_bra in the ket-bra basis; for
N <= 7 the blocks Delta m = 0 .. 2 (pairs) or .. N/2 (bubbles) are diagonalized once
(`Spectral`) and rho(t) is evaluated at all output times at once, at a cost independent
of the window; an ill-conditioned eigenbasis falls back to MFN.
"""
import logging
import math
import shlex
import sys

import numpy as np

from ..errors import ConfigError, SolverError
from .base import Engine, Interrupted, never, register
from .readout import Readout

log = logging.getLogger("tlsmpi")

#: Single-site Paulis (I, X, Y, Z) in the (up, down) basis; up = S^z = +1.
PAULI = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
_SP = np.array([[0, 2], [0, 0]], dtype=complex)     # S+ = S^x + i S^y
_SM = _SP.T.copy()
_SX, _SZ = PAULI[1], PAULI[3]
#: Single-site ket-bra units |s><s'| with code q = 2 s + s' (s = 0 up, 1 down).
UNITS = np.eye(4).reshape(4, 2, 2)
#: Delta m = m_ket - m_bra of each code (m = number of up spins): |u><d| has +1.
DELTA_M = np.array([0, 1, -1, 0])

#: MFN defaults unless -mfn_type, -mfn_ncv, -mfn_tol are given (tuned in docs/performance.md).
DEFAULT_TYPE, DEFAULT_NCV, DEFAULT_TOL = "krylov", 8, 1e-10
#: Each MFN solve covers at most ||G||_1 h = STEP_NORM (option -tlsmpi_step_norm): restarted
#: Krylov cost grows faster than linearly in ||G|| h, so long intervals are split into substeps.
STEP_NORM = 100.0
#: Rows per assembly chunk: bounds the temporaries to ~(slots per row) x 16 bytes x this.
CHUNK_ROWS = 1 << 15


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


# --------------------------------------------------------------------------- blocks

def _strings(local, k):
    """Kronecker products of the four 2x2 matrices ``local`` on k sites, (4^k, 2^k, 2^k),
    first site most significant."""
    P = local
    for _ in range(k - 1):
        P = np.einsum("aij,bkl->abikjl", P, local).reshape(
            len(P) * 4, 2 * P.shape[1], 2 * P.shape[1]
        )
    return P


def _pauli_block(superop, k):
    """G_ba = 2^-k Tr(P_b superop(P_a)) for the strings on k sites (real by construction)."""
    P = _strings(PAULI, k)
    images = np.array([superop(p) for p in P])
    G = np.einsum("bij,aji->ba", P, images) / 2**k
    assert np.abs(G.imag).max(initial=0) <= 1e-12 * max(1.0, np.abs(G).max()), "generator not real"
    return np.ascontiguousarray(G.real)


def ketbra_block(superop, k):
    """B_ba = <E_b, superop(E_a)> for the ket-bra units E of k sites (`UNITS`, code
    q = 2 s + s' per site, first site most significant): complex, and exact zeros stay
    zero, so the Delta m structure is exact."""
    E = _strings(UNITS, k)
    images = np.array([superop(e) for e in E])
    return np.einsum("bij,aij->ba", E, images)


def site_superop(nu, Y, f):
    """L_i of site i: -i[-nu/2 S^z, rho] plus the dissipator of Eq. (15),
    Y f (S+ rho S- + S- rho S+ - 4 rho) + Y (S+ rho S- + {rho, S^z} - 2 rho)."""
    h = -0.5 * nu * _SZ

    def L(r):
        return (-1j * (h @ r - r @ h)
                + Y * f * (_SP @ r @ _SM + _SM @ r @ _SP - 4 * r)
                + Y * (_SP @ r @ _SM + r @ _SZ + _SZ @ r - 2 * r))
    return L


def pair_superop(J, K_ij=0.0, K_ji=0.0, form="exchange"):
    """L_ij of the pair i < j: -i[h_ij, rho] with h_ij = 2 J_ij Sz_i Sz_j (Eq. 23,
    ordered-pair sum) plus the flip-flop term of ``form`` (tlsmpi.physics.model.ModelParams):
    K_ij S+_i S-_j + K_ji S-_i S+_j ("exchange") or (K_ij + K_ji) Sx_i Sx_j ("xx")."""
    h = 2 * J * np.kron(_SZ, _SZ)
    if form == "xx":
        h = h + (K_ij + K_ji) * np.kron(_SX, _SX)
    else:
        h = h + K_ij * np.kron(_SP, _SM) + K_ji * np.kron(_SM, _SP)
    return lambda r: -1j * (h @ r - r @ h)


def site_block(nu, Y, f):
    """4x4 Pauli block of site i (`site_superop`)."""
    return _pauli_block(site_superop(nu, Y, f), 1)


def pair_block(J, K_ij=0.0, K_ji=0.0, form="exchange"):
    """16x16 Pauli block of the pair i < j (`pair_superop`)."""
    return _pauli_block(pair_superop(J, K_ij, K_ji, form), 2)


def _slot_table(G, shifts):
    """Off-diagonal entries of a local block as per-row tables for vectorized assembly.

    G is (4^k, 4^k) on sites whose digits sit at bit shifts ``shifts`` of the global index.
    Returns (delta, value), each (4^k, m): row code b has entries at global column
    row + delta[b, s] with value[b, s] (value 0 pads rows with fewer than m entries).
    """
    k = len(shifts)
    codes = np.arange(4**k)
    local = (codes[:, None] >> (2 * np.arange(k - 1, -1, -1))) & 3            # digits of each code
    weights = np.array([1 << s for s in shifts], dtype=np.int64)
    offdiag = (G != 0) & ~np.eye(len(G), dtype=bool)
    m = max(int(offdiag.sum(1).max()), 1)
    delta = np.zeros((len(G), m), dtype=np.int64)
    value = np.zeros((len(G), m))
    for b in codes:
        a = np.flatnonzero(offdiag[b])
        delta[b, :len(a)] = (local[a] - local[b]) @ weights
        value[b, :len(a)] = G[b, a]
    return delta, value


class Generator:
    """The real Pauli-basis GKSL generator of one realization, row by row.

    `csr(start, stop)` returns the rows [start, stop) in CSR form with sorted columns,
    vectorized over rows; `nnz(start, stop, lo, hi)` counts entries per row with column
    inside / outside [lo, hi) for PETSc preallocation.
    """

    def __init__(self, real):
        N = self.N = real.N
        self.size = 4**N
        self.shift = 2 * (N - 1 - np.arange(N))                 # bit shift of site k's digit
        sites = [site_block(real.nu[k], real.Y[k], real.f[k]) for k in range(N)]
        self.site_diag = np.array([np.diag(G) for G in sites])  # (N, 4)
        self.tables = [((k,), _slot_table(G, [self.shift[k]])) for k, G in enumerate(sites)]
        K, form = real.K, real.params.flipflop_form
        changed = _changed_digits(2)
        for i in range(N):
            for j in range(i + 1, N):
                G = pair_block(real.J[i, j], K[i, j], K[j, i], form)
                if not G.any():
                    continue
                assert not (G[changed < 2] != 0).any(), "pair term must change both digits"
                self.tables.append(((i, j), _slot_table(G, [self.shift[i], self.shift[j]])))
        self.slots = 1 + sum(t[1][0].shape[1] for t in self.tables)

    def digits(self, rows):
        """Base-4 digits of global indices, (len(rows), N), site 0 first."""
        return ((rows[:, None] >> self.shift) & 3).astype(np.intp)

    def _entries(self, rows):
        """Padded (columns, values, present) for ``rows``, each (len(rows), slots); slot 0
        is the diagonal (always present, possibly zero)."""
        d = self.digits(rows)
        cols = np.empty((len(rows), self.slots), dtype=np.int64)
        vals = np.empty((len(rows), self.slots))
        cols[:, 0] = rows
        vals[:, 0] = self.site_diag[np.arange(self.N), d].sum(1)
        s = 1
        for sites, (delta, value) in self.tables:
            code = d[:, sites[0]] if len(sites) == 1 else 4 * d[:, sites[0]] + d[:, sites[1]]
            m = delta.shape[1]
            cols[:, s:s + m] = rows[:, None] + delta[code]
            vals[:, s:s + m] = value[code]
            s += m
        present = vals != 0
        present[:, 0] = True
        return cols, vals, present

    def nnz(self, start, stop, lo, hi):
        """Entries per row of rows [start, stop) with column in [lo, hi) and outside."""
        d_nnz, o_nnz = [], []
        for a in range(start, stop, CHUNK_ROWS):
            cols, _, present = self._entries(
                np.arange(a, min(a + CHUNK_ROWS, stop), dtype=np.int64)
            )
            inside = present & (cols >= lo) & (cols < hi)
            d_nnz.append(inside.sum(1))
            o_nnz.append(present.sum(1) - d_nnz[-1])
        empty = [np.zeros(0, dtype=np.int64)]
        return np.concatenate(d_nnz or empty), np.concatenate(o_nnz or empty)

    def csr(self, start, stop):
        """Rows [start, stop) as (indptr, indices, values) with sorted column indices."""
        rows = np.arange(start, stop, dtype=np.int64)
        cols, vals, present = self._entries(rows)
        cols[~present] = self.size                                  # absent entries sort last
        order = np.argsort(cols, axis=1, kind="stable")
        cols = np.take_along_axis(cols, order, 1)
        vals = np.take_along_axis(vals, order, 1)
        count = present.sum(1)
        keep = np.arange(self.slots) < count[:, None]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(count, out=indptr[1:])
        return indptr, cols[keep], vals[keep]

    def initial_coefficients(self, rho0, start, stop):
        """c_mu(0) = prod_k Tr(rho0_k P_{a_k}) for the product state of Eq. (26), rows
        [start, stop)."""
        bloch = np.einsum("kij,aji->ka", rho0, PAULI).real          # (N, 4): (1, x, y, z) per site
        out = np.empty(stop - start)
        for a in range(start, stop, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, stop)
            d = self.digits(np.arange(a, b, dtype=np.int64))
            out[a - start:b - start] = bloch[np.arange(self.N), d].prod(1)
        return out


def _changed_digits(k):
    """(4^k, 4^k) number of digits in which local codes b and a differ."""
    codes = np.arange(4**k)
    local = (codes[:, None] >> (2 * np.arange(k - 1, -1, -1))) & 3
    return (local[:, None, :] != local[None, :, :]).sum(-1)


# --------------------------------------------------------------------------- PETSc objects

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


# --------------------------------------------------------------------------- observables

def subsystem_indices(N, sites):
    """Global indices of the 4^|A| strings that are the identity outside ``sites``,
    in the order of `density_from_pauli` (first listed site most significant)."""
    idx = np.zeros(1, dtype=np.int64)
    for s in sites:
        idx = (idx[:, None] + (np.arange(4, dtype=np.int64) << (2 * (N - 1 - s)))).ravel()
    return idx


def density_from_pauli(c, n):
    """rho_A = 2^-n sum_mu c_mu P_mu from coefficients c (..., 4^n) -> (..., 2^n, 2^n)
    in the Kronecker basis (first site most significant).  With c the coefficients of
    strings that are the identity outside A, this is the partial trace over the rest."""
    lead = c.shape[:-1]
    t = c.reshape(lead + (4,) * n)
    for _ in range(n):
        t = np.tensordot(t, PAULI, axes=([len(lead)], [0]))        # appends (ket, bra) of a site
    L = len(lead)
    t = t.transpose(
        tuple(range(L))
        + tuple(L + 2 * k for k in range(n))
        + tuple(L + 2 * k + 1 for k in range(n))
    )
    return t.reshape(lead + (2**n, 2**n)) / 2**n


class PauliReadout(Readout):
    """Readout of the Pauli coefficients of Engine 2: the coefficients of the sites, pairs
    and bubbles (``indices``, read from the state vector) and their density matrices."""

    def __init__(self, real, request):
        super().__init__(real, request)
        N = self.N
        groups = (self.pairs, self.bubbles, self.sites)
        parts = [subsystem_indices(N, A) for group in groups for A in group]
        self.indices, inverse = np.unique(
            np.concatenate(parts + [np.zeros(0, np.int64)]), return_inverse=True
        )
        pos, start = [], 0
        for group, size in zip(groups, (2, self.bubbles.shape[1], 1)):
            n = len(group) * 4**size
            pos.append(inverse[start:start + n].reshape(len(group), 4**size))
            start += n
        self.pair_pos, self.bubble_pos, self.site_pos = pos

    def site_states(self, coeffs):
        """rho_i (T, sites, 2, 2) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.site_pos], 1)

    def pair_states(self, coeffs):
        """rho_ij (T, pairs, 4, 4) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.pair_pos], 2)

    def bubble_states(self, coeffs):
        """rho_A (T, bubbles, d, d) from the coefficients ``coeffs`` (T, len(indices))."""
        return density_from_pauli(coeffs[:, self.bubble_pos], self.bubbles.shape[1])


# --------------------------------------------------------------------------- evolution

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
        self.where = _where(real)
        self.checkpoint = checkpoint
        self._objects = []
        self._PETSc = PETSc
        try:
            gen = Generator(real)
            self.A = self._own(assemble(gen, self.comm))
            self.x, self.y = (self._own(v) for v in self.A.createVecs())
            start, stop = self.x.getOwnershipRange()
            self.x.setArray(gen.initial_coefficients(real.initial_density_matrices(), start, stop))
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

    def run(self, times, indices):
        """Coefficients c_mu(t) for the global ``indices`` at each of ``times``
        (non-decreasing, from t = 0), gathered on rank 0 of the communicator by a
        VecScatter: (T, len(indices)) there, None on the other ranks."""
        PETSc = self._PETSc
        t = output_times(times)
        root = self.comm.Get_rank() == 0
        mine = np.asarray(indices if root else [], dtype=PETSc.IntType)
        sel = PETSc.IS().createGeneral(mine, comm=PETSc.COMM_SELF)
        local = PETSc.Vec().createSeq(len(mine), comm=PETSc.COMM_SELF)
        scatter = PETSc.Scatter().create(self.x, sel, local, None)
        coeffs = np.empty((len(t), len(mine)))
        try:
            t_prev = 0.0
            for k, tk in enumerate(t):
                if tk > t_prev:
                    self.step(t_prev, tk)
                    t_prev = tk
                scatter.scatter(
                    self.x, local, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD
                )
                coeffs[k] = local.getArray(readonly=True)
        finally:
            for obj in (scatter, local, sel):
                obj.destroy()
        return coeffs if root else None


def output_times(times):
    """``times`` as a float array; ConfigError unless 1-d, non-decreasing and >= 0."""
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or (t < 0).any() or (np.diff(t) < 0).any():
        raise ConfigError(f"output times must be a non-decreasing 1-d array of t >= 0, got {t!r}")
    return t


def _where(real):
    return f"realization {real.index} (seed {real.seed}, N = {real.N})"


# --------------------------------------------------------------------------- spectral path

#: Values of engine.method: "auto" (spectral where `spectral_refusal` allows and it is
#: predicted faster than MFN stepping, `prefer_spectral`), "mfn" (always MFN stepping),
#: "spectral" (refused where it cannot be used).
METHODS = ("auto", "mfn", "spectral")
#: Largest Delta m block, C(2N, N) elements (Delta m = 0), that the spectral path
#: diagonalizes: N <= 7 (3432); N = 7 takes ~100 s and <= 0.75 GB for C(t) (docs/performance.md).
SPECTRAL_MAX = 4000
#: Largest eigenvector condition number ||V||_1 ||V^-1||_1 (LAPACK's estimate) accepted,
#: eps^(-1/2): the rounding of the spectral path grows like eps cond, and near this bound
#: the block is within ~sqrt(eps) of a defective matrix, where eigenvalue errors stop being
#: first order (docs/liouvillian.md).  Above it the realization falls back to MFN stepping.
SPECTRAL_COND_MAX = float(np.finfo(float).eps) ** -0.5
#: Seconds per n^3 of a complex n x n eig with eigenvectors plus the LU of V, one core; a
#: real one (the Delta m = 0 block) costs a quarter (fitted to python -m tlsmpi.bench
#: liouvillian --window; docs/performance.md, "Liouvillian over long windows").
EIG_SECONDS = 2.3e-9
#: Seconds of one MFN solve (default options, ||G||_1 h <= STEP_NORM) on one core: a fixed
#: part and a part per matrix entry, fitted over the paper's window at N = 5 and 7
#: (docs/liouvillian.md); only for choosing the path (`prefer_spectral`, N <= 7).
MFN_SOLVE_SECONDS, MFN_ENTRY_SECONDS = 8e-3, 6e-8


def block_size(N, dm):
    """Ket-bra elements |a><b| with m(a) - m(b) = dm: C(2N, N + dm) (Vandermonde)."""
    return math.comb(2 * N, N + dm)


def spectral_refusal(params):
    """Why the spectral path cannot treat ``params`` (a sentence), or None if it can."""
    if params.flipflop and params.flipflop_form != "exchange":
        return (f"model.flipflop_form = {params.flipflop_form!r} with model.flipflop = "
                f"{params.flipflop:g}: its S+S+ and S-S- terms change Delta m by 2, so the "
                "generator has no blocks smaller than 4^N / 2")
    if block_size(params.N, 0) > SPECTRAL_MAX:
        return (f"model.N = {params.N}: the Delta m = 0 block has C(2N, N) = "
                f"{block_size(params.N, 0)} elements, more than SPECTRAL_MAX = {SPECTRAL_MAX} (N "
                "<= 7)")
    return None


def use_spectral(params, method="auto"):
    """True if engine.method = ``method`` selects the spectral path for ``params``;
    ConfigError for an unknown method, or for "spectral" where `spectral_refusal` objects."""
    if method not in METHODS:
        raise ConfigError(f"engine.method = {method!r}: choose one of {list(METHODS)}")
    if method == "mfn":
        return False
    why = spectral_refusal(params)
    if why and method == "spectral":
        raise ConfigError(f"engine.method = \"spectral\": {why}; use engine.method = \"auto\" "
                          "(spectral where possible, else MFN) or \"mfn\"")
    return why is None


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
    entries = 4.0**N * mean_nnz_per_row(N, _flipflop(real.params))
    mfn = mfn_solves(real, times) * (MFN_SOLVE_SECONDS + entries * MFN_ENTRY_SECONDS)
    return spectral_seconds(real.params, request) < mfn


def delta_m_needed(N, request):
    """Largest Delta m the observables read: 1 for site states, 2 for pair states
    (Eq. 28), the bubble size floor(N/2) for S_E (Eq. 29)."""
    need = {"site": 1, "pair": 2, "subsystem": N // 2}
    return min(N, max([0] + [m for kind, m in need.items() if request.wants(kind)]))


def block_codes(N, dm):
    """Per-site codes (n, N) and sorted global indices (n,) of the Delta m = ``dm`` block.

    The global index of a ket-bra product |a><b| is sum_k q_k 4^(N-1-k) with
    q_k = 2 a_k + b_k, the digit layout of the Pauli strings (`Generator`)."""
    shift = 2 * (N - 1 - np.arange(N))
    index = np.arange(4**N, dtype=np.int64)
    codes = (index[:, None] >> shift) & 3
    keep = DELTA_M[codes].sum(1) == dm
    return codes[keep], index[keep]


def ketbra_terms(real):
    """(sites, ket-bra block) of every site and non-zero pair term of Eq. (15)."""
    N, K, form = real.N, real.K, real.params.flipflop_form
    terms = [
        ((k,), ketbra_block(site_superop(real.nu[k], real.Y[k], real.f[k]), 1)) for k in range(N)
    ]
    for i in range(N):
        for j in range(i + 1, N):
            B = ketbra_block(pair_superop(real.J[i, j], K[i, j], K[j, i], form), 2)
            if B.any():
                terms.append(((i, j), B))
    return terms


def block_generator(real, dm):
    """The Delta m = ``dm`` block of the ket-bra GKSL generator of Eq. (15), dense complex
    (n, n), and its `block_codes`.  ValueError if a term leaves the block (xx flip-flop)."""
    N = real.N
    codes, index = block_codes(N, dm)
    n = len(index)
    G = np.zeros((n, n), dtype=complex, order="F")      # LAPACK order: eig needs no copy
    shift = 2 * (N - 1 - np.arange(N))
    for sites, B in ketbra_terms(real):
        sites = list(sites)
        k = len(sites)
        local = 4 ** np.arange(k - 1, -1, -1)
        c_in = codes[:, sites] @ local                       # local code of every column
        base = index - codes[:, sites] @ (1 << shift[sites])  # those digits cleared
        for c_out in range(len(B)):
            val = B[c_out, c_in]
            cols = np.flatnonzero(val)
            if not len(cols):
                continue
            target = base[cols] + ((c_out // local) % 4) @ (1 << shift[sites])
            rows = np.minimum(np.searchsorted(index, target), n - 1)
            if (index[rows] != target).any():
                raise ValueError(f"the term on sites {tuple(sites)} does not conserve Delta m")
            G[rows, cols] += val[cols]
    return G, codes


class _HermitianPairs:
    """The unitary map x = S y from real coordinates y to the Delta m = 0 block.

    The block maps rho -> rho^dagger into itself: |a><a| stays, |a><b| and |b><a| pair up
    (``lo``, ``hi``: the first and second index of each pair).  With
    x_lo = (y_lo + i y_hi) / sqrt(2), x_hi = conj(x_lo), Hermitian rho have real y, and
    S^H G S is real because the GKSL generator preserves Hermiticity: eig on it costs
    about a quarter of the complex eig.
    """

    def __init__(self, codes):
        N = codes.shape[1]
        weights = 4 ** np.arange(N - 1, -1, -1)
        index = codes @ weights
        partner = np.searchsorted(index, np.array([0, 2, 1, 3])[codes] @ weights)   # |b><a|
        own = np.arange(len(codes))
        self.lo, self.hi = own[own < partner], partner[own < partner]

    def real_generator(self, G):
        """S^H G S (real, Fortran order); overwrites G."""
        r = math.sqrt(0.5)
        lo, hi = self.lo, self.hi
        a, b = G[:, lo], G[:, hi]
        G[:, lo], G[:, hi] = r * (a + b), 1j * r * (a - b)
        a, b = G[lo], G[hi]
        G[lo], G[hi] = r * (a + b), -1j * r * (a - b)
        assert np.abs(G.imag).max(initial=0) <= 1e-12 * max(1.0, np.abs(G.real).max()), (
            "not Hermiticity preserving"
        )
        return np.asfortranarray(G.real)

    def ketbra(self, W):
        """S W: eigenvectors in real coordinates -> in the ket-bra block (in place)."""
        r = math.sqrt(0.5)
        a, b = W[self.lo], W[self.hi]
        W[self.lo], W[self.hi] = r * (a + 1j * b), r * (a - 1j * b)
        return W


class Spectral:
    """The spectral path of Engine 2 for one realization (docs/liouvillian.md).

    For Delta m = 0 .. m_max (the largest Delta m any string of ``indices`` reads),
    the block G_dm = V diag(lambda) V^-1 of the ket-bra generator is diagonalized
    once, and the Pauli coefficients of ``indices`` follow at any time from

        c_mu(t) = sum_dm w_dm Re[ R_dm V exp(lambda t) V^-1 x_dm(0) ],

    w_0 = 1, w_dm = 2 (the -dm block is the complex conjugate, rho = rho^dagger),
    R_{mu,(a,b)} = (P_mu)_ba (c_mu = Tr rho P_mu).  The dm = 0 block is diagonalized
    as a real matrix (`_HermitianPairs`).  ``cond`` is the largest
    ||V||_1 ||V^-1||_1 (LAPACK zgecon estimate); diagonalization stops at the first
    block above ``cond_max``, and then `run` must not be used.  ``checkpoint()`` is
    called before each block's eigendecomposition.
    """

    def __init__(self, real, indices, cond_max=math.inf, checkpoint=never):
        from scipy.linalg import eig, lu_factor, lu_solve
        from scipy.linalg.lapack import zgecon
        N = real.N
        idx = np.asarray(indices, dtype=np.int64)
        digits = (idx[:, None] >> (2 * (N - 1 - np.arange(N)))) & 3
        m_max = int(np.isin(digits, (1, 2)).sum(1).max(initial=0))
        rho0 = real.initial_density_matrices()
        self.blocks, self.cond, self.sizes = [], 0.0, []
        for dm in range(m_max + 1):
            checkpoint()
            G, codes = block_generator(real, dm)
            ket, bra = codes >> 1, codes & 1
            x0 = rho0[np.arange(N), ket, bra].prod(1)
            R = np.ones((len(idx), len(codes)), dtype=complex)                # (P_mu)_{ba}
            for k in range(N):
                R *= PAULI[digits[:, k, None], bra[None, :, k], ket[None, :, k]]
            if dm == 0:                  # Hermiticity: a real matrix in a unitary basis
                pairing = _HermitianPairs(codes)
                G = pairing.real_generator(G)
            lam, V = eig(G, overwrite_a=True, check_finite=False)
            del G
            if dm == 0:
                V = pairing.ketbra(V)
            lu = lu_factor(V, check_finite=False)
            rcond, info = zgecon(lu[0], np.abs(V).sum(0).max(), norm="1")
            self.cond = max(self.cond, 1 / rcond if rcond > 0 else math.inf)
            self.sizes.append(len(lam))
            if self.cond > cond_max:
                break
            self.blocks.append((1.0 if dm == 0 else 2.0, lam, R @ V, lu_solve(lu, x0)))

    def run(self, times):
        """Coefficients c_mu(t) of ``indices`` at all ``times`` at once, (T, len(indices))."""
        t = output_times(times)
        return sum(w * ((np.exp(np.outer(t, lam)) * z) @ W.T).real for w, lam, W, z in self.blocks)


def spectral_coefficients(real, times, indices, checkpoint=never):
    """`Spectral` coefficients, or None (logged) if eig fails or cond > SPECTRAL_COND_MAX."""
    try:
        spec = Spectral(real, indices, SPECTRAL_COND_MAX, checkpoint)
    except np.linalg.LinAlgError as err:
        log.warning(f"{_where(real)}: eigendecomposition failed ({err}); MFN stepping instead")
        return None
    if spec.cond > SPECTRAL_COND_MAX:
        log.warning(f"{_where(real)}: eigenvector condition number {spec.cond:.2g} of a Delta m "
                    "block "
                    f"exceeds SPECTRAL_COND_MAX = {SPECTRAL_COND_MAX:.2g}; MFN stepping instead")
        return None
    return spec.run(times)


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
    if prefer_spectral(real, t, request, method):
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
            coeffs = evo.run(t, readout.indices)
    result = None
    if root:
        try:
            result = readout.observables(coeffs)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
            result = SolverError(f"{_where(real)}: observables failed: {err}")
    result = comm.bcast(result, root=0)
    if isinstance(result, SolverError):
        raise result
    return result


def _reason_name(reason):
    from slepc4py import SLEPc
    names = {v: k for k, v in vars(SLEPc.MFN.ConvergedReason).items() if not k.startswith("_")}
    return names.get(reason, str(reason))


# --------------------------------------------------------------------------- memory model

#: Per-rank baseline of the interpreter, numpy, MPI, PETSc and SLEPc (bytes).
BASELINE = 150e6


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


def _petsc_library():
    """Path of the PETSc shared library loaded by petsc4py (from /proc/self/maps)."""
    import re
    with open("/proc/self/maps") as fh:
        found = re.findall(r"(/\S*libpetsc\S*\.so\S*)", fh.read())
    return found[0] if found else "libpetsc.so"


def norm1_estimate(real):
    """Upper bound of ||G||_1 from the site and pair blocks: each column of G gets at
    most |nu_i| + 4 Y_i (1 + 2 f_i) + ... from site i and 4 |J_ij| + 4 |K_ij| from pair ij."""
    site = np.abs(real.nu) + 8 * real.Y * (1 + 2 * real.f)
    pair = 4 * (np.abs(real.J) + np.abs(real.K))
    return float(site.sum() + pair.sum() / 2)


def _flipflop(params):
    """The ``flipflop`` argument of the memory model for ``params``."""
    return params.flipflop_form if params.flipflop else False


@register
class LiouvillianEngine(Engine):
    """Engine 2 in the registry: one realization on a group of ranks (PETSc matrix), or
    the spectral path on the group's rank 0 (``engine.method``, `use_spectral`)."""
    name = "liouvillian"
    kinds = ("site", "pair", "subsystem")
    parallel = True
    solver_options = True
    option_schema = {"method": ("auto", lambda v: v in METHODS,
                          "one of \"auto\" (eigendecomposition of the Delta m blocks where "
                          "possible, else MFN), \"mfn\", \"spectral\"")}

    def check(self, cases, request):
        """Refuse method = "spectral" where it cannot run; log the path of every N."""
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
        mfn = mfn_memory(params.N, ranks, flipflop=_flipflop(params)) + outputs
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
            * mean_nnz_per_row(params.N, _flipflop(params))
            * mfn_solves(real, times)
            * 2e-8
        )

    def init(self, argv):
        init_petsc(argv)

    def unused_options(self):
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

    def versions(self):
        from petsc4py import PETSc
        from slepc4py import SLEPc
        return {"petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
                "slepc_version": ".".join(map(str, SLEPc.Sys.getVersion()))}

    def compute(self, real, times, request, comm=None):
        return compute(real, times, request, comm, self.options["method"], self.checkpoint)
