"""Engines in several processes over one shared store (SQLite, Redis, Redis Cluster): books
exact, rewards exactly once, expiry swept exactly once, and state that survives a restart."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from tsbandit.engine import BanditSpec, Engine

from . import workers
from .workers import T0

ARMS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def ctx() -> mp.context.BaseContext:
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(["numpy", "scipy.special", "tsbandit.engine", "tsbandit.stores",
                              "redis", "engine.workers"])
    return c


def _run(procs: list, queue, timeout: float = 120.0) -> list:
    for p in procs:
        p.start()
    results = [queue.get(timeout=timeout) for _ in procs]
    deadline = time.monotonic() + 30
    for p in procs:
        p.join(max(deadline - time.monotonic(), 0.1))
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return results


def _arms(engine: Engine, name: str) -> dict[str, dict]:
    return {r["arm"]: r for r in engine.stats(name)["arms"]}


def test_engines_in_four_processes_keep_exact_books(shared_backend, ctx) -> None:
    engine = Engine(shared_backend.open(), seed=0, clock=lambda: T0)
    engine.create_bandit(BanditSpec(name="shared", arms=ARMS))
    n_procs, n = 4, 150
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=workers.session_worker,
                         args=(shared_backend.url, "shared", w, n, start, queue))
             for w in range(n_procs)]
    for p in procs:
        p.start()
    start.set()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * n_procs
    arms = _arms(engine, "shared")
    for arm in ARMS:
        wins = sum(r.get(arm, [0, 0])[0] for r in results)
        losses = sum(r.get(arm, [0, 0])[1] for r in results)
        assert arms[arm]["alpha"] == 1 + wins and arms[arm]["beta"] == 1 + losses
    assert sum(a["pulls"] for a in arms.values()) == n_procs * n
    events = list(engine.store.iter_events("shared"))
    assert len(events) == 2 * n_procs * n  # one decision and one reward event each


def test_same_decision_rewarded_from_four_engines_applies_once(shared_backend, ctx) -> None:
    engine = Engine(shared_backend.open(), seed=0, clock=lambda: T0)
    engine.create_bandit(BanditSpec(name="race", arms=ARMS))
    decisions = [engine.decide("race") for _ in range(20)]
    ids = [d.decision_id for d in decisions]
    n_racers = 4
    barrier, queue = ctx.Barrier(n_racers), ctx.Queue()
    procs = [ctx.Process(target=workers.reward_racer,
                         args=(shared_backend.url, ids, barrier, queue))
             for _ in range(n_racers)]
    results = _run(procs, queue)
    for i in range(len(ids)):
        column = sorted(r[i] for r in results)
        assert column == ["applied"] + ["duplicate"] * (n_racers - 1)
    arms = _arms(engine, "race")
    for arm in ARMS:
        shown = sum(d.arm == arm for d in decisions)
        assert arms[arm]["alpha"] == 1 + shown and arms[arm]["beta"] == 1


def test_concurrent_sweepers_apply_the_default_reward_once(shared_backend, ctx) -> None:
    engine = Engine(shared_backend.open(), seed=0, clock=lambda: T0)
    engine.create_bandit(BanditSpec(name="sweep", arms=ARMS, reward_window=60,
                                    default_reward=0.0))
    decisions = engine.decide_batch("sweep", n=120)
    rewarded = decisions[:20]
    for d in rewarded:
        engine.record_reward(d.decision_id, 1)
    n_sweepers = 4
    barrier, queue = ctx.Barrier(n_sweepers), ctx.Queue()
    procs = [ctx.Process(target=workers.sweeper,
                         args=(shared_backend.url, "sweep", T0 + 61, barrier, queue))
             for _ in range(n_sweepers)]
    settled = _run(procs, queue)
    assert sum(settled) == 100  # each expired decision settled by exactly one sweeper
    arms = _arms(engine, "sweep")
    assert sum(a["pulls"] for a in arms.values()) == 120
    assert sum(a["rewards"] for a in arms.values()) == 20
    for arm in ARMS:
        wins = sum(d.arm == arm for d in rewarded)
        losses = sum(d.arm == arm for d in decisions[20:])
        assert arms[arm]["alpha"] == 1 + wins and arms[arm]["beta"] == 1 + losses
    expired = [e for e in engine.store.iter_events("sweep") if e["type"] == "expired"]
    assert sorted(e["decision_id"] for e in expired) == sorted(d.decision_id
                                                               for d in decisions[20:])


def test_restart_keeps_bandit_statistics_and_pending_decisions(shared_backend) -> None:
    """Close the store (SQLite file, Redis client) and open a new one: same state."""
    first = Engine(shared_backend.open(), seed=0, clock=lambda: T0)
    spec = BanditSpec(name="keep", arms=ARMS, reward_window=3600, default_reward=0.0,
                      half_life=86_400.0)
    first.create_bandit(spec)
    for i in range(30):
        d = first.decide("keep")
        first.record_reward(d.decision_id, i % 2)
    done = first.decide("keep")
    first.record_reward(done.decision_id, 1)
    waiting = first.decide("keep", user_id="u7")
    before = first.stats("keep")
    first.store.close()

    second = Engine(shared_backend.open(), seed=1, clock=lambda: T0)
    assert second.get_bandit("keep").to_config() == spec.to_config()
    after = second.stats("keep")
    assert after["model_version"] == before["model_version"]
    for b, a in zip(before["arms"], after["arms"], strict=True):
        for key in ("alpha", "beta", "pulls", "rewards", "mean", "lower", "upper"):
            assert a[key] == b[key], key
    assert second.pending(waiting.decision_id)["user_id"] == "u7"
    assert second.record_reward(done.decision_id, 1).duplicate
    assert second.record_reward(waiting.decision_id, 1).status == "applied"
    assert sum(a["pulls"] for a in second.stats("keep")["arms"]) == 32
