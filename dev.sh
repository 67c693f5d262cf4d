#!/bin/sh
# tlsmpi developer entry point on Debian 12 / Ubuntu.
#   ./dev.sh run [ARGS]   install what is missing, then run a job under mpirun -n 2
#                         (no ARGS: the small default job, written to default.h5)
#   ./dev.sh test [ARGS]  install what is missing, run the linters (ruff, lint-imports: the
#                         layers of docs/architecture.md), then the test suite (pytest ARGS)
#   ./dev.sh test-nompi [ARGS]  a login node: pip venv from python3 (no MPI, numpy >= 2) with
#                         the test, notebook and docs extras: the tests that need neither MPI
#                         nor PETSc (the rest skip, with the reason; tests/test_docs.py builds
#                         the documentation with -W), then the tlsmpi command on a run file
#   ./dev.sh bench WHAT   install what is missing, then run a benchmark (pairs, liouvillian, entropy,
#                         schedule, ed, echo)
#   ./dev.sh python ...   the project's interpreter, with the environment set up
set -eu
cd "$(dirname "$0")"
VENV=${TLSMPI_VENV:-$PWD/.venv}
PKGS="python3-venv python3-pip python3-mpi4py python3-h5py-mpi python3-petsc4py python3-slepc4py python3-scipy python3-matplotlib python3-pytest python3-mpmath python3-sympy python3-threadpoolctl python3-xarray python3-h5netcdf openmpi-bin"
PETSC_PY=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real/lib/python3/dist-packages
SLEPC_PY=/usr/lib/slepcdir/slepc3.18/x86_64-linux-gnu-real/lib/python3/dist-packages

setup() {
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        echo "tlsmpi: installing Debian packages:$missing"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "tlsmpi: creating $VENV from /usr/bin/python3 (with system site packages)"
        /usr/bin/python3 -m venv --system-site-packages "$VENV"
    fi
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf '%s\n%s\n' "$PETSC_PY" "$SLEPC_PY" > "$site/tlsmpi-petsc-slepc.pth"
    if ! "$VENV/bin/python" -m pip show -q tlsmpi >/dev/null 2>&1; then
        echo "tlsmpi: installing tlsmpi into $VENV (editable)"
        "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
    fi
}

pip_leg() {
    # The machine's default python3 (not /usr/bin/python3): a plain venv from PyPI, as on a
    # login node.  TLSMPI_PIP_VENV (default .venv-pip) is made on first use.
    pvenv=${TLSMPI_PIP_VENV:-$PWD/.venv-pip}
    if [ ! -x "$pvenv/bin/python" ]; then
        echo "tlsmpi: creating $pvenv from $(command -v python3) (plain venv, packages from PyPI)"
        python3 -m venv "$pvenv"
    fi
    "$pvenv/bin/python" -m pip install -q --upgrade '.[test,notebook,docs]'
    "$pvenv/bin/python" - <<'PY'
import importlib.util, sys
import numpy
print(f"tlsmpi: pip venv: Python {sys.version.split()[0]}, numpy {numpy.__version__}, mpi4py "
      f"{'present' if importlib.util.find_spec('mpi4py') else 'absent'}")
if int(numpy.__version__.split(".")[0]) < 2 and sys.version_info >= (3, 9):
    sys.exit("tlsmpi: error: the pip venv has numpy < 2; this leg is the numpy 2 check")
PY
    status=0
    "$pvenv/bin/python" -m pytest -rs "$@" || status=$?
    if [ "$status" = 5 ]; then
        echo "tlsmpi: error: pytest collected no tests in the pip venv"; exit 1
    fi
    [ "$status" = 0 ] || exit "$status"
    # the login-node path end to end: a run file made with MPI, read and plotted without it
    if [ -x "$VENV/bin/python" ] && [ $# -eq 0 ]; then
        work=$(mktemp -d)
        mpi_env
        "$VENV/bin/python" -m tlsmpi.run run/quick.toml --out "$work/quick.h5" >/dev/null
        "$pvenv/bin/tlsmpi" post all "$work/quick.h5" --outdir "$work/figs" --boot 20 >/dev/null
        "$pvenv/bin/tlsmpi" check "$work/quick.h5" >/dev/null
        "$pvenv/bin/tlsmpi" config run/quick.toml | grep -q '^N = 16 ' \
            || { echo "tlsmpi: error: tlsmpi config run/quick.toml does not print N = 16"; exit 1; }
        status=0
        "$pvenv/bin/python" -m tlsmpi.run --out "$work/refused.h5" 2>"$work/err" || status=$?
        if [ "$status" != 2 ] || [ "$(wc -l < "$work/err")" != 1 ] || [ -e "$work/refused.h5" ]; then
            echo "tlsmpi: error: without mpi4py, python -m tlsmpi.run should exit 2 with one line"
            cat "$work/err"; exit 1
        fi
        echo "tlsmpi: pip venv: tlsmpi post all made $(ls "$work/figs" | wc -l) figure files; tlsmpi.run without mpi4py: $(cat "$work/err")"
        rm -rf "$work"
    fi
}

lint() {
    # The linters of the [dev] extra (setup.cfg), installed into the venv on first use by
    # name: installing the extra itself would pull tlsmpi's dependencies from PyPI into the
    # venv (a serial h5py wheel over Debian's MPI build: every mpirun run then refused).
    if [ ! -x "$VENV/bin/ruff" ] || [ ! -x "$VENV/bin/lint-imports" ]; then
        echo "tlsmpi: installing the linters (ruff, import-linter) into $VENV"
        "$VENV/bin/python" -m pip install -q 'ruff>=0.4' 'import-linter>=2.1'
    fi
    "$VENV/bin/ruff" check -q tlsmpi tests || { echo "tlsmpi: error: ruff check failed"; exit 1; }
    out=$("$VENV/bin/lint-imports" --no-logo --no-cache 2>&1) \
        || { echo "$out"; echo "tlsmpi: error: lint-imports: a layer contract is broken"; exit 1; }
}

mpi_env() {
    # Open MPI refuses root without these; tests start 3 ranks on 2 cores.
    if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        setup; mpi_env
        if [ $# -eq 0 ]; then set -- --out default.h5 --overwrite; fi
        exec mpirun -n 2 "$VENV/bin/python" -m tlsmpi.run "$@" ;;
    test)
        setup; lint; mpi_env
        exec "$VENV/bin/python" -m pytest "$@" ;;
    test-nompi)
        pip_leg "$@" ;;
    bench)
        setup; mpi_env
        exec "$VENV/bin/python" -m tlsmpi.bench "$@" ;;
    python)
        setup; mpi_env
        exec "$VENV/bin/python" "$@" ;;
    *)
        sed -n '2,13p' "$0"; exit 2 ;;
esac
