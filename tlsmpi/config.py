"""Run configuration: TOML files, ``--set`` overrides, validation, resolved TOML text.

A configuration has the tables below; every key is optional and defaults to the
paper's numerics (Sec. IV A).  ``[sweep]`` lists model parameters to scan: the run
computes every combination (a "case"), with the same disorder realizations in each.

    [model]        N, material, W_eV, Dbar, nD, gamma, rho_g_cm3, vL_km_s, vT_km_s,
                   L0_nm, eta, epsilon, T_K, flipflop, flipflop_form
                   (tlsmpi.physics.model.ModelParams); with material = "SiO2" | "BK7" | "PMMA"
                   the keys not given take the Table I values, given ones override
    [time]         t_min, t_max, n_times, spacing = "log" | "linear"; or values = [...]
    [ensemble]     realizations, seed, first_realization
    [engine]       name (a registered engine: tlsmpi.engines), ranks_per_realization,
                   and the engine's own options (its ``options`` table)
    [observables]  one boolean per registered observable (tlsmpi.physics.observables:
                   concurrence, entropy, ...), bipartitions, resolved, save_disorder
    [sweep]        <model key> = [values...]
    [output]       checkpoint_seconds, progress_seconds
"""
from dataclasses import dataclass, fields
import itertools
import logging
import math
import sys

import numpy as np

from . import engines
from .errors import ConfigError
from .physics.model import MATERIALS, ModelParams, material_values
from .physics import observables as registry
from .runfile.settings import differences, differing_keys, toml_value as _toml_value  # noqa: F401

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib

MODEL_KEYS = {f.name: f.type for f in fields(ModelParams) if f.name != "material"}
_MODEL_DEFAULTS = {f.name: f.default for f in fields(ModelParams) if f.name != "material"}
log = logging.getLogger("tlsmpi")

#: section -> key -> (default, check, what the check wants)
SCHEMA = {
    "model": {"material": ("", lambda v: v == "" or v in MATERIALS,
                           f"one of {sorted(MATERIALS)} (or \"\" for the paper's numerics)"),
              **{k: (v, None, None) for k, v in _MODEL_DEFAULTS.items()}},
    "time": {"t_min": (1e-2, lambda v: v > 0, "a number > 0"),
             "t_max": (1e4, lambda v: v > 0, "a number > 0"),
             "n_times": (100, lambda v: v >= 1, "an integer >= 1"),
             "spacing": ("log", lambda v: v in ("log", "linear"), '"log" or "linear"'),
             "values": ([], None, None)},
    "ensemble": {"realizations": (32, lambda v: v >= 1, "an integer >= 1"),
                 "seed": (2021, lambda v: 0 <= v < 2**63, "an integer in [0, 2^63)"),
                 "first_realization": (0, lambda v: 0 <= v < 2**63, "an integer in [0, 2^63)")},
    "engine": {"name": ("exact", None, None),
               "ranks_per_realization": (1, lambda v: v >= 1, "an integer >= 1")},
    "observables": {**{name: (name == "concurrence", None, None) for name in registry.names()},
                    "bipartitions": (0, lambda v: v >= 0, "an integer >= 0 (0 = all N bubbles)"),
                    "save_disorder": (True, None, None), "resolved": (False, None, None)},
    "sweep": {},
    "output": {"checkpoint_seconds": (60.0, lambda v: v > 0, "a number > 0"),
               "progress_seconds": (10.0, lambda v: v > 0, "a number > 0")},
}

#: section -> key -> one line: what the key does (docs/configuration.md has the details).
DESCRIPTIONS = {
    "ensemble": {
        "first_realization": "index of the first realization: the run computes realizations "
                             "first_realization ... first_realization + realizations - 1 "
                             "(a second file of the same ensemble, pooled by post)",
    },
    "observables": {
        **{name: f"store {registry.get(name).long_name} (a {registry.get(name).kind} "
           "observable, tlsmpi.physics.observables)" for name in registry.names()},
        "resolved": "also store each site / pair observable per site / pair "
                    "(<name>_resolved, pairs i < j row-major)",
    },
}


def section_schema(section, engine="exact"):
    """The keys of ``section``: key -> (default, check, want), with the named engine's
    own options in [engine] and every registered observable (also one registered after
    import) in [observables]."""
    if section == "engine":
        return {**SCHEMA["engine"], **engines.get(engine).option_schema}
    if section == "observables":
        return {**{name: (False, None, None) for name in registry.names()},
                **SCHEMA["observables"]}
    return SCHEMA[section]


def defaults(engine="exact"):
    """{"section.key": default} of every key (the named engine's options included): a key
    missing from the configuration text of an older run file has its default."""
    return {f"{s}.{k}": v[0] for s in SCHEMA for k, v in section_schema(s, engine).items()}


def _type_ok(value, default):
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _typename(default):
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list"}[type(default)]


@dataclass(frozen=True)
class Config:
    """A validated run configuration (``data`` is the complete, resolved table)."""
    data: dict

    def section(self, name):
        return self.data[name]

    @property
    def times(self):
        t = self.data["time"]
        if t["values"]:
            return np.array(t["values"], dtype=float)
        if t["spacing"] == "log":
            return np.logspace(np.log10(t["t_min"]), np.log10(t["t_max"]), t["n_times"])
        return np.linspace(t["t_min"], t["t_max"], t["n_times"])

    @property
    def n_times(self):
        """Number of output times (arithmetic: nothing of the grid's size is built)."""
        t = self.data["time"]
        return len(t["values"]) if t["values"] else t["n_times"]

    @property
    def times_stub(self):
        """A read-only array with the length and the last value of `times`, made in O(1)
        memory: for size estimates before anything of the grid's size is built."""
        t = self.data["time"]
        last = t["values"][-1] if t["values"] else (t["t_max"] if t["n_times"] > 1 else t["t_min"])
        return np.broadcast_to(np.float64(last), (self.n_times,))

    @property
    def seed(self):
        return self.data["ensemble"]["seed"]

    @property
    def realizations(self):
        return self.data["ensemble"]["realizations"]

    @property
    def first_realization(self):
        """Realization index of the run file's first row (row k is realization
        first_realization + k)."""
        return self.data["ensemble"]["first_realization"]

    @property
    def engine(self):
        return self.data["engine"]["name"]

    @property
    def engine_options(self):
        """The engine's own keys of [engine] (without name and ranks_per_realization)."""
        return {k: v for k, v in self.data["engine"].items() if k not in SCHEMA["engine"]}

    @property
    def ranks_per_realization(self):
        return self.data["engine"]["ranks_per_realization"]

    @property
    def request(self):
        o = self.data["observables"]
        return registry.Request(tuple(n for n in registry.names() if o.get(n)),
                                bipartitions=o["bipartitions"], resolved=o["resolved"])

    def cases(self):
        """ModelParams of every sweep combination, in the order of the output groups."""
        model = dict(self.data["model"])
        material = model.pop("material")
        sweep = self.data["sweep"]
        out = []
        for combo in itertools.product(*sweep.values()):
            params = {**model, **dict(zip(sweep, combo))}
            out.append(ModelParams.from_material(material, **params) if material
                       else ModelParams(**params))
        return out

    def to_toml(self):
        """The resolved configuration as TOML text (stored in every output file); an empty
        time.values and ensemble.first_realization = 0 are left out (files made before
        that key existed keep their text)."""
        lines = []
        for name, table in self.data.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()
                      if (name, k, v) not in (("time", "values", []),
                                              ("ensemble", "first_realization", 0))]
            lines.append("")
        return "\n".join(lines)


def parse_override(text):
    """``section.key=value`` -> (section, key, value); value is read as TOML, else as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set model.N=20")
    key, raw = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, name, value


def load(path=None, overrides=()):
    """Read, merge and validate a configuration; ``path`` None gives the default job.

    ``overrides`` (``--set section.key=value`` texts) replace the file's values.  A
    model key set on the command line while the file sweeps it replaces the sweep by
    that one value, and ``--set sweep.K=[...]`` replaces the file's ``model.K``; likewise
    ``--set time.values=[...]`` replaces the file's time grid and a grid key replaces its
    ``time.values``: each with a log line naming what was replaced, as when a key is
    given twice on the command line (the later wins).  ``model.K`` (not at its default)
    and ``sweep.K`` given together in one layer (file or command line) are refused.
    """
    raw = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path!r} does not exist: check the path") from None
        except (PermissionError, IsADirectoryError, OSError) as err:
            raise ConfigError(
                f"config file {path!r} cannot be read ({err.strerror}): "
                "check the path and its permissions"
            ) from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(
                f"config file {path!r} is not valid TOML ({err}): fix the syntax"
            ) from None
    else:
        raw = default_job()
    source = f"config file {path!r}" if path is not None else "the default job"
    _check_sweep_conflicts(raw, source)
    given = {}
    for text in overrides:
        section, name, value = parse_override(text)
        if (section, name) in given:
            log.info("--set %s.%s is given twice: the later %r replaces %r", section, name,
                     value, given[section, name])
        given[section, name] = value
    _check_sweep_conflicts(_nest(given), "the command line")
    for (section, name), value in given.items():
        table = raw.get(section)
        if section == "model" and isinstance(raw.get("sweep"), dict) and name in raw["sweep"]:
            log.info("--set model.%s = %r replaces the sweep sweep.%s = %r of %s",
                     name, value, name, raw["sweep"].pop(name), source)
        if section == "sweep" and isinstance(raw.get("model"), dict) and name in raw["model"]:
            log.info("--set sweep.%s = %r replaces model.%s = %r of %s",
                     name, value, name, raw["model"].pop(name), source)
        if section == "time" and isinstance(table, dict):
            grid = ("t_min", "t_max", "n_times", "spacing")
            replaced = grid if name == "values" else ("values",) if name in grid else ()
            gone = {k: table.pop(k) for k in replaced if k in table and ("time", k) not in given}
            if gone:
                log.info("--set time.%s = %r replaces %s of %s", name, value,
                         ", ".join(f"time.{k} = {v!r}" for k, v in gone.items()), source)
        if table is None:
            table = raw[section] = {}
        if not isinstance(table, dict):
            raise ConfigError(f"config entry {section!r} must be a table [{section}]")
        table[name] = value
    return validate(raw)


def _nest(flat):
    out = {}
    for (section, name), value in flat.items():
        out.setdefault(section, {})[name] = value
    return out


def _check_sweep_conflicts(raw, source):
    """Refuse model.K (at a value other than its default) and sweep.K in one layer:
    the sweep would replace the value without a word."""
    model, sweep = raw.get("model"), raw.get("sweep")
    if not (isinstance(model, dict) and isinstance(sweep, dict)):
        return
    for key in sorted(set(model) & set(sweep)):
        if key in _MODEL_DEFAULTS and model[key] != _MODEL_DEFAULTS[key]:
            raise ConfigError(f"{source} gives both model.{key} = {model[key]!r} and sweep.{key} = "
                              f"{sweep[key]!r}: the sweep would replace the value; remove one of "
                              "them")


def default_job():
    """The small default job: N = 16, 24 realizations, closed (epsilon = 0) and open
    (epsilon = 1)."""
    return {"model": {"N": 16}, "time": {"t_min": 1e-3, "t_max": 1e4, "n_times": 71},
            "ensemble": {"realizations": 24}, "sweep": {"epsilon": [0.0, 1.0]}}


def validate(raw):
    """Check every key, type and range; raise ConfigError naming the value and the fix."""
    data = {}
    for section, table in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"unknown config section [{section}]: use one of {sorted(SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(f"config entry {section!r} must be a table [{section}]")
    for section, schema in SCHEMA.items():
        table = dict(raw.get(section, {}))
        out = {}
        if section == "engine":             # the named engine adds its own keys
            name = table.get("name", schema["name"][0])
            if not isinstance(name, str):
                raise ConfigError(f"engine.name = {name!r}: expected a string, one of "
                                  f"{engines.names()}")
            schema = section_schema("engine", name)
        if section == "observables":        # observables registered after import
            schema = section_schema("observables")
        if section == "sweep":
            for key, values in table.items():
                if key not in MODEL_KEYS:
                    raise ConfigError(f"sweep.{key}: only model parameters can be swept, "
                                      f"one of {sorted(MODEL_KEYS)}")
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"sweep.{key} = {values!r}: expected a non-empty list of "
                                      "values")
                default = _MODEL_DEFAULTS[key]
                for v in values:
                    if not _type_ok(v, default):
                        raise ConfigError(f"sweep.{key} contains {v!r}: expected "
                                          f"{_typename(default)}")
                out[key] = [float(v) if isinstance(default, float) else v for v in values]
            data[section] = out
            continue
        for key in table:
            if key not in schema:
                raise ConfigError(f"unknown key {section}.{key}: valid keys are {sorted(schema)}")
        for key, (default, check, want) in schema.items():
            value = table.get(key, default)
            if not _type_ok(value, default):
                raise ConfigError(f"{section}.{key} = {value!r}: expected {_typename(default)}")
            if isinstance(default, float):
                value = float(value)
                if not math.isfinite(value):
                    raise ConfigError(f"{section}.{key} = {value!r}: must be finite")
            if check is not None and not check(value):
                raise ConfigError(f"{section}.{key} = {value!r}: expected {want}")
            out[key] = value
        data[section] = out
    _check_times(data["time"], raw.get("time", {}))
    _apply_material(data["model"], raw.get("model", {}), data["sweep"])
    config = Config(data)
    try:
        cases = config.cases()
    except ValueError as err:
        raise ConfigError(f"{err}: fix the [model] or [sweep] value") from None
    _check_engine(config, cases)
    _check_unused(config, cases, raw)
    return config


def _explicit(raw, section, key, schema):
    """The value of ``section.key`` as given (None if not given or at its default in
    ``schema``, the section's key -> (default, check, want))."""
    table = raw.get(section)
    if not isinstance(table, dict) or key not in table:
        return None
    return None if table[key] == schema[key][0] else table[key]


def unused_keys(config, cases, raw):
    """{"section.key": why} for the keys ``raw`` gives a non-default value that the run
    would not use: a setting that does nothing is refused, never ignored."""
    t = config.data["time"]
    out = {}
    if t["values"]:
        for key in ("t_min", "t_max", "n_times", "spacing"):
            out[f"time.{key}"] = "time.values gives the output times"
    elif t["n_times"] == 1:
        out["time.t_max"] = "time.n_times = 1 is the single time t_min"
        out["time.spacing"] = "time.n_times = 1 is the single time t_min"
    elif t["n_times"] == 2:
        out["time.spacing"] = "time.n_times = 2 gives t_min and t_max for either spacing"
    request = config.request
    if not request.wants("subsystem"):
        out["observables.bipartitions"] = ("no subsystem observable such as observables.entropy "
                                           "is requested (bipartitions are of S_E)")
    if not any(request.wants(kind) for kind in registry.RESOLVABLE):
        out["observables.resolved"] = ("no site or pair observable is requested (only those "
                                       "are resolved)")
    if not any(p.epsilon > 0 for p in cases):
        out["model.T_K"] = ("every case has epsilon = 0: no phonon bath (Eq. 15), so the "
                            "temperature enters nothing")
    if not any(p.flipflop > 0 for p in cases):
        out["model.flipflop_form"] = "every case has flipflop = 0 (no flip-flop term)"
    engine = engines.get(config.engine)(config.engine_options)
    out.update(
        {f"engine.{k}": why for k, why in engine.ignored_options(cases, config.request).items()}
    )
    return out


def _check_unused(config, cases, raw):
    schemas = {**SCHEMA, "engine": section_schema("engine", config.engine),
               "observables": section_schema("observables")}
    for key, why in unused_keys(config, cases, raw).items():
        section, name = key.split(".")
        value = _explicit(raw, section, name, schemas[section])
        if value is None and section == "model":
            swept = raw.get("sweep", {}).get(name) if isinstance(raw.get("sweep"), dict) else None
            value = swept if swept and any(v != _MODEL_DEFAULTS[name] for v in swept) else None
            key = f"sweep.{name}" if value is not None else key
        if value is not None:
            raise ConfigError(f"{key} = {_toml_value(value)} has no effect: {why}; remove it "
                              "(a setting that does nothing is refused, not ignored)")


def _apply_material(model, explicit, sweep):
    """With model.material set, the keys the user did not give (in [model] or [sweep])
    take the preset's Table I values; an explicit value that differs is logged once."""
    name = model["material"]
    if not name:
        return
    for key, value in material_values(name).items():
        if key in sweep:
            log.info("sweep.%s = %s overrides %s's %s", key, sweep[key], name, value)
        elif key not in explicit:
            model[key] = value
        elif model[key] != value:
            log.info("model.%s = %r overrides %s's %r", key, model[key], name, value)


def _check_times(t, explicit):
    if "values" in explicit and not t["values"]:
        raise ConfigError("time.values = []: give at least one time, or remove the key to use "
                          "t_min, t_max, n_times and spacing")
    if t["values"]:
        v = t["values"]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                   for x in v):
            raise ConfigError(f"time.values = {v!r}: expected finite numbers")
        if v[0] < 0 or any(b <= a for a, b in zip(v, v[1:])):
            raise ConfigError(f"time.values = {v!r}: times must be >= 0 and strictly increasing")
        t["values"] = [float(x) for x in v]
    elif t["t_max"] <= t["t_min"] and t["n_times"] > 1:
        raise ConfigError(f"time.t_max = {t['t_max']!r} <= time.t_min = {t['t_min']!r}: "
                          "the time grid must be increasing, set t_max > t_min")


def _check_engine(config, cases):
    obs = config.data["observables"]
    engine = engines.get(config.engine)
    request = config.request
    if not request.observables:
        every = ", ".join(f"observables.{n}" for n in registry.names())
        raise ConfigError(f"{every} are all false: nothing to compute; enable at least one")
    for name in request.observables:
        if not engine.provides(name):
            given = [n for n in registry.names() if engine.provides(n)]
            raise ConfigError(f"observables.{name} = true: engine {engine.name!r} does not "
                              f"compute it (it gives {given}); disable it or choose another "
                              "engine")
    for p in cases:
        if obs["bipartitions"] > p.N:
            raise ConfigError(f"observables.bipartitions = {obs['bipartitions']} > N = {p.N}: "
                              "use at most N (or 0 for all)")
    if config.ranks_per_realization != 1 and not engine.parallel:
        raise ConfigError(f"engine.ranks_per_realization = {config.ranks_per_realization}: engine "
                          f"{engine.name!r} runs one realization per rank; set it to 1")
    engine(config.engine_options).check(cases, request)
