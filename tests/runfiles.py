"""Run-file contents for bitwise comparisons in the tests."""
import h5py


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
