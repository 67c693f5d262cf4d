"""Footnote 67 in numbers: C(t) with and without the flip-flop term (docs/flipflop.md).

    python -m tlsmpi.post.flipflop FILE [FILE ...] [--at T ...] [--figure flipflop.png]

Reads run files (any engine) and groups their cases by (epsilon, N).  Per case: the
peak C_max and its time (Sec. IV C), the plateau C(inf) and the power-law exponent beta
of `tlsmpi.post.analysis` (rules in docs/post.md), S_E at the last time over N, each with
a bootstrap error over realizations (beta without one when its fit fails its chi^2
test).  Where a case without flip-flop (flipflop = 0) of
the same (epsilon, N, seed, time grid) exists, the flip-flop cases are also compared with it
realization by realization (same disorder, same initial state): the mean over times and
realizations of C_ff(t) - C_0(t), and the largest |mean difference| over times with the
standard error there.  With --at T ...: mean C at those times, and the paired
difference.  With --figure: mean C(t) per N, no flip-flop solid, the exchange form
dashed, the xx form dotted (thin lines for K/J != 1).
"""
import argparse
import sys

import numpy as np

from ..physics.statistics import sem
from .analysis import beta_estimate, bootstrap, peak, plateau_value
from ..runfile.reader import Run


def form_of(params):
    """"none" for flipflop = 0, else the operator form and K/J, e.g. "xx 0.1"."""
    ff = params.get("flipflop", 0.0)
    return f"{params.get('flipflop_form', 'exchange')} {ff:g}" if ff else "none"


def load(paths):
    """[(key, form, case, times, seed)] with key = (epsilon, N), from the run files."""
    entries = []
    for path in paths:
        run = Run(path)
        seed = run.attrs.get("seed")
        for case in run.cases:
            if case.n_done:
                key = (float(case.params["epsilon"]), int(case.params["N"]))
                entries.append((key, form_of(case.params), case, run.times, seed))
    return entries


def case_row(t, case):
    """Estimates of one case: {"C_max", "t_peak", "C_inf", "S_inf"} -> (value, err) and
    "beta" -> `analysis.Estimate` (with its chi^2 test, `beta_estimate`)."""
    C = case.values("concurrence")
    out = {}
    for name, est in (("C_max", lambda c: peak(t, c)[1]), ("t_peak", lambda c: peak(t, c)[0]),
                      ("C_inf", plateau_value)):
        value, err, _ = bootstrap([C], est)
        out[name] = (value, err)
    out["beta"] = beta_estimate(t, C)
    if "entropy" in case.observables:
        S = case.values("entropy")[:, -1] / case.N
        out["S_inf"] = (S.mean(), sem(S))
    return out


def differences(case, ref):
    """C_ff(t) - C_0(t), (n, T), for the realization indices r both cases have done (the
    runs may have different numbers of realizations: r is the same disorder in both)."""
    n = min(len(case.done), len(ref.done))
    both = case.done[:n] & ref.done[:n]
    return case.rows("concurrence")[:n][both] - ref.rows("concurrence")[:n][both]


def paired(case, ref):
    """Realization-by-realization C_ff - C_0 on the realizations both have done
    (`differences`): (mean over times and realizations, its standard error, max over t
    of |mean|, the standard error at that time)."""
    d = differences(case, ref)
    per_real = d.mean(1)
    mean_t, sem_t = d.mean(0), sem(d)
    k = int(np.argmax(np.abs(mean_t)))
    return per_real.mean(), sem(per_real), mean_t[k], sem_t[k]


def references(entries):
    """The case without flip-flop of every (key, seed, time grid): the reference of the
    paired differences (of several, the last file given wins, e.g. a trajectory control
    after Engine 1, so that the finite-M bias cancels)."""
    return {
        (key, seed, t.tobytes()): case for key, form, case, t, seed in entries if form == "none"
    }


def table(entries):
    """The text table (module docstring), one line per case."""
    lines = [f"{'eps':>5} {'N':>3} {'form K/J':>12} {'n':>4} {'C_max':>16} {'t_peak':>8} "
             f"{'C_inf':>20} "
             f"{'beta':>13} {'S_E(end)/N':>16} {'<C_ff - C_0>':>20} {'max_t|dC|':>18}"]
    refs = references(entries)
    for key, form, case, t, seed in sorted(entries, key=lambda e: (e[0], e[1] != "none", e[1])):
        r = case_row(t, case)

        def fmt(name, spec):
            if name not in r:
                return ""
            if name == "beta":       # a failed fit gives no error (docs/post.md)
                b = r[name]
                return f"{b.value:{spec}} (fails)" if b.fails else f"{b.value:{spec}} ± {b.err:.1g}"
            v, e = r[name]
            return f"{v:{spec}} ± {e:.1g}"
        line = (f"{key[0]:>5g} {key[1]:>3} {form:>12} {case.n_done:>4} {fmt('C_max', '.4f'):>16} "
                f"{r['t_peak'][0]:>8.3g} {fmt('C_inf', '.2e'):>20} {fmt('beta', '.2f'):>13} "
                f"{fmt('S_inf', '.4f'):>16}")
        ref = refs.get((key, seed, t.tobytes()))
        if form != "none" and ref is not None:
            m, e, dk, ek = paired(case, ref)
            line += f" {m:>+11.2e} ± {e:.1e} {dk:>+9.2e} ± {ek:.1e}"
        lines.append(line)
    return "\n".join(lines)


def at_times(entries, times):
    """Mean C(t) ± standard error over realizations at the grid times nearest to
    ``times`` (log distance), one line per case; for flip-flop cases with a reference
    also the paired difference C_ff - C_0 ± its standard error."""
    refs = references(entries)
    lines = [f"{'eps':>5} {'N':>3} {'form K/J':>12} {'n':>4} {'t':>9} {'C(t)':>22} "
             f"{'C_ff - C_0':>22}"]
    for key, form, case, t, seed in sorted(entries, key=lambda e: (e[0], e[1] != "none", e[1])):
        ref = refs.get((key, seed, t.tobytes())) if form != "none" else None
        C = case.values("concurrence")
        for want in times:
            k = int(np.argmin(np.abs(np.log(t / want))))
            line = (f"{key[0]:>5g} {key[1]:>3} {form:>12} {case.n_done:>4} {t[k]:>9.3g} "
                    f"{C[:, k].mean():>11.3e} ± {sem(C[:, k]):.1e}")
            if ref is not None:
                d = differences(case, ref)[:, k]
                line += f" {d.mean():>+11.2e} ± {sem(d):.1e}"
            lines.append(line)
    return "\n".join(lines)


def figure(entries, path):
    """Mean C(t) per (epsilon, N): no flip-flop solid, exchange dashed, xx dotted."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    eps = sorted({key[0] for key, *_ in entries})
    fig, axes = plt.subplots(1, len(eps), figsize=(6 * len(eps), 4.5), squeeze=False)
    sizes = sorted({key[1] for key, *_ in entries})
    colors = {N: plt.cm.viridis(i / max(1, len(sizes) - 1)) for i, N in enumerate(sizes)}
    styles = {"none": "-", "exchange": "--", "xx": ":"}
    for ax, e in zip(axes[0], eps):
        for key, form, case, t, _ in entries:
            if key[0] != e:
                continue
            C = case.values("concurrence")
            m, s = C.mean(0), sem(C)
            ax.plot(t, m, styles[form.split()[0]], color=colors[key[1]], label=f"N = {key[1]}, "
                                                                               f"{form}",
                    lw=1.5 if form == "none" or form.endswith(" 1") else 0.8)
            ax.fill_between(t, m - s, m + s, color=colors[key[1]], alpha=0.2, lw=0)
        ax.set(
            xscale="log", yscale="log", xlabel="t [hbar/W]", ylabel="C(t)", title=f"epsilon = {e:g}"
        )
        ax.set_ylim(bottom=1e-5)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.post.flipflop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--figure", help="write the overlay figure here (png, pdf)")
    parser.add_argument("--at", type=float, nargs="+", metavar="T",
                        help="also print C at the grid times nearest to these")
    args = parser.parse_args(argv)
    entries = load(args.files)
    print(table(entries))
    if args.at:
        print(at_times(entries, args.at))
    if args.figure:
        figure(entries, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
