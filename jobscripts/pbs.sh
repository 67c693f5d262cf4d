#!/bin/bash
# tlsmpi on PBS Pro / Torque: run CONFIG into OUT, stop cleanly before the wall-time,
# resubmit until done.
#
#   qsub -v CONFIG=run/fig4.toml,OUT=fig4.h5 jobscripts/pbs.sh
#   qsub -l select=4:ncpus=64:mpiprocs=64 -l walltime=12:00:00 -v CONFIG=...,OUT=... jobscripts/pbs.sh
#
# PBS has no "signal before the wall-time" option, so a timer sends SIGUSR1 to mpirun
# MARGIN seconds (default 300) before the wall-time read from qstat (or TLSMPI_WALLTIME,
# in seconds); a SIGTERM from PBS at the limit is forwarded too.  mpirun passes SIGUSR1
# to every rank; the runner stops at a realization boundary, closes the file and exits
# 3, and this script resubmits itself with --resume (only if OUT exists).  Runner exit
# status: 0 complete, 3 stopped and resumable, 2 bad input, 1 crash.
#
# Environment: TLSMPI_PYTHON (default: python), TLSMPI_MAX_SUBMITS (default 20),
# TLSMPI_MARGIN (seconds, default 300), TLSMPI_MPIRUN_ARGS (extra mpirun options).
#PBS -N tlsmpi
#PBS -l select=1:ncpus=64:mpiprocs=64
#PBS -l walltime=04:00:00
#PBS -j oe
set -u
: "${CONFIG:?qsub -v CONFIG=run/X.toml,OUT=X.h5 jobscripts/pbs.sh}"
: "${OUT:?qsub -v CONFIG=run/X.toml,OUT=X.h5 jobscripts/pbs.sh}"
SUBMIT=${TLSMPI_SUBMIT:-1}
MAX=${TLSMPI_MAX_SUBMITS:-20}
MARGIN=${TLSMPI_MARGIN:-300}
PYTHON=${TLSMPI_PYTHON:-python}
cd "${PBS_O_WORKDIR:-.}" || exit 1
SELF=${TLSMPI_JOBSCRIPT:-$PWD/jobscripts/pbs.sh}

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

walltime_seconds() {
    local w
    w=$(qstat -f "${PBS_JOBID:-}" 2>/dev/null | sed -n 's/^ *Resource_List.walltime = //p')
    [ -n "$w" ] || { echo "${TLSMPI_WALLTIME:-0}"; return; }
    IFS=: read -r h m s <<< "$w"
    echo $((10#$h * 3600 + 10#$m * 60 + 10#$s))
}

RESUME=()
[ -e "$OUT" ] && RESUME=(--resume)
echo "tlsmpi job ${PBS_JOBID:-?} (submission $SUBMIT/$MAX): $CONFIG -> $OUT ${RESUME[*]}"

forward() { echo "tlsmpi job: $1, asking the run to stop at a realization boundary"; kill -USR1 "$pid" 2>/dev/null; }
trap 'forward "SIGUSR1"' USR1
trap 'forward "SIGTERM"' TERM

# shellcheck disable=SC2086
mpirun ${TLSMPI_MPIRUN_ARGS:-} "$PYTHON" -m tlsmpi.run "$CONFIG" --out "$OUT" "${RESUME[@]}" &
pid=$!
limit=$(walltime_seconds)
timer=
if [ "$limit" -gt "$MARGIN" ]; then
    ( sleep $((limit - MARGIN)) && kill -USR1 $$ ) &
    timer=$!
fi
while :; do
    wait "$pid"; status=$?
    if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    break
done
[ -n "$timer" ] && kill "$timer" $(pgrep -P "$timer") 2>/dev/null
echo "tlsmpi job: run exited with status $status"

if [ "$status" -eq 3 ] && [ -e "$OUT" ]; then
    if [ "$SUBMIT" -ge "$MAX" ]; then
        echo "tlsmpi job: not resubmitting, $MAX submissions reached"
    else
        qsub -v "CONFIG=$CONFIG,OUT=$OUT,TLSMPI_SUBMIT=$((SUBMIT + 1)),TLSMPI_JOBSCRIPT=$SELF" "$SELF"
    fi
fi
exit "$status"
