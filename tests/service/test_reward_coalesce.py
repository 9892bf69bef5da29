"""Coalescing of concurrent rewards (service/reward_coalesce.py), in process over ASGI and over
real HTTP: concurrent rewards of one bandit -- the same decision twice among them -- are each
applied exactly once, each request answered with its own status or error, in fewer store
writes than requests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tsbandit.engine import Engine
from tsbandit.errors import StoreUnavailableError
from tsbandit.service import Settings, create_app
from tsbandit.stores.memory import MemoryStore

from .test_coalesce import _metric, http_store  # noqa: F401  (a fixture)

ARMS = ["a", "b", "c"]


class SlowRewards(MemoryStore):
    """A MemoryStore whose reward writes take ``delay`` seconds (so rewards pile up behind a
    batch), counting them, and that can be switched off."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.down = False
        self.writes: list[int] = []

    def _slow(self, n: int) -> None:
        time.sleep(self.delay)
        if self.down:
            raise StoreUnavailableError("store down (test)")
        self.writes.append(n)

    def apply_reward(self, name: str, decision_id: str, *args: Any, **kw: Any) -> Any:
        self._slow(1)
        return super().apply_reward(name, decision_id, *args, **kw)

    def apply_reward_many(self, name: str, items: Any) -> Any:
        self._slow(len(items))
        return super().apply_reward_many(name, items)


def make_app(store: MemoryStore, **settings: Any) -> Any:
    return create_app(Settings(store="memory://", default_bandit=False, **settings),
                      engine=Engine(store, seed=0))


def run(app: Any, fn: Any) -> Any:
    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            return await fn(c)
    return asyncio.run(go())


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_concurrent_rewards_each_once_with_its_own_answer(offload: bool):
    store = SlowRewards()
    app = make_app(store, offload=offload)
    n = 60
    peer = Engine(store, seed=1)  # another worker's decisions: not in the app's payload cache

    async def scenario(c: httpx.AsyncClient) -> tuple[list[str], list[httpx.Response], Any]:
        assert (await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})).status_code == 201
        ours = (await c.post("/v1/bandits/ads/decisions/batch", json={"n": n // 2})).json()
        ids = [d["decision_id"] for d in ours["decisions"]]
        ids += [d.decision_id for d in peer.decide_batch("ads", n=n - n // 2)]
        asks: list[tuple[str, dict[str, Any]]] = []
        for i, did in enumerate(ids):  # every decision twice, interleaved with bad ones
            asks.append((did, {"decision_id": did, "reward": i % 2}))
            asks.append((did, {"decision_id": did, "reward": 1 - i % 2}))
            if i % 10 == 0:
                asks.append(("", {"decision_id": "ads~" + "0" * 32, "reward": 1}))  # unknown
                asks.append(("", {"decision_id": did, "reward": 7}))  # not a 0/1 reward
                asks.append(("", {"decision_id": did, "reward": 1, "slot": 2}))  # a slot
        rs = await asyncio.gather(*(c.post("/v1/bandits/ads/rewards", json=body)
                                    for _, body in asks))
        stats = (await c.get("/v1/bandits/ads/stats")).json()
        return ids, list(zip(asks, rs, strict=True)), stats

    store.writes.clear()
    ids, answers, stats = run(app, scenario)
    per_id: dict[str, list[str]] = {i: [] for i in ids}
    codes = Counter()
    first_reward: dict[str, int] = {}
    for (did, body), r in answers:
        if not did:
            codes[r.json()["error"]["code"]] += 1
            continue
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["decision_id"] == did
        per_id[did].append(got["status"])
        if got["status"] == "applied":
            first_reward[did] = body["reward"]
    assert all(sorted(s) == ["applied", "duplicate"] for s in per_id.values()), per_id
    assert codes == {"decision_not_found": n // 10, "invalid_reward": 2 * (n // 10)}
    # the books: exactly the applied reward of each decision, once
    arms = {a["arm"]: a for a in stats["arms"]}
    assert sum(a["alpha"] + a["beta"] - 2 for a in arms.values()) == n
    assert sum(a["alpha"] - 1 for a in arms.values()) == sum(first_reward.values())
    # coalesced: fewer store writes than rewards, some of them batches
    co = app.state.runtime.rewards
    assert co.batches >= 1 and max(store.writes) > 1, store.writes
    assert len(store.writes) < len(answers)


def test_store_down_fails_every_member_then_recovers():
    store = SlowRewards()
    app = make_app(store)
    n = 20

    async def scenario(c: httpx.AsyncClient) -> tuple[list[httpx.Response], list[httpx.Response]]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        ds = (await c.post("/v1/bandits/ads/decisions/batch", json={"n": n})).json()["decisions"]
        bodies = [{"decision_id": d["decision_id"], "reward": 1} for d in ds]
        store.down = True
        down = await asyncio.gather(*(c.post("/v1/bandits/ads/rewards", json=b) for b in bodies))
        store.down = False
        up = await asyncio.gather(*(c.post("/v1/bandits/ads/rewards", json=b) for b in bodies))
        return list(down), list(up)

    down, up = run(app, scenario)
    assert [r.status_code for r in down] == [503] * n
    assert {r.json()["error"]["code"] for r in down} == {"store_unavailable"}
    assert [r.json()["status"] for r in up] == ["applied"] * n  # nothing applied while down


def test_coalescing_off_rewards_one_by_one():
    store = SlowRewards(delay=0.0)
    app = make_app(store, coalesce=False)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        ds = (await c.post("/v1/bandits/ads/decisions/batch", json={"n": 10})).json()["decisions"]
        return list(await asyncio.gather(*(
            c.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
            for d in ds)))

    store.writes.clear()
    assert [r.json()["status"] for r in run(app, scenario)] == ["applied"] * 10
    assert store.writes == [1] * 10 and app.state.runtime.rewards.batches == 0


def test_tutorial_rewards_coalesced_each_customer_once():
    store = SlowRewards()
    app = create_app(Settings(store="memory://", default_bandit_name="tut"),
                     engine=Engine(store, seed=3))
    n = 40

    async def scenario(c: httpx.AsyncClient) -> tuple[list[Any], list[httpx.Response], Any]:
        recs = [(await c.get(f"/recommend/cust{i}")).json() for i in range(n)]
        bodies = [{"customer_id": r["customer_id"], "arm": r["offer"], "reward": i % 2}
                  for i, r in enumerate(recs)]
        bodies += bodies  # each customer's reward twice, concurrently
        bodies.append({"customer_id": "cust0", "arm": "not-shown", "reward": 1})
        rs = await asyncio.gather(*(c.post("/reward", json=b) for b in bodies))
        return recs, list(rs), (await c.get("/stats")).json()

    store.writes.clear()
    recs, rs, stats = run(app, scenario)
    assert rs[-1].status_code == 409 and rs[-1].json()["error"]["code"] == "arm_mismatch"
    per = Counter((r.json()["customer_id"], r.json()["status"]) for r in rs[:-1])
    assert per == Counter({(f"cust{i}", s): 1 for i in range(n) for s in ("updated",
                                                                           "duplicate")})
    for arm, row in stats.items():
        wins = sum(1 for i, r in enumerate(recs) if r["offer"] == arm and i % 2 == 1)
        losses = sum(1 for i, r in enumerate(recs) if r["offer"] == arm and i % 2 == 0)
        assert (row["alpha"], row["beta"]) == (1 + wins, 1 + losses)
    assert max(store.writes) > 1 and len(store.writes) < 2 * n


# ----- real HTTP --------------------------------------------------------------------------------
def test_real_http_concurrent_rewards_exactly_once(serve, http_store, unique):  # noqa: F811
    # the fast path on (the default, said here): these bodies are of the shape it serves
    # (tests/service/test_fastpath_rewards.py counts them served there, in process)
    server = serve({"TSBANDIT_STORE": http_store, "TSBANDIT_FAST_PATH": "true"})
    name = f"rw_{unique}"
    n_threads, per_thread = 32, 8
    n = n_threads * per_thread // 2  # each decision is rewarded by two threads at once
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": name, "arms": ARMS}).status_code == 201
        ds = c.post(f"/v1/bandits/{name}/decisions/batch", json={"n": n}).json()["decisions"]
    ids = [d["decision_id"] for d in ds]
    start = threading.Barrier(n_threads)

    def reward(t: int) -> list[tuple[str, int, str]]:
        # threads t and t + n_threads/2 send the same ids, with different rewards
        half = n_threads // 2
        mine = ids[(t % half) * per_thread:(t % half + 1) * per_thread]
        r = int(t < half)
        out = []
        with httpx.Client(base_url=server.url, timeout=10) as c:
            start.wait()
            for did in mine:
                got = c.post(f"/v1/bandits/{name}/rewards", json={"decision_id": did,
                                                                  "reward": r})
                assert got.status_code == 200, got.text
                out.append((did, r, got.json()["status"]))
        return out

    with ThreadPoolExecutor(n_threads) as pool:
        answers = [a for chunk in pool.map(reward, range(n_threads)) for a in chunk]
    with httpx.Client(base_url=server.url, timeout=10) as c:
        arms = {a["arm"]: a for a in c.get(f"/v1/bandits/{name}/stats").json()["arms"]}
        metrics = c.get("/metrics").text
        c.delete(f"/v1/bandits/{name}")
    statuses: dict[str, list[str]] = {i: [] for i in ids}
    applied: dict[str, int] = {}
    for did, r, status in answers:
        statuses[did].append(status)
        if status == "applied":
            applied[did] = r
    assert all(sorted(s) == ["applied", "duplicate"] for s in statuses.values())
    arm_of = {d["decision_id"]: d["arm"] for d in ds}
    for arm in ARMS:
        wins = sum(r for did, r in applied.items() if arm_of[did] == arm)
        losses = sum(1 - r for did, r in applied.items() if arm_of[did] == arm)
        assert (arms[arm]["alpha"], arms[arm]["beta"]) == (1 + wins, 1 + losses)
    assert _metric(metrics, "tsbandit_rewards_total", bandit=name, status="applied") == n
    assert _metric(metrics, "tsbandit_rewards_total", bandit=name, status="duplicate") == n
    # coalesced: fewer reward writes than reward requests
    writes = sum(_metric(metrics, "tsbandit_store_operation_duration_seconds_count",
                         operation=op) for op in ("apply_reward", "apply_reward_many"))
    assert 0 < writes < 2 * n, writes
