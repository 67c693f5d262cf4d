"""The configuration text a run file stores (`tlsmpi.config.Config.to_toml`): TOML values
written out, and the keys in which two such texts differ (``--resume`` and ``post``
name them)."""
import math
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib


def toml_value(v):
    """A value as TOML text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def _flat(text):
    """{"section.key": value} of a resolved TOML text."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {"(the whole configuration)": "unreadable TOML"}
    return {f"{s}.{k}": v for s, t in table.items() for k, v in t.items()}


def differing_keys(a_toml, b_toml, defaults=None):
    """The sorted "section.key" names whose values differ between two resolved TOML texts;
    a key missing from a text counts as its value in ``defaults`` ({"section.key": value},
    e.g. a key added after a file was written), if given there."""
    a, b, d = _flat(a_toml), _flat(b_toml), defaults or {}
    missing = object()
    return sorted(k for k in set(a) | set(b)
                  if a.get(k, d.get(k, missing)) != b.get(k, d.get(k, missing)))


def differences(file_toml, given_toml, limit=8, names=("file", "given"), defaults=None):
    """'key: file X, given Y; ...' for every key whose value differs between two resolved
    TOML texts (at most ``limit`` shown, then how many more; ``names`` label the two;
    ``defaults`` as in `differing_keys`)."""
    a, b = _flat(file_toml), _flat(given_toml)
    keys = differing_keys(file_toml, given_toml, defaults)
    if not keys:
        return "the same values, in another text"

    def show(table, key):
        return toml_value(table[key]) if key in table else "(not set)"
    shown = [f"{k}: {names[0]} {show(a, k)}, {names[1]} {show(b, k)}" for k in keys[:limit]]
    more = f"; and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} key(s) differ: " + "; ".join(shown) + more
