"""The run file: one HDF5 file per run, written in parallel, read anywhere.

Layout (docs/output.md has the full description)::

    /                      attrs: layout_version, tlsmpi_version, config (TOML), seed,
                                  engine, n_cases, n_realizations, versions, units
    /times                 (T,)  output times [hbar/W]
    /complete              ()    1 once every realization is done or failed
    /case_000 ...          attrs: the case's model parameters, label
        status             (R,)  0 pending, 1 done, -1 failed
        error              (R,)  failure message of failed realizations
        wall_seconds       (R,)  compute time of each realization
        concurrence        (R, T) C(t) of Eq. (28), per realization
        entropy            (R, T) S_E(t) of Eq. (29), per realization (if requested)
        <obs>_mean, <obs>_sem (T,) over the done realizations, written at the end
        disorder/          (R, ...) nu, J, Y, f, theta, phi, eps, Delta, g, positions

Crash consistency: every object is created, with its storage allocated, when the file
is made; the file is created under a temporary name and renamed when complete, so
a kill during creation leaves no half-made run file.  Afterwards only raw values are
written in place, a realization's ``status`` after its data, and the file is flushed
at checkpoints: a file killed at any moment opens, and ``--resume`` recomputes
exactly the realizations whose status is still 0.
"""
import os

import numpy as np

LAYOUT_VERSION = 1
OBSERVABLES = ("concurrence", "entropy")
UNITS = {"times": "hbar/W", "concurrence": "1", "entropy": "nats", "nu": "W/hbar", "J": "W",
         "Y": "W/hbar", "f": "1", "theta": "rad", "phi": "rad", "eps": "W", "Delta": "W",
         "g": "1", "positions": "nm", "wall_seconds": "s"}
PENDING, DONE, FAILED = 0, 1, -1
ERROR_LEN = 240


def h5py_module():
    """h5py with the MPI build where available (Debian loads it only on request)."""
    os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")
    import h5py
    return h5py


def case_name(k):
    return f"case_{k:03d}"


def case_label(params, swept):
    return " ".join(f"{k}={getattr(params, k):g}" for k in swept) or f"N={params.N}"


class RunFile:
    """Writer side of the run file, opened on all ranks of ``comm``."""

    def __init__(self, h5file, comm):
        self.f = h5file
        self.comm = comm

    @classmethod
    def create(cls, path, comm, config, meta):
        """Make the complete file structure under ``path + '.creating'`` and rename it."""
        tmp = path + ".creating"
        with _open(tmp, "w", comm) as f:
            _make_layout(f, config, meta)
        comm.Barrier()
        if comm.rank == 0:
            os.replace(tmp, path)
        comm.Barrier()
        return cls.open(path, comm)

    @classmethod
    def open(cls, path, comm):
        return cls(_open(path, "r+", comm), comm)

    def status(self, case):
        return self.f[case_name(case)]["status"][...]

    def write_realization(self, case, index, results, real, wall=0.0):
        """Independent write of one realization's rows; the status goes last."""
        g = self.f[case_name(case)]
        for name, row in results.items():
            g[name][index, :] = row
        if "disorder" in g:
            for name, ds in g["disorder"].items():
                ds[index] = getattr(real, name)
        g["wall_seconds"][index] = wall
        g["status"][index] = DONE

    def write_failure(self, case, index, message, wall=0.0):
        g = self.f[case_name(case)]
        g["error"][index] = message.encode()[:ERROR_LEN]
        g["wall_seconds"][index] = wall
        g["status"][index] = FAILED

    def flush(self):
        self.f.flush()

    def finalize(self):
        """Means and standard errors over the done realizations (rank 0 writes)."""
        complete = True
        if self.comm.rank == 0:
            for name in sorted(k for k in self.f if k.startswith("case_")):
                g = self.f[name]
                status = g["status"][...]
                complete &= bool(np.all(status != PENDING))
                for obs in OBSERVABLES:
                    if obs in g:
                        mean, sem = mean_sem(g[obs][...], status == DONE)
                        g[obs + "_mean"][...] = mean
                        g[obs + "_sem"][...] = sem
            self.f["complete"][()] = int(complete)
        return self.comm.bcast(complete, root=0)

    def close(self):
        self.f.close()


def mean_sem(rows, mask):
    """Mean and standard error of the mean over the rows selected by ``mask``."""
    x = rows[mask]
    n = len(x)
    if n == 0:
        return np.full(rows.shape[1], np.nan), np.full(rows.shape[1], np.nan)
    sem = x.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(rows.shape[1], np.nan)
    return x.mean(0), sem


def _open(path, mode, comm):
    h5py = h5py_module()
    if h5py.get_config().mpi:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    if comm.size > 1:
        raise RuntimeError("this h5py has no MPI support, so only one rank can write the run "
                           "file: install an MPI build of h5py (Debian: python3-h5py-mpi, "
                           "conda-forge: h5py=*=mpi_openmpi*) or run on one rank")
    return h5py.File(path, mode)


def _make_layout(f, config, meta):
    """Create every object of the run file (collective: same calls on all ranks)."""
    times = config.times
    R, T = config.realizations, len(times)
    cases = config.cases()
    swept = list(config.section("sweep"))
    f.attrs.update(meta)
    f.attrs["layout_version"] = LAYOUT_VERSION
    f.attrs["config"] = config.to_toml()
    f.attrs["seed"] = config.seed
    f.attrs["engine"] = config.engine
    f.attrs["n_cases"] = len(cases)
    f.attrs["n_realizations"] = R
    f.attrs["swept"] = ",".join(swept)
    f.attrs["units"] = "energy W, time hbar/W, length nm (see docs/output.md)"
    f.create_dataset("times", data=times).attrs["units"] = UNITS["times"]
    f.create_dataset("complete", shape=(), dtype="i1", fillvalue=0, dcpl=_early())
    request = config.request
    observables = [o for o in OBSERVABLES if getattr(request, o)]
    for k, params in enumerate(cases):
        g = f.create_group(case_name(k))
        g.attrs.update({key: getattr(params, key) for key in params.__dataclass_fields__})
        g.attrs["label"] = case_label(params, swept)
        g.create_dataset("status", shape=(R,), dtype="i1", fillvalue=PENDING, dcpl=_early())
        g.create_dataset("error", shape=(R,), dtype=f"S{ERROR_LEN}", dcpl=_early())
        _dataset(g, "wall_seconds", (R,))
        for obs in observables:
            _dataset(g, obs, (R, T))
            _dataset(g, obs + "_mean", (T,))
            _dataset(g, obs + "_sem", (T,))
        if config.section("observables")["save_disorder"]:
            N = params.N
            d = g.create_group("disorder")
            for name, shape in (("nu", (N,)), ("J", (N, N)), ("Y", (N,)), ("f", (N,)),
                                ("theta", (N,)), ("phi", (N,)), ("eps", (N,)),
                                ("Delta", (N,)), ("g", (N,)), ("positions", (N, 3))):
                _dataset(d, name, (R,) + shape)


def _early():
    """Dataset creation properties that allocate (and fill) storage at creation, so that
    later writes never change the file's metadata (parallel HDF5 does this anyway)."""
    import h5py
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


def _dataset(g, name, shape):
    ds = g.create_dataset(name, shape=shape, dtype="f8", fillvalue=np.nan, dcpl=_early())
    base = name.split("_")[0] if name.endswith(("_mean", "_sem")) else name
    if base in UNITS:
        ds.attrs["units"] = UNITS[base]
    return ds

