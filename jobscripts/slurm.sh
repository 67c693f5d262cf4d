#!/bin/bash
# tlsmpi on SLURM: run CONFIG into OUT, stop cleanly before the wall-time, requeue until done.
#
#   sbatch jobscripts/slurm.sh run/fig4.toml fig4.h5
#   sbatch --account=phys --partition=long --ntasks=256 --time=12:00:00 jobscripts/slurm.sh run/fig10.toml fig10.h5
#
# Before the wall-time SLURM sends SIGUSR1 to this script (--signal=B:USR1@300; the
# margin must be longer than one realization and the file's close, see below); the trap
# forwards it to the launcher, which passes it to every rank.  The runner stops at a
# realization boundary, closes the file and exits.
#
# The launcher (TLSMPI_LAUNCHER): srun (default) needs an MPI built with SLURM's PMI
# support; with an MPI without it (e.g. Debian's Open MPI: "OMPI was not built with
# SLURM's PMI support") use TLSMPI_LAUNCHER=mpirun, which starts SLURM_NTASKS ranks in
# the allocation (or as many as the allocation has slots, when SLURM_NTASKS is unset).
# Both forward SIGUSR1 to every rank.
#
# What happens next is decided by `python -m tlsmpi.post check OUT`, not by the launcher's
# exit status: when a step is ended by a signal, srun and mpirun report the status of
# whichever task they saw die first, or 128+signal, or 0, depending on the launcher and
# its version -- it is not a reliable "resumable" flag.  post check reads the file:
#   0 complete            -> done, exit 0
#   3 incomplete          -> `scontrol requeue $SLURM_JOB_ID`: the same job, with every option
#                            it was submitted with (account, partition, ntasks, time, ...),
#                            runs this script again, which resumes with --resume
#   1 damaged             -> stop and say so (exit 1): look at the file before rerunning
#   2 not a run file      -> stop (exit 2): the run refused its input; see the log
# A requeued job starts this script from the top, so it also resumes after a node failure
# (SLURM requeues --requeue jobs by itself then).  At most TLSMPI_MAX_SUBMITS runs
# (default 20, counted by SLURM_RESTART_COUNT); an OUT that is already complete is not rerun.
#
# Environment: TLSMPI_PYTHON (default: python), TLSMPI_MAX_SUBMITS (default 20),
# TLSMPI_LAUNCHER (srun or mpirun, default srun), TLSMPI_SRUN_ARGS (extra srun options),
# TLSMPI_MPIRUN_ARGS (extra mpirun options), TLSMPI_STOP_MARGIN_SECONDS (default 300: keep it
# equal to the @seconds of --signal; it is exported so that the runner warns when one
# realization is predicted to take longer than the margin, which would lose it at every
# stop).  Engine 2 needs ranks_per_realization | ntasks.
#SBATCH --job-name=tlsmpi
#SBATCH --ntasks=64
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --output=tlsmpi-%j.out
#SBATCH --open-mode=append
set -u
CONFIG=${1:?usage: sbatch jobscripts/slurm.sh CONFIG.toml OUT.h5}
OUT=${2:?usage: sbatch jobscripts/slurm.sh CONFIG.toml OUT.h5}
RUNS=$(( ${SLURM_RESTART_COUNT:-0} + 1 ))
MAX=${TLSMPI_MAX_SUBMITS:-20}
PYTHON=${TLSMPI_PYTHON:-python}
export TLSMPI_STOP_MARGIN_SECONDS=${TLSMPI_STOP_MARGIN_SECONDS:-300}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "${SLURM_SUBMIT_DIR:-.}" || exit 1

say() { echo "$(date +%H:%M:%S) tlsmpi job ${SLURM_JOB_ID:-?}: $*"; }

# the launcher and its options; a setting that would have no effect is refused
LAUNCHER=${TLSMPI_LAUNCHER:-srun}
case $LAUNCHER in
    srun) unused=TLSMPI_MPIRUN_ARGS
          # shellcheck disable=SC2206  # the extra options are a list of words
          launch=(srun --kill-on-bad-exit=1 ${TLSMPI_SRUN_ARGS:-}) ;;
    mpirun) unused=TLSMPI_SRUN_ARGS
            # shellcheck disable=SC2206  # the extra options are a list of words
            launch=(mpirun ${SLURM_NTASKS:+-n "$SLURM_NTASKS"} ${TLSMPI_MPIRUN_ARGS:-}) ;;
    *) say "TLSMPI_LAUNCHER=$LAUNCHER is neither srun nor mpirun: set one of them"; exit 2 ;;
esac
if [ -n "${!unused:-}" ]; then
    say "$unused is set but TLSMPI_LAUNCHER=$LAUNCHER does not use it: unset it or switch launcher"
    exit 2
fi

# check FILE: post check's verdict (0 complete, 3 resumable, 1 damaged, 2 not a run file)
check() { "$PYTHON" -m tlsmpi.post check "$1"; }

# requeue WHY: run this job again, with every option it was submitted with (at most MAX runs)
requeue() {
    if [ "$RUNS" -ge "$MAX" ]; then
        say "$1 but $MAX runs are reached: resume by hand with sbatch [options] jobscripts/slurm.sh $CONFIG $OUT"
        exit 3
    fi
    say "$1: requeueing this job with its options"
    scontrol requeue "$SLURM_JOB_ID" || {
        say "scontrol requeue failed (requeue not allowed here?): resume with sbatch [options] jobscripts/slurm.sh $CONFIG $OUT"; exit 3; }
    exit 0
}

# forward SIGNAL: ask the run to stop; a signal before the launch means: do not start it
pid= stop=
forward() {
    stop=$1
    if [ -n "$pid" ]; then
        say "$1 received, asking the run to stop at a realization boundary"
        kill -USR1 "$pid" 2>/dev/null
    else
        say "$1 received before the run started: not starting it"
    fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

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
say "run $RUNS/$MAX: $CONFIG -> $OUT $RESUME (stop margin ${TLSMPI_STOP_MARGIN_SECONDS} s)"
say "launcher: ${launch[*]}"

if [ -z "$stop" ]; then
    # shellcheck disable=SC2086  # RESUME is one word or empty
    "${launch[@]}" "$PYTHON" -m tlsmpi.run "$CONFIG" --out "$OUT" $RESUME &
    pid=$!
    [ -n "$stop" ] && kill -USR1 "$pid" 2>/dev/null     # a signal during the launch
    # wait returns > 128 when a trapped signal interrupts it: keep waiting for the launcher
    while :; do
        wait "$pid"; status=$?
        if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
        break
    done
    say "$LAUNCHER exited with status $status (not used: the file decides)"
fi

if [ ! -e "$OUT" ]; then
    # a stop before the run or during its start-up (before it can catch the signal)
    [ -n "$stop" ] && requeue "no $OUT yet ($stop before the run wrote it)"
    say "no $OUT: the run refused its input or crashed before writing; see the log"; exit 2
fi
check "$OUT"; verdict=$?
case $verdict in
    0) say "$OUT complete"; exit 0 ;;
    3) requeue "$OUT is resumable" ;;
    1) say "$OUT is DAMAGED: not requeued; inspect it (python -m tlsmpi.post check $OUT)"; exit 1 ;;
    *) say "$OUT is not a tlsmpi run file (post check exit $verdict): not requeued"; exit 2 ;;
esac
