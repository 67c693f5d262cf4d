#!/bin/bash
# tlsmpi on PBS Pro (the `select=` resource syntax; Torque's `nodes=N:ppn=M` is not
# supported): run CONFIG into OUT, stop cleanly before the wall-time, resubmit until done.
#
#   qsub -v CONFIG=run/fig4.toml,OUT=fig4.h5 jobscripts/pbs.sh
#   qsub -A phys -q long -l select=4:ncpus=64:mpiprocs=64 -l walltime=12:00:00 \
#        -v CONFIG=run/fig10.toml,OUT=fig10.h5 jobscripts/pbs.sh
#
# PBS has no "signal before the wall-time" option, so a timer sends SIGUSR1 to mpirun
# TLSMPI_STOP_MARGIN_SECONDS (default 300) before the wall-time read from qstat; a
# SIGTERM from PBS at the limit is forwarded too.  mpirun passes SIGUSR1 to every rank;
# the runner stops at a realization boundary, closes the file and exits.
#
# What happens next is decided by `python -m tlsmpi.post check OUT`, not by mpirun's exit
# status (on a signal mpirun reports whichever rank it saw end first, or 128+signal, or
# 0, depending on the MPI and its version: not a reliable "resumable" flag):
#   0 complete            -> done, exit 0
#   3 incomplete          -> resubmit with the job's own qsub options, read back from
#                            `qstat -f` (Submit_arguments: account, queue, select, walltime,
#                            -v ...), plus TLSMPI_SUBMIT; the new job resumes with --resume
#   1 damaged             -> stop and say so (exit 1)
#   2 not a run file      -> stop (exit 2): the run refused its input; see the log
# At most TLSMPI_MAX_SUBMITS jobs (default 20).  Options with spaces in their values do not
# survive the read-back; submit such jobs with options free of spaces.
#
# Environment: TLSMPI_PYTHON (default: python), TLSMPI_MAX_SUBMITS (default 20),
# TLSMPI_STOP_MARGIN_SECONDS (seconds, default 300; exported so the runner warns when one
# realization is predicted to take longer), TLSMPI_MPIRUN_ARGS (extra mpirun options),
# TLSMPI_WALLTIME (seconds, when qstat does not tell).
#PBS -N tlsmpi
#PBS -l select=1:ncpus=64:mpiprocs=64
#PBS -l walltime=04:00:00
#PBS -j oe
#PBS -r y
set -u
: "${CONFIG:?qsub -v CONFIG=run/X.toml,OUT=X.h5 jobscripts/pbs.sh}"
: "${OUT:?qsub -v CONFIG=run/X.toml,OUT=X.h5 jobscripts/pbs.sh}"
SUBMIT=${TLSMPI_SUBMIT:-1}
MAX=${TLSMPI_MAX_SUBMITS:-20}
PYTHON=${TLSMPI_PYTHON:-python}
export TLSMPI_STOP_MARGIN_SECONDS=${TLSMPI_STOP_MARGIN_SECONDS:-300}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "${PBS_O_WORKDIR:-.}" || exit 1

say() { echo "tlsmpi job ${PBS_JOBID:-?}: $*"; }

# job_attribute NAME: one attribute of this job from qstat -f (continuation lines joined)
job_attribute() {
    qstat -f "${PBS_JOBID:-}" 2>/dev/null | awk -v name="$1" '
        /^    [A-Za-z_.]+ = / { on = ($1 == name); if (on) { sub(/^[^=]*= /, ""); value = $0 }; next }
        on && /^\t/ { sub(/^\t/, ""); value = value $0 }
        END { print value }'
}

walltime_seconds() {
    local w h m s
    w=$(job_attribute Resource_List.walltime)
    [ -n "$w" ] || { echo "${TLSMPI_WALLTIME:-0}"; return; }
    IFS=: read -r h m s <<< "$w"
    [ -n "${s:-}" ] || { echo "$((10#$h))"; return; }
    echo $((10#$h * 3600 + 10#$m * 60 + 10#$s))
}

# resubmit: qsub again with this job's own options; TLSMPI_SUBMIT is added to its -v list
resubmit() {
    local words word out=() vdone=
    words=$(job_attribute Submit_arguments)
    [ -n "$words" ] || { say "qstat -f shows no Submit_arguments: resubmit by hand"; return 1; }
    # shellcheck disable=SC2086  # the options are split into words on purpose
    set -- $words
    while [ $# -gt 0 ]; do
        word=$1; shift
        case $word in
            -v) out+=(-v "$(next_submit "${1:-}")"); shift; vdone=1 ;;
            -v*) out+=(-v "$(next_submit "${word#-v}")"); vdone=1 ;;
            *) out+=("$word") ;;
        esac
    done
    if [ -z "$vdone" ]; then
        # no -v list: CONFIG and OUT came from the environment (qsub -V); pass them on
        out=(-v "CONFIG=$CONFIG,OUT=$OUT,TLSMPI_SUBMIT=$((SUBMIT + 1))" "${out[@]}")
    fi
    say "resubmitting: qsub ${out[*]}"
    qsub "${out[@]}"
}

# next_submit LIST: the -v LIST with TLSMPI_SUBMIT set to the next submission
next_submit() {
    local item kept=
    local IFS=,
    for item in $1; do
        case $item in TLSMPI_SUBMIT=*) ;; *) kept=${kept:+$kept,}$item ;; esac
    done
    echo "${kept:+$kept,}TLSMPI_SUBMIT=$((SUBMIT + 1))"
}

# check FILE: post check's verdict (0 complete, 3 resumable, 1 damaged, 2 not a run file)
check() { "$PYTHON" -m tlsmpi.post check "$1"; }

RESUME=
if [ -e "$OUT" ]; then
    check "$OUT"; verdict=$?
    case $verdict in
        0) say "$OUT is already complete: nothing to do"; exit 0 ;;
        3) RESUME=--resume ;;
        1) say "$OUT is damaged: not running; inspect it (python -m tlsmpi.post check $OUT)"; exit 1 ;;
        *) say "$OUT exists but is not a tlsmpi run file: not touching it"; exit 2 ;;
    esac
fi
say "submission $SUBMIT/$MAX: $CONFIG -> $OUT $RESUME (stop margin ${TLSMPI_STOP_MARGIN_SECONDS} s)"

forward() { say "$1, asking the run to stop at a realization boundary"; kill -USR1 "$pid" 2>/dev/null; }
trap 'forward SIGUSR1' USR1
trap 'forward SIGTERM' TERM

# shellcheck disable=SC2086  # TLSMPI_MPIRUN_ARGS and RESUME are lists of words or empty
mpirun ${TLSMPI_MPIRUN_ARGS:-} "$PYTHON" -m tlsmpi.run "$CONFIG" --out "$OUT" $RESUME &
pid=$!
limit=$(walltime_seconds)
timer=
if [ "$limit" -gt "$TLSMPI_STOP_MARGIN_SECONDS" ]; then
    ( sleep $((limit - TLSMPI_STOP_MARGIN_SECONDS)) && kill -USR1 $$ ) &
    timer=$!
fi
while :; do
    wait "$pid"; status=$?
    if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    break
done
if [ -n "$timer" ]; then
    pkill -P "$timer" 2>/dev/null; kill "$timer" 2>/dev/null
fi
say "mpirun exited with status $status (not used: the file decides)"

if [ ! -e "$OUT" ]; then
    say "no $OUT: the run refused its input or crashed before writing; see the log"; exit 2
fi
check "$OUT"; verdict=$?
case $verdict in
    0) say "$OUT complete"; exit 0 ;;
    3) if [ "$SUBMIT" -ge "$MAX" ]; then
           say "$OUT is resumable but $MAX submissions are reached: resume by hand (qsub ... jobscripts/pbs.sh)"
           exit 3
       fi
       resubmit || exit 3
       exit 0 ;;
    1) say "$OUT is DAMAGED: not resubmitted; inspect it (python -m tlsmpi.post check $OUT)"; exit 1 ;;
    *) say "$OUT is not a tlsmpi run file (post check exit $verdict): not resubmitted"; exit 2 ;;
esac
