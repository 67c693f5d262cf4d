"""Two processes (two MPI ranks of a node with two cores) diagonalizing a 1500 x 1500 matrix
three times each, with N BLAS threads per process (docs/performance.md, "One BLAS thread
per rank").  Usage, on an otherwise idle node with two cores:

    for n in 1 2; do (python tools/blas_threads.py $n & python tools/blas_threads.py $n; wait); done
"""
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

a = np.random.default_rng(0).normal(size=(1500, 1500))
a = a + a.T
n = int(sys.argv[1])
with threadpool_limits(n):
    t = time.perf_counter()
    for _ in range(3):
        np.linalg.eigh(a)
    print(f"{n} BLAS thread(s) per process: {time.perf_counter() - t:.2f} s")
