"""The real Pauli-basis GKSL generator of Eq. (15) for one realization, built row by row
with numpy (no PETSc; docs/design.md section 5, docs/liouvillian.md).

dc/dt = G c with G_{nu mu} = 2^-N Tr(P_nu L(P_mu)) (`basis`), a sum of local blocks
(Eqs. 15 and 23): per site the 4x4 block Tr(P_b L_i(P_a))/2 of -i[-nu_i S^z_i / 2, .] and
the dissipator of site i, per pair i < j the 16x16 block Tr(P_b L_ij(P_a))/4 of
-i[h_ij, .] with h_ij = 2 J_ij S^z_i S^z_j + (flip-flop term), the ordered-pair sums of
Eq. (23) and of the flip-flop term (footnote 67) in the form ``model.flipflop_form``:
K_ij S+_i S-_j + K_ji S-_i S+_j ("exchange") or (K_ij + K_ji) S^x_i S^x_j ("xx").
A pair term is a commutator with strings that have no identity factor, so it changes
both digits of a row: its entries never coincide with the site entries, and each row
is a diagonal plus distinct off-diagonal entries.  The same local superoperators give
the ket-bra blocks of the spectral path (`ketbra_block`).
"""
import numpy as np

from .basis import PAULI, UNITS, strings

_SP = np.array([[0, 2], [0, 0]], dtype=complex)     # S+ = S^x + i S^y
_SM = _SP.T.copy()
_SX, _SZ = PAULI[1], PAULI[3]
#: Rows per assembly chunk: bounds the temporaries to ~(slots per row) x 16 bytes x this.
CHUNK_ROWS = 1 << 15


def _pauli_block(superop, k):
    """G_ba = 2^-k Tr(P_b superop(P_a)) for the strings on k sites (real by construction)."""
    P = strings(PAULI, k)
    images = np.array([superop(p) for p in P])
    G = np.einsum("bij,aji->ba", P, images) / 2**k
    assert np.abs(G.imag).max(initial=0) <= 1e-12 * max(1.0, np.abs(G).max()), "generator not real"
    return np.ascontiguousarray(G.real)


def ketbra_block(superop, k):
    """B_ba = <E_b, superop(E_a)> for the ket-bra units E of k sites (`UNITS`, code
    q = 2 s + s' per site, first site most significant): complex, and exact zeros stay
    zero, so the Delta m structure is exact."""
    E = strings(UNITS, k)
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


def norm1_estimate(real):
    """Upper bound of ||G||_1 from the site and pair blocks: each column of G gets at
    most |nu_i| + 4 Y_i (1 + 2 f_i) + ... from site i and 4 |J_ij| + 4 |K_ij| from pair ij."""
    site = np.abs(real.nu) + 8 * real.Y * (1 + 2 * real.f)
    pair = 4 * (np.abs(real.J) + np.abs(real.K))
    return float(site.sum() + pair.sum() / 2)
