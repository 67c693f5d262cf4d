"""Engines: one disorder realization in, observables out (docs/architecture.md).

The public registry API is `register`, `get`, `names` and the base class `Engine`; the
built-in engines are `exact` (Engine 1), `liouvillian` (Engine 2) and `ed` (Engine 3).
"""
from .base import BUILTIN, Engine, Interrupted, get, names, register

__all__ = ["BUILTIN", "Engine", "Interrupted", "get", "names", "register"]
