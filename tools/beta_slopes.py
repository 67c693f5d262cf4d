"""Local slopes d ln C / d ln t of the concurrence after its peak (docs/beta.md).

    python tools/beta_slopes.py RUN.h5 [RUN.h5 ...] [--csv OUT.csv] [--boot 300] [--N N ...]
    python tools/beta_slopes.py --markdown READING TABLE.csv [TABLE.csv ...]
    python tools/beta_slopes.py --fits RUN.h5 [--N N ...]

For every case of every run file: t_peak of the mean curve (tlsmpi.post.analysis.peak),
then at t = x t_peak for x in `POINTS` the least-squares slope of ln(reading) against
ln t over the grid points within `HALF_WIDTH` decades of x t_peak, for four readings of the
ensemble: the mean C, the mean minus its plateau C - C(inf) (Eq. 30; C(inf) of
tlsmpi.post.analysis.plateau_value), the median, and the typical value exp<ln C> of the
realizations with C > 0.  The standard error of each slope is the standard deviation over
``--boot`` bootstrap resamples of the realizations (windows fixed).  ``n_pos`` is the
number of realizations with C > 0 at the window's centre: where it is small, the mean
rests on those few.  ``--markdown`` prints one reading of written tables as a Markdown
table (a row per file and case, a column per x: slope +- SEM, n_pos).  ``--fits`` prints
beta of a straight line through ln C(mean) against ln t over each of `FIT_WINDOWS` (in
units of t_peak): how a fixed-window power-law fit reads the same curve.
"""
import argparse
import csv
import sys
import warnings

import numpy as np

from tlsmpi.post.analysis import peak, plateau_value
from tlsmpi.results import Run

POINTS = (1.8, 3.2, 5.6, 10.0, 18.0, 32.0, 56.0, 100.0)
HALF_WIDTH = 0.15
FIT_WINDOWS = ((1.2, 5.0), (1.8, 10.0), (1.0, 30.0))
READINGS = ("mean", "mean-Cinf", "median", "typical")
FIELDS = ("file", "label", "N", "R", "t_peak", "reading", "x", "t_lo", "t_hi", "slope", "sem",
          "n_pos")


def readings(rows, c_inf):
    """The four readings of ``rows`` (R, T): name -> (T,) curve (NaN where undefined)."""
    mean = rows.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)             # columns without C > 0
        pos = np.where(rows > 0, rows, np.nan)
        typical = np.exp(np.nanmean(np.log(pos), 0)) if np.any(rows > 0) else mean * np.nan
        return {"mean": mean, "mean-Cinf": mean - c_inf,
                "median": np.median(rows, 0), "typical": typical}


def slope(t, y):
    """Least-squares slope of ln y on ln t (NaN unless every y > 0)."""
    if not np.all(y > 0):
        return np.nan
    return float(np.polyfit(np.log(t), np.log(y), 1)[0])


def case_slopes(t, rows, n_boot=300, seed=0):
    """Rows of the table for one case: dicts of the `FIELDS` after "R"."""
    t_peak = peak(t, rows.mean(0))[0]
    c_inf = plateau_value(rows.mean(0))
    windows = []
    for x in POINTS:
        idx = np.flatnonzero(np.abs(np.log10(t / (x * t_peak))) <= HALF_WIDTH)
        if len(idx) >= 2:
            windows.append((x, idx))
    cols = np.unique(np.concatenate([idx for _, idx in windows]))
    where = {k: i for i, k in enumerate(cols)}
    sub, tt = rows[:, cols], t[cols]
    rng = np.random.default_rng(seed)
    boots = [readings(sub[rng.integers(0, len(sub), len(sub))], c_inf) for _ in range(n_boot)]
    full = readings(sub, c_inf)
    out = []
    for x, idx in windows:
        k = [where[i] for i in idx]
        centre = idx[np.argmin(np.abs(np.log(t[idx] / (x * t_peak))))]
        for name in READINGS:
            reps = np.array([slope(tt[k], b[name][k]) for b in boots])
            ok = np.isfinite(reps)
            sem = float(reps[ok].std(ddof=1)) if ok.sum() > 10 and ok.mean() > 0.9 else np.nan
            out.append(dict(t_peak=t_peak, reading=name, x=x, t_lo=float(t[idx[0]]),
                            t_hi=float(t[idx[-1]]), slope=slope(tt[k], full[name][k]), sem=sem,
                            n_pos=int((rows[:, centre] > 0).sum())))
    return out


def markdown(reading, paths):
    """Markdown table of ``reading`` from tables written with --csv."""
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            rows += [r for r in csv.DictReader(fh) if r["reading"] == reading]
    xs = sorted({float(r["x"]) for r in rows})
    keys = list(dict.fromkeys((r["file"], r["label"], r["R"]) for r in rows))
    print("| run | case | R | " + " | ".join(f"{x:g} t_peak" for x in xs) + " |")
    print("| --- " * (3 + len(xs)) + "|")
    for key in keys:
        cell = {float(r["x"]): r for r in rows if (r["file"], r["label"], r["R"]) == key}
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(
            (f"{float(cell[x]['slope']):.2f} +- {float(cell[x]['sem']):.2f} ({cell[x]['n_pos']})"
             if x in cell and cell[x]["slope"] != "nan" else "-") for x in xs) + " |")


def window_fits(t, rows):
    """-slope of ln C(mean) on ln t over each of `FIT_WINDOWS` x t_peak."""
    mean = rows.mean(0)
    t_peak = peak(t, mean)[0]
    out = []
    for lo, hi in FIT_WINDOWS:
        k = (t >= lo * t_peak) & (t <= hi * t_peak)
        out.append(-slope(t[k], mean[k]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--markdown", metavar="READING", choices=READINGS)
    parser.add_argument("--fits", action="store_true")
    parser.add_argument("--csv", help="write the table here (else to stdout)")
    parser.add_argument("--boot", type=int, default=300)
    parser.add_argument("--N", type=int, nargs="*", help="only these N")
    args = parser.parse_args(argv)
    if args.markdown:
        return markdown(args.markdown, args.files)
    table = []
    for path in args.files:
        run = Run(path)
        t = run.times
        for case in run.cases:
            if args.N and case.params["N"] not in args.N:
                continue
            rows = case.values("concurrence")
            if args.fits:
                print(f"{path} {case.label}: beta over " + ", ".join(
                    f"[{lo:g}, {hi:g}] t_peak = {b:.2f}"
                    for (lo, hi), b in zip(FIT_WINDOWS, window_fits(t, rows))))
                continue
            for r in case_slopes(t, rows, args.boot):
                table.append(dict(file=path.rsplit("/", 1)[-1], label=case.label,
                                  N=case.params["N"], R=len(rows), **r))
    if args.fits:
        return
    fh = open(args.csv, "w", newline="") if args.csv else sys.stdout
    writer = csv.DictWriter(fh, FIELDS)
    writer.writeheader()
    for row in table:
        writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    if args.csv:
        fh.close()


if __name__ == "__main__":
    main()
