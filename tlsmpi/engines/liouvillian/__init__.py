"""Engine 2: the GKSL generator of Eq. (15) on the 4^N Pauli basis, distributed with
PETSc and evolved with SLEPc MFN, or diagonalized per Delta m block (docs/design.md
section 5; docs/liouvillian.md).

The pieces, each in its own module (docs/architecture.md):

- `basis`: the Pauli and ket-bra bases, density matrices from Pauli coefficients
  (`PauliReadout`), output times (numpy only);
- `generator`: the local site and pair blocks of Eqs. (15) and (23) and the generator
  row by row (`Generator`; numpy only);
- `spectral`: the spectral path, eigendecomposition of the Delta m blocks (`Spectral`;
  numpy and scipy, no PETSc);
- `cost`: the memory and cost models and the choice of the path (no PETSc);
- `mfn`: PETSc assembly, MFN stepping and readout (`Evolution`; PETSc, SLEPc and MPI
  imported inside its functions);
- `engine`: `compute` and the registered `LiouvillianEngine`.

The names below stay importable from ``tlsmpi.engines.liouvillian``.
"""
from .basis import DELTA_M, PAULI, UNITS, PauliReadout, density_from_pauli, output_times, \
    subsystem_indices
from .cost import BASELINE, EIG_SECONDS, MFN_ENTRY_SECONDS, MFN_SOLVE_SECONDS, STEP_NORM, \
    mean_nnz_per_row, mfn_memory, mfn_solves, prefer_spectral, spectral_seconds
from .engine import LiouvillianEngine, compute
from .generator import CHUNK_ROWS, Generator, ketbra_block, norm1_estimate, pair_block, \
    pair_superop, site_block, site_superop
from .mfn import DEFAULT_NCV, DEFAULT_TOL, DEFAULT_TYPE, Evolution, assemble, init_petsc, \
    ownership, pulse_signs
from .spectral import METHODS, SPECTRAL_COND_MAX, SPECTRAL_MAX, Spectral, block_codes, \
    block_generator, block_size, delta_m_needed, ketbra_terms, spectral_coefficients, \
    spectral_refusal, use_spectral

__all__ = [
    "BASELINE", "CHUNK_ROWS", "DEFAULT_NCV", "DEFAULT_TOL", "DEFAULT_TYPE", "DELTA_M",
    "EIG_SECONDS", "METHODS", "MFN_ENTRY_SECONDS", "MFN_SOLVE_SECONDS", "PAULI",
    "SPECTRAL_COND_MAX", "SPECTRAL_MAX", "STEP_NORM", "UNITS", "Evolution", "Generator",
    "LiouvillianEngine", "PauliReadout", "Spectral", "assemble", "block_codes",
    "block_generator", "block_size", "compute", "delta_m_needed", "density_from_pauli",
    "init_petsc", "ketbra_block", "ketbra_terms", "mean_nnz_per_row", "mfn_memory",
    "mfn_solves", "norm1_estimate", "output_times", "ownership", "pair_block", "pair_superop",
    "prefer_spectral", "pulse_signs", "site_block", "site_superop", "spectral_coefficients",
    "spectral_refusal", "spectral_seconds", "subsystem_indices", "use_spectral",
]
