"""In a notebook: ``tlsmpi.simulate`` runs a configuration in this process, without MPI,
and returns it as one `xarray.Dataset`, the same Dataset as ``tlsmpi.open_run`` gives of
a run file (`tlsmpi.runfile.reader.Run.to_xarray`).

    >>> import tlsmpi
    >>> ds = tlsmpi.simulate(overrides={"model.N": 8, "ensemble.realizations": 4})
    >>> ds.concurrence_mean.sel(epsilon=1.0).plot(x="time", xscale="log")

The job is the runner's (`tlsmpi.run`): the same configuration (`tlsmpi.config.load`),
realization r drawn from ``default_rng([r, seed])``, the engine's parts combined in part
order, the rows written through the run file's writer on the one-process communicator
(`tlsmpi.runfile.writer.SERIAL`) and read back verified.  So the numbers are bitwise those
of ``mpirun -n P python -m tlsmpi.run`` on the same configuration.
"""
import datetime
import os
import sys
import tempfile
import time
from types import SimpleNamespace

from . import config as configuration
from . import engines
from .errors import ConfigError
from .run.items import compute_realization, record
from .run.output import check_directory, claim_output
from .run.provenance import provenance
from .run.resources import check_memory
from .runfile.reader import Run, open_run

__all__ = ["open_run", "simulate"]


def simulate(config=None, overrides=None, *, out=None, progress=None):
    """Run a configuration in this process (no MPI) and return it as an xarray Dataset.

    Parameters
    ----------
    config : str or dict, optional
        A TOML file, or a nested dict shaped like the TOML (``{"model": {"N": 12},
        "sweep": {"epsilon": [0.0, 1.0]}}``); None: the default job
        (docs/configuration.md).
    overrides : dict, optional
        ``{"section.key": value}``, as ``--set section.key=value`` of the runner.
    out : str, optional
        Also keep the run file here (the runner's layout, docs/output.md); it must not
        exist.  Without it the file is made in a temporary directory and removed.
    progress : bool, optional
        A tqdm progress bar over the realizations (a widget in Jupyter); None: only when
        stderr is a terminal or this is a Jupyter kernel.

    Returns
    -------
    xarray.Dataset
        As `tlsmpi.open_run` (`tlsmpi.runfile.reader.Run.to_xarray`): dimensions case
        (indexed by the swept parameters), realization, time, site.

    Raises
    ------
    tlsmpi.errors.ConfigError
        A configuration that the runner would refuse, an engine that needs several
        ranks per realization, or an ``out`` that exists.
    """
    import h5py  # noqa: F401  (first: Debian's serial build, since this process has no MPI)
    from .runfile.writer import SERIAL, RunFile, create
    cfg = configuration.load(config, overrides or ())
    if cfg.ranks_per_realization != 1:
        raise ConfigError(f"engine.ranks_per_realization = {cfg.ranks_per_realization}: "
                          "tlsmpi.simulate runs in one process; set it to 1, or run "
                          "mpirun python -m tlsmpi.run")
    engine = engines.get(cfg.engine)(cfg.engine_options)
    engine.init(["tlsmpi"])
    check_memory(engine, cfg, 1)
    with tempfile.TemporaryDirectory(prefix="tlsmpi-") as tmp:
        path = os.path.join(tmp, "simulate.h5") if out is None else os.fspath(out)
        args = SimpleNamespace(out=path, resume=False, overwrite=False, repair=False)
        check_directory(path)
        if os.path.exists(path):
            raise ConfigError(f"out = {path!r} exists: choose another out, or remove the file "
                              "first (tlsmpi.simulate never replaces a run file)")
        held = claim_output(args, cfg)[0]
        try:
            create(path, cfg, provenance(SERIAL, engine, [], _call(config, overrides)),
                   engine.outputs(cfg.request))
            _compute(RunFile(path, SERIAL), engine, cfg, progress)
        finally:
            held.release()
        ds = Run(path).to_xarray().load()
        ds.attrs["path"] = "" if out is None else path
        return ds


def _compute(file, engine, cfg, progress):
    """Every realization of every case into ``file`` (then closed, complete): rows written
    every ``output.checkpoint_seconds`` and whatever happens (an interrupt leaves a
    resumable file)."""
    cases, times, R = cfg.cases(), cfg.times, cfg.realizations
    bar = _bar(len(cases) * R, progress, cfg.section("output")["progress_seconds"])
    last = time.monotonic()
    try:
        for c, params in enumerate(cases):
            for r in range(R):
                record(file, c, r, *compute_realization(engine, params, cfg, times, r))
                bar.update()
                if time.monotonic() - last > cfg.section("output")["checkpoint_seconds"]:
                    file.write_buffer()
                    last = time.monotonic()
        file.write_buffer()
        end = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        file.finalize(end)
    finally:
        bar.close()
        file.write_buffer()
        file.close()


def _bar(total, progress, seconds):
    """A tqdm bar (refreshed at most every ``seconds``, ``output.progress_seconds``), or
    one that shows nothing."""
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    if progress is False or (progress is None and not interactive):
        return SimpleNamespace(update=lambda: None, close=lambda: None)
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="realization", mininterval=seconds, desc="tlsmpi")


def _call(config, overrides):
    """The provenance's command line of a simulate call."""
    return f"tlsmpi.simulate({config!r}, {overrides!r})"
