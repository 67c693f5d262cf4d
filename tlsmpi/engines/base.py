"""Engine registry: the one place where engines are named, validated and looked up.

An engine turns one disorder realization into observables.  It knows nothing of
files, ranks outside its own communicator, or scheduling; the runner and the
configuration find it here by name (``engine.name`` of the run configuration)::

    from tlsmpi import engines

    @engines.register
    class Toy(engines.Engine):
        name = "toy"
        observables = ("concurrence",)
        option_schema = {"scale": (1.0, lambda v: v > 0, "a number > 0")}

        def compute(self, real, times, request, comm=None):
            return {"concurrence": self.options["scale"] * np.ones(len(times))}

A long `compute` calls ``self.checkpoint(comm)`` between its indivisible steps (an MFN
solve, a time chunk, a trajectory): the runner sets ``should_stop`` when a stop signal
arrives, and the checkpoint then raises `Interrupted`, which gives the work item up (it
stays pending for ``--resume``).  docs/extending.md walks through a complete example.

The built-in engines live in their own modules (`BUILTIN`), imported the first time a
name is looked up, so that importing tlsmpi never imports PETSc.
"""
import importlib

from ..errors import ConfigError
from ..physics import observables as registry

#: Modules that register the built-in engines when imported.
BUILTIN = ("tlsmpi.engines.exact", "tlsmpi.engines.liouvillian", "tlsmpi.engines.ed")

_REGISTRY = {}


class Interrupted(Exception):
    """Raised by `Engine.checkpoint` when the runner asked to stop: the work item in
    progress is given up (not recorded; it stays pending)."""


def never(comm=None):
    """The checkpoint of code called outside the runner: it never stops."""


class Engine:
    """Base class of an engine; subclasses set ``name`` and override what applies.

    Parameters
    ----------
    options : dict, optional
        The values of the engine's own keys of the ``[engine]`` table (validated by the
        configuration against `option_schema`); missing keys take their defaults.  The
        engine reads them as ``self.options``.
    """
    #: Name used in ``engine.name``.
    name = None
    #: Engine-specific keys of the ``[engine]`` table: key -> (default, check, want).
    option_schema = {}
    #: Kinds of reduced density matrices the engine provides ("site", "pair",
    #: "subsystem"): every registered observable of these kinds works on it
    #: (`tlsmpi.physics.observables`).
    kinds = ()
    #: Registered observables the engine computes by its own route, whatever their kind.
    observables = ()
    #: True if one realization can run on a group of several ranks (``comm`` in `compute`).
    parallel = False
    #: True if the engine reads solver options (``-name value`` words of the command line).
    solver_options = False
    #: Set by the runner: a callable that returns True once the work item in progress
    #: should be given up (a stop signal); None: never.
    should_stop = None

    def __init__(self, options=None):
        self.options = {k: d for k, (d, _, _) in self.option_schema.items()}
        self.options.update(options or {})

    def outputs(self, request):
        """The per-realization rows `compute` returns, {name: (units, long name)} in file
        order: the requested observables (`tlsmpi.physics.observables.outputs`, with
        their ``_resolved`` rows) and any rows of the engine's own (e.g. a statistical
        error).  The run file stores each with these CF attributes; every name must be
        returned."""
        return registry.outputs(request)

    @classmethod
    def provides(cls, name):
        """True if the engine computes the registered observable ``name``."""
        return name in cls.observables or registry.get(name).kind in cls.kinds

    def check(self, cases, request):
        """Raise ConfigError naming the value and the fix for what cannot be computed.

        Parameters
        ----------
        cases : list of tlsmpi.physics.model.ModelParams
        request : tlsmpi.physics.observables.Request
        """

    def ignored_options(self, cases, request):
        """{option: why} for the engine's own options that none of ``cases`` would use
        (e.g. a trajectory count where no case is open): the configuration refuses a
        non-default value of each, so that no setting is silently ignored."""
        return {}

    def memory(self, params, times, request, ranks=1):
        """Bytes per rank that one realization of ``params`` needs on a group of ``ranks``."""
        return 0.0

    def cost(self, params, times, request, draw):
        """Predicted seconds of one realization on one core (only ratios matter).

        ``draw()`` returns the realization, for engines whose cost depends on the
        disorder (it costs a sample, so call it only then)."""
        return 1.0

    def checkpoint(self, comm=None):
        """Raise `Interrupted` if `should_stop` says so; `compute` and `compute_part` call
        it between their indivisible steps.

        With a communicator of several ranks the call is collective (every rank of
        ``comm`` must call it at the same point) and the decision is the same on all:
        a stop seen by any rank stops them all, so no rank is left in a collective."""
        stop = bool(self.should_stop is not None and self.should_stop())
        if comm is not None and comm.Get_size() > 1:
            stop = comm.allreduce(int(stop)) > 0
        if stop:
            raise Interrupted

    def init(self, argv):
        """Called once per process before the first `compute` (e.g. solver options)."""

    def unused_options(self):
        """Names of solver options that no solver read (reported as misspelt)."""
        return []

    def versions(self):
        """Library versions for the run file's provenance, e.g. {"petsc_version": "3.18.5"}."""
        return {}

    def compute(self, real, times, request, comm=None):
        """Observables of ``request`` for one realization, each an array of shape (T,).

        Raises SolverError for a numerical failure of this realization (recorded as a
        failed row; the run goes on), `Interrupted` from `checkpoint`."""
        raise NotImplementedError

    # A realization may split into independent parts (e.g. blocks of quantum-jump
    # trajectories): the runner then makes each part a work item of its own, sends the
    # partial results to one rank and combines them there in part order.

    def parts(self, params, request):
        """Number of independent parts of one realization of ``params`` (1: not split)."""
        return 1

    def compute_part(self, real, times, request, part, comm=None):
        """The partial result (any picklable object) of part ``part`` of a realization;
        depends only on (realization, part), never on the ranks or on other parts.
        Raises SolverError and `Interrupted` like `compute`."""
        raise NotImplementedError

    def combine(self, real, times, request, partials):
        """The observables of `compute` from the partial results of all parts, given in
        part order (so the result does not depend on where the parts ran)."""
        raise NotImplementedError


def available_memory():
    """MemAvailable of /proc/meminfo in bytes (None where it does not exist)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def register(cls):
    """Class decorator: make ``cls`` available as ``engine.name = cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Engine)) or not cls.name:
        raise TypeError(f"{cls!r}: an engine is an Engine subclass with a name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin():
    for module in BUILTIN:
        importlib.import_module(module)


def names():
    """Names of all registered engines, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get(name):
    """The engine class registered as ``name``; ConfigError listing the valid names."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"engine.name = {name!r}: choose one of {names()}") from None
