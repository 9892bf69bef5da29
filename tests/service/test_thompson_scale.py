"""The service deploys tempered Thompson sampling: ``{"rule": {"kind": "thompson", "scale": s}}``
is validated, stored, returned by GET, and used for decisions (in process and over real HTTP
with a SQLite file that a restarted server reads back)."""

from __future__ import annotations

import httpx
import pytest

from tsbandit.policies import ThompsonSampling

LOGISTIC = {"kind": "logistic", "n_features": 2, "prior_precision": 3.0}


def test_create_with_scale_round_trips_through_get(client, engine):
    body = {"name": "tempered", "arms": ["a", "b", "c"], "model": LOGISTIC,
            "rule": {"kind": "thompson", "scale": 0.25}}
    r = client.post("/v1/bandits", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["rule"] == {"kind": "thompson", "scale": 0.25}
    got = client.get("/v1/bandits/tempered")
    assert got.status_code == 200 and got.json() == created
    # the engine really runs the tempered rule, and decisions carry its propensities
    assert engine.get_bandit("tempered").rule == ThompsonSampling(scale=0.25)
    d = client.post("/v1/bandits/tempered/decisions", json={"context": [1.0, 0.5]})
    assert d.status_code == 200, d.text
    assert d.json()["arm"] in body["arms"] and 0.0 < d.json()["propensity"] <= 1.0


def test_thompson_without_scale_is_plain_thompson(client):
    for name, rule in (("kind", "thompson"), ("obj", {"kind": "thompson"})):
        r = client.post("/v1/bandits", json={"name": name, "arms": ["a", "b"], "rule": rule})
        assert r.status_code == 201, r.text
        assert client.get(f"/v1/bandits/{name}").json()["rule"] == {"kind": "thompson",
                                                                    "scale": 1.0}


@pytest.mark.parametrize("bad", [0, -0.25, "0.25", None, True, [0.25]])
def test_bad_scale_is_4xx_json_and_creates_nothing(client, bad):
    before = client.get("/v1/bandits").json()
    r = client.post("/v1/bandits", json={"name": "bad", "arms": ["a", "b"],
                                         "rule": {"kind": "thompson", "scale": bad}})
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["error"]
    assert err["code"] and "scale" in err["detail"]
    assert client.get("/v1/bandits").json() == before
    assert client.get("/v1/bandits/bad").status_code == 404


def test_scale_survives_a_restart_over_http(serve, tmp_path):
    env = {"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'scale.db'}"}
    body = {"name": "tempered", "arms": ["a", "b"], "model": "beta",
            "rule": {"kind": "thompson", "scale": 0.25}}
    first = serve(env)
    r = httpx.post(first.url + "/v1/bandits", json=body, timeout=10)
    assert r.status_code == 201, r.text
    first.stop()
    second = serve(env)
    got = httpx.get(second.url + "/v1/bandits/tempered", timeout=10)
    assert got.status_code == 200 and got.json()["rule"] == {"kind": "thompson", "scale": 0.25}
    d = httpx.post(second.url + "/v1/bandits/tempered/decisions", json={}, timeout=10)
    assert d.status_code == 200 and d.json()["arm"] in ("a", "b")
