"""The figures of tlsmpi.post, rendered from small runs and inspected: print size, the
minimum font size, no text over other text or off the canvas, every axis shows data, no panel
covers another, captions with the fit notes; plus the percentile intervals and the Fig. 6a
window rule of tlsmpi.post.analysis."""
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from tlsmpi.post import analysis, commands, figures, pooling

from conftest import ROOT
from test_echo_post import CONFIG as ECHO, PULSES

TIME = """
[time]
t_min = 1e-3
t_max = 1e8
n_times = 60
[ensemble]
realizations = 10
"""
CONFIG = TIME + """
[observables]
entropy = true
[sweep]
N = [4, 6, 8, 12]
epsilon = [0.0, 1e-4]
eta = [1e4, 1e5]
"""
DBAR = TIME + """
[model]
N = 16
[sweep]
Dbar = [0.01, 0.1, 0.3]
"""
FITTED = {"fig4", "fig5", "fig6a", "fig7", "fig9", "fig10", "fig12", "echo"}  # with fits
#: axes of each figure, insets included
PANELS = {"fig4": 2, "fig5": 2, "fig7": 2, "fig10": 2, "fig12": 2, "echo": 3}
CAPTIONS = {"echo": "Echo decay,"}                   # the others: "Fig. N."


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A sweep over N, epsilon and eta, one over Dbar, a Hahn echo over T_K (the echo
    figure), and a random-state file."""
    pytest.importorskip("mpi4py", reason="needs_mpi: the run file is made by python -m tlsmpi.run")
    d = tmp_path_factory.mktemp("figures")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    for name, text in (("sweep", CONFIG), ("dbar", DBAR), ("echo", ECHO % PULSES["band"])):
        (d / f"{name}.toml").write_text(text)
        subprocess.run([sys.executable, "-m", "tlsmpi.run", f"{name}.toml", "--out",
                        f"{name}.h5"], check=True, env=env, cwd=d, capture_output=True,
                       timeout=300)
    subprocess.run([sys.executable, "-m", "tlsmpi.randomstates", "--sizes", "2", "3", "4",
                    "--states", "2000", "--out", "states.h5"], check=True, env=env, cwd=d,
                   capture_output=True, timeout=300)
    return [str(d / f) for f in ("sweep.h5", "dbar.h5", "states.h5", "echo.h5")]


@pytest.fixture(scope="module")
def pool(files):
    runs, states = commands.load(files)
    return pooling.Pool(runs, states, n_boot=10)


def visible_points(ax):
    """Finite data vertices of lines, bands and error bars inside the view of ``ax``."""
    xy = [line.get_xydata() for line in ax.lines]
    for coll in ax.collections:
        xy += [p.vertices for p in coll.get_paths()] + [np.asarray(coll.get_offsets())]
    xy = [np.asarray(a, dtype=float).reshape(-1, 2) for a in xy if np.size(a)]
    if not xy:
        return 0
    xy = np.concatenate(xy)
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    inside = np.isfinite(xy).all(1) & (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & \
        (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return int(inside.sum())


def overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def all_axes(fig):
    """The axes of ``fig`` with their insets."""
    from matplotlib.axes import Axes
    return fig.findobj(Axes)


def drawn_texts(fig):
    """The Text artists a draw of ``fig`` shows: visible, not blank, and for tick labels
    only those of ticks inside the view."""
    from matplotlib.text import Text
    hidden = set()
    for ax in all_axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi):
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and id(t) not in hidden]


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_figure_renders_for_print(pool, name, caplog):
    """Journal width, text >= 7 pt, no text over other text or beyond the canvas, data in
    every axis, no panel or legend over another panel, a caption with the fit notes."""
    caplog.set_level(logging.WARNING, logger="tlsmpi.post.figures")
    plt = figures.pyplot()
    fig = figures.FIGURES[name](pool)
    fig.savefig(io.BytesIO(), format="png", dpi=100)            # lays the figure out
    renderer = fig.canvas.get_renderer()
    assert fig.get_size_inches()[0] in (figures.SINGLE, figures.DOUBLE)
    texts = drawn_texts(fig)
    assert texts
    for t in texts:
        assert t.get_fontsize() >= figures.MIN_FONT, f"{name}: {t.get_text()!r} too small"
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    canvas = fig.bbox
    for text, b in boxes:
        assert canvas.x0 - 1 <= b.x0 and b.x1 <= canvas.x1 + 1 and canvas.y0 - 1 <= b.y0 \
            and b.y1 <= canvas.y1 + 1, f"{name}: {text!r} leaves the canvas"
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            assert not overlap(a.padded(-0.5), b.padded(-0.5)), f"{name}: {ta!r} over {tb!r}"
    main = [ax for ax in fig.axes if ax.get_label() != "inset_axes"]
    for ax in all_axes(fig):
        assert visible_points(ax) > 0, f"{name}: empty panel or inset"
    panels = [ax.get_window_extent(renderer) for ax in main]
    for i, a in enumerate(panels):
        assert not any(overlap(a, b) for b in panels[i + 1:]), f"{name}: panels overlap"
    for owner in (ax for ax in main if ax.get_legend()):
        legend = owner.get_legend().get_window_extent(renderer)
        assert not any(overlap(legend, box) for ax, box in zip(main, panels) if ax is not owner), \
            f"{name}: a legend covers another panel"
    words = " ".join(t.get_text() for t in texts)
    assert "100000" not in words and "e+0" not in words, words
    text = figures.caption(fig)
    assert text.startswith(CAPTIONS.get(name, f"Fig. {name[3:]}.")) and "100000" not in text
    if name in FITTED:
        assert "chi^2/nu" in text, f"{name}: a fit without its chi^2 in the caption"
    assert len(all_axes(fig)) == PANELS.get(name, 1), f"{name}: panels or insets missing"
    plt.close(fig)


def test_failed_fits_say_so_in_the_caption(pool):
    """Every failed power law of Fig. 4 is labelled in the caption, without an interval."""
    fam = pool.family("concurrence", ["N"], lambda p: p["epsilon"] == 0)
    fig = figures.fig4(pool)
    text = figures.caption(fig)
    for e in fam:
        if e.beta.fails:
            assert f"N={e.params['N']}: beta = {e.beta.value:.3g} (model does not describe" \
                in text
    figures.pyplot().close(fig)


def test_caption_next_to_the_figure_and_in_its_metadata(files, tmp_path, capsys):
    from PIL import Image
    assert commands.main(["fig6a", files[0], "--outdir", str(tmp_path), "--boot", "10"]) == 0
    text = (tmp_path / "fig6a.txt").read_text().strip()
    assert text.startswith("Fig. 6a.") and "alpha = " in text
    assert Image.open(tmp_path / "fig6a.png").info["Description"] == text
    assert text in capsys.readouterr().out
    assert b"/Subject (Fig. 6a. Plateau C" in (tmp_path / "fig6a.pdf").read_bytes()


def test_numbers_in_labels_are_powers_of_ten():
    assert [figures.sci(x) for x in (1e5, 1e4, 2e-4, 0.5, 12, 140, 2600)] == \
        ["10^{5}", "10^{4}", "2\\times10^{-4}", "0.5", "12", "140", "2.6\\times10^{3}"]


def test_percentile_interval_ignores_rare_wild_replicas():
    """An estimator that jumps to another maximum on a few resamples (t_max = 0.146 with
    a handful of replicas at 1e6): the standard deviation explodes, the interval does not."""
    rng = np.random.default_rng(1)
    reps = 0.146 + 0.01 * rng.standard_normal(200)
    reps[:6] = 1e6
    est = analysis.estimates(0.146, reps)
    assert np.std(reps) > 1e4
    lo, hi = est.interval
    assert 0.12 < lo < 0.146 < hi < 0.17 and est.err < 0.02
    reps[:30] = np.nan                                        # the estimator fails too often
    assert np.isnan(analysis.estimates(0.146, reps).err)


def test_alpha_window_follows_the_large_sizes():
    """Plateaus exp(-a N) with a steeper fall beyond N = 8: the window ends at the largest
    N, its chi^2/dof is reported, and the fit meets the largest size."""
    rng = np.random.default_rng(3)
    N = [4, 5, 6, 7, 8, 9, 10, 11, 12]
    truth = [np.exp(-0.5 * n - (0.4 * (n - 8) if n > 8 else 0)) for n in N]
    rows = [c * (1 + 0.05 * rng.standard_normal((400, 3))) for c in truth]
    est = analysis.alpha_estimate(N, rows, n_boot=40)
    assert est.info["N_used"][-1] == 12 and est.info["chi2_dof"] <= analysis.CHI2_MAX
    fit_12 = np.exp(est.info["ln_prefactor"] - est.value * 12)
    assert abs(np.log(fit_12 / truth[-1])) < 0.2
    assert abs(est.value - 0.9) < 0.1 and est.interval[0] < est.value < est.interval[1]
