"""Run under mpirun by tests/test_ed.py: the trajectory average of one realization with
its blocks spread over COMM_WORLD; prints C(t) and rho_ij(t) as exact hex floats."""
import json

import numpy as np
from mpi4py import MPI

from tlsmpi import trajectories
from tlsmpi.model import ModelParams, sample
from tlsmpi.observables import Request

real = sample(ModelParams(N=5, flipflop=1.0, epsilon=1.0, T_K=100.0), 2021, 4)
res = trajectories.average(real, np.logspace(-1, 2, 5), Request(entropy=True), 90, MPI.COMM_WORLD)
if MPI.COMM_WORLD.Get_rank() == 0:
    values = np.concatenate([res["observables"]["concurrence"], res["observables"]["entropy"],
                             res["pairs"].ravel().view(float), res["concurrence_err"]])
    print(json.dumps([float(v).hex() for v in values]))
