"""Run configuration: TOML files, ``--set`` overrides, validation, resolved TOML text.

A configuration has the tables below; every key is optional and defaults to the
paper's numerics (Sec. IV A).  ``[sweep]`` lists model parameters to scan: the run
computes every combination (a "case"), with the same disorder realizations in each.

    [model]        N, material, W_eV, Dbar, nD, gamma, rho_g_cm3, vL_km_s, vT_km_s,
                   L0_nm, eta, epsilon, T_K, flipflop, flipflop_form
                   (tlsmpi.model.ModelParams); with material = "SiO2" | "BK7" | "PMMA"
                   the keys not given take the Table I values, given ones override
    [time]         t_min, t_max, n_times, spacing = "log" | "linear"; or values = [...]
    [ensemble]     realizations, seed
    [engine]       name (a registered engine: tlsmpi.engines), ranks_per_realization,
                   and the engine's own options (its ``options`` table)
    [observables]  concurrence, entropy, bipartitions, save_disorder
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
from .model import MATERIALS, ModelParams, material_values
from .observables import Request

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
                 "seed": (2021, lambda v: 0 <= v < 2**63, "an integer in [0, 2^63)")},
    "engine": {"name": ("exact", None, None),
               "ranks_per_realization": (1, lambda v: v >= 1, "an integer >= 1")},
    "observables": {"concurrence": (True, None, None), "entropy": (False, None, None),
                    "bipartitions": (0, lambda v: v >= 0, "an integer >= 0 (0 = all N bubbles)"),
                    "save_disorder": (True, None, None)},
    "sweep": {},
    "output": {"checkpoint_seconds": (60.0, lambda v: v > 0, "a number > 0"),
               "progress_seconds": (10.0, lambda v: v > 0, "a number > 0")},
}

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
    def seed(self):
        return self.data["ensemble"]["seed"]

    @property
    def realizations(self):
        return self.data["ensemble"]["realizations"]

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
        return Request(concurrence=o["concurrence"], entropy=o["entropy"],
                       bipartitions=o["bipartitions"])

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
        """The resolved configuration as TOML text (stored in every output file)."""
        lines = []
        for name, table in self.data.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()
                      if not (name == "time" and k == "values" and v == [])]
            lines.append("")
        return "\n".join(lines)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


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
    """Read, merge and validate a configuration; ``path`` None gives the default job."""
    raw = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path!r} does not exist: check the path") from None
        except (PermissionError, IsADirectoryError, OSError) as err:
            raise ConfigError(f"config file {path!r} cannot be read ({err.strerror}): "
                              "check the path and its permissions") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path!r} is not valid TOML ({err}): fix the syntax") from None
    else:
        raw = default_job()
    for text in overrides:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})[name] = value
    return validate(raw)


def default_job():
    """The small default job: N = 16, 24 realizations, closed (epsilon = 0) and open (epsilon = 1)."""
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
                raise ConfigError(f"engine.name = {name!r}: expected a string, one of {engines.names()}")
            schema = {**schema, **engines.get(name).options}
        if section == "sweep":
            for key, values in table.items():
                if key not in MODEL_KEYS:
                    raise ConfigError(f"sweep.{key}: only model parameters can be swept, "
                                      f"one of {sorted(MODEL_KEYS)}")
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"sweep.{key} = {values!r}: expected a non-empty list of values")
                default = _MODEL_DEFAULTS[key]
                for v in values:
                    if not _type_ok(v, default):
                        raise ConfigError(f"sweep.{key} contains {v!r}: expected {_typename(default)}")
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
    return config


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
    if not (obs["concurrence"] or obs["entropy"]):
        raise ConfigError("observables.concurrence and observables.entropy are both false: "
                          "nothing to compute, enable at least one")
    engine = engines.get(config.engine)
    request = config.request
    for name in ("concurrence", "entropy"):
        if getattr(request, name) and name not in engine.observables:
            raise ConfigError(f"observables.{name} = true: engine {engine.name!r} computes only "
                              f"{list(engine.observables)}; disable it or choose another engine")
    for p in cases:
        if obs["bipartitions"] > p.N:
            raise ConfigError(f"observables.bipartitions = {obs['bipartitions']} > N = {p.N}: "
                              "use at most N (or 0 for all)")
    if config.ranks_per_realization != 1 and not engine.parallel:
        raise ConfigError(f"engine.ranks_per_realization = {config.ranks_per_realization}: engine "
                          f"{engine.name!r} runs one realization per rank; set it to 1")
    engine(config.engine_options).check(cases, request)
