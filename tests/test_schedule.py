"""The shared work queue (tlsmpi.parallel): dealing, stop agreement, groups, progress."""
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from tlsmpi.parallel import Dealer, QueueSettings, WorkQueue, group_efficiency, plan_groups

from conftest import ROOT, mpi_env

#: Tiny guided chunks (chunk_factor 1e9) and no minimum chunk time.
GREEDY = QueueSettings(chunk_factor=1e9, min_chunk_seconds=0.0)

DRIVER = os.path.join(ROOT, "tests", "schedule_driver.py")


def drive(scenario, ranks):
    cmd = ["mpirun", "-n", str(ranks), sys.executable, DRIVER, scenario]
    res = subprocess.run(cmd, env=mpi_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return np.array(out["costs"]), out["ranks"], res.stdout


def taken(ranks):
    items = [k for r in ranks for k in r["items"]]
    assert len(items) == len(set(items)), "an item was handed out twice"
    return set(items)


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_every_item_once_and_progress_logged(ranks):
    costs, report, stdout = drive("all", ranks)
    assert taken(report) == set(range(len(costs)))
    assert not any(r["stopped"] for r in report)
    assert all(r["items"] for r in report), "a rank got no work"
    assert f"{len(costs)}/{len(costs)} realizations done, 100.0% of the predicted work" in stdout
    assert "ETA" in stdout


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_stop_reported_by_one_rank_stops_all(ranks):
    costs, report, stdout = drive("stop", ranks)
    assert all(r["stopped"] for r in report)
    assert 0 < len(taken(report)) < len(costs)
    assert "stop signal reported by rank 1" in stdout


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, scenario", [(2, "collect"), (3, "collect"), (3, "collect-stop")])
def test_collector_hands_complete_families_to_their_homes(ranks, scenario):
    """Parts of a family (5 items) computed anywhere reach the family's home rank and
    come back once, complete, in part order; after a stop, exactly the families with a
    part not computed are reported incomplete, each by its home."""
    costs, report, _ = drive(scenario, ranks)
    computed = taken(report)
    families = {f for f in range(len(costs) // 5) if any(5 * f + p in computed for p in range(5))}
    got = {}
    for rank, r in enumerate(report):
        for f, values in r["complete"]:
            assert f not in got and f % ranks == rank            # home: workers[f % 3]
            assert [v[0] for v in values] == [5 * f + p for p in range(5)]
            assert all(5 * f + p in report[v[1]]["items"] for p, v in enumerate(values))
            got[f] = values
        assert all(f % ranks == rank for f in r["incomplete"])
    incomplete = {f for r in report for f in r["incomplete"]}
    assert set(got) | incomplete == families and not set(got) & incomplete
    assert incomplete == {f for f in families if not all(5 * f + p in computed for p in range(5))}
    if scenario == "collect":
        assert len(got) == len(costs) // 5
    else:
        assert incomplete, "the stop left no family incomplete: the test did not test it"


def test_family_dealing_keeps_workers_on_their_family():
    """With families (8 realizations of 10 parts, 4 workers asking in turn), every item is
    dealt once, a worker's chunk lies in one family in part order, and a family is set
    up about once per worker that helps with it: far fewer (worker, family) pairs than
    the same dealing without families."""
    costs = np.repeat(np.random.default_rng(3).uniform(1, 2, 8), 10)
    families = np.repeat(np.arange(8), 10)

    def deal(fams):
        dealer = Dealer(costs, {w: 1 for w in range(4)}, kinds=None, families=fams)
        chunks, active = [], list(range(4))
        while active:
            for w in list(active):
                chunk = dealer.handle(w, [], False, 0.0)
                if chunk:
                    chunks.append((w, chunk))
                else:
                    active.remove(w)
        return chunks

    chunks = deal(families)
    items = [k for _, c in chunks for k in c]
    assert sorted(items) == list(range(80))
    assert all(len(set(families[c])) == 1 and c == sorted(c) for _, c in chunks)
    pairs = {(w, families[k]) for w, c in chunks for k in c}
    plain = {(w, families[k]) for w, c in deal(None) for k in c}
    assert len(pairs) <= 8 + 2 * 4 < len(plain)


def test_family_dealing_measures_every_kind_early():
    """Two cases whose cost model errs differently (kind 0: 1 s per unit of predicted
    cost, kind 1: 0.1 s), 10 realizations of 10 parts each, one worker: a family of each
    kind is opened first, so from 20 % of the work on the ETA is within 1.5x of the
    true remaining time (dealing largest first without this, kind 1 would be predicted
    at kind 0's rate: 2.5x too long)."""
    costs = np.repeat([10.0] * 10 + [5.0] * 10, 10)
    families = np.repeat(np.arange(20), 10)
    kinds = (families >= 10).astype(int)
    seconds = costs * np.where(kinds == 0, 1.0, 0.1)
    dealer = Dealer(costs, {0: 1}, kinds=kinds, families=families,
                    settings=QueueSettings(max_chunk_seconds=30.0))
    now, done, opened = 0.0, [], []
    while True:
        chunk = dealer.handle(0, done, False, now)
        if not chunk:
            break
        opened += [int(families[chunk[0]])] if int(families[chunk[0]]) not in opened else []
        now += seconds[chunk].sum()
        done = [(k, seconds[k]) for k in chunk]
        left = seconds.sum() - now
        if now > 0.2 * seconds.sum() and left > 0:
            assert 1 / 1.5 < dealer.eta(now) / left < 1.5
    assert {int(kinds[families == f][0]) for f in opened[:2]} == {0, 1}


@pytest.mark.parametrize("families", [None, np.arange(1000) // 100])
def test_chunks_capped_in_wall_time(families):
    """One worker, 1000 items of 1 s each: chunks grow only after a measurement and never
    beyond max_chunk_seconds of measured wall time (so rank 0 hears of progress and one
    rank never takes half the job at once), with and without families."""
    dealer = Dealer(np.ones(1000), {0: 1}, settings=QueueSettings(max_chunk_seconds=60.0),
                    families=families)
    done, sizes = [], []
    while True:
        chunk = dealer.handle(0, done, False, 0.0)
        if not chunk:
            break
        sizes.append(len(chunk))
        done = [(k, 1.0) for k in chunk]
    assert sum(sizes) == 1000 and sizes[0] == 1 and max(sizes) == 60


@pytest.mark.mpi
def test_half_speed_rank_gets_less_work():
    """Rank 1 sleeps twice as long per item: a static deal would take 2x the ideal
    time; the queue gives rank 0 about two thirds of the work and stays near 4/3."""
    costs, report, _ = drive("slow", 2)
    share = costs[report[0]["items"]].sum() / costs.sum()
    assert 0.55 < share < 0.8
    ideal = costs.sum() / 1.5                          # speeds 1 and 1/2
    assert max(r["wall"] for r in report) < 1.3 * ideal


@pytest.mark.mpi
def test_wide_items_go_to_the_wide_group():
    costs, report, _ = drive("groups", 3)
    assert taken(report) == set(range(len(costs)))
    heavy = set(np.flatnonzero(costs >= 0.3))
    assert heavy <= set(report[0]["items"])
    assert not report[1]["items"]                       # a member, not a worker


@pytest.mark.mpi
@pytest.mark.parametrize("scenario", ["late", "rankserver"])
def test_rank0_serving_only_and_closing_early(scenario):
    costs, report, _ = drive(scenario, 3)
    assert not report[0]["items"]
    assert taken(report) == set(range(len(costs)))
    assert not any(r["stopped"] for r in report)


@pytest.mark.needs_mpi                 # a queue on MPI.COMM_SELF
def test_eta_uses_measured_wall_per_predicted_cost(caplog):
    """One rank, 10 items of predicted cost 1 (one kind) taking 2 ms each: the kind's
    first three items come one by one, then a guided chunk of 3 (remaining 7 / 2, whole
    items); the ETA is then 7 x 2 ms; percent counts the earlier job's done_cost."""
    from mpi4py import MPI
    queue = WorkQueue(MPI.COMM_SELF, np.ones(10), done_cost=10.0, done_items=10,
                      settings=QueueSettings(min_chunk_seconds=0.0, progress_seconds=0.0))
    chunks, done = [], []
    assert queue.eta() is None
    with caplog.at_level(logging.INFO, logger="tlsmpi"):
        for _ in range(4):
            chunks.append(queue.take(done))
            done = [(k, 0.002) for k in chunks[-1]]
    assert [len(c) for c in chunks] == [1, 1, 1, 3]
    assert len({k for c in chunks for k in c}) == 6
    assert queue.eta() == pytest.approx(7 * 0.002, rel=0.2)
    assert "13/20 realizations done, 65.0% of the predicted work" in caplog.text
    queue.take(done, stop=True)
    assert queue.take() == []
    assert queue.close() is True


def test_plan_groups_heavy_tail():
    costs = np.random.default_rng(3).pareto(1.2, 2000) + 1.0
    n_ranks = 256
    group_sizes, widths = plan_groups(costs, n_ranks, overhead=0.1)
    assert sum(group_sizes) == n_ranks
    assert set(widths) <= set(group_sizes)
    fair = costs.sum() / n_ranks
    walls = costs / (widths * group_efficiency(widths, 0.1))
    assert np.all((walls <= 0.5 * fair) | (widths == max(group_sizes)))
    assert widths.max() > 1
    group_sizes = np.array(group_sizes)
    for g in set(widths) - {1}:           # the groups of a size can hold their items' walls
        assert walls[widths == g].sum() <= np.count_nonzero(group_sizes == g) * fair


def test_plan_groups_uniform_costs_stay_single():
    group_sizes, widths = plan_groups(np.ones(100), 8)
    assert group_sizes == [1] * 8 and np.all(widths == 1)


def test_eta_follows_a_cost_model_that_errs_with_size():
    """Walls grow as cost^0.5 while the model says cost: once the items of cost 100 and
    10 are measured, the ETA of those of cost 1 and 0.1 is their true sum."""
    costs = np.repeat([100.0, 10.0, 1.0, 0.1], 10)
    dealer = Dealer(costs, {0: 1}, settings=GREEDY, kinds=None)
    wall = 0.01 * costs ** 0.5
    chunk, now = dealer.handle(0, [], False, 0.0), 0.0
    while costs[chunk[0]] >= 10:
        now += wall[chunk].sum()
        chunk = dealer.handle(0, [(k, wall[k]) for k in chunk], False, now)
    remaining = wall[costs < 10].sum()
    assert dealer.eta(now) == pytest.approx(remaining, rel=16 * np.finfo(float).eps * len(costs))


def test_three_items_of_every_kind_first_and_eta_per_kind():
    """Two cases of equal predicted cost, the second 3x slower than the model says:
    three items of each kind come first, one per chunk; once they are measured (and a
    stop leaves the rest untaken), an item's predicted rank-seconds on 2 ranks is the
    mean of the fit (the geometric mean sqrt(3)) and 3 x its kind's ratio, weights 1, 3."""
    costs, kinds = np.ones(20), np.repeat([0, 1], 10)
    wall = 1.0 + 2.0 * kinds
    dealer = Dealer(costs, {0: 1, 1: 1}, settings=QueueSettings(min_chunk_seconds=0.0),
                    kinds=kinds)
    clock = [0.0, 0.0]                  # each worker reports when its item is computed

    def report(w, k, stop=False):
        clock[w] += wall[k]
        return dealer.handle(w, [(k, wall[k])], stop, clock[w])

    first = [dealer.handle(w, [], False, 0.0) for w in range(2)]
    for _ in range(2):
        first += [report(w, first[-2 + w][0]) for w in range(2)]
    assert [len(c) for c in first] == [1] * 6
    assert sorted(kinds[[c[0] for c in first]]) == [0, 0, 0, 1, 1, 1]
    for w in range(2):
        assert report(w, first[-2 + w][0], stop=w == 0) == []
    expected = 7 * ((np.sqrt(3) + 3 * 1) + (np.sqrt(3) + 3 * 3)) / 4 / 2
    assert dealer.eta(max(clock)) == pytest.approx(expected, rel=16 * np.finfo(float).eps * 20)


def test_eta_counts_the_time_outside_the_engine_call():
    """Items computed in 1 s whose chunks take 3 s from hand-out to report (writing rows,
    messages): the ETA is 3 s per remaining item, not 1 s."""
    costs = np.ones(40)
    dealer = Dealer(costs, {0: 1}, settings=QueueSettings(min_chunk_seconds=0.0))
    chunk, now = dealer.handle(0, [], False, 0.0), 0.0
    while dealer.done < 20:
        now += 3.0 * len(chunk)
        chunk = dealer.handle(0, [(k, 1.0) for k in chunk], False, now)
    left = 40 - dealer.done - len(chunk)
    assert dealer.eta(now) == pytest.approx(3.0 * (left + len(chunk)),
                                            rel=16 * np.finfo(float).eps * 40)


def test_progress_rate_and_eta_come_from_one_estimate():
    """The printed %/min times the printed ETA is the percent of the work left (to the
    printed digits), also after a resume (work done by an earlier job) and when the
    model errs with size (the rate is not the average of the job so far)."""
    import re
    from tlsmpi.parallel.progress import Progress
    costs = np.repeat([100.0, 10.0, 1.0, 0.1], 10)
    dealer = Dealer(costs, {0: 1}, settings=GREEDY, kinds=None)
    progress = Progress(len(costs), costs.sum(), done_items=5, done_cost=250.0)
    assert "ETA unknown" in progress.line(dealer, 0.0)
    wall = 0.01 * costs ** 0.5
    chunk, now, lines = dealer.handle(0, [], False, 0.0), 0.0, 0
    while chunk:
        now += wall[chunk].sum()
        chunk = dealer.handle(0, [(k, wall[k]) for k in chunk], False, now)
        line = progress.line(dealer, now)
        if not chunk:
            assert line == "45/45 realizations done, 100.0% of the predicted work, ETA 0:00:00"
            break
        match = re.search(r"([\d.]+)% of the predicted work, ([\d.e+-]+)%/min expected, "
                          r"ETA (\d+):(\d\d):(\d\d)", line)
        assert match, line
        percent, rate = float(match[1]), float(match[2])
        eta = 3600 * int(match[3]) + 60 * int(match[4]) + int(match[5])
        left = 100 * (1 - (250.0 + dealer.predicted_done) / (250.0 + costs.sum()))
        assert percent == pytest.approx(100 - left, abs=0.05)
        assert eta == pytest.approx(dealer.eta(now), abs=0.5)
        # printed rounding: 3 significant digits of the rate (relative 5e-3), whole seconds
        # of the ETA, 0.05 of the percent
        assert rate * eta / 60 == pytest.approx(
            100 - percent, abs=5e-3 * (100 - percent) + rate / 60 * 0.5 + 0.05)
        lines += 1
    assert lines >= 3
