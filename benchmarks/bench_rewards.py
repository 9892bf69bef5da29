"""Rewards per second through the engine, one worker thread: read+write vs cached vs batched.

    python benchmarks/bench_rewards.py [--n 4000] [--batch 64] [--rounds 3]
                                       [--redis-url redis://127.0.0.1:6379/0] [--json out.json]

For each store (Memory, SQLite in a temp file, Redis when reachable) ``n`` decisions of a Beta
bandit with 5 arms are made, then rewarded in one of four ways:

* ``single, read``   ``Engine.record_reward`` by an engine that did not make the decisions (its
  payload cache is empty): ``get_pending`` then ``apply_reward``, two round trips (before
  issue 16 every reward was this);
* ``single, cached`` ``Engine.record_reward`` by the engine that made them: one
  ``apply_reward`` (the payload comes from the engine's cache);
* ``batch, read``    ``Engine.record_rewards`` in batches of ``--batch`` by the other engine: one
  ``get_pending_many`` and one ``apply_reward_many`` per batch;
* ``batch, cached``  the same by the engine that made them: one ``apply_reward_many`` per batch
  (what the service's reward coalescer does under concurrency).

Each way runs ``--rounds`` times on fresh decisions, alternating with the others (so a
neighbour's load falls on all alike); the figure is the best round's rewards per second. Every
round checks the books: each decision applied exactly once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import harness
from harness import Col, Table
from tsbandit.engine import BanditSpec, Engine
from tsbandit.stores import Store, open_store

WAYS = ("single, read", "single, cached", "batch, read", "batch, cached")


def reachable(url: str) -> bool:
    try:
        store = open_store(url)
        store.ping()
        store.close()
        return True
    except Exception:  # any failure means "skip Redis"
        return False


def one_round(store: Store, way: str, n: int, batch: int) -> float:
    """Rewards per second of one round (fresh bandit, fresh decisions), books checked."""
    name = f"rw{uuid.uuid4().hex[:8]}"
    maker = Engine(store, seed=1)
    other = Engine(store, seed=2)
    maker.create_bandit(BanditSpec(name=name, arms=[f"a{i}" for i in range(5)],
                                   reward_window=3600.0))
    ids = [d.decision_id for start in range(0, n, 1000)
           for d in maker.decide_batch(name, n=min(1000, n - start))]
    eng = maker if way.endswith("cached") else other
    eng.stats(name)  # its state read once, as a serving worker has it
    run: Callable[[], object]
    if way.startswith("single"):
        def run() -> object:
            return [eng.record_reward(i, k % 2) for k, i in enumerate(ids)]
    else:
        def run() -> object:
            return [eng.record_rewards([(i, k % 2) for k, i in
                                        enumerate(ids[s:s + batch], start=s)])
                    for s in range(0, n, batch)]
    t0 = time.perf_counter()
    run()
    dt = time.perf_counter() - t0
    snap = store.read(name)
    applied = snap.arrays["successes"].sum() + snap.arrays["failures"].sum()
    assert applied == n and snap.version == n, (applied, snap.version)
    maker.delete_bandit(name)
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="rewards per round")
    ap.add_argument("--batch", type=int, default=64, help="rewards per record_rewards call")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rewards-"))
    stores = {"memory": "memory://", "sqlite": f"sqlite:///{tmp / 'r.db'}"}
    if reachable(args.redis_url):
        stores["redis"] = f"{args.redis_url}?prefix=bench-{uuid.uuid4().hex[:6]}:"
    else:
        print(f"# Redis not reachable at {args.redis_url}: skipped", file=sys.stderr)
    load_before = harness.load_average()
    results: dict[str, dict[str, float]] = {}
    for sname, url in stores.items():
        store = open_store(url)
        best = {w: 0.0 for w in WAYS}
        for _ in range(args.rounds):
            for w in WAYS:
                best[w] = max(best[w], one_round(store, w, args.n, args.batch))
        store.close()
        results[sname] = best
    print(f"\nRewards per second, Engine in process, one thread, n={args.n} per round, "
          f"batches of {args.batch}, best of {args.rounds} rounds; load average "
          f"{load_before} -> {harness.load_average()}\n")
    table = Table(Col("store", 8, align="<"), *(Col(w, 15, ".0f") for w in WAYS),
                  Col("cached/read", 12), Col("batch/read", 11))
    print(table.header())
    for sname, r in results.items():
        base = r["single, read"]
        print(table.row(sname, *(r[w] for w in WAYS), harness.ratio(r["single, cached"], base),
                        harness.ratio(r["batch, cached"], base)))
    print("\n(every round checked: each decision applied exactly once)")
    harness.write_json(args.json, {"n": args.n, "batch": args.batch, "results": results,
                                   "load_average": load_before})


if __name__ == "__main__":
    main()
