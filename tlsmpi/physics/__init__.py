"""The physics of the paper, free of MPI, files and engines: the model (Secs. II-IV A,
`model`), the entanglement measures (Sec. IV B, `measures`) and the phase diagram
(`phase_diagram`).  Imports nothing of tlsmpi but `tlsmpi.errors`."""
