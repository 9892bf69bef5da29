"""One hot bandit on a 3-primary Redis Cluster: one shard (one primary does all the work) against
``shards=3`` (the work spread over the primaries).

    python benchmarks/bench_shards.py [--pairs 3000] [--workers 4] [--staleness-ms 0]
                                       [--repeats 3] [--json out.json]

Starts a Redis Cluster of 3 primaries on free ports (the test fixture's
``tests/stores/redis_servers.py``). For S = 1 and S = 3, ``--workers`` processes, each with its
own in-process :class:`~tsbandit.engine.Engine` (``Engine.open`` on the Cluster), make
``--pairs`` decision + reward pairs in all on one Beta bandit of 5 arms (reward 1 for every
other decision). Before and after, every primary's ``INFO cpu`` (the server's CPU seconds)
and ``INFO commandstats`` (microseconds inside commands) are read, and the CPU an idle
primary burns (cron, cluster bus: measured over 2 s before) is subtracted; the table shows each
primary's share of the Redis CPU, the busiest primary's CPU per pair, and the projected
ceiling of the hot bandit: pairs/s at 100% of the busiest primary's CPU (one Redis server is
one thread); S = 1 and S = 3 alternate ``--repeats`` times and the repetition with the median
ceiling is shown. The books are checked exact in every repetition: as many pulls as pairs, as
many successes as rewards of 1, and the same for S = 1 and S = 3. The load generator shares the
machine with the three servers, so the measured pairs/s is the machine's, not the cluster's; the
ceiling is the figure that carries over.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import harness
from harness import Col, Table

ARMS = ["a", "b", "c", "d", "e"]
IDLE_S = 2.0


def server_cpu(port: int) -> tuple[float, float]:
    """(CPU seconds of the server, microseconds spent inside commands) of one node."""
    import redis

    client = redis.Redis(port=port)
    try:
        cpu = client.info("cpu")
        stats = client.info("commandstats")
    finally:
        client.close()
    usec = sum(float(v["usec"]) for v in stats.values())
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), usec


def work(url: str, bandit: str, pairs: int, seed: int, staleness_ms: float) -> int:
    """``pairs`` decisions, each rewarded (1 for the even ones); the number rewarded 1."""
    from tsbandit.engine import Engine

    engine = Engine.open(url, seed=seed, max_staleness_ms=staleness_ms)
    ones = 0
    for i in range(pairs):
        d = engine.decide(bandit)
        status = engine.record_reward(d.decision_id, int(i % 2 == 0)).status
        assert status == "applied", status
        ones += i % 2 == 0
    engine.close()
    return ones


def run(cluster: Any, primaries: list[int], shards: int, pairs: int, workers: int,
        staleness_ms: float) -> dict[str, Any]:
    from tsbandit.engine import Engine, bandit_spec

    url = f"{cluster.url}?prefix=bs{uuid.uuid4().hex[:8]}:"
    bandit = f"hot{shards}"
    admin = Engine.open(url, seed=0)
    admin.create_bandit(bandit_spec(bandit, ARMS, shards=shards))
    work(url, bandit, 20, 99, staleness_ms)  # warm up: scripts loaded, slot map known
    base = admin.statistics(bandit)[1]
    warm = int((base["successes"] + base["failures"]).sum())
    per = [pairs // workers + (w < pairs % workers) for w in range(workers)]
    idle0 = {p: server_cpu(p)[0] for p in primaries}  # the cluster's own upkeep (cron, bus)
    time.sleep(IDLE_S)
    idle = {p: (server_cpu(p)[0] - idle0[p]) / IDLE_S for p in primaries}
    before = {p: server_cpu(p) for p in primaries}
    start = time.perf_counter()
    with mp.get_context("fork").Pool(workers) as pool:
        ones = sum(pool.starmap(work, [(url, bandit, n, w, staleness_ms)
                                       for w, n in enumerate(per)]))
    wall = time.perf_counter() - start
    after = {p: server_cpu(p) for p in primaries}
    stats = admin.statistics(bandit)[1]
    pulls = int((stats["successes"] + stats["failures"]).sum()) - warm
    successes = int(stats["successes"].sum()) - int(base["successes"].sum())
    admin.delete_bandit(bandit)
    admin.close()
    cpu = {p: max(after[p][0] - before[p][0] - idle[p] * wall, 0.0) for p in primaries}
    usec = {p: after[p][1] - before[p][1] for p in primaries}
    busiest = max(cpu.values())
    return {"shards": shards, "pairs": pairs, "wall_s": wall, "pairs_per_s": pairs / wall,
            "pulls": pulls, "successes": successes, "ones": ones,
            "exact": pulls == pairs and successes == ones,
            "cpu_s": [cpu[p] for p in primaries], "usec": [usec[p] for p in primaries],
            "busiest_cpu_us_per_pair": 1e6 * busiest / pairs,
            "ceiling_pairs_per_s": pairs / busiest if busiest > 0 else float("inf")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--staleness-ms", type=float, default=0.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    mod = harness.redis_servers()
    print(f"load average before: {harness.load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = mod.RedisCluster(Path(tmp) / "cluster")
        try:
            primaries = [s.port for s in cluster.nodes]
            runs: dict[int, list[dict[str, Any]]] = {1: [], 3: []}
            for _ in range(args.repeats):  # alternating, so the machine's load falls on both
                for shards in (1, 3):
                    runs[shards].append(run(cluster, primaries, shards, args.pairs,
                                            args.workers, args.staleness_ms))
        finally:
            cluster.stop()
    for shards in (1, 3):  # the repetition with the median ceiling stands for its case
        ordered = sorted(runs[shards], key=lambda r: r["ceiling_pairs_per_s"])
        row = dict(ordered[len(ordered) // 2])
        row["ceilings"] = [r["ceiling_pairs_per_s"] for r in runs[shards]]
        row["all_exact"] = all(r["exact"] for r in runs[shards])
        rows.append(row)
    print(f"load average after: {harness.load_average()}")
    print(f"{args.pairs} decide+reward pairs, {args.workers} worker processes, "
          f"max_staleness_ms={args.staleness_ms:g}, 3 primaries; the repetition with the median "
          f"ceiling of {args.repeats}")
    table = Table(Col("shards", 6), Col("pairs/s", 8, ".0f"), Col("exact", 5),
                  Col("CPU share per primary", 24, align="<"), Col("busiest us/pair", 15, ".1f"),
                  Col("ceiling pairs/s", 15, ".0f"), Col("vs S=1", 7))
    print(table.header())
    print(table.rule())
    for r in rows:
        total = sum(r["cpu_s"]) or 1.0
        share = " ".join(f"{100 * c / total:4.0f}%" for c in r["cpu_s"])
        print(table.row(r["shards"], r["pairs_per_s"], "yes" if r["all_exact"] else "NO", share,
                        r["busiest_cpu_us_per_pair"], r["ceiling_pairs_per_s"],
                        harness.ratio(r["ceiling_pairs_per_s"], rows[0]["ceiling_pairs_per_s"])))
    same = all((r["pulls"], r["successes"]) == (rows[0]["pulls"], rows[0]["successes"])
               for r in rows)
    print("ceilings of every repetition: " + "; ".join(
        f"S={r['shards']}: " + " ".join(f"{c:.0f}" for c in r["ceilings"]) for r in rows))
    print(f"books: pulls {[r['pulls'] for r in rows]}, successes "
          f"{[r['successes'] for r in rows]} (same for every S: {same})")
    print("commandstats usec per primary: "
          + "; ".join(f"S={r['shards']}: " + " ".join(f"{u / 1e6:.2f}s" for u in r["usec"])
                      for r in rows))
    harness.write_json(args.json, {"load_average": harness.load_average(), "rows": rows,
                                   "args": {k: str(v) for k, v in vars(args).items()}})


if __name__ == "__main__":
    main()
