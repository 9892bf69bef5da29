"""What observability costs per request: /metrics counters, store timings and JSON log lines.

Usage::

    python benchmarks/bench_observability.py            # about 1-2 minutes
    python benchmarks/bench_observability.py --quick

In process, on one core: the ASGI app is called directly (no sockets), one request at a time,
for ``POST /v1/bandits/{name}/decisions`` and ``.../rewards``, with the same engine and store
under three settings, measured interleaved in the same run (the minimum of the repetitions):

* ``off``     -- ``metrics=False, log_format="none"``: the request path of the service before
  observability was added;
* ``metrics`` -- Prometheus counters and histograms (request, store calls, decisions/rewards);
* ``+event log`` -- and the JSON line of each decision or reward (``log_requests=False``),
  written to ``/dev/null``;
* ``+access log`` -- and one JSON line per request as well (the default settings).

Then the cost of the dashboard's traffic series: a whole-log read beside the incremental fold
(its first read, then an update after 1,000 new decisions, as the dashboard makes them).
Clocks, pinning and tables: ``benchmarks/harness.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import harness
from harness import Col, Stopwatch, Table

warnings.filterwarnings("ignore")

from tsbandit.engine import BanditSpec, Engine  # noqa: E402
from tsbandit.service import Settings, create_app  # noqa: E402
from tsbandit.service.logs import install_logging  # noqa: E402
from tsbandit.service.runtime import open_store  # noqa: E402
from tsbandit.service.traffic import TrafficFold, traffic_series  # noqa: E402

OFFERS = ["cashback_grocery_2pct", "travel_miles_3x", "balance_transfer_0apr",
          "business_expense_card", "premium_rewards_500bonus"]
CORE = 1


def scope(path: str, body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]}


async def per_request_us(app: Any, path: str, bodies: list[bytes]) -> tuple[float, float]:
    statuses: set[int] = set()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    with Stopwatch() as sw:
        for body in bodies:
            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope(path, body), receive, send)
    assert statuses == {200}, statuses
    return sw.wall / len(bodies) * 1e6, sw.cpu / len(bodies) * 1e6


def variants(engine: Engine) -> dict[str, Any]:
    base = {"store": "memory://", "default_bandit": False}
    apps = {"off": create_app(Settings(**base, metrics=False, log_format="none"), engine=engine)}
    # the instrumented apps get their own engine over the same store (the wrapper goes on the
    # engine's store; sharing one engine would instrument the "off" app too)
    apps["metrics"] = create_app(Settings(**base, log_format="none"),
                                 engine=Engine(engine.store, seed=1))
    apps["events"] = create_app(Settings(**base, log_requests=False),
                                engine=Engine(engine.store, seed=2))
    apps["metrics+logs"] = create_app(Settings(**base), engine=Engine(engine.store, seed=3))
    return apps


def measure_store(url: str, n: int, reps: int) -> list[tuple[str, str, float, float]]:
    store = open_store(url)
    engine = Engine(store, seed=0)
    name = f"bench_obs_{os.getpid()}"
    engine.create_bandit(BanditSpec(name=name, arms=OFFERS, reward_window=3600.0))
    devnull = open(os.devnull, "w")
    try:
        apps = variants(engine)

        def logs_for(label: str) -> None:  # the tsbandit loggers are process-wide
            if label in ("events", "metrics+logs"):
                install_logging("json", "info", stream=devnull)
            else:
                install_logging("none")
                logging.getLogger("tsbandit").setLevel(logging.WARNING)
        decide = f"/v1/bandits/{name}/decisions"
        reward = f"/v1/bandits/{name}/rewards"

        async def run() -> dict[tuple[str, str], list[tuple[float, float]]]:
            out: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for label, app in apps.items():  # warm-up (imports, caches)
                logs_for(label)
                await per_request_us(app, decide, [b"{}"] * 50)
            for _ in range(reps):
                for label, app in apps.items():  # interleaved: same noise for each variant
                    logs_for(label)
                    out.setdefault(("decide", label), []).append(
                        await per_request_us(app, decide, [b"{}"] * n))
                    ids = [d.decision_id for d in engine.decide_batch(name, n=n)]
                    bodies = [json.dumps({"decision_id": i, "reward": 1}).encode() for i in ids]
                    out.setdefault(("reward", label), []).append(
                        await per_request_us(app, reward, bodies))
            return out

        results = asyncio.run(run())
        return [(op, label, min(w for w, _ in v), min(c for _, c in v))
                for (op, label), v in results.items()]
    finally:
        install_logging("none")
        devnull.close()
        engine.delete_bandit(name)
        store.close()


def measure_traffic(tmp: Path, sizes: list[int]) -> list[tuple[int, float, float, float]]:
    """Seconds for: a whole-log series, the fold's first series, and the fold's series after
    1,000 more decisions (what a dashboard refresh costs on a busy bandit)."""
    rows = []
    for size in sizes:
        store = open_store(f"sqlite:///{tmp / f'traffic{size}.db'}")
        engine = Engine(store, seed=0)
        engine.create_bandit(BanditSpec(name="t", arms=OFFERS))
        done = 0
        while done < size:
            k = min(1000, size - done)
            engine.decide_batch("t", n=k)
            done += k
        with Stopwatch() as full:
            out = traffic_series(store.iter_events("t"), OFFERS, now=time.time(), buckets=60)
        assert sum(out["totals"]["decisions"]) == size
        fold = TrafficFold()
        with Stopwatch() as first:
            fold.update(store, "t")
            fold.series(OFFERS, now=time.time(), buckets=60)
        engine.decide_batch("t", n=1000)
        with Stopwatch() as update:
            fold.update(store, "t")
            out = fold.series(OFFERS, now=time.time(), buckets=60)
        assert sum(out["totals"]["decisions"]) == size + 1000
        rows.append((size, full.wall, first.wall, update.wall))
        store.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    n, reps = (300, 3) if args.quick else (500, 9)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        stores = {"memory": "memory://", "sqlite": f"sqlite:///{tmp / 'obs.db'}",
                  "redis": args.redis}
        print(f"per request, us: wall / CPU time of the process (min of {reps} x {n} "
              f"requests, in process, 1 core); load average {harness.load_average()}")
        table = Table(Col("store", 7, align="<"), Col("request", 7, align="<"), Col("off", 13),
                      Col("metrics", 13), Col("+event log", 13), Col("+access log", 13),
                      Col("CPU ratio to off:", 19), Col("m", 5, ".2f"), Col("+ev", 5, ".2f"),
                      Col("+acc", 5, ".2f"))
        print(table.header())
        with harness.pinned(CORE):
            for label, url in stores.items():
                try:
                    res = measure_store(url, n, reps)
                except Exception as exc:  # e.g. no Redis here
                    print(f"{label:8s} skipped: {exc}")
                    continue
                got = {(op, v): (w, c) for op, v, w, c in res}
                for op in ("decide", "reward"):
                    cols = [got[(op, v)] for v in ("off", "metrics", "events", "metrics+logs")]
                    print(table.row(label, op, *(f"{w:6.0f} /{c:5.0f}" for w, c in cols), "",
                                    *(c / cols[0][1] for _, c in cols[1:])))
        sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 300_000]
        print("\ndashboard traffic series over the SQLite event log, seconds")
        traffic = Table(Col("events", 9, "d"), Col("whole log", 10, ".3f"),
                        Col("us/event", 9, ".2f"), Col("fold, 1st", 10, ".3f"),
                        Col("fold, +1000", 12, ".4f"), Col("whole/+1000", 12))
        print(traffic.header())
        for size, full, first, update in measure_traffic(tmp, sizes):
            print(traffic.row(size, full, full / size * 1e6, first, update,
                              harness.ratio(full, update, 0)))
        print(f"load average after: {harness.load_average()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
