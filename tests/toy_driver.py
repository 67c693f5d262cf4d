"""``python -m toy_driver ARGS`` (from tests/): the tlsmpi runner with the toy engine and
the toy observable of docs/extending.md registered, the way a user's own driver script adds
an engine or an observable."""
import sys

import toy_engine  # noqa: F401  (registers engine.name = "toy")
import toy_observable  # noqa: F401  (registers observables.toy_population)
from tlsmpi import run

if __name__ == "__main__":
    sys.exit(run.main(sys.argv[1:]))
