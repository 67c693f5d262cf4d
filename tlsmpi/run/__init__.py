"""The MPI job, ``mpirun -n P python -m tlsmpi.run [CONFIG.toml] [options]`` (`job`),
and the checks made before MPI starts (`environment`)."""
from .job import main

__all__ = ["main"]
