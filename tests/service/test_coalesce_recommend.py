"""The tutorial's ``GET /recommend/{customer_id}`` through the decision coalescer (in process
over ASGI; real HTTP: tests/service/test_coalesce.py). Every coalesced recommend is its own
decision, recorded with its customer as ``user_id``, joined per customer for ``/reward``; a
request that cannot join a batch (an idempotency key, another group) is served alone; a sticky
bandit keeps each customer's assignment through a batch."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tsbandit.engine import Engine
from tsbandit.service import Settings, create_app
from tsbandit.service.settings import TUTORIAL_ARMS

from .test_coalesce import SlowStore, coalescer, run

NAME = "offers"


def make_app(store: SlowStore, **settings: Any) -> Any:
    engine = Engine(store, seed=0)
    options: dict[str, Any] = {"default_bandit_name": NAME, **settings}
    return create_app(Settings(store="memory://", **options), engine=engine)


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_concurrent_recommends_are_coalesced_each_its_own_and_joined(offload: bool):
    store = SlowStore()
    app = make_app(store, offload=offload)
    n = 60

    async def scenario(c: httpx.AsyncClient) -> tuple[list[dict[str, Any]], list[Any]]:
        assert (await c.get("/recommend/warm")).status_code == 200  # creates and caches it
        rs = await asyncio.gather(*(c.get(f"/recommend/c{i}") for i in range(n)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200]
        assert not any("Idempotent-Replayed" in r.headers for r in rs)
        recs = [r.json() for r in rs]
        pending = await asyncio.gather(*(c.get(f"/v1/decisions/{d['decision_id']}")
                                         for d in recs))
        rewards = []
        for i, d in enumerate(recs):  # the join by customer: no decision id sent
            body = {"customer_id": f"c{i}", "arm": d["offer"], "reward": i % 2}
            first = await c.post("/reward", json=body)
            again = await c.post("/reward", json=body)
            rewards.append((first.json()["decision_id"], first.json()["status"],
                            again.json()["status"]))
        stats = (await c.get("/stats")).json()
        return recs, [[p.json() for p in pending], rewards, stats]

    recs, (pending, rewards, stats) = run(app, scenario)
    assert [d["customer_id"] for d in recs] == [f"c{i}" for i in range(n)]
    assert len({d["decision_id"] for d in recs}) == n
    assert all(d["offer"] in TUTORIAL_ARMS for d in recs)
    # recorded with the customer as user id, and the arm answered
    assert [p["user_id"] for p in pending] == [f"c{i}" for i in range(n)]
    assert [p["arm"] for p in pending] == [d["offer"] for d in recs]
    # each customer's reward joined its own decision, exactly once
    assert rewards == [(d["decision_id"], "updated", "duplicate") for d in recs]
    # coalesced: fewer store writes than decisions, some holding several
    co = coalescer(app)
    assert co.batches >= 1 and co.batched >= n // 2, (co.batches, co.batched)
    assert sum(store.writes) == n + 1 and max(store.writes) > 1
    wins = Counter(d["offer"] for i, d in enumerate(recs) if i % 2 == 1)
    losses = Counter(d["offer"] for i, d in enumerate(recs) if i % 2 == 0)
    for arm in TUTORIAL_ARMS:
        assert (stats[arm]["alpha"], stats[arm]["beta"]) == (1 + wins[arm], 1 + losses[arm])


def test_recommends_share_batches_with_plain_decisions_and_others_run_alone():
    """A recommend is a plain decision of the default bandit (no eligible arms, k=1): it
    batches with ``POST .../decisions {}``; a request of another group (k=2, eligible arms) and
    a recommend with an idempotency key are served alone, each correctly."""
    store = SlowStore()
    app = make_app(store)
    arms = list(TUTORIAL_ARMS)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.get("/recommend/warm")
        reqs = []
        for i in range(12):
            reqs.append(c.get(f"/recommend/c{i}"))
            reqs.append(c.post(f"/v1/bandits/{NAME}/decisions", json={"user_id": f"u{i}"}))
            if i % 4 == 0:
                reqs.append(c.post(f"/v1/bandits/{NAME}/decisions",
                                   json={"k": 2, "eligible_arms": arms[:3]}))
                reqs.append(c.get(f"/recommend/k{i}", headers={"Idempotency-Key": f"key-{i}"}))
        rs = await asyncio.gather(*reqs)
        replay = await c.get("/recommend/k0", headers={"Idempotency-Key": "key-0"})
        return [*rs, replay]

    *rs, replay = run(app, scenario)
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200]
    recs = [r.json() for r in rs if "customer_id" in r.json()]
    plain = [r.json() for r in rs if "ranking" in r.json() and len(r.json()["ranking"]) == 1]
    ranked = [r.json() for r in rs if "ranking" in r.json() and len(r.json()["ranking"]) == 2]
    assert len(recs) == 15 and len(plain) == 12 and len(ranked) == 3
    assert all(set(d["ranking"]) <= set(arms[:3]) for d in ranked)
    ids = [d["decision_id"] for d in recs + plain + ranked]
    assert len(set(ids)) == len(ids)
    keyed = next(d for d in recs if d["customer_id"] == "k0")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == keyed
    assert coalescer(app).batches >= 1 and max(store.writes) > 1


def test_sticky_default_bandit_keeps_each_customer_through_a_batch():
    """A sticky bandit assigns each customer once, also when the customer's recommends land in
    one batch: every visit is its own decision, all show the same offer."""
    store = SlowStore()
    app = make_app(store, default_bandit=False)
    customers, visits = 8, 4

    async def scenario(c: httpx.AsyncClient) -> tuple[list[dict[str, Any]], list[Any]]:
        r = await c.post("/v1/bandits", json={"name": NAME, "arms": list(TUTORIAL_ARMS),
                                              "stickiness": 3600})
        assert r.status_code == 201, r.text
        await c.get("/recommend/warm")
        rs = await asyncio.gather(*(c.get(f"/recommend/s{i % customers}")
                                    for i in range(customers * visits)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
        recs = [r.json() for r in rs]
        pending = await asyncio.gather(*(c.get(f"/v1/decisions/{d['decision_id']}")
                                         for d in recs))
        return recs, [p.json() for p in pending]

    recs, pending = run(app, scenario)
    assert len({d["decision_id"] for d in recs}) == customers * visits
    assert coalescer(app).batched > 0 and max(store.writes) > 1
    for i in range(customers):
        mine = [d for d in recs if d["customer_id"] == f"s{i}"]
        assert len({d["offer"] for d in mine}) == 1, mine
        assert {p["user_id"] for p in pending if p["decision_id"] in
                {d["decision_id"] for d in mine}} == {f"s{i}"}
        # one assignment per customer, drawn by one of the customer's own visits
        held = store.get_assignment(NAME, f"s{i}", time.time())
        assert held is not None and held.payload["ranking"] == [mine[0]["offer"]]
        assert held.payload["id"] in {d["decision_id"] for d in mine}


def test_every_coalesced_decision_is_logged_once_after_its_answer(capsys):
    """The decision lines leave the critical path (written once a request's response is sent,
    service/logs.py DeferredLines) and none is lost: one line per decision, each before the
    access line of the request that recorded it, and nothing held once the requests are done."""
    app = make_app(SlowStore())
    n = 30

    async def scenario(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        await c.get("/recommend/warm")
        capsys.readouterr()
        rs = await asyncio.gather(*(c.get(f"/recommend/c{i}") for i in range(n)))
        return [r.json() for r in rs]

    recs = run(app, scenario)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    decided = [x for x in lines if x.get("event") == "decision"]
    assert sorted(x["decision_id"] for x in decided) == sorted(d["decision_id"] for d in recs)
    assert all(x["bandit"] == NAME for x in decided)
    by_id = {x["decision_id"]: x["arm"] for x in decided}
    assert all(by_id[d["decision_id"]] == d["offer"] for d in recs)
    # each request's access line comes after its own decision's line
    access = {x["path"]: i for i, x in enumerate(lines) if x.get("event") == "request"}
    position = {x["decision_id"]: i for i, x in enumerate(lines) if x.get("event") == "decision"}
    assert len(access) == n
    assert all(position[d["decision_id"]] < access[f"/recommend/{d['customer_id']}"]
               for d in recs)
    assert app.state.runtime.observer.metrics.lines._held == []
