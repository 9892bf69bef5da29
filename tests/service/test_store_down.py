"""A store that goes down: 503 quickly, the service stays up, and recovers with the store."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stores.backends import skip_or_fail
from stores.redis_servers import RedisServer, redis_binaries
from tsbandit.engine import Engine
from tsbandit.errors import StoreUnavailableError
from tsbandit.service import Settings, create_app
from tsbandit.stores.memory import MemoryStore

from .conftest import free_port


class FlakyStore:
    """A MemoryStore whose every call fails with StoreUnavailableError while ``down``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False
        self.url = "memory://"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailableError("store is down (test)")
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def flaky(clock):
    store = FlakyStore()
    app = create_app(Settings(store="memory://"), engine=Engine(store, seed=0, clock=clock))
    with TestClient(app) as client:
        client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]})
        yield client, store


def test_store_down_is_503_and_recovers(flaky):
    client, store = flaky
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    store.down = True
    for method, path, body in [
        ("GET", "/healthz", None),
        ("GET", "/v1/bandits", None),
        ("POST", "/v1/bandits/ads/decisions", {}),
        ("POST", "/v1/bandits/ads/rewards", {"decision_id": d["decision_id"], "reward": 1}),
        ("GET", "/v1/bandits/ads/stats", None),
        ("GET", "/recommend/c1", None),
        ("GET", "/stats", None),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 503, (path, r.text)
        assert r.json()["error"]["code"] == "store_unavailable"
    store.down = False
    assert client.get("/healthz").status_code == 200
    r = client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    assert r.json()["status"] == "applied"  # the failed attempt applied nothing


def test_store_down_at_start_up_defers_the_default_bandit(clock):
    store = FlakyStore()
    store.down = True
    app = create_app(Settings(store="memory://"), engine=Engine(store, seed=0, clock=clock))
    with TestClient(app) as client:  # start-up does not fail
        assert client.get("/recommend/c1").status_code == 503
        store.down = False
        assert client.get("/recommend/c1").status_code == 200


# ----- real Redis that is not there ------------------------------------------------------
def test_unreachable_redis_is_a_quick_503_then_recovers(tmp_path):
    """Point the service at a port where no Redis listens, then start one there."""
    if redis_binaries() is None:
        skip_or_fail("redis-server / redis-cli not found on PATH")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = create_app(Settings(store=url, seed=0))
    with TestClient(app) as client:
        for path in ("/healthz", "/recommend/c1", "/stats"):
            t0 = time.monotonic()
            r = client.get(path)
            elapsed = time.monotonic() - t0
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            # the store answers StoreUnavailableError within 1 s (tests/stores/test_redis.py);
            # here, a bound that catches a hang on TCP or a retry loop in the service
            assert elapsed < 2.0, f"{path} took {elapsed:.2f} s to fail"
        server = RedisServer(tmp_path / "redis", port=port)  # a Redis appears on that port
        try:
            deadline = time.monotonic() + 10
            while client.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, "service did not recover"
                time.sleep(0.05)
            rec = client.get("/recommend/c1").json()
            r = client.post("/reward", json={"customer_id": "c1", "arm": rec["offer"],
                                             "reward": 1})
            assert r.json()["status"] == "updated"
            assert client.get("/stats").json()[rec["offer"]]["alpha"] == 2.0
            # and down again: 503 again, quickly, with the service still up
            server.kill()
            t0 = time.monotonic()
            r = client.get("/stats")
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            assert time.monotonic() - t0 < 2.0
            assert client.get("/healthz").status_code == 503
        finally:
            server.stop()


# ----- outages that Redis answers (not a refused connection) over real HTTP keep-alive -------
def _keepalive_request(conn: http.client.HTTPConnection, method: str, path: str,
                       body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any], Any]:
    """One request on ``conn`` (kept open); status, headers and JSON body."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = json.loads(r.read() or b"null")
    return r.status, {k.lower(): v for k, v in r.getheaders()}, payload


def test_redis_out_of_memory_is_503_and_the_connection_stays_open(serve, redis_server, unique):
    """A full Redis (``maxmemory``) answers OOM to every write: 503 store_unavailable with
    Retry-After, on a keep-alive connection that serves the next request (uvicorn dropped it
    after the 500 this was before); writes work again once memory is there."""
    server = serve({"TSBANDIT_STORE": f"{redis_server.url}?prefix=oom{unique}:",
                    "TSBANDIT_DEFAULT_BANDIT": "false"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        status, _, _ = _keepalive_request(conn, "POST", "/v1/bandits",
                                          {"name": "ads", "arms": ["a", "b"]})
        assert status == 201
        status, _, d = _keepalive_request(conn, "POST", "/v1/bandits/ads/decisions", {})
        assert status == 200
        local = conn.sock.getsockname()
        assert "OK" in redis_server.cli("config", "set", "maxmemory", "1")
        for path, body in [("/v1/bandits/ads/decisions", {}),
                           ("/v1/bandits/ads/rewards",
                            {"decision_id": d["decision_id"], "reward": 1})]:
            status, headers, err = _keepalive_request(conn, "POST", path, body)
            assert status == 503, err
            assert err["error"]["code"] == "store_unavailable"
            assert "OOM" in err["error"]["detail"]
            assert headers["retry-after"] == "1"
            assert headers.get("connection") != "close"
        # the same TCP connection answers the next request (a read works on a full Redis)
        status, _, _ = _keepalive_request(conn, "GET", "/v1/bandits/ads/stats")
        assert status == 200 and conn.sock.getsockname() == local
        assert "OK" in redis_server.cli("config", "set", "maxmemory", "0")
        status, _, r = _keepalive_request(conn, "POST", "/v1/bandits/ads/rewards",
                                          {"decision_id": d["decision_id"], "reward": 1})
        assert status == 200 and r["status"] == "applied"  # the refused attempt wrote nothing
        assert conn.sock.getsockname() == local
    finally:
        conn.close()


def test_a_bug_answers_500_and_the_connection_stays_open(engine, monkeypatch):
    """An unexpected exception answers 500 internal_error and uvicorn keeps the connection."""
    import threading

    import uvicorn

    app = create_app(Settings(store="memory://", default_bandit=False), engine=engine)
    # the app's engine: with metrics on, the observed twin of ``engine``
    monkeypatch.setattr(app.state.runtime.engine, "list_bandits", lambda: 1 / 0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        status, headers, err = _keepalive_request(conn, "GET", "/v1/bandits")
        assert status == 500 and err["error"]["code"] == "internal_error"
        assert headers.get("connection") != "close"
        local = conn.sock.getsockname()
        status, _, _ = _keepalive_request(conn, "GET", "/healthz")
        assert status == 200 and conn.sock.getsockname() == local
    finally:
        conn.close()
        server.should_exit = True
        thread.join(timeout=10)


# ----- a Redis Cluster losing nodes (the shared 3 primaries + 3 replicas) ---------------------
def test_healthz_follows_the_cluster_through_failover_and_fail_state(redis_ha_cluster, unique):
    """/healthz asks the cluster, not one node: 503 while a killed primary's slots are not
    served, 200 once its replica took over (the killed node still down); with a whole shard
    gone the cluster is ``fail``: /healthz 503 with the state, and decisions on a healthy
    shard 503 store_unavailable (CLUSTERDOWN), not 500."""
    cluster = redis_ha_cluster
    prefix = f"hz{unique}:"
    app = create_app(Settings(store=f"{cluster.url}?prefix={prefix}", seed=0,
                              default_bandit=False))
    with TestClient(app) as client:
        h = client.get("/healthz")
        assert h.status_code == 200, h.text
        assert h.json()["cluster"]["cluster_state"] == "ok"
        assert h.json()["cluster"]["cluster_slots_ok"] == 16384
        names = [f"ads{i}" for i in range(40)]
        owners = {n: cluster.primary_of(f"{prefix}{{{n}}}") for n in names}
        first = owners[names[0]]
        other = next(n for n in names if owners[n] is not first)
        for n in (names[0], other):
            assert client.post("/v1/bandits", json={"name": n, "arms": ["a", "b"]}).is_success
        first.kill()  # the replica takes over
        h = client.get("/healthz")
        assert h.status_code == 503 and h.json()["error"]["code"] == "store_unavailable"
        deadline = time.monotonic() + 20
        while (h := client.get("/healthz")).status_code != 200:
            assert time.monotonic() < deadline, h.text
            time.sleep(0.1)
        assert h.json()["cluster"]["cluster_state"] == "ok"
        r = client.post(f"/v1/bandits/{names[0]}/decisions", json={})
        assert r.status_code == 200, r.text  # served by the new primary
        # a whole shard down: the other bandit's primary and its replica
        victim = cluster.primary_of(f"{prefix}{{{other}}}")
        for node in [*cluster.replicas_of(victim), victim]:
            node.kill()
        cluster.wait_state("fail")
        h = client.get("/healthz")
        assert h.status_code == 503 and h.headers["retry-after"] == "1"
        assert h.json()["error"]["code"] == "store_unavailable"
        assert h.json()["cluster"]["cluster_state"] == "fail"
        assert h.json()["cluster"]["cluster_slots_ok"] < 16384
        r = client.post(f"/v1/bandits/{names[0]}/decisions", json={})  # its shard is alive
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_unavailable"
        assert "CLUSTERDOWN" in r.json()["error"]["detail"]
