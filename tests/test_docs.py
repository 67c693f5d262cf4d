"""The documentation: the tutorial's code runs and prints what the page shows, and the
site builds with warnings as errors (where Sphinx, MyST and numpydoc are installed: the
``docs`` extra, the pip leg of CI) in well under a minute."""
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "docs", "_ext"))
import tutorial  # noqa: E402  (docs/_ext/tutorial.py: what the build runs)


def test_the_tutorial_runs_and_shows_what_it_printed(tmp_path):
    pytest.importorskip("xarray", reason="xarray (pip install 'tlsmpi[notebook]') is missing")
    pytest.importorskip("h5netcdf", reason="h5netcdf (pip install 'tlsmpi[notebook]') is missing")
    text = open(os.path.join(ROOT, "docs", "tutorial.md")).read()
    done = tutorial.run_blocks(text, str(tmp_path))
    outputs = done.split("```text\n")[1:]
    assert len(outputs) == 4 and done.startswith(text[:200])
    assert "max C(t) of the closed system" in outputs[1]
    assert outputs[2].startswith("True exact")
    label, value = outputs[3].split("```")[0].split()
    assert label == "epsilon=1" and 0 < float(value) < 1
    assert (tmp_path / "tutorial_concurrence.png").stat().st_size > 10_000
    from tlsmpi.results import Run
    run = Run(tmp_path / "tutorial.h5")
    c = run.cases[1]
    k = int(np.argmin(np.abs(run.times - 100.0)))
    assert float(value) == pytest.approx(c.values("concurrence")[:, k].mean(),
                                         rel=16 * np.finfo(float).eps)


def test_a_failing_block_fails_the_build(tmp_path):
    with pytest.raises(ZeroDivisionError):
        tutorial.run_blocks("# t\n\n```python\nprint(1)\n```\n\n```python\n1 / 0\n```\n",
                            str(tmp_path))


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    missing = [m for m in ("sphinx", "myst_parser", "numpydoc", "xarray", "h5netcdf")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install 'tlsmpi[docs]')")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                          "html", "-d", str(tmp_path / "doctrees"), os.path.join(ROOT, "docs"),
                          str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    for page in ("index", "tutorial", "api", "output", "configuration"):
        assert (tmp_path / "html" / f"{page}.html").exists(), page
    api = (tmp_path / "html" / "api.html").read_text()
    assert "tlsmpi.simulate" in api and "to_xarray" in api and "register" in api
    assert "max C(t) of the closed system:" in (tmp_path / "html" / "tutorial.html").read_text()
    print(f"docs built in {elapsed:.1f} s")
    assert elapsed < 90       # ~20 s on 2 free cores, 43 s at a load of 17 on 2 cores
