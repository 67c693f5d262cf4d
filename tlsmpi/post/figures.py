"""The paper's figures from run files (Figs. 2, 4-12): one builder per figure.

Every builder takes a `tlsmpi.post.pooling.Pool` of cases (all files given to
tlsmpi.post) and returns a matplotlib Figure, or raises `NoData` naming what it needs.
A builder picks its cases by what they contain (`Pool.family`): e.g. Fig. 4 uses the
epsilon = 0 concurrence cases that differ only in N, the largest such family.  Curves
are drawn by one helper (`curves`): mean over realizations with a +-1 standard-error band.

Every panel shows data or is not drawn (the reason goes to the ``tlsmpi.post.figures`` log).
What the paper draws as insets (Fig. 4 beta_i(1/N), Fig. 5 beta_i(Dbar), Fig. 7
S_E(inf)(N)) is a side panel here: the curves fill every corner of the main panel (the
small-N plateaus span the top, the rise and the N ~ 12 plateau the bottom), so any inset
would hide data.  Legends of crowded panels sit outside the axes.  Every fit states its
window, reduced chi^2 and bootstrap percentile interval (analysis.py); numbers in labels
are written 10^5, not 100000 (`sci`).
"""
import logging
import math

import numpy as np

from ..physics import phase_diagram
from . import analysis
from .. import randomstates
from .pooling import (NoData, alpha, beta_extrapolation, collapse, open_betas,
                      open_family, random_state_fit, stretched_pairs, volume_law)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- drawing helpers

def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (login nodes have no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def new_figure():
    fig, ax = pyplot().subplots(figsize=(6.4, 4.6), constrained_layout=True)
    return fig, ax


def sci(x, digits=2):
    """``x`` for a mathtext label: 0.5, 12, 10^{5}, 2\times10^{-4} (never 100000)."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    e = math.floor(math.log10(abs(x)))
    if -2 <= e <= 2:
        return f"{x:.{max(digits, e + 1) + max(0, -e)}g}"
    m = float(f"{x / 10 ** e:.{digits}g}")
    if abs(m) == 10:                               # rounding carried into the next decade
        m, e = m / 10, e + 1
    sign = "-" if m < 0 else ""
    return f"{sign}10^{{{e}}}" if abs(m) == 1 else f"{m:g}\\times10^{{{e}}}"


def interval(est, spec=".2f"):
    """'value [lo, hi]' (the bootstrap percentile interval) of an analysis.Estimate, for
    mathtext; 'value (unstable)' when the bootstrap gives no interval (the estimator fails
    on too many resamples)."""
    lo, hi = est.interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{est.value:{spec}}\\,(\\mathrm{{unstable}})"
    return f"{est.value:{spec}}\\,[{lo:{spec}}, {hi:{spec}}]"


def fit_note(est, window, var="t"):
    """'var in [lo, hi], chi2/dof' of a fit (its window and reduced chi^2), as mathtext."""
    lo, hi = window
    chi2 = est.info.get("chi2_dof", np.nan)
    return rf"${var}\in[{sci(lo)}, {sci(hi)}]$, $\chi^2/\nu={chi2:.2g}$"


def outside_legend(ax, **kw):
    """The legend to the right of the axes (it covers no data)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **kw)


def curves(ax, entries, label, obs="concurrence", scale=lambda e: 1.0, tscale=lambda e: 1.0,
           style=lambda k, e: {}):
    """Mean +- standard error of ``obs`` for each entry on log axes (y / scale, t * tscale)."""
    for k, e in enumerate(entries):
        m, s = e.mean_sem(obs)
        t, y, dy = e.t * tscale(e), m / scale(e), s / scale(e)
        kw = {"color": f"C{k % 10}", **style(k, e)}
        line, = ax.plot(t, y, label=label(e), **kw)
        ax.fill_between(t, y - dy, y + dy, color=line.get_color(), alpha=0.25, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel(r"$t$ [$\hbar/W$]")


def fit_lines(ax, entries):
    """Dashed power laws C(inf) + a t^-beta over each entry's automatic window."""
    for e in entries:
        b = e.beta
        if not np.isfinite(b.value):
            continue
        w = b.info["window"]
        m = np.mean(e.rows(), 0)
        c_inf = analysis.plateau_value(m)
        t = e.t[w]
        amp = np.exp(np.mean(np.log(m[w] - c_inf) + b.value * np.log(t)))
        ax.plot(t, amp * t ** -b.value, "--", color="k", lw=0.8)


def points(ax, x, estimates, **kw):
    """A list of analysis.Estimate as points with their bootstrap percentile intervals."""
    v = np.array([e.value for e in estimates])
    lo = np.array(
        [e.interval[0] if np.isfinite(e.interval[0]) else e.value - e.err for e in estimates]
    )
    hi = np.array(
        [e.interval[1] if np.isfinite(e.interval[1]) else e.value + e.err for e in estimates]
    )
    ax.errorbar(
        x, v, [np.maximum(v - lo, 0), np.maximum(hi - v, 0)], fmt="o", capsize=3, ms=4, **kw
    )


def n_eps_style(fam):
    """Colour by N, line style by epsilon (Figs. 8, 11)."""
    Ns = sorted({e.params["N"] for e in fam})
    eps = sorted({e.params["epsilon"] for e in fam})
    styles = ["-", "--", ":", "-."]
    return lambda k, e: {"color": f"C{Ns.index(e.params['N']) % 10}",
                         "ls": styles[eps.index(e.params["epsilon"]) % 4]}


def eps_label(e):
    return rf"$N={e.params['N']}$, $\epsilon={sci(e.params['epsilon'])}$"


def realizations(fam):
    """'R realizations' of a family, or the range when its cases differ."""
    n = sorted({e.case.n_done for e in fam})
    return f"{n[0]} realizations" if len(n) == 1 else f"{n[0]}-{n[-1]} realizations"


def need(entries, minimum, what):
    if len(entries) < minimum:
        raise NoData(what)
    return entries


def skip_panel(figure, panel, why):
    """Log that a panel is not drawn, and why."""
    log.warning(f"{figure}: {panel} not drawn ({why})")


# ---------------------------------------------------------------- figures

def fig2(pool):
    """Eq. (24): the Table I glasses in the (W / hbar tau^-1, Dbar/W) plane."""
    fig, ax = new_figure()
    x = np.logspace(0, 3, 50)
    ax.fill_between(x, 1e-12, x ** -1.5, color="C0", alpha=0.2,
                    label=r"MBL transient, $\hbar Y/J<1$")
    ax.plot(x, x ** -1.5, "k-", lw=1)
    for k, (name, m) in enumerate(phase_diagram.materials().items()):
        d, s = m["dbar_over_w"], m["spread_decades"]
        ax.errorbar([m["w_over_hbar_tau"]], [d], yerr=[[d - d * 10**-s], [d * 10**s - d]],
                    fmt="o", capsize=3, color=f"C{k + 1}",
                    label=rf"{name}: $\hbar Y/J\approx{sci(m['ratio'])}$")
    ax.set(xscale="log", yscale="log", xlim=(1, 1e3), ylim=(1e-12, 1),
           xlabel=r"$W/\hbar\tau^{-1}$", ylabel=r"$\bar\Delta/W$",
           title=r"Eq. (24): $\hbar Y/J \sim (\bar\Delta/W)^2 (W/\hbar\tau^{-1})^3$")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def beta_label(e, name):
    """Legend label of one decaying curve with its power-law fit (window, chi^2)."""
    b = e.beta
    if not np.isfinite(b.value):
        return f"{name} (no decay window)"
    return rf"{name}: $\beta={interval(b)}$, " + fit_note(b, b.info["t_window"])


def decay_panel(ax, fam, name, title):
    """C(t) of a family on log-log axes with its power-law fits (Figs. 4, 5, 10a); the
    legend goes outside the axes."""
    curves(ax, fam, lambda e: beta_label(e, name(e)))
    fit_lines(ax, fam)
    m = max(np.nanmax(e.mean_sem()[0]) for e in fam)
    ax.set(yscale="log", ylim=(m * 1e-4, m * 2), ylabel=r"$C(t)$", title=title)
    outside_legend(ax, fontsize=6)


def decay_figure(side=True):
    """A wide figure: the main panel with its outside legend and, with ``side``, a
    narrower side panel (for what the paper shows as an inset)."""
    if not side:
        fig, ax = pyplot().subplots(figsize=(10, 4.8), constrained_layout=True)
        return fig, ax, None
    fig, (ax, sub) = pyplot().subplots(1, 2, figsize=(14, 4.8), constrained_layout=True,
                                       gridspec_kw={"width_ratios": [3, 2]})
    return fig, ax, sub


def side_style(ax, xlabel, ylabel, title=None):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)


def fig4(pool):
    """C(t) at epsilon = 0 for several N, power laws; inset beta_i(1/N) extrapolated
    (drawn when at least one size has a decay window)."""
    fam = need(pool.family("concurrence", ["N"], lambda p: p["epsilon"] == 0), 2,
               "fig4 needs epsilon = 0 concurrence cases for at least 2 sizes N")
    p = fam[0].params
    ext = beta_extrapolation(pool, fam)
    if not ext.info["N_used"]:
        skip_panel("fig4", "panel beta_i(1/N)", "no size has a power-law window with a "
                   "bootstrap interval")
    fig, ax, sub = decay_figure(side=bool(ext.info["N_used"]))
    decay_panel(ax, fam, lambda e: rf"$N={e.params['N']}$",
                rf"Fig. 4: $\epsilon=0$, $\bar\Delta={sci(p['Dbar'])}$, $\eta={sci(p['eta'])}$, "
                f"{realizations(fam)}")
    if sub is not None:
        _beta_vs_inverse_n(sub, fam, ext, r"$\beta_i$")
        sub.set_title(r"$\beta_i$ against $1/N$, extrapolated to $1/N\to 0$", fontsize=9)
    return fig


def _beta_vs_inverse_n(ax, fam, ext, name, color="k"):
    """beta(1/N) points of the sizes in ``ext`` and, with 2 or more, the extrapolation
    line beta_inf + c/N with its interval, window and chi^2 (legend below the axes)."""
    used = [e for e in fam if e.params["N"] in ext.info["N_used"]]
    points(ax, [1 / e.params["N"] for e in used], [e.beta for e in used], color=color,
           label=name if not np.isfinite(ext.value) else None)
    if np.isfinite(ext.value):
        x = np.linspace(0, 1 / min(e.params["N"] for e in used), 20)
        N = ext.info["N_used"]
        ax.plot(x, ext.value + ext.info["slope"].value * x, "--", color=color, lw=0.8,
                label=rf"{name}: $\beta(1/N\to 0)={interval(ext)}$" "\n"
                      + fit_note(ext, (min(N), max(N)), "N"))
    side_style(ax, r"$1/N$", r"$\beta$")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), borderaxespad=0)


def fig5(pool):
    """C(t) at epsilon = 0 for several Dbar; inset beta_i(Dbar) (when any is defined)."""
    fam = need(pool.family("concurrence", ["Dbar"], lambda p: p["epsilon"] == 0), 2,
               "fig5 needs epsilon = 0 concurrence cases for at least 2 values of Dbar")
    ok = [e for e in fam if np.isfinite(e.beta.value) and np.isfinite(e.beta.err)]
    if not ok:
        skip_panel("fig5", "panel beta_i(Dbar)", "no Dbar has a power-law window")
    fig, ax, sub = decay_figure(side=bool(ok))
    decay_panel(ax, fam, lambda e: rf"$\bar\Delta={sci(e.params['Dbar'])}$",
                rf"Fig. 5: $N={fam[0].params['N']}$, $\epsilon=0$, {realizations(fam)}")
    if sub is not None:
        points(sub, [e.params["Dbar"] for e in ok], [e.beta for e in ok])
        sub.set_xscale("log")
        side_style(sub, r"$\bar\Delta/W$", r"$\beta_i$", r"$\beta_i$ against $\bar\Delta$")
    return fig


def fig6a(pool):
    """Plateau C(inf) against N and the fit exp(-alpha N) over the sizes it uses (filled
    points; open points are left out of the fit)."""
    fam, est = alpha(pool)
    need(est.info["N_used"], 2, "fig6a needs epsilon = 0 concurrence cases with a plateau "
                                "(C(inf) > 2 sigma) for at least 2 sizes N")
    fig, ax = new_figure()
    N = est.info["N_used"]
    used = [e for e in fam if e.params["N"] in N]
    other = [e for e in fam if e.params["N"] not in N and e.plateau.value > 0]
    points(ax, [e.params["N"] for e in used], [e.plateau for e in used], color="C0",
           label="fitted")
    if other:
        points(ax, [e.params["N"] for e in other], [e.plateau for e in other], color="C0",
               mfc="none", label="not fitted")
    n = np.linspace(min(N), max(N), 50)
    ax.plot(n, np.exp(est.info["ln_prefactor"] - est.value * n), "k-",
            label=rf"$e^{{-\alpha N}}$, $\alpha={interval(est, '.3f')}$, "
                  + fit_note(est, (min(N), max(N)), "N"))
    ax.set(yscale="log", xlabel=r"$N$", ylabel=r"$C(\infty)$",
           title=rf"Fig. 6a: $\epsilon=0$, {realizations(fam)}")
    ax.legend(fontsize=7)
    return fig


def fig6b(pool):
    """C(t) for several eta against t eta / 1e5: the time collapse."""
    fam, q = collapse(pool)
    need(fam, 2, "fig6b needs epsilon = 0 concurrence cases for at least 2 values of eta")
    fig, ax = new_figure()
    curves(ax, fam, lambda e: rf"$\eta={sci(e.params['eta'])}$",
           tscale=lambda e: e.params["eta"] / analysis.ETA_REF)
    ax.set(xlabel=r"$t\,\eta/10^5$ [$\hbar/W$]", ylabel=r"$C(t)$",
           title=rf"Fig. 6b: $N={fam[0].params['N']}$; collapse $\chi^2/\nu={q['rescaled']:.2g}$ "
                 rf"(unscaled {q['raw']:.2g})")
    ax.legend(fontsize=8)
    return fig


def fig7(pool):
    """S_E(t)/N (solid) and C(t) (dashed) at epsilon = 0; inset S_E(inf) against N (with
    2 sizes or more)."""
    fam = need(pool.family("entropy", ["N"], lambda p: p["epsilon"] == 0), 1,
               "fig7 needs epsilon = 0 cases with the entropy")
    if len(fam) < 2:
        skip_panel("fig7", "panel S_E(inf) against N", "one size only")
    fig, ax, sub = decay_figure(side=len(fam) >= 2)
    curves(ax, fam, lambda e: rf"$N={e.params['N']}$", obs="entropy", scale=lambda e: e.params["N"])
    with_c = [e for e in fam if e.has("concurrence")]
    curves(ax, with_c, lambda e: None, style=lambda k, e: {"ls": "--", "color": f"C{fam.index(e)}"})
    t = fam[-1].t                      # guide for the eye through S_E/N of the largest N at t = 1
    s1 = np.interp(0.0, np.log(t), fam[-1].mean_sem("entropy")[0] / fam[-1].params["N"])
    ax.plot(
        t, s1 * np.log(t / t[0]) / np.log(1 / t[0]), ":", color="gray", label=r"$\propto\log t$"
    )
    ax.set(ylabel=r"$S_E(t)/N$ (solid), $C(t)$ (dashed)",
           title=rf"Fig. 7: $\epsilon=0$, {realizations(fam)}")
    outside_legend(ax, fontsize=7)
    if sub is None:
        return fig
    vol = volume_law(fam)
    points(sub, [e.params["N"] for e in fam], [e.entropy_plateau for e in fam])
    n = np.array([e.params["N"] for e in fam], dtype=float)
    sub.plot(n, vol.info["intercept"].value + vol.value * n, "k-", lw=0.8,
             label=rf"$S_E(\infty)=sN+c$, $s={interval(vol, '.3f')}$" "\n"
                   + fit_note(vol, (n.min(), n.max()), "N"))
    side_style(sub, "$N$", r"$S_E(\infty)$", r"volume law of $S_E(\infty)$")
    sub.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), borderaxespad=0)
    return fig


def fig8(pool):
    """C(t) for several epsilon and N (line style by epsilon, colour by N)."""
    fam = open_family(pool)
    need([e for e in fam if e.params["epsilon"] > 0], 1,
         "fig8 needs concurrence cases with epsilon > 0")
    fig, ax = new_figure()
    curves(ax, fam, eps_label, style=n_eps_style(fam))
    ax.set(yscale="log", ylabel=r"$C(t)$", title=f"Fig. 8: {fam[0].run.attrs['engine']} engine, "
                                                   f"{realizations(fam)}")
    m = max(np.nanmax(e.mean_sem()[0]) for e in fam)
    ax.set_ylim(m * 1e-5, m * 2)
    outside_legend(ax, fontsize=6)
    return fig


def fig9(pool):
    """C(t; eps)/C(inf; eps=0) and the stretched-exponential fits."""
    pairs = need([p for p in stretched_pairs(pool) if np.isfinite(p[2].value)], 1,
                 "fig9 needs cases with 0 < epsilon < 1 and the epsilon = 0 case of the same N "
                 "and times, run long enough for C(t; eps) to leave the eps = 0 plateau"
                 + "".join(f"; {w}" for w in pool.notes.get("fig9", [])))
    fig, ax, _ = decay_figure(side=False)
    entries = [e for e, _, _ in pairs]
    plateaus = {id(e): r.plateau.value for e, r, _ in pairs}
    curves(ax, entries, eps_label, scale=lambda e: plateaus[id(e)])
    for k, (e, _, est) in enumerate(pairs):
        i = est.info
        t = e.t[i["window"]]
        ax.plot(t, i["A"].value * np.exp(-(t / i["tau"].value) ** est.value), "--",
                color=f"C{k % 10}", lw=1.2,
                label=rf"fit $N={e.params['N']}$: $\delta={interval(est)}$, "
                      rf"$\tau={sci(i['tau'].value)}$, " + fit_note(est, i["t_window"]))
    ax.set(yscale="log", ylim=(1e-3, 3), ylabel=r"$C(t;\epsilon)/C(\infty;\epsilon=0)$",
           title="Fig. 9: stretched exponential " r"$A\,e^{-(t/\tau)^\delta}$")
    outside_legend(ax, fontsize=6)
    return fig


def fig10(pool):
    """(a) C(t) at the largest epsilon with power-law fits; (b) beta against 1/N for every
    epsilon with a decay window, extrapolated linearly to 1/N = 0 (not drawn, and logged,
    when no epsilon has one)."""
    betas = open_betas(pool)
    if not betas or max(betas) <= 0:
        raise NoData("fig10 needs concurrence cases with epsilon > 0")
    eps_max = max(betas)
    with_beta = {eps: (g, ext) for eps, (g, ext) in betas.items()
                 if ext is not None and ext.info["N_used"]}
    if with_beta:
        fig, a, b = decay_figure()
    else:
        skip_panel("fig10", "panel b, beta against 1/N", "no epsilon has power-law windows")
        fig, a, _ = decay_figure(side=False)
    decay_panel(a, betas[eps_max][0], lambda e: rf"$N={e.params['N']}$",
                rf"Fig. 10a: $\epsilon={sci(eps_max)}$")
    for k, (eps, (g, ext)) in enumerate(with_beta.items()):
        _beta_vs_inverse_n(b, g, ext, rf"$\epsilon={sci(eps)}$", color=f"C{k}")
    if with_beta:
        b.set_title(r"Fig. 10b: $\beta_i$ ($\epsilon=0$), $\beta_o$ ($\epsilon>0$)")
    return fig


def fig11(pool):
    """S_E(t)/N for several N and epsilon."""
    fam = need(open_family(pool, "entropy"), 1, "fig11 needs cases with the entropy")
    need([e for e in fam if e.params["epsilon"] > 0], 1, "fig11 needs entropy cases with epsilon > "
                                                         "0")
    fig, ax = new_figure()
    curves(ax, fam, eps_label, obs="entropy", scale=lambda e: e.params["N"], style=n_eps_style(fam))
    ax.set(ylabel=r"$S_E(t)/N$", title=f"Fig. 11: {realizations(fam)}")
    outside_legend(ax, fontsize=6)
    return fig


def fig12(pool):
    """log2(-ln <C>) of Haar-random states against N with the linear fit (App. C)."""
    data = need(pool.randomstates, 1, "fig12 needs a random-state file (python -m "
                                      "tlsmpi.randomstates)")[0]
    fit = random_state_fit(data)
    fig, ax = new_figure()
    ok = (data["mean"] > 0) & (data["mean"] < 1)
    N, m, s = data["N"][ok], data["mean"][ok], data["sem"][ok]
    used = np.isin(N, fit["N_used"])
    y = np.log2(-np.log(m))
    dy = s / (m * np.abs(np.log(m)) * np.log(2))
    ax.errorbar(N[used], y[used], dy[used], fmt="o", capsize=3, label=f"{data['states']} states "
                                                                      "per N")
    if (~used).any():
        ax.errorbar(N[~used], y[~used], dy[~used], fmt="o", mfc="none", capsize=3,
                    label=f"fewer than {randomstates.MIN_NONZERO} entangled pairs (not fitted)")
    x = np.linspace(data["N"].min(), data["N"].max(), 10)
    ax.plot(x, np.log2(fit["a"]) + fit["b"] * x, "k--",
            label=rf"$a={fit['a']:.3f}\pm{fit['a_err']:.3f}$, "
                  rf"$b={fit['b']:.3f}\pm{fit['b_err']:.3f}$ "
                  rf"(fit covariance), $N\in[{min(fit['N_used'])}, {max(fit['N_used'])}]$, "
                  rf"$\chi^2/\nu={fit['chi2_dof']:.2g}$")
    ax.set(xlabel="$N$", ylabel=r"$\log_2(-\ln\langle C\rangle)$",
           title=r"Fig. 12: random states, $\langle C\rangle\sim e^{-a2^{bN}}$")
    ax.legend(fontsize=8)
    return fig


#: figure name -> builder, in the paper's order
FIGURES = {"fig2": fig2, "fig4": fig4, "fig5": fig5, "fig6a": fig6a, "fig6b": fig6b,
           "fig7": fig7, "fig8": fig8, "fig9": fig9, "fig10": fig10, "fig11": fig11,
           "fig12": fig12}
