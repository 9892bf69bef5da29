"""Over real HTTP: uvicorn subprocesses on free ports, with real SQLite files and real Redis.

The same flows run against every store available; the multi-worker tests run two uvicorn
workers on one shared store and check that the books are exact.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tsbandit.service.runtime import open_store

OFFERS_CUSTOM = ["o1", "o2", "o3"]


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request, tmp_path, unique):
    """Environment of a service on a shared store, with names of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    env = {"TSBANDIT_STORE": url, "TSBANDIT_DEFAULT_BANDIT_NAME": f"cards_{unique}"}
    yield env
    if request.param == "redis":  # leave the shared Redis as we found it
        store = open_store(url)
        try:
            for name in store.list_bandits():
                if name.endswith(unique):
                    store.delete_bandit(name)
        finally:
            store.close()


def session_flow(base: str, name: str, default_bandit: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.post("/v1/bandits", json={"name": name, "arms": OFFERS_CUSTOM})
        assert r.status_code == 201, r.text
        d = c.post(f"/v1/bandits/{name}/decisions", json={"k": 2, "user_id": "u"}).json()
        assert d["arm"] in OFFERS_CUSTOM and len(d["ranking"]) == 2
        body = {"decision_id": d["decision_id"], "reward": 1}
        assert c.post(f"/v1/bandits/{name}/rewards", json=body).json()["status"] == "applied"
        assert c.post(f"/v1/bandits/{name}/rewards", json=body).json()["duplicate"] is True
        arms = {a["arm"]: a for a in c.get(f"/v1/bandits/{name}/stats").json()["arms"]}
        assert arms[d["arm"]]["pulls"] == 1 and arms[d["arm"]]["alpha"] == 2.0
        # errors over the wire
        r = c.post(f"/v1/bandits/{name}/decisions", content=b'{"k": NaN}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        r = c.post(f"/v1/bandits/{name}/rewards", json={"decision_id": d["decision_id"],
                                                        "reward": 7})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_reward"
        # the tutorial's endpoints on the default bandit
        rec = c.get("/recommend/cust_1").json()
        r = c.post("/reward", json={"customer_id": "cust_1", "arm": rec["offer"], "reward": 1})
        assert r.json()["status"] == "updated"
        assert c.get("/stats").json()[rec["offer"]]["total_pulls"] == 1
        assert c.get(f"/v1/bandits/{default_bandit}").status_code == 200


def test_http_memory_store(serve, unique):
    server = serve({"TSBANDIT_STORE": "memory://"})
    session_flow(server.url, f"ads_{unique}", "credit_card_offers")


def test_serve_function(serve, tmp_path):
    """``serve()`` (what ``tsbandit serve`` mounts) with the default SQLite store."""
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'serve.db'}"}, via_serve=True)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/healthz").json()["store"] == "sqlite"
        assert c.get("/recommend/c1").status_code == 200


def test_serve_function_memory(serve):
    server = serve({"TSBANDIT_STORE": "memory://", "TSBANDIT_API_KEY": "k"}, via_serve=True)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/recommend/c1").status_code == 401
        assert c.get("/recommend/c1", headers={"Authorization": "Bearer k"}).status_code == 200


def _raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes): status, headers, body."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("via_serve", [True, False], ids=["serve", "uvicorn-cli"])
def test_http_every_error_is_json_even_before_the_app(serve, via_serve):
    """Long URLs (over max_url_bytes: the app's 414; over what the parser takes: the
    protocol's 414) and unparseable requests answer JSON with a stable code."""
    server = serve({"TSBANDIT_STORE": "memory://", "TSBANDIT_DEFAULT_BANDIT": "false"},
                   via_serve=via_serve)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": "u", "arms": ["a", "b"]}).status_code == 201
        path = "/v1/bandits/u/stats?level=0.9&pad="
        ok = c.get(path + "x" * (8192 - len(path)))  # exactly the limit: served
        assert ok.status_code == 200, ok.text
        for n in (8193 - len(path), 60_000):  # over max_url_bytes: the app answers
            r = c.get(path + "x" * n)
            assert r.status_code == 414, r.text
            assert r.json()["error"]["code"] == "uri_too_long"
    status, headers, body = _raw_http(
        server.port, b"GET /v1/bandits?" + b"q" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    if via_serve:  # over the parser's 65,535 bytes: the protocol answers, in JSON too
        assert (status, headers["content-type"]) == (414, "application/json"), body
        assert json.loads(body)["error"]["code"] == "uri_too_long"
    else:  # the bare uvicorn command line without --http: its plain text (documented)
        assert status == 400
    status, headers, body = _raw_http(server.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400
    if via_serve:
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "malformed_request"
    with httpx.Client(base_url=server.url, timeout=10) as c:  # the server is still fine
        assert c.get("/healthz").status_code == 200


def test_http_oversize_bodies_are_413(serve):
    server = serve({"TSBANDIT_STORE": "memory://", "TSBANDIT_MAX_BODY_BYTES": "2000"})
    big = json.dumps({"name": "x", "arms": [f"arm_{i}" for i in range(500)]}).encode()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/v1/bandits", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        def chunks():
            for i in range(0, len(big), 500):
                yield big[i:i + 500]

        r = c.post("/v1/bandits", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    with httpx.Client(base_url=server.url, timeout=10) as c:  # the server is still fine
        assert c.get("/healthz").status_code == 200
        assert "x" not in c.get("/v1/bandits").json()["bandits"]


def test_http_api_key(serve):
    server = serve({"TSBANDIT_STORE": "memory://", "TSBANDIT_API_KEY": "k3y"})
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/v1/bandits", json={"name": "x", "arms": ["a"]})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v1/bandits", json={"name": "x", "arms": ["a"]},
                   headers={"Authorization": "Bearer k3y"})
        assert r.status_code == 201
        assert c.get("/v1/bandits").status_code == 200
        # a decision read holds the user id: the key even though reads are open
        d = c.post("/v1/bandits/x/decisions", json={"user_id": "alice"},
                   headers={"Authorization": "Bearer k3y"}).json()["decision_id"]
        r = c.get(f"/v1/decisions/{d}")
        assert r.status_code == 401 and "alice" not in r.text
        assert r.json()["error"]["code"] == "unauthorized"
        r = c.get(f"/v1/decisions/{d}", headers={"Authorization": "Bearer k3y"})
        assert r.status_code == 200 and r.json()["user_id"] == "alice"


def test_http_shared_store(serve, store_env, unique):
    server = serve(store_env)
    session_flow(server.url, f"ads_{unique}", store_env["TSBANDIT_DEFAULT_BANDIT_NAME"])


def test_sqlite_survives_restart(serve, tmp_path, unique):
    env = {"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'restart.db'}"}
    first = serve(env)
    with httpx.Client(base_url=first.url, timeout=10) as c:
        c.post("/v1/bandits", json={"name": "keep", "arms": ["a", "b"]})
        d = c.post("/v1/bandits/keep/decisions", json={}).json()
        c.post("/v1/bandits/keep/rewards", json={"decision_id": d["decision_id"], "reward": 1})
        late = c.post("/v1/bandits/keep/decisions", json={}).json()  # rewarded after restart
    first.stop()
    second = serve(env)
    with httpx.Client(base_url=second.url, timeout=10) as c:
        arms = {a["arm"]: a for a in c.get("/v1/bandits/keep/stats").json()["arms"]}
        assert arms[d["arm"]]["alpha"] == 2.0
        r = c.post("/v1/bandits/keep/rewards", json={"decision_id": late["decision_id"],
                                                     "reward": 0})
        assert r.json()["status"] == "applied"
        r = c.post("/v1/bandits/keep/rewards", json={"decision_id": d["decision_id"],
                                                     "reward": 1})
        assert r.json()["duplicate"] is True


# ----- two workers on one store ---------------------------------------------------------------
def test_two_workers_counts_exact(serve, store_env, unique):
    """N decide+reward sessions through 2 workers: every reward counted exactly once."""
    server = serve(store_env, workers=2)
    name = f"mw_{unique}"
    n_sessions, n_threads = 240, 8
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": name, "arms": OFFERS_CUSTOM}).status_code == 201

    def sessions(worker: int) -> Counter[tuple[str, int]]:
        got: Counter[tuple[str, int]] = Counter()
        # a fresh connection per request, so the kernel spreads them over both workers
        headers = {"Connection": "close"}
        with httpx.Client(base_url=server.url, timeout=10, headers=headers) as c:
            for i in range(n_sessions // n_threads):
                d = c.post(f"/v1/bandits/{name}/decisions", json={}).json()
                reward = (worker + i) % 2
                r = c.post(f"/v1/bandits/{name}/rewards",
                           json={"decision_id": d["decision_id"], "reward": reward})
                assert r.json()["status"] == "applied", r.text
                got[(d["arm"], reward)] += 1
        return got

    with ThreadPoolExecutor(n_threads) as pool:
        total = sum(pool.map(sessions, range(n_threads)), Counter())
    with httpx.Client(base_url=server.url, timeout=10) as c:
        arms = {a["arm"]: a for a in c.get(f"/v1/bandits/{name}/stats").json()["arms"]}
    for arm in OFFERS_CUSTOM:
        wins, losses = total[(arm, 1)], total[(arm, 0)]
        assert arms[arm]["pulls"] == wins + losses
        assert arms[arm]["alpha"] == 1 + wins and arms[arm]["beta"] == 1 + losses
    assert sum(a["pulls"] for a in arms.values()) == n_sessions


def test_two_workers_same_reward_applied_once(serve, store_env, unique):
    """One decision rewarded 16 times at once through 2 workers: applied exactly once."""
    server = serve(store_env, workers=2)
    name = f"once_{unique}"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post("/v1/bandits", json={"name": name, "arms": OFFERS_CUSTOM})
        decisions = [c.post(f"/v1/bandits/{name}/decisions", json={}).json() for _ in range(5)]
    barrier = threading.Barrier(16)

    def hit(d: dict) -> str:
        barrier.wait()
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Connection": "close"}) as c:
            r = c.post(f"/v1/bandits/{name}/rewards",
                       json={"decision_id": d["decision_id"], "reward": 1})
            return r.json()["status"]

    for d in decisions:
        with ThreadPoolExecutor(16) as pool:
            statuses = Counter(pool.map(hit, [d] * 16))
        assert statuses == Counter({"applied": 1, "duplicate": 15})
    with httpx.Client(base_url=server.url, timeout=10) as c:
        arms = c.get(f"/v1/bandits/{name}/stats").json()["arms"]
    assert sum(a["pulls"] for a in arms) == len(decisions)


def test_two_workers_tutorial_with_decision_id(serve, store_env):
    """Across workers the tutorial's /reward joins by the decision id /recommend returned."""
    server = serve(store_env, workers=2)
    offers = Counter()
    for i in range(40):
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Connection": "close"}) as c:
            rec = c.get(f"/recommend/c{i}").json()
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Connection": "close"}) as c:
            r = c.post("/reward", json={"customer_id": f"c{i}", "arm": rec["offer"],
                                        "reward": 1, "decision_id": rec["decision_id"]})
            assert r.json()["status"] == "updated", r.text
        offers[rec["offer"]] += 1
    with httpx.Client(base_url=server.url, timeout=10) as c:
        stats = c.get("/stats").json()
    assert {k: v["total_pulls"] for k, v in stats.items() if v["total_pulls"]} == dict(offers)


def test_real_http_retries_across_two_workers(serve, store_env, unique):
    """Two worker processes over one store: the same key from many clients at once, one
    decision; every answer the same."""
    server = serve({**store_env, "TSBANDIT_DEFAULT_BANDIT": "false"}, workers=2)
    name = f"idem_{unique}"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": name, "arms": ["a", "b"]}).status_code == 201
    n = 12
    barrier = threading.Barrier(n)

    def call(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            barrier.wait()
            return c.post(f"/v1/bandits/{name}/decisions", json={"user_id": "u"},
                          headers={"Idempotency-Key": f"retry-{unique}"})

    with ThreadPoolExecutor(n) as pool:
        rs = list(pool.map(call, range(n)))
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    assert len({r.text for r in rs}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in rs) == 1
    with httpx.Client(base_url=server.url, timeout=10) as c:
        events = [json.loads(line) for line in c.get(f"/v1/bandits/{name}/events").text.split()]
        assert [e["type"] for e in events] == ["decision"]
        c.delete(f"/v1/bandits/{name}")
