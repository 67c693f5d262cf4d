"""The pooled analyses of all cases given to ``python -m tlsmpi.post``: `Pool` gathers the
cases of every run file (`Entry`, with its fits computed on first use) and picks families
of cases by what they contain; the functions below fit a family (alpha, the eta collapse,
the volume law, stretched exponentials, beta extrapolations, the random-state scaling).
The text report (`tlsmpi.post.commands`) and the figures (`tlsmpi.post.figures`) share
them, each computed once per pool (`pooled`).
"""
from functools import cached_property

import numpy as np

from .. import randomstates
from ..runfile.reader import Run, experiment
from ..runfile.settings import differences, differing_keys, tomllib
from . import analysis


class NoData(LookupError):
    """The files hold no data for a figure."""


class NotCombinable(ValueError):
    """Run files that cannot be pooled as one ensemble (the message names why)."""


#: The keys in which files of one ensemble may differ (docs/post.md).
SPLIT_KEYS = ("ensemble.realizations", "ensemble.first_realization")
#: Files of the same cases that differ only in these sections are other experiments on the
#: same disorder (docs/echo.md: pi pulses on the band or on all TLSs), kept side by side.
EXPERIMENT_SECTIONS = ("initial.", "protocol.")


def ensembles(runs):
    """The run files with every set of files of one ensemble joined into one run
    (`tlsmpi.runfile.reader.Run.joined`): files whose configurations differ only in
    `SPLIT_KEYS`.  NotCombinable names the files and the realizations two of them both
    hold, or the keys in which two files with the same cases differ (other than the
    experiment's, `EXPERIMENT_SECTIONS`)."""
    groups = []
    for run in runs:
        for group in groups:
            keys = [k for k in differing_keys(group[0].config, run.config) if k not in SPLIT_KEYS]
            if not keys:
                _check_disjoint(group, run)
                group.append(run)
                break
            other = [k for k in keys if not k.startswith(EXPERIMENT_SECTIONS)]
            if other and [c.params for c in group[0].cases] == [c.params for c in run.cases]:
                why = differences(group[0].config, run.config, names=("first", "second"))
                raise NotCombinable(
                    f"{group[0].path} and {run.path} hold the same cases but are not one "
                    f"ensemble ({why}): pool only files whose configurations differ in "
                    f"{' or '.join(SPLIT_KEYS)}, or give one of them")
        else:
            groups.append([run])
    return [g[0] if len(g) == 1 else Run.joined(g) for g in groups]


def _check_disjoint(group, run):
    have = run.cases[0].realizations
    for other in group:
        both = np.intersect1d(other.cases[0].realizations, have)
        if len(both):
            raise NotCombinable(
                f"{other.path} and {run.path} both hold realizations {_span(both)} of one "
                "ensemble: give each realization once (make the second file with "
                "ensemble.first_realization, docs/post.md)")


def _span(indices):
    return f"{indices[0]}-{indices[-1]}" if len(indices) > 1 else f"{indices[0]}"


class Entry:
    """One case of one run file, with its analysis results computed on first use."""

    def __init__(self, run, case, n_boot, seed):
        self.run, self.case, self.t = run, case, run.times
        self.params, self.group = case.params, run.path
        self.n_boot, self.seed = n_boot, seed

    def has(self, obs):
        return obs in self.case.observables and self.case.n_done >= 2

    def rows(self, obs="concurrence"):
        return self.case.values(obs)

    def mean_sem(self, obs="concurrence"):
        return self.case.mean_sem(obs)

    def _boot(self):
        return dict(n_boot=self.n_boot, seed=self.seed)

    @cached_property
    def beta(self):
        return analysis.beta_estimate(self.t, self.rows(), **self._boot())

    @cached_property
    def plateau(self):
        return analysis.plateau_estimate(self.rows(), **self._boot())

    @cached_property
    def peak(self):
        return analysis.peak_estimate(self.t, self.rows(), **self._boot())

    @cached_property
    def entropy_plateau(self):
        return analysis.plateau_estimate(self.rows("entropy"), **self._boot())

    @cached_property
    def echo(self):
        """T_M and x of the echo decay (`analysis.echo_estimate`, docs/echo.md)."""
        return analysis.echo_estimate(self.t, self.rows("echo"), self.rows("echo_imag"),
                                      **self._boot())

    @cached_property
    def experiment(self):
        """The run's initial state and pulses in one line (`runfile.reader.experiment`)."""
        return experiment(self.run.config)

    @cached_property
    def pulsed(self):
        """'pi on band' / 'pi on all' / 'pi on sites': the TLSs the run's pi pulses act on
        (its [protocol] select, docs/echo.md)."""
        return f"pi on {tomllib.loads(self.run.config).get('protocol', {}).get('select', 'all')}"

    @cached_property
    def couplings(self):
        J = self.case.disorder.get("J")
        return analysis.coupling_scales(J[self.case.done]) if J is not None else None


def pooled(fn):
    """Cache a function of the pool (summary and figures share their fits)."""
    def wrapper(pool):
        if fn.__name__ not in pool.memo:
            pool.memo[fn.__name__] = fn(pool)
        return pool.memo[fn.__name__]
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


class Pool:
    """All cases of the run files, plus the random-state files."""

    def __init__(self, runs, randomstate_files=(), n_boot=analysis.N_BOOT, seed=0, alpha_nmin=0):
        self.alpha_nmin = alpha_nmin
        self.entries = [Entry(r, c, n_boot, seed) for r in runs for c in r.cases]
        self.randomstates = list(randomstate_files)
        self.memo = {}
        #: figure -> why cases were left out of it (printed when the figure is skipped)
        self.notes = {}

    def duplicates(self):
        """One line per parameter set and experiment found in several files (of different
        configurations: files of one ensemble are joined first), naming the one the
        figures use."""
        seen = {}
        for e in self.entries:
            seen.setdefault((tuple(sorted(e.params.items())), e.experiment), []).append(e)
        lines = []
        for same in (s for s in seen.values() if len(s) > 1):
            best = max(same, key=lambda e: e.case.n_done)
            lines.append(f"{same[0].case.label} is in " + ", ".join(
                f"{e.group} ({e.case.n_done} done)" for e in same)
                + f": the figures use {best.group} (most realizations)")
        return lines

    def family(self, obs, vary, where=lambda p: True):
        """The largest set of cases with ``obs`` whose parameters differ only in the keys
        ``vary``; duplicates (same parameters in several files) keep the one with the
        most realizations.  Sorted by the varied keys."""
        groups = {}
        for e in self.entries:
            if e.has(obs) and where(e.params):
                fixed = tuple(sorted((k, v) for k, v in e.params.items() if k not in vary))
                key = tuple(e.params[k] for k in vary)
                best = groups.setdefault(fixed, {})
                if key not in best or e.case.n_done > best[key].case.n_done:
                    best[key] = e
        if not groups:
            return []
        chosen = max(groups.values(), key=len)
        return [chosen[k] for k in sorted(chosen)]


def beta_extrapolation(pool, fam):
    """beta(N) of a family extrapolated linearly in 1/N."""
    return analysis.beta_extrapolation([e.params["N"] for e in fam], [e.t for e in fam],
                                       [e.rows() for e in fam], [e.group for e in fam],
                                       fam[0].n_boot, fam[0].seed)


@pooled
def alpha(pool):
    fam = pool.family("concurrence", ["N"], lambda p: p["epsilon"] == 0)
    est = analysis.alpha_estimate([e.params["N"] for e in fam], [e.rows() for e in fam],
                                  [e.group for e in fam], fam[0].n_boot, fam[0].seed,
                                  pool.alpha_nmin) \
        if len(fam) >= 2 else analysis.Estimate(np.nan, np.nan, {"N_used": []})
    return fam, est


@pooled
def collapse(pool):
    fam = pool.family("concurrence", ["eta"], lambda p: p["epsilon"] == 0)
    if len(fam) < 2:
        return fam, None
    return fam, analysis.eta_collapse([(e.params["eta"], e.t, *e.mean_sem()) for e in fam])


def volume_law(fam):
    return analysis.entropy_volume_law([e.params["N"] for e in fam],
                                       [e.rows("entropy") for e in fam], [e.group for e in fam],
                                       fam[0].n_boot, fam[0].seed)


def open_family(pool, obs="concurrence"):
    return pool.family(obs, ["N", "epsilon"])


@pooled
def stretched_pairs(pool):
    """(entry at 0 < epsilon < 1, matching epsilon = 0 entry, Estimate of delta); why a
    case at 0 < epsilon < 1 has none goes to ``pool.notes["fig9"]``."""
    fam = open_family(pool)
    ref = {e.params["N"]: e for e in fam if e.params["epsilon"] == 0}
    out, why = [], pool.notes.setdefault("fig9", [])
    for e in (e for e in fam if 0 < e.params["epsilon"] < 1):
        r, name = ref.get(e.params["N"]), f"N={e.params['N']} epsilon={e.params['epsilon']:g}"
        if r is None:
            why.append(f"{name}: no epsilon = 0 case of that N")
        elif not np.array_equal(e.t, r.t):
            why.append(f"{name} ({e.group}): its epsilon = 0 case ({r.group}) has other times")
        else:
            est = analysis.stretched_estimate(e.t, e.rows(), r.rows(), paired=e.group == r.group,
                                              n_boot=e.n_boot, seed=e.seed)
            out.append((e, r, est))
            if not np.isfinite(est.value):
                why.append(f"{name}: no fit window (C(t) does not leave the epsilon = 0 plateau)")
    return out


@pooled
def open_betas(pool):
    """{epsilon: (cases of that epsilon sorted by N, beta extrapolation or None)} over the
    (N, epsilon) family; epsilon = 0 gives beta_i, epsilon > 0 beta_o (Fig. 10b)."""
    by_eps = {}
    for e in open_family(pool):
        by_eps.setdefault(e.params["epsilon"], []).append(e)
    return {eps: (g, beta_extrapolation(pool, g) if len(g) >= 2 else None)
            for eps, g in sorted(by_eps.items())}


def random_state_fit(data):
    """The fit of Eq. (C7) to pooled random states (`randomstates.fit_scaling`) with the
    chi^2 test of every fit (`analysis.chi2_limit`): ``dof``, ``chi2_max``, ``fails``.

    The window is the widest range of usable sizes that ends at the largest and passes
    the test, at least three sizes (one degree of freedom), as for alpha (Fig. 6a): the
    law is asymptotic in N and the small sizes bend away from it.  Without such a window,
    all usable sizes (the fit then fails: the model does not describe the data and no
    error may be presented).  ``all_sizes``: the fit over all usable sizes."""
    N = np.asarray(data["N"])
    columns = [np.asarray(data[k]) for k in ("mean", "sem", "nonzero")]

    def tested(keep):
        fit = randomstates.fit_scaling(N[keep], *(c[keep] for c in columns))
        dof = len(fit["N_used"]) - 2
        limit = analysis.chi2_limit(dof)
        return {**fit, "dof": dof, "chi2_max": limit, "fails": bool(fit["chi2_dof"] > limit)}
    full = tested(np.ones(len(N), dtype=bool))
    for window in analysis.tail_windows(full["N_used"]):
        fit = tested(np.isin(N, window))
        if not fit["fails"]:
            return {**fit, "all_sizes": full}
    return {**full, "all_sizes": full}


def random_state_text(fit, digits=3):
    """'a = .., b = .. over N = lo..hi, ...' of `random_state_fit`: with the covariance
    errors (two significant digits) when the fit passes its chi^2 test, without them and
    saying so when not (then ``digits`` decimals)."""
    over = f"over N = {min(fit['N_used'])}..{max(fit['N_used'])}"
    full = fit.get("all_sizes", fit)
    if full["N_used"] != fit["N_used"]:
        over += (f" (the widest window ending at the largest N that passes its chi^2 test; "
                 f"over N = {min(full['N_used'])}..{max(full['N_used'])} chi^2/nu = "
                 f"{full['chi2_dof']:.2g} > {full['chi2_max']:.2g})")
    chi2 = f"chi^2/nu = {fit['chi2_dof']:.2g}"
    if fit["fails"]:
        return (f"a = {fit['a']:.{digits}f}, b = {fit['b']:.{digits}f} {over}: the model "
                f"does not describe the data ({chi2} > {fit['chi2_max']:.2g}), so no error "
                "is given")
    return (f"a = {_with_error(fit['a'], fit['a_err'])}, b = "
            f"{_with_error(fit['b'], fit['b_err'])} (fit covariance) {over}, {chi2} (limit "
            f"{fit['chi2_max']:.2g})")


def _with_error(value, err):
    """'value +- err' with two significant digits of the error."""
    d = max(0, 1 - int(np.floor(np.log10(err)))) if err > 0 and np.isfinite(err) else 3
    return f"{value:.{d}f} +- {err:.{d}f}"
