"""No setting silently ignored (issue 19): every key of the configuration schema, set to
another valid value, either changes what the engine and the runner are given or is
refused; overrides of swept keys and of the time grid say what they replaced."""
import logging
import time
import tomllib

import numpy as np
import pytest

from tlsmpi import config, engines
from tlsmpi.errors import ConfigError

#: Base configurations the walk starts from: closed and open Engine 1, Engine 3 open, and
#: Engine 2 (its options need no PETSc to validate).
BASES = {
    "exact closed": {"model": {"N": 6}, "time": {"n_times": 5}, "ensemble": {"realizations": 2}},
    "exact open": {"model": {"N": 6, "epsilon": 1.0}, "time": {"n_times": 5},
                   "ensemble": {"realizations": 2}},
    "ed open": {"model": {"N": 4, "epsilon": 1.0, "flipflop": 1.0}, "time": {"n_times": 5},
                "ensemble": {"realizations": 2}, "engine": {"name": "ed", "trajectories": 20}},
    "liouvillian": {"model": {"N": 4, "epsilon": 1.0}, "time": {"n_times": 5},
                    "ensemble": {"realizations": 2}, "engine": {"name": "liouvillian"}},
}


def other_value(section, key, current):
    """A valid value different from ``current`` for ``section.key``."""
    special = {("model", "material"): "BK7", ("model", "N"): 5, ("model", "flipflop_form"): "xx",
               ("time", "spacing"): "linear", ("time", "values"): [0.5, 1.0, 2.0],
               ("engine", "name"): "ed" if current != "ed" else "exact",
               ("engine", "method"): "mfn" if current != "mfn" else "auto",
               ("engine", "ranks_per_realization"): 2, ("model", "geometry"): "open",
               ("model", "couplings"): "tensor", ("model", "d_min_nm"): 0.8,
               ("model", "eps_max"): 0.5,
               ("initial", "state"): "ground", ("initial", "axis"): "y",
               ("initial", "select"): "sites", ("initial", "sites"): [1],
               ("protocol", "kind"): "hahn", ("protocol", "axis"): "y",
               ("protocol", "select"): "sites", ("protocol", "sites"): [1],
               ("protocol", "pulse_times"): [1.0, 2.0]}
    if (section, key) in special:
        return special[section, key]
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return current + 1
    if isinstance(current, float):
        return current * 1.5 + 0.25
    raise AssertionError(f"no other value known for {section}.{key} = {current!r}")


def seen(cfg):
    """What the engine and the runner are given: the disorder and initial state of every
    case's first realization, the times, the request, the engine's options and the
    runner's settings."""
    cases = cfg.cases()
    draws = [cfg.realization(p, 0) for p in cases]
    return {"params": cases,
            "realizations": [{k: getattr(d, k) for k in ("positions", "eps", "Delta", "g", "D",
                                                          "theta", "phi", "nu", "J", "Y", "f",
                                                          "radius")}
                             for d in draws],
            "times": cfg.times, "request": cfg.request, "engine": cfg.engine,
            "options": cfg.engine_options, "ranks": cfg.ranks_per_realization,
            "R": cfg.realizations, "save_disorder": cfg.section("observables")["save_disorder"],
            "output": cfg.section("output")}


def differs(a, b):
    if isinstance(a, dict):
        return a.keys() != b.keys() or any(differs(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and not hasattr(a, "_fields"):
        return len(a) != len(b) or any(differs(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.shape != b.shape or not np.array_equal(a, b)
    return a != b


def all_keys(base):
    """(section, key) of every key the schema knows for ``base``'s engine."""
    keys = [(s, k) for s, table in config.SCHEMA.items() for k in table]
    name = base.get("engine", {}).get("name", "exact")
    keys += [("engine", k) for k in engines.get(name).option_schema]
    keys += [("sweep", k) for k in config.MODEL_KEYS]
    return keys


@pytest.mark.parametrize("base", sorted(BASES))
def test_every_key_changes_what_the_engine_sees_or_is_refused(base):
    raw = BASES[base]
    reference = seen(config.validate({s: dict(t) for s, t in raw.items()}))
    applied, refused = [], []
    for section, key in all_keys(raw):
        changed = {s: dict(t) for s, t in raw.items()}
        if section == "sweep":                  # a sweep of two values, one of them new
            current = config.validate(raw).data["model"].get(key)
            changed.setdefault("model", {}).pop(key, None)
            changed["sweep"] = {key: [current, other_value("model", key, current)]}
        else:
            current = config.validate(raw).data[section].get(key)
            changed.setdefault(section, {})[key] = other_value(section, key, current)
        try:
            cfg = config.validate(changed)
        except ConfigError as err:
            assert f"{section}.{key}" in str(err) or "engine" in str(err), (section, key, str(err))
            refused.append(f"{section}.{key}")
            continue
        assert differs(reference, seen(cfg)), f"{base}: {section}.{key} changed nothing"
        applied.append(f"{section}.{key}")
    print(f"{base}: {len(applied)} keys applied, refused: {refused}")
    assert len(applied) > len(refused)


@pytest.mark.parametrize("raw, key", [
    ({"model": {"N": 6}}, "model.T_K"),                               # no bath at epsilon = 0
    ({"model": {"N": 6}}, "model.flipflop_form"),                     # no flip-flop term
    ({"time": {"values": [1.0, 2.0]}}, "time.t_max"),                  # values give the times
    ({"time": {"n_times": 1}}, "time.spacing"),
    ({"observables": {"entropy": False}}, "observables.bipartitions"),
    ({"engine": {"name": "ed"}}, "engine.trajectories"),              # closed cases only
])
def test_a_setting_without_effect_is_refused_by_name(raw, key):
    section, name = key.split(".")
    value = {"T_K": 300.0, "flipflop_form": "xx", "t_max": 50.0, "spacing": "linear",
             "bipartitions": 2, "trajectories": 10}[name]
    raw = {s: dict(t) for s, t in raw.items()}
    raw.setdefault(section, {})[name] = value
    with pytest.raises(ConfigError, match=f"{key} = .* has no effect"):
        config.validate(raw)


def test_set_of_a_swept_key_replaces_the_sweep_and_says_so(tmp_path, caplog):
    toml = tmp_path / "sweep.toml"
    toml.write_text("[model]\nN = 4\n[time]\nn_times = 3\n[sweep]\nepsilon = [0.0, 1e-6, 1.0]\n")
    with caplog.at_level(logging.INFO, logger="tlsmpi"):
        cfg = config.load(str(toml), ["model.epsilon=1e-4"])
    assert [p.epsilon for p in cfg.cases()] == [1e-4]
    assert "--set model.epsilon = 0.0001 replaces the sweep sweep.epsilon = [0.0, 1e-06, 1.0]" \
        in caplog.text
    cfg = config.load(str(toml), ["sweep.N=[4, 6]"])
    assert sorted({p.N for p in cfg.cases()}) == [4, 6] and len(cfg.cases()) == 6
    with pytest.raises(ConfigError, match=r"gives both model.N = 5 and sweep.N = \[4, 6\]"):
        config.load(str(toml), ["model.N=5", "sweep.N=[4, 6]"])
    with caplog.at_level(logging.INFO, logger="tlsmpi"):
        cfg = config.load(str(toml), ["time.values=[1.0, 2.0]"])
    assert list(cfg.times) == [1.0, 2.0] and "replaces time.n_times = 3" in caplog.text


def test_resume_differences_name_every_key_with_both_values():
    a = config.load(None, ["model.N=5"]).to_toml()
    b = config.load(None, ["model.N=6", "model.eta=1e4", "time.n_times=9"]).to_toml()
    text = config.differences(a, b)
    assert text.startswith("3 key(s) differ")
    for part in ("model.N: file 5, given 6", "model.eta: file 100000.0, given 10000.0",
                 "time.n_times: file 71, given 9"):
        assert part in text, text


@pytest.mark.needs_mpi
@pytest.mark.parametrize("override, words", [
    ("time.n_times=100000000", "time.n_times"), ("ensemble.realizations=1000000000", "work items"),
    ("model.N=100000", "model.N")])
def test_huge_requests_are_refused_from_arithmetic(tmp_path, override, words):
    """The runner refuses a request of absurd size with one line and nothing on disk; the
    checks that refuse it (validation, the memory and work-list arithmetic, the file size)
    take under 2 s: nothing of the requested size is built.  They are timed in this process,
    since MPI start-up on a loaded machine varies by seconds."""
    from conftest import run_tlsmpi
    from tlsmpi.run import resources
    from tlsmpi.runfile import writer
    res = run_tlsmpi(["--set", override, "--out", tmp_path / "x.h5"])
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and words in lines[0], res.stderr
    assert not list(tmp_path.iterdir())
    t0 = time.perf_counter()
    cfg = config.load(None, [override])
    engine = engines.get(cfg.engine)(cfg.engine_options)
    with pytest.raises(ConfigError, match=words):
        resources.check_memory(engine, cfg, on_node=1)
    writer.file_size_estimate(cfg, engine.outputs(cfg.request))
    elapsed = time.perf_counter() - t0
    print(f"{override}: checks took {elapsed:.3f} s: {lines[0]}")
    assert elapsed < 2.0


def test_a_key_given_at_its_default_is_never_refused():
    """Writing a default out (also an engine's own option) changes nothing and is allowed:
    only a value that would be ignored is refused."""
    for raw in ({"model": {"N": 6, "T_K": 0.0}}, {"engine": {"name": "ed", "trajectories": 0}},
                {"time": {"n_times": 1, "spacing": "log"}}):
        config.validate(raw)


def test_every_key_has_a_one_line_description():
    """tlsmpi config prints a description of every key: the schema's, every model key,
    every registered engine's own options (the toy engine of docs/extending.md included)."""
    import toy_engine  # noqa: F401  (registers "toy")
    keys = [(s, k, "exact") for s, table in config.SCHEMA.items() for k in table]
    keys += [("sweep", k, "exact") for k in config.MODEL_KEYS]
    keys += [("engine", k, name) for name in engines.names()
             for k in engines.get(name).option_schema]
    missing, bad = [], []
    for section, key, engine in keys:
        try:
            text = config.description(section, key, engine)
        except KeyError:
            missing.append(f"{section}.{key} ({engine})")
            continue
        if not text or "\n" in text or len(text) > 160:
            bad.append(f"{section}.{key}")
    assert not missing and not bad, (missing, bad)
    assert "toy" in engines.names() and len(keys) > 30
    assert not set(config.DESCRIPTIONS["model"]) ^ set(config.SCHEMA["model"])


def test_config_command_prints_every_key_value_default_and_description():
    from conftest import run_tlsmpi
    res = run_tlsmpi(["config", "--set", 'engine.name="ed"', "--set", "engine.trajectories=40",
                      "--set", "model.N=8"], module="tlsmpi.command")
    assert res.returncode == 0, res.stderr
    printed, section = {}, None
    for line in res.stdout.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line:
            printed[section, line.split(" = ")[0]] = line
    cfg = config.load(None, ['engine.name="ed"', "engine.trajectories=40", "model.N=8"])
    assert set(printed) == {(s, k) for s, table in cfg.data.items() for k in table}
    for (section, key), line in printed.items():
        assert config.description(section, key, "ed") in line, line
    assert printed["model", "N"].startswith("N = 8 ") and "(default 16)" in printed["model", "N"]
    assert "(default 0)" in printed["engine", "trajectories"]
    assert "values of model.epsilon" in printed["sweep", "epsilon"]
    bad = run_tlsmpi(["config", "--set", "model.N=1"], module="tlsmpi.command")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "model.N" in bad.stderr


def test_the_stored_text_leaves_out_quiet_keys_at_their_defaults():
    """config.QUIET_KEYS is the one rule of the stored TOML text: a quiet key at its
    default is not written and every other key is; a section of quiet keys only
    ([initial], [protocol]: the paper's experiment) is left out with its header at its
    defaults and written whole otherwise; the text reads back to the same configuration."""
    default = config.load(None)
    text = tomllib.loads(default.to_toml())
    assert "initial" not in text and "protocol" not in text
    assert text["sweep"] == default.data["sweep"]
    assert "values" not in text["time"] and "first_realization" not in text["ensemble"]
    assert set(text["model"]) == set(default.data["model"]) - set(config.QUIET_KEYS["model"])
    assert set(text["observables"]) == set(default.data["observables"])
    echo = config.load(None, ['protocol.kind="hahn"', "ensemble.first_realization=4"])
    text = tomllib.loads(echo.to_toml())
    assert set(text["protocol"]) == set(echo.data["protocol"]) and "initial" not in text
    assert text["ensemble"]["first_realization"] == 4
    for cfg in (default, echo):
        assert config.validate(tomllib.loads(cfg.to_toml())).data == cfg.data
