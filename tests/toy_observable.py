"""The toy observable of docs/extending.md: the mean population of the upper level (S^z =
-1, "down") over the sites, (1 - <S^z_i>)/2 averaged over i.  One registration; every
engine that provides site density matrices computes it, the configuration accepts
``observables.toy_population`` and the run file stores it, with no change elsewhere."""
from tlsmpi.physics import observables

observables.register(observables.Observable(
    name="toy_population", kind="site", formula=lambda rho: rho[..., 1, 1].real, units="1",
    long_name="mean over sites of the upper-level population <down|rho_i|down>"))
