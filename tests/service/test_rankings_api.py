"""The service for issue 17: sticky assignment (a returning user keeps the first draw, each
visit its own decision), per-slot rewards of rankings, the traffic floor and top-two rules."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_a_returning_user_keeps_the_first_draw(client: TestClient) -> None:
    r = client.post("/v1/bandits", json={"name": "offers", "arms": ["a", "b", "c", "d"],
                                         "stickiness": 3600})
    assert r.status_code == 201, r.text
    assert r.json()["stickiness"] == 3600
    assert client.get("/v1/bandits/offers").json()["stickiness"] == 3600
    first = client.post("/v1/bandits/offers/decisions", json={"user_id": "u1"}).json()
    assert first["sticky_of"] == first["decision_id"]
    for _ in range(5):
        again = client.post("/v1/bandits/offers/decisions", json={"user_id": "u1"}).json()
        assert again["arm"] == first["arm"] and again["sticky_of"] == first["decision_id"]
        assert again["propensity"] == first["propensity"]
        assert again["decision_id"] != first["decision_id"]
        ok = client.post("/v1/bandits/offers/rewards",
                         json={"decision_id": again["decision_id"], "reward": 1})
        assert ok.status_code == 200 and ok.json()["status"] == "applied"
    anon = client.post("/v1/bandits/offers/decisions", json={}).json()
    assert "sticky_of" not in anon
    events = client.get("/v1/bandits/offers/events").text.splitlines()
    assert sum('"sticky_of"' in line for line in events) == 6


def test_plain_bandits_answer_no_stickiness(client: TestClient) -> None:
    assert client.post("/v1/bandits", json={"name": "plain", "arms": ["a", "b"]}
                       ).status_code == 201
    assert "stickiness" not in client.get("/v1/bandits/plain").json()
    bad = client.post("/v1/bandits", json={"name": "bad", "arms": ["a"], "stickiness": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_floor_and_top_two_rules_by_configuration(client: TestClient) -> None:
    for name, rule in (("floored", {"kind": "floor", "floor": 0.1,
                                    "rule": {"kind": "thompson"}}),
                       ("toptwo", {"kind": "top_two", "beta": 0.5})):
        r = client.post("/v1/bandits", json={"name": name, "arms": ["a", "b", "c"],
                                             "rule": rule})
        assert r.status_code == 201, r.text
        d = client.post(f"/v1/bandits/{name}/decisions", json={}).json()
        assert d["arm"] in ("a", "b", "c") and 0 < d["propensity"] <= 1


def test_a_carousel_learns_from_every_slot(client: TestClient) -> None:
    r = client.post("/v1/bandits", json={
        "name": "carousel", "arms": ["a", "b", "c", "d"],
        "model": {"kind": "position_based", "n_positions": 3, "examination": [1, 0.6, 0.3]}})
    assert r.status_code == 201, r.text
    assert r.json()["model"]["kind"] == "position_based"
    d = client.post("/v1/bandits/carousel/decisions", json={"k": 3}).json()
    did = d["decision_id"]
    one = client.post("/v1/bandits/carousel/rewards",
                      json={"decision_id": did, "slot": 2, "reward": 1}).json()
    assert one["slots"] == [{"slot": 2, "status": "applied", "duplicate": False}]
    assert one["arm"] == d["ranking"][2]
    rest = client.post("/v1/bandits/carousel/rewards",
                       json={"decision_id": did, "slot_rewards": [0, 0, 1]}).json()
    assert [s["status"] for s in rest["slots"]] == ["applied", "applied", "duplicate"]
    bad = client.post("/v1/bandits/carousel/rewards",
                      json={"decision_id": did, "slot": 5, "reward": 1})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_reward"
    both = client.post("/v1/bandits/carousel/rewards",
                       json={"decision_id": did, "reward": 1, "slot_rewards": [1]})
    assert both.status_code == 422 and both.json()["error"]["code"] == "invalid_request"
    too_long = client.post("/v1/bandits/carousel/decisions", json={"k": 4})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_eligible_arms"
    stats = client.get("/v1/bandits/carousel/stats").json()
    assert {row["arm"] for row in stats["arms"]} == {"a", "b", "c", "d"}


def test_a_plain_bandit_refuses_other_slots(client: TestClient) -> None:
    client.post("/v1/bandits", json={"name": "plain", "arms": ["a", "b", "c"]})
    d = client.post("/v1/bandits/plain/decisions", json={"k": 2}).json()
    r = client.post("/v1/bandits/plain/rewards",
                    json={"decision_id": d["decision_id"], "slot": 1, "reward": 1})
    assert r.status_code == 422 and "first slot" in r.json()["error"]["detail"]
    ok = client.post("/v1/bandits/plain/rewards",
                     json={"decision_id": d["decision_id"], "slot": 0, "reward": 1})
    assert ok.status_code == 200 and "slots" not in ok.json()


def test_a_shared_weights_linear_bandit(client: TestClient) -> None:
    r = client.post("/v1/bandits", json={"name": "shared", "arms": ["a", "b", "c"],
                                         "model": "hierarchical-linear", "n_features": 2})
    assert r.status_code == 201, r.text
    assert r.json()["model"]["kind"] == "hierarchical-linear"
    for _ in range(5):
        d = client.post("/v1/bandits/shared/decisions", json={"context": [0.5, 1.0]}).json()
        ok = client.post("/v1/bandits/shared/rewards",
                         json={"decision_id": d["decision_id"], "reward": 0.7})
        assert ok.status_code == 200, ok.text
    assert client.post("/v1/bandits", json={"name": "nofeat", "arms": ["a"],
                                            "model": "hierarchical-linear"}).status_code == 422


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_bandit_per_context_cell(make_client, tmp_path, store: str) -> None:
    # the (K, n_cells) statistics go through a real SQLite file as through memory
    client = (make_client() if store == "memory"
              else make_client(store=f"sqlite:///{tmp_path / 'cells.db'}"))
    r = client.post("/v1/bandits", json={
        "name": "cells", "arms": ["a", "b"], "n_features": 2,
        "model": {"kind": "binned-beta", "n_cells": 64, "cell_width": 0.5, "beta0": 3.0}})
    assert r.status_code == 201, r.text
    assert r.json()["model"] == {"kind": "binned-beta", "n_features": 2, "n_cells": 64,
                                 "cell_width": 0.5, "alpha0": 1.0, "beta0": 3.0,
                                 "pooling": 0.0}
    # three decisions in one cell, each rewarded: the arms' counts add up to 3 successes
    for _ in range(3):
        d = client.post("/v1/bandits/cells/decisions", json={"context": [0.1, 1.0]}).json()
        ok = client.post("/v1/bandits/cells/rewards",
                         json={"decision_id": d["decision_id"], "reward": 1})
        assert ok.status_code == 200, ok.text
    st = client.get("/v1/bandits/cells/stats", params={"context": [0.1, 1.0]})
    assert st.status_code == 200, st.text
    arms = st.json()["arms"]
    # Beta(1 + s, 3 + f) of the cell: three successes between the two arms
    assert sum(a["pulls"] for a in arms) == 3 and sum(a["rewards"] for a in arms) == 3
    for a in arms:
        assert a["mean"] == pytest.approx((1 + a["rewards"]) / (4 + a["pulls"]))
    rep = client.get("/v1/bandits/cells/report")
    assert rep.status_code == 400 and rep.json()["error"]["code"] == "invalid_configuration"
    bad = client.post("/v1/bandits/cells/decisions", json={"context": [0.1]})
    assert bad.status_code == 422
    d = client.post("/v1/bandits/cells/decisions", json={"context": [0.1, 1.0]}).json()
    assert client.post("/v1/bandits/cells/rewards",
                       json={"decision_id": d["decision_id"], "reward": 0.5}).status_code == 422
    assert client.post("/v1/bandits", json={"name": "nofeat", "arms": ["a"],
                                            "model": "binned-beta"}).status_code == 422
