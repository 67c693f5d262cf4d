"""Two-qubit states of known structure in 40-digit arithmetic, and Wootters' concurrence
computed from them with mpmath (an independent reference for tlsmpi.physics.measures)."""
import mpmath as mp
import numpy as np

DIGITS = 40


def _mat(a):
    return mp.matrix([[mp.mpc(complex(x)) for x in row] for row in np.atleast_2d(a)])


def _unit(v):
    v = _mat(np.asarray(v).reshape(-1, 1))
    return v / mp.norm(v)


def _kron(a, b):
    return mp.matrix([a[i] * b[j] for i in range(a.rows) for j in range(b.rows)])


def _mixture(weights, vectors):
    """sum_k w_k |v_k><v_k| / sum_k w_k, exactly Hermitian and positive semi-definite."""
    rho = mp.zeros(4, 4)
    for w, v in zip(weights, vectors):
        rho += mp.mpf(w) * v * v.H
    return rho / sum(mp.mpf(w) for w in weights)


def reference(rho):
    """C = max(0, l1 - l2 - l3 - l4), l_a^2 the eigenvalues of R = rho (sy sy) rho* (sy sy)
    (Wootters, Eq. 27), evaluated with DIGITS significant digits."""
    yy = mp.matrix([[0, 0, 0, -1], [0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0]])
    R = rho * yy * rho.conjugate() * yy
    lam = sorted((mp.sqrt(abs(mp.re(e))) for e in mp.eig(R, left=False, right=False)), reverse=True)
    return max(mp.mpf(0), lam[0] - lam[1] - lam[2] - lam[3])


def states(seed=0):
    """[(kind, rho as a (4, 4) complex array, exact C)]: a few hundred states of the kinds
    issue 11 lists.  rho is the 40-digit state rounded once to double precision."""
    rng = np.random.default_rng(seed)

    def qubit():
        return _unit(rng.normal(size=2) + 1j * rng.normal(size=2))

    def local(a):
        """(U_a x U_b)(cos a |00> + sin a |11>) with random unitaries: C = sin 2a."""
        u, v = (
            np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0]
            for _ in range(2)
        )
        U = _mat(np.kron(u, v))
        schmidt = mp.matrix([mp.cos(a), 0, 0, mp.sin(a)])
        return U * schmidt / mp.norm(U * schmidt)

    with mp.workdps(DIGITS):
        out = []
        for _ in range(30):
            out.append(("pure product", _mixture([1], [_kron(qubit(), qubit())])))
        for _ in range(30):
            out.append(("mixed product", _mixture(rng.uniform(0.01, 1, 3),
                                                  [_kron(qubit(), qubit()) for _ in range(3)])))
        weak = [mp.asin(mp.mpf(c)) / 2 for c in np.logspace(-9, 0, 40)]
        for a in weak:
            out.append(("weakly entangled pure", _mixture([1], [local(a)])))
        for p in (1e-12, 1e-10, 1e-8, 1e-6):
            for a in weak[::2]:
                psi = local(a)
                basis = [mp.matrix([1 if k == m else 0 for k in range(4)]) for m in range(4)]
                out.append((f"pure + white noise {p:g}",
                            _mixture([1 - p] + [p / 4] * 4, [psi] + basis)))
        for q in np.logspace(-14, -2, 25):
            out.append(
                (
                    "rank 2, small weight",
                    _mixture(
                        [1 - q, q],
                        [local(rng.uniform(0, 1e-3)),
                         _unit(rng.normal(size=4) + 1j * rng.normal(size=4))],
                    ),
                )
            )
        for rank in (2, 3):
            for _ in range(20):
                vs = [_unit(rng.normal(size=4) + 1j * rng.normal(size=4)) for _ in range(rank)]
                out.append((f"rank {rank}", _mixture(rng.uniform(0.01, 1, rank), vs)))
        for _ in range(40):
            vs = [_unit(rng.normal(size=4) + 1j * rng.normal(size=4)) for _ in range(4)]
            out.append(("random full rank", _mixture(rng.uniform(0.01, 1, 4), vs)))
        return [(kind, np.array(rho.tolist(), dtype=complex), float(reference(rho)))
                for kind, rho in out]
