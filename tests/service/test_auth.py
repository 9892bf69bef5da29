"""API key: Bearer auth on mutating endpoints, constant-time comparison, 401 JSON."""

from __future__ import annotations

import hmac

import pytest

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

WRITES = [
    ("POST", "/v1/bandits", {"name": "x", "arms": ["a", "b"]}),
    ("DELETE", "/v1/bandits/ads", None),
    ("POST", "/v1/bandits/ads/arms", {"arm": "c"}),
    ("DELETE", "/v1/bandits/ads/arms/a", None),
    ("POST", "/v1/bandits/ads/decisions", {}),
    ("POST", "/v1/bandits/ads/decisions/batch", {"n": 2}),
    ("POST", "/v1/bandits/ads/rewards", {"decision_id": "ads~" + "0" * 32, "reward": 1}),
    ("GET", "/recommend/c1", None),
    ("POST", "/reward", {"customer_id": "c1", "arm": "a", "reward": 1}),
]
READS = [
    ("GET", "/v1/bandits", None),
    ("GET", "/v1/bandits/ads", None),
    ("GET", "/v1/bandits/ads/stats", None),
    ("GET", "/stats", None),
]


@pytest.fixture
def secured(make_client):
    client = make_client(api_key=KEY)
    assert client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]},
                       headers=AUTH).status_code == 201
    return client


def call(client, method, path, body, headers=None):
    return client.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("headers", [
    None,
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": KEY},
    {"Authorization": "Bearer "},
])
def test_mutating_endpoints_need_the_key(secured, method, path, body, headers):
    r = call(secured, method, path, body, headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    # nothing happened
    assert secured.get("/v1/bandits/ads").json()["arms"] == ["a", "b"]
    assert "x" not in secured.get("/v1/bandits").json()["bandits"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_mutating_endpoints_work_with_the_key(secured, method, path, body):
    r = call(secured, method, path, body, AUTH)
    assert r.status_code != 401, r.text


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_reads_open_by_default(secured, method, path, body):
    assert call(secured, method, path, body).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_reads_closed_when_configured(make_client, method, path, body):
    client = make_client(api_key=KEY, open_reads=False)
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]}, headers=AUTH)
    assert call(client, method, path, body).status_code == 401
    assert call(client, method, path, body, AUTH).status_code == 200


def test_no_key_configured_means_open(client):
    assert client.post("/v1/bandits", json={"name": "x", "arms": ["a"]}).status_code == 201


def test_healthz_is_always_open(make_client):
    client = make_client(api_key=KEY, open_reads=False)
    assert client.get("/healthz").status_code == 200


def test_key_is_compared_in_constant_time(secured, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert call(secured, "POST", "/v1/bandits/ads/decisions", {}, AUTH).status_code == 200
    assert call(secured, "POST", "/v1/bandits/ads/decisions", {}).status_code == 401
    assert calls == [(KEY.encode(), KEY.encode()), (b"", KEY.encode())]


def test_key_is_not_in_settings_repr():
    from tsbandit.service import Settings

    assert KEY not in repr(Settings(store="memory://", api_key=KEY))


def test_key_from_the_environment(monkeypatch, engine):
    from fastapi.testclient import TestClient

    from tsbandit.service import create_app

    monkeypatch.setenv("TSBANDIT_API_KEY", KEY)
    monkeypatch.setenv("TSBANDIT_STORE", "memory://")
    with TestClient(create_app(engine=engine)) as client:
        assert client.post("/v1/bandits", json={"name": "x", "arms": ["a"]}).status_code == 401
        assert client.post("/v1/bandits", json={"name": "x", "arms": ["a"]},
                           headers=AUTH).status_code == 201
