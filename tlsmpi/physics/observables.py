"""The registry of observables: each declared once, like an engine (docs/extending.md).

An observable is a formula of the reduced density matrices of one kind:

* ``"site"``: rho_i, stacks (..., 2, 2);
* ``"pair"``: rho_ij, stacks (..., 4, 4), basis |s_i s_j> with index 2 a_i + a_j;
* ``"subsystem"``: rho_A of the bubble bipartitions of Eq. (29), stacks (..., d, d);

in the S^z basis (up, down), up = S^z = +1 first (docs/design.md).  Per realization it is
reduced to one number per time: the sum of the formula over all sites / pairs / bubbles
divided by ``denominator(N, count)`` (the mean, except C of Eq. 28, the pair SUM over N).
An engine declares the kinds of reduced density matrices it provides
(`tlsmpi.engines.Engine.kinds`); every observable of those kinds then works on it::

    from tlsmpi.physics import observables

    observables.register(observables.Observable(
        name="up", kind="site", formula=lambda rho: rho[..., 0, 0].real, units="1",
        long_name="mean population of the upper level"))

`Accumulator` applies the observables of one kind to the density matrices an engine
produces chunk by chunk (pairs row by row in Engine 1), with the arithmetic order of
`tlsmpi.physics.measures.mean_pair_concurrence`.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError
from . import measures

#: Kinds of reduced density matrices, with their matrix size (None: any, 2^|A|).
KINDS = {"site": 2, "pair": 4, "subsystem": None}
#: Kinds whose per-item values can be stored resolved (``observables.resolved``).
RESOLVABLE = ("site", "pair")

_REGISTRY = {}


def _mean(N, count):
    """The mean over the ``count`` sites / pairs / bubbles."""
    return count


@dataclass(frozen=True)
class Observable:
    """One observable of the registry.

    Parameters
    ----------
    name : str
        The ``[observables]`` key and the run file's dataset name.
    kind : str
        One of `KINDS`: which reduced density matrices ``formula`` reads.
    formula : callable
        Stack of density matrices (..., d, d) -> real values (...).
    units, long_name : str
        CF attributes of its rows in the run file.
    denominator : callable, optional
        (N, count) -> the number the sum over the ``count`` items is divided by; the
        mean (``count``) by default.
    """
    name: str
    kind: str
    formula: Callable
    units: str
    long_name: str
    denominator: Callable = _mean


def register(obs):
    """Make ``obs`` (an `Observable`) available as ``observables.<name> = true``."""
    if not isinstance(obs, Observable) or not obs.name or obs.kind not in KINDS:
        raise TypeError(f"{obs!r}: an observable is an Observable with a name and a kind in "
                        f"{list(KINDS)}")
    _REGISTRY[obs.name] = obs
    return obs


def names():
    """Names of all registered observables, in registration order (the file order)."""
    return list(_REGISTRY)


def get(name):
    """The observable registered as ``name``; ConfigError listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"observables.{name}: no such observable; choose one of "
                          f"{names()}") from None


def outputs(request, provided=()):
    """{name: (units, long name)} of the rows of ``request``, in registry order, and
    with ``request.resolved`` ``<name>_resolved`` rows {name: (units, long name, kind)}
    for its site and pair observables; only names in ``provided`` (all if empty)."""
    out = {}
    for name in names():
        if name in request.observables and (not provided or name in provided):
            obs = _REGISTRY[name]
            out[name] = (obs.units, obs.long_name)
    if request.resolved:
        for name in list(out):
            obs = _REGISTRY[name]
            if obs.kind in RESOLVABLE:
                out[name + "_resolved"] = (obs.units, f"{obs.long_name}: the value of each "
                                           f"{obs.kind} before the reduction", obs.kind)
    return out


@dataclass(frozen=True)
class Request:
    """What an engine computes per realization.

    Parameters
    ----------
    observables : tuple of str
        Registered observable names.
    bipartitions : int
        0 averages S_E over all N bubble bipartitions, n > 0 over a reproducible random
        subset of n.
    resolved : bool
        Also return the per-site / per-pair values of the site and pair observables
        (``<name>_resolved``, (T, N) or (T, N(N-1)/2) with the pairs i < j row-major).
    """
    observables: tuple = ("concurrence",)
    bipartitions: int = 0
    resolved: bool = False

    def of_kind(self, kind):
        """The requested names of ``kind``, in registry order."""
        return tuple(n for n in names() if n in self.observables and _REGISTRY[n].kind == kind)

    def wants(self, kind):
        """True if an observable of ``kind`` is requested."""
        return bool(self.of_kind(kind))


class Accumulator:
    """The requested observables of one kind, fed with density matrices chunk by chunk.

    Parameters
    ----------
    request : Request
    kind : str
    N : int
        Number of TLSs (the denominator of Eq. 28).
    """

    def __init__(self, request, kind, N):
        self.obs = [_REGISTRY[n] for n in request.of_kind(kind)]
        self.N = N
        self.resolved = request.resolved and kind in RESOLVABLE
        self.totals = {o.name: 0.0 for o in self.obs}
        self.items = {o.name: [] for o in self.obs}
        self.count = 0

    def add(self, rho, axis=0):
        """Add the stack ``rho`` (..., d, d) of items on ``axis`` (after the matrix
        axes are dropped), the other remaining axis being time."""
        self.count += rho.shape[axis]
        for o in self.obs:
            value = o.formula(rho)
            self.totals[o.name] = self.totals[o.name] + value.sum(axis)
            if self.resolved:
                self.items[o.name].append(np.moveaxis(value, axis, -1))

    def result(self):
        """{name: (T,)} and, if resolved, {name_resolved: (T, items)}."""
        out = {}
        for o in self.obs:
            out[o.name] = self.totals[o.name] / o.denominator(self.N, self.count)
            if self.resolved:
                out[o.name + "_resolved"] = np.concatenate(self.items[o.name], axis=-1)
        return out


def reduce(request, kind, N, chunks, axis=0):
    """`Accumulator` of ``kind`` fed with every stack of ``chunks``; its result."""
    acc = Accumulator(request, kind, N)
    for rho in chunks:
        acc.add(rho, axis)
    return acc.result()


def _pair_sum_over_N(N, count):
    """C(t) = (1/N) sum_{i<j} C_ij(t), Eq. (28): the pair sum over N, not the mean."""
    return N


register(Observable("concurrence", "pair", measures.concurrence, "1",
                    "mean pair concurrence C(t), Eq. (28)", _pair_sum_over_N))
register(Observable("entropy", "subsystem", measures.entropy_vn, "1",
                    "half-system entanglement entropy S_E(t) in nats, Eq. (29)"))
