"""Scheduling benchmark: the real runner with a synthetic engine that sleeps.

    python -m tlsmpi.bench schedule [--ranks 32] [--tables fig4 fig10 fig6a] [--seconds 30]
    python -m tlsmpi.bench schedule --extrapolate [--ranks 256 1024]
    python -m tlsmpi.bench schedule --probe [--ranks 3]

The default runs ``python -m tlsmpi.run`` (through `tlsmpi.bench.sleep_runner`) under
``mpirun --oversubscribe -n P`` with the engine ``sleep``: realization r of a case
sleeps for a cost drawn from a table, so 32-64 ranks fit on 2 cores.  The tables
``fig4``, ``fig10``, ``fig6a`` are the median wall times per realization of the exact
engine on the cases of run/figX_quick.toml (measured on the development machine,
`TABLES`), times a log-normal jitter; ``uniform`` is U(0.5, 1.5); ``heavy`` is a Pareto
tail of index 1.2 like the Liouvillian's (99th percentile 26x the median).  The engine
predicts costs with the exact engine's cost model (``predict = "model"``, as a real run
does), so the queue also meets the model's errors.  Every realization is scaled so that
an ideal run takes ``--seconds``.  Printed: efficiency = sum of item costs / (ranks x
wall), with wall from the first item's start to the last item's end on any rank (the
launch and the final summary are not scheduling), the whole mpirun time, and the
logged ETA against the true remaining time.

``--extrapolate`` replays the runner's rules in a discrete-event simulation with the
item costs of the full run/fig4, fig10, fig6a and fig8_liouvillian configurations,
the runner's overhead per item and the queue's request latency and server time
(measured here with one rank and with ``--probe``): today's static deal with one
allreduce per round, the work queue (`tlsmpi.parallel.Dealer`, the same code as rank
0 runs), and for fig8_liouvillian the queue with rank groups (`plan_groups`).

``--module`` runs the same jobs with the work queue alone (`tlsmpi.parallel`, no
sampling, no output), under the same mpirun.

``--probe`` measures what MPI progresses on this machine while ranks compute (passive
RMA, a non-blocking allreduce, a server thread blocking in recv or polling) and the
queue's request latency and server time with P oversubscribed ranks.
"""
import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from .. import config as configuration
from .. import engines
from ..parallel import (Dealer, QueueSettings, WorkQueue, group_efficiency, plan_groups,
                        poll_recv)

#: Median wall seconds per realization of the exact engine, (N, epsilon) -> s, from
#: ``python -m tlsmpi.run run/figX_quick.toml --set ensemble.realizations=20`` on one
#: rank (2-core development machine shared with other jobs; ``wall_seconds`` of the file).
TABLES = {
    "fig4": {(4, 0): 0.0087, (6, 0): 0.0104, (8, 0): 0.0141, (12, 0): 0.0239, (16, 0): 0.0410,
             (24, 0): 0.0808, (32, 0): 0.1414, (48, 0): 0.2345, (60, 0): 0.3238},
    "fig10": {(4, 0): 0.0073, (4, 1): 0.0070, (6, 0): 0.0119, (6, 1): 0.0114, (8, 0): 0.0151,
              (8, 1): 0.0162, (12, 0): 0.0210, (12, 1): 0.0213, (16, 0): 0.0214, (16, 1): 0.0435,
              (32, 0): 0.0739, (32, 1): 0.2669, (60, 0): 0.4462, (60, 1): 0.5609},
    "fig6a": {(4, 0): 0.0082, (5, 0): 0.0120, (6, 0): 0.0144, (7, 0): 0.0126, (8, 0): 0.0120,
              (9, 0): 0.0134, (10, 0): 0.0150, (11, 0): 0.0158, (12, 0): 0.0190, (14, 0): 0.0272},
}
#: Standard deviation of log(wall / median) of the exact engine's realizations (measured 0.1-0.3).
JITTER = 0.2
#: Pareto index of the ``heavy`` table (the Liouvillian's tail: p99 / median ~ 26).
HEAVY_INDEX = 1.2
FIGURES = ("fig4", "fig10", "fig6a")


def table_seconds(table, N, epsilon):
    """Median seconds of a realization of (N, epsilon): the table, interpolated (and
    extrapolated) linearly in log N - log seconds between the measured N."""
    rows = sorted((n, s) for (n, e), s in TABLES[table].items() if e == (epsilon > 0))
    n, s = np.log([r[0] for r in rows]), np.log([r[1] for r in rows])
    x = np.log(N)
    i = int(np.clip(np.searchsorted(n, x) - 1, 0, len(n) - 2))
    return float(np.exp(s[i] + (s[i + 1] - s[i]) * (x - n[i]) / (n[i + 1] - n[i])))


def item_seconds(table, params, seed, index):
    """Cost (before scaling) of realization ``index`` of case ``params``."""
    rng = np.random.default_rng([index, seed, 77])
    if table == "uniform":
        return rng.uniform(0.5, 1.5)
    if table == "heavy":
        return 1.0 + rng.pareto(HEAVY_INDEX)
    return table_seconds(table, params.N, params.epsilon) * rng.lognormal(0.0, JITTER)


@engines.register
class SleepEngine(engines.Engine):
    """Synthetic engine for the scheduling benchmark: a realization sleeps its cost."""
    name = "sleep"
    option_schema = {
        "table": ("uniform", lambda v: v in ("uniform", "heavy", *FIGURES),
                  f"one of {['uniform', 'heavy', *FIGURES]}"),
        "scale": (1.0, lambda v: isinstance(v, (int, float)) and v >= 0, "seconds per unit, >= 0"),
        "predict": ("model", lambda v: v in ("model", "table"), "'model' or 'table'"),
        "slow_rank": (-1, lambda v: isinstance(v, int), "a rank of COMM_WORLD (or -1)"),
        "trace": ("", lambda v: isinstance(v, str), "a directory (or empty)"),
    }

    def cost(self, params, times, request, draw):
        """``predict = "model"``: the exact engine's model (the heavy table: the exact
        cost, as the Liouvillian's norm gives); ``"table"``: the table's median."""
        table = self.options["table"]
        if table == "heavy":
            real = draw()
            return item_seconds(table, params, real.seed, real.index)
        if self.options["predict"] == "model" and table != "uniform":
            return engines.get("exact")().cost(params, times, request, draw)
        return table_seconds(table, params.N, params.epsilon) if table != "uniform" else 1.0

    def init(self, argv):
        from mpi4py import MPI
        self.rank = MPI.COMM_WORLD.rank
        self.trace = {"first": None, "last": None, "slept": 0.0, "items": 0}
        self.trace_path = self.options["trace"] and os.path.join(self.options["trace"],
                                                                 f"rank{self.rank}.json")
        self._write_trace()

    def _write_trace(self):
        """This rank's first start, last end, seconds slept and items, rewritten after
        every item (a job that hangs at its end still tells its times)."""
        if self.trace_path:
            with open(self.trace_path + ".tmp", "w") as fh:
                json.dump(self.trace, fh)
            os.replace(self.trace_path + ".tmp", self.trace_path)

    def compute(self, real, times, request, comm=None):
        seconds = self.options["scale"] * item_seconds(self.options["table"], real.params,
                                                         real.seed, real.index)
        start = time.time()
        time.sleep(seconds * (2.0 if self.rank == self.options["slow_rank"] else 1.0))
        trace = self.trace
        trace["first"] = start if trace["first"] is None else trace["first"]
        trace["last"] = time.time()
        trace["slept"] += seconds
        trace["items"] += 1
        self._write_trace()
        return {"concurrence": np.zeros(len(times))}


# -- the benchmark: the real runner, sleeping ---------------------------------------------

def mpi_env():
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")


def figure_config(table):
    """The quick run configuration whose cases a table describes (fig10's for the others)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(here, "run", f"{table if table in FIGURES else 'fig10'}_quick.toml")


def total_seconds(table, realizations):
    """Sum of the unscaled costs of a bench job and its number of items."""
    cfg = configuration.load(figure_config(table), [f"ensemble.realizations={realizations}"])
    costs = [item_seconds(table, p, cfg.seed, r) for p in cfg.cases() for r in range(realizations)]
    return float(np.sum(costs)), len(costs)


def read_traces(directory):
    """The traces the sleep engine's ranks wrote in ``directory`` so far."""
    traces = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("rank") and name.endswith(".json"):
            with open(os.path.join(directory, name)) as fh:
                traces.append(json.load(fh))
    return traces


def run_bench(table, ranks, seconds, realizations, slow_rank=-1, timeout=900):
    """One sleeping run of the real runner; a dict of what it measured."""
    work, items = total_seconds(table, realizations)
    scale = seconds * ranks / work
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"engine.name": "sleep", "engine.table": table, "engine.scale": scale,
                     "engine.slow_rank": slow_rank, "engine.trace": tmp,
                     "ensemble.realizations": realizations, "output.progress_seconds": 1.0}
        cmd = ["mpirun", "--oversubscribe", "-n", str(ranks), sys.executable, "-m",
               "tlsmpi.bench.sleep_runner", figure_config(table), "--out",
               os.path.join(tmp, "b.h5")]
        for key, value in overrides.items():
            cmd += ["--set", f"{key}={value}"]
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        stdout, hung = launch(cmd, timeout, lambda: sum(t["items"] for t in read_traces(tmp)))
        total = time.time() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        traces = read_traces(tmp)
    busy = [t for t in traces if t["items"]]
    first, last = min(t["first"] for t in busy), max(t["last"] for t in busy)
    slept = sum(t["slept"] for t in traces)
    if not busy:
        raise RuntimeError(f"the runner computed nothing:\n{stdout}")
    return {"table": table, "ranks": ranks, "items": items, "wall": last - first, "mpirun": total,
            "hung": hung, "computed": sum(t["items"] for t in traces),
            "efficiency": slept / (ranks * (last - first)), "scale": scale,
            "cpu": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
            "eta": eta_errors(stdout, first, last)}


def module_bench(table, ranks, seconds, realizations, slow_rank=-1, timeout=900):
    """`queue_only` under mpirun; the same dict as `run_bench`."""
    cmd = ["mpirun", "--oversubscribe", "-n", str(ranks), sys.executable, "-m",
           "tlsmpi.bench.schedule", "queue", table, str(seconds), str(realizations), str(slow_rank)]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    res = subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, timeout=timeout)
    total = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "mpirun": total, "hung": False,
            "cpu": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime}


def launch(cmd, timeout, progress, grace=60.0):
    """Run an mpirun command in its own session; (output, stalled).  The job is killed
    with its ranks (its process group) after ``timeout`` seconds, or when ``progress()``
    (items done) has not changed for ``grace`` seconds."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, env=mpi_env(), stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        start = last_change = time.time()
        done = 0
        while proc.poll() is None:
            time.sleep(2.0)
            now, previous, done = time.time(), done, progress()
            if done != previous:
                last_change = now
            if now - start > timeout or (done and now - last_change > grace):
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
        out.seek(0)
        return out.read(), proc.returncode != 0


def eta_errors(log, first, last):
    """Logged ETA / true remaining time for the progress lines between 20 % and 70 % of
    the run (log time stamps have a resolution of one second)."""
    day = time.strftime("%Y-%m-%d", time.localtime(first))
    ratios = []
    for line in log.splitlines():
        m = re.match(r"(\d\d:\d\d:\d\d) tlsmpi .*ETA (?:(\d+):(\d\d):(\d\d)|(\d+) s)", line)
        if not m:
            continue
        stamp = time.mktime(time.strptime(f"{day} {m.group(1)}", "%Y-%m-%d %H:%M:%S")) + 0.5
        eta = (float(m.group(5)) if m.group(5) else
               3600 * int(m.group(2)) + 60 * int(m.group(3)) + int(m.group(4)))
        if 0.2 <= (stamp - first) / (last - first) <= 0.7:
            ratios.append(eta / (last - stamp))
    return ratios


def real_eta(config, ranks, timeout):
    """The real runner on ``config`` with ``ranks`` ranks: its logged ETA / true
    remaining time between 20 % and 70 % of the run, and its wall time.  The run
    starts at the first log line and ends at the last progress line (100 %)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "tlsmpi.run", config,
               "--out", os.path.join(tmp, "r.h5"), "--set", "output.progress_seconds=2"]
        log, failed = launch(cmd, timeout, lambda: 0)
    if failed:
        raise RuntimeError(log)
    stamps = [
        time.mktime(time.strptime(f"{time.strftime('%Y-%m-%d')} {line[:8]}", "%Y-%m-%d %H:%M:%S"))
        for line in log.splitlines()
        if re.match(r"\d\d:\d\d:\d\d tlsmpi ", line)
    ]
    first, last = stamps[0], stamps[-1] + 0.5
    return eta_errors(log, first, last), last - first


def item_overhead(realizations=400):
    """The runner's seconds per realization besides the engine (sampling, output,
    scheduling): one rank, the sleep engine with zero sleep, fig10's cases."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tlsmpi.bench.sleep_runner", figure_config("fig10"),
               "--out", os.path.join(tmp, "o.h5"), "--set", "engine.name=sleep",
               "--set", "engine.scale=0", "--set", f"engine.trace={tmp}",
               "--set", f"ensemble.realizations={realizations}"]
        subprocess.run(cmd, env=mpi_env(), capture_output=True, check=True, timeout=600)
        trace = json.load(open(os.path.join(tmp, "rank0.json")))
    return (trace["last"] - trace["first"]) / trace["items"]


def bench(args):
    if args.tables:
        print(f"Runner with the sleep engine, {args.ranks} oversubscribed ranks on "
              f"{os.cpu_count()} "
              f"cores, ideal wall {args.seconds:g} s (efficiency = sum of item costs / (ranks x "
              "wall))")
        print(f"{'table':>8} {'items':>6} {'wall':>7} {'mpirun':>7} {'CPU':>7} {'efficiency':>10} "
              f"{'ETA/true (20-70%)':>18}")
    for table in args.tables:
        r = (module_bench if args.module else run_bench)(
            table, args.ranks, args.seconds, args.realizations, timeout=args.timeout)
        eta = (f"{min(r['eta']):.2f}-{max(r['eta']):.2f}" if r["eta"] else "-")
        note, cpu = "", f"{r['cpu']:>6.1f}s"
        if r["hung"]:                    # the ranks of a killed job are not accounted
            note, cpu = f"  (stalled after {r['computed']} items computed: killed)", f"{'-':>7}"
        print(f"{table:>8} {r['items']:>6} {r['wall']:>6.1f}s {r['mpirun']:>6.1f}s {cpu} "
              f"{r['efficiency']:>10.1%} {eta:>18}{note}", flush=True)
    if args.eta:
        ratios, wall = real_eta(args.eta, 2, args.timeout)
        print(f"\nReal runner, {args.eta}, 2 ranks: {wall:.0f} s, logged ETA / true remaining time "
              f"between 20 % and 70 % of the run: {min(ratios):.2f}-{max(ratios):.2f} "
              f"({len(ratios)} lines)")
    if args.slow:
        print("\nOne rank at half speed (it sleeps twice as long), 2 ranks, fig10:")
        how = module_bench if args.module else run_bench
        base = how("fig10", 2, args.seconds, args.realizations, timeout=args.timeout)
        slow = how("fig10", 2, args.seconds, args.realizations, slow_rank=1, timeout=args.timeout)
        print(f"  wall {base['wall']:.1f} s -> {slow['wall']:.1f} s: "
              f"{slow['wall'] / base['wall']:.2f}x "
              "(static deal 2x, ideal 1.33x)")
    return 0


# -- extrapolation: a discrete-event simulation of the runner's rules -----------------------

def full_costs(name, rng):
    """(actual seconds, predicted cost, case) of every item of run/NAME.toml."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = configuration.load(os.path.join(here, "run", f"{name}.toml"))
    engine = engines.get(cfg.engine)(cfg.engine_options)
    actual, predicted = [], []
    kinds = np.repeat(np.arange(len(cfg.cases())), cfg.realizations)
    if cfg.engine == "liouvillian":
        from ..physics.model import sample
        for p in cfg.cases():
            for r in range(cfg.realizations):
                predicted.append(
                    engine.cost(p, cfg.times, cfg.request, lambda: sample(p, cfg.seed, r))
                )
        predicted = np.array(predicted)
        return predicted * rng.lognormal(0.0, JITTER, predicted.size), predicted, kinds
    for p in cfg.cases():
        median = table_seconds(name, p.N, p.epsilon)
        actual.append(median * rng.lognormal(0.0, JITTER, cfg.realizations))
        predicted.append(np.full(cfg.realizations, engine.cost(p, cfg.times, cfg.request, None)))
    return np.concatenate(actual), np.concatenate(predicted), kinds


def simulate_static(actual, n_groups, group_size, item_overhead, allreduce, overhead):
    """Makespan of today's runner: item k of the sweep order goes to group k mod G;
    every round ends with an allreduce that completes only when all groups arrive."""
    walls = actual / (group_size * group_efficiency(group_size, overhead)) + item_overhead
    rounds = -(-len(walls) // n_groups)
    padded = np.zeros(rounds * n_groups)
    padded[:len(walls)] = walls
    return float(padded.reshape(rounds, n_groups).max(1).sum() + rounds * allreduce)


def simulate_queue(actual, predicted, group_sizes, item_overhead, latency, service, *,
                   width=None, overhead=0.1, kinds=None, families=None, setup=0.0):
    """Makespan of the work queue: the `Dealer` of rank 0 serves requests one at a time
    (``service`` seconds each); a request and its reply take ``latency`` together
    (rank 0's own requests none); group g computes item k in actual[k] / (g e(g)), plus
    ``setup`` seconds when k's family differs from that of the worker's previous item.
    Returns the makespan and the range of ETA / true remaining time between 20 % and
    70 % of the run (ETA read about 200 times)."""
    import heapq
    workers = dict(enumerate(group_sizes))
    dealer = Dealer(predicted, workers, width=width, kinds=kinds, families=families)
    last = {}
    dealer.service_seconds = service
    ready = [(0.0, w, []) for w in workers]          # (time the request reaches rank 0, ...)
    heapq.heapify(ready)
    server_free = end = 0.0
    etas, every = [], actual.sum() / sum(group_sizes) / 200        # ETA samples

    while ready:
        arrive, w, completed = heapq.heappop(ready)
        start = max(arrive, server_free)
        server_free = start + service
        chunk = dealer.handle(w, completed, False, start)
        if start >= every * len(etas):
            etas.append((start, dealer.eta(start)))
        reply = server_free + (latency / 2 if w else 0.0)
        if not chunk:
            end = max(end, reply)
            continue
        g = workers[w]
        walls = actual[chunk] / (g * group_efficiency(g, overhead)) + item_overhead
        for i, k in enumerate(chunk if families is not None else ()):
            if last.get(w) != families[k]:
                walls[i] += setup
                last[w] = families[k]
        back = reply + walls.sum() + (latency / 2 if w else 0.0)
        heapq.heappush(ready, (back, w, list(zip(chunk, walls))))
    ratios = [eta / (end - t) for t, eta in etas if eta is not None and 0.2 <= t / end <= 0.7]
    return end, (min(ratios), max(ratios))


def extrapolate(args):
    rng = np.random.default_rng(2021)
    overhead_item = args.item_overhead if args.item_overhead is not None else item_overhead()
    print("Discrete-event simulation of the runner's rules: item overhead "
          f"{overhead_item * 1e3:.2f} ms "
          f"(runner, one rank), request latency {args.latency * 1e3:.2f} ms, server "
          f"{args.service * 1e6:.0f} us per request, allreduce {args.allreduce * 1e6:.0f} us x "
          f"log2 P, group efficiency 1 / (1 + {args.group_overhead} log2 g)")
    print("Efficiency = sum of item costs / (ranks x makespan).  static: today's runner "
          "(with the item overhead); queue: tlsmpi.parallel without / with the item overhead; "
          "groups: queue + plan_groups, without")
    print(f"{'config':>18} {'items':>7} {'ranks':>6} {'static':>8} {'queue':>8} {'+overhead':>9} "
          f"{'ETA/true':>10} {'groups':>8} {'ETA/true':>10}")
    for name in ("fig4", "fig10", "fig6a", "fig8_liouvillian"):
        actual, predicted, kinds = full_costs(name, rng)
        for ranks in args.ranks:
            ideal = actual.sum() / ranks
            static = simulate_static(actual, ranks, 1, overhead_item,
                                     args.allreduce * np.log2(ranks), args.group_overhead)
            queue = [simulate_queue(actual, predicted, [1] * ranks, o, args.latency, args.service,
                                    overhead=args.group_overhead, kinds=kinds)
                     for o in (0.0, overhead_item)]
            eta = queue[0][1]
            line = (f"{name:>18} {len(actual):>7} {ranks:>6} {ideal / static:>8.1%} "
                    f"{ideal / queue[0][0]:>8.1%} {ideal / queue[1][0]:>9.1%} "
                    f"{eta[0]:>5.2f}-{eta[1]:<4.2f}")
            if name == "fig8_liouvillian":
                sizes, width = plan_groups(predicted, ranks, overhead=args.group_overhead)
                grouped, eta = simulate_queue(actual, predicted, sizes, 0.0, args.latency,
                                              args.service, width=width,
                                              overhead=args.group_overhead, kinds=kinds)
                line += f" {ideal / grouped:>8.1%} {eta[0]:>5.2f}-{eta[1]:<4.2f}"
            print(line, flush=True)
    trajectory_blocks(args)
    return 0


def trajectory_blocks(args):
    """Realizations of Engine 3 with trajectories (run/flipflop_ed1.toml at N = 12: R
    realizations of ``--blocks`` blocks of 20 trajectories): the queue with one
    realization per item (as `compute` runs it), with rank groups that split the blocks
    round-robin (`plan_groups`, a group of g takes set-up + ceil(B / g) blocks), and
    with every block a work item (set-up paid again whenever a rank changes
    realization).  The ideal is one set-up per realization."""
    R, B, setup, block = args.realizations, args.blocks, args.setup, args.block_seconds
    # jumps vary by realization
    per_real = block * B * np.random.default_rng(2021).lognormal(0.0, JITTER, R)
    whole = setup + per_real
    print(f"\nEngine 3 with trajectories: {R} realizations x {B} blocks, set-up {setup:g} s, "
          f"block {block:g} s (x log-normal jitter per realization)")
    print(f"{'ranks':>6} {'items':>7} {'one rank/realization':>21} {'+ groups':>9} "
          f"{'blocks as items':>16}")
    for ranks in args.ranks:
        ideal = whole.sum() / ranks
        single = simulate_queue(whole, whole, [1] * ranks, 0.0, args.latency, args.service)[0]
        sizes, width = plan_groups(
            whole, ranks, sizes=tuple(2**k for k in range(12) if 2**k <= max(ranks // 4, 1))
        )
        grouped = _simulate_groups(whole, sizes, width, setup, per_real / B, B)
        parts = np.repeat(per_real / B, B)
        families = np.repeat(np.arange(R), B)
        blocks = simulate_queue(parts, parts, [1] * ranks, 0.0, args.latency, args.service,
                                families=families, setup=setup)[0]
        print(f"{ranks:>6} {R * B:>7} {ideal / single:>21.1%} {ideal / grouped:>9.1%} "
              f"{ideal / blocks:>16.1%}", flush=True)


def _simulate_groups(whole, sizes, width, setup, block, B):
    """Makespan of largest-first dealing of realizations to groups (each group takes
    the next realization of its width or narrower when free); a group of g computes a
    realization in setup + ceil(B / g) blocks."""
    import heapq
    order = np.argsort(-whole, kind="stable")
    free = [(0.0, i) for i in range(len(sizes))]
    heapq.heapify(free)
    taken = np.zeros(len(whole), dtype=bool)
    end = 0.0
    while free and not taken.all():
        t, i = heapq.heappop(free)
        g = sizes[i]
        k = next((k for k in order if not taken[k] and width[k] <= g), None)
        if k is None:
            continue
        taken[k] = True
        done = t + setup + -(-B // g) * block[k]
        end = max(end, done)
        heapq.heappush(free, (done, i))
    return end


# -- probe: MPI progress while ranks compute, and the queue's latency ----------------------

def _busy(seconds):
    """Compute in pure Python (no MPI calls, the GIL held) for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _busy_numpy(seconds):
    """Compute with numpy on 200 x 200 arrays (the GIL mostly released) for ``seconds``."""
    end = time.perf_counter() + seconds
    a = np.linspace(0.0, 1.0, 40000).reshape(200, 200)
    while time.perf_counter() < end:
        a = np.exp(np.sin(a)) * 0.5


def probe_progress(comm):
    """What completes while rank 0 computes for 1 s without MPI calls (printed on rank 1)."""
    from mpi4py import MPI
    out = {"thread_level_multiple": MPI.Query_thread() >= MPI.THREAD_MULTIPLE}
    buf = np.zeros(1, dtype=np.int64)
    win = MPI.Win.Create(buf, comm=comm)
    comm.Barrier()
    if comm.rank == 0:
        _busy(1.0)
    elif comm.rank == 1:
        time.sleep(0.1)                        # rank 0 is computing by now
        t = time.perf_counter()
        win.Lock(0, MPI.LOCK_SHARED)
        win.Fetch_and_op(np.ones(1, np.int64), np.zeros(1, np.int64), 0, 0, MPI.SUM)
        win.Unlock(0)
        out["rma_fetch_and_op_s"] = time.perf_counter() - t
    comm.Barrier()
    win.Free()
    request = comm.Iallreduce(np.ones(1), np.zeros(1))
    if comm.rank == 0:
        _busy(1.0)
    t = time.perf_counter()
    request.Wait()
    if comm.rank == 1:
        out["iallreduce_wait_s"] = time.perf_counter() - t
    for mode in ("blocking recv", "polling"):
        queue = comm.Dup()
        comm.Barrier()
        if comm.rank == 0:
            def serve():
                for _ in range(comm.size - 1):
                    if mode == "polling":
                        poll_recv(queue, MPI.ANY_SOURCE, MPI.ANY_TAG)
                    else:
                        queue.recv(source=MPI.ANY_SOURCE)
            thread = threading.Thread(target=serve)
            thread.start()
            cpu = time.process_time()
            time.sleep(1.0)
            thread.join()
            out[f"server {mode}: CPU s per s idle"] = time.process_time() - cpu
        else:
            time.sleep(1.0)
            queue.send(None, dest=0)
        queue.Free()
    return out


def probe_queue(comm, rounds=200):
    """Round trip of `WorkQueue.take` on ranks 1.. (items of zero cost: the queue alone),
    with rank 0 computing in pure Python (the GIL held) or sleeping; server seconds per request."""
    out = {}
    for main, work in (("sleeping", time.sleep), ("in numpy", _busy_numpy), ("in Python", _busy)):
        queue = WorkQueue(comm, np.ones(rounds * comm.size), worker=comm.rank != 0,
                          settings=QueueSettings(min_chunk_seconds=0.0, chunk_factor=1e9,
                                                 progress_seconds=1e9))
        latencies = []
        if comm.rank == 0:
            while queue.dealer.untaken() > 0:
                work(0.05)
        else:
            while True:
                t = time.perf_counter()
                chunk = queue.take()
                latencies.append(time.perf_counter() - t)
                if not chunk:
                    break
                time.sleep(0.002)
        service = queue.dealer.service_seconds if comm.rank == 0 else None
        queue.close()
        latencies = [x for r in comm.gather(latencies, root=0) or [] for x in r]
        if comm.rank == 0:
            out[f"take latency median ms (rank 0 {main})"] = 1e3 * float(np.median(latencies))
            out[f"take latency p90 ms (rank 0 {main})"] = 1e3 * float(np.percentile(latencies, 90))
            out[f"server us per request (rank 0 {main})"] = 1e6 * service
    return out


def queue_only(comm, table, seconds, realizations, slow_rank=-1):
    """The bench job without the runner: `WorkQueue` and sleeping items only (no
    sampling, no output).  Rank 0 returns the same measures as `run_bench`, with the
    ETA read every 0.5 s."""
    from mpi4py import MPI
    from ..physics.model import sample
    cfg = configuration.load(figure_config(table), [f"ensemble.realizations={realizations}"])
    engine = SleepEngine({"table": table})
    work, _ = total_seconds(table, realizations)
    scale = seconds * comm.size / work
    items = [(p, r) for p in cfg.cases() for r in range(realizations)]
    actual = np.array([scale * item_seconds(table, p, cfg.seed, r) for p, r in items])
    predicted = [
        engine.cost(p, cfg.times, cfg.request, lambda: sample(p, cfg.seed, r)) for p, r in items
    ]
    speed = 2.0 if comm.rank == slow_rank else 1.0
    kinds = np.repeat(np.arange(len(cfg.cases())), realizations)
    queue = WorkQueue(comm, predicted, settings=QueueSettings(progress_seconds=1e9), kinds=kinds)
    first = comm.allreduce(time.time(), op=MPI.MIN)
    etas, stop = [], threading.Event()
    if comm.rank == 0:
        def watch():
            while not stop.wait(0.5):
                etas.append((time.time(), queue.eta()))
        watcher = threading.Thread(target=watch)
        watcher.start()
    done = []
    while True:
        chunk = queue.take(done)
        if not chunk:
            break
        done = []
        for k in chunk:
            time.sleep(actual[k] * speed)
            done.append((k, actual[k] * speed))
    last = comm.allreduce(time.time(), op=MPI.MAX)
    queue.close()
    if comm.rank != 0:
        return None
    stop.set()
    watcher.join()
    ratios = [eta / (last - t) for t, eta in etas
              if eta is not None and 0.2 <= (t - first) / (last - first) <= 0.7]
    return {"table": table, "ranks": comm.size, "items": len(items), "wall": last - first,
            "efficiency": actual.sum() / (comm.size * (last - first)), "eta": ratios}


def probe(args):
    cmd = ["mpirun", "--oversubscribe", "-n", str(args.ranks), sys.executable, "-m",
           "tlsmpi.bench.schedule", "probe"]
    res = subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, timeout=args.timeout)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    print(f"MPI progress and queue latency, {args.ranks} ranks on {os.cpu_count()} cores:")
    for key, value in json.loads(res.stdout.strip().splitlines()[-1]).items():
        print(f"  {key}: {value:.3g}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tlsmpi.bench schedule", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", help="default 32 (bench), 256 1024 "
                        "(--extrapolate), 3 (--probe)")
    parser.add_argument("--tables", nargs="*", default=list(FIGURES),
                        choices=["uniform", "heavy", *FIGURES])
    parser.add_argument("--seconds", type=float, default=30.0, help="ideal wall time of a run")
    parser.add_argument("--realizations", type=int, default=100, help="per case")
    parser.add_argument("--slow", action="store_true", help="also: 2 ranks, one at half speed")
    parser.add_argument("--eta", metavar="CONFIG",
                        help="also: the real runner on CONFIG (2 ranks), its ETA against the truth")
    parser.add_argument("--module", action="store_true",
                        help="the work queue alone (tlsmpi.parallel), without the runner")
    parser.add_argument("--timeout", type=float, default=900.0, help="per mpirun (s)")
    parser.add_argument("--extrapolate", action="store_true")
    parser.add_argument("--item-overhead", type=float, help="s per item (default: measure it)")
    parser.add_argument("--latency", type=float, default=3.5e-3, help="request round trip (s)")
    parser.add_argument("--service", type=float, default=1e-4, help="server s per request")
    parser.add_argument("--allreduce", type=float, default=5e-6, help="s x log2 P per round")
    parser.add_argument("--group-overhead", type=float, default=0.15,
                        help="parallel overhead per doubling of a group")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--blocks", type=int, default=50,
                        help="--extrapolate, Engine 3: blocks of 20 trajectories per realization")
    parser.add_argument("--setup", type=float, default=5.0,
                        help="--extrapolate, Engine 3: set-up seconds of a realization")
    parser.add_argument("--block-seconds", type=float, default=10.0,
                        help="--extrapolate, Engine 3: seconds of one block")
    args = parser.parse_args(argv)
    if args.extrapolate:
        args.ranks = args.ranks or [256, 1024]
        return extrapolate(args)
    args.ranks = (args.ranks or [3 if args.probe else 32])[0]
    return probe(args) if args.probe else bench(args)


if __name__ == "__main__":                     # the MPI parts of --probe and --module
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    if sys.argv[1] == "probe":
        parts = world.gather({**probe_progress(world), **probe_queue(world)}, root=0)
        result = {k: v for part in parts for k, v in part.items()}
    else:
        result = queue_only(
            world, sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        )
    if world.rank == 0:
        print(json.dumps(result), flush=True)
