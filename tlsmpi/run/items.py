"""Work items: one realization, or one part of it, computed by a rank group
(`run_item`), parts combined in part order (`combine_parts`), rows buffered (`record`),
and the predicted costs the work queue deals by.  `compute_realization` is the MPI-free
step that `tlsmpi.simulate` calls: the same numbers as any rank of the job."""
import logging
import os
import time

import numpy as np

from .. import engines
from ..errors import SolverError
from .signals import JobState, inject_fault

log = logging.getLogger("tlsmpi")


def one_blas_thread():
    """A context in which BLAS and OpenMP run on one thread.

    The engines compute inside it, in the job and in `tlsmpi.simulate`: the MPI ranks are
    the parallelism, and BLAS threads on top of them oversubscribe the cores
    (docs/performance.md, "One BLAS thread per rank"); the thread count of the machine is
    then no input of a result either.  The thread pools are looked up on every call, so a
    library loaded after the first item (an OpenMP runtime another import brings) is
    limited too."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1)


def run_item(engine, params, cfg, times, r, group_comm, rank, state, part=None):
    """Compute one realization, or part ``part`` of it (`tlsmpi.engines.Engine.parts`),
    with one BLAS thread (`one_blas_thread`); a SolverError or a non-finite result makes
    the realization a failed one.  The item is named in ``state`` (`JobState`) while it
    runs.

    Returns (real, results or partial result, error message or None, wall seconds), or
    None if the engine gave the item up at a stop (`tlsmpi.engines.Interrupted`)."""
    state.item = (("" if part is None else f"part {part} of ") +
                  f"realization {cfg.first_realization + r} of case {params.N=}, "
                  f"{params.epsilon=}".replace("params.", ""))
    t0 = time.perf_counter()
    real = cfg.realization(params, r)
    try:
        inject_fault(rank, r)
        with one_blas_thread():
            if part is None:
                results = _finite(engine.compute(real, times, cfg.request, group_comm))
            else:
                results = engine.compute_part(real, times, cfg.request, part, group_comm)
    except SolverError as err:
        results, error = None, str(err)
    except engines.Interrupted:
        log.info(f"stop: gave up {state.item} after {time.perf_counter() - t0:.1f} s; "
                 "it stays pending")
        state.item = None
        return None
    else:
        error = None
    state.item = None                      # left set by an exception: main names the item
    return real, results, error, time.perf_counter() - t0


def combine_parts(engine, params, cfg, times, r, values):
    """The row of realization r from the (partial result, error, wall) of its parts, in
    part order: (real, results, error, summed wall seconds), as `run_item`."""
    real = cfg.realization(params, r)
    wall = sum(v[2] for v in values)
    errors = [v[1] for v in values if v[1]]
    if errors:
        return real, None, errors[0], wall
    try:
        with one_blas_thread():
            results = engine.combine(real, times, cfg.request, [v[0] for v in values])
        return real, _finite(results), None, wall
    except SolverError as err:
        return real, None, str(err), wall


def compute_realization(engine, params, cfg, times, r):
    """Realization r of ``params`` in this process alone, every part in part order (the
    MPI-free step of the job, for ``tlsmpi.simulate``): (real, results, error, wall) as
    `run_item`; the same numbers as any rank of the job computes."""
    state = JobState(None)
    if engine.parts(params, cfg.request) == 1:
        return run_item(engine, params, cfg, times, r, None, 0, state)
    values = [run_item(engine, params, cfg, times, r, None, 0, state, part)[1:]
              for part in range(engine.parts(params, cfg.request))]
    return combine_parts(engine, params, cfg, times, r, values)


def _finite(results):
    bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
    if bad:
        raise SolverError(f"non-finite values in {', '.join(bad)}")
    return results


def record(run, c, r, real, results, error, wall):
    """Buffer the row of realization r of case c (or its failure)."""
    if error is None:
        run.add(c, r, results, real, wall)
    else:
        log.warning(f"realization {r} of case {c} failed: {error}")
        run.add_failure(c, r, error, wall)


def predicted_costs(engine, cfg, cases, times):
    """Predicted seconds of every item (case, row r), shape (n_cases, R); rank 0 computes."""
    R = cfg.realizations
    costs = np.empty((len(cases), R))
    for c, params in enumerate(cases):
        for r in range(R):
            costs[c, r] = engine.cost(
                params, times, cfg.request, lambda: cfg.realization(params, r)
            )
    return costs


def warn_stop_margin(costs, widths):
    """Warn if an item, on the group width it will run on, is predicted to outlast the
    job script's stop margin (TLSMPI_STOP_MARGIN_SECONDS): a stop then relies on the
    engine's checkpoints inside the item (docs/reliability.md)."""
    margin = os.environ.get("TLSMPI_STOP_MARGIN_SECONDS")
    if not margin:
        return
    longest = float(np.max(costs / widths)) if costs.size else 0.0
    if longest > float(margin):
        log.warning(f"the longest work item (a realization or a part of one) is predicted to take "
                    f"~{longest:.0f} s, more than the stop margin TLSMPI_STOP_MARGIN_SECONDS = "
                    f"{margin} s: a stop gives it up at the engine's next checkpoint, so the "
                    "margin must cover the longest step between checkpoints (one MFN solve, "
                    "one eigendecomposition, one trajectory) and closing the file; an engine "
                    "without checkpoints stops only after the item: then raise the margin or "
                    "lower the cost")
