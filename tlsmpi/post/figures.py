"""The paper's figures from run files (Figs. 2, 4-12): one builder per figure.

Every builder takes a `tlsmpi.post.pooling.Pool` of cases (all files given to
tlsmpi.post) and returns a matplotlib Figure with its caption (`caption`), or raises
`NoData` naming what it needs.  A builder picks its cases by what they contain
(`Pool.family`): e.g. Fig. 4 uses the epsilon = 0 concurrence cases that differ only in N,
the largest such family.  Curves are drawn by one helper (`curves`): the mean over
realizations with a +-1 standard-error band.

Layout for print: journal widths (``SINGLE`` 3.4 in, ``DOUBLE`` 7 in), text of at least
7 pt at that size (``STYLE``), the paper's panels and insets (Fig. 4 beta_i(1/N), Fig. 5
beta_i(Dbar), Fig. 7 S_E(inf)(N) in the corner the curves leave empty), short legends
above the axes, axis ranges fitted to the data, panel letters and no titles.  The fit
notes (window, chi^2/nu against its limit, percentile interval, "model does not describe
the data", a parameter at its bound) and the meaning of every line, band and symbol are in
the caption, which ``python -m tlsmpi.post`` writes next to the figure (figN.txt), into the
PNG/PDF metadata and into its output.  A fit that fails its chi^2 test is drawn dotted and
its point open, without an error bar (analysis.Estimate.error_bar).  Every panel shows data
or is not drawn (the reason goes to the ``tlsmpi.post.figures`` log and the caption).
"""
import logging
import math
import os

import numpy as np

from ..physics import phase_diagram
from . import analysis
from .. import randomstates
from .pooling import (NoData, alpha, beta_extrapolation, collapse, open_betas,
                      open_family, random_state_fit, random_state_text, stretched_pairs,
                      volume_law)

log = logging.getLogger(__name__)

SINGLE, DOUBLE, HEIGHT = 3.4, 7.0, 2.7       # inches: journal column widths, panel height
MIN_FONT = 7                                 # pt, at the printed size
STYLE = {"font.size": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "legend.frameon": False, "legend.handlelength": 1.8,
         "legend.columnspacing": 1.0, "lines.linewidth": 1.0, "axes.linewidth": 0.6,
         "errorbar.capsize": 2, "lines.markersize": 3.5}
BAND = "bands: mean +- 1 standard error over realizations."
FAILED = ("Dotted lines and open symbols: fits that fail their chi^2 test (the model does not "
          "describe the data; no error bar).")


# ---------------------------------------------------------------- drawing helpers

def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (login nodes have no display),
    with the print ``STYLE``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update(STYLE)
    return plt


def new_figure(ncols=1, width=SINGLE, height=HEIGHT):
    """A figure of journal width with ``ncols`` panels (constrained layout)."""
    fig, axes = pyplot().subplots(1, ncols, figsize=(width, height), layout="constrained")
    return fig, axes


def captioned(fig, *parts):
    """Attach the caption (sentences ``parts``) to ``fig``; `caption` reads it."""
    fig.tlsmpi_caption = " ".join(p.strip() for p in parts if p)
    return fig


def caption(fig):
    """The caption of a figure built here."""
    return getattr(fig, "tlsmpi_caption", "")


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


def fit_text(est, name, window, var="t"):
    """Caption text of one fit: 'name = value [lo, hi] over var = a..b (chi^2/nu = c, nu = d,
    limit L)'; a failed fit or a parameter at its bound is written as analysis.Estimate
    formats it (the note instead of the interval)."""
    i = est.info
    where = f"over {var} = {window[0]:.3g}..{window[1]:.3g}"
    if est.fails:
        return f"{name} = {est:.3g} {where} (nu = {i['dof']})"
    return (f"{name} = {est:.3g} {where} (chi^2/nu = {i.get('chi2_dof', np.nan):.2g}, "
            f"nu = {i.get('dof', 0)}, limit {i.get('chi2_max', np.nan):.2g})")


def legend_above(ax, ncol=3, handles=None, labels=None):
    """A short legend above the axes (it covers no data)."""
    args = () if handles is None else (handles, labels)
    ax.legend(*args, loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=ncol,
              borderaxespad=0.2, handletextpad=0.4)


def curves(ax, entries, label, obs="concurrence", scale=lambda e: 1.0, tscale=lambda e: 1.0,
           style=lambda k, e: {}):
    """Mean +- standard error of ``obs`` for each entry on log-t axes (y / scale, t * tscale);
    colours of the default cycle, or of a sequential map beyond its 10 (never repeated)."""
    n = len(entries)
    colors = ([f"C{k}" for k in range(n)] if n <= 10
              else pyplot().cm.viridis(np.linspace(0.0, 0.9, n)))
    for k, e in enumerate(entries):
        m, s = e.mean_sem(obs)
        t, y, dy = e.t * tscale(e), m / scale(e), s / scale(e)
        kw = {"color": colors[k], **style(k, e)}
        line, = ax.plot(t, y, label=label(e), **kw)
        ax.fill_between(t, y - dy, y + dy, color=line.get_color(), alpha=0.25, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel(r"$t$ [$\hbar/W$]")


def fit_to_data(ax, pad=0.15):
    """x range of ``ax`` fitted to the line vertices inside its y range (log x: ``pad``
    decades either side), so an axis does not run on where the data stopped."""
    y0, y1 = sorted(ax.get_ylim())
    xy = [np.asarray(line.get_xydata(), dtype=float).reshape(-1, 2) for line in ax.lines]
    xs = np.concatenate([x[(y >= y0) & (y <= y1)] for x, y in (a.T for a in xy)] + [[]])
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if xs.size:
        ax.set_xlim(xs.min() / 10 ** pad, xs.max() * 10 ** pad)


def fit_lines(ax, entries):
    """Power laws C(inf) + a t^-beta over each entry's automatic window: dashed, dotted
    when the fit fails its chi^2 test."""
    for e in entries:
        b = e.beta
        if not np.isfinite(b.value):
            continue
        w = b.info["window"]
        m = np.mean(e.rows(), 0)
        c_inf = analysis.plateau_value(m)
        t = e.t[w]
        amp = np.exp(np.mean(np.log(m[w] - c_inf) + b.value * np.log(t)))
        ax.plot(t, amp * t ** -b.value, ":" if b.fails else "--", color="k", lw=1.2)


def points(ax, x, estimates, color="k", marker="o", **kw):
    """analysis.Estimate values: filled with their percentile intervals as error bars, open
    without a bar where the estimate has none (failed fit, bound, no interval)."""
    bars = [e.error_bar for e in estimates]
    x, v = np.asarray(x, dtype=float), np.array([e.value for e in estimates])
    ok = np.array([b is not None for b in bars], dtype=bool)
    if ok.any():
        lo = np.array([b[0] for b in bars if b is not None])
        hi = np.array([b[1] for b in bars if b is not None])
        ax.errorbar(x[ok], v[ok], [np.maximum(v[ok] - lo, 0), np.maximum(hi - v[ok], 0)],
                    fmt=marker, color=color, **kw)
    if (~ok).any():                       # the label once, on the filled points if any
        ax.plot(x[~ok], v[~ok], marker, mfc="none", ls="none", color=color,
                **{k: a for k, a in kw.items() if k != "label" or not ok.any()})


def subset(fam, most=6):
    """At most ``most`` cases of a family, evenly spread, always the first and the last."""
    if len(fam) <= most:
        return list(fam)
    return [fam[int(round(k))] for k in np.linspace(0, len(fam) - 1, most)]


def n_eps_style(fam):
    """Colour by N, line style by epsilon (Figs. 8, 11), and the legend proxies."""
    Ns = sorted({e.params["N"] for e in fam})
    eps = sorted({e.params["epsilon"] for e in fam})
    styles = ["-", "--", ":", "-."]

    def style(k, e):
        return {"color": f"C{Ns.index(e.params['N']) % 10}",
                "ls": styles[eps.index(e.params["epsilon"]) % 4]}

    def legend(ax):
        from matplotlib.lines import Line2D
        h = [Line2D([], [], color=f"C{k % 10}") for k in range(len(Ns))]
        h += [Line2D([], [], color="k", ls=styles[k % 4]) for k in range(len(eps))]
        labels = [rf"$N={n}$" for n in Ns] + [rf"$\epsilon={sci(x)}$" for x in eps]
        legend_above(ax, ncol=min(4, len(h)), handles=h, labels=labels)
    return style, legend


def realizations(fam):
    """'R realizations' of a family, or the range when its cases differ."""
    n = sorted({e.case.n_done for e in fam})
    return f"{n[0]} realizations" if len(n) == 1 else f"{n[0]}-{n[-1]} realizations"


def params_text(e, *keys):
    """'Dbar = 0.1, eta = 1e5' for a caption."""
    def plain(x):
        m, _, p = f"{x:.3g}".partition("e")
        return f"{m}e{int(p)}" if p else m
    return ", ".join(f"{k} = {plain(e.params[k])}" for k in keys)


def need(entries, minimum, what):
    if len(entries) < minimum:
        raise NoData(what)
    return entries


def skip_panel(figure, panel, why):
    """Log that a panel is not drawn, and why; returns the caption sentence."""
    log.warning(f"{figure}: {panel} not drawn ({why})")
    return f"The {panel} is not drawn: {why}."


def letter(ax, text):
    ax.text(-0.02, 1.01, text, transform=ax.transAxes, ha="right", va="bottom",
            fontweight="bold")


# ---------------------------------------------------------------- figures

def fig2(pool):
    """Eq. (24): the Table I glasses in the (W / hbar tau^-1, Dbar/W) plane."""
    fig, ax = new_figure(height=2.8)
    x = np.logspace(0, 3, 50)
    ax.fill_between(x, 1e-12, x ** -1.5, color="C0", alpha=0.2, lw=0, label="MBL transient")
    ax.plot(x, x ** -1.5, "k-", lw=1)
    notes = []
    for k, (name, m) in enumerate(phase_diagram.materials().items()):
        d, s = m["dbar_over_w"], m["spread_decades"]
        ax.errorbar([m["w_over_hbar_tau"]], [d], yerr=[[d - d * 10**-s], [d * 10**s - d]],
                    fmt="o", color=f"C{k + 1}", label=name)
        notes.append(f"{name}: hbar Y/J ~ {m['ratio']:.2g}, +-{s:.2g} decades")
    ax.set(xscale="log", yscale="log", xlim=(1, 1e3), ylim=(1e-12, 1),
           xlabel=r"$W/\hbar\tau^{-1}$", ylabel=r"$\bar\Delta/W$")
    legend_above(ax, ncol=4)
    return captioned(
        fig, "Fig. 2. Expected phase diagram, Eq. (24): hbar Y/J ~ (Dbar/W)^2 (W/hbar tau^-1)^3.",
        "Shaded: the MBL transient, hbar Y/J < 1 (black line: hbar Y/J = 1).",
        "Points: the glasses of Table I; error bars: +- the standard deviation of log10 Delta "
        "of the log-uniform law.", "; ".join(notes) + ".")


def decay_panel(ax, fam, name, shown=None):
    """C(t) of a family on log-log axes with its power-law fits (Figs. 4, 5, 10a): the
    cases ``shown`` (default all) are drawn; returns the caption's fit sentences of all."""
    shown = fam if shown is None else shown
    curves(ax, shown, name)
    fit_lines(ax, shown)
    m = max(np.nanmax(e.mean_sem()[0]) for e in fam)
    ax.set(yscale="log", ylim=(m * 1e-4, m * 2), ylabel=r"$C(t)$")
    fit_to_data(ax)
    legend_above(ax, ncol=3 if len(shown) in (5, 6) else 4)
    out = []
    for e in fam:
        b = e.beta
        what = name(e).replace("$", "").replace("\\bar\\Delta", "Dbar")
        out.append(f"{what}: " + ("no decay window" if not np.isfinite(b.value) else
                                  fit_text(b, "beta", b.info["t_window"])))
    return "Power laws C(inf) + a t^-beta fitted over each curve's window: " + "; ".join(out) + "."


def rise_guide(ax, e):
    """The C ~ t guide (dash-dotted) through the first points of ``e`` (paper, Fig. 4)."""
    m = e.mean_sem()[0]
    k = int(np.argmax(m))
    t = e.t[:max(2, k)]
    c = 2 * np.median(m[:3] / e.t[:3])              # twice the rise, so it does not hide it
    ax.plot(t, c * t, "-.", color="k", lw=1.0)


#: inset rectangles (axes fraction: x0, y0, width, height) tried in this order, with room
#: left and below for the inset's tick labels
CORNERS = [(0.17, 0.14, 0.34, 0.34), (0.62, 0.14, 0.36, 0.34), (0.62, 0.42, 0.36, 0.24),
           (0.17, 0.62, 0.34, 0.32), (0.62, 0.62, 0.36, 0.32)]


def inset(ax, corners=CORNERS):
    """An inset where the drawn data are sparsest: of the rectangles ``corners``
    (enlarged by the room of its tick labels), the one crossed by the least length of
    lines (the first on a tie)."""
    to_axes = ax.transData + ax.transAxes.inverted()
    xy = [np.empty((0, 2))]
    for line in ax.lines:                  # vertices every 0.005 of the axes along each line
        p = to_axes.transform(np.asarray(line.get_xydata(), dtype=float).reshape(-1, 2))
        p = p[np.isfinite(p).all(1)]
        for a, b in zip(p[:-1], p[1:]):
            n = min(400, int(np.hypot(*(b - a)) / 0.005) + 1)
            xy.append(a + np.linspace(0, 1, n, endpoint=False)[:, None] * (b - a))
    xy = np.concatenate(xy)

    def inside(r):
        x0, y0, w, h = r[0] - 0.12, r[1] - 0.11, r[2] + 0.12, r[3] + 0.11
        return int(np.sum((xy[:, 0] >= x0) & (xy[:, 0] <= x0 + w) & (xy[:, 1] >= y0)
                          & (xy[:, 1] <= y0 + h)))
    sub = ax.inset_axes(min(corners, key=inside))
    sub.tick_params(labelsize=MIN_FONT, length=2, pad=1)
    sub.margins(0.08, 0.15)                  # markers clear of the frame
    return sub


def _beta_vs_inverse_n(ax, fam, ext, name, color="k"):
    """beta(1/N) of the sizes with a decay window (open: the power law fails its chi^2
    test) and the extrapolation line over the range it uses, when it has one; returns the
    caption sentence."""
    used = [e for e in fam if np.isfinite(e.beta.value)]
    points(ax, [1 / e.params["N"] for e in used], [e.beta for e in used], color=color,
           label=name)
    if not np.isfinite(ext.value):
        tried = "; ".join(f"N = {n[0]}..{n[-1]}: chi^2/nu = {c:.2g}" for n, c in
                          ext.info["N_tried"])
        return (f"{name}: no extrapolation to 1/N -> 0 ({ext.info['why']}"
                + (f"; tried {tried}" if tried else "") + ").")
    N = ext.info["N_used"]
    x = np.linspace(0, 1 / min(N), 20)
    ax.plot(x, ext.value + ext.info["slope"].value * x, "--", color=color, lw=0.8)
    return (fit_text(ext, f"{name}(1/N -> 0)", (min(N), max(N)), "N")
            + ", a line through the largest-N range of sizes consistent with a line "
              "(dashed; drawn over that range only).")


def _decay_figure(fam, name, head, draw_inset=None, note=""):
    """Figs. 4 and 5: C(t) of ``fam`` with fits, the C ~ t guide and, with ``draw_inset``
    (inset axes -> caption sentence), an inset in the lower left corner."""
    fig, ax = new_figure(height=3.2)
    shown = subset(fam)
    fits = decay_panel(ax, fam, name, shown)
    rise_guide(ax, shown[-1])
    hidden = [name(e).strip("$").replace("\\bar\\Delta", "Dbar") for e in fam if e not in shown]
    return captioned(
        fig, head, f"Solid lines: C(t); {BAND}",
        "Dash-dotted: C ~ t, twice the linear rise.  Dashed: power-law fits C(inf) + a t^-beta.",
        FAILED, fits,
        f"Not drawn, to keep the figure readable: {', '.join(hidden)} (in the inset and the "
        "fits above)." if hidden else "",
        draw_inset(inset(ax)) if draw_inset else note)


def fig4(pool):
    """C(t) at epsilon = 0 for several N, power laws, the C ~ t guide; inset beta_i(1/N)
    with the extrapolation to 1/N = 0 over the range of analysis.beta_extrapolation."""
    fam = need(pool.family("concurrence", ["N"], lambda p: p["epsilon"] == 0), 2,
               "fig4 needs epsilon = 0 concurrence cases for at least 2 sizes N")
    ext = beta_extrapolation(pool, fam)

    def draw_inset(sub):
        text = _beta_vs_inverse_n(sub, fam, ext, "beta_i")
        sub.set_xlim(left=0)
        sub.set_xlabel(r"$1/N$", labelpad=0)
        sub.set_ylabel(r"$\beta_i$", labelpad=1)
        return "Inset: beta_i against 1/N (error bars: bootstrap 68 % percentile intervals). " \
            + text
    head = (f"Fig. 4. Average concurrence C(t) in the unitary dynamics, epsilon = 0, "
            f"{params_text(fam[0], 'Dbar', 'eta')}, {realizations(fam)}.")
    name = lambda e: rf"$N={e.params['N']}$"                         # noqa: E731
    if not any(np.isfinite(e.beta.value) for e in fam):
        return _decay_figure(fam, name, head, note=skip_panel(
            "fig4", "inset beta_i(1/N)", "no size has a power-law window"))
    return _decay_figure(fam, name, head, draw_inset)


def fig5(pool):
    """C(t) at epsilon = 0 for several Dbar with power laws; inset beta_i(Dbar)."""
    fam = need(pool.family("concurrence", ["Dbar"], lambda p: p["epsilon"] == 0), 2,
               "fig5 needs epsilon = 0 concurrence cases for at least 2 values of Dbar")
    ok = [e for e in fam if np.isfinite(e.beta.value)]

    def draw_inset(sub):
        from matplotlib.ticker import NullFormatter
        points(sub, [e.params["Dbar"] for e in ok], [e.beta for e in ok])
        sub.set_xscale("log")
        sub.xaxis.set_minor_formatter(NullFormatter())     # no 2x10^-1 crowding a short axis
        sub.set_xlabel(r"$\bar\Delta/W$", labelpad=0)
        sub.set_ylabel(r"$\beta_i$", labelpad=1)
        return "Inset: beta_i against Dbar (error bars: bootstrap 68 % percentile intervals)."
    head = (f"Fig. 5. Average concurrence C(t) at epsilon = 0 for several Dbar, "
            f"{params_text(fam[0], 'N', 'eta')}, {realizations(fam)}.")
    name = lambda e: rf"$\bar\Delta={sci(e.params['Dbar'])}$"       # noqa: E731
    if not ok:
        return _decay_figure(fam, name, head, note=skip_panel(
            "fig5", "inset beta_i(Dbar)", "no Dbar has a power-law window"))
    return _decay_figure(fam, name, head, draw_inset)


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
    points(ax, [e.params["N"] for e in used], [e.plateau for e in used], color="C0")
    if other:
        ax.plot([e.params["N"] for e in other], [e.plateau.value for e in other], "o",
                mfc="none", color="C0")
    n = np.linspace(min(N), max(N), 50)
    ax.plot(n, np.exp(est.info["ln_prefactor"] - est.value * n), ":" if est.fails else "-",
            color="k")
    ax.set(yscale="log", xlabel=r"$N$", ylabel=r"$C(\infty)$")
    return captioned(
        fig, f"Fig. 6a. Plateau C(inf) of the average concurrence at epsilon = 0 against N, "
             f"{params_text(fam[0], 'Dbar', 'eta')}, {realizations(fam)}.",
        "Filled points: the sizes of the fit, with bootstrap 68 % percentile intervals; open: "
        "sizes left out (window rule of docs/post.md).",
        f"Line: C(inf) ~ exp(-alpha N), {fit_text(est, 'alpha', (min(N), max(N)), 'N')}"
        + (" (dotted: the fit fails its chi^2 test)." if est.fails else "."))


def fig6b(pool):
    """C(t) for several eta against t eta / 1e5: the time collapse."""
    fam, q = collapse(pool)
    need(fam, 2, "fig6b needs epsilon = 0 concurrence cases for at least 2 values of eta")
    fig, ax = new_figure()
    curves(ax, fam, lambda e: rf"$\eta={sci(e.params['eta'])}$",
           tscale=lambda e: e.params["eta"] / analysis.ETA_REF,
           style=lambda k, e: {"ls": ["-", "--", ":", "-."][k % 4], "lw": 1.6 - 0.3 * (k % 4)})
    m = max(np.nanmax(e.mean_sem()[0]) for e in fam)
    ax.set(xlabel=r"$t\,\eta/10^5$ [$\hbar/W$]", ylabel=r"$C(t)$", yscale="log",
           ylim=(m * 1e-4, m * 2))
    fit_to_data(ax)
    legend_above(ax, ncol=4)
    return captioned(
        fig, f"Fig. 6b. Average concurrence at epsilon = 0 for several eta against the rescaled "
             f"time t eta/10^5 (line style and colour by eta), {params_text(fam[0], 'N', 'Dbar')}, "
             f"{realizations(fam)}; {BAND}",
        f"Collapse: chi^2/nu of the curves about their weighted mean {q['rescaled']:.2g} with "
        f"the rescaled time, {q['raw']:.2g} without.")


def fig7(pool):
    """S_E(t)/N (solid) and C(t) (dashed) at epsilon = 0, the log t guide; inset S_E(inf)
    against N with the volume law (with 2 sizes or more)."""
    fam = need(pool.family("entropy", ["N"], lambda p: p["epsilon"] == 0), 1,
               "fig7 needs epsilon = 0 cases with the entropy")
    fig, ax = new_figure(height=3.0)
    curves(ax, fam, lambda e: rf"$N={e.params['N']}$", obs="entropy", scale=lambda e: e.params["N"])
    with_c = [e for e in fam if e.has("concurrence")]
    curves(ax, with_c, lambda e: None, style=lambda k, e: {"ls": "--", "color": f"C{fam.index(e)}"})
    t = fam[-1].t                      # guide for the eye through S_E/N of the largest N at t = 1
    s1 = np.interp(0.0, np.log(t), fam[-1].mean_sem("entropy")[0] / fam[-1].params["N"])
    guide = s1 * (1 + np.log(t) / np.log(100))
    top = max(np.nanmax(e.mean_sem("entropy")[0] / e.params["N"]) for e in fam)
    c_top = max([np.nanmax(e.mean_sem()[0]) for e in with_c] + [top])
    late = (t >= 1e-2) & (guide <= top)              # while S_E/N grows
    ax.plot(t[late], guide[late], ":", color="0.3")
    ax.set(ylabel=r"$S_E(t)/N$, $C(t)$", ylim=(0, 2.3 * c_top))     # room for the inset
    fit_to_data(ax)
    legend_above(ax, ncol=min(len(fam), 4))
    head = (f"Fig. 7. Half-system entanglement entropy per TLS S_E(t)/N (solid) and average "
            f"concurrence C(t) (dashed) at epsilon = 0, {params_text(fam[0], 'Dbar', 'eta')}, "
            f"{realizations(fam)}; {BAND}  Dotted: a log t guide for the eye through S_E/N of "
            f"N = {fam[-1].params['N']} at t = 1.")
    if len(fam) < 2:
        return captioned(fig, head, skip_panel("fig7", "inset S_E(inf)(N)", "one size only"))
    sub = inset(ax)
    vol = volume_law(fam)
    points(sub, [e.params["N"] for e in fam], [e.entropy_plateau for e in fam])
    n = np.array([e.params["N"] for e in fam], dtype=float)
    sub.plot(n, vol.info["intercept"].value + vol.value * n, ":" if vol.fails else "-",
             color="k", lw=0.8)
    sub.set_xlabel("$N$", labelpad=0)
    sub.set_ylabel(r"$S_E(\infty)$", labelpad=1)
    sub.xaxis.get_major_locator().set_params(integer=True)
    return captioned(
        fig, head, "Inset: plateau S_E(inf) against N (bootstrap 68 % percentile intervals) and "
        f"the volume law S_E(inf) = s N + c, {fit_text(vol, 's', (n.min(), n.max()), 'N')}.")


def fig8(pool):
    """C(t) for several epsilon and N (line style by epsilon, colour by N)."""
    fam = open_family(pool)
    need([e for e in fam if e.params["epsilon"] > 0], 1,
         "fig8 needs concurrence cases with epsilon > 0")
    fig, ax = new_figure()
    style, legend = n_eps_style(fam)
    curves(ax, fam, lambda e: None, style=style)
    m = max(np.nanmax(e.mean_sem()[0]) for e in fam)
    ax.set(yscale="log", ylabel=r"$C(t)$", ylim=(m * 1e-5, m * 2))
    fit_to_data(ax)
    legend(ax)
    return captioned(
        fig, f"Fig. 8. Average concurrence C(t) for several epsilon (line style) and N (colour), "
             f"{params_text(fam[0], 'Dbar', 'eta')}, {fam[0].run.attrs['engine']} engine, "
             f"{realizations(fam)}; {BAND}")


def fig9(pool):
    """C(t; eps)/C(inf; eps=0) and the stretched-exponential fits."""
    pairs = need([p for p in stretched_pairs(pool) if np.isfinite(p[2].value)], 1,
                 "fig9 needs cases with 0 < epsilon < 1 and the epsilon = 0 case of the same N "
                 "and times, run long enough for C(t; eps) to leave the eps = 0 plateau"
                 + "".join(f"; {w}" for w in pool.notes.get("fig9", [])))
    fig, ax = new_figure()
    entries = [e for e, _, _ in pairs]
    plateaus = {id(e): r.plateau.value for e, r, _ in pairs}
    curves(ax, entries, lambda e: rf"$N={e.params['N']}$, $\epsilon={sci(e.params['epsilon'])}$",
           scale=lambda e: plateaus[id(e)])
    notes = []
    for k, (e, _, est) in enumerate(pairs):
        i = est.info
        t = e.t[i["window"]]
        ax.plot(t, i["A"].value * np.exp(-(t / i["tau"].value) ** est.value),
                ":" if est.fails else "--", color=f"C{k % 10}", lw=1.2)
        notes.append(f"N = {e.params['N']}, epsilon = {e.params['epsilon']:g}: "
                     + fit_text(est, "delta", i["t_window"]) + f", tau = {i['tau']:.3g}, "
                     f"A = {i['A']:.3g}")
    top = max(np.nanmax(e.mean_sem()[0] / plateaus[id(e)]) for e in entries)
    ax.set(yscale="log", ylim=(analysis.FLOOR / 2, top * 2),
           ylabel=r"$C(t;\epsilon)/C(\infty;\epsilon=0)$")
    fit_to_data(ax)
    legend_above(ax, ncol=2)
    return captioned(
        fig, "Fig. 9. Concurrence with weak dissipation normalized to the epsilon = 0 plateau, "
             f"C(t; epsilon)/C(inf; epsilon = 0), {params_text(entries[0], 'Dbar', 'eta')}, "
             f"{realizations(entries)}; {BAND}",
        "Dashed: stretched exponentials A exp(-(t/tau)^delta) (t0 = 0) over each fit window. "
        + FAILED, "; ".join(notes) + ".")


def fig10(pool):
    """(a) C(t) at the largest epsilon with power-law fits; (b) beta against 1/N for every
    epsilon with a decay window, extrapolated to 1/N = 0 where the data allow it."""
    betas = open_betas(pool)
    if not betas or max(betas) <= 0:
        raise NoData("fig10 needs concurrence cases with epsilon > 0")
    eps_max = max(betas)
    with_beta = {eps: (g, ext) for eps, (g, ext) in betas.items()
                 if ext is not None and any(np.isfinite(e.beta.value) for e in g)}
    head = (f"Fig. 10. {params_text(betas[eps_max][0][0], 'Dbar', 'eta')}, "
            f"{realizations(betas[eps_max][0])}.")
    if not with_beta:
        fig, a = new_figure()
        b = None
    else:
        fig, (a, b) = new_figure(2, DOUBLE)
    fam = betas[eps_max][0]
    shown = subset(fam, 8)
    fits = decay_panel(a, fam, lambda e: rf"$N={e.params['N']}$", shown)
    letter(a, "(a)")
    hidden = [f"N={e.params['N']}" for e in fam if e not in shown]
    text = [head, f"(a) Average concurrence C(t) at epsilon = {eps_max:g}; {BAND}",
            "Dashed: power-law fits C(inf) + a t^-beta.", fits,
            f"Not drawn in (a), to keep it readable: {', '.join(hidden)} (in (b) and the fits "
            "above)." if hidden else ""]
    if b is None:
        text.append(skip_panel("fig10", "panel (b), beta against 1/N",
                               "no epsilon has a power-law window"))
        return captioned(fig, *text)
    text.append("(b) Exponents beta_i (epsilon = 0) and beta_o (epsilon > 0) against 1/N, "
                "bootstrap 68 % percentile intervals; dashed: the extrapolation to 1/N -> 0.")
    for k, (eps, (g, ext)) in enumerate(with_beta.items()):
        text.append(f"epsilon = {eps:g}: "
                    + _beta_vs_inverse_n(b, g, ext, rf"$\epsilon={sci(eps)}$", color=f"C{k}"))
    b.set(xlabel=r"$1/N$", ylabel=r"$\beta$")
    b.set_xlim(left=0)
    legend_above(b, ncol=len(with_beta))
    letter(b, "(b)")
    return captioned(fig, *text, FAILED)


def fig11(pool):
    """S_E(t)/N for several N and epsilon."""
    fam = need(open_family(pool, "entropy"), 1, "fig11 needs cases with the entropy")
    need([e for e in fam if e.params["epsilon"] > 0], 1, "fig11 needs entropy cases with epsilon > "
                                                         "0")
    fig, ax = new_figure()
    style, legend = n_eps_style(fam)
    curves(ax, fam, lambda e: None, obs="entropy", scale=lambda e: e.params["N"], style=style)
    ax.set(ylabel=r"$S_E(t)/N$", ylim=(0, None))
    fit_to_data(ax)
    legend(ax)
    return captioned(
        fig, "Fig. 11. Half-system entanglement entropy per TLS S_E(t)/N for several epsilon "
             f"(line style) and N (colour), {params_text(fam[0], 'Dbar', 'eta')}, "
             f"{realizations(fam)}; {BAND}")


def chunks(data):
    """' (pooled from K chunk files)' for random states pooled from several files, else ''."""
    n = len(data.get("paths", ()))
    return f" (pooled from {n} chunk files)" if n > 1 else ""


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
    ax.errorbar(N[used], y[used], dy[used], fmt="o", color="C0")
    if (~used).any():
        ax.errorbar(N[~used], y[~used], dy[~used], fmt="o", mfc="none", color="C0")
    x = np.linspace(min(fit["N_used"]), max(fit["N_used"]), 10)     # over its window only
    ax.plot(x, np.log2(fit["a"]) + fit["b"] * x, "k--")
    ax.set(xlabel="$N$", ylabel=r"$\log_2(-\ln\langle C\rangle)$")
    ax.xaxis.get_major_locator().set_params(integer=True)
    residual = y - (np.log2(fit["a"]) + fit["b"] * N)
    sub = inset(ax, corners=[(0.25, 0.62, 0.3, 0.32)])          # upper left, above the data
    sub.axhline(0.0, color="k", ls="--", lw=0.8)
    sub.errorbar(N[used], residual[used], dy[used], fmt="o", color="C0", ms=3)
    sub.errorbar(N[~used], residual[~used], dy[~used], fmt="o", mfc="none", color="C0", ms=3)
    sub.set_xlabel("$N$", labelpad=0)
    sub.set_ylabel("residual", labelpad=1)
    sub.xaxis.get_major_locator().set_params(integer=True)
    worst = np.argmax(np.abs(residual))
    return captioned(
        fig, f"Fig. 12. Average concurrence of Haar-random states, {data['states']} states per N"
             f"{chunks(data)}: "
             "log2(-ln <C>) against N (error bars: standard errors; open: not in the fit, "
             f"outside its window or fewer than {randomstates.MIN_NONZERO} entangled pairs).",
        f"Dashed: the least-squares line <C> ~ exp(-a 2^(b N)), {random_state_text(fit)}.",
        f"Inset: residuals from the line, log2(-ln <C>) - log2 a - b N, with the same errors "
        f"(largest {residual[worst]:.3g} +- {dy[worst]:.1g} at N = {N[worst]}).")


def observable(pool, name):
    """Mean +- standard error (band) of the stored observable ``name`` against t, one
    curve per case of every file that has it (at least 2 done realizations)."""
    entries = need([e for e in pool.entries if e.has(name)], 1,
                   f"observable {name}: no case of the files stores it with at least 2 done "
                   f"realizations (run with observables.{name} = true)")
    fig, ax = new_figure()
    several = len({e.group for e in entries}) > 1
    curves(ax, entries, lambda e: (f"{os.path.basename(e.group)}: " if several else "")
           + e.case.label, obs=name)
    cf = entries[0].case.cf[name]
    long_name = cf.get("long_name", name)
    ax.set_ylabel(f"{name} [{cf.get('units', '1')}]")
    legend_above(ax, ncol=2)
    return captioned(fig, f"{long_name} against t: mean over {realizations(entries)}; bands: "
                          "mean +- 1 standard error over realizations.")


def echo_fit_text(est):
    """'T_M = v [lo, hi], x = v [lo, hi] over t = a..b (chi^2/nu = c)' of
    `analysis.echo_estimate`, or why there is no fit."""
    if est.info["t_window"] is None:
        return est.info["verdict"]
    lo, hi = est.info["t_window"]
    return (f"T_M = {est:.3g}, x = {est.info['x']:.3g} over t = {lo:.2g}..{hi:.2g} "
            f"(chi^2/nu = {est.info['chi2_dof']:.2g})")


#: Line styles (by pulsed TLSs) and markers of the echo figure.
ECHO_STYLES, ECHO_MARKS = ["-", "--", ":", "-."], ["o", "s", "^", "D"]


def _echo_decays(a, entries, series, temps):
    """Panel (a) of `echo`: each case's ``|E(t)| / |E(t_0)|`` and its fit; the fit notes."""
    notes = []
    for e in entries:
        k, est = series.index(e.pulsed), e.echo
        m_re, m_im = np.mean(e.rows("echo"), 0), np.mean(e.rows("echo_imag"), 0)
        y = analysis.echo_amplitude(m_re, m_im)
        color = f"C{temps.index(e.params['T_K']) % 10}"
        keep = y >= analysis.FLOOR / 10
        a.plot(e.t[keep], y[keep], ECHO_STYLES[k % 4], color=color, lw=0.9)
        if np.isfinite(est.value):
            x, A = est.info["x"].value, est.info["A"].value
            t = e.t[est.info["window"]]
            a.plot(t, A * np.exp(-(t / est.value) ** x), "o", color=color, ms=2,
                   mfc="none" if est.fails else color)
        notes.append(f"{e.pulsed}, T = {e.params['T_K']:.3g} K: " + echo_fit_text(est))
    a.set(xscale="log", yscale="log", ylim=(analysis.FLOOR / 10, 2),
          xlabel=r"$t = 2\tau$ [$\hbar/W$]", ylabel=r"$|E(t)|\,/\,|E(t_0)|$")
    fit_to_data(a)
    return notes


def _echo_against_temperature(b, c, entries, series):
    """Panels (b), (c) of `echo`: T_M and x against model.T_K per pulse selection, T = 0
    as a horizontal line."""
    for k, name in enumerate(series):
        fam = [e for e in entries if e.pulsed == name and np.isfinite(e.echo.value)]
        hot = [e for e in fam if e.params["T_K"] > 0]
        kw = dict(color=("k", "0.5", "0.3", "0.7")[k % 4], marker=ECHO_MARKS[k % 4])
        if hot:
            for ax, pick in ((b, lambda est: est), (c, lambda est: est.info["x"])):
                ests = [pick(e.echo) for e in hot]
                points(ax, [e.params["T_K"] for e in hot], ests, label=name, **kw)
        for e in fam:
            if e.params["T_K"] == 0:
                b.axhline(e.echo.value, color=kw["color"], ls=ECHO_STYLES[k % 4], lw=0.8)
    b.set(xscale="log", yscale="log", xlabel=r"$T$ [K]", ylabel=r"$T_M$ [$\hbar/W$]")
    c.set(xscale="log", xlabel=r"$T$ [K]", ylabel=r"$x$")
    c.axhline(2, color="0.6", lw=0.6)
    c.axhline(1, color="0.6", lw=0.6, ls="--")


def echo(pool):
    """Hahn (or CPMG) echo decay and the phase memory time against temperature (docs/echo.md
    section 7): (a) ``|E(t)| / |E(t_0)|`` of every case with its fit A exp(-(t/T_M)^x), colour
    by T, line style by the pulsed TLSs; (b) T_M and (c) x against model.T_K, one series per
    pulse selection (T = 0 as a horizontal line in (b))."""
    entries = need(sorted([e for e in pool.entries if e.has("echo")],
                          key=lambda e: (e.pulsed, e.params["T_K"])), 1,
                   "echo: no case stores the echo signal with at least 2 done realizations "
                   "(run with observables.echo = true)")
    series = sorted({e.pulsed for e in entries})
    temps = sorted({e.params["T_K"] for e in entries})
    fig, (a, b, c) = new_figure(3, DOUBLE, HEIGHT)
    notes = _echo_decays(a, entries, series, temps)
    _echo_against_temperature(b, c, entries, series)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter
    for ax, text in zip((a, b, c), "abc"):
        letter(ax, text)
    for ax in (b, c):                       # a decade or less: no crowded minor labels
        ax.xaxis.set_minor_formatter(NullFormatter())
    legend_above(a, ncol=2, handles=[Line2D([], [], color="k", ls=ECHO_STYLES[k % 4])
                                     for k in range(len(series))], labels=series)
    a.add_artist(a.get_legend())            # keep it: a second legend replaces the first
    a.legend([Line2D([], [], color=f"C{k % 10}") for k in range(len(temps))],
             [f"{T:g} K" for T in temps], loc="lower left", ncol=1 + len(temps) // 4)
    legend_above(b, ncol=2)
    e0 = entries[0]
    return captioned(
        fig, f"Echo decay, {realizations(entries)}, {params_text(e0, 'N')} "
             f"{e0.params['material']}. "
             "(a) Echo amplitude |E(t)| / |E(t_0)| at t = 2 tau (lines; colour: temperature, "
             "line style: the pi-pulsed TLSs, as the symbols of (b), (c)) and the fit "
             "A exp(-(t/T_M)^x) on the points it uses (symbols; open: fails its chi^2 test).",
        "(b) T_M and (c) x against T with 68 % bootstrap percentile intervals (open symbols: "
        "no interval, the model does not describe the data); horizontal lines in (b): T = 0; "
        "in (c) x = 2 (solid) and x = 1 (dashed).", "Fits: " + "; ".join(notes) + ".")


#: figure name -> builder, in the paper's order, then the experiments'
FIGURES = {"fig2": fig2, "fig4": fig4, "fig5": fig5, "fig6a": fig6a, "fig6b": fig6b,
           "fig7": fig7, "fig8": fig8, "fig9": fig9, "fig10": fig10, "fig11": fig11,
           "fig12": fig12, "echo": echo}
