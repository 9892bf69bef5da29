"""The service with sticky assignment, a traffic floor and top-two Thompson sampling (issue 17):
a returning user keeps the first draw, each visit its own decision; the rules by configuration."""

from __future__ import annotations

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
