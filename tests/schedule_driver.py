"""Test driver: `tlsmpi.parallel.WorkQueue` with workers that sleep for their items.

    mpirun -n P python tests/schedule_driver.py SCENARIO

Item k sleeps ``COSTS[k] x speed`` seconds (rank 1 at half speed in ``slow``).  Rank 0
prints one JSON line: the items each rank computed, each rank's close() result, the
wall time of the loop and each rank's busy seconds.  Scenarios:

- ``all``: every rank is a worker.
- ``stop``: rank 1 reports a stop signal at its second request.
- ``slow``: rank 1 sleeps twice as long per item.
- ``groups`` (3 ranks): ranks 0+1 form a group of 2 (rank 0 leads and broadcasts its
  chunks to rank 1), rank 2 works alone; the two most expensive items have width 2.
- ``late``: rank 0 does not work and calls close() at once.
- ``rankserver``: rank 0 only serves (``serve_in_thread=False``).
- ``collect``, ``collect-stop``: items are the 5 parts of 16 families (equal cost within
  a family); each part's value (item, rank) goes through a `Collector`; rank 0 also prints
  per rank the families it got complete (with their values) and those left incomplete.
"""
import json
import logging
import os
import sys
import time

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlsmpi.parallel import Collector, QueueSettings, WorkQueue  # noqa: E402

COSTS = np.random.default_rng(7).uniform(0.002, 0.03, 80)
COSTS[:2] = 0.3


def main(scenario):
    comm = MPI.COMM_WORLD
    rank = comm.rank
    if rank == 0:
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    worker, group_size, width, member_of = True, 1, None, None
    if scenario == "groups":
        group = comm.Split(0 if rank < 2 else 1, rank)
        group_size, worker = group.size, group.rank == 0
        width = np.where(COSTS >= 0.3, 2, 1)
        member_of = group
    elif scenario in ("late", "rankserver"):
        worker = rank != 0
    speed = 2.0 if scenario == "slow" and rank == 1 else 1.0
    costs, families, collector = COSTS, None, None
    if scenario.startswith("collect"):
        families = np.arange(len(COSTS)) // 5
        costs = COSTS[families * 5]
    settings = QueueSettings(progress_seconds=0.2, min_chunk_seconds=0.01,
                             serve_in_thread=scenario != "rankserver")
    queue = WorkQueue(comm, costs, worker=worker, group_size=group_size, width=width,
                      settings=settings, families=families)
    if families is not None:
        collector = Collector(comm, families, np.arange(len(COSTS)) % 5, sorted(queue.group_sizes))
    complete = []
    mine, busy, done, requests = [], 0.0, [], 0
    t0 = time.perf_counter()
    while worker or member_of is not None:
        if worker:
            requests += 1
            chunk = queue.take(done, stop=scenario in ("stop", "collect-stop") and rank == 1
                               and requests == 2)
        else:
            chunk = None
        if member_of is not None:
            chunk = member_of.bcast(chunk, root=0)
        if not chunk:
            break
        done = []
        for k in chunk:
            t = time.perf_counter()
            time.sleep(costs[k] / group_size * speed)
            done.append((k, time.perf_counter() - t))
            busy += done[-1][1]
            if collector is not None:
                collector.put(k, (int(k), rank))
                complete += collector.poll()
        mine += [int(k) for k in chunk] if worker else []
    wall = time.perf_counter() - t0
    stopped = queue.close()
    incomplete = []
    if collector is not None:
        last, incomplete = collector.finish()
        complete += last
    report = comm.gather({"items": mine, "stopped": stopped, "busy": busy, "wall": wall,
                          "complete": [(int(f), v) for f, v in complete],
                          "incomplete": [int(f) for f in incomplete]}, root=0)
    if rank == 0:
        print(json.dumps({"costs": costs.tolist(), "ranks": report}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
