"""Paper-level analyses of run files (Secs. IV C-D, Figs. 4-11); plain numpy/scipy, no MPI.

Every estimator works on realization-averaged curves; its uncertainty is the central
68 % percentile interval of bootstrap replicas that resample realizations with
replacement (`bootstrap`, seeded), and ``err`` is half its width.  A percentile interval
stays meaningful when a few replicas fall far away (an estimator that is unstable on a
resample, e.g. a peak that moves to another maximum), where a standard deviation does
not; when more than ``MAX_FAILED`` of the replicas give no value at all the interval is
not reported (NaN).  Cases of one run share their disorder (same realization indices),
so samples that belong to one group are resampled with the same indices.

Every fit also reports its window and its reduced chi^2 (``info['chi2_dof']``, with
``info['dof']`` = nu), with the standard errors of the mean curves as the point errors
(`fit_quality`).  A fit whose chi^2/nu exceeds ``chi2_limit(nu)``, the ``P_FAIL`` (99.9 %)
point of the chi^2_nu / nu distribution, fails: the model does not describe the data
(``Estimate.fails``), and its interval is not an error bar (``format`` and the figures
say so instead).  For nu = 1, 5, 20, 100 the limit is 10.8, 4.1, 2.3, 1.45: a correct model
fails one fit in 1000.  The points of one curve are correlated in time (the same
realizations at every t); positive correlations make the residuals about a smooth fit
smaller than independent ones, so the test errs towards accepting, never towards a false
"does not describe".  A parameter whose value or interval reaches a bound of its fit is
reported as a bound (``info['bounds']``, `Estimate.at_bound`), not as a measurement.

Rules chosen here (the paper does not state its own; docs/post.md repeats them):

* Plateau C(inf): the mean over the last ``TAIL`` (10 %, at least 3) points of the time
  grid; ``drift`` = relative change between the two halves of that tail (a plateau that
  has not been reached shows up as a large drift).
* Power-law window (beta_i at epsilon = 0, beta_o at epsilon > 0, Eq. 30): after the peak
  of the mean C(t), from the first time with C <= ``START`` x C_max (1/2) for as long as
  C >= max(``ABOVE_PLATEAU`` x C(inf), ``FLOOR`` x C_max) (10, 1e-3); ordinary least
  squares of ln(C - C(inf)) against ln t there (subtracting the plateau removes its
  bias on the slope at the end of the window).  The window is fixed from the full sample and
  reused in every bootstrap replica.
* beta(N -> inf) (Fig. 4 inset, Fig. 10b): a line beta_inf + c/N through the largest-N
  contiguous range of sizes whose own power laws pass the chi^2 test and whose line passes
  it too, widest first, at least 3 sizes (nu >= 1: a line through 2 points cannot be tested);
  without such a range there is no extrapolation (``info['why']``).
* Stretched exponential (Fig. 9): y(t) = C(t; eps) / C(inf; eps = 0) fitted with
  A exp(-((t + t0)/tau)^delta) in log space, t0 = 0 (see `stretched_exp_fit`), from the first time
  at which the eps = 0
  curve is within ``SETTLED`` (1.5) x its plateau, as long as y >= ``FLOOR``.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..physics.statistics import sem

TAIL, START, ABOVE_PLATEAU, FLOOR, SETTLED = 0.1, 0.5, 10.0, 1e-3, 1.5
MIN_POINTS = 4
N_BOOT = 200
CONFIDENCE = 0.68      # central bootstrap percentile interval reported as the error
MAX_FAILED = 0.1       # fraction of replicas without a value above which no interval is given
CHI2_MAX = 2.0         # largest reduced chi^2 of a preferred fit window (alpha, Fig. 6a)
P_FAIL = 0.999         # a fit with chi^2/nu above this quantile of chi^2_nu/nu fails
DELTA_BOUNDS = (0.01, 5.0)    # stretched-exponential exponent delta (Fig. 9)
EXTRAPOLATE_MIN = 3    # sizes of a beta(1/N) line: nu >= 1
ETA_REF = 1e5          # Fig. 6b normalizes the time to eta = 1e5


@dataclass
class Estimate:
    """A number with its bootstrap error: ``interval`` is the central ``CONFIDENCE``
    percentile interval of the replicas and ``err`` half its width; ``info`` holds fit
    details (window, chi2_dof)."""
    value: float
    err: float
    info: dict = field(default_factory=dict)
    interval: tuple = (np.nan, np.nan)

    @property
    def fails(self):
        """The fit fails its chi^2 test: the model does not describe the data."""
        return bool(self.info.get("fails", False))

    @property
    def at_bound(self):
        """'value', 'lower' or 'upper' when the value or that end of the interval reaches a
        bound of the fit (``info['bounds']``), else None."""
        lo_b, hi_b = self.info.get("bounds", (np.nan, np.nan))

        def near(x, b):              # trf iterates stay strictly inside: 1e-6 relative
            return bool(np.isfinite(x) and np.isfinite(b) and abs(x - b) <= 1e-6 * abs(b))
        if near(self.value, lo_b) or near(self.value, hi_b):
            return "value"
        lo, hi = self.interval
        return "upper" if near(hi, hi_b) else "lower" if near(lo, lo_b) else None

    @property
    def error_bar(self):
        """(lo, hi) to draw as an error bar, or None: a failed fit, a bounded parameter or
        no interval has none."""
        lo, hi = self.interval
        if self.fails or self.at_bound or not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        return lo, hi

    def __format__(self, spec):
        spec = spec or ".3g"
        lo, hi = self.interval
        (lo_b, hi_b), bound = self.info.get("bounds", (np.nan, np.nan)), self.at_bound
        notes = [f"model does not describe the data: chi2/nu {self.info['chi2_dof']:.3g} > "
                 f"{self.info['chi2_max']:.3g}"] if self.fails else []
        if bound == "value":
            v = lo_b if abs(self.value - lo_b) < abs(self.value - hi_b) else hi_b
            return f"{v:{spec}} ({'; '.join(['at the fit bound: not measured'] + notes)})"
        if bound:
            lim = (f"> {lo:{spec}}; < {hi_b:{spec}}" if bound == "upper" else
                   f"< {hi:{spec}}; > {lo_b:{spec}}")
            notes.insert(0, f"{lim}, at the bound")
        if notes:
            return f"{self.value:{spec}} ({'; '.join(notes)})"
        if np.isfinite(lo) and np.isfinite(hi):
            return f"{self.value:{spec}} [{lo:{spec}}, {hi:{spec}}]"
        return f"{self.value:{spec}} ± {self.err:.2g}"


def percentile_interval(reps, level=CONFIDENCE):
    """Central ``level`` percentile interval of bootstrap replicas along axis 0.

    Returns (lo, hi) arrays (floats for scalar replicas); NaN where more than
    ``MAX_FAILED`` of the replicas are NaN (the estimator fails on resamples).
    """
    reps = np.asarray(reps, dtype=float)
    q = 50 * (1 - level), 50 * (1 + level)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN columns
        lo, hi = np.nanpercentile(reps, q, axis=0)
    failed = np.mean(~np.isfinite(reps), axis=0) > MAX_FAILED
    lo, hi = np.where(failed, np.nan, lo), np.where(failed, np.nan, hi)
    return (lo[()], hi[()]) if np.ndim(lo) == 0 else (lo, hi)


def estimates(value, reps):
    """Estimate(s) of ``value`` (float or array) with percentile intervals from ``reps``."""
    lo, hi = percentile_interval(reps)
    value, lo, hi = np.atleast_1d(value), np.atleast_1d(lo), np.atleast_1d(hi)
    out = [Estimate(float(v), float((b - a) / 2), interval=(float(a), float(b)))
           for v, a, b in zip(value, lo, hi)]
    return out[0] if np.ndim(reps) == 1 else out


def chi2_dof(residuals, sigma, n_params):
    """Reduced chi^2 of residuals with point errors ``sigma`` (NaN without a dof or errors)."""
    r, sigma = np.asarray(residuals, dtype=float), np.asarray(sigma, dtype=float)
    dof = r.size - n_params
    if dof <= 0 or not np.all(sigma > 0):
        return np.nan
    return float(np.sum((r / sigma) ** 2) / dof)


def chi2_limit(dof, p=P_FAIL):
    """Largest accepted chi^2/nu: the ``p`` quantile of chi^2_nu / nu (NaN for nu < 1)."""
    from scipy.stats import chi2
    return float(chi2.ppf(p, dof) / dof) if dof >= 1 else np.nan


def fit_quality(residuals, sigma, n_params):
    """info of a fit: chi2_dof, dof (nu), chi2_max = `chi2_limit` (nu) and ``fails``
    (chi^2/nu above it; a fit without a dof or errors cannot fail, nor pass: NaN)."""
    dof = np.size(residuals) - n_params
    c, limit = chi2_dof(residuals, sigma, n_params), chi2_limit(dof)
    return {"chi2_dof": c, "dof": int(dof), "chi2_max": limit, "fails": bool(c > limit)}


# ---------------------------------------------------------------- bootstrap

def bootstrap(samples, estimator, n_boot=N_BOOT, seed=0, groups=None):
    """Estimate ``estimator(*means)`` and its bootstrap error.

    samples: list of arrays (n_realizations, ...); estimator gets the means over axis 0.
    groups: one key per sample; samples with the same key and length are resampled with
    the same realization indices (paired cases of one run).  Returns (value, err,
    replicas); value and err are arrays or floats like the estimator's result, err is
    the nan-ignoring standard deviation of the replicas.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    value = estimator(*[s.mean(0) for s in samples])
    groups = list(range(len(samples))) if groups is None else list(groups)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        drawn = {}
        means = []
        for s, g in zip(samples, groups):
            key = (g, len(s))
            if key not in drawn:
                drawn[key] = rng.integers(0, len(s), len(s))
            means.append(s[drawn[key]].mean(0))
        reps.append(estimator(*means))
    reps = np.asarray(reps, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.nanstd(reps, axis=0, ddof=1) if n_boot > 1 else np.full_like(reps[0], np.nan)
    return value, err, reps


# ---------------------------------------------------------------- single curves

def peak(t, C):
    """(t_max, C_max) of a curve; t_max refined by a parabola in ln t through the three
    grid points around the maximum."""
    k = int(np.nanargmax(C))
    if 0 < k < len(C) - 1:
        x, y = np.log(t[k - 1:k + 2]), C[k - 1:k + 2]
        a, b, _ = np.polyfit(x, y, 2)
        if a < 0:
            xm = np.clip(-b / (2 * a), x[0], x[-1])
            return float(np.exp(xm)), float(C[k])
    return float(t[k]), float(C[k])


def plateau_value(C, tail=TAIL):
    """Mean of the last ``tail`` fraction (at least 3 points) of a curve: C(inf)."""
    n = max(3, int(round(tail * len(C))))
    return float(np.mean(C[..., -n:]))


def plateau_drift(C, tail=TAIL):
    """Relative change between the two halves of the tail used by `plateau_value`."""
    n = max(4, int(round(tail * len(C))))
    a, b = np.mean(C[-n:-n // 2]), np.mean(C[-n // 2:])
    return float(abs(b - a) / abs(b)) if b else float("inf") if a else 0.0


def decay_window(t, C, tail=TAIL):
    """Index slice of the power-law decay between peak and plateau (module rule), or None."""
    k_peak = int(np.nanargmax(C))
    c_max, c_inf = C[k_peak], plateau_value(C, tail)
    lower = max(ABOVE_PLATEAU * c_inf, FLOOR * c_max)
    after = np.arange(k_peak + 1, len(C))
    start = after[C[after] <= START * c_max]
    if not len(start):
        return None
    k0 = int(start[0])
    k1 = k0
    while k1 < len(C) and C[k1] >= lower:
        k1 += 1
    return slice(k0, k1) if k1 - k0 >= MIN_POINTS else None


def power_law_exponent(t, C, window):
    """beta of C - C(inf) ~ t^-beta: least squares of ln(C - C(inf)) on ln t in ``window``."""
    c = C[window] - plateau_value(C)
    if np.any(c <= 0):
        return np.nan
    return -float(np.polyfit(np.log(t[window]), np.log(c), 1)[0])


def linear_fit(x, y, sigma=None):
    """Weighted least squares y = p0 + p1 x; returns (p0, p1)."""
    w = None if sigma is None else 1 / np.asarray(sigma, dtype=float)
    p1, p0 = np.polyfit(x, y, 1, w=w)
    return float(p0), float(p1)


def stretched_exp_fit(t, y, p0=None, t0=0.0, sigma=None):
    """Fit y = A exp(-((t + t0)/tau)^delta) (Fig. 9) to the positive y, in log space
    (weighted by 1/``sigma``, the errors of ln y, if given).

    t0 is held fixed (default 0): with a free t0 the amplitude A and t0 are degenerate
    at the statistics of our runs.  Returns (A, tau, delta); delta is bounded to ``DELTA_BOUNDS``.
    """
    from scipy.optimize import least_squares
    ok = y > 0
    w = 1.0 if sigma is None else 1 / np.asarray(sigma, dtype=float)[ok]
    t, ly = t[ok] + t0, np.log(y[ok])
    if len(t) < MIN_POINTS:
        return (np.nan,) * 3
    if p0 is None:
        drop = np.flatnonzero(ly <= ly[0] - 1.0)  # first fall by a factor e
        p0 = (np.exp(ly[0]), t[drop[0]] if len(drop) else t[-1], 0.3)
    lo, hi = [-np.inf, -np.inf, DELTA_BOUNDS[0]], [np.inf, np.inf, DELTA_BOUNDS[1]]
    x0 = np.clip([np.log(p0[0]), np.log(p0[1]), p0[2]], lo, hi)

    def resid(p):
        return (p[0] - np.exp(p[2] * (np.log(t) - p[1])) - ly) * w
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", max_nfev=200)
    return float(np.exp(sol.x[0])), float(np.exp(sol.x[1])), float(sol.x[2])


# ---------------------------------------------------------------- ensemble estimators

#: A maximum counts as a peak only this many standard errors above the plateau.
PEAK_SIGMAS = 3


def peak_estimate(t, rows, n_boot=N_BOOT, seed=0):
    """Time and height of the concurrence maximum (Fig. 6b, Eq. 30: t_1 ~ hbar/J).

    A mean curve whose maximum does not stand above its plateau (`plateau_value`) by more
    than ``PEAK_SIGMAS`` standard errors has no peak (C rises to its plateau, e.g. N = 4):
    the maximum of a noisy plateau would only measure the noise (an estimate outside its
    own bootstrap interval), so both are NaN, with the reason in ``info["why"]``."""
    m = np.mean(rows, 0)
    k = int(np.nanargmax(m))
    if m[k] - plateau_value(m) <= PEAK_SIGMAS * sem(rows)[k]:
        why = "no peak: C(t) rises to its plateau"
        return Estimate(np.nan, np.nan, {"why": why, "C_max": Estimate(np.nan, np.nan,
                                                                        {"why": why})})
    v, _, reps = bootstrap([rows], lambda m: np.array(peak(t, m)), n_boot, seed)
    t_max, c_max = estimates(v, reps)
    t_max.info["C_max"] = c_max
    return t_max


def plateau_estimate(rows, n_boot=N_BOOT, seed=0):
    """C(inf) or S_E(inf) (Figs. 6a, 7 inset) with the tail drift in ``info``."""
    v, _, reps = bootstrap([rows], plateau_value, n_boot, seed)
    est = estimates(v, reps)
    est.info["drift"] = plateau_drift(np.mean(rows, 0))
    return est


def beta_estimate(t, rows, n_boot=N_BOOT, seed=0):
    """Power-law exponent beta (Figs. 4, 5, 10) in the automatic window; info: t_window,
    window, chi2_dof of the straight line through ln(C - C(inf)) against ln t."""
    m = np.mean(rows, 0)
    window = decay_window(t, m)
    if window is None:
        return Estimate(np.nan, np.nan, {"t_window": None, "chi2_dof": np.nan})
    v, _, reps = bootstrap([rows], lambda m: power_law_exponent(t, m, window), n_boot, seed)
    est = estimates(v, reps)
    c = m[window] - plateau_value(m)
    x, y = np.log(t[window]), np.log(np.where(c > 0, c, np.nan))
    resid = y - np.polyval(np.polyfit(x, y, 1), x) if np.all(c > 0) else np.full(len(x), np.nan)
    est.info.update(t_window=(float(t[window][0]), float(t[window][-1])), window=window,
                    **fit_quality(resid, sem(rows)[window] / c, 2))
    return est


def tail_windows(candidates, shortest=3):
    """The ranges of ``candidates`` that end at the last one, widest first, at least
    ``shortest`` long (all of them when there are fewer): the windows of an asymptotic law
    in N (alpha, Fig. 6a; the random states, Fig. 12), tried until one passes."""
    shortest = min(shortest, len(candidates))
    return [candidates[i:] for i in range(len(candidates) - shortest + 1)]


def alpha_estimate(N, rows_list, groups=None, n_boot=N_BOOT, seed=0, n_min=0):
    """alpha of C(inf) ~ exp(-alpha N) (Fig. 6a): weighted fit of ln C(inf) against N.

    Candidates are the sizes N >= n_min whose plateau is positive and at least 2 errors
    above zero.  The fit window is the widest range of candidate sizes that ends at the
    largest one and has chi^2/dof <= ``CHI2_MAX`` (at least 3 sizes when there are 3):
    small N fall faster or slower than the asymptotic exponential, and a window over all
    sizes, dominated by the small-N plateaus with their small relative errors, can miss
    the largest N by a factor 10.  Without such a window the one with the smallest
    chi^2/dof is taken.  ``info``: N_used (the window), chi2_dof, ln_prefactor,
    plateaus; weights come from the full-sample errors.
    """
    plats = [plateau_estimate(r, n_boot, seed) for r in rows_list]
    cand = [k for k, p in enumerate(plats) if N[k] >= n_min and p.value > 2 * max(p.err, 0)
            and p.value > 0]
    if len(cand) < 2:
        return Estimate(np.nan, np.nan, {"N_used": [N[k] for k in cand], "chi2_dof": np.nan})

    def line(use):
        x = np.array([N[k] for k in use], dtype=float)
        y = np.log([plats[k].value for k in use])
        sig = np.array([plats[k].err / plats[k].value for k in use])
        p0, p1 = linear_fit(x, y, sig)
        return fit_quality(y - (p0 + p1 * x), sig, 2)
    windows = tail_windows(cand)
    chi2s = [line(w)["chi2_dof"] for w in windows]
    good = [w for w, c in zip(windows, chi2s) if c <= CHI2_MAX]
    use = good[0] if good else windows[int(np.nanargmin(chi2s))] if np.any(np.isfinite(chi2s)) \
        else windows[-1]
    x = np.array([N[k] for k in use], dtype=float)
    sig = np.array([plats[k].err / plats[k].value for k in use])

    def fit(*means):
        c = np.array([plateau_value(m) for m in means])
        if np.any(c <= 0):
            return np.array([np.nan, np.nan])
        p0, p1 = linear_fit(x, np.log(c), sig)
        return np.array([-p1, p0])
    g = None if groups is None else [groups[k] for k in use]
    v, _, reps = bootstrap([rows_list[k] for k in use], fit, n_boot, seed, g)
    est, _ = estimates(v, reps)
    est.info.update(N_used=[int(n) for n in x], ln_prefactor=v[1], plateaus=plats, **line(use))
    return est


def beta_extrapolation(N, times, rows_list, groups=None, n_boot=N_BOOT, seed=0):
    """beta(N) = beta_inf + c/N (Fig. 4 inset, Fig. 10b): per-size exponents and the
    weighted linear extrapolation in 1/N over the range of the module rule.

    ``times``: the time grid of each size (they may differ).  ``info``: betas (every
    size), N_used (the range of the line, [] without one), N_tried (the ranges tested,
    widest first, with their chi^2/nu), why (the reason when there is no line), slope,
    and the line's fit_quality.
    """
    betas = [beta_estimate(t, r, n_boot, seed) for t, r in zip(times, rows_list)]
    cand = [k for k, b in enumerate(betas) if np.isfinite(b.value) and b.err > 0]
    info = {"betas": betas, "N_used": [], "N_tried": []}

    def line(use):
        x = 1 / np.array([N[k] for k in use], dtype=float)
        b, sig = np.array([betas[k].value for k in use]), np.array([betas[k].err for k in use])
        p0, p1 = linear_fit(x, b, sig)
        return x, sig, fit_quality(b - (p0 + p1 * x), sig, 2)
    use = None
    for i in range(len(cand) - EXTRAPOLATE_MIN + 1):                # widest first
        rng = cand[i:]
        if any(betas[k].fails for k in rng):
            continue
        q = line(rng)[2]
        info["N_tried"].append(([N[k] for k in rng], q["chi2_dof"]))
        if not q["fails"]:
            use = rng
            break
    if use is None:
        info["why"] = (f"fewer than {EXTRAPOLATE_MIN} sizes with a power law that passes its "
                       "chi^2 test" if not info["N_tried"] else
                       "no range of sizes is consistent with a line in 1/N")
        return Estimate(np.nan, np.nan, info)
    x, sig, quality = line(use)
    grids = [(times[k], betas[k].info["window"]) for k in use]

    def fit(*means):
        b = np.array([power_law_exponent(t, m, w) for m, (t, w) in zip(means, grids)])
        return np.array(linear_fit(x, b, sig)) if np.all(np.isfinite(b)) else np.full(2, np.nan)
    g = None if groups is None else [groups[k] for k in use]
    v, _, reps = bootstrap([rows_list[k] for k in use], fit, n_boot, seed, g)
    est, info["slope"] = estimates(v, reps)
    info["N_used"] = [N[k] for k in use]
    est.info.update(info, **quality)
    return est


def stretched_window(t, C_eps, C_0):
    """Index slice of the departure from the eps = 0 plateau (module rule), or None."""
    c_inf = plateau_value(C_0)
    if c_inf <= 0:
        return None
    k_peak = int(np.argmax(C_0))
    settled = np.flatnonzero((np.arange(len(t)) > k_peak) & (C_0 <= SETTLED * c_inf))
    if not len(settled):
        return None
    k0 = k1 = int(settled[0])
    y = C_eps / c_inf
    while k1 < len(t) and y[k1] >= FLOOR:
        k1 += 1
    return slice(k0, k1) if k1 - k0 >= MIN_POINTS + 1 else None


def stretched_estimate(t, rows_eps, rows_0, paired=True, n_boot=N_BOOT, seed=0):
    """delta, tau, A of C(t; eps)/C(inf; eps = 0) = A exp(-(t/tau)^delta) (Fig. 9, t0 = 0).

    ``paired``: the two cases share their disorder (one run), resampled together.
    Returns the Estimate of delta with tau, A (Estimates) and t_window in ``info``.
    """
    window = stretched_window(t, np.mean(rows_eps, 0), np.mean(rows_0, 0))
    if window is None:
        return Estimate(np.nan, np.nan, {"t_window": None})
    tw = t[window]
    best = stretched_exp_fit(tw, np.mean(rows_eps, 0)[window] / plateau_value(np.mean(rows_0, 0)))

    def fit(m_eps, m_0):
        c = plateau_value(m_0)
        return np.array(stretched_exp_fit(tw, m_eps[window] / c, best) if c > 0 else (np.nan,) * 3)
    v, _, reps = bootstrap([rows_eps, rows_0], fit, n_boot, seed, [0, 0] if paired else [0, 1])
    A, tau, delta = estimates(v, reps)
    y = np.mean(rows_eps, 0)[window] / plateau_value(np.mean(rows_0, 0))
    sigma = sem(rows_eps)[window] / plateau_value(np.mean(rows_0, 0)) / y
    resid = np.log(np.where(y > 0, y, np.nan)) - (np.log(v[0]) - (tw / v[1]) ** v[2])
    delta.info.update(A=A, tau=tau, t_window=(float(tw[0]), float(tw[-1])), window=window,
                      bounds=DELTA_BOUNDS, **fit_quality(resid, sigma, 3))
    return delta


def entropy_volume_law(N, rows_list, groups=None, n_boot=N_BOOT, seed=0):
    """S_E(inf) = s N + c (Fig. 7 inset): slope s (entropy per TLS) with its error;
    ``info['per_N']``: S_E(inf)/N for each size."""
    N = np.asarray(N, dtype=float)

    def fit(*means):
        s = np.array([plateau_value(m) for m in means])
        return np.array(linear_fit(N, s)[::-1])
    v, _, reps = bootstrap(rows_list, fit, n_boot, seed, groups)
    slope, intercept = estimates(v, reps)
    plats = [plateau_estimate(r, n_boot, seed) for r in rows_list]
    per_N = [Estimate(p.value / n, p.err / n, interval=(p.interval[0] / n, p.interval[1] / n))
             for p, n in zip(plats, N)]
    resid = [p.value for p in plats] - (v[1] + v[0] * N)
    slope.info.update(intercept=intercept, per_N=per_N, N_used=[int(n) for n in N],
                      **fit_quality(resid, [p.err for p in plats], 2))
    return slope


def eta_collapse(curves, n_grid=60):
    """Quality of the time collapse t -> t eta/1e5 (Fig. 6b).

    curves: list of (eta, t, mean, sem).  On a common grid of rescaled times (the overlap
    of all curves, where every curve is positive) returns chi^2 per degree of freedom of
    the curves about their weighted mean, for the rescaled and for the raw times: ~1
    means the curves agree within their errors.
    """
    def chi2(scale):
        lo = max(np.log(t[0] * s) for (_, t, _, _), s in zip(curves, scale))
        hi = min(np.log(t[-1] * s) for (_, t, _, _), s in zip(curves, scale))
        if hi <= lo:
            return np.nan
        grid = np.linspace(lo, hi, n_grid)
        m = np.array([np.interp(grid, np.log(t * s), c) for (_, t, c, _), s in zip(curves, scale)])
        e = np.array([np.interp(grid, np.log(t * s), d) for (_, t, _, d), s in zip(curves, scale)])
        keep = np.all(m > 0, 0) & np.all(e > 0, 0)
        if not keep.any():
            return np.nan
        m, w = m[:, keep], 1 / e[:, keep] ** 2
        mean = (w * m).sum(0) / w.sum(0)
        return float((w * (m - mean) ** 2).sum() / ((len(curves) - 1) * keep.sum()))
    return {"rescaled": chi2([eta / ETA_REF for eta, *_ in curves]),
            "raw": chi2([1.0] * len(curves))}


def coupling_scales(J):
    """Typical couplings from stored disorder J (R, N, N): the geometric mean of ``|J_ij|``
    over all pairs and the median over TLSs of each one's strongest ``|J_ij|`` (units of W)."""
    J = np.abs(np.asarray(J))
    R, N, _ = J.shape
    iu = np.triu_indices(N, 1)
    pairs = J[:, iu[0], iu[1]]
    return {"J_typ": float(np.exp(np.mean(np.log(pairs[pairs > 0])))),
            "J_nn": float(np.median(J.max(axis=2)))}


# ---------------------------------------------------------------- echoes (docs/echo.md)

def echo_amplitude(re, im):
    """``|E(t)| / |E(t_0)|`` of the mean echo signal E = Re + i Im (the first time t_0 is
    the reference: t_0 = 0, or the earliest echo read)."""
    a = np.hypot(re, im)
    return a / a[0] if a[0] > 0 else np.full_like(a, np.nan)


#: The echo fit uses the decay: points below ECHO_TOP x ``|E(t_0)|`` (and above FLOOR).
ECHO_TOP = 0.95


def echo_influence(rows_re, rows_im):
    """How much each realization moves ``ln(|E(t)| / |E(t_0)|)``, shape (R, T), times R: each
    realization r moves ln|E(t)| by u_r(t) / R, u_r(t) = Re((z_r(t) - E(t)) / E(t)) (z = Re
    + i Im, E the mean), so the ratio to t_0 by (u_r(t) - u_r(t_0)) / R."""
    z = np.asarray(rows_re, dtype=float) + 1j * np.asarray(rows_im, dtype=float)
    E = z.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = ((z - E) / E).real
    return u - u[:, :1]


def echo_errors(rows_re, rows_im):
    """Standard errors of ``ln(|E(t)| / |E(t_0)|)`` over realizations, shape (T,), from
    `echo_influence`: a spread of the amplitude between realizations (how many signal TLSs
    each holds) moves ``|E(t)|`` and ``|E(t_0)|`` together and cancels; zero at t_0."""
    d = echo_influence(rows_re, rows_im)
    return d.std(0, ddof=1) / np.sqrt(len(d))


def echo_estimate(t, rows_re, rows_im, n_boot=N_BOOT, seed=0):
    """Phase memory time T_M and exponent x of the echo decay ``|E(t)| / |E(t_0)|`` =
    A exp(-(t / T_M)^x), t = 2 tau the time of the echo (docs/echo.md), fitted in log space
    (`stretched_exp_fit`, errors `echo_errors`) on the decay: the points with t > 0,
    ``FLOOR`` <= amplitude <= ``ECHO_TOP`` and a relative error in (0, 0.2) (``|mean|`` is
    biased near zero; the plateau before the decay, known to rounding, would fix A and
    weigh the early-time law, not T_M), which must fall by at least a factor e (with A
    free, a flat echo fits any T_M beyond the window); the rows of the real and imaginary
    parts are resampled together.

    Returns the Estimate of T_M with x, A (Estimates), t_window and chi2_dof in ``info``;
    a fit that fails its chi^2 test (`fit_quality`: above the 99.9 % point of chi^2_nu/nu)
    does not describe the data: ``info`` says so and no interval is given (NaN)."""
    m_re, m_im = np.mean(rows_re, 0), np.mean(rows_im, 0)
    y = echo_amplitude(m_re, m_im)
    sigma = echo_errors(rows_re, rows_im)
    with np.errstate(invalid="ignore"):
        window = np.flatnonzero((t > 0) & (y >= FLOOR) & (y <= ECHO_TOP) & (sigma > 0)
                                & (sigma < 0.2))
    nothing = Estimate(np.nan, np.nan, {"t_window": None, "chi2_dof": np.nan, "verdict": ""})
    if len(window) < MIN_POINTS:
        nothing.info["verdict"] = "too few points above the noise"
        return nothing
    if y[window[0]] < np.e * y[window[-1]]:
        # A is free: an echo that does not decay in the window fits any T_M beyond it
        nothing.info["verdict"] = "the echo falls by less than a factor e over the points " \
            "above the noise: no decay law measured"
        return nothing
    tw, sw = t[window], sigma[window]
    best = stretched_exp_fit(tw, y[window], sigma=sw)

    def fit(m_re, m_im):
        return np.array(stretched_exp_fit(tw, echo_amplitude(m_re, m_im)[window], best,
                                          sigma=sw))
    v, _, reps = bootstrap([rows_re, rows_im], fit, n_boot, seed, [0, 0])
    A, T_M, x = estimates(v, reps)
    x.info["bounds"] = DELTA_BOUNDS             # formatted "at the fit bound" when it is
    quality = fit_quality(np.log(y[window]) - (np.log(v[0]) - (tw / v[1]) ** v[2]), sw, 3)
    verdict = ""
    if quality["fails"] or not np.isfinite(quality["chi2_dof"]):
        verdict = "model does not describe the data"
        for est in (A, T_M, x):
            est.err, est.interval = np.nan, (np.nan, np.nan)
    T_M.info.update(x=x, A=A, t_window=(float(tw[0]), float(tw[-1])), window=window,
                    verdict=verdict, **quality)
    return T_M
