"""Child-process bodies for the multi-process store tests (imported by forkserver children, so
this module stays light: numpy and tsbandit.stores only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tsbandit.stores import open_store

K = 4


def layout(k: int = K) -> dict[str, np.ndarray]:
    """Statistics of the test bandit: counts, sums and a 2x2 matrix per arm."""
    return {"n": np.zeros(k), "s": np.zeros(k), "A": np.zeros((k, 2, 2))}


def reward_delta(arm: int, j: int, k: int = K) -> dict[str, np.ndarray]:
    """An integer-valued delta (sums are exact in float64, so totals can be compared exactly)."""
    d = layout(k)
    x = float(j % 5)
    d["n"][arm] = 1.0
    d["s"][arm] = float(j % 3)
    d["A"][arm] = [[1.0, x], [x, x * x]]
    return d


def plain_delta(arm: int, k: int = K) -> dict[str, np.ndarray]:
    d = {"s": np.zeros(k)}
    d["s"][arm] = 10.0
    return d


def expected_totals(n_workers: int, n_rewards: int, k: int = K) -> dict[str, np.ndarray]:
    """Final statistics after :func:`reward_worker` ran in ``n_workers`` processes."""
    out = layout(k)
    for w in range(n_workers):
        for j in range(n_rewards):
            arm = (w + j) % k
            for key, v in reward_delta(arm, j, k).items():
                out[key] += v
            if j % 4 == 0:
                out["s"] += plain_delta(arm, k)["s"]
    return out


def reward_worker(url: str, bandit: str, worker: int, n: int, start: Any) -> None:
    """``n`` decisions and their rewards (plus a plain add every 4th); all must apply."""
    store = open_store(url)
    start.wait()
    for j in range(n):
        did = f"w{worker}-{j}"
        arm = (worker + j) % K
        store.put_pending(bandit, did, {"arm": arm}, deadline=1e12)
        res = store.apply_reward(bandit, did, reward_delta(arm, j), {"w": worker, "j": j}, now=1.0)
        if res.status != "applied":
            raise SystemExit(f"reward {did} was {res.status}")
        if j % 4 == 0:
            store.add(bandit, plain_delta(arm))
    store.close()


def race_worker(url: str, bandit: str, ids: list[str], barrier: Any, queue: Any,
                racer: int = 0) -> None:
    """Reward every decision of ``ids`` at the same moment as the other racers, each reward
    with outcome ``racer``; report (applied, duplicates, {id: racer} of those applied)."""
    store = open_store(url)
    applied = duplicates = 0
    won: dict[str, int] = {}
    for did in ids:
        barrier.wait()
        arm = int(did[1:]) % K
        res = store.apply_reward(bandit, did, reward_delta(arm, 0), {"id": did}, now=1.0,
                                 outcome=float(racer))
        if res.status == "applied":
            applied += 1
            won[did] = racer
        else:
            duplicates += 1
    store.close()
    queue.put((applied, duplicates, won))


def crash_worker(url: str, bandit: str, ids: list[str], counter: Any) -> None:
    """Reward ``ids`` one by one until killed; ``counter`` counts finished rewards."""
    store = open_store(url)
    for did in ids:
        i = int(did[1:])
        store.apply_reward(bandit, did, reward_delta(i % K, i), {"id": did}, now=1.0)
        with counter.get_lock():
            counter.value += 1
    store.close()


def assign_worker(url: str, bandit: str, keys: list[str], barrier: Any, queue: Any,
                  racer: int) -> None:
    """Assign every key of ``keys`` at the same moment as the other racers, each with its own
    payload; report ``{key: (created, payload, expires_at)}``."""
    store = open_store(url)
    got: dict[str, tuple[bool, dict[str, Any], float]] = {}
    for key in keys:
        barrier.wait()
        a = store.assign(bandit, key, {"id": f"r{racer}-{key}", "racer": racer}, 1e12, 1.0)
        got[key] = (a.created, a.payload, a.expires_at)
    store.close()
    queue.put(got)
