"""``python -m tlsmpi.bench WHAT [options]`` (console script ``tlsmpi-bench``)."""
import argparse
import importlib
import sys

BENCHMARKS = {
    "pairs": "tlsmpi.bench.pairs",
    "liouvillian": "tlsmpi.bench.liouvillian",
    "entropy": "tlsmpi.bench.entropy",
    "schedule": "tlsmpi.bench.schedule",
    "ed": "tlsmpi.bench.ed",
    "echo": "tlsmpi.bench.echo",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench", description=__doc__)
    parser.add_argument("what", choices=sorted(BENCHMARKS))
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(BENCHMARKS[args.what])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
