"""Reading run files on any machine (no MPI needed): the post-processing side of output.py.

    >>> from tlsmpi.results import Run
    >>> run = Run("default.h5")
    >>> case = run.cases[0]
    >>> case.params["N"], case.label, case.values("concurrence").shape   # done realizations only
"""
import numpy as np

from .output import DONE, FAILED, LAYOUT_VERSION, OBSERVABLES, PENDING, mean_sem


class NotARunFile(ValueError):
    """The file is not a tlsmpi run file, or one of an incompatible layout."""


class Case:
    """One parameter set of a run: per-realization data and their statistics."""

    def __init__(self, group):
        self.name = group.name.strip("/")
        self.params = {k: (v.item() if hasattr(v, "item") else v) for k, v in group.attrs.items()}
        self.label = str(self.params.pop("label", self.name))
        self.status = group["status"][...]
        self.errors = {int(r): group["error"][r].decode(errors="replace")
                       for r in np.flatnonzero(self.status == FAILED)}
        self.wall_seconds = group["wall_seconds"][...]
        self.observables = [o for o in OBSERVABLES if o in group]
        self._rows = {o: group[o][...] for o in self.observables}
        self.disorder = ({k: v[...] for k, v in group["disorder"].items()}
                         if "disorder" in group else {})

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

    def values(self, obs):
        """Per-realization rows (n_done, T) of a done realization set."""
        return self._rows[obs][self.done]

    def mean_sem(self, obs):
        return mean_sem(self._rows[obs], self.done)


class Run:
    """A run file read into memory."""

    def __init__(self, path):
        import h5py
        self.path = str(path)
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            raise NotARunFile(f"{self.path}: not a readable HDF5 file ({err})") from None
        with f:
            version = f.attrs.get("layout_version")
            if version is None or "times" not in f:
                raise NotARunFile(f"{self.path}: not a tlsmpi run file (no layout_version)")
            if int(version) != LAYOUT_VERSION:
                raise NotARunFile(f"{self.path}: run file layout {int(version)}, this tlsmpi "
                                  f"reads layout {LAYOUT_VERSION}")
            self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
            self.times = f["times"][...]
            self.complete = bool(f["complete"][()])
            self.cases = [Case(f[k]) for k in sorted(f) if k.startswith("case_")]

    @property
    def config(self):
        return self.attrs["config"]


def summary(run):
    """A short text table: for each case the realizations done and the key numbers."""
    t = run.times
    lines = [f"{run.path}: engine {run.attrs['engine']}, {len(run.cases)} case(s), "
             f"{len(t)} times in [{t[0]:.3g}, {t[-1]:.3g}] hbar/W, "
             f"{'complete' if run.complete else 'INCOMPLETE (resume with --resume)'}"]
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
