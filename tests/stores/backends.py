"""Redis fixtures and store backends shared by the stores, engine and service tests.

The root ``tests/conftest.py`` re-exports the fixtures, so one session-wide 3-node Redis Cluster
serves every test area. Redis means the server at 127.0.0.1:6379 (or
``TSBANDIT_TEST_REDIS_URL``); the cluster and private servers are real ``redis-server``
processes on free ports.

Missing Redis (package, server or binaries) skips the Redis tests with a visible reason, except
under ``CI=true`` where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tsbandit.stores import Store, open_store

from .redis_servers import RedisCluster, RedisServer, env_ci, redis_binaries

REDIS_URL = os.environ.get("TSBANDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under CI=true fail instead (Redis is required there)."""
    if env_ci():
        pytest.fail(f"{reason} (CI=true: the Redis tests must run)", pytrace=False)
    pytest.skip(reason)


def redis_module() -> Any:
    """The redis package; missing: skip with the reason, or fail under CI=true."""
    try:
        import redis
    except ImportError:
        skip_or_fail("the redis package is not installed")
    return redis


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the shared Redis server (tests isolate themselves with a unique key prefix)."""
    redis = redis_module()
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"no Redis server at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real 3-node Redis Cluster on free ports, for the whole session."""
    redis_module()
    if redis_binaries() is None:
        skip_or_fail("redis-server / redis-cli not found on PATH")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_ha_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Redis Cluster of 3 primaries with one replica each (node timeout 1 s), started
    once for the tests that kill nodes; use it through ``redis_ha_cluster``."""
    redis_module()
    if redis_binaries() is None:
        skip_or_fail("redis-server / redis-cli not found on PATH")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-ha"), replicas=1, node_timeout=1000)
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_ha_cluster(redis_ha_session: RedisCluster) -> Iterator[RedisCluster]:
    """The 3+3 cluster, healthy; a test may kill nodes: they are started again afterwards
    (they rejoin as replicas, or as the primaries they were when no replica took over)."""
    redis_ha_session.wait_healthy()
    yield redis_ha_session
    redis_ha_session.restart_dead()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private standalone redis-server (to kill or pause) for one test."""
    redis_module()
    if redis_binaries() is None:
        skip_or_fail("redis-server / redis-cli not found on PATH")
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def purge_prefix(url: str, prefix: str) -> None:
    """Delete every key starting with ``prefix`` (standalone or cluster)."""
    import redis
    from redis.cluster import RedisCluster as Cluster

    if url.startswith("redis+cluster://"):
        first = url.split("://", 1)[1].split(",")[0]
        host, port = first.split(":")
        client: Any = Cluster(host=host, port=int(port))
    else:
        client = redis.Redis.from_url(url)
    try:
        for key in list(client.scan_iter(match=prefix + "*", count=1000)):
            client.delete(key)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Backends: how to open (and re-open) a store of each kind
# ---------------------------------------------------------------------------------------------
class Backend:
    """A store location of one kind; :meth:`open` gives a new client of the same state."""

    def __init__(self, kind: str, url: str, cleanup: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.url = url
        self.shared = kind != "memory"  # can several clients/processes see the same state?
        self._cleanup = cleanup
        self._opened: list[Store] = []
        self._memory: Store | None = None

    def open(self, **options: Any) -> Store:
        if self.kind == "memory":
            if options or self._memory is None:
                self._memory = open_store("memory://", **options)
                self._opened.append(self._memory)
            return self._memory
        store = open_store(self.url, **options)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for s in self._opened:
            s.close()
        if self._cleanup is not None:
            self._cleanup()


def _prefix() -> str:
    return f"tsbt-test-{uuid.uuid4().hex[:12]}:"


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        return Backend(kind, "memory://")
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{tmp_path / 'store.db'}")
    prefix = _prefix()
    if kind == "redis":
        base = request.getfixturevalue("redis_url")
    else:
        base = request.getfixturevalue("redis_cluster").url
    sep = "&" if "?" in base else "?"
    # the product's 0.5 s reply timeout fails fast in production; here a loaded CI machine's
    # stall must not turn one of a test's thousands of commands into an outage (the outage
    # tests open their own stores, with the default)
    return Backend(kind, f"{base}{sep}prefix={prefix}&socket_timeout=5",
                   lambda: purge_prefix(base, prefix))


#: Every store kind (Redis kinds marked ``redis``) and the kinds several processes share.
ALL_KINDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
]
SHARED_KINDS = ALL_KINDS[1:]
