"""Store-level latency: what one decide+reward costs in each store, in process, one client.

    python benchmarks/bench_stores.py [--n 3000] [--redis-url redis://127.0.0.1:6379/0]
                                      [--cluster-url redis+cluster://h:p,...] [--json out.json]

Stores: Memory, SQLite (a file in a temp dir, WAL), Redis (``--redis-url``) and a Redis Cluster
(``--cluster-url``, or a 3-node cluster started here when redis-server is on PATH). Bandits: Beta
with 5 arms (statistics ``s, f``: 10 floats) and linear with 5 arms and d = 11 (``A, b, n, r2``:
670 floats). Workloads, each timed per pair:

* ``read+add``   one snapshot read, then one atomic add of a one-arm delta;
* ``decide+reward`` the store's share of the engine's pair: read + put_pending (with its decision
  event), then get_pending + apply_reward (with its reward event);
* ``engine pair`` the whole thing: ``Engine.decide`` then ``Engine.record_reward`` on a bandit
  of the same shape (Thompson sampling; the linear bandit decides with an 11-feature context),
  i.e. the store's share plus the policy math.

A second table compares the two ways of keeping statistics in Redis that the store could use:
float64 blobs updated by a Lua script with ``struct`` (what RedisStore does) and one hash field
per element updated with ``HINCRBYFLOAT`` from Lua.

Timing, percentiles, tables and the JSON file go through ``benchmarks/harness.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harness
from harness import Col, Table
from tsbandit.stores import Store, open_store

ROOT = Path(__file__).resolve().parents[1]


def layouts() -> dict[str, dict[str, np.ndarray]]:
    k, d = 5, 11
    return {
        "beta K=5": {"s": np.zeros(k), "f": np.zeros(k)},
        "linear K=5 d=11": {
            "A": np.zeros((k, d, d)),
            "b": np.zeros((k, d)),
            "n": np.zeros(k),
            "r2": np.zeros(k),
        },
    }


def one_arm_delta(arrays: dict[str, np.ndarray], arm: int, rng: np.random.Generator) -> dict:
    out = {}
    for key, v in arrays.items():
        d = np.zeros_like(v)
        if v.ndim == 3:
            x = rng.normal(size=v.shape[1])
            d[arm] = np.outer(x, x)
        else:
            d[arm] = rng.normal(size=v.shape[1:])
        out[key] = d
    return out


def timed_pairs(n: int, pair: Callable[[int], object]) -> dict:
    """Call ``pair(i)`` for ``n`` timed rounds after ``max(n // 10, 20)`` warm-up rounds."""
    times, wall = harness.per_call(n, pair, warmup=max(n // 10, 20))
    lat = harness.latency(times, wall)
    return {"pairs_per_s": lat["per_s"], "p50_us": lat["p50_us"], "p99_us": lat["p99_us"],
            "mean_us": lat["mean_us"]}


def bench_pair(store: Store, layout: dict[str, np.ndarray], workload: str, n: int) -> dict:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    store.create_bandit(name, {"arms": list("abcde")}, layout)
    rng = np.random.default_rng(0)
    k = next(iter(layout.values())).shape[0]
    deltas = [one_arm_delta(layout, i % k, rng) for i in range(64)]
    ctx = [0.1] * 11

    def pair(i: int) -> None:
        delta = deltas[i % 64]
        if workload == "read+add":
            store.read(name)
            store.add(name, delta)
        else:
            did = f"d{i}"
            snap = store.read(name)
            store.put_pending(
                name,
                did,
                {"arm": i % k, "context": ctx, "version": snap.version},
                deadline=1e12,
                event={"type": "decision", "id": did, "arm": i % k, "p": 0.2, "context": ctx},
            )
            store.get_pending(name, did)
            store.apply_reward(
                name, did, delta, {"type": "reward", "id": did, "reward": 1.0}, now=1.0
            )

    result = timed_pairs(n, pair)
    store.delete_bandit(name)
    return result


def bench_engine_pair(store: Store, lname: str, n: int) -> dict:
    """``Engine.decide`` + ``Engine.record_reward`` pairs through ``store``."""
    from tsbandit.engine import BanditSpec, Engine
    from tsbandit.policies.registry import model_from_config

    name = f"bench-{uuid.uuid4().hex[:8]}"
    if lname.startswith("linear"):
        model = model_from_config({"kind": "linear", "n_features": 11})
    else:
        model = model_from_config({"kind": "beta"})
    engine = Engine(store, seed=0)
    engine.create_bandit(BanditSpec(name=name, arms=list("abcde"), model=model))
    rng = np.random.default_rng(0)
    contexts = rng.normal(size=(64, 11)).tolist() if model.contextual else [None] * 64
    rewards = rng.normal(size=64) if not lname.startswith("beta") else rng.integers(0, 2, 64)
    def pair(i: int) -> None:
        d = engine.decide(name, contexts[i % 64])
        engine.record_reward(d.decision_id, float(rewards[i % 64]))

    result = timed_pairs(n, pair)
    store.delete_bandit(name)
    return result


# ---------------------------------------------------------------------------------------------
# Redis: blob + struct (ours) vs one field per element with HINCRBYFLOAT
# ---------------------------------------------------------------------------------------------
HINCR_ADD = """
for i = 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
"""


def bench_hincrbyfloat(url: str, layout: dict[str, np.ndarray], n: int) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    key = f"bench-hincr:{{{uuid.uuid4().hex[:8]}}}"
    fields: dict[str, Any] = {"version": 0}
    for k, v in layout.items():
        for j in range(v.size):
            fields[f"{k}:{j}"] = 0.0
    client.hset(key, mapping=fields)
    add = client.register_script(HINCR_ADD)
    rng = np.random.default_rng(0)
    arms = next(iter(layout.values())).shape[0]
    deltas = [one_arm_delta(layout, i % arms, rng) for i in range(64)]
    encoded = []
    for d in deltas:
        args: list[Any] = []
        for k, v in d.items():
            flat = v.ravel()
            for j in np.flatnonzero(flat):
                args += [f"{k}:{j}", repr(float(flat[j]))]
        encoded.append(args)
    def pair(i: int) -> None:
        raw = client.hgetall(key)  # read: parse every element from text
        _ = {
            k: np.array([float(raw[f"{k}:{j}".encode()]) for j in range(v.size)]).reshape(v.shape)
            for k, v in layout.items()
        }
        add(keys=[key], args=encoded[i % 64])

    result = timed_pairs(n, pair)
    client.delete(key)
    client.close()
    return result


def start_cluster(tmp: Path) -> Any:
    spec = importlib.util.spec_from_file_location(
        "redis_servers", ROOT / "tests" / "stores" / "redis_servers.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.RedisCluster(tmp / "cluster")


def reachable(url: str) -> bool:
    try:
        open_store(url).ping()
    except Exception:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="timed pairs per case")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--cluster-url", default=None)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads (1, as each service worker runs; 0: library default)")
    args = ap.parse_args()
    if args.blas_threads > 0:
        harness.limit_blas(args.blas_threads, load_scipy=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    cluster = None
    stores: dict[str, str] = {"memory": "memory://", "sqlite": f"sqlite:///{tmp / 'b.db'}"}
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    if reachable(args.redis_url):
        stores["redis"] = f"{args.redis_url}?prefix={prefix}"
    else:
        print(f"# Redis not reachable at {args.redis_url}: skipped", file=sys.stderr)
    cluster_url = args.cluster_url
    if cluster_url is None and shutil.which("redis-server") and shutil.which("redis-cli"):
        cluster = start_cluster(tmp)
        cluster_url = cluster.url
    if cluster_url:
        stores["cluster"] = f"{cluster_url}?prefix={prefix}"

    results = []
    rtt = None
    if "redis" in stores:
        store = open_store(stores["redis"])
        pings, _ = harness.per_call(args.n - args.n // 10, lambda i: store.ping(),
                                    warmup=args.n // 10)
        store.close()
        lat = harness.latency(pings)
        rtt = (lat["p50_us"], lat["p99_us"], lat["mean_us"])
    try:
        for workload in ("read+add", "decide+reward"):
            for lname, layout in layouts().items():
                for sname, url in stores.items():
                    store = open_store(url)
                    r = bench_pair(store, layout, workload, args.n)
                    store.close()
                    results.append({"workload": workload, "bandit": lname, "store": sname, **r})
        for lname in layouts():
            for sname, url in stores.items():
                store = open_store(url)
                r = bench_engine_pair(store, lname, args.n)
                store.close()
                results.append({"workload": "engine pair", "bandit": lname, "store": sname,
                                **r})
        alt = []
        if "redis" in stores:
            for lname, layout in layouts().items():
                store = open_store(stores["redis"])
                ours = bench_pair(store, layout, "read+add", args.n)
                store.close()
                hincr = bench_hincrbyfloat(args.redis_url, layout, args.n)
                alt.append({"bandit": lname, "blob_struct": ours, "hincrbyfloat": hincr})
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nLatency per pair, in process, one client, n={args.n}, BLAS threads "
          f"{args.blas_threads or 'default'} (microseconds)\n")
    table = Table(Col("workload", 14, align="<"), Col("bandit", 16, align="<"),
                  Col("store", 8, align="<"), Col("pairs/s", 9, ".0f"), Col("p50", 8, ".1f"),
                  Col("p99", 8, ".1f"), Col("vs memory p50", 14))
    print(table.header())
    base = {(r["workload"], r["bandit"]): r["p50_us"] for r in results if r["store"] == "memory"}
    for r in results:
        print(table.row(r["workload"], r["bandit"], r["store"], r["pairs_per_s"], r["p50_us"],
                        r["p99_us"], harness.ratio(r["p50_us"], base[(r["workload"],
                                                                      r["bandit"])], 1)))
    if rtt is not None:
        print(
            f"\nRedis PING through the store (one round trip): p50 {rtt[0]:.1f} us,"
            f" p99 {rtt[1]:.1f} us; read+add = 2 round trips, decide+reward = 4"
        )
    if alt:
        print("\nRedis statistics layout, read+add pair (microseconds)\n")
        layout = Table(Col("bandit", 16, align="<"), Col("blob+struct p50", 16, ".1f"),
                       Col("p99", 8, ".1f"), Col("HINCRBYFLOAT p50", 17, ".1f"),
                       Col("p99", 8, ".1f"), Col("ratio p50", 10))
        print(layout.header())
        for a in alt:
            o, h = a["blob_struct"], a["hincrbyfloat"]
            print(layout.row(a["bandit"], o["p50_us"], o["p99_us"], h["p50_us"], h["p99_us"],
                             harness.ratio(h["p50_us"], o["p50_us"], 1)))
    print(
        f"\n(median of per-pair times; python {sys.version.split()[0]}, "
        f"numpy {np.__version__}; stdev of memory p50s "
        f"{statistics.pstdev(base.values()):.1f} us)"
    )
    harness.write_json(args.json, {"pairs": results, "redis_layout": alt,
                                   "redis_ping_us": rtt})


if __name__ == "__main__":
    main()
