"""Reading run files on any machine (no MPI needed): the post-processing side of output.py.

    >>> from tlsmpi.results import Run
    >>> run = Run("default.h5")
    >>> case = run.cases[0]
    >>> case.params["N"], case.label, case.values("concurrence").shape   # done realizations only

Every row that is used is verified first (status in the closed set, CRC32 checksum,
finite values): a damaged file raises `DamagedRun` naming case, realization and
dataset, never hands out a silently wrong number.  A file that a running job holds
(its lock is alive) is read as a consistent snapshot: rows still in flight count as
pending, and ``run.writer`` names the job.
"""
import os
import sys

import numpy as np

from . import lock
from ..errors import EXIT_IO, os_status
from ..physics import observables as registry
from .writer import DISORDER, DONE, FAILED, LAYOUT_VERSION, PENDING, mean_sem, read_verified

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib

#: Layouts this reader understands (1: before dimension scales and row checksums).
READABLE_LAYOUTS = (1, LAYOUT_VERSION)


class NotARunFile(ValueError):
    """The file is not a tlsmpi run file, or one of an incompatible layout."""


class DamagedRun(ValueError):
    """Rows of the run file are not what they claim to be (``problems`` lists them)."""

    def __init__(self, path, problems):
        self.problems = problems
        shown = "; ".join(f"{c} realization {r} {d}: {why}" for c, r, d, why in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{path}: {len(problems)} damaged row(s): {shown}{more}; recompute them "
                         "with python -m tlsmpi.run ... --resume --repair")


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class Case:
    """One parameter set of a run: per-realization data and their statistics."""

    def __init__(self, group, layout, live=False):
        self.name = group.name.strip("/")
        self.params = {k: (v.item() if hasattr(v, "item") else v) for k, v in group.attrs.items()}
        self.params = {
            k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.params.items()
        }
        self.label = str(self.params.pop("label", self.name))
        if layout >= 2:
            self._rows, self.status, problems = read_verified(group)
        else:
            self.status = group["status"][...].astype(np.int64)
            self._rows = {o: group[o][...] for o in registry.names() if o in group}
            problems = [(int(r), "status", f"status {self.status[r]} is not 0, 1 or -1")
                        for r in np.flatnonzero(~np.isin(self.status, (PENDING, DONE, FAILED)))]
            problems += [(int(r), o, "non-finite value in a row marked done") for o, rows in
                         self._rows.items() for r in np.flatnonzero(self.status == DONE)
                         if not np.all(np.isfinite(rows[r]))]
        self.problems = [] if live else [(self.name,) + p for p in problems]
        # the rows with a mean: the observables the run requested (not an engine's own)
        self.observables = [o for o in self._rows if layout < 2 or o + "_mean" in group]
        #: CF attributes (units, long_name) of each row dataset and disorder dataset
        self.cf = {k: {a: _text(group[k].attrs[a]) for a in ("units", "long_name")
                       if a in group[k].attrs}
                   for k in [*self._rows, *("disorder/" + d for d in group.get("disorder", ()))]}
        self.stored_means = {o: group[o + "_mean"][...] for o in self.observables
                             if o + "_mean" in group}
        root = group.file
        self.realizations = (root["realization"][...] if layout >= 2 else
                             np.arange(len(self.status)))
        self.errors = {int(self.realizations[r]): group["error"][r].decode(errors="replace")
                       for r in np.flatnonzero(self.status == FAILED)}
        self.wall_seconds = group["wall_seconds"][...]
        self.disorder = ({k: v[...] for k, v in group["disorder"].items()}
                         if "disorder" in group else {})

    @classmethod
    def joined(cls, cases):
        """The same case of several run files with disjoint realizations as one, its rows
        in realization order (docs/post.md); no stored means (they are per file)."""
        new, first = cls.__new__(cls), cases[0]
        order = np.argsort(np.concatenate([c.realizations for c in cases]), kind="stable")

        def cat(get):
            return np.concatenate([get(c) for c in cases])[order]
        new.name, new.params, new.label = first.name, first.params, first.label
        new.observables = first.observables
        new.realizations, new.status = cat(lambda c: c.realizations), cat(lambda c: c.status)
        new.wall_seconds = cat(lambda c: c.wall_seconds)
        new._rows = {o: cat(lambda c: c._rows[o]) for o in first._rows}
        new.disorder = {k: cat(lambda c: c.disorder[k]) for k in first.disorder}
        new.errors = dict(sorted(e for c in cases for e in c.errors.items()))
        new.problems = [p for c in cases for p in c.problems]
        new.stored_means = {}
        return new

    @property
    def N(self):
        return int(self.params["N"])

    @property
    def done(self):
        return self.status == DONE

    @property
    def n_done(self):
        return int(self.done.sum())

    @property
    def n_failed(self):
        return int((self.status == FAILED).sum())

    @property
    def n_pending(self):
        return int((self.status == PENDING).sum())

    def rows(self, obs):
        """Per-realization rows (R, T) of every realization, NaN where not done (row k is
        realization ``realizations[k]``, the same disorder in every run of the same seed)."""
        return self._rows[obs]

    def values(self, obs):
        """Per-realization rows (n_done, T) of the verified done realizations."""
        return self._rows[obs][self.done]

    def mean_sem(self, obs):
        return mean_sem(self._rows[obs], self.done)


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


class Run:
    """A run file read into memory and verified.

    Parameters
    ----------
    path : str
    verify : bool
        Raise DamagedRun if a row is damaged (default).  With False the damaged rows
        are listed in ``problems`` and count as pending.

    Raises NotARunFile (also for a file HDF5 cannot open), DamagedRun, or OSError with
    the errno when the system refuses to read the file (permission, device error).
    """

    def __init__(self, path, verify=True):
        import h5py
        self.path = str(path)
        holder, alive = lock.status(self.path)
        alive = alive and not lock.held_here(holder)          # our own lock: we are the writer
        self.writer = lock.describe(holder) if alive else None
        self.stale_lock = lock.describe(holder) if holder is not None and not alive else None
        os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")   # readers never block a writer
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            if os_status(err) == EXIT_IO and err.errno:      # the system refused (EACCES, EIO)
                raise OSError(err.errno, os.strerror(err.errno), self.path) from None
            raise NotARunFile(f"{self.path}: not a readable HDF5 file "
                              f"({' '.join(str(err).split())})") from None
        with f:
            version = f.attrs.get("layout_version")
            if version is None or not ("time" in f or "times" in f):
                raise NotARunFile(f"{self.path}: not a tlsmpi run file (no layout_version)")
            self.layout = int(version)
            if self.layout not in READABLE_LAYOUTS:
                raise NotARunFile(f"{self.path}: run file layout {self.layout}; this tlsmpi "
                                  f"reads layouts {READABLE_LAYOUTS}: upgrade tlsmpi")
            self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
            self.times = f["time" if self.layout >= 2 else "times"][...]
            self.complete = bool(f["complete"][()])
            self.cases = [Case(f[k], self.layout, live=self.writer is not None)
                          for k in sorted(f) if k.startswith("case_")]
        self.problems = [p for c in self.cases for p in c.problems]
        if self.problems and verify:
            raise DamagedRun(self.path, self.problems)

    @classmethod
    def joined(cls, runs):
        """Run files of one configuration (but for ``ensemble.realizations`` and
        ``ensemble.first_realization``) with disjoint realizations, as one run: every case
        `Case.joined`; ``path`` is the paths joined by " + " (docs/post.md)."""
        new, first = cls.__new__(cls), runs[0]
        new.path = " + ".join(r.path for r in runs)
        new.layout = min(r.layout for r in runs)
        new.attrs = dict(first.attrs, n_realizations=sum(len(r.cases[0].status) for r in runs))
        new.times, new.complete = first.times, all(r.complete for r in runs)
        new.writer = "; ".join(r.writer for r in runs if r.writer) or None
        new.stale_lock = None
        new.cases = [Case.joined(cases) for cases in zip(*(r.cases for r in runs))]
        new.problems = [p for c in new.cases for p in c.problems]
        return new

    @property
    def config(self):
        return self.attrs["config"]

    @property
    def n_done(self):
        return sum(c.n_done + c.n_failed for c in self.cases)

    @property
    def n_total(self):
        return sum(len(c.status) for c in self.cases)

    def to_xarray(self, disorder=True):
        """The whole run as one `xarray.Dataset` (needs xarray and pandas).

        Dimensions ``case``, ``realization``, ``time`` and, for the disorder, ``site``,
        ``site_other`` and ``xyz``.  ``case`` is indexed by the swept parameters (a
        pandas MultiIndex; ``N`` when nothing is swept), so ``ds.sel(epsilon=1.0)``,
        ``ds.sel(case=(16, 1.0))`` and ``ds.where(ds.epsilon == 1)`` work; ``label``
        names each case.  Every row dataset of the engine (``concurrence``, Eq. 28;
        ``entropy``, Eq. 29; an engine's own rows) is (case, realization, time) and
        holds only verified done rows, NaN elsewhere; ``status`` (0 pending, 1 done,
        -1 failed; a damaged row counts as pending) and ``error`` say why.
        ``<obs>_mean`` and ``<obs>_sem`` are over the verified done rows.

        Parameters
        ----------
        disorder : bool
            Add the saved disorder (``nu``, ``J``, ``Y``, ..., docs/output.md), NaN
            outside verified done rows and beyond a case's N sites (cases of a sweep over
            N share the ``site`` dimension of the largest).

        Returns
        -------
        xarray.Dataset
            Root attributes of the file (provenance, ``config``, ``seed``, ...) as
            ``attrs``, with ``complete`` and ``path``.
        """
        import xarray as xr
        cases = self.cases
        done = np.stack([c.done for c in cases])
        cf = {k: v for c in reversed(cases) for k, v in c.cf.items()}
        data = {**_bookkeeping_variables(cases), **_row_variables(cases, done, cf),
                **_mean_variables(cases, cf)}
        if disorder:
            data.update(_disorder(cases, done, cf))
        ds = xr.Dataset(data, coords={
            "time": ("time", self.times, {"units": "1", "long_name": "time in units of hbar/W"}),
            "realization": cases[0].realizations, "site": np.arange(max(c.N for c in cases)),
            "label": ("case", [c.label for c in cases])})
        ds = _index_cases(ds, cases, self.attrs.get("swept", ""))
        ds.attrs.update({k: _text(v) for k, v in self.attrs.items()}, complete=int(self.complete),
                        path=self.path)
        return ds


def _bookkeeping_variables(cases):
    """The ``status``, ``error`` and ``wall_seconds`` variables of `Run.to_xarray`."""
    R = len(cases[0].status)
    return {
        "status": (("case", "realization"), np.stack([c.status for c in cases]).astype("i1"),
                   {"long_name": "state of each realization (a damaged row counts as "
                    "pending)", "flag_values": np.array([0, 1, -1], dtype="i1"),
                    "flag_meanings": "pending done failed"}),
        "error": (("case", "realization"),
                  np.array([[c.errors.get(int(c.realizations[r]), "") for r in range(R)]
                            for c in cases]),
                  {"long_name": "failure message of a failed realization"}),
        "wall_seconds": (("case", "realization"), np.stack([c.wall_seconds for c in cases]),
                         {"units": "s", "long_name": "compute time of the realization"}),
    }


def _row_variables(cases, done, cf):
    """The row variables of `Run.to_xarray`, (case, realization, time[, item]), NaN
    outside the verified done rows ``done``."""
    data = {}
    for name in dict.fromkeys(n for c in cases for n in c._rows):
        per_item = (registry.get(name[:-len("_resolved")]).kind,) \
            if name.endswith("_resolved") else ()
        data[name] = (("case", "realization", "time", *per_item),
                      _stacked([c.rows(name) for c in cases], done), cf[name])
    return data


def _mean_variables(cases, cf):
    """The ``<obs>_mean`` and ``<obs>_sem`` variables of `Run.to_xarray`, (case, time)."""
    data = {}
    for obs in dict.fromkeys(o for c in cases for o in c.observables):
        mean, sem = zip(*(c.mean_sem(obs) for c in cases))
        data[obs + "_mean"] = (("case", "time"), np.stack(mean),
                               {**cf[obs], "long_name": cf[obs].get("long_name", obs)
                                + ", mean over the verified done realizations"})
        data[obs + "_sem"] = (("case", "time"), np.stack(sem),
                              {**cf[obs], "long_name": cf[obs].get("long_name", obs)
                               + ", standard error of the mean"})
    return data


def _index_cases(ds, cases, swept):
    """``ds`` with its ``case`` dimension indexed by the ``swept`` parameters (a pandas
    MultiIndex; ``N`` when nothing is swept)."""
    import pandas as pd
    import xarray as xr
    swept = [k for k in str(swept).split(",") if k] or ["N"]
    index = pd.MultiIndex.from_arrays([[c.params[k] for c in cases] for k in swept],
                                      names=swept)
    if hasattr(xr, "Coordinates"):         # xarray >= 2023.08: the explicit form
        return ds.assign_coords(xr.Coordinates.from_pandas_multiindex(index, "case"))
    return ds.assign_coords(case=index)


def _disorder(cases, done, cf):
    """{name: (dims, array, attrs)} of the saved disorder of ``cases`` for `Run.to_xarray`
    (`_stacked`)."""
    return {name: (("case", "realization", *DISORDER[name][0]),
                   _stacked([c.disorder[name] for c in cases], done),
                   cf.get("disorder/" + name, {}))
            for name in dict.fromkeys(k for c in cases for k in c.disorder)}


def _stacked(arrays, done):
    """The per-case arrays (R, ...) stacked along a first axis, NaN-padded to the largest
    of every axis (cases of a sweep over N) and NaN outside the ``done`` rows."""
    out = np.full((len(arrays), *np.max([np.shape(a) for a in arrays], axis=0)), np.nan)
    for k, (a, ok) in enumerate(zip(arrays, done)):
        out[(k, *map(slice, np.shape(a)))] = a
        out[k, ~ok] = np.nan
    return out


def open_run(path, disorder=True):
    """The run file ``path`` read, verified and returned as one `xarray.Dataset`
    (`Run.to_xarray`; raises as `Run` does, e.g. `DamagedRun`)."""
    return Run(path).to_xarray(disorder)


def experiment(config_text):
    """One line on the experiment of a resolved configuration: the initial state and the
    pulse protocol with their site selections (docs/echo.md); a configuration without
    [initial] or [protocol] has the paper's (Eq. 26, free evolution)."""
    try:
        table = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return "experiment: unreadable configuration"

    def selected(t):
        kind = t.get("select", "all")
        if kind == "band":
            return f"TLSs with hbar nu in [{t['nu_min']:.3g}, {t['nu_max']:.3g}] W"
        return f"TLSs {t['sites']}" if kind == "sites" else "all TLSs"
    i, p = table.get("initial", {}), table.get("protocol", {})
    state = i.get("state", "random") + (" (Eq. 26)" if i.get("state", "random") == "random"
                                        else "")
    if state.startswith("bloch"):
        state += f" theta {i['theta']:.3g} deg, phi {i['phi']:.3g} deg"
    if i.get("angle", 0.0):
        state += f", rotated {i['angle']:.3g} deg about {i['axis']} on {selected(i)}"
    kind = p.get("kind", "free")
    pulses = {"cpmg": f"cpmg, {p.get('n_pulses')} pi pulses per time",
              "pulses": f"pi pulses at {p.get('pulse_times')}"}.get(kind, kind)
    if kind != "free":
        pulses += f" about {p['axis']} on {selected(p)}"
    return f"  initial state: {state}; protocol: {pulses}"


def summary(run):
    """A short text table: for each case the realizations done and the key numbers."""
    t = run.times
    if run.writer:
        state = f"BEING WRITTEN by {run.writer}, {run.n_done}/{run.n_total} done"
    elif run.complete:
        state = "complete"
    else:
        state = f"INCOMPLETE ({run.n_done}/{run.n_total} done; resume with --resume)"
    lines = [f"{run.path}: engine {run.attrs['engine']}, {len(run.cases)} case(s), "
             f"{len(t)} times in [{t[0]:.3g}, {t[-1]:.3g}] hbar/W, {state}",
             experiment(run.config)]
    header = f"  {'case':<28} {'done':>9} {'failed':>6}"
    if "concurrence" in run.cases[0].observables:
        header += f" {'max C(t)':>18} {'at t':>9} {'C(t_end)':>20}"
    if "entropy" in run.cases[0].observables:
        header += f" {'S_E(t_end)/N':>20}"
    lines.append(header)
    for case in run.cases:
        line = f"  {case.label:<28} {case.n_done:>4}/{len(case.status):<4} {case.n_failed:>6}"
        if "concurrence" in case.observables and case.n_done:
            m, s = case.mean_sem("concurrence")
            k = int(np.nanargmax(m))
            line += f" {m[k]:>9.4f} ± {s[k]:<6.4f} {t[k]:>9.3g} {m[-1]:>9.2e} ± {s[-1]:<8.1e}"
        if "entropy" in case.observables and case.n_done:
            m, s = case.mean_sem("entropy")
            line += f" {m[-1] / case.N:>9.4f} ± {s[-1] / case.N:<8.4f}"
        lines.append(line)
    for case in run.cases:
        for r, msg in case.errors.items():
            lines.append(f"  failed: {case.label} realization {r}: {msg}")
    return "\n".join(lines)
