"""The toy engine of docs/extending.md: uncoupled pairs that dephase.

Every TLS i is paired with TLS i + 1 (mod N) in a Bell state whose coherence decays as
exp(-t / tau), so C_i(t) = exp(-t / tau) for each of the N/2 disjoint pairs (i even) and
C(t) = (1/N) sum_pairs C_i(t) = floor(N/2) exp(-t / tau) / N (Eq. 28); the extra row
"coherence" is |<00|rho|11>| = exp(-t / tau) / 2 of each pair.  Not physics: a template
with one option, a check, a memory and cost model, an extra row and a compute method.
"""
import numpy as np

from tlsmpi import engines
from tlsmpi.errors import ConfigError


@engines.register
class ToyEngine(engines.Engine):
    """C(t) of N/2 dephasing Bell pairs."""
    name = "toy"
    observables = ("concurrence",)
    option_schema = {"tau": (1.0, lambda v: v > 0, "a dephasing time > 0 (units of hbar/W)")}

    def check(self, cases, request):
        for p in cases:
            if p.epsilon:
                raise ConfigError(f"model.epsilon = {p.epsilon}: the toy engine has no "
                                  "dissipation; set epsilon = 0 or engine.name = \"exact\"")

    def memory(self, params, times, request, ranks=1):
        return 8.0 * len(times)

    def cost(self, params, times, request, draw):
        return 1e-6 * len(times)

    def outputs(self, request):
        return {**super().outputs(request),
                "coherence": ("1", "coherence |<00|rho|11>| of each Bell pair")}

    def compute(self, real, times, request, comm=None):
        decay = np.exp(-np.asarray(times, dtype=float) / self.options["tau"])
        return {"concurrence": (real.N // 2) * decay / real.N, "coherence": decay / 2}
