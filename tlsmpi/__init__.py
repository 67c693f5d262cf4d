"""tlsmpi: quantum dynamics of interacting two-level systems in glasses, on MPI clusters.

Following Artiaco, Balducci & Scardicchio, "Signatures of Many-Body Localization in
the Dynamics of Two-Level Systems in Glasses".  See README.md and docs/.
"""
__version__ = "0.1.0"
