"""Redis specifics: one slot per bandit, restarts, and failures (refused, hung, killed,
paused server) -> StoreUnavailableError within 1 s with nothing half-written."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

from concurrency import in_threads
from tsbandit.errors import StoreUnavailableError
from tsbandit.stores import open_store

from .backends import redis_module
from .redis_servers import free_port
from .workers import layout, reward_delta

pytestmark = pytest.mark.redis

LIMIT = 1.0  # seconds: the bound for reporting an unreachable store


def _all_ops(store) -> list:
    return [
        lambda: store.read("b"),
        lambda: store.add("b", {"n": np.ones(4)}),
        lambda: store.put_pending("b", "d", {}, 10.0),
        lambda: store.apply_reward("b", "d", {"n": np.ones(4)}, None, 1.0),
        lambda: store.create_bandit("b", {}, layout()),
        lambda: store.list_bandits(),
        lambda: store.ping(),
    ]


def _assert_unavailable_fast(store) -> None:
    for op in _all_ops(store):
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            op()
        assert time.monotonic() - t0 < LIMIT


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
def test_nothing_listening(scheme: str) -> None:
    redis_module()
    port = free_port()
    store = open_store(f"{scheme}://127.0.0.1:{port}")  # opening never blocks on the network
    _assert_unavailable_fast(store)
    store.close()


def test_hung_server_times_out() -> None:
    redis_module()
    # a socket that accepts connections (kernel backlog) but never answers
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        store = open_store(f"redis://127.0.0.1:{srv.getsockname()[1]}")
        for op in _all_ops(store)[:3]:
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                op()
            assert time.monotonic() - t0 < LIMIT
        store.close()


def test_killed_server_then_recovery(redis_server) -> None:
    store = open_store(redis_server.url)
    store.create_bandit("b", {}, layout())
    store.add("b", reward_delta(1, 2))
    redis_server.kill()
    _assert_unavailable_fast(store)
    redis_server.start()  # same port, empty (no persistence): the client recovers by itself
    assert store.list_bandits() == []
    store.create_bandit("b", {}, layout())  # scripts are re-loaded transparently
    assert store.add("b", reward_delta(0, 1)) == 1


def test_lost_reply_is_all_or_nothing_and_retry_is_safe(redis_server) -> None:
    store = open_store(redis_server.url)
    store.create_bandit("b", {}, layout())
    store.put_pending("b", "d1", {"arm": 1}, 1e12)
    # the server stops answering for longer than the client's socket timeout
    redis_server.cli("client", "pause", "1500", "all")
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        store.apply_reward("b", "d1", reward_delta(1, 2), {"id": "d1"}, now=1.0, outcome=0.5)
    assert time.monotonic() - t0 < LIMIT
    redis_server.wait_unpaused()
    # whatever happened to the lost call happened entirely or not at all
    status, outcome = store.get_pending("b", "d1").status, store.get_pending("b", "d1").outcome
    assert outcome == (0.5 if status == "rewarded" else None)
    snap = store.read("b")
    n_events = sum(1 for _ in store.iter_events("b"))
    if status == "rewarded":
        assert snap.arrays["n"].tolist() == [0.0, 1.0, 0.0, 0.0] and n_events == 1
    else:
        assert status == "pending" and snap.version == 0 and n_events == 0
    # so retrying the reward is safe: applied now, or reported as a duplicate
    res = store.apply_reward("b", "d1", reward_delta(1, 2), {"id": "d1"}, now=1.0, outcome=0.5)
    assert res.status == ("duplicate" if status == "rewarded" else "applied")
    assert store.read("b").arrays["n"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert store.get_pending("b", "d1").outcome == 0.5


def test_killed_cluster_node(redis_cluster, tmp_path) -> None:
    """Kill one primary of a private cluster: bandits in its slots fail fast."""
    from .redis_servers import RedisCluster

    cluster = RedisCluster(tmp_path / "c2")
    try:
        store = open_store(cluster.url + "?prefix=t:")
        names = [f"b{i}" for i in range(12)]
        for n in names:
            store.create_bandit(n, {}, layout())
        victim = cluster.nodes[1]
        client = store._redis.client()
        owned = [
            n for n in names if client.get_node_from_key(store._keys(n)[0]).port == victim.port
        ]
        assert owned and len(owned) < len(names)
        victim.kill()
        for n in owned:
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                store.add(n, reward_delta(0, 0))
            assert time.monotonic() - t0 < LIMIT
        store.close()
    finally:
        cluster.stop()


def test_one_slot_per_bandit(redis_cluster) -> None:
    from redis.cluster import key_slot

    store = open_store(redis_cluster.url + "?prefix=tsbt-slot:")
    for name in ["a", "credit_cards", "x.y:z", "bandits"]:
        slots = {key_slot(k.encode()) for k in store._keys(name)}
        assert len(slots) == 1, name
    store.close()


def test_restart_with_a_new_client(shared_redis_backend) -> None:
    a = shared_redis_backend.open()
    a.create_bandit("r", {"arms": ["x", "y", "z", "w"]}, layout())
    a.add("r", reward_delta(2, 3))
    a.put_pending("r", "d1", {"arm": 1}, 1e12)
    a.apply_reward("r", "d1", reward_delta(1, 1), {"id": "d1"}, 1.0)
    a.put_pending("r", "d2", {"arm": 0}, 1e12)
    before = a.read("r")
    a.close()
    b = shared_redis_backend.open()
    after = b.read("r")
    assert after.config == before.config and after.version == before.version
    for k, v in before.arrays.items():
        np.testing.assert_array_equal(after.arrays[k], v)
    assert b.apply_reward("r", "d1", reward_delta(1, 1), None, 1.0).duplicate
    assert b.apply_reward("r", "d2", reward_delta(0, 1), None, 1.0).status == "applied"


def test_threads_share_one_client(shared_redis_backend) -> None:
    store = shared_redis_backend.open()
    store.create_bandit("t", {}, layout())

    def work(w: int) -> None:
        for j in range(50):
            store.put_pending("t", f"{w}-{j}", {}, 1e12)
            store.apply_reward("t", f"{w}-{j}", reward_delta(w % 4, j), None, 1.0)

    in_threads(work, 8)
    assert store.read("t").arrays["n"].sum() == 400


def test_events_maxlen_trims_the_stream(shared_redis_backend) -> None:
    store = shared_redis_backend.open(events_maxlen=50)
    store.create_bandit("e", {}, layout())
    for i in range(2000):
        store.append_event("e", {"i": i})
    kept = [e["i"] for e in store.iter_events("e")]
    assert 50 <= len(kept) < 2000  # MAXLEN ~ trims whole stream nodes, approximately
    assert kept == list(range(2000 - len(kept), 2000))  # the newest are kept, in order


def test_url_options(redis_url) -> None:
    store = open_store(redis_url + "?prefix=tsbt-url:&socket_timeout=0.3&events_maxlen=10")
    assert store.prefix == "tsbt-url:" and store.events_maxlen == 10
    assert "tsbt-url" in repr(store)
    store.ping()
    store.close()


def test_registry_heals_after_a_crash_between_script_and_sadd(shared_redis_backend) -> None:
    from tsbandit.errors import BanditExistsError

    store = shared_redis_backend.open()
    store.create_bandit("h", {}, layout())
    store._redis.run(lambda c: c.srem(store._registry, "h"))  # as if we crashed before the SADD
    assert store.list_bandits() == [] and store.exists("h")
    with pytest.raises(BanditExistsError):
        store.create_bandit("h", {}, layout())
    assert store.list_bandits() == ["h"]
    # and a registered name whose keys are gone (crash between DEL and SREM) is not listed
    store._redis.run(lambda c: c.sadd(store._registry, "ghost"))
    assert store.list_bandits() == ["h"]


def test_held_connections_one_per_thread_and_fork_safe(redis_url) -> None:
    """Standalone commands run on each thread's own pooled connection: no leak per call, a
    forked child opens its own (sharing the parent's socket would interleave replies), and
    the parent's connection still works after the child is done."""
    import multiprocessing as mp

    store = open_store(redis_url + "?prefix=tsbt-held:")
    store.create_bandit("h", {}, layout())
    try:
        def work() -> None:
            for _ in range(100):
                store.read("h")
                store.add("h", reward_delta(1, 1))

        # a server without the scripts (restarted): the threads load them on their own
        # connections, not on more from the pool
        store._redis.client().script_flush()
        in_threads(lambda _: work(), 4)
        work()
        pool = store._redis.client().connection_pool
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 5
        assert store.read("h").arrays["n"][1] == 500

        parent_conn = store._redis._local.held[2]

        def child() -> None:
            work()
            held = store._redis._local.held
            assert held[1] == os.getpid() and held[2] is not parent_conn

        ctx = mp.get_context("fork")
        proc = ctx.Process(target=child)
        proc.start()
        proc.join(30)
        assert proc.exitcode == 0
        work()
        assert store.read("h").arrays["n"][1] == 700
    finally:
        store.delete_bandit("h")
        store.close()


def test_close_then_use_reconnects(redis_url) -> None:
    store = open_store(redis_url + "?prefix=tsbt-reopen:")
    store.create_bandit("c", {}, layout())
    store.read("c")
    store.close()  # disconnects the held connection with the pool
    assert store.read("c").version == 0  # a new client, a new held connection
    store.delete_bandit("c")
    store.close()


def test_resp2_replies(redis_url) -> None:
    """The held-connection path reads RESP2 replies (flat lists) as well as RESP3 maps."""
    store = open_store(redis_url + "?prefix=tsbt-resp2:", protocol=2)
    store.create_bandit("p", {"k": 1}, layout())
    try:
        store.add("p", reward_delta(2, 3))
        snap = store.read("p")
        assert snap.config == {"k": 1} and snap.version == 1
        np.testing.assert_array_equal(snap.arrays["A"][2], reward_delta(2, 3)["A"][2])
        assert snap.arrays["n"].tolist() == [0, 0, 1, 0]
    finally:
        store.delete_bandit("p")
        store.close()
