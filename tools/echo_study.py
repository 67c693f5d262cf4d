"""The echo study of docs/echo.md section 7: runs and the derived table, per Table I glass.

    python tools/echo_study.py run OUTDIR [--material BK7] [--jobs 2]   # run files (not committed)
    python tools/echo_study.py table OUTDIR [--material BK7]   # docs/data/echo_bk7{,_sd}.csv
    python tools/echo_study.py run OUTDIR --band 0.975 1.025 --N 1600 --runs narrow

`run` makes the run files of `RUNS` from run/echo_sio2.toml with ``model.material`` set
to the glass (default SiO2; N = 400, Hahn echo of the TLSs with hbar nu = (0.9 .. 1.1)
h 1 GHz): at each T the asymmetry window is eps <= max(2 k_B T, 0.55 h 1 GHz)
(model.eps_max; it holds every TLS with hbar nu <= 4 k_B T and the whole band), and the
realizations grow with the window so that every file holds about the same number of band
TLSs.  A complete file is left alone (delete it to redo it), an interrupted one resumed.
`--band` and `--N` choose a narrower band of signal TLSs and more TLSs per realization
(the `NARROW` runs: T <= 0.3 K, where the band's own instantaneous diffusion dominates).
`table` fits the echo of every run (`tlsmpi.post.analysis.echo_estimate`; files of one
ensemble joined) and writes one CSV line per run, in the order of `RUNS`, and the
spectral diffusion alone (`spectral_diffusion`) to the same name with _sd.
"""
import argparse
import csv
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

from tlsmpi.physics.model import KB_EV, MATERIALS
from tlsmpi.post import analysis, pooling
from tlsmpi.runfile.reader import Run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "run", "echo_sio2.toml")
H_EV_S = 4.135667696e-15            # Planck constant, eV s
HBAR_EV_S = 6.582119569e-16         # reduced Planck constant, eV s
DRIVE_HZ = 1e9
BAND = (0.9, 1.1)                   # the band of the A TLSs, in units of h DRIVE_HZ
#: (T_K, T_K of the window, pi-pulsed TLSs, first realization) of every run file: the Hahn
#: echo with the pi pulse on the band at 0 ... 1 K; at T = 0 with the windows of 0.3 and 1 K
#: (the same disorder as those runs, no thermal flips: the instantaneous diffusion of the
#: band alone); and with the pi pulse on all TLSs of the window at three temperatures.  A
#: further file of an ensemble (first realization > 0, e.g. more realizations at 1 K, where
#: each holds fewest band TLSs) is pooled with it by `table`.
RUNS = ([(T, T, "band", 0) for T in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)]
        + [(0.0, W, "band", 0) for W in (0.3, 1.0)]
        + [(T, T, "all", 0) for T in (0.01, 0.1, 1.0)])
#: The runs of a narrower band: the pi pulse on the band at 0 ... 0.3 K and the T = 0
#: reference at the 0.3 K window.
NARROW = ([(T, T, "band", 0) for T in (0.0, 0.01, 0.1, 0.3)] + [(0.0, 0.3, "band", 0)])
SETS = {"all": RUNS, "narrow": NARROW}


@dataclass(frozen=True)
class Study:
    """The study of one Table I glass: its energy unit W sets the drive, the windows and
    the time unit in units of W; ``band`` the signal TLSs (units of h DRIVE_HZ), ``N``
    the TLSs per realization, ``runs`` the (T_K, T_w, select, first) of its files."""
    material: str = "SiO2"
    band: tuple = BAND
    N: int = 400
    runs: tuple = tuple(RUNS)

    @property
    def W_eV(self):
        return MATERIALS[self.material]["W_meV"] * 1e-3

    @property
    def hbar_over_W_us(self):
        """The time unit hbar/W in microseconds."""
        return HBAR_EV_S / self.W_eV * 1e6

    def drive(self):
        """h DRIVE_HZ in units of W."""
        return H_EV_S * DRIVE_HZ / self.W_eV

    def window(self, T_K):
        """eps_max at T_K: 2 k_B T, at least the band's eps (hbar nu <= 2 eps_max)."""
        return max(2 * KB_EV * T_K / self.W_eV, self.band[1] * self.drive() / 2)

    def realizations(self, T_w):
        """48 per window of 100 mK, at least 24 and at most 96."""
        return int(min(96, max(24, round(48 * self.window(T_w) / self.window(0.1)))))

    def name(self, T_K, T_w, select, first):
        w = "" if T_w == T_K else f"_w{1e3 * T_w:04.0f}mK"
        part = f"_from{first}" if first else ""
        study = "" if (self.band, self.N) == (BAND, 400) else (
            f"_b{self.band[1] - self.band[0]:.3g}_N{self.N}")
        return (f"echo_{self.material.lower()}{study}_T{1e3 * T_K:04.0f}mK{w}_{select}{part}"
                ".h5")

    def settings(self, T_K, T_w, select, first):
        """The --set values of one run file: the glass, temperature T_K, the window and
        realizations of T_w, realizations from ``first`` on."""
        lo, hi = (b * self.drive() for b in self.band)
        # a band for pulses on all TLSs would be refused (a setting without effect)
        p_lo, p_hi = (lo, hi) if select == "band" else (0.0, 0.0)
        return [f'model.material="{self.material}"', f"model.N={self.N}", f"model.T_K={T_K!r}",
                f"model.eps_max={self.window(T_w)!r}",
                f"ensemble.realizations={self.realizations(T_w)}",
                f"ensemble.first_realization={first}",
                f"initial.nu_min={lo!r}", f"initial.nu_max={hi!r}",
                f"protocol.nu_min={p_lo!r}", f"protocol.nu_max={p_hi!r}",
                f'protocol.select="{select}"']


def run(study, outdir, jobs):
    os.makedirs(outdir, exist_ok=True)

    def path(r):
        return os.path.join(outdir, study.name(*r))
    todo = [r for r in study.runs if not (os.path.exists(path(r)) and Run(path(r)).complete)]
    running = []
    for r in todo:
        if len(running) >= jobs:
            running.pop(0).wait()
        resume = ["--resume"] if os.path.exists(path(r)) else []
        args = [a for v in study.settings(*r) for a in ("--set", v)] + resume
        log = open(path(r)[:-3] + ".log", "w")
        running.append(subprocess.Popen(
            [sys.executable, "-m", "tlsmpi.run", CONFIG, *args, "--out", path(r)],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1")))
    for p in running:
        p.wait()


FIELDS = ["file", "material", "select", "T_K", "eps_max", "N", "realizations", "band_tls",
          "T_M", "T_M_lo", "T_M_hi", "x", "x_lo", "x_hi", "chi2_dof", "chi2_max", "t_from",
          "t_to", "T_M_us", "verdict"]


def row(study, r, n_boot, seed):
    """One CSV row of a run (files of one ensemble joined): the echo fit and what it holds."""
    case = r.cases[0]
    p = case.params
    text = r.config
    select = "all" if 'select = "all"' in text.split("[protocol]")[1] else "band"
    est = analysis.echo_estimate(r.times, case.values("echo"), case.values("echo_imag"),
                                 n_boot=n_boot, seed=seed)
    nu = case.disorder["nu"][case.done]
    lo, hi = (b * study.drive() for b in study.band)
    band = int(((nu >= lo) & (nu <= hi)).sum())
    x = est.info.get("x", analysis.Estimate(np.nan, np.nan))
    window = est.info["t_window"] or (np.nan, np.nan)
    files = " + ".join(os.path.basename(f) for f in r.path.split(" + "))
    return dict(file=files, material=p["material"], select=select,
                T_K=p["T_K"], eps_max=p["eps_max"], N=p["N"], realizations=case.n_done,
                band_tls=band, T_M=est.value,
                T_M_lo=est.interval[0], T_M_hi=est.interval[1], x=x.value,
                x_lo=x.interval[0], x_hi=x.interval[1],
                chi2_dof=est.info.get("chi2_dof", np.nan),
                chi2_max=est.info.get("chi2_max", np.nan), t_from=window[0], t_to=window[1],
                T_M_us=est.value * study.hbar_over_W_us, verdict=est.info["verdict"])


def spectral_diffusion(hot, cold, n_boot, seed):
    """T_M and x of E_T(t) / E_0(t): the echo at T over the echo at T = 0 of the same
    disorder (same window, seed and realizations), fitted like `analysis.echo_estimate`
    with the two runs resampled together.  With the TLSs independent and uniform in
    space, the ensemble echo is a product over classes of TLSs, so the ratio removes the
    instantaneous diffusion of the band (T-independent) and leaves the spectral diffusion
    by the thermal TLSs (and the band's own T_1 at T)."""
    (h, c) = (r.cases[0] for r in (hot, cold))
    both = np.intersect1d(h.realizations[h.done], c.realizations[c.done])
    rows = []
    for case in (h, c):
        keep = np.isin(case.realizations, both)
        rows += [case.values("echo")[keep[case.done]], case.values("echo_imag")[keep[case.done]]]
    t = hot.times

    def ratio(hr, hi, cr, ci):
        return analysis.echo_amplitude(hr, hi) / analysis.echo_amplitude(cr, ci)
    y = ratio(*(r.mean(0) for r in rows))
    # the two runs share their realizations: the influences subtract (paired)
    d = analysis.echo_influence(*rows[:2]) - analysis.echo_influence(*rows[2:])
    sigma = d.std(0, ddof=1) / np.sqrt(len(d))
    with np.errstate(invalid="ignore"):
        window = np.flatnonzero((t > 0) & (y >= analysis.FLOOR) & (y <= analysis.ECHO_TOP)
                                & (sigma > 0) & (sigma < 0.2))
    tw, sw = t[window], sigma[window]
    best = analysis.stretched_exp_fit(tw, y[window], sigma=sw)

    def fit(*means):
        return np.array(analysis.stretched_exp_fit(tw, ratio(*means)[window], best, sigma=sw))
    v, _, reps = analysis.bootstrap(rows, fit, n_boot, seed, [0, 0, 0, 0])
    A, T_M, x = analysis.estimates(v, reps)
    quality = analysis.fit_quality(np.log(y[window]) - (np.log(v[0]) - (tw / v[1]) ** v[2]),
                                   sw, 3)
    if quality["fails"]:        # the model does not describe the data: no interval
        T_M, x = (analysis.Estimate(e.value, np.nan, dict(quality)) for e in (T_M, x))
    return dict(T_M=T_M, x=x, window=(tw[0], tw[-1]), realizations=len(both), **quality)


SD_FIELDS = ["T_K", "realizations", "T_M", "T_M_lo", "T_M_hi", "x", "x_lo", "x_hi",
             "chi2_dof", "chi2_max", "t_from", "t_to", "T_M_us"]


def write(out, fields, rows):
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(open(out).read(), end="")


def table(study, outdir, out, n_boot, seed):
    """The fits of every run (``out``) and the spectral diffusion alone at the
    temperatures with a T = 0 run of the same window (``out`` with _sd)."""
    def path(r):
        return os.path.join(outdir, study.name(*r))
    runs = pooling.ensembles([Run(path(r)) for r in study.runs if os.path.exists(path(r))])
    write(out, FIELDS, [row(study, r, n_boot, seed) for r in runs])
    by_path = {p: r for r in runs for p in r.path.split(" + ")}
    sd = []
    for T_K, T_w, _, _ in study.runs:
        hot, cold = path((T_w, T_w, "band", 0)), path((0.0, T_w, "band", 0))
        if T_K == 0 and T_w > 0 and hot in by_path and cold in by_path:
            f = spectral_diffusion(by_path[hot], by_path[cold], n_boot, seed)
            T_M, x = f["T_M"], f["x"]
            sd.append(dict(T_K=T_w, realizations=f["realizations"], T_M=T_M.value,
                           T_M_lo=T_M.interval[0], T_M_hi=T_M.interval[1], x=x.value,
                           x_lo=x.interval[0], x_hi=x.interval[1], chi2_dof=f["chi2_dof"],
                           chi2_max=f["chi2_max"], t_from=f["window"][0],
                           t_to=f["window"][1],
                           T_M_us=T_M.value * study.hbar_over_W_us))
    write(out.replace(".csv", "_sd.csv"), SD_FIELDS, sd)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["run", "table"])
    parser.add_argument("outdir")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--material", default="SiO2", choices=sorted(MATERIALS))
    parser.add_argument("--band", type=float, nargs=2, default=BAND, metavar=("LO", "HI"),
                        help="signal TLSs: LO <= hbar nu / (h 1 GHz) <= HI (default 0.9 1.1)")
    parser.add_argument("--N", type=int, default=400, help="TLSs per realization")
    parser.add_argument("--runs", choices=sorted(SETS), default="all")
    parser.add_argument("--csv", help="default docs/data/ + the first file's study name")
    parser.add_argument("--boot", type=int, default=analysis.N_BOOT)
    args = parser.parse_args(argv)
    study = Study(args.material, tuple(args.band), args.N, tuple(SETS[args.runs]))
    if args.what == "run":
        run(study, args.outdir, args.jobs)
    else:
        stem = study.name(*study.runs[0]).split("_T")[0]
        csv_path = args.csv or os.path.join(ROOT, "docs", "data", f"{stem}.csv")
        table(study, args.outdir, csv_path, args.boot, 0)


if __name__ == "__main__":
    main()
