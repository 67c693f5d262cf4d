"""Post-processing on a login node (no MPI): summary table, fits and the paper's figures.

    python -m tlsmpi.post [WHAT] FILE... [--outdir DIR] [--boot N] [--seed S] [--alpha-nmin N]
                          [--observable NAME[,NAME...]]
    tlsmpi-post           (the same, installed console script)

WHAT is ``summary`` (the default: print the table only), ``all`` (the table and every
figure the files can feed) or one or more figure names (fig2, fig4, fig5, fig6a, fig6b,
fig6, fig7, fig8, fig9, fig10, fig11, fig12, echo), comma separated, or ``observable``: the mean
of each stored observable (those of ``--observable``, default every one the files hold)
against t with its standard-error band, DIR/observable_<name>.png.  FILEs are run files of
``tlsmpi.run`` and random-state files of ``tlsmpi.randomstates``, in any mix; each
figure takes the cases it needs from all of them (tlsmpi.post.figures).  Figures go to
DIR/<name>.png and .pdf, their captions to DIR/<name>.txt, the PNG/PDF metadata and the
output.  Uncertainties are bootstrap 68 % percentile intervals over
realizations, ``value [lo, hi]`` (``--boot`` replicas, seeded with ``--seed``); every fit
gives its window and reduced chi^2.  A figure panel without data is not drawn and the
output says why.  docs/post.md describes the analysis rules.

``check FILE...`` verifies run files for job scripts and ``unlock FILE`` clears a stale
lock (tlsmpi.post.check).

Exit status: 0 done; 1 a run file with damaged rows; 2 bad input (missing, corrupt or
foreign file; a requested figure without data; --outdir a file); 4 the operating system
refused to read a file or to write a figure (read-only filesystem, permission, disk full,
quota, file too large), with a one-line message naming the path and the errno's meaning.
A figure is written under a temporary name and renamed, so a failed write leaves the
figure of an earlier call, or none, never a truncated one.
"""
import contextlib
import io
import logging
import os
import sys

import numpy as np

from . import analysis, figures, pooling
from ..physics import phase_diagram
from .. import randomstates
from ..cli import Parser
from ..errors import EXIT_DAMAGED, EXIT_INPUT, EXIT_OK, os_message, os_status
from ..physics.model import ModelParams
from ..runfile.reader import DamagedRun, NotARunFile, Run, summary

ALIASES = {"fig6": ["fig6a", "fig6b"]}


class InputError(Exception):
    """Bad command line or files: reported in one line, exit status 2."""


class Damaged(Exception):
    """A run file whose rows fail verification: reported in one line, exit status 1."""


class Refused(Exception):
    """An operating-system error: reported in one line (`tlsmpi.errors.os_message`), exit
    status ``status`` (2 or 4, `tlsmpi.errors.os_status`)."""

    def __init__(self, err, path, doing, then=""):
        super().__init__(os_message(err, path, doing, then))
        self.status = os_status(err)


def load(paths):
    """Run files (the files of one ensemble joined, `pooling.ensembles`) and random-state
    files (all of them pooled into one: chunks of one seed, `randomstates.combine`);
    InputError names the first bad file, or files that cannot be pooled."""
    runs, states = [], []
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        try:
            runs.append(Run(path))
            continue
        except DamagedRun as err:
            raise Damaged(str(err)) from None
        except NotARunFile as err:
            run_error = " ".join(str(err).split())
        except (OSError, KeyError, ValueError) as err:
            if isinstance(err, OSError) and err.errno:   # the system refused to read it
                raise Refused(err, path, "reading") from None
            run_error = f"{path}: damaged run file ({' '.join(str(err).split())})"
        try:
            states.append(randomstates.read(path))
        except (OSError, KeyError, ValueError):
            raise InputError(run_error) from None
    try:
        states = [randomstates.combine(states)] if states else []
    except ValueError as err:
        raise InputError(str(err)) from None
    try:
        return pooling.ensembles(runs), states
    except pooling.NotCombinable as err:
        raise InputError(str(err)) from None


def _fmt(est, spec=".3g"):
    return format(est, spec) if np.isfinite(est.value) else "—"


def _fit(est, window, unit=""):
    """' over lo..hi, chi2/dof x (limit y)' of a fit (analysis.chi2_limit)."""
    lo, hi = window
    return (f" over {unit}{lo:.3g}..{hi:.3g}, chi2/dof {est.info.get('chi2_dof', np.nan):.2g} "
            f"(limit {est.info.get('chi2_max', np.nan):.2g})")


def case_table(pool):
    """One line per case: peak, t_peak J_nn, beta and its window, plateau, S_E(inf)/N."""
    lines = [f"  {'file':<16} {'case':<22} {'N':>3} {'eps':>7} {'R':>5}  {'C_max':>24} "
             f"{'t_max':>24} {'t_max*J_nn':>10}  {'beta':>44} {'window':>17} {'chi2/dof':>8}  "
             f"{'C(inf)':>31} {'drift':>6}  {'S_E(inf)/N':>24}"]
    for e in pool.entries:
        p, name = e.params, "+".join(os.path.basename(g) for g in e.group.split(" + "))[:16]
        line = (f"  {name:<16} {e.case.label[:22]:<22} {p['N']:>3} {p['epsilon']:>7.1g} "
                f"{e.case.n_done:>5}")
        if e.has("concurrence"):
            pk, b, pl = e.peak, e.beta, e.plateau
            J = e.couplings
            tj = f"{pk.value * J['J_nn']:10.3g}" if J else f"{'—':>10}"
            win = (
                "—" if b.info["t_window"] is None else "{:.2g}..{:.2g}".format(*b.info["t_window"])
            )
            bt = f"{b.value:.3g} (model does not describe the data)" if b.fails else _fmt(b)
            line += (f"  {_fmt(pk.info['C_max'], '.4f'):>24} {_fmt(pk):>24} {tj}  {bt:>44} "
                     f"{win:>17} {b.info['chi2_dof']:8.2g}  {_fmt(pl, '.3e'):>31} "
                     f"{pl.info['drift']:6.2f}")
        else:
            line += " " * 195
        if e.has("entropy"):
            s = e.entropy_plateau
            per_n = analysis.Estimate(s.value / p["N"], s.err / p["N"],
                                      interval=tuple(x / p["N"] for x in s.interval))
            line += f"  {_fmt(per_n, '.4f'):>24}"
        lines.append(line)
    return lines


def echo_lines(pool):
    """T_M and x of the echo decay of every case with an echo, by pulsed TLSs and in order
    of temperature (T_M against T), with chi^2/nu; "model does not describe the data"
    without interval."""
    entries = sorted((e for e in pool.entries if e.has("echo")),
                     key=lambda e: (e.pulsed, e.params["T_K"]))
    if not entries:
        return []
    lines = ["", "Echo decay |E(t)|/|E(t_0)| = A exp(-(t/T_M)^x), t = 2 tau (docs/echo.md):",
             f"  {'file':<16} {'case':<22} {'pulses':<12} {'T_K':>8} {'T_M':>24} {'x':>24} "
             f"{'window':>17} {'chi2/dof':>8}"]
    for e in entries:
        est = e.echo
        win = "—" if est.info["t_window"] is None else "{:.2g}..{:.2g}".format(
            *est.info["t_window"])
        x = est.info.get("x", analysis.Estimate(np.nan, np.nan))
        line = (f"  {os.path.basename(e.group)[:16]:<16} {e.case.label[:22]:<22} "
                f"{e.pulsed[:12]:<12} {e.params['T_K']:>8.3g} {_fmt(est):>24} {_fmt(x):>24} "
                f"{win:>17} {est.info['chi2_dof']:8.2g}")
        lines.append(line + (f"  {est.info['verdict']}" if est.info["verdict"] else ""))
    return lines


def analysis_lines(pool):
    """The cross-case numbers: beta extrapolations, alpha, collapse, delta/tau, volume law,
    random-state fit, Eq. (24) ratios."""
    out = []
    fam, alpha = pooling.alpha(pool)
    if np.isfinite(alpha.value):
        out.append(f"  alpha (C(inf) ~ exp(-alpha N), Fig. 6a): {_fmt(alpha)} over N = "
                   f"{alpha.info['N_used']}, chi2/dof {alpha.info['chi2_dof']:.2g}")
    for eps, (group, ext) in pooling.open_betas(pool).items():
        name = "beta_i" if eps == 0 else "beta_o"
        if ext is not None and not np.isfinite(ext.value):
            tried = "; ".join(f"N={n[0]}..{n[-1]}: chi2/dof {c:.2g}"
                              for n, c in ext.info["N_tried"])
            out.append(f"  {name} (eps={eps:g}): no extrapolation to 1/N -> 0, {ext.info['why']}"
                       + (f" (tried {tried})" if tried else ""))
        elif ext is not None:
            per = ", ".join(f"N={e.params['N']}: {_fmt(e.beta)}" for e in group
                            if e.params["N"] in ext.info["N_used"])
            out.append(f"  {name} (eps={eps:g}) extrapolated to 1/N -> 0: {_fmt(ext)}"
                       f"{_fit(ext, (min(ext.info['N_used']), max(ext.info['N_used'])), 'N=')}"
                       f"  [{per}]")
    _, q = pooling.collapse(pool)
    if q is not None:
        out.append(f"  eta collapse (Fig. 6b): chi2/dof {q['rescaled']:.3g} with t -> t eta/1e5, "
                   f"{q['raw']:.3g} without")
    for e, _, est in pooling.stretched_pairs(pool):
        i = est.info
        if np.isfinite(est.value):
            out.append(f"  stretched exp (Fig. 9) N={e.params['N']} eps={e.params['epsilon']:g}: "
                       f"delta = {_fmt(est)}, tau = {_fmt(i['tau'])}, A = {_fmt(i['A'])}"
                       f"{_fit(est, i['t_window'], 't=')}")
    ent = pool.family("entropy", ["N"], lambda p: p["epsilon"] == 0)
    if len(ent) >= 2:
        vol = pooling.volume_law(ent)
        out.append(f"  S_E(inf) = s N + c (Fig. 7 inset): s = {_fmt(vol)}, c = "
                   f"{_fmt(vol.info['intercept'])}"
                   f"{_fit(vol, (min(vol.info['N_used']), max(vol.info['N_used'])), 'N=')}")
    for data in pool.randomstates:
        fit = pooling.random_state_fit(data)
        out.append(f"  random states (Fig. 12, {data['states']} states per N in "
                   f"{len(data['paths'])} file(s)): {pooling.random_state_text(fit, 4)}")
    for name, m in phase_diagram.materials().items():
        out.append(f"  Eq. (24) {name}: Dbar/W = {m['dbar_over_w']:.2g}, W/(hbar/tau) = "
                   f"{m['w_over_hbar_tau']:.3g}, hbar Y/J ~ {m['ratio']:.2g} "
                   f"(log10 spread ± {2 * m['spread_decades']:.2g} decades)")
    num = phase_diagram.numerics(ModelParams(epsilon=1.0))
    out.append(f"  Eq. (24) paper numerics: hbar Y/J ~ {num['ratio']:.3g} x epsilon/eta "
               f"= {num['effective_ratio']:.2g} at epsilon = 1, eta = 1e5")
    return out


def report(runs, pool):
    text = [summary(r) for r in runs]
    if pool.entries:
        text += ["", "Analysis per case (bootstrap errors; t in hbar/W, J_nn in W):"] + case_table(
            pool
        )
    text += echo_lines(pool)
    text += ["", "Fits across cases:"] + analysis_lines(pool)
    twice = pool.duplicates()
    if twice:
        text += ["", "Cases in several files (not pooled: other configurations):"] + [
            "  " + line for line in twice]
    return "\n".join(text)


def parse_args(argv):
    p = Parser(
        prog="python -m tlsmpi.post",
        description=__doc__.split("\n\n")[0],
        error_type=InputError,
        epilog="WHAT: summary | all | "
        + " | ".join(list(figures.FIGURES) + list(ALIASES))
        + " (comma separated).  Files of one configuration with disjoint realizations "
        "are pooled (docs/post.md).  The configuration keys of a run file: "
        "docs/configuration.md, or `tlsmpi config` (every key, default, description).",
    )
    p.add_argument("items", nargs="+", metavar="[WHAT] FILE", help="what to make, then the files")
    p.add_argument("--outdir", default="figures", help="directory for the figures (default: "
                                                       "figures)")
    p.add_argument("--boot", type=int, default=analysis.N_BOOT, help="bootstrap replicas")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--alpha-nmin", type=int, default=0, metavar="N",
                   help="fit C(inf) ~ exp(-alpha N) only over sizes >= N (Fig. 6a)")
    p.add_argument("--observable", default="", metavar="NAME[,NAME]",
                   help="with WHAT observable: the stored observables to plot (default: all)")
    args = p.parse_args(argv)
    names = ["summary", "all", "observable"] + list(figures.FIGURES) + list(ALIASES)
    first = args.items[0].split(",")
    if all(w in names for w in first):
        args.what, args.files = first, args.items[1:]
    elif not os.path.exists(args.items[0]) and not any(c in args.items[0] for c in "./"):
        unknown = ", ".join(w for w in first if w not in names)
        raise InputError(f"unknown WHAT {unknown!r}: choose from {', '.join(names)} (comma "
                         "separated), then the files")
    else:
        args.what, args.files = ["summary"], args.items
    if args.boot < 2:
        raise InputError("--boot must be at least 2")
    if args.observable and "observable" not in args.what:
        raise InputError(f"--observable {args.observable} has no effect without WHAT "
                         "observable: python -m tlsmpi.post observable FILE... --observable "
                         f"{args.observable}")
    return args


def observable_figures(what, names, runs):
    """{figure name: function of the pool} of WHAT ``observable``: one per name of
    ``names`` (comma separated), or per observable stored in ``runs`` if empty."""
    if "observable" not in what:
        return {}
    stored = [o for r in runs for c in r.cases for o in c.observables]
    chosen = [n for n in names.split(",") if n] or list(dict.fromkeys(stored))
    return {f"observable_{n}": (lambda pool, n=n: figures.observable(pool, n)) for n in chosen}


def selected(what):
    if "all" in what:
        return list(figures.FIGURES), False
    chosen = []
    for w in what:
        chosen += ALIASES.get(w, [w] if w in figures.FIGURES else [])
    return chosen, True


METADATA = {"png": "Description", "pdf": "Subject"}    # where the caption goes in the file


def save(fig, path, made):
    """Write ``fig`` to ``path`` (.png, .pdf with the caption in its metadata, .txt the
    caption) under a temporary name, then rename it (atomic): a failed write leaves what
    ``path`` held before.  Refused names the path and what was made."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.partial")
    ext = os.path.splitext(path)[1][1:]
    try:
        if ext == "txt":
            with open(tmp, "w") as f:
                f.write(figures.caption(fig) + "\n")
        else:
            fig.savefig(tmp, dpi=300, format=ext,
                        metadata={METADATA[ext]: figures.caption(fig)})
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        written = f"the figures before it are complete ({', '.join(made)})" if made else \
            "no figure was written"
        raise Refused(OSError(err.errno, err.strerror), path, "writing",  # not the temporary's
                      f"{written}; fix the filesystem or choose another --outdir") from None


def main(argv=None):
    """Figure notes (panels not drawn, and why) are printed after the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("check", "unlock"):
        from . import check
        return check.main(argv)
    held = io.StringIO()
    notes = logging.StreamHandler(held)
    notes.setFormatter(logging.Formatter("  %(message)s"))
    figures.log.addHandler(notes)
    figures.log.propagate = False
    try:
        return _main(argv, held)
    finally:
        figures.log.removeHandler(notes)
        figures.log.propagate = True


def _main(argv, held):
    try:
        args = parse_args(argv)
        if os.path.exists(args.outdir) and not os.path.isdir(args.outdir):
            raise InputError(f"--outdir {args.outdir} is a file (Not a directory [ENOTDIR]): "
                             "give a directory")
        names, strict = selected(args.what)
        if not args.files and names != ["fig2"]:
            raise InputError("no files given: python -m tlsmpi.post [WHAT] FILE...")
        runs, states = load(args.files)
        pool = pooling.Pool(runs, states, args.boot, args.seed, args.alpha_nmin)
        built, skipped = [], []            # every figure first: a requested one that
        makers = {**figures.FIGURES,       # cannot be made is one line, before any table
                  **observable_figures(args.what, args.observable, runs)}
        for name in names + [n for n in makers if n.startswith("observable_")]:
            try:
                built.append((name, makers[name](pool)))
            except pooling.NoData as err:
                if strict:
                    raise InputError(f"{name} cannot be made from {', '.join(args.files)}: "
                                     f"{err}") from None
                skipped.append(f"  {name}: skipped ({err})")
        print(report(runs, pool), flush=True)
        print(held.getvalue() + "\n".join(skipped), end="\n" if skipped else "", flush=True)
        made = []
        for name, fig in built:
            try:
                os.makedirs(args.outdir, exist_ok=True)
            except OSError as err:
                raise Refused(err, args.outdir, "--outdir: creating the directory",
                              "no figure was written; choose another --outdir") from None
            for ext in ("png", "pdf", "txt"):
                save(fig, os.path.join(args.outdir, f"{name}.{ext}"), made)
            print(f"  {name}: {figures.caption(fig)}")
            figures.pyplot().close(fig)
            made.append(name)
        if made:
            print(f"figures written to {args.outdir}/: {', '.join(made)} (png, pdf; caption txt)")
    except Refused as err:
        print(f"tlsmpi-post: error: {err}", file=sys.stderr)
        return err.status
    except InputError as err:
        print(f"tlsmpi-post: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except Damaged as err:
        print(f"tlsmpi-post: error: {err}", file=sys.stderr)
        return EXIT_DAMAGED
    return EXIT_OK

