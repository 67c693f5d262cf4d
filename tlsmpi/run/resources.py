"""What the job needs before it starts: memory per node for the largest case, rank 0's
work list, and the space of the run file on its filesystem (docs/reliability.md).  A
request that cannot fit is refused with one line (ConfigError)."""
import logging
import os
import shutil

from ..errors import ConfigError
from ..physics.observables import result_bytes
from .output import OutputError, check_directory

log = logging.getLogger("tlsmpi")

def check_resources(engine, cfg, args, comm):
    """Refuse (ConfigError) what cannot fit: memory per node for the largest case, and
    the run file against the free space of its filesystem.  Rank 0's verdict rules."""
    from mpi4py import MPI
    on_node = comm.allreduce(comm.Split_type(MPI.COMM_TYPE_SHARED).size, op=MPI.MAX)
    error = None
    if comm.rank == 0:
        try:
            check_directory(args.out, args.resume)
            check_memory(engine, cfg, on_node)
            if not args.resume:
                check_space(args.out, cfg, engine, args.overwrite and os.path.isfile(args.out))
        except (ConfigError, OutputError) as err:
            error = err
    error = comm.bcast(error, root=0)
    if error:
        raise error


def check_space(out, cfg, engine, replaces=False, doing="the run file"):
    """Refuse (ConfigError) a run file ``out`` of ``cfg`` that its filesystem cannot hold
    (``replaces``: the file it replaces is freed first)."""
    from ..runfile.writer import file_size_estimate
    need = file_size_estimate(cfg, engine.outputs(cfg.request))
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(out))).free
    if replaces:
        free += os.path.getsize(out)
    if need * 1.05 + 1e6 > free:
        raise ConfigError(f"--out {out}: {doing} needs ~{_bytes(need)} but its filesystem has "
                          f"{_bytes(free)} free; free space, choose another --out, or save less "
                          "(observables.save_disorder = false)")


#: Bytes of rank 0's bookkeeping per work item (item and pending lists of tuples, predicted
#: costs, the queue's arrays), an upper bound (docs/reliability.md).
ITEM_BYTES = 500.0


def check_memory(engine, cfg, on_node):
    """Refuse (ConfigError) a work list or a case that does not fit in the memory of a
    node with ``on_node`` ranks; log the engine's estimate per case."""
    from ..engines.base import available_memory
    available = available_memory()
    items = cfg.realizations * sum(engine.parts(p, cfg.request) for p in cfg.cases())
    if available is not None and items * ITEM_BYTES > available / 2:
        raise ConfigError(f"{items} work items (ensemble.realizations = {cfg.realizations} x "
                          f"cases x parts) need ~{_bytes(items * ITEM_BYTES)} of rank 0's memory "
                          f"for the work list but {_bytes(available)} is available: split the "
                          "ensemble into several runs (ensemble.realizations, ensemble.seed)")
    said = set()
    for params in cfg.cases():
        line, error = memory_verdict(engine, params, cfg, on_node, available)
        if line not in said:
            log.info(line)
            said.add(line)
        if error:
            raise ConfigError(error)


def memory_verdict(engine, params, cfg, on_node, available):
    """(log line, error or None): the engine's memory per rank for one case, plus three
    copies of a realization's rows (the engine's result, its resolved parts, the write
    buffer's stack; `tlsmpi.physics.observables.result_bytes`), times the ranks on a
    node, against ``available`` bytes (None: unknown, never refused); the error names
    the largest N that would fit."""
    rpr = cfg.ranks_per_realization

    def need(N):
        rows = 3 * result_bytes(cfg.request, N, cfg.n_times)
        return (engine.memory(params.replace(N=N), cfg.times_stub, cfg.request, rpr)
                + rows) * on_node

    per_rank = need(params.N) / on_node
    line = (f"engine {engine.name}, N = {params.N}: ~{_bytes(per_rank)} per rank "
            f"x {on_node} rank(s) on a node = {_bytes(need(params.N))}")
    if available is None or need(params.N) <= available:
        return line, None
    low, high = 2, params.N                      # need() grows with N: bisect the largest fit
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= available else (low, mid)
    largest = (f"the largest N that fits is {low}" if need(low) <= available else
               f"no N fits with {cfg.n_times} output times (time.n_times or time.values)")
    return line, (
        f"engine {engine.name!r} with N = {params.N} needs ~{_bytes(need(params.N))} on "
        f"a node ({_bytes(per_rank)} per rank x {on_node} ranks, ranks_per_realization "
        f"= {rpr}) but {_bytes(available)} is available: {largest}; lower model.N or "
        "time.n_times, or use fewer ranks per node"
        + (" or more ranks per realization" if engine.parallel else "")
    )


def _bytes(n):
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"
