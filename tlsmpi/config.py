"""Run configuration: TOML files, ``--set`` overrides, validation, resolved TOML text.

A configuration has the tables below; every key is optional and defaults to the
paper's numerics (Sec. IV A).  ``[sweep]`` lists model parameters to scan: the run
computes every combination (a "case"), with the same disorder realizations in each.

    [model]        N, material, W_eV, Dbar, nD, gamma, rho_g_cm3, vL_km_s, vT_km_s,
                   L0_nm, eta, epsilon, T_K, flipflop, flipflop_form, geometry, film_nm,
                   d_min_nm, couplings, eps_min, eps_max
                   (tlsmpi.physics.model.ModelParams); with material = "SiO2" | "BK7" | "PMMA"
                   the keys not given take the Table I values, given ones override
    [time]         t_min, t_max, n_times, spacing = "log" | "linear"; or values = [...]
    [ensemble]     realizations, seed, first_realization
    [engine]       name (a registered engine: tlsmpi.engines), ranks_per_realization,
                   and the engine's own options (its ``options`` table)
    [observables]  one boolean per registered observable (tlsmpi.physics.observables:
                   concurrence, entropy, ...), bipartitions, resolved, save_disorder
    [initial]      state, theta, phi, angle, axis and the selection of the rotated TLSs
                   (select, nu_min, nu_max, sites): tlsmpi.physics.pulses.InitialState
    [protocol]     kind, n_pulses, pulse_times, axis and the selection of the pulsed TLSs
                   (select, nu_min, nu_max, sites): tlsmpi.physics.pulses.Protocol
    [sweep]        <model key> = [values...]
    [output]       checkpoint_seconds, progress_seconds
"""
import copy
from dataclasses import dataclass, fields
import itertools
import logging
import math
import sys

import numpy as np

from . import engines
from .errors import ConfigError
from .physics.model import (COUPLINGS, GEOMETRIES, MATERIALS, ModelParams, material_values,
                            sample)
from .physics import observables as registry
from .physics.pulses import AXES, KINDS, SELECTIONS, STATES, InitialState, Protocol, Selection
from .runfile.settings import differences, differing_keys, toml_value as _toml_value  # noqa: F401

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib

MODEL_KEYS = {f.name: f.type for f in fields(ModelParams) if f.name != "material"}
_MODEL_DEFAULTS = {f.name: f.default for f in fields(ModelParams) if f.name != "material"}
log = logging.getLogger("tlsmpi")

#: The keys of a site selection (`tlsmpi.physics.pulses.Selection`), in [initial] and [protocol].
SELECTION_SCHEMA = {
    "select": ("all", lambda v: v in SELECTIONS, f"one of {list(SELECTIONS)}"),
    "nu_min": (0.0, lambda v: v >= 0, "a number >= 0 (hbar nu in units of W)"),
    "nu_max": (0.0, lambda v: v >= 0, "a number >= 0 (hbar nu in units of W)"),
    "sites": ([], lambda v: all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                for i in v) and len(set(v)) == len(v),
              "a list of distinct TLS indices >= 0"),
}

#: section -> key -> (default, check, what the check wants)
SCHEMA = {
    "model": {"material": ("", lambda v: v == "" or v in MATERIALS,
                           f"one of {sorted(MATERIALS)} (or \"\" for the paper's numerics)"),
              **{k: (v, None, None) for k, v in _MODEL_DEFAULTS.items()},
              "geometry": ("periodic", lambda v: v in GEOMETRIES, f"one of {list(GEOMETRIES)}"),
              "couplings": ("gaussian", lambda v: v in COUPLINGS, f"one of {list(COUPLINGS)}")},
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
    "initial": {"state": ("random", lambda v: v in STATES, f"one of {list(STATES)}"),
                "theta": (0.0, None, None), "phi": (0.0, None, None),
                "angle": (0.0, None, None),
                "axis": ("x", lambda v: v in AXES, f"one of {list(AXES)}"),
                **SELECTION_SCHEMA},
    "protocol": {"kind": ("free", lambda v: v in KINDS, f"one of {list(KINDS)}"),
                 "n_pulses": (1, lambda v: v >= 1, "an integer >= 1"),
                 "pulse_times": ([], None, None),
                 "axis": ("x", lambda v: v in AXES, f"one of {list(AXES)}"),
                 **SELECTION_SCHEMA},
    "sweep": {},
    "output": {"checkpoint_seconds": (60.0, lambda v: v > 0, "a number > 0"),
               "progress_seconds": (10.0, lambda v: v > 0, "a number > 0")},
}

#: Keys left out of the stored TOML text at their defaults (`Config.to_toml`), so that
#: files written before they existed keep their text: an empty time.values, the keys added
#: after run files of layout 2 were written, and every key of [initial] and [protocol] (the
#: paper's experiment).  A section of such keys only is one unit: left out with its header
#: when all its keys are at their defaults, else written whole.
QUIET_KEYS = {"time": ("values",), "ensemble": ("first_realization",),
              "model": ("geometry", "film_nm", "d_min_nm", "couplings", "eps_min", "eps_max"),
              "initial": tuple(SCHEMA["initial"]), "protocol": tuple(SCHEMA["protocol"])}


_SELECTION_LINES = {
    "select": 'which TLSs: "all", "band" (nu_min <= hbar nu_i <= nu_max) or "sites" (by index)',
    "nu_min": 'lower edge of the band of hbar nu_i (Eq. 11) in units of W (select = "band")',
    "nu_max": 'upper edge of the band of hbar nu_i (Eq. 11) in units of W (select = "band")',
    "sites": 'indices of the selected TLSs, 0 .. N-1 (select = "sites")',
}


def _observable_description(name):
    """The one line of the registered observable ``name`` (also one registered later)."""
    o = registry.get(name)
    return f"store {o.long_name} ({o.kind} observable)"


#: section -> key -> one line for ``tlsmpi config`` and docs/configuration.md; an engine's
#: own keys are described by its ``option_docs`` (`tlsmpi.engines.Engine`).
DESCRIPTIONS = {
    "model": {
        "material": 'Table I preset of the keys not given: "SiO2", "BK7", "PMMA", or "" (the '
                    "paper's numerics)",
        "N": "number of TLSs per realization (>= 2)",
        "W_eV": "physical value of the energy unit W, in eV",
        "Dbar": "typical tunnelling amplitude Delta-bar, in units of W (Eq. 6)",
        "nD": "decades spanned by the tunnelling amplitudes Delta (Eq. 6)",
        "gamma": "TLS-phonon coupling gamma, in units of W",
        "rho_g_cm3": "mass density of the glass, in g/cm^3",
        "vL_km_s": "longitudinal sound velocity, in km/s",
        "vT_km_s": "transverse sound velocity, in km/s (Debye average, Eq. A9)",
        "L0_nm": "mean TLS spacing of the glass, rho_TLS^(-1/3), in nm: the periodic cube has "
                 "L = L0 (N / (eps_max - eps_min))^(1/3)",
        "eta": "scale factor of the couplings, J -> eta J (Eq. 25)",
        "epsilon": "scale factor of the phonon rates, Y -> epsilon Y (Eq. 25); 0: unitary",
        "T_K": "bath temperature in K (Bose factors f_T); needs epsilon > 0",
        "flipflop": "flip-flop coupling K_ij = flipflop * J_ij (footnote 67; liouvillian, ed)",
        "geometry": 'cell of the TLSs: "periodic" cube (Sec. IV A), "open" cube, or "film" '
                    "(periodic in x, y; thickness film_nm)",
        "film_nm": 'thickness of the film in nm (only with geometry = "film"; its side in x, y '
                   "keeps the density 1/L0^3)",
        "d_min_nm": "minimum TLS separation in nm (0 = none: independent uniform positions); "
                    "random sequential addition",
        "couplings": '"gaussian": D_ij standard normal (Sec. IV A); "tensor": Eq. (A27) from '
                     "random elastic-dipole tensors with v_L, v_T",
        "eps_min": "lower edge of the asymmetry window in units of W: eps ~ U(eps_min, eps_max) "
                   "at the glass's density, the box grows to hold N (docs/echo.md section 7)",
        "eps_max": "upper edge of the asymmetry window in units of W (<= 1; 1 with eps_min = 0: "
                   "the paper's eps ~ U(0, W), Eq. 4)",
        "flipflop_form": '"exchange": K_ij (S+_i S-_j + h.c.); "xx": 2 K_ij S^x_i S^x_j per pair',
    },
    "time": {
        "t_min": "first output time, in units of hbar/W",
        "t_max": "last output time, in units of hbar/W",
        "n_times": "number of output times",
        "spacing": 'spacing of the output times: "log" or "linear"',
        "values": "explicit output times (non-empty, increasing), instead of the grid keys",
    },
    "ensemble": {
        "realizations": "disorder realizations per case",
        "seed": "realization r draws from numpy.random.default_rng([r, seed])",
        "first_realization": "realization index of row 0: rows are realizations first_realization "
                             "... + realizations - 1 (files pooled by post)",
    },
    "engine": {
        "name": 'the engine: "exact", "liouvillian", "ed" or a registered one',
        "ranks_per_realization": "ranks sharing one realization (parallel engines only)",
    },
    "observables": {
        **{name: _observable_description(name) for name in registry.names()},
        "bipartitions": "bubbles S_E is averaged over: 0 all N, n a reproducible subset of n",
        "save_disorder": "store the disorder (nu, J, Y, ...) of every realization",
        "resolved": "also store each site / pair observable per site / pair "
                    "(<name>_resolved, pairs i < j row-major)",
    },
    "sweep": {},
    "output": {
        "checkpoint_seconds": "interval of each rank's writes (a kill loses at most this)",
        "progress_seconds": "interval of the progress log line (tlsmpi.simulate: of its bar)",
    },
    "initial": {
        "state": 'state at t = 0 before the rotation: "random" (Eq. 26), "thermal" (populations '
                 'at model.T_K), "ground" or "bloch" (theta, phi)',
        "theta": 'polar angle of every Bloch vector in degrees, 0 = ground (state = "bloch")',
        "phi": 'azimuth of every Bloch vector in degrees (state = "bloch")',
        "angle": "rotation at t = 0 in degrees of the selected TLSs (90: the pi/2 pulse of an "
                 "echo; 0: none)",
        "axis": 'axis of the rotation at t = 0: "x" or "y"',
        **{k: f"{line}; the rotated TLSs" for k, line in _SELECTION_LINES.items()},
    },
    "protocol": {
        "kind": 'pi pulses: "free" (none), "hahn" (at t/2), "cpmg" (n_pulses at (2k-1)t/2n) or '
                '"pulses" (at pulse_times)',
        "n_pulses": 'number of pi pulses of a CPMG echo (kind = "cpmg")',
        "pulse_times": 'times of the pi pulses in hbar/W, increasing, > 0 (kind = "pulses")',
        "axis": 'axis of the pi pulses: "x" or "y"',
        **{k: f"{line}; the pulsed TLSs" for k, line in _SELECTION_LINES.items()},
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


def description(section, key, engine="exact"):
    """The one-line description of ``section.key``; an engine's own keys from its
    ``option_docs``, a swept key from its model key."""
    if section == "engine" and key not in SCHEMA["engine"]:
        return engines.get(engine).option_docs[key]
    if section == "sweep" and key in DESCRIPTIONS["model"]:
        return f"values of model.{key} to scan, one case each"
    if section == "observables" and key in registry.names():
        return _observable_description(key)
    return DESCRIPTIONS[section][key]


def describe(config):
    """``tlsmpi config``: the resolved configuration as TOML with, after every key, its
    default (where it differs) and its description."""
    lines = []
    schema = {**SCHEMA, "engine": section_schema("engine", config.engine),
              "observables": section_schema("observables")}
    for section, table in config.data.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            text = f"{key} = {_toml_value(value)}"
            default = schema[section][key][0] if key in schema[section] else None
            note = ("" if section == "sweep" or default == value else
                    f"(default {_toml_value(default)}) ")
            lines.append(f"{text:<28} # {note}{description(section, key, config.engine)}")
        lines.append("")
    return "\n".join(lines)


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
                                bipartitions=o["bipartitions"], resolved=o["resolved"],
                                initial=self.initial, protocol=self.protocol)

    @property
    def initial(self):
        """The initial state of [initial] (`tlsmpi.physics.pulses.InitialState`)."""
        i = self.data["initial"]
        return InitialState(i["state"], i["theta"], i["phi"], i["angle"], i["axis"],
                            _selection(i))

    @property
    def protocol(self):
        """The pulse protocol of [protocol] (`tlsmpi.physics.pulses.Protocol`)."""
        p = self.data["protocol"]
        return Protocol(p["kind"], p["n_pulses"], tuple(p["pulse_times"]), p["axis"],
                        _selection(p))

    def realization(self, params, r):
        """The realization of row r of the case ``params`` (realization
        first_realization + r, `sample`) with the initial state of [initial]."""
        return self.initial.apply(sample(params, self.seed, self.first_realization + r))

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
        """The resolved configuration as TOML text (stored in every output file).
        The `QUIET_KEYS` at their defaults are left out: files written before those keys
        existed keep their text (a missing key reads as its default: `defaults`)."""
        lines = []
        for name, table in self.data.items():
            keys = _stored_keys(name, table)
            if keys is not None:
                lines += [f"[{name}]", *(f"{k} = {_toml_value(table[k])}" for k in keys), ""]
        return "\n".join(lines)


def _stored_keys(name, table):
    """The keys of section ``name`` that the stored TOML text writes, or None for no
    section at all (`QUIET_KEYS`: a section of quiet keys only is all or nothing)."""
    quiet = QUIET_KEYS.get(name, ())
    silent = {k for k in table if k in quiet and table[k] == SCHEMA[name][k][0]}
    if table and set(table) <= set(quiet):
        return None if silent == set(table) else list(table)
    return [k for k in table if k not in silent]


def _selection(table):
    return Selection(table["select"], table["nu_min"], table["nu_max"], tuple(table["sites"]))


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

    ``path`` is a TOML file, or a nested dict shaped like the TOML (``{"model": {"N":
    12}}``, used as given: the default job's values do not apply).  ``overrides`` (``--set
    section.key=value`` texts, or a dict ``{"section.key": value}``) replace its values.  A
    model key set on the command line while the file sweeps it replaces the sweep by
    that one value, and ``--set sweep.K=[...]`` replaces the file's ``model.K``; likewise
    ``--set time.values=[...]`` replaces the file's time grid and a grid key replaces its
    ``time.values``: each with a log line naming what was replaced, as when a key is
    given twice on the command line (the later wins).  ``model.K`` (not at its default)
    and ``sweep.K`` given together in one layer (file or command line) are refused.
    """
    raw = _read(path)
    source = ("the given configuration" if isinstance(path, dict) else
              f"config file {path!r}" if path is not None else "the default job")
    _check_sweep_conflicts(raw, source)
    given = {}
    for section, name, value in _override_items(overrides):
        if (section, name) in given:
            log.info("--set %s.%s is given twice: the later %r replaces %r", section, name,
                     value, given[section, name])
        given[section, name] = value
    _check_sweep_conflicts(_nest(given), "the overrides" if isinstance(overrides, dict)
                           else "the command line")
    for (section, name), value in given.items():
        _override(raw, section, name, value, given, source)
    return validate(raw)


def _read(path):
    """The raw nested dict of ``path`` (`load`): a TOML file, a dict (copied) or, for
    None, the default job."""
    if isinstance(path, dict):
        return copy.deepcopy(path)
    if path is None:
        return default_job()
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
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


def _override(raw, section, name, value, given, source):
    """Set ``section.name`` = ``value`` in ``raw``, dropping (with a log line) the keys of
    ``source`` it replaces: a sweep of the key, the model key of a sweep, the time grid
    for time.values and time.values for a grid key (``given``: all overrides)."""
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


def _override_items(overrides):
    """(section, key, value) of ``--set`` texts or of a dict {"section.key": value}."""
    if not isinstance(overrides, dict):
        return [parse_override(text) for text in overrides]
    items = []
    for key, value in overrides.items():
        if not isinstance(key, str) or key.count(".") != 1:
            raise ConfigError(f"override {key!r}: expected a key \"section.key\", e.g. "
                              "{\"model.N\": 20}")
        items.append((*key.split("."), value))
    return items


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
    for section, table in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"unknown config section [{section}]: use one of {sorted(SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(f"config entry {section!r} must be a table [{section}]")
    data = {}
    for section in SCHEMA:
        table = dict(raw.get(section, {}))
        data[section] = (_validate_sweep(table) if section == "sweep" else
                         _validate_table(section, _schema_of(section, table), table))
    _check_times(data["time"], raw.get("time", {}))
    _apply_material(data["model"], raw.get("model", {}), data["sweep"])
    config = Config(data)
    try:
        cases = config.cases()
    except ValueError as err:
        raise ConfigError(f"{err}: fix the [model] or [sweep] value") from None
    _check_experiment(config, cases)
    _check_engine(config, cases)
    _check_unused(config, cases, raw)
    return config


def _schema_of(section, table):
    """The schema of ``section`` given its raw ``table``: [engine] with the named engine's
    own keys, [observables] with the observables registered by now."""
    if section == "engine":
        name = table.get("name", SCHEMA["engine"]["name"][0])
        if not isinstance(name, str):
            raise ConfigError(f"engine.name = {name!r}: expected a string, one of "
                              f"{engines.names()}")
        return section_schema("engine", name)
    if section == "observables":
        return section_schema("observables")
    return SCHEMA[section]


def _validate_sweep(table):
    """The [sweep] table checked: model keys only, each a non-empty list of values of the
    key's type (floats as float)."""
    out = {}
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
    return out


def _validate_table(section, schema, table):
    """Every key of ``schema`` from ``table`` or its default, checked for name, type,
    finiteness and range."""
    for key in table:
        if key not in schema:
            raise ConfigError(f"unknown key {section}.{key}: valid keys are {sorted(schema)}")
    out = {}
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
    return out


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
    out.update(_unused_experiment(config))
    thermal = config.data["initial"]["state"] == "thermal"
    if not thermal and not any(p.epsilon > 0 for p in cases):
        out["model.T_K"] = ("every case has epsilon = 0: no phonon bath (Eq. 15), so the "
                            "temperature enters nothing")
    if not any(p.flipflop > 0 for p in cases):
        out["model.flipflop_form"] = "every case has flipflop = 0 (no flip-flop term)"
    if not any(p.geometry == "film" for p in cases):
        out["model.film_nm"] = 'no case has geometry = "film" (film_nm is its thickness)'
    engine = engines.get(config.engine)(config.engine_options)
    out.update(
        {f"engine.{k}": why for k, why in engine.ignored_options(cases, config.request).items()}
    )
    return out


def _unused_selection(section, table, why):
    """The selection keys of ``section`` without effect: all of them (``why``) or those of
    the other kinds of selection."""
    keys = {"select": why, "nu_min": why, "nu_max": why, "sites": why}
    if why is None:
        band = f'{section}.select = "{table["select"]}" (the band is of select = "band")'
        keys = {"nu_min": band, "nu_max": band,
                "sites": f'{section}.select = "{table["select"]}" (sites are of select = '
                         '"sites")'}
        keep = {"band": ("nu_min", "nu_max"), "sites": ("sites",)}.get(table["select"], ())
        keys = {k: v for k, v in keys.items() if k not in keep}
    return {f"{section}.{k}": v for k, v in keys.items()}


def _unused_experiment(config):
    """The [initial] and [protocol] keys without effect (see `unused_keys`)."""
    i, p = config.data["initial"], config.data["protocol"]
    out = {}
    if i["state"] != "bloch":
        for key in ("theta", "phi"):
            out[f"initial.{key}"] = f'initial.state = "{i["state"]}" (angles are of "bloch")'
    rotated = None if i["angle"] else "initial.angle = 0 (no rotation at t = 0)"
    if rotated:
        out["initial.axis"] = rotated
    signal = "echo" in config.request.observables     # read on [initial]'s selection
    out.update(_unused_selection("initial", i, None if signal else rotated))
    pulsed = None if p["kind"] != "free" else 'protocol.kind = "free" (no pulses)'
    if pulsed:
        out["protocol.axis"] = pulsed
    if p["kind"] != "cpmg":
        out["protocol.n_pulses"] = f'protocol.kind = "{p["kind"]}" (n_pulses is of "cpmg")'
    if p["kind"] != "pulses":
        out["protocol.pulse_times"] = f'protocol.kind = "{p["kind"]}" (pulse_times is of "pulses")'
    out.update(_unused_selection("protocol", p, pulsed))
    return out


def _check_experiment(config, cases):
    """Refuse selections and pulse times that cannot be carried out."""
    for section in ("initial", "protocol"):
        table = config.data[section]
        if table["select"] == "band" and not table["nu_max"] > table["nu_min"]:
            raise ConfigError(f'{section}.select = "band" with {section}.nu_max = '
                              f"{table['nu_max']!r} <= nu_min = {table['nu_min']!r}: set "
                              "nu_max > nu_min (hbar nu in units of W)")
        if table["select"] == "sites":
            if not table["sites"]:
                raise ConfigError(f'{section}.select = "sites" with {section}.sites = []: '
                                  "give at least one TLS index")
            N = min(p.N for p in cases)
            if max(table["sites"]) >= N:
                raise ConfigError(f"{section}.sites = {table['sites']!r}: indices must be < N "
                                  f"= {N}")
    p = config.data["protocol"]
    v = p["pulse_times"]
    if p["kind"] == "pulses":
        if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                            and math.isfinite(x) for x in v) or v[0] <= 0 or any(
                b <= a for a, b in zip(v, v[1:])):
            raise ConfigError(f"protocol.pulse_times = {v!r}: give the pi pulses' times, "
                              "finite, > 0 and strictly increasing")
        p["pulse_times"] = [float(x) for x in v]


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
    protocol, initial = config.protocol, config.initial
    if not protocol.free and not engine.pulses:
        raise ConfigError(f'protocol.kind = "{protocol.kind}": engine {engine.name!r} cannot '
                          'apply pi pulses; use engine.name = "exact" (or "liouvillian")')
    if not engine.mixed_states and any(initial.mixed(p) for p in cases):
        raise ConfigError(f'initial.state = "thermal" at model.T_K > 0 is a mixed state: engine '
                          f"{engine.name!r} evolves state vectors; use engine.name = \"exact\" "
                          'or "liouvillian"')
    for p in cases:
        if obs["bipartitions"] > p.N:
            raise ConfigError(f"observables.bipartitions = {obs['bipartitions']} > N = {p.N}: "
                              "use at most N (or 0 for all)")
    if config.ranks_per_realization != 1 and not engine.parallel:
        raise ConfigError(f"engine.ranks_per_realization = {config.ranks_per_realization}: engine "
                          f"{engine.name!r} runs one realization per rank; set it to 1")
    engine(config.engine_options).check(cases, request)
