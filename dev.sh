#!/bin/sh
# tlsmpi developer entry point on Debian 12 / Ubuntu.
#   ./dev.sh run [ARGS]   install what is missing, then run a job under mpirun -n 2
#                         (no ARGS: the small default job, written to default.h5)
#   ./dev.sh test [ARGS]  install what is missing, then run the whole test suite (pytest ARGS)
#   ./dev.sh bench WHAT   install what is missing, then run a benchmark (pairs, liouvillian, entropy)
#   ./dev.sh python ...   the project's interpreter, with the environment set up
set -eu
cd "$(dirname "$0")"
VENV=${TLSMPI_VENV:-$PWD/.venv}
PKGS="python3-venv python3-pip python3-mpi4py python3-h5py-mpi python3-petsc4py python3-slepc4py python3-scipy python3-matplotlib python3-pytest python3-mpmath python3-xarray python3-h5netcdf openmpi-bin"
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
        setup; mpi_env
        exec "$VENV/bin/python" -m pytest "$@" ;;
    bench)
        setup; mpi_env
        exec "$VENV/bin/python" -m tlsmpi.bench "$@" ;;
    python)
        setup; mpi_env
        exec "$VENV/bin/python" "$@" ;;
    *)
        sed -n '2,8p' "$0"; exit 2 ;;
esac
