"""Every kind of bad input: the right status, a stable code, the error shape, nothing applied."""

from __future__ import annotations

import json

import pytest

ERROR_KEYS = {"error"}


def err(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == ERROR_KEYS and set(body["error"]) == {"code", "detail"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["detail"]
    return body["error"]["detail"]


@pytest.fixture
def setup(client):
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]})
    client.post("/v1/bandits", json={"name": "lin", "arms": ["a", "b"], "model": "linear",
                                     "n_features": 2})
    client.post("/v1/bandits", json={"name": "rev", "arms": ["a", "b"], "model": "gaussian"})
    return client


def raw(client, path, text, method="POST"):
    return client.request(method, path, content=text.encode() if isinstance(text, str) else text,
                          headers={"content-type": "application/json"})


@pytest.mark.parametrize(("text", "why"), [
    ("{", "truncated"),
    ("{'a': 1}", "single quotes"),
    ('{"context": [NaN, 1]}', "NaN"),
    ('{"context": [Infinity, 1]}', "Infinity"),
    ('{"context": [-Infinity, 1]}', "-Infinity"),
    ('{"context": [1e999, 1]}', "overflows to inf"),
    (b'{"user_id": "\xff"}', "not UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_malformed_json_is_400(setup, text, why):
    err(raw(setup, "/v1/bandits/lin/decisions", text), 400, "malformed_json")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/bandits/ads/decisions", {"k": "2"}),
    ("/v1/bandits/ads/decisions", {"k": 1.5}),
    ("/v1/bandits/ads/decisions", {"k": True}),
    ("/v1/bandits/ads/decisions", {"k": 0}),
    ("/v1/bandits/ads/decisions", {"eligible_arms": "a"}),
    ("/v1/bandits/ads/decisions", {"eligible_arms": []}),
    ("/v1/bandits/ads/decisions", {"user_id": 7}),
    ("/v1/bandits/ads/decisions", {"unknown_field": 1}),
    ("/v1/bandits/ads/decisions", [1, 2]),
    ("/v1/bandits/ads/decisions", "string"),
    ("/v1/bandits/ads/rewards", {"decision_id": "x"}),
    ("/v1/bandits/ads/rewards", {"decision_id": "x", "reward": "1"}),
    ("/v1/bandits/ads/rewards", {"decision_id": "x", "reward": None}),
    ("/v1/bandits/ads/rewards", {"decision_id": 5, "reward": 1}),
    ("/v1/bandits", {"name": "x"}),
    ("/v1/bandits", {"name": "x", "arms": []}),
    ("/v1/bandits", {"name": "has space", "arms": ["a"]}),
    ("/v1/bandits", {"name": "x", "arms": ["a"], "model": "poisson"}),
    ("/v1/bandits", {"name": "x", "arms": ["a"], "rule": {"kind": "ucb1", "c": -1}}),
    ("/v1/bandits", {"name": "x", "arms": ["a"], "model": {"kind": "beta", "alpha0": 0}}),
    ("/v1/bandits", {"name": "x", "arms": ["a"], "reward_window": -1}),
    ("/v1/bandits/ads/arms", {"arm": ""}),
    ("/reward", {"customer_id": "c", "arm": "a"}),
])
def test_wrong_shapes_and_types_are_422(setup, path, body):
    err(setup.post(path, json=body), 422, "invalid_request")


def test_body_that_is_not_json_is_422(setup):
    r = setup.post("/v1/bandits/ads/decisions", content=b"k=1",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    err(r, 422, "invalid_request")


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("GET", "/v1/bandits/nope", None, 404, "bandit_not_found"),
    ("GET", "/v1/bandits/nope/stats", None, 404, "bandit_not_found"),
    ("POST", "/v1/bandits/nope/decisions", {}, 404, "bandit_not_found"),
    ("POST", "/v1/bandits/nope/arms", {"arm": "x"}, 404, "bandit_not_found"),
    ("DELETE", "/v1/bandits/ads/arms/zz", None, 404, "unknown_arm"),
    ("POST", "/v1/bandits/ads/decisions", {"eligible_arms": ["zz"]}, 422,
     "invalid_eligible_arms"),
    ("POST", "/v1/bandits/ads/decisions", {"k": 3}, 422, "invalid_eligible_arms"),
    ("POST", "/v1/bandits/ads/decisions", {"context": [1.0]}, 422, "invalid_context"),
    ("POST", "/v1/bandits/lin/decisions", {}, 422, "invalid_context"),
    ("POST", "/v1/bandits/lin/decisions", {"context": [1.0, 2.0, 3.0]}, 422, "invalid_context"),
    ("GET", "/v1/bandits/lin/stats?context=1", None, 422, "invalid_context"),
    ("GET", "/v1/bandits/lin/stats?context=nan&context=1", None, 422, "invalid_context"),
    ("GET", "/v1/bandits/ads/stats?level=1.5", None, 422, "invalid_request"),
    ("GET", "/v1/decisions/garbage", None, 404, "decision_not_found"),
    ("GET", "/v1/decisions/nope~" + "0" * 32, None, 404, "decision_not_found"),
    ("POST", "/v1/bandits/ads/rewards", {"decision_id": "garbage", "reward": 1}, 404,
     "decision_not_found"),
    ("POST", "/v1/bandits", {"name": "x", "arms": ["a", "a"]}, 409, "duplicate_arm"),
    ("POST", "/v1/bandits", {"name": "x", "arms": ["a"], "model": "linear"}, 422,
     "invalid_request"),
    ("POST", "/v1/bandits", {"name": "x", "arms": ["a"], "default_reward": 0.5}, 422,
     "invalid_reward"),
    ("POST", "/v1/bandits", {"name": "x", "arms": ["a"], "model": "logistic", "n_features": 2,
                             "half_life": 60}, 400, "invalid_configuration"),
    ("GET", "/no/such/route", None, 404, "not_found"),
    ("PUT", "/v1/bandits", None, 405, "method_not_allowed"),
])
def test_domain_errors(setup, method, path, body, status, code):
    r = setup.request(method, path, json=body) if body is not None else setup.request(method,
                                                                                      path)
    err(r, status, code)


@pytest.mark.parametrize(("bandit", "reward"), [("ads", 0.5), ("ads", 2), ("ads", -1),
                                                ("ads", 1e308), ("rev", 1e308),
                                                ("rev", -1e200)])
def test_reward_outside_its_domain_changes_nothing(setup, bandit, reward):
    d = setup.post(f"/v1/bandits/{bandit}/decisions", json={}).json()
    before = setup.get(f"/v1/bandits/{bandit}/stats").json()
    r = setup.post(f"/v1/bandits/{bandit}/rewards",
                   json={"decision_id": d["decision_id"], "reward": reward})
    err(r, 422, "invalid_reward")
    after = setup.get(f"/v1/bandits/{bandit}/stats").json()
    assert after["model_version"] == before["model_version"]
    assert [a["pulls"] for a in after["arms"]] == [a["pulls"] for a in before["arms"]]
    # the decision is still pending and takes a valid reward afterwards
    r = setup.post(f"/v1/bandits/{bandit}/rewards",
                   json={"decision_id": d["decision_id"], "reward": 1})
    assert r.json()["status"] == "applied"


def test_gaussian_takes_any_finite_reward(setup):
    d = setup.post("/v1/bandits/rev/decisions", json={}).json()
    r = setup.post("/v1/bandits/rev/rewards", json={"decision_id": d["decision_id"],
                                                    "reward": -12.75})
    assert r.json()["status"] == "applied"


def test_nan_reward_is_refused_before_the_engine(setup):
    d = setup.post("/v1/bandits/rev/decisions", json={}).json()
    text = json.dumps({"decision_id": d["decision_id"], "reward": float("nan")})
    assert "NaN" in text
    err(raw(setup, "/v1/bandits/rev/rewards", text), 400, "malformed_json")
    r = setup.post("/v1/bandits/rev/rewards", json={"decision_id": d["decision_id"], "reward": 3})
    assert r.json()["status"] == "applied"


# ----- oversize bodies ---------------------------------------------------------------------
def test_oversize_body_with_content_length_is_413(make_client):
    client = make_client(max_body_bytes=1000)
    body = json.dumps({"name": "x", "arms": [f"arm{i}" for i in range(300)]})
    assert len(body) > 1000
    err(raw(client, "/v1/bandits", body), 413, "payload_too_large")
    assert "x" not in client.get("/v1/bandits").json()["bandits"]


def test_oversize_chunked_body_is_413(make_client):
    client = make_client(max_body_bytes=1000)

    def chunks():
        yield b'{"name": "x", "arms": ['
        for i in range(300):
            yield f'"arm{i}", '.encode()
        yield b'"last"]}'

    r = client.post("/v1/bandits", content=chunks(), headers={"content-type": "application/json"})
    err(r, 413, "payload_too_large")


def test_small_chunked_body_passes(make_client):
    client = make_client(max_body_bytes=1000)

    def chunks():
        yield b'{"name": "x", '
        yield b'"arms": ["a", "b"]}'

    r = client.post("/v1/bandits", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text


def test_body_exactly_at_the_limit_passes(make_client):
    body = json.dumps({"name": "x", "arms": ["a", "b"]}).encode()
    client = make_client(max_body_bytes=len(body))
    assert raw(client, "/v1/bandits", body).status_code == 201


def test_no_500_for_unexpected_engine_failures(make_client, engine, monkeypatch):
    """A bug still answers in the error shape (500 internal_error), never a bare traceback."""
    from fastapi.testclient import TestClient

    from tsbandit.service import Settings, create_app

    app = create_app(Settings(store="memory://"), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        # the app's engine: with metrics on, the observed twin of ``engine``
        monkeypatch.setattr(app.state.runtime.engine, "list_bandits", lambda: 1 / 0)
        err(client.get("/v1/bandits"), 500, "internal_error")


def test_long_request_targets_are_414_json(make_client):
    client = make_client()
    client.post("/v1/bandits", json={"name": "u", "arms": ["a", "b"]})
    path = "/v1/bandits/u/stats?pad="
    assert client.get(path + "x" * (8192 - len(path))).status_code == 200
    detail = err(client.get(path + "x" * (8193 - len(path))), 414, "uri_too_long")
    assert "8193" in detail and "8192" in detail
    err(client.get("/v1/bandits/" + "u" * 9000), 414, "uri_too_long")  # the path alone
    err(client.post("/v1/bandits/u/rewards?" + "x" * 9000, json={}), 414, "uri_too_long")
    small = make_client(max_url_bytes=100)
    err(small.get("/v1/bandits?" + "x" * 100), 414, "uri_too_long")
    assert small.get("/v1/bandits?" + "x" * 80).status_code == 200
