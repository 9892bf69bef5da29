"""Redis outages that the server *answers* (full memory, read-only replica, cluster down, a
primary killed and replaced by its replica): StoreUnavailableError, never a raw redis-py error,
and the cluster's health as its nodes see it.

The killed-node tests share one 3-primary + 3-replica cluster (``redis_ha_cluster``, node
timeout 1 s); each test's killed nodes are started again afterwards.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest

from tsbandit.errors import BanditExistsError, DecisionExistsError, StoreUnavailableError
from tsbandit.stores import RewardItem, open_store

from .backends import redis_module
from .redis_servers import RedisCluster, RedisServer
from .workers import layout, reward_delta

pytestmark = pytest.mark.redis

OUTAGES = [
    "OOM command not allowed when used memory > 'maxmemory'.",
    "CLUSTERDOWN The cluster is down",
    "CLUSTERDOWN Hash slot not served",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "READONLY You can't write against a read only replica.",
    "LOADING Redis is loading the dataset in memory",
    "NOREPLICAS Not enough good replicas to write.",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist.",
    # Redis < 7: the error of a command inside a script, wrapped
    "ERR Error running script (call to f_b70143f1b5eb0e9c42db6c783ba095a2d31de378): "
    "@user_script:137: -OOM command not allowed when used memory > 'maxmemory'.",
    "ERR Error running script (call to f_4616e4380f84dc13c3402cd2d73acceb83b46c10): "
    "@user_script:12: @user_script: 12: -READONLY You can't write against a read only replica.",
]
ANSWERS = [  # errors that are answers (a bug or bad request), not outages
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
    "ERR Error running script (call to f_0123): @user_script:3: -WRONGTYPE Operation against "
    "a key holding the wrong kind of value",
]


def _parsed(reply: str) -> Exception:
    """The exception redis-py raises for the error reply ``-<reply>``."""
    from redis._parsers.base import BaseParser

    exc: Exception = BaseParser.parse_error(reply)
    return exc


@pytest.mark.parametrize("reply", OUTAGES)
def test_outage_replies_are_store_unavailable(reply: str) -> None:
    """redis-py strips the code of the replies it knows (OOM, CLUSTERDOWN...) from the message;
    the store maps them by class, and names the code in its message."""
    redis_module()
    store = open_store("redis://127.0.0.1:1/0")  # never connects: the command raises

    def fail(client: object) -> None:
        raise _parsed(reply)

    code = reply.split()[0] if not reply.startswith("ERR") else "ERR"
    with pytest.raises(StoreUnavailableError, match=code):
        store._redis.run(fail)  # type: ignore[attr-defined]


@pytest.mark.parametrize("reply", ANSWERS)
def test_other_error_replies_are_not_outages(reply: str) -> None:
    redis_module()
    from redis.exceptions import ResponseError

    store = open_store("redis://127.0.0.1:1/0")

    def fail(client: object) -> None:
        raise _parsed(reply)

    with pytest.raises(ResponseError) as info:
        store._redis.run(fail)  # type: ignore[attr-defined]
    assert not isinstance(info.value, StoreUnavailableError)


def test_an_unknown_script_reply_is_an_error_of_the_tree() -> None:
    """A script status this code does not know (another version's script?) raises the tree's
    StoreUnavailableError, not a builtin."""
    redis_module()
    from tsbandit.stores.redis_store import _error

    exc = _error("b", "weird", [b"weird", b"1"])
    assert isinstance(exc, StoreUnavailableError) and "weird" in str(exc)


def _prefix() -> str:
    return f"outage-{uuid.uuid4().hex[:8]}:"


def test_full_memory_is_unavailable_and_writes_nothing(redis_server: RedisServer) -> None:
    """``maxmemory`` reached: every write is refused with OOM (inside the Lua scripts too)
    before it writes anything; reads still work; writes work again once memory is there."""
    store = open_store(f"{redis_server.url}?prefix={_prefix()}")
    store.create_bandit("b", {}, layout())
    store.put_pending("b", "d1", {"arm": 1}, 1e12)
    before = store.read("b")
    assert "OK" in redis_server.cli("config", "set", "maxmemory", "1")
    writes = [
        lambda: store.apply_reward("b", "d1", reward_delta(1, 1), {"e": 1}, 1.0),
        lambda: store.put_pending("b", "d2", {"arm": 0}, 1e12),
        lambda: store.add("b", reward_delta(0, 2)),
        lambda: store.create_bandit("c", {}, layout()),
    ]
    for write in writes:
        with pytest.raises(StoreUnavailableError, match="OOM"):
            write()
    after = store.read("b")
    assert after.version == before.version
    for k, v in before.arrays.items():
        np.testing.assert_array_equal(after.arrays[k], v)
    assert store.get_pending("b", "d1").status == "pending"
    assert "OK" in redis_server.cli("config", "set", "maxmemory", "0")
    assert store.apply_reward("b", "d1", reward_delta(1, 1), None, 1.0).status == "applied"
    store.close()


def test_read_only_replica_is_unavailable(redis_server: RedisServer, tmp_path) -> None:
    """Writes sent to a read-only replica (a client that still points at a demoted primary)."""
    replica = RedisServer(tmp_path / "replica")
    try:
        redis_server.cli("config", "set", "repl-diskless-sync-delay", "0")  # sync at once
        replica.cli("replicaof", "127.0.0.1", str(redis_server.port))
        prefix = _prefix()
        primary = open_store(f"{redis_server.url}?prefix={prefix}")
        primary.create_bandit("b", {}, layout())
        store = open_store(f"{replica.url}?prefix={prefix}")
        deadline = time.monotonic() + 10
        while True:  # the replica has synced the bandit
            try:
                store.read("b")
                break
            except KeyError:
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        for write in (lambda: store.add("b", reward_delta(0, 1)),
                      lambda: store.put_pending("b", "d", {}, 1e12)):
            with pytest.raises(StoreUnavailableError, match="READONLY"):
                write()
        assert store.read("b").version == 0
        primary.close()
        store.close()
    finally:
        replica.stop()


# ----- a real cluster losing nodes ----------------------------------------------------------
def _eventually(fn, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """``fn()``, retried while the store is unavailable (a client finding the new topology)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _bandit_on(cluster: RedisCluster, prefix: str, primary: RedisServer | None,
               avoid: RedisServer | None = None) -> str:
    """A bandit name whose slot ``primary`` serves (or that ``avoid`` does not serve)."""
    for i in range(1000):
        name = f"b{i}"
        owner = cluster.primary_of(f"{prefix}{{{name}}}")
        if (primary is not None and owner is primary) or (avoid is not None
                                                          and owner is not avoid):
            return name
    raise AssertionError("no bandit name found for that node")


def test_cluster_down_is_unavailable_and_health_says_fail(
        redis_ha_cluster: RedisCluster) -> None:
    """A primary and its replica killed: no one serves their slots, the cluster goes to
    ``fail`` and every node answers CLUSTERDOWN, also for bandits on healthy shards (redis-py
    raises ClusterDownError, a ResponseError whose message lost its code). Store calls raise
    StoreUnavailableError; health() reports the state; all is well once the nodes are back."""
    cluster = redis_ha_cluster
    prefix = _prefix()
    store = open_store(f"{cluster.url}?prefix={prefix}")
    assert store.health() == {"ok": True, "cluster_state": "ok", "cluster_slots_ok": 16384,
                              "nodes_answered": store.health()["nodes_answered"],
                              "primaries_unreachable": 0}
    victim = cluster.primary_of(f"{prefix}{{b0}}")
    healthy = _bandit_on(cluster, prefix, None, avoid=victim)
    store.create_bandit(healthy, {}, layout())
    store.put_pending(healthy, "d1", {}, 1e12)
    for node in [*cluster.replicas_of(victim), victim]:
        node.kill()
    cluster.wait_state("fail")
    for op in (lambda: store.read(healthy),
               lambda: store.apply_reward(healthy, "d1", reward_delta(0, 1), None, 1.0),
               lambda: store.add(healthy, reward_delta(0, 1))):
        with pytest.raises(StoreUnavailableError, match="CLUSTERDOWN"):
            op()
    health = store.health()
    assert health["ok"] is False and health["cluster_state"] == "fail"
    assert health["cluster_slots_ok"] < 16384
    cluster.restart_dead()
    assert store.health()["ok"] is True
    assert store.apply_reward(healthy, "d1", reward_delta(0, 1), None, 1.0).status == "applied"
    store.close()


def test_failover_unavailable_then_served_by_the_replica(
        redis_ha_cluster: RedisCluster) -> None:
    """The primary of a bandit's slot killed: calls fail with StoreUnavailableError (not a
    raw error) and health() is not ok until its replica takes over; then the same store
    serves the bandit again and health() is ok -- without the killed node coming back."""
    cluster = redis_ha_cluster
    prefix = _prefix()
    store = open_store(f"{cluster.url}?prefix={prefix}")
    store.create_bandit("b", {}, layout())
    primary = cluster.primary_of(f"{prefix}{{b}}")
    (replica,) = cluster.replicas_of(primary)
    primary.kill()
    with pytest.raises(StoreUnavailableError):
        store.add("b", reward_delta(0, 1))
    assert store.health()["ok"] is False
    deadline = time.monotonic() + 20
    while cluster.serving(f"{prefix}{{b}}") is not replica or not store.health()["ok"]:
        assert time.monotonic() < deadline, "no failover"
        time.sleep(0.1)
    store.add("b", reward_delta(0, 1))
    assert store.read("b").arrays["n"][0] == 1.0
    store.close()


# ----- min_replicas: WAIT after every acknowledged write --------------------------------------
def test_min_replicas_options_are_checked() -> None:
    redis_module()
    from tsbandit.errors import ConfigurationError

    store = open_store("redis://127.0.0.1:1/0?min_replicas=2&wait_timeout_ms=50")
    assert (store.min_replicas, store.wait_timeout_ms) == (2, 50)  # type: ignore[attr-defined]
    for query in ("min_replicas=-1", "wait_timeout_ms=0", "wait_timeout_ms=500"):
        with pytest.raises(ConfigurationError, match=query.split("=")[0]):
            open_store(f"redis://127.0.0.1:1/0?{query}")  # 500 ms: not below socket_timeout


def _acknowledged(write, done: type[Exception] | None = None, seconds: float = 10.0) -> Any:
    """Run ``write`` until the replica acknowledges it (``StoreUnavailableError``: retry) and
    return its answer; a retry that raises ``done`` finds the write applied already (None)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return write()
        except StoreUnavailableError:
            assert time.monotonic() < deadline, "the replica did not acknowledge in time"
            time.sleep(0.05)
        except Exception as exc:
            if done is not None and isinstance(exc, done):
                return None
            raise


def test_min_replicas_standalone_no_replica_no_acknowledgement(redis_server, tmp_path) -> None:
    """A primary with one replica: writes are acknowledged while the replica has them; with
    the replica stopped a reward answers "not known to be durable" (it may be applied: the
    primary has it), the retry answers duplicate only once the replica has it too."""
    import os
    import signal

    replica = RedisServer(tmp_path / "replica")
    try:
        redis_server.cli("config", "set", "repl-diskless-sync-delay", "0")
        replica.cli("replicaof", "127.0.0.1", str(redis_server.port))
        store = open_store(f"{redis_server.url}?prefix={_prefix()}&min_replicas=1"
                           "&wait_timeout_ms=100")
        # setup while the replica syncs: a write whose fence timed out was applied on the
        # primary, so its retry meets it (exists, duplicate) -- under load this happens
        _acknowledged(lambda: store.create_bandit("b", {}, layout()), BanditExistsError)
        for i in range(3):
            _acknowledged(lambda i=i: store.put_pending("b", f"d{i}", {}, 1e12),
                          DecisionExistsError)
        _acknowledged(lambda: store.apply_reward("b", "d0", reward_delta(0, 1), None, 1.0))
        assert store.get_pending("b", "d0").status == "rewarded"
        assert replica.proc is not None
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.apply_reward("b", "d1", reward_delta(1, 1), None, 1.0)
            # waited wait_timeout_ms (Redis checks a WAIT's timeout on its 100 ms tick, so it
            # answers 100-200 ms later), and did not hang until the socket timeout or beyond
            assert 0.1 <= time.monotonic() - t0 < 2.0
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.apply_reward("b", "d1", reward_delta(1, 1), None, 1.0)  # duplicate
            # a batch likewise, as a whole: the new reward's write, and the duplicate's fence
            batch = [RewardItem("d2", reward_delta(2, 1), None, 1.0),
                     RewardItem("d0", reward_delta(0, 1), None, 1.0)]
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.apply_reward_many("b", batch)
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.apply_reward_many("b", batch[1:])  # duplicates only: fenced
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        # the resumed replica catches up: each retry is acknowledged once it has the writes
        assert _acknowledged(
            lambda: store.apply_reward("b", "d1", reward_delta(1, 1), None, 1.0)
        ).status == "duplicate"
        assert [r.status for r in _acknowledged(  # type: ignore[union-attr]
            lambda: store.apply_reward_many("b", batch))] == ["duplicate", "duplicate"]
        np.testing.assert_array_equal(store.read("b").arrays["n"], [1, 1, 1, 0])
        store.close()
    finally:
        replica.stop()


def test_min_replicas_acknowledged_rewards_survive_a_failover(
        redis_ha_cluster: RedisCluster) -> None:
    """3 primaries + 3 replicas, ``min_replicas=1``: rewards stream in while the primary of
    the bandit's slot is SIGKILLed. Every reward acknowledged (applied or duplicate) is in the
    statistics after its replica took over; the others are retried with the same decision id
    (503 while the new primary has no replica of its own: the killed node comes back as one)
    and count exactly once."""
    import threading

    cluster = redis_ha_cluster
    prefix = _prefix()
    store = open_store(f"{cluster.url}?prefix={prefix}&min_replicas=1&wait_timeout_ms=200")
    n = 200
    ids = [f"d{i}" for i in range(n)]
    # the setup's writes, retried until acknowledged: one slow acknowledgement on a loaded
    # machine must not fail the test before its failover
    _acknowledged(lambda: store.create_bandit("b", {}, layout()), BanditExistsError)
    for i, d in enumerate(ids):
        _acknowledged(lambda i=i, d=d: store.put_pending("b", d, {"arm": i % 4}, 1e12),
                      DecisionExistsError)
    acknowledged: list[str] = []
    refused: list[str] = []

    def reward(d: str) -> str:
        return store.apply_reward("b", d, reward_delta(int(d[1:]) % 4, 0), None, 1.0).status

    def stream() -> None:
        for d in ids:
            try:
                reward(d)
                acknowledged.append(d)
            except StoreUnavailableError:
                refused.append(d)
            time.sleep(0.002)

    primary = cluster.primary_of(f"{prefix}{{b}}")
    (replica,) = cluster.replicas_of(primary)
    worker = threading.Thread(target=stream)
    worker.start()
    while len(acknowledged) < 20:
        time.sleep(0.005)
    primary.kill()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert 20 <= len(acknowledged) < n and refused, (len(acknowledged), len(refused))
    deadline = time.monotonic() + 20
    while cluster.serving(f"{prefix}{{b}}") is not replica:
        assert time.monotonic() < deadline, "no failover"
        time.sleep(0.1)
    # reads need no replica (the first call after the failover may still hit the dead node)
    snap = _eventually(lambda: store.read("b"))
    for d in acknowledged:
        assert store.get_pending("b", d).status == "rewarded", d
    assert snap.arrays["n"].sum() >= len(acknowledged)
    cluster.restart_dead()  # the killed node rejoins as the new primary's replica
    deadline = time.monotonic() + 20
    for d in refused:
        while True:
            try:
                assert reward(d) in ("applied", "duplicate")
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, f"{d} never acknowledged"
                time.sleep(0.1)
    counts = store.read("b").arrays["n"]
    np.testing.assert_array_equal(counts, [n // 4] * 4)  # every decision rewarded exactly once
    store.close()
