"""Soak: does a store stay the same size under a steady load of decisions, rewards and expiries?

    python benchmarks/soak_store.py [--decisions 100000] [--stores memory,sqlite,redis]
                                    [--redis-url redis://127.0.0.1:6379/0] [--no-baseline]

One Beta bandit (5 arms, ``reward_window`` 60 s, ``default_reward`` 0) takes ``--decisions``
decisions in batches of 100 per simulated second (a fake clock: the run takes minutes, the
simulated traffic ~17 minutes); 30% of them are rewarded 10 s later, the rest expire. Every 10
simulated seconds ``Engine.sweep()`` runs (what each service worker does every
``TSBANDIT_SWEEP_INTERVAL``): expired decisions get the default reward, consumed decisions older
than ``retention`` (120 s) are purged, the event log is trimmed to ``events_maxlen`` (5,000).
The size of the store is sampled every 10% of the run, 9 simulated seconds after the last sweep
(just before the next one: the peak between two sweeps):

* memory: decisions held, events held;
* sqlite: decision and event rows, and the file's size after ``wal_checkpoint(TRUNCATE)`` (pages
  freed by the purge are reused, so the file stops growing);
* redis: decisions held (``HLEN``), events (``XLEN``), and ``MEMORY USAGE`` summed over the
  bandit's keys (all share its hash tag).

The baseline (``--no-baseline`` skips it) is the same load on a store with its default options
(7-day retention, every event kept) and the sweep never run -- ``tsbandit serve`` before it
swept: every decision stays, ``pending`` forever, and every event.
Expected plateau with the sweep: 100 decisions/s x (60 s window + 120 s retention + up to
10 s until the next sweep) ~ 19,000 decisions held; events at 5,000 after each sweep.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harness
from harness import Col, Stopwatch, Table
from tsbandit.engine import BanditSpec, Engine
from tsbandit.stores import Store, open_store

BATCH = 100  # decisions per simulated second
REWARD_SHARE = 0.3
REWARD_DELAY = 10  # simulated seconds
WINDOW, RETENTION, MAXLEN, SWEEP_EVERY = 60.0, 120.0, 5000, 10


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def sizer(kind: str, store: Store, name: str) -> Callable[[], dict[str, Any]]:
    """A function that measures the store's size now."""
    if kind == "memory":
        def measure() -> dict[str, Any]:
            b = store._bandits[name]  # type: ignore[attr-defined]
            return {"decisions": len(b.pending), "events": len(b.events), "bytes": None}
        return measure
    if kind == "sqlite":
        path = store.path  # type: ignore[attr-defined]

        def measure() -> dict[str, Any]:
            con = sqlite3.connect(path)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                dec = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
                ev = con.execute("SELECT count(*) FROM events").fetchone()[0]
            finally:
                con.close()
            return {"decisions": dec, "events": ev, "bytes": Path(path).stat().st_size}
        return measure
    import redis

    keys = store._keys(name)  # type: ignore[attr-defined]
    client = redis.Redis.from_url(store._redis.client_url)  # type: ignore[attr-defined]

    def measure() -> dict[str, Any]:
        used = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
        return {"decisions": client.hlen(keys[1]), "events": client.xlen(keys[5]),
                "bytes": used}
    return measure


def run(kind: str, url: str, n: int, sweep: bool, seed: int = 0) -> list[dict[str, Any]]:
    """The load on one store; the size samples (one per 10% of the decisions)."""
    # the baseline is the store as it was used before: default options (7-day retention,
    # every event kept) and no sweep
    options = {"retention": RETENTION, "events_maxlen": MAXLEN} if sweep else {}
    store = open_store(url, **options)
    clock = Clock()
    engine = Engine(store, seed=seed, clock=clock)
    name = f"soak-{uuid.uuid4().hex[:8]}"
    engine.create_bandit(BanditSpec(name=name, arms=["a", "b", "c", "d", "e"],
                                    reward_window=WINDOW, default_reward=0))
    measure = sizer(kind, store, name)
    rng = np.random.default_rng(seed)
    due: dict[int, list[str]] = {}
    samples = []
    made = 0
    second = 0
    step = max(n // 10, 1)
    try:
        with Stopwatch() as sw:
            while made < n:
                count = min(BATCH, n - made)
                out = engine.decide_batch(name, n=count)
                made += count
                chosen = [d.decision_id for d in out if rng.random() < REWARD_SHARE]
                due.setdefault(second + REWARD_DELAY, []).extend(chosen)
                for did in due.pop(second, []):
                    engine.record_reward(did, int(rng.random() < 0.1))
                if sweep and second % SWEEP_EVERY == 0:
                    engine.sweep(name)
                if made % step == 0:
                    samples.append({"decisions_made": made, **measure()})
                second += 1
                clock.t += 1.0
        for s in samples:
            s["run_seconds"] = sw.wall
        return samples
    finally:
        engine.delete_bandit(name)
        store.close()


def fmt_bytes(b: int | None) -> str:
    return "-" if b is None else f"{b / 1e6:.2f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--stores", default="memory,sqlite,redis")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tsbandit-soak-"))
    prefix = f"tsbandit-soak-{uuid.uuid4().hex[:8]}:"
    sep = "&" if "?" in args.redis_url else "?"
    urls = {"memory": "memory://", "redis": f"{args.redis_url}{sep}prefix={prefix}"}
    modes = [True] if args.no_baseline else [True, False]
    print(f"{args.decisions} decisions, {BATCH}/simulated s, {REWARD_SHARE:.0%} rewarded, "
          f"window {WINDOW:.0f} s, retention {RETENTION:.0f} s, events_maxlen {MAXLEN}, "
          f"sweep every {SWEEP_EVERY} s; load average {harness.load_average()}")
    table = Table(Col("decisions made", 15, ","), Col("decisions held", 15, ","),
                  Col("events held", 12, ","), Col("size", 10))
    try:
        for kind in args.stores.split(","):
            for sweep in modes:
                url = urls.get(kind) or f"sqlite:///{tmp / f'soak-{sweep}.db'}"
                samples = run(kind, url, args.decisions, sweep)
                label = "sweep+purge" if sweep else "no sweep (before)"
                print(f"\n{kind}, {label} ({samples[-1]['run_seconds']:.0f} s)")
                print(table.header())
                for s in samples:
                    print(table.row(s["decisions_made"], s["decisions"], s["events"],
                                    fmt_bytes(s["bytes"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average {harness.load_average()}")


if __name__ == "__main__":
    main()
