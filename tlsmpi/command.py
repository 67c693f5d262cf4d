"""The ``tlsmpi`` command (console script of the pip install)::

    tlsmpi run [CONFIG.toml] [options]      = python -m tlsmpi.run (also under mpirun)
    tlsmpi post [WHAT] FILE... [options]    = python -m tlsmpi.post
    tlsmpi check FILE... [options]          = python -m tlsmpi.post check
    tlsmpi bench WHAT [options]             = python -m tlsmpi.bench
    tlsmpi config [CONFIG.toml] [--set SECTION.KEY=VALUE ...]
                                            the resolved configuration: every key with its
                                            value, its default and what it means

Each command takes the options of its ``python -m`` form (``tlsmpi COMMAND --help``) and
exits with its status (docs/reliability.md).
"""
import sys

from .cli import Parser, UsageError, wants_help
from .errors import EXIT_INPUT, EXIT_OK, ConfigError

COMMANDS = ("run", "post", "check", "bench", "config")


def config_main(argv):
    """``tlsmpi config``: print `tlsmpi.config.describe` of the resolved configuration."""
    from . import config
    parser = Parser(prog="tlsmpi config", description="Print the resolved configuration: every "
                    "key with its value, its default where it differs, and a one-line "
                    "description (docs/configuration.md).")
    parser.add_argument("config", nargs="?", help="TOML run configuration (default: the small "
                                                  "default job)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override a value, as for tlsmpi run")
    try:
        args = parser.parse_args(argv)
        print(config.describe(config.load(args.config, args.overrides)))
    except (UsageError, ConfigError) as err:
        print(f"tlsmpi: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def main(argv=None):
    """Dispatch ``tlsmpi COMMAND ...`` and return the command's exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        if argv and wants_help(argv[:1]):
            print(__doc__.split("\n\n")[1].replace("::", ""))
            return EXIT_OK
        given = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"tlsmpi: error: {given}: use one of {', '.join(COMMANDS)} (tlsmpi --help)",
              file=sys.stderr)
        return EXIT_INPUT
    what, rest = argv[0], argv[1:]
    if what == "run":
        from .run import main as run
        return run(rest)
    if what in ("post", "check"):
        from .post import main as post
        return post(rest if what == "post" else ["check", *rest])
    if what == "bench":
        from .bench.__main__ import main as bench
        return bench(rest)
    return config_main(rest)


if __name__ == "__main__":
    sys.exit(main())
