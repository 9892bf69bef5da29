"""Coalescing of concurrent single decisions (service/coalesce.py): in process over ASGI and
over real HTTP. Every coalesced decision is its own decision: distinct id, rewardable exactly
once, counted exactly; a bad request fails alone; a store that is down fails every member."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest

from tsbandit.engine import BanditSpec, Engine
from tsbandit.errors import StoreUnavailableError
from tsbandit.policies import LinearGaussian
from tsbandit.service import Settings, create_app
from tsbandit.service.coalesce import DecisionCoalescer, _decide_batch, _Waiter
from tsbandit.stores.base import Snapshot
from tsbandit.stores.memory import MemoryStore

ARMS = ["a", "b", "c"]


class SlowStore(MemoryStore):
    """A MemoryStore whose reads and writes of decisions take ``delay`` seconds (so requests
    pile up behind a batch) and that can be switched off (every call then raises
    StoreUnavailableError)."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.down = False
        self.reads = 0
        self.writes: list[int] = []

    def read(self, name: str) -> Snapshot:
        time.sleep(self.delay)
        if self.down:
            raise StoreUnavailableError("store down (test)")
        self.reads += 1
        return super().read(name)

    def put_pending_many(self, name: str, items: Any, **kwargs: Any) -> Any:
        # slow too: a worker that has the bandit cached decides without a read (the write
        # verifies the version), and requests must still pile up behind a batch
        time.sleep(self.delay)
        if self.down:
            raise StoreUnavailableError("store down (test)")
        moved = super().put_pending_many(name, items, **kwargs)
        if moved is None:
            self.writes.append(len(items))
        return moved


def make_app(store: MemoryStore, **settings: Any) -> Any:
    engine = Engine(store, seed=0)
    return create_app(Settings(store="memory://", default_bandit=False, **settings),
                      engine=engine)


async def _run(app: Any, fn: Any) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
        return await fn(c)


def run(app: Any, fn: Any) -> Any:
    return asyncio.run(_run(app, fn))


def coalescer(app: Any) -> DecisionCoalescer:
    return app.state.runtime.decisions


# ----- in process -------------------------------------------------------------------------------
@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_concurrent_decisions_are_distinct_rewardable_once_and_counted(offload: bool):
    store = SlowStore()
    app = make_app(store, offload=offload)
    n = 120

    async def scenario(c: httpx.AsyncClient) -> tuple[list[dict[str, Any]], list[Any]]:
        assert (await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})).status_code == 201
        await c.post("/v1/bandits/ads/decisions", json={})  # one alone: the engine caches it
        rs = await asyncio.gather(*(c.post("/v1/bandits/ads/decisions",
                                           json={"user_id": f"u{i}"}) for i in range(n)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200]
        ds = [r.json() for r in rs]
        rewards = []
        for i, d in enumerate(ds):
            body = {"decision_id": d["decision_id"], "reward": i % 2}
            first = await c.post("/v1/bandits/ads/rewards", json=body)
            again = await c.post("/v1/bandits/ads/rewards", json=body)
            rewards.append((first.json()["status"], again.json()["duplicate"]))
        pending = await asyncio.gather(*(c.get(f"/v1/decisions/{d['decision_id']}") for d in ds))
        stats = (await c.get("/v1/bandits/ads/stats")).json()
        return ds, [rewards, [p.json() for p in pending], stats]

    ds, (rewards, pending, stats) = run(app, scenario)
    assert len({d["decision_id"] for d in ds}) == n
    assert rewards == [("applied", True)] * n
    # each member kept its own user id: the batch's results went to the right requests
    assert [p["user_id"] for p in pending] == [f"u{i}" for i in range(n)]
    assert [p["arm"] for p in pending] == [d["arm"] for d in ds]
    # they were served in few batches, each with one read and one write
    co = coalescer(app)
    assert co.batches >= 1 and co.batched >= n // 2, (co.batches, co.batched)
    assert len(store.writes) < n and sum(store.writes) == n + 1
    assert max(store.writes) > 1
    # counts exact: 1 + n decisions, rewards i % 2 for the n coalesced ones
    arms = {a["arm"]: a for a in stats["arms"]}
    assert sum(a["pulls"] for a in arms.values()) == n
    wins = Counter(d["arm"] for i, d in enumerate(ds) if i % 2 == 1)
    losses = Counter(d["arm"] for i, d in enumerate(ds) if i % 2 == 0)
    for arm in ARMS:
        assert arms[arm]["alpha"] == 1 + wins[arm]
        assert arms[arm]["beta"] == 1 + losses[arm]


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_a_lone_request_goes_straight_through(offload: bool):
    store = SlowStore(delay=0.0)
    app = make_app(store, offload=offload)

    async def scenario(c: httpx.AsyncClient) -> None:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        for _ in range(10):
            assert (await c.post("/v1/bandits/ads/decisions", json={})).status_code == 200

    run(app, scenario)
    assert coalescer(app).batches == 0 and store.writes == [1] * 10


def test_coalescing_off():
    store = SlowStore()
    app = make_app(store, coalesce=False)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        await c.post("/v1/bandits/ads/decisions", json={})
        return list(await asyncio.gather(*(c.post("/v1/bandits/ads/decisions", json={})
                                           for _ in range(20))))

    rs = run(app, scenario)
    assert all(r.status_code == 200 for r in rs)
    assert len({r.json()["decision_id"] for r in rs}) == 20
    assert coalescer(app).batches == 0 and store.writes == [1] * 21


def test_groups_by_eligible_arms_and_k():
    store = SlowStore()
    app = make_app(store)
    asks = [({}, 1), ({"eligible_arms": ["a", "b"]}, 1), ({"k": 2}, 2),
            ({"eligible_arms": ["c"]}, 1)] * 15

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        await c.post("/v1/bandits/ads/decisions", json={})
        return list(await asyncio.gather(*(c.post("/v1/bandits/ads/decisions", json=body)
                                           for body, _ in asks)))

    rs = run(app, scenario)
    for (body, k), r in zip(asks, rs, strict=True):
        d = r.json()
        assert r.status_code == 200 and len(d["ranking"]) == k == len(d["position_propensities"])
        assert set(d["ranking"]) <= set(body.get("eligible_arms", ARMS))
    assert [r.json()["arm"] for r in rs[3::4]] == ["c"] * 15
    assert len({r.json()["decision_id"] for r in rs}) == len(asks)
    assert coalescer(app).batches >= 2


def test_contexts_stack_and_each_decision_keeps_its_own():
    store = SlowStore()
    d = 3
    engine = Engine(store, seed=1)
    engine.create_bandit(BanditSpec(name="lin", arms=ARMS, model=LinearGaussian(n_features=d)))
    app = create_app(Settings(store="memory://", default_bandit=False), engine=engine)
    rng = np.random.default_rng(0)
    contexts = [[round(float(v), 6) for v in rng.normal(size=d)] for _ in range(40)]

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.post("/v1/bandits/lin/decisions", json={"context": contexts[0]})
        rs = await asyncio.gather(*(c.post("/v1/bandits/lin/decisions", json={"context": x})
                                    for x in contexts))
        pending = await asyncio.gather(*(c.get(f"/v1/decisions/{r.json()['decision_id']}")
                                         for r in rs))
        return [*rs, *pending]

    out = run(app, scenario)
    rs, pending = out[:40], out[40:]
    assert all(r.status_code == 200 for r in rs)
    assert [p.json()["context"] for p in pending] == contexts
    assert coalescer(app).batches >= 1 and max(store.writes) > 1


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_a_bad_request_among_good_ones_fails_alone(offload: bool):
    store = SlowStore()
    d = 3
    engine = Engine(store, seed=2)
    engine.create_bandit(BanditSpec(name="lin", arms=ARMS, model=LinearGaussian(n_features=d)))
    engine.create_bandit(BanditSpec(name="ads", arms=ARMS))
    app = create_app(Settings(store="memory://", default_bandit=False, offload=offload),
                     engine=engine)
    good_x = [0.5, -1.0, 2.0]
    # (bandit, body, expected status, expected error code): the bad ones share the good ones'
    # group (same bandit, eligible arms, k, with a context) and are refused before joining
    asks = [("lin", {"context": good_x}, 200, None),
            ("lin", {"context": [1.0, 2.0]}, 422, "invalid_context"),
            ("lin", {"context": good_x}, 200, None),
            ("lin", {"context": [1.0, 2.0, 3.0, 4.0]}, 422, "invalid_context"),
            ("ads", {}, 200, None),
            ("ads", {"eligible_arms": ["a", "zzz"]}, 422, "invalid_eligible_arms"),
            ("ads", {"k": 4}, 422, "invalid_eligible_arms")] * 8

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        for body in ({"context": good_x}, {"eligible_arms": ["a", "zzz"]}, {"k": 4}):
            await c.post("/v1/bandits/ads/decisions" if "context" not in body
                         else "/v1/bandits/lin/decisions", json=body)
        return list(await asyncio.gather(*(c.post(f"/v1/bandits/{b}/decisions", json=body)
                                           for b, body, _, _ in asks)))

    before = {b: len(list(store.iter_events(b))) for b in ("lin", "ads")}
    rs = run(app, scenario)
    for (_b, body, status, code), r in zip(asks, rs, strict=True):
        assert r.status_code == status, (body, r.text)
        if code is not None:
            assert r.json()["error"]["code"] == code
    # only the good ones were recorded (and the warm-up's one good "lin" decision)
    n_good = {b: sum(1 for bb, _, s, _ in asks if bb == b and s == 200) for b in ("lin", "ads")}
    for b in ("lin", "ads"):
        got = len([e for e in store.iter_events(b) if e["type"] == "decision"]) - before[b]
        assert got == n_good[b] + (1 if b == "lin" else 0)
    assert coalescer(app).batches >= 1


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_store_down_fails_every_member_then_recovers(offload: bool):
    store = SlowStore()
    app = make_app(store, offload=offload)
    n = 30

    async def scenario(c: httpx.AsyncClient) -> tuple[list[httpx.Response], list[httpx.Response]]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ARMS})
        await c.post("/v1/bandits/ads/decisions", json={})
        store.down = True
        down = await asyncio.gather(*(c.post("/v1/bandits/ads/decisions", json={})
                                      for _ in range(n)))
        store.down = False
        up = await asyncio.gather(*(c.post("/v1/bandits/ads/decisions", json={})
                                    for _ in range(n)))
        return list(down), list(up)

    down, up = run(app, scenario)
    assert [r.status_code for r in down] == [503] * n
    assert {r.json()["error"]["code"] for r in down} == {"store_unavailable"}
    assert [r.status_code for r in up] == [200] * n
    assert len(list(store.iter_events("ads"))) == 1 + n  # nothing recorded while down
    assert coalescer(app).batches >= 2  # batches formed while down and after


def test_a_member_that_no_longer_fits_is_retried_alone():
    # the fallback: members were admitted against the cached configuration, but the batch
    # fails for a member-specific reason (here: a context of the wrong length, as after a
    # configuration change) -> each member is served alone, with its own answer
    engine = Engine(MemoryStore(), seed=3)
    engine.create_bandit(BanditSpec(name="lin", arms=ARMS, model=LinearGaussian(n_features=2)))
    loop = asyncio.new_event_loop()
    try:
        xs = [[1.0, 0.0], [1.0, 2.0, 3.0], [0.0, 1.0], [0.5, 0.5]]
        waiters = [_Waiter(x, f"u{i}", loop.create_future()) for i, x in enumerate(xs)]
        out = _decide_batch(engine, "lin", None, 1, waiters)
        assert [type(o).__name__ for o in out] == [
            "RecordedDecision", "InvalidContextError", "RecordedDecision", "RecordedDecision"]
        for i in (0, 2, 3):
            p = engine.pending(out[i].decision_id)
            assert (p["user_id"], p["context"]) == (f"u{i}", xs[i])
        # a store that is down is the batch's error: raised, for every member
        engine.store.put_pending_many = lambda *a, **kw: (_ for _ in ()).throw(  # type: ignore
            StoreUnavailableError("down"))
        good = [w for i, w in enumerate(waiters) if i != 1]
        with pytest.raises(StoreUnavailableError):
            _decide_batch(engine, "lin", None, 1, good)
    finally:
        loop.close()


# ----- real HTTP --------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "redis"])
def http_store(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'coalesce.db'}"
    return str(request.getfixturevalue("redis_url"))


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_real_http_concurrent_decisions_exact(serve, http_store, unique):
    tutorial = f"tut_{unique}"  # the default bandit, for /recommend (one server for both)
    server = serve({"TSBANDIT_STORE": http_store, "TSBANDIT_DEFAULT_BANDIT_NAME": tutorial})
    name = f"co_{unique}"
    n_threads, per_thread = 32, 12
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": name, "arms": ARMS}).status_code == 201
        assert c.post(f"/v1/bandits/{name}/decisions", json={}).status_code == 200
    start = threading.Barrier(n_threads)

    def decide(t: int) -> list[dict[str, Any]]:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            start.wait()
            return [c.post(f"/v1/bandits/{name}/decisions", json={"user_id": f"t{t}"}).json()
                    for _ in range(per_thread)]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n_threads) as pool:
        ds = [d for chunk in pool.map(decide, range(n_threads)) for d in chunk]
    n = n_threads * per_thread
    assert len({d["decision_id"] for d in ds}) == n
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for i, d in enumerate(ds):
            body = {"decision_id": d["decision_id"], "reward": i % 2}
            assert c.post(f"/v1/bandits/{name}/rewards", json=body).json()["status"] == "applied"
            assert c.post(f"/v1/bandits/{name}/rewards", json=body).json()["duplicate"] is True
        arms = {a["arm"]: a for a in c.get(f"/v1/bandits/{name}/stats").json()["arms"]}
        metrics = c.get("/metrics").text
        c.delete(f"/v1/bandits/{name}")
    for arm in ARMS:
        wins = sum(1 for i, d in enumerate(ds) if d["arm"] == arm and i % 2 == 1)
        losses = sum(1 for i, d in enumerate(ds) if d["arm"] == arm and i % 2 == 0)
        assert (arms[arm]["alpha"], arms[arm]["beta"]) == (1 + wins, 1 + losses)
    assert sum(a["pulls"] for a in arms.values()) == n
    # decisions counted exactly, and written in fewer store writes than decisions (coalesced)
    assert _metric(metrics, "tsbandit_decisions_total", bandit=name) == n + 1
    writes = _metric(metrics, "tsbandit_store_operation_duration_seconds_count",
                     operation="put_pending_many")
    assert 0 < writes < n + 1, writes
    _real_http_concurrent_recommends(server.url, tutorial, writes)


def _real_http_concurrent_recommends(url: str, name: str, writes_before: float) -> None:
    """The tutorial's /recommend over real HTTP: coalesced like decisions, each customer's
    /reward joined to its own decision exactly once."""
    n_threads, per_thread = 16, 8
    start = threading.Barrier(n_threads)

    def recommend(t: int) -> list[dict[str, Any]]:
        with httpx.Client(base_url=url, timeout=10) as c:
            start.wait()
            return [c.get(f"/recommend/t{t}-{j}").json() for j in range(per_thread)]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n_threads) as pool:
        recs = [d for chunk in pool.map(recommend, range(n_threads)) for d in chunk]
    n = n_threads * per_thread
    assert len({d["decision_id"] for d in recs}) == n
    with httpx.Client(base_url=url, timeout=10) as c:
        for i, d in enumerate(recs):
            body = {"customer_id": d["customer_id"], "arm": d["offer"], "reward": i % 2}
            got = c.post("/reward", json=body).json()
            assert (got["status"], got["decision_id"]) == ("updated", d["decision_id"])
            assert c.post("/reward", json=body).json()["status"] == "duplicate"
        stats = c.get("/stats").json()
        metrics = c.get("/metrics").text
        c.delete(f"/v1/bandits/{name}")
    for arm, row in stats.items():
        wins = sum(1 for i, d in enumerate(recs) if d["offer"] == arm and i % 2 == 1)
        losses = sum(1 for i, d in enumerate(recs) if d["offer"] == arm and i % 2 == 0)
        assert (row["alpha"], row["beta"]) == (1 + wins, 1 + losses)
    assert _metric(metrics, "tsbandit_decisions_total", bandit=name) == n
    writes = _metric(metrics, "tsbandit_store_operation_duration_seconds_count",
                     operation="put_pending_many") - writes_before
    assert 0 < writes < n, writes
