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


# ----- reads of personal data: the key whenever one is set, open_reads or not -------------
def _decided(client):
    """A decision with a user id and a context, made with the key."""
    assert client.post("/v1/bandits", json={"name": "lin", "arms": ["a", "b"], "model": "linear",
                                            "n_features": 2}, headers=AUTH).status_code == 201
    r = client.post("/v1/bandits/lin/decisions", json={"context": [0.5, -1.0],
                                                       "user_id": "alice"}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["decision_id"]


PRIVATE = ["/v1/decisions/{id}", "/v1/bandits/lin/events"]


@pytest.mark.parametrize("open_reads", [True, False])
@pytest.mark.parametrize("path", PRIVATE)
@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"}])
def test_personal_data_needs_the_key_even_with_open_reads(make_client, open_reads, path,
                                                          headers):
    client = make_client(api_key=KEY, open_reads=open_reads)
    url = path.format(id=_decided(client))
    r = client.get(url, headers=headers or {})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert "alice" not in r.text and "0.5" not in r.text
    ok = client.get(url, headers=AUTH)
    assert ok.status_code == 200 and "alice" in ok.text


@pytest.mark.parametrize("path", PRIVATE)
def test_personal_data_is_open_without_a_key(client, path):
    url = path.format(id=_decided(client))
    r = client.get(url)
    assert r.status_code == 200 and "alice" in r.text


def test_decision_read_documents_its_401(make_client):
    spec = make_client(api_key=KEY).get("/openapi.json").json()
    assert "401" in spec["paths"]["/v1/decisions/{decision_id}"]["get"]["responses"]
    assert "401" not in spec["paths"]["/v1/bandits/{name}/stats"]["get"]["responses"]
    open_spec = make_client().get("/openapi.json").json()
    assert "401" not in open_spec["paths"]["/v1/decisions/{decision_id}"]["get"]["responses"]


def test_other_reads_carry_no_personal_data(secured):
    """The reads left open (aggregates, configuration) never echo a user id or a context."""
    secured.post("/v1/bandits/ads/decisions", json={"user_id": "bob-the-user"}, headers=AUTH)
    secured.get("/recommend/carol-the-customer", headers=AUTH)
    for method, path, body in [*READS, ("GET", "/v1/bandits/ads/report", None),
                               ("GET", "/v1/bandits/ads/traffic", None)]:
        r = call(secured, method, path, body)
        assert r.status_code == 200, (path, r.text)
        assert "bob-the-user" not in r.text and "carol-the-customer" not in r.text, path
