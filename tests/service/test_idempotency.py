"""Idempotent decisions over the service: ``Idempotency-Key`` on the decision endpoints (single,
batch, coalesced under concurrency, the tutorial's /recommend), in process and over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tsbandit.engine import Engine
from tsbandit.service import Settings, create_app
from tsbandit.stores.memory import MemoryStore


def key(k: str) -> dict[str, str]:
    return {"Idempotency-Key": k}


def decision_events(client, name: str) -> list[dict[str, Any]]:
    import json

    text = client.get(f"/v1/bandits/{name}/events").text
    return [e for e in map(json.loads, text.splitlines()) if e["type"] == "decision"]


@pytest.fixture
def ads(client):
    assert client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b", "c"]}
                       ).status_code == 201
    return client


def test_retry_with_the_key_answers_the_same_decision(ads):
    body = {"user_id": "u1", "eligible_arms": ["a", "b"]}
    first = ads.post("/v1/bandits/ads/decisions", json=body, headers=key("order-1"))
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = ads.post("/v1/bandits/ads/decisions", json=body, headers=key("order-1"))
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    assert [e["decision_id"] for e in decision_events(ads, "ads")] == [first.json()["decision_id"]]
    # without a key, a new decision each time
    a = ads.post("/v1/bandits/ads/decisions", json=body).json()
    b = ads.post("/v1/bandits/ads/decisions", json=body).json()
    assert len({a["decision_id"], b["decision_id"], first.json()["decision_id"]}) == 3
    # the decision is rewarded once, however often the decide was retried
    reward = {"decision_id": first.json()["decision_id"], "reward": 1}
    assert ads.post("/v1/bandits/ads/rewards", json=reward).json()["duplicate"] is False
    assert ads.post("/v1/bandits/ads/decisions", json=body,
                    headers=key("order-1")).json() == first.json()
    assert ads.post("/v1/bandits/ads/rewards", json=reward).json()["duplicate"] is True


def test_same_key_other_request_is_409(ads):
    ads.post("/v1/bandits/ads/decisions", json={"user_id": "u1"}, headers=key("k1"))
    before = len(decision_events(ads, "ads"))
    for body in ({"user_id": "u2"}, {"user_id": "u1", "k": 2}, {}):
        r = ads.post("/v1/bandits/ads/decisions", json=body, headers=key("k1"))
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "idempotency_conflict"
        assert "k1" in r.json()["error"]["detail"]
    assert len(decision_events(ads, "ads")) == before


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "tab\there"])
def test_bad_keys_are_422(ads, bad):
    r = ads.post("/v1/bandits/ads/decisions", json={}, headers=key(bad))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert "Idempotency-Key" in r.json()["error"]["detail"]
    assert decision_events(ads, "ads") == []


def test_batch_with_the_key(ads):
    first = ads.post("/v1/bandits/ads/decisions/batch", json={"n": 4}, headers=key("b1"))
    assert first.status_code == 200
    again = ads.post("/v1/bandits/ads/decisions/batch", json={"n": 4}, headers=key("b1"))
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len({d["decision_id"] for d in first.json()["decisions"]}) == 4
    r = ads.post("/v1/bandits/ads/decisions/batch", json={"n": 5}, headers=key("b1"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
    assert len(decision_events(ads, "ads")) == 4


def test_recommend_with_the_key(client):
    first = client.get("/recommend/cust_9", headers=key("rec-1"))
    again = client.get("/recommend/cust_9", headers=key("rec-1"))
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = client.get("/recommend/cust_10", headers=key("rec-1"))
    assert other.status_code == 409
    r = client.post("/reward", json={"customer_id": "cust_9", "arm": first.json()["offer"],
                                     "reward": 1})
    assert r.json()["status"] == "updated"


def test_the_key_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json()
    for path, method in [("/v1/bandits/{name}/decisions", "post"),
                         ("/v1/bandits/{name}/decisions/batch", "post"),
                         ("/recommend/{customer_id}", "get")]:
        op = spec["paths"][path][method]
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header"
                   for p in op["parameters"]), path
        assert "409" in op["responses"], path


@pytest.mark.parametrize("offload", [True, False], ids=["offloaded", "on-loop"])
def test_concurrent_retries_while_decisions_are_coalesced(offload):
    """Keyed requests among a crowd of coalesced ones: each key still yields one decision."""
    app = create_app(Settings(store="memory://", default_bandit=False, offload=offload),
                     engine=Engine(MemoryStore(), seed=0))

    async def scenario(c: httpx.AsyncClient) -> tuple[list[Any], list[Any]]:
        await c.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b", "c"]})
        await c.post("/v1/bandits/ads/decisions", json={})
        plain = [c.post("/v1/bandits/ads/decisions", json={}) for _ in range(40)]
        keyed = [c.post("/v1/bandits/ads/decisions", json={}, headers=key(f"k{i % 4}"))
                 for i in range(40)]
        rs = await asyncio.gather(*plain, *keyed)
        events = (await c.get("/v1/bandits/ads/events")).text.splitlines()
        return rs, events

    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await scenario(c)

    rs, events = asyncio.run(go())
    assert all(r.status_code == 200 for r in rs)
    plain, keyed = rs[:40], rs[40:]
    by_key: dict[str, set[str]] = {}
    for i, r in enumerate(keyed):
        by_key.setdefault(f"k{i % 4}", set()).add(r.json()["decision_id"])
    assert all(len(ids) == 1 for ids in by_key.values()) and len(by_key) == 4
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in keyed) == 36
    assert len({r.json()["decision_id"] for r in plain}) == 40
    assert len(events) == 1 + 40 + 4
