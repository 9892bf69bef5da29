"""Child-process bodies for the multi-process engine tests (forkserver children)."""

from __future__ import annotations

from typing import Any

from tsbandit.engine import Engine
from tsbandit.stores import open_store

T0 = 1_700_000_000.0


def session_worker(url: str, bandit: str, worker: int, n: int, start: Any, queue: Any) -> None:
    """``n`` decide-then-reward sessions through an engine of its own; report what it did."""
    store = open_store(url)
    engine = Engine(store, seed=worker, clock=lambda: T0)
    start.wait()
    done: dict[str, list[int]] = {}
    for j in range(n):
        d = engine.decide(bandit)
        reward = (worker + j) % 3 == 0
        out = engine.record_reward(d.decision_id, int(reward))
        if out.status != "applied":
            raise SystemExit(f"{d.decision_id} was {out.status}")
        wins_losses = done.setdefault(d.arm, [0, 0])
        wins_losses[0 if reward else 1] += 1
    store.close()
    queue.put(done)


def reward_racer(url: str, ids: list[str], barrier: Any, queue: Any) -> None:
    """Reward every decision of ``ids`` at the same moment as the other racers."""
    store = open_store(url)
    engine = Engine(store, seed=None, clock=lambda: T0)
    statuses = []
    for did in ids:
        barrier.wait()
        statuses.append(engine.record_reward(did, 1).status)
    store.close()
    queue.put(statuses)


def sweeper(url: str, bandit: str, now: float, barrier: Any, queue: Any) -> None:
    """Sweep the bandit's expired decisions at the same moment as the other sweepers."""
    store = open_store(url)
    engine = Engine(store, seed=None, clock=lambda: now)
    barrier.wait()
    total = 0
    for _ in range(5):
        total += engine.sweep_expired(bandit, limit=50)
    store.close()
    queue.put(total)
