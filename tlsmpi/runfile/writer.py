"""The run file: one HDF5 file per run, written in parallel, read anywhere.

Layout (layout_version 2; docs/output.md has the full description)::

    /                      attrs: provenance (version, git commit, command line, config
                                  TOML, seed, engine, MPI size, library versions, times)
    /time  /realization    dimension scales (T,), (R,)
    /complete              ()  1 once no realization is pending
    /end_time              ()  when the run was finalized ("" before)
    /case_000 ...          attrs: the case's effective model parameters, label
        time               (T,)   the times again, on /time's dimension (xarray's group=)
        site, site_other, xyz, checksum_item   dimension scales of this case
        status             (R,)   0 pending, 1 done, -1 failed (flag_values/flag_meanings)
        checksum           (R, K) CRC32 of each of the K rows of a written realization
        error              (R,)   failure message of failed realizations
        wall_seconds       (R,)   compute time of each realization
        concurrence        (R, T) C(t) of Eq. (28), per realization
        entropy, ...       (R, T) every requested observable (tlsmpi.physics.observables)
        <obs>_resolved     (R, T, site|pair) per site / pair values (observables.resolved)
        <obs>_mean, <obs>_sem (T,) over the verified done realizations, at the end
        pair               (P,) pair scale: k of (i, j), i < j row-major (with _resolved)
        disorder/          (R, ...) nu, J, Y, f, theta, phi, eps, Delta, g, positions

Writing (docs/reliability.md).  Rank 0 alone creates the complete file (every dataset
allocated and filled) under a unique temporary name and publishes it atomically; then
every rank opens it with the ``mpio`` driver and only raw values are written in place:
completed rows are buffered per rank and written by independent I/O in one operation
per dataset at each checkpoint, data first, then checksums, then status.  A kill at
any moment leaves a file that opens and verifies; rows whose status is not "done" or
"failed" are recomputed by ``--resume``.
"""
import os
import re
import uuid
import zlib

import numpy as np

from ..errors import with_errno
from ..physics import observables as registry
from ..physics.statistics import sem

LAYOUT_VERSION = 2
PENDING, DONE, FAILED = 0, 1, -1
STATUS_MEANINGS = {PENDING: "pending", DONE: "done", FAILED: "failed"}
ERROR_LEN = 240

#: Per-realization disorder rows: name -> (trailing dimensions, units, long name).
DISORDER = {
    "nu": (("site",), "1", "TLS frequency nu_i in units of W/hbar (Eq. 11)"),
    "J": (("site", "site_other"), "1", "coupling J_ij in units of W, ordered pairs (Eq. 22)"),
    "Y": (("site",), "1", "phonon rate Y_i in units of W/hbar (Eq. 21)"),
    "f": (("site",), "1", "Bose factor f_T(hbar nu_i)"),
    "theta": (("site",), "rad", "polar angle of the initial Bloch vector (Eq. 26)"),
    "phi": (("site",), "rad", "azimuth of the initial Bloch vector (Eq. 26)"),
    "eps": (("site",), "1", "asymmetry epsilon_i in units of W"),
    "Delta": (("site",), "1", "tunnelling amplitude Delta_i in units of W"),
    "g": (("site",), "1", "dipole trace factor g_i, Tr(D_i^2) = g_i^2"),
    "positions": (("site", "xyz"), "nm", "TLS position in the cell (model.geometry)"),
}
#: CF attributes (units, long name) of the runner's own row; an engine's rows come with
#: theirs (`tlsmpi.engines.Engine.outputs`).
WALL_SECONDS = ("s", "compute time of the realization")


def h5py_module():
    """h5py with the MPI build where available (Debian loads it only on request)."""
    os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")
    import h5py
    return h5py


def case_name(k):
    return f"case_{k:03d}"


def case_label(params, swept):
    return " ".join(f"{k}={getattr(params, k):g}" if not isinstance(getattr(params, k), str)
                    else f"{k}={getattr(params, k)}" for k in swept) or f"N={params.N}"


def row_datasets(observables, save_disorder):
    """Names (relative to the case group) of the datasets that hold one row per
    realization and are covered by the row checksum, in checksum order."""
    names = list(observables) + ["wall_seconds"]
    if save_disorder:
        names += ["disorder/" + k for k in DISORDER]
    return names


def crc(row):
    """CRC32 of a row's little-endian bytes."""
    a = np.asarray(row)
    return zlib.crc32(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())


def trailing_size(attrs, N):
    """Length of the trailing dimension of a row declared with ``attrs`` (units, long
    name[, "site" | "pair"]) for N TLSs: 1 for a (T,) row, N sites, N(N-1)/2 pairs."""
    kind = attrs[2] if len(attrs) > 2 else None
    return {None: 1, "site": N, "pair": N * (N - 1) // 2}[kind]


def averaged(rows):
    """The rows that get a mean and a standard error: registered observables, (T,)."""
    return [o for o, attrs in rows.items() if o in registry.names() and len(attrs) == 2]


def file_size_estimate(config, rows):
    """Bytes of the run file of ``config`` with the engine's ``rows`` (its datasets,
    resolved rows with their N or N(N-1)/2 values per time; metadata adds a few 10 kB)."""
    R, T = config.realizations, config.n_times
    save = config.section("observables")["save_disorder"]
    total = 8.0 * T
    for p in config.cases():
        values = sum(trailing_size(attrs, p.N) for attrs in rows.values())
        per_row = 8 * values * T + 8 + 1 + ERROR_LEN + 4 * len(row_datasets(rows, save))
        if save:
            per_row += 8 * (9 * p.N + p.N * p.N + 3 * p.N)
        pair_scale = any(len(attrs) > 2 for attrs in rows.values()) * 8 * p.N * p.N
        total += R * per_row + 16 * len(averaged(rows)) * T + pair_scale
    return total


# --------------------------------------------------------------------------- creation

class LayoutMismatch(ValueError):
    """A run file to grow holds per-realization datasets other than the new layout's."""


def grow(path, config, record, rows):
    """Rewrite the run file at ``path`` for the larger ``config.realizations``
    (``--resume`` with more realizations, docs/output.md): the new layout of `create`,
    the old file's root attributes with ``record`` appended to ``grown``, and every
    dataset with a realization dimension copied bitwise into its first rows; the new
    rows are pending.  Published by an atomic rename as `create` does, so a fault leaves
    the old file as it was.  Raises OSError, or LayoutMismatch (nothing changed)."""
    create(path, config, record, rows, overwrite=True, source=path)


def create(path, config, meta, rows, overwrite=False, source=None):
    """Make the complete run file at ``path`` (one process; no MPI) for the engine's
    ``rows`` ({name: (units, long name)}, `tlsmpi.engines.Engine.outputs`); with
    ``source`` (`grow`) the rows and attributes of that run file are carried over.

    The file is written under a unique temporary name in the target directory and
    published with a no-clobber hard link (or, with ``overwrite``, an atomic rename),
    so a reader never sees a half-made file and two creators never both succeed.  The
    work is done in a forked child that never calls MPI: HDF5 can crash when it closes
    a file whose write failed (disk full, quota), and then only the child dies.
    Raises OSError naming the cause; the temporary file is removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.creating-{uuid.uuid4().hex[:12]}")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: report, then leave at once
        os.close(read)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)    # HDF5's own error stack
            _create(tmp, path, config, meta, rows, overwrite, source)
            os.write(write, b"0\n")
        except BaseException as err:               # report before the failed file's objects
            code = getattr(err, "errno", None) or 0    # are freed: freeing them may crash
            code = MISMATCH if isinstance(err, LayoutMismatch) else code
            os.write(write, f"{code}\n{_strerror(err) or type(err).__name__}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        report = fh.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.path.exists(tmp):
        os.unlink(tmp)
    if not report:
        raise OSError(f"the process creating the file died ({_wait_text(status)})")
    code, message = report.split("\n", 1)
    if message and int(code) == MISMATCH:
        raise LayoutMismatch(message)
    if message:
        raise OSError(int(code), message)


#: The child's report code of a LayoutMismatch (errno values are positive).
MISMATCH = -1


def _wait_text(status):
    return (
        f"signal {os.WTERMSIG(status)}"
        if os.WIFSIGNALED(status)
        else f"status {os.WEXITSTATUS(status)}"
    )


def _create(tmp, path, config, meta, rows, overwrite, source=None):
    h5py = h5py_module()
    old = None
    if source is not None:
        old = h5py.File(source, "r")
        attrs = {k: v for k, v in old.attrs.items()}
        grown = attrs.get("grown", "")
        meta = {**attrs, "grown": (grown + "\n" if grown else "") + meta}
    f = h5py.File(tmp, "w", libver=("v108", "latest"))
    try:                                           # no close after a failure: it may crash
        _make_layout(f, config, meta, rows)
        if old is not None:
            _copy_rows(old, f)
            old.close()
        f.close()
    except (RuntimeError, OSError) as err:         # h5py reports a failed write as either,
        raise with_errno(err if isinstance(err, OSError) else OSError(_strerror(err)),  # the
                         str(err)) from None       # errno only in words
    if overwrite:
        os.replace(tmp, path)
    else:
        os.link(tmp, path)                         # fails if path exists: no clobber
        os.unlink(tmp)


def _per_realization(ds):
    """Whether the dataset ``ds`` has the realization dimension scale on its first axis."""
    return ds.ndim >= 1 and any(s.name == "/realization" for s in ds.dims[0].values())


def _copy_rows(old, new, block_bytes=64e6):
    """Copy every per-realization dataset of the run file ``old`` into the first rows of
    its namesake in ``new`` (blocks of at most ``block_bytes``); LayoutMismatch names a
    dataset that one of them lacks or holds in another shape or type."""
    h5py = h5py_module()

    def per_realization(f):
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset)
                     and _per_realization(o) else None)
        return names
    have, want = per_realization(old), per_realization(new)
    for name in sorted(set(have) ^ set(want)):
        where = "the file" if name in have else "this tlsmpi's layout"
        raise LayoutMismatch(f"dataset {name} is only in {where}")
    for name in have:
        src, dst = old[name], new[name]
        if src.shape[1:] != dst.shape[1:] or src.dtype != dst.dtype:
            raise LayoutMismatch(f"dataset {name} is {src.dtype} {src.shape[1:]} per realization "
                                 f"in the file, {dst.dtype} {dst.shape[1:]} in this layout")
        step = max(1, int(block_bytes // max(1, src.dtype.itemsize * np.prod(src.shape[1:]))))
        for a in range(0, src.shape[0], step):
            b = min(a + step, src.shape[0])
            dst[a:b] = src[a:b]


def _strerror(err):
    """The system's words from an HDF5 error message ("... error message = 'File too
    large' ..."), else the whole message."""
    match = re.search(r"error message = '([^']*)'", str(err))
    return match.group(1).capitalize() if match else str(err)


def _scale(parent, name, data, long_name, units="1"):
    ds = parent.create_dataset(name, data=data)
    ds.attrs.update(units=units, long_name=long_name)
    ds.make_scale(name)
    return ds


def _attach(ds, *scales):
    for axis, scale in enumerate(scales):
        ds.dims[axis].attach_scale(scale)


def _early():
    """Dataset creation properties that allocate (and fill) storage at creation, so that
    later writes never change the file's metadata."""
    h5py = h5py_module()
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


def _data(parent, name, shape, scales, units, long_name, dtype="f8"):
    """A dataset filled with NaN (not yet computed) at creation, with CF attributes."""
    fill = np.nan if dtype == "f8" else 0
    ds = parent.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill, dcpl=_early())
    ds.attrs.update(units=units, long_name=long_name)
    if dtype == "f8":
        ds.attrs["_FillValue"] = np.float64(np.nan)
    _attach(ds, *scales)
    return ds


#: Dimension scales of a case group: name -> (length for N TLSs, long name).
SCALES = {"site": (lambda N: N, "TLS index i"),
          "site_other": (lambda N: N, "TLS index j"),
          "xyz": (lambda N: 3, "Cartesian component"),
          "pair": (lambda N: N * (N - 1) // 2,
                   "pair index k of the TLS pair (i, j), i < j in row-major order: "
                   "(0, 1), (0, 2), ..., (0, N-1), (1, 2), ...")}


def _trailing_scale(g, dims, name, N):
    """The dimension scale ``name`` of case group ``g``, made once (cached in ``dims``)."""
    if name not in dims:
        length, long_name = SCALES[name]
        dims[name] = _scale(g, name, np.arange(length(N)), long_name)
    return dims[name]


def _make_layout(f, config, meta, rows):
    """The whole layout of a new run file in the open ``f``: root attributes and
    coordinates, then every case group (docs/output.md)."""
    cases = config.cases()
    time, realization = _make_root(f, config, meta, len(cases))
    save = config.section("observables")["save_disorder"]
    names = row_datasets(rows, save)
    swept = list(config.section("sweep"))
    for k, params in enumerate(cases):
        g = f.create_group(case_name(k))
        g.attrs.update({key: getattr(params, key) for key in params.__dataclass_fields__})
        g.attrs["label"] = case_label(params, swept)
        # the case's own time coordinate (on the root's dimension), for xarray's group=
        _attach(g.create_dataset("time", data=config.times), time)
        g["time"].attrs.update(units="1", long_name="time in units of hbar/W")
        _make_bookkeeping(g, config.realizations, names, realization)
        _make_rows(g, rows, params.N, (config.realizations, len(config.times)),
                   (realization, time), save)


def _make_root(f, config, meta, n_cases):
    """Root attributes (``meta``, the configuration text, conventions), the ``time`` and
    ``realization`` coordinates (returned) and the ``complete`` and ``end_time`` flags."""
    R = config.realizations
    f.attrs.update(meta)
    f.attrs.update(Conventions="CF-1.8", layout_version=LAYOUT_VERSION, config=config.to_toml(),
                   seed=config.seed, engine=config.engine, n_cases=n_cases,
                   n_realizations=R, swept=",".join(config.section("sweep")),
                   units_note="energy W, time hbar/W, length nm (see docs/output.md)")
    time = _scale(f, "time", config.times, "time in units of hbar/W")
    realization = _scale(f, "realization", config.first_realization + np.arange(R),
                         "disorder realization index r (drawn from "
                         "numpy.random.default_rng([r, seed]))")
    f.create_dataset("complete", shape=(), dtype="i1", fillvalue=0, dcpl=_early()).attrs[
        "long_name"] = "1 once no realization is pending"
    f.create_dataset("end_time", shape=(), dtype="S32", dcpl=_early()).attrs[
        "long_name"] = "when the run was finalized (ISO 8601), empty before"
    return time, realization


def _make_bookkeeping(g, R, names, realization):
    """A case's ``status``, ``checksum`` (over the row datasets ``names``) and ``error``
    of each of its R realizations."""
    status = g.create_dataset(
        "status", shape=(R,), dtype="i1", fillvalue=PENDING, dcpl=_early()
    )
    status.attrs.update(long_name="state of each realization",
                        flag_values=np.array(list(STATUS_MEANINGS), dtype="i1"),
                        flag_meanings=" ".join(STATUS_MEANINGS.values()))
    _attach(status, realization)
    item = _scale(g, "checksum_item", np.arange(len(names)), "row dataset covered by "
                  "the checksum: see attribute datasets")
    item.attrs["datasets"] = " ".join(names)
    checksum = g.create_dataset("checksum", shape=(R, len(names)), dtype="u4", fillvalue=0,
                                dcpl=_early())
    checksum.attrs.update(long_name="CRC32 of the little-endian bytes of each row of a "
                          "written realization", datasets=" ".join(names))
    _attach(checksum, realization, item)
    error = g.create_dataset("error", shape=(R,), dtype=f"S{ERROR_LEN}", dcpl=_early())
    error.attrs["long_name"] = "failure message of a failed realization"
    _attach(error, realization)


def _make_rows(g, rows, N, size, coords, save):
    """A case's row datasets (the engine's ``rows``, ``wall_seconds``) of ``size`` = (R, T)
    on the ``coords`` (realization, time), the means and standard errors of the averaged
    rows, and with ``save`` the disorder group."""
    (R, T), (realization, time) = size, coords
    ancillary = "status checksum"
    dims = {}
    for obs, attrs in rows.items():
        units, long_name = attrs[:2]
        scales = (realization, time)
        if len(attrs) > 2:
            scales += (_trailing_scale(g, dims, attrs[2], N),)
        shape = (R, T) + ((trailing_size(attrs, N),) if len(attrs) > 2 else ())
        _data(g, obs, shape, scales, units, long_name).attrs["ancillary_variables"] = ancillary
    _data(g, "wall_seconds", (R,), (realization,), *WALL_SECONDS).attrs[
        "ancillary_variables"] = ancillary
    for obs in averaged(rows):
        units, long_name = rows[obs]
        _data(g, obs + "_mean", (T,), (time,), units, long_name + ", mean over done "
                                                                  "realizations")
        _data(g, obs + "_sem", (T,), (time,), units, long_name + ", standard error of the mean")
    if save:
        for name in ("site", "site_other", "xyz"):
            _trailing_scale(g, dims, name, N)
        d = g.create_group("disorder")
        for name, (trailing, units, long_name) in DISORDER.items():
            shape = (R,) + tuple(3 if t == "xyz" else N for t in trailing)
            _data(d, name, shape, (realization,) + tuple(dims[t] for t in trailing),
                  units, long_name)


# --------------------------------------------------------------------------- writing

class SerialComm:
    """The communicator of one process without MPI (`SERIAL`): what `RunFile` uses of an
    mpi4py communicator, for writing a run file in a process that never starts MPI."""
    rank, size = 0, 1

    def bcast(self, obj, root=0):
        return obj


#: The one-process communicator of `RunFile` without MPI (``tlsmpi.simulate``).
SERIAL = SerialComm()


def _open_parallel(path, comm):
    h5py = h5py_module()
    if comm is SERIAL:
        return h5py.File(path, "r+")
    if h5py.get_config().mpi:
        return h5py.File(path, "r+", driver="mpio", comm=comm)
    if comm.size > 1:
        raise RuntimeError("this h5py has no MPI support, so only one rank can write the run "
                           "file: install an MPI build of h5py (Debian: python3-h5py-mpi, "
                           "conda-forge: h5py=*=mpi_openmpi*) or run on one rank")
    return h5py.File(path, "r+")


class RunFile:
    """Writer side of the run file, opened on all ranks of ``comm`` (collective; `SERIAL`:
    one process without MPI).

    Completed realizations are buffered with `add`/`add_failure` and written by
    `write_buffer` (independent I/O: no other rank takes part)."""

    def __init__(self, path, comm):
        self.path = path
        self.comm = comm
        self.f = _open_parallel(path, comm)
        self.parallel = self.f.driver == "mpio"
        self.buffer = []
        # Every object is opened here, by all ranks together: with the mpio driver a
        # metadata read by one rank alone can wait for the others forever.  Later I/O
        # (raw values of these datasets) is independent.
        self.root = {k: self.f[k] for k in ("complete", "end_time")}
        self.cases = []
        for name in sorted(k for k in self.f if k.startswith("case_")):
            g = self.f[name]
            datasets = {k: v for k, v in g.items() if isinstance(v, h5py_module().Dataset)}
            if "disorder" in g:
                datasets.update({"disorder/" + k: v for k, v in g["disorder"].items()})
            self.cases.append(
                _Handles(name, datasets, datasets["checksum"].attrs["datasets"].split())
            )

    def status(self, case):
        return self.cases[case].ds["status"][...]

    def add(self, case, index, results, real, wall):
        rows = dict(results)
        rows["wall_seconds"] = np.float64(wall)
        if "disorder/nu" in self.cases[case].ds:
            rows.update({"disorder/" + k: getattr(real, k) for k in DISORDER})
        self.buffer.append((case, index, DONE, rows, b""))

    def add_failure(self, case, index, message, wall):
        self.buffer.append((case, index, FAILED, {"wall_seconds": np.float64(wall)},
                            message.encode(errors="replace")[:ERROR_LEN]))

    def write_buffer(self):
        """Write the buffered rows: per case and dataset one write of all rows (sorted),
        then the checksums, then the status.  Returns the number of rows written."""
        n = len(self.buffer)
        by_case = {}
        for entry in sorted(self.buffer, key=lambda e: (e[0], e[1])):
            by_case.setdefault(entry[0], []).append(entry)
        for case, entries in by_case.items():
            g, names = self.cases[case].ds, self.cases[case].names
            index = [e[1] for e in entries]
            sums = g["checksum"][index, :]
            for k, name in enumerate(names):
                have = [(j, e) for j, e in enumerate(entries) if name in e[3]]
                if not have:
                    continue
                rows = np.stack([np.asarray(e[3][name], dtype=float) for _, e in have])
                g[name][[e[1] for _, e in have]] = rows
                for (j, _), row in zip(have, rows):
                    sums[j, k] = crc(row)
            failed = [(e[1], e[4]) for e in entries if e[2] == FAILED]
            if failed:
                g["error"][[r for r, _ in failed]] = np.array(
                    [m for _, m in failed], dtype=f"S{ERROR_LEN}"
                )
            g["checksum"][index, :] = sums
            g["status"][index] = np.array([e[2] for e in entries], dtype="i1")
        self.buffer = []
        if not self.parallel:
            self.f.flush()
        return n

    def mark_pending(self, rows):
        """Set the status of damaged rows [(case, index)] back to pending (``--repair``)."""
        for case, index in sorted(rows):
            self.cases[case].ds["status"][index] = PENDING
        if not self.parallel:
            self.f.flush()

    def finalize(self, end_time):
        """Verify every row, then write means and standard errors over the verified done
        rows, the complete flag and the end time (rank 0).  Returns (complete, problems)
        on every rank; with problems nothing is written.  Collective: the flush (an
        MPI_File_sync on every rank) makes the rows all ranks wrote visible to rank 0."""
        result = None
        self.f.flush()
        if self.comm.rank == 0:
            problems, complete, stats = [], True, []
            for case in self.cases:
                rows, status, bad = read_verified(case.ds, case.names)
                problems += [(case.name,) + b for b in bad]
                complete &= bool(np.all(status != PENDING))
                stats.append(
                    {o: mean_sem(rows[o], status == DONE) for o in rows
                     if o + "_mean" in case.ds}
                )
            if not problems:
                for case, per_obs in zip(self.cases, stats):
                    for obs, (mean, sem) in per_obs.items():
                        case.ds[obs + "_mean"][...] = mean
                        case.ds[obs + "_sem"][...] = sem
                self.root["complete"][()] = int(complete)
                self.root["end_time"][()] = end_time.encode()
            result = (complete, problems)
        return self.comm.bcast(result, root=0)

    def close(self):
        """Collective close (every rank)."""
        self.cases = self.root = None
        self.f.close()


class _Handles:
    """The open datasets of one case group: ``ds`` by path relative to the group, and
    ``names`` the row datasets in checksum order."""

    def __init__(self, name, ds, names):
        self.name, self.ds, self.names = name, ds, names


# --------------------------------------------------------------------------- verifying

def read_verified(group, names=None):
    """Read a case group (or a mapping of its datasets) and verify every written row.

    Returns ``(rows, status, problems)``: rows maps each row dataset of the engine (the
    observables and any row of its own) to its (R, T) array; status is the stored status
    with damaged rows set to PENDING; problems is a list of (realization, dataset, reason)
    for rows that are not what they claim: a status outside {pending, done, failed}, a
    checksum mismatch or a non-finite value in a done row.
    """
    status = group["status"][...].astype(np.int64)
    names = group["checksum"].attrs["datasets"].split() if names is None else names
    sums = group["checksum"][...]
    problems = []
    valid = np.isin(status, list(STATUS_MEANINGS))
    for r in np.flatnonzero(~valid):
        problems.append((int(r), "status", f"status {status[r]} is not one of "
                         f"{', '.join(f'{k} {v}' for k, v in STATUS_MEANINGS.items())}"))
    rows = {}
    done = np.flatnonzero(status == DONE)
    failed = np.flatnonzero(status == FAILED)
    for k, name in enumerate(names):
        data = group[name][...]
        if name != "wall_seconds" and not name.startswith("disorder/"):
            rows[name] = data
        check = failed if name == "wall_seconds" else []
        for r in np.concatenate([done, check]).astype(int):
            if crc(data[r]) != sums[r, k]:
                problems.append((int(r), name, "checksum mismatch (the row's bytes changed "
                                 "after it was written)"))
            elif status[r] == DONE and not np.all(np.isfinite(data[r])):
                problems.append((int(r), name, "non-finite value in a row marked done"))
    bad = sorted({p[0] for p in problems})
    status[bad] = PENDING
    for name in rows:
        rows[name][status != DONE] = np.nan
    return rows, status, problems


def mean_sem(rows, mask):
    """Mean and standard error of the mean over the rows selected by ``mask``."""
    x = rows[mask]
    n = len(x)
    if n == 0:
        return np.full(rows.shape[1], np.nan), np.full(rows.shape[1], np.nan)
    return x.mean(0), (sem(x) if n > 1 else np.full(rows.shape[1], np.nan))
