"""The figures of tlsmpi.post, opened and inspected: every axis shows data, no panel
covers another, fits state window, chi^2 and interval, labels write 10^5; plus the
percentile intervals and the Fig. 6a window rule of tlsmpi.post.analysis."""
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from tlsmpi.post import analysis, figures, pooling
from tlsmpi.results import Run

from conftest import ROOT

CONFIG = """
[time]
t_min = 1e-3
t_max = 1e8
n_times = 30
[ensemble]
realizations = 10
[observables]
entropy = true
[sweep]
N = [4, 6, 8, 12]
epsilon = [0.0, 1e-4]
eta = [1e4, 1e5]
"""
FITTED = {"fig4", "fig6a", "fig7", "fig9", "fig10"}     # figures that draw fits when drawn


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    pytest.importorskip("mpi4py", reason="needs_mpi: the run file is made by python -m tlsmpi.run")
    d = tmp_path_factory.mktemp("figures")
    (d / "sweep.toml").write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "tlsmpi.run", "sweep.toml", "--out", "sweep.h5"],
                   check=True, env=env, cwd=d, capture_output=True, timeout=300)
    return pooling.Pool([Run(str(d / "sweep.h5"))], n_boot=10)


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


def texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return out


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_every_panel_has_data_and_hides_nothing(pool, name, caplog):
    caplog.set_level(logging.WARNING, logger="tlsmpi.post.figures")
    plt = figures.pyplot()
    try:
        fig = figures.FIGURES[name](pool)
    except pooling.NoData:
        assert name in ("fig5", "fig12")          # no Dbar sweep, no random-state file here
        return
    fig.savefig(io.BytesIO(), format="png", dpi=60)            # lays the figure out
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert visible_points(ax) > 0, f"{name}: empty panel {ax.get_title()!r}"
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    for i, a in enumerate(boxes):
        assert not any(overlap(a, b) for b in boxes[i + 1:]), f"{name}: panels overlap"
    for owner in (ax for ax in fig.axes if ax.get_legend()):
        legend = owner.get_legend().get_window_extent(renderer)
        assert not any(
            overlap(legend, box) for ax, box in zip(fig.axes, boxes) if ax is not owner
        ), f"{name}: a legend covers another panel"
    words = " ".join(texts(fig))
    assert "100000" not in words and "e+0" not in words, words
    if name in FITTED and (len(fig.axes) > 1 or name in ("fig6a", "fig9")):
        assert "chi" in words, f"{name}: a fit without its chi^2"
    if name in ("fig4", "fig7", "fig10") and len(fig.axes) == 1:
        assert any("not drawn" in r.getMessage() for r in caplog.records), \
            f"{name}: a panel was left out without saying why"
    plt.close(fig)


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
