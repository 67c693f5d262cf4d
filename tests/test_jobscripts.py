"""jobscripts/slurm.sh and jobscripts/pbs.sh with fake schedulers on PATH.

The fakes (sbatch, scontrol, srun, mpirun, qsub, qstat) record how they were called; a
fake python stands for both ``python -m tlsmpi.run`` (exit status and signal handling
chosen by the test) and ``python -m tlsmpi.post check`` (its verdicts, 0 complete,
3 resumable, 1 damaged, 2 not a run file, are read in turn from a file)."""
import os
import shlex
import signal
import subprocess
import time

import pytest

from conftest import ROOT

RECORDER = """#!/bin/bash
line=$(basename "$0")$(printf ' %q' "$@")
printf '%s\\n' "$line" >> "$FAKE_DIR/calls"    # one write: fakes run concurrently
"""
LAUNCHER = RECORDER + """while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
    if [ "$1" = -n ]; then shift; fi; shift
done
exec "$@"
"""
FAKES = {
    "sbatch": RECORDER,
    "qsub": RECORDER,
    "scontrol": RECORDER + 'exit "${FAKE_SCONTROL_STATUS:-0}"\n',
    "qstat": RECORDER + 'cat "$FAKE_DIR/qstat"\n',
    "srun": LAUNCHER,
    "mpirun": LAUNCHER,
    "python": RECORDER + """if [ "$2" = tlsmpi.post ]; then
    if [ -n "${FAKE_CHECK_WAIT:-}" ]; then
        : > "$FAKE_DIR/checking"
        while [ ! -e "$FAKE_DIR/go" ]; do sleep 0.05; done
    fi
    read -r verdict rest < "$FAKE_DIR/verdicts"; echo "$rest" > "$FAKE_DIR/verdicts"
    exit "$verdict"
fi
echo "margin=$TLSMPI_STOP_MARGIN_SECONDS" >> "$FAKE_DIR/calls"
if [ -n "${FAKE_RUN_STARTUP:-}" ]; then        # still starting: SIGUSR1 ends it, no file
    : > "$FAKE_DIR/started"
    for _ in $(seq 200); do sleep 0.05; done
fi
: >> "$5"
if [ -n "${FAKE_RUN_WAIT:-}" ]; then
    trap 'echo "run got USR1" >> "$FAKE_DIR/calls"; exit 3' USR1
    : > "$FAKE_DIR/started"
    for _ in $(seq 200); do sleep 0.05; done
fi
exit "${FAKE_RUN_STATUS:-0}"
""",
}


@pytest.fixture
def fake(tmp_path):
    """(run, calls): run(script, args, verdicts, env) starts a job script in tmp_path with the
    fakes first on PATH; calls() lists the recorded calls as argument lists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)

    def start(script, args=(), verdicts="", **env):
        (tmp_path / "verdicts").write_text(verdicts + "\n")
        full = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    FAKE_DIR=str(tmp_path), TLSMPI_PYTHON=str(bin_dir / "python"),
                    SLURM_SUBMIT_DIR=str(tmp_path), SLURM_JOB_ID="4242",
                    PBS_O_WORKDIR=str(tmp_path), PBS_JOBID="77.pbs")
        full.update(env)
        return subprocess.Popen(["bash", os.path.join(ROOT, "jobscripts", script), *args],
                                cwd=tmp_path, env=full, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def run(script, args=(), verdicts="", **env):
        proc = start(script, args, verdicts, **env)
        out, _ = proc.communicate(timeout=20)
        return proc.returncode, out

    def calls(program=None):
        path = tmp_path / "calls"
        lines = path.read_text().splitlines() if path.exists() else []
        words = [shlex.split(line) for line in lines]
        return [w[1:] for w in words if program is None or w[0] == program]

    run.start, run.calls, run.dir = start, calls, tmp_path
    return run


def wait_for(path, seconds=10):
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


SLURM = ("slurm.sh", ["run/fig4.toml", "fig4.h5"])


def test_slurm_fresh_run_to_completion(fake):
    status, out = fake(*SLURM, verdicts="0")
    assert status == 0, out
    run = [c for c in fake.calls("python") if c[:2] == ["-m", "tlsmpi.run"]]
    assert run == [["-m", "tlsmpi.run", "run/fig4.toml", "--out", "fig4.h5"]]
    assert "margin=300" in (fake.dir / "calls").read_text()
    assert fake.calls("scontrol") == [] and fake.calls("sbatch") == []


def test_slurm_resumable_file_requeues_the_same_job(fake):
    """A stopped run (srun's status 143 is ignored: the file decides) is requeued with
    scontrol, which keeps every option of the job; sbatch is never called."""
    (fake.dir / "fig4.h5").write_text("")
    status, out = fake(*SLURM, verdicts="3 3", FAKE_RUN_STATUS="143")
    assert status == 0, out
    resume = ["-m", "tlsmpi.run", "run/fig4.toml", "--out", "fig4.h5", "--resume"]
    assert resume in fake.calls("python")
    assert fake.calls("scontrol") == [["requeue", "4242"]]
    assert fake.calls("sbatch") == []


def test_slurm_stops_on_damage_and_at_the_run_limit(fake):
    status, out = fake(*SLURM, verdicts="1")
    assert status == 1 and "DAMAGED" in out and fake.calls("scontrol") == []
    status, out = fake(*SLURM, verdicts="3 3", SLURM_RESTART_COUNT="19")
    assert status == 3 and "20 runs are reached" in out and fake.calls("scontrol") == []


def test_slurm_complete_or_foreign_file_is_not_run(fake):
    (fake.dir / "fig4.h5").write_text("")
    assert fake(*SLURM, verdicts="0")[0] == 0
    assert fake(*SLURM, verdicts="2")[0] == 2
    assert fake.calls("srun") == []


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_slurm_signal_reaches_the_run_and_the_job_requeues(fake, launcher):
    proc = fake.start(*SLURM, verdicts="3", FAKE_RUN_WAIT="1", TLSMPI_LAUNCHER=launcher)
    wait_for(fake.dir / "started")
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "run got USR1" in (fake.dir / "calls").read_text()
    assert fake.calls("scontrol") == [["requeue", "4242"]]
    assert len(fake.calls(launcher)) == 1


def test_slurm_signal_before_the_run_starts_skips_it_and_requeues(fake):
    """SLURM may send the warning up to 60 s early, e.g. during the first post check: the
    run is not started (the script used to die on an unset pid) and the job requeues."""
    (fake.dir / "fig4.h5").write_text("")
    proc = fake.start(*SLURM, verdicts="3 3", FAKE_CHECK_WAIT="1")
    wait_for(fake.dir / "checking")
    proc.send_signal(signal.SIGUSR1)
    (fake.dir / "go").write_text("")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "USR1 received before the run started: not starting it" in out
    assert fake.calls("srun") == [] and fake.calls("scontrol") == [["requeue", "4242"]]


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_slurm_signal_during_the_runs_start_up_requeues(fake, launcher):
    """A run that the signal ends before it wrote OUT (it had not set its handler yet) is
    not a refused input: the job requeues and the next run starts afresh."""
    proc = fake.start(*SLURM, verdicts="", FAKE_RUN_STARTUP="1", TLSMPI_LAUNCHER=launcher)
    wait_for(fake.dir / "started")
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "no fig4.h5 yet (USR1 before the run wrote it): requeueing this job" in out
    assert not (fake.dir / "fig4.h5").exists()
    assert fake.calls("scontrol") == [["requeue", "4242"]]


RUN = ["-m", "tlsmpi.run", "run/fig4.toml", "--out", "fig4.h5"]


def test_slurm_launcher_srun_is_the_default(fake):
    status, out = fake(*SLURM, verdicts="0", TLSMPI_SRUN_ARGS="--mpi=pmix --exclusive")
    assert status == 0, out
    python = os.path.join(fake.dir, "bin", "python")
    assert fake.calls("srun") == [["--kill-on-bad-exit=1", "--mpi=pmix", "--exclusive", python,
                                   *RUN]]
    assert fake.calls("mpirun") == []


@pytest.mark.parametrize("ntasks, ranks", [("6", ["-n", "6"]), ("", [])])
def test_slurm_launcher_mpirun_starts_the_jobs_tasks(fake, ntasks, ranks):
    """mpirun gets -n SLURM_NTASKS, or no -n (Open MPI reads the allocation) without it."""
    status, out = fake(*SLURM, verdicts="0", TLSMPI_LAUNCHER="mpirun", SLURM_NTASKS=ntasks,
                       TLSMPI_MPIRUN_ARGS="--tag-output --report-bindings")
    assert status == 0, out
    python = os.path.join(fake.dir, "bin", "python")
    assert fake.calls("mpirun") == [[*ranks, "--tag-output", "--report-bindings", python, *RUN]]
    assert fake.calls("srun") == []


@pytest.mark.parametrize("env, named", [
    (dict(TLSMPI_LAUNCHER="aprun"), "TLSMPI_LAUNCHER=aprun"),
    (dict(TLSMPI_LAUNCHER="mpirun", TLSMPI_SRUN_ARGS="--mpi=pmix"), "TLSMPI_SRUN_ARGS"),
    (dict(TLSMPI_MPIRUN_ARGS="--tag-output --report-bindings"), "TLSMPI_MPIRUN_ARGS"),
])
def test_slurm_launcher_setting_without_effect_is_refused(fake, env, named):
    """An unknown launcher, or options for the launcher not chosen, end the job with exit 2
    and one line naming the setting, before anything runs."""
    (fake.dir / "fig4.h5").write_text("")
    status, out = fake(*SLURM, verdicts="3", **env)
    assert status == 2
    assert len(out.splitlines()) == 1 and named in out, out
    assert fake.calls() == []


QSTAT = """Job Id: 77.pbs
    Job_Name = tlsmpi
    Resource_List.walltime = {walltime}
    Submit_arguments = -A phys -q long -l select=4:ncpus=64:mpiprocs=64 -l walltime=12:
\t00:00 -v CONFIG=run/fig4.toml,OUT=fig4.h5,TLSMPI_SUBMIT=2 jobscripts/pbs.sh
    project = _pbs_project_default
"""
PBS_ENV = dict(CONFIG="run/fig4.toml", OUT="fig4.h5", TLSMPI_SUBMIT="2")


def test_pbs_resubmits_with_the_jobs_own_options(fake):
    (fake.dir / "qstat").write_text(QSTAT.format(walltime="12:00:00"))
    (fake.dir / "fig4.h5").write_text("")
    status, out = fake("pbs.sh", verdicts="3 3", FAKE_RUN_STATUS="0", **PBS_ENV)
    assert status == 0, out
    assert ["-m", "tlsmpi.run", "run/fig4.toml", "--out", "fig4.h5", "--resume"] in fake.calls(
        "python"
    )
    assert fake.calls("qsub") == [
        ["-A", "phys", "-q", "long", "-l", "select=4:ncpus=64:mpiprocs=64", "-l",
         "walltime=12:00:00", "-v", "CONFIG=run/fig4.toml,OUT=fig4.h5,TLSMPI_SUBMIT=3",
         "jobscripts/pbs.sh"]
    ]


def test_pbs_timer_stops_the_run_before_the_walltime(fake):
    (fake.dir / "qstat").write_text(QSTAT.format(walltime="00:00:02"))
    status, out = fake("pbs.sh", verdicts="3", FAKE_RUN_WAIT="1", TLSMPI_STOP_MARGIN_SECONDS="1",
                       **PBS_ENV)
    assert status == 0, out
    assert "run got USR1" in (fake.dir / "calls").read_text()
    assert len(fake.calls("qsub")) == 1


def test_pbs_stops_on_damage(fake):
    (fake.dir / "qstat").write_text(QSTAT.format(walltime="12:00:00"))
    status, out = fake("pbs.sh", verdicts="1", **PBS_ENV)
    assert status == 1 and "DAMAGED" in out and fake.calls("qsub") == []
