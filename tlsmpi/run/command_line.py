"""Ensemble runner: ``mpirun -n P python -m tlsmpi.run [CONFIG.toml] [options]``.

Its command line: arguments, solver options for PETSc and SLEPc, and the validation of
everything that needs no file (`prepare`).  The first paragraph is the description of
``--help``.
"""
import os

from .. import config as configuration
from .. import engines
from ..cli import Parser
from ..errors import ConfigError

def parser():
    """The command line of ``python -m tlsmpi.run`` (usage errors raise ConfigError)."""
    p = Parser(
        prog="python -m tlsmpi.run", description=__doc__.split("\n\n")[0], error_type=ConfigError,
        epilog="Options with a single dash (e.g. -mfn_tol 1e-10, -log_view) go to PETSc/SLEPc "
               "for engines that take solver options.  Exit status: 0 done, 1 crash, 2 bad "
               "input, 3 stopped (resume with --resume), 4 I/O error.  The configuration "
               "keys (SECTION.KEY of the TOML file and of --set): docs/configuration.md, or "
               "`tlsmpi config [CONFIG]` (every key with its value, default and a one-line "
               "description).")
    p.add_argument("config", nargs="?", help="TOML run configuration (default: the small default "
                                             "job)")
    p.add_argument("--out", help="output HDF5 file (default: CONFIG stem + .h5, or default.h5)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE",
                   help="override a configuration value, e.g. --set model.N=20 (repeatable; "
                        "the keys: docs/configuration.md, tlsmpi config)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --out (same configuration), or "
                            "grow a finished one: a larger ensemble.realizations adds "
                            "realizations (docs/output.md)")
    p.add_argument("--repair", action="store_true",
                   help="with --resume: recompute rows that fail verification (checksum, status)")
    p.add_argument("--strict-options", action="store_true",
                   help="make solver options that no solver used an error (default: a warning)")
    p.add_argument("--version", action="store_true", help="print the tlsmpi version and exit")
    p.add_argument("--check-install", action="store_true",
                   help="print what is installed (MPI, parallel HDF5, PETSc) and exit: 0 if a "
                        "run can start, 1 if something is missing")
    return p


def parse_args(argv):
    args, extra = parser().parse_known_args(argv)
    if args.repair and not args.resume:
        raise ConfigError("--repair goes with --resume: python -m tlsmpi.run ... --resume --repair")
    return args, extra


def split_solver_options(argv):
    """Separate PETSc/SLEPc options (``-name [value]``, a single dash) from tlsmpi's own
    arguments, so that option values are never taken for the config file."""
    ours, solver = [], []
    words = list(argv)
    while words:
        word = words.pop(0)
        if word.startswith("-") and not word.startswith("--") and word not in ("-h", "-") \
                and not _is_number(word):
            solver.append(word)
            if words and (not words[0].startswith("-") or _is_number(words[0])):
                solver.append(words.pop(0))
        else:
            ours.append(word)
    return ours, solver


def _is_number(word):
    try:
        float(word)
        return True
    except ValueError:
        return False


def prepare(argv):
    """Parse and validate everything that needs no file: (args, config, solver options)."""
    argv, solver = split_solver_options(argv)
    args, extra = parse_args(argv)
    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}: see python -m tlsmpi.run --help")
    cfg = configuration.load(args.config, args.overrides)
    engine = engines.get(cfg.engine)
    if solver and not engine.solver_options:
        raise ConfigError(f"unknown option(s) {' '.join(solver)}: engine {cfg.engine!r} takes no "
                          "solver options (see python -m tlsmpi.run --help)")
    if args.out is None:
        stem = os.path.splitext(os.path.basename(args.config))[0] if args.config else "default"
        args.out = stem + ".h5"
    return args, cfg, solver


def resume_command(args):
    words = ["python -m tlsmpi.run", args.config or ""] + [f"--set {o}" for o in args.overrides]
    return " ".join(w for w in words + ["--out", args.out, "--resume"] if w)
