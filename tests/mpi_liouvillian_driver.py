"""Run Engine 2 under mpirun for tests/test_liouvillian.py.

    mpirun -n 3 python -m mpi4py tests/mpi_liouvillian_driver.py --N 5 --group-size 2 \
        [--method mfn] [-mfn_... options]

COMM_WORLD is split into groups of --group-size consecutive ranks; group g computes
realization g of the model given by the flags.  World rank 0 prints one JSON line:
a list of {"group", "rank", "result" or "error"} for every rank.
"""
import argparse
import json
import sys

from tlsmpi.engines import liouvillian


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--T-K", type=float, default=300.0)
    parser.add_argument("--flipflop", type=float, default=0.2)
    parser.add_argument("--group-size", type=int, default=0, help="0: all ranks in one group")
    parser.add_argument("--times", type=float, nargs="+", default=[0.0, 0.1, 1.0, 3.0])
    parser.add_argument("--method", default="auto", help="engine.method")
    args, petsc_args = parser.parse_known_args()
    liouvillian.init_petsc([sys.argv[0]] + petsc_args)

    from mpi4py import MPI
    from tlsmpi.errors import SolverError
    from tlsmpi.physics.model import ModelParams, sample
    from tlsmpi.physics.observables import Request

    world = MPI.COMM_WORLD
    size = args.group_size or world.size
    group = world.rank // size
    comm = world.Split(group, world.rank)
    params = ModelParams(N=args.N, epsilon=args.epsilon, T_K=args.T_K, flipflop=args.flipflop)
    real = sample(params, args.seed, group)
    record = {"group": group, "rank": comm.rank}
    try:
        out = liouvillian.compute(real, args.times, Request(("concurrence", "entropy")), comm,
                                  args.method)
        record["result"] = {k: v.tolist() for k, v in out.items()}
    except SolverError as err:
        record["error"] = str(err)
    comm.Free()
    records = world.gather(record, root=0)
    if world.rank == 0:
        print(json.dumps(records))


if __name__ == "__main__":
    main()
