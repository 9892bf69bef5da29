"""What a sticky assignment costs in each store, against the one-round-trip read it should match.

    python benchmarks/bench_assignments.py [--n 2000] [--cluster] [--json out.json]

On Memory, SQLite (a temporary file), the Redis at 127.0.0.1:6379 (``TSBANDIT_BENCH_REDIS``)
and, with ``--cluster``, a local 3-node Redis Cluster started here, one client times ``n`` calls
each of (interleaved, after a warm-up):

* ``get_pending``: the reference, a one-round-trip read (one Lua script on Redis);
* ``get hit`` / ``get miss``: ``get_assignment`` of a user who has a live assignment / has none;
* ``assign new``: ``assign`` that stores (a new user);
* ``assign kept``: ``assign`` that finds a live assignment and returns it.

Prints p50 / p90 in microseconds and each p50 over the reference's p50
(``benchmarks/harness.py``: percentiles interpolate linearly, as ``numpy.percentile``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

import harness
from harness import Col, Table
from tsbandit.stores import open_store

REDIS = os.environ.get("TSBANDIT_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def time_store(url: str, n: int) -> dict[str, list[float]]:
    """Seconds per call of each operation, ``n`` calls each, interleaved."""
    sep = "&" if "?" in url else "?"
    store = open_store(f"{url}{sep}prefix=ba{uuid.uuid4().hex[:8]}:" if "redis" in url
                       else url)
    store.create_bandit("b", {}, {"s": np.zeros(5), "f": np.zeros(5)})
    payload = {"id": "d", "arm": 3, "propensity": 0.21, "config_version": 0}
    store.put_pending("b", "ref", payload, 1e12)
    for i in range(n + 20):  # returning users, with a live assignment
        store.assign("b", f"old{i}", payload, 1e12, 1.0)
    ops: dict[str, Callable[[int], object]] = {
        "get_pending": lambda i: store.get_pending("b", "ref"),
        "get hit": lambda i: store.get_assignment("b", f"old{i}", 2.0),
        "get miss": lambda i: store.get_assignment("b", f"none{i}", 2.0),
        "assign new": lambda i: store.assign("b", f"new{i}", payload, 1e12, 2.0),
        "assign kept": lambda i: store.assign("b", f"old{i}", payload, 1e12, 2.0),
    }
    out: dict[str, list[float]] = {k: [] for k in ops}
    for i in range(n + 20):
        for name, op in ops.items():
            secs, _ = harness.per_call(1, lambda _j, op=op, i=i: op(i))
            if i >= 20:
                out[name].append(secs[0])
    store.delete_bandit("b")
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    harness.limit_blas(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/b.db"),
                  ("redis", REDIS)]
        cluster = None
        try:
            if args.cluster:
                cluster = harness.redis_servers().RedisCluster(Path(tmp) / "cluster")
                stores.append(("cluster", cluster.url))
            for kind, url in stores:
                for op, secs in time_store(url, args.n).items():
                    lat = harness.latency(secs)
                    rows.append({"store": kind, "op": op, "p50_us": lat["p50_us"],
                                 "p90_us": lat["p90_us"], "n": len(secs)})
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"load average: {harness.load_average()}")
    table = Table(Col("store", 8, align="<"), Col("operation", 12, align="<"),
                  Col("p50 us", 9, ".1f"), Col("p90 us", 9, ".1f"), Col("p50 / get_pending", 18))
    print(table.header())
    ref: dict[str, float] = {}
    for r in rows:
        if r["op"] == "get_pending":
            ref[r["store"]] = r["p50_us"]
        print(table.row(r["store"], r["op"], r["p50_us"], r["p90_us"],
                        harness.ratio(r["p50_us"], ref[r["store"]])))
    harness.write_json(args.json, rows)


if __name__ == "__main__":
    main()
