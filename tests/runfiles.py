"""Run-file contents compared between runs in the tests.

Two runs of one configuration compute every realization with the same code from the same
seed, whatever the number of ranks or the process that computes it, but not always to the
same bits: numpy's vectorised complex loops round a product with or without a fused
multiply-add depending on where the operands sit in memory (numpy issues #24000, #26940),
which a process's allocation history decides (docs/design.md, "Reproducibility").  So rows
of floating-point numbers are compared to rounding and everything else bit for bit.
"""
import h5py
import numpy as np

from tolerances import rounding

#: k of the rounding tolerance: a row is a product of up to N <= 16 factors per element
#: (one rounding each) put through a measure (eigvalsh: n eps; a logarithm), each of the
#: two runs rounding on its own side.
K_ROWS = 64


def case_datasets(path):
    """{dataset path: array} of every dataset under the case groups, without the compute
    times (``wall_seconds`` and its checksum column), which differ between any two runs."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not (isinstance(obj, h5py.Dataset) and name.startswith("case_")) \
                    or name.endswith("wall_seconds"):
                return
            data = obj[...]
            if name.endswith("/checksum"):
                keep = [k for k, d in enumerate(obj.attrs["datasets"].split())
                        if d != "wall_seconds"]
                data = data[:, keep]
            out[name] = data
        f.visititems(visit)
    return out


def agree(x, y, k=K_ROWS):
    """Whether two arrays are the same result: same dtype and shape; floating-point (and
    complex) values within `tolerances.rounding` of the larger magnitude in ``x``, NaN where
    NaN; anything else bit for bit."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if not np.issubdtype(x.dtype, np.inexact):
        return x.tobytes() == y.tobytes()
    finite = np.isfinite(x)
    if not (np.array_equal(finite, np.isfinite(y))
            and np.array_equal(x[~finite], y[~finite], equal_nan=True)):
        return False
    scale = float(np.max(np.abs(x[finite]), initial=0.0))
    return bool(np.all(np.abs(x[finite] - y[finite]) <= rounding(scale, k)))


def disagreeing(a, b):
    """Names of the datasets in which the runs ``a`` and ``b`` (paths or `case_datasets`
    dicts) differ (a name in only one of them included): the disorder bit for bit (drawn
    with real arithmetic only), the rest by `agree`.  The checksum columns are left out:
    they hash the rows' bytes, so they change with the last bits of the rows."""
    a, b = (case_datasets(x) if not isinstance(x, dict) else x for x in (a, b))

    def same(n):
        x, y = np.asarray(a[n]), np.asarray(b[n])
        if "/disorder/" in n:
            return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        return agree(x, y)
    return [n for n in sorted(set(a) | set(b)) if not n.endswith("/checksum")
            and (n not in a or n not in b or not same(n))]
