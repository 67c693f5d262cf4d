"""Test driver: `tlsmpi.schedule.WorkQueue` with workers that sleep for their items.

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
"""
import json
import logging
import os
import sys
import time

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlsmpi.schedule import WorkQueue          # noqa: E402

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
    queue = WorkQueue(comm, COSTS, worker=worker, group_size=group_size, width=width,
                      progress_seconds=0.2, min_chunk_seconds=0.01,
                      serve_in_thread=scenario != "rankserver")
    mine, busy, done, requests = [], 0.0, [], 0
    t0 = time.perf_counter()
    while worker or member_of is not None:
        if worker:
            requests += 1
            chunk = queue.take(done, stop=scenario == "stop" and rank == 1 and requests == 2)
        else:
            chunk = None
        if member_of is not None:
            chunk = member_of.bcast(chunk, root=0)
        if not chunk:
            break
        done = []
        for k in chunk:
            t = time.perf_counter()
            time.sleep(COSTS[k] / group_size * speed)
            done.append((k, time.perf_counter() - t))
            busy += done[-1][1]
        mine += [int(k) for k in chunk] if worker else []
    wall = time.perf_counter() - t0
    stopped = queue.close()
    report = comm.gather({"items": mine, "stopped": stopped, "busy": busy, "wall": wall}, root=0)
    if rank == 0:
        print(json.dumps({"costs": COSTS.tolist(), "ranks": report}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
