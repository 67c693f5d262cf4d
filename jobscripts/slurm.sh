#!/bin/bash
# tlsmpi on SLURM: run CONFIG into OUT, stop cleanly before the wall-time, resubmit until done.
#
#   sbatch jobscripts/slurm.sh run/fig4.toml fig4.h5
#   sbatch --ntasks=256 --time=12:00:00 jobscripts/slurm.sh run/fig10.toml fig10.h5
#
# Five minutes before the wall-time SLURM sends SIGUSR1 to this script (--signal=B:USR1@300);
# the trap forwards it to srun, which passes it to every rank.  The runner then stops at a
# realization boundary, closes the file and exits 3; this script resubmits itself with
# --resume (only if OUT exists).  Exit status of the runner: 0 complete, 3 stopped and
# resumable, 2 bad input, 1 crash: only 3 resubmits, at most TLSMPI_MAX_SUBMITS times.
#
# Environment: TLSMPI_PYTHON (default: python), TLSMPI_MAX_SUBMITS (default 20),
# TLSMPI_SRUN_ARGS (extra srun options).  Engine 2 needs ranks_per_realization | ntasks.
#SBATCH --job-name=tlsmpi
#SBATCH --ntasks=64
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --output=tlsmpi-%j.out
#SBATCH --open-mode=append
set -u
CONFIG=${1:?usage: sbatch jobscripts/slurm.sh CONFIG.toml OUT.h5}
OUT=${2:?usage: sbatch jobscripts/slurm.sh CONFIG.toml OUT.h5}
SUBMIT=${TLSMPI_SUBMIT:-1}
MAX=${TLSMPI_MAX_SUBMITS:-20}
PYTHON=${TLSMPI_PYTHON:-python}
# the path of this script as submitted (SLURM runs a spooled copy)
SELF=$(scontrol show job "${SLURM_JOB_ID:-0}" 2>/dev/null | sed -n 's/^ *Command=\([^ ]*\).*/\1/p')
SELF=${SELF:-${SLURM_SUBMIT_DIR:-.}/jobscripts/slurm.sh}

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

RESUME=()
[ -e "$OUT" ] && RESUME=(--resume)
echo "tlsmpi job ${SLURM_JOB_ID:-?} (submission $SUBMIT/$MAX): $CONFIG -> $OUT ${RESUME[*]}"

forward() { echo "tlsmpi job: $1 received, asking the run to stop at a realization boundary"; kill -USR1 "$pid" 2>/dev/null; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM

# shellcheck disable=SC2086
srun --kill-on-bad-exit=1 ${TLSMPI_SRUN_ARGS:-} "$PYTHON" -m tlsmpi.run "$CONFIG" --out "$OUT" "${RESUME[@]}" &
pid=$!
# wait returns > 128 when a trapped signal interrupts it: keep waiting for srun itself
while :; do
    wait "$pid"; status=$?
    if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    break
done
echo "tlsmpi job: run exited with status $status"

if [ "$status" -eq 3 ] && [ -e "$OUT" ]; then
    if [ "$SUBMIT" -ge "$MAX" ]; then
        echo "tlsmpi job: not resubmitting, $MAX submissions reached; resume by hand with sbatch $SELF $CONFIG $OUT"
    else
        cd "${SLURM_SUBMIT_DIR:-.}" && sbatch --export=ALL,TLSMPI_SUBMIT=$((SUBMIT + 1)) "$SELF" "$CONFIG" "$OUT"
    fi
fi
exit "$status"
