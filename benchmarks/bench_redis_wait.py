"""What ``min_replicas=1`` (``WAIT`` after every acknowledged write) costs a reward.

    python benchmarks/bench_redis_wait.py [--n 400] [--json out.json]

Starts real ``redis-server`` processes here (redis-server and redis-cli on PATH): a standalone
primary with one replica, and a Redis Cluster of 3 primaries with one replica each. On each, one
client times ``apply_reward`` (the decision's ``put_pending`` is done before, untimed) ``n``
times on a Beta bandit with 5 arms, with and without ``min_replicas=1``, and prints p50 / p90 in
microseconds and the ratio of the p50s (``benchmarks/harness.py``: percentiles interpolate
linearly, as ``numpy.percentile``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

import harness
from harness import Col, Table
from tsbandit.stores import open_store


def time_rewards(url: str, n: int) -> list[float]:
    """Seconds per ``apply_reward`` call, ``n`` calls (after 20 untimed warm-up calls)."""
    store = open_store(url + ("&" if "?" in url else "?") + f"prefix=bw{uuid.uuid4().hex[:8]}:")
    store.create_bandit("b", {}, {"s": np.zeros(5), "f": np.zeros(5)})
    delta = {"s": np.array([0, 1.0, 0, 0, 0]), "f": np.zeros(5)}
    out, _ = harness.per_call(
        n, lambda i: store.apply_reward("b", f"d{i}", delta, None, 1.0), warmup=20,
        setup=lambda i: store.put_pending("b", f"d{i}", {"arm": 1}, 1e12))
    store.delete_bandit("b")
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    mod = harness.redis_servers()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        primary = mod.RedisServer(Path(tmp) / "primary")
        replica = mod.RedisServer(Path(tmp) / "replica")
        cluster = None
        try:
            primary.cli("config", "set", "repl-diskless-sync-delay", "0")
            replica.cli("replicaof", "127.0.0.1", str(primary.port))
            deadline = time.monotonic() + 20
            while "master_link_status:up" not in replica.cli("info", "replication"):
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
            cluster = mod.RedisCluster(Path(tmp) / "cluster", replicas=1)
            for name, url in [("standalone + 1 replica", primary.url),
                              ("cluster 3 + 3", cluster.url)]:
                for m in (0, 1):
                    option = "" if m == 0 else "?min_replicas=1"
                    secs = time_rewards(url + option, args.n)
                    lat = harness.latency(secs)
                    rows.append({"setup": name, "min_replicas": m, "p50_us": lat["p50_us"],
                                 "p90_us": lat["p90_us"], "n": len(secs)})
        finally:
            primary.stop()
            replica.stop()
            if cluster is not None:
                cluster.stop()
    table = Table(Col("setup", 24, align="<"), Col("min_replicas", 12), Col("p50 us", 9, ".0f"),
                  Col("p90 us", 9, ".0f"), Col("p50 ratio", 10, ".2f"))
    print(table.header())
    base: dict[str, float] = {}
    for r in rows:
        if r["min_replicas"] == 0:
            base[r["setup"]] = r["p50_us"]
        ratio = r["p50_us"] / base[r["setup"]]
        print(table.row(r["setup"], r["min_replicas"], r["p50_us"], r["p90_us"], ratio))
    harness.write_json(args.json, rows)


if __name__ == "__main__":
    main()
