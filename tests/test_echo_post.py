"""post on echo runs (docs/echo.md section 7): the T_M(T) table and the echo figure from two
small run files that sweep model.T_K, one with the pi pulse on the band, one on all TLSs."""
import numpy as np
import pytest

from conftest import run_tlsmpi
from tlsmpi import post
from tlsmpi.post import analysis, figures, pooling
from tlsmpi.runfile.reader import Run

pytestmark = pytest.mark.needs_mpi

CONFIG = """
[model]
material = "SiO2"
N = 60
eps_max = 2e-4
[time]
t_min = 1e4
t_max = 1e10
n_times = 25
[ensemble]
realizations = 12
[observables]
concurrence = false
echo = true
[initial]
state = "thermal"
angle = 90.0
select = "band"
nu_min = 1e-5
nu_max = 4e-4
[protocol]
kind = "hahn"
%s
[sweep]
T_K = [1.0, 0.0, 0.3]
"""
PULSES = {"band": 'select = "band"\nnu_min = 1e-5\nnu_max = 4e-4', "all": 'select = "all"'}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("echo")
    out = {}
    for select, lines in PULSES.items():
        (d / f"{select}.toml").write_text(CONFIG % lines)
        out[select] = d / f"{select}.h5"
        res = run_tlsmpi([d / f"{select}.toml", "--out", out[select]])
        assert res.returncode == 0, res.stdout + res.stderr
    return d, out


def test_echo_table_lists_T_M_and_x_by_pulses_and_temperature(files, capsys):
    d, out = files
    assert post.main([str(out["band"]), str(out["all"]), "--boot", "40"]) == 0
    text = capsys.readouterr().out
    head = text.index("Echo decay |E(t)|/|E(t_0)| = A exp(-(t/T_M)^x), t = 2 tau")
    rows = [line.split() for line in text[head:].splitlines()[2:8]]
    # pulse selection, then temperature ascending (T_M against T)
    assert [(r[4], float(r[5])) for r in rows] == [("all", 0.0), ("all", 0.3), ("all", 1.0),
                                                    ("band", 0.0), ("band", 0.3), ("band", 1.0)]
    # every row's T_M is analysis.echo_estimate of that case's rows, with its interval or
    # the verdict
    run = Run(str(out["band"]))
    for case, r in zip(sorted(run.cases, key=lambda c: c.params["T_K"]), rows[3:]):
        est = analysis.echo_estimate(run.times, case.values("echo"), case.values("echo_imag"),
                                     n_boot=40)
        assert np.isfinite(est.value)
        assert r[6] == f"{est.value:.3g}"
        assert (f"[{est.interval[0]:.3g}," in r) != bool(est.info["verdict"])


def test_echo_figure_draws_the_fits_it_reports(files, tmp_path):
    d, out = files
    assert post.main(["echo", str(out["band"]), str(out["all"]), "--outdir", str(tmp_path),
                      "--boot", "40"]) == 0
    assert (tmp_path / "echo.png").stat().st_size > 10000
    caption = (tmp_path / "echo.txt").read_text()
    runs = pooling.ensembles([Run(str(out["band"])), Run(str(out["all"]))])
    pool = pooling.Pool(runs, n_boot=40)
    fig = figures.echo(pool)
    b = fig.axes[1]
    drawn = sorted(y for line in b.lines for y in np.atleast_1d(line.get_ydata())
                   if line.get_marker() in ("o", "s"))          # not the caps, not T = 0
    hot = [e for e in pool.entries if e.params["T_K"] > 0 and np.isfinite(e.echo.value)]
    assert len(hot) == 4 and sorted(e.echo.value for e in hot) == drawn
    for e in pool.entries:
        line = f"{e.pulsed}, T = {e.params['T_K']:.3g} K: {figures.echo_fit_text(e.echo)}"
        assert line in caption
