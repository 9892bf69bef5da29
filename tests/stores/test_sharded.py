"""Sharded bandits (:mod:`tsbandit.stores.sharded`) on Memory, SQLite (a file), Redis and the
3-node Redis Cluster: exact books, arm changes on every shard, the event cursor over all
shards, the sweep per shard, and the shards' keys on several Cluster primaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stores.backends import Backend
from tsbandit.engine import Engine, bandit_spec
from tsbandit.errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExistsError,
    DecisionNotFoundError,
    VersionConflictError,
)
from tsbandit.stores import MemoryStore, NewDecision, ShardedStore
from tsbandit.stores.shard_routing import cluster_slot, shard_names, shard_of_id, shard_tokens

S = 3
_EXAMPLES = itertools.count()


def two(a: float, b: float) -> dict[str, np.ndarray]:
    return {"s": np.array([a, b])}


@pytest.fixture
def sharded(backend: Backend) -> ShardedStore:
    return ShardedStore(backend.open())


def test_layout_and_summed_read(sharded: ShardedStore) -> None:
    snap = sharded.create_bandit("hot", {"shards": S, "x": 1}, {"s": np.array([2.0, 5.0])})
    assert snap.arrays["s"].tolist() == [2.0, 5.0]  # what was given counts once (shard 0)
    assert sorted(sharded.inner.list_bandits()) == sorted(shard_names("hot", S))
    slots = sorted(cluster_slot(n) for n in shard_names("hot", S))  # evenly around the ring
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert gaps == pytest.approx([16384 / S] * 2, abs=8)
    assert sharded.list_bandits() == ["hot"] and sharded.exists("hot")
    assert not sharded.exists("hot#1")
    with pytest.raises(BanditExistsError):
        sharded.create_bandit("hot", {"shards": S}, {"s": np.zeros(2)})
    for i in range(S):  # one add on each shard in turn
        sharded.add("hot", two(1.0, 0.5 * i))
    for i in range(S):
        assert sharded.inner.read(shard_names("hot", S)[i]).arrays["s"][0] == (3.0 if i == 0
                                                                           else 1.0)
    snap = sharded.read("hot")
    assert snap.arrays["s"].tolist() == [5.0, 6.5] and not snap.arrays["s"].flags.writeable
    assert (snap.version, snap.config_version, snap.config["x"]) == (3, 0, 1)
    # a fresh client learns the count from the configuration
    again = ShardedStore(sharded.inner)
    assert again.shards("hot") == S and again.read("hot").arrays["s"].tolist() == [5.0, 6.5]
    sharded.scale("hot", 0.5)
    assert sharded.read("hot").arrays["s"].tolist() == [2.5, 3.25]
    sharded.delete_bandit("hot")
    assert sharded.inner.list_bandits() == []
    with pytest.raises(BanditNotFoundError):
        sharded.read("hot")


def test_names_and_counts_refused(sharded: ShardedStore) -> None:
    for bad in ("a#1", "a#"):
        with pytest.raises(ConfigurationError):
            sharded.create_bandit(bad, {}, two(0, 0))
    for bad in (0, 65, 2.0, True, "3"):
        with pytest.raises(ConfigurationError):
            sharded.create_bandit("b", {"shards": bad}, two(0, 0))
    assert sharded.inner.list_bandits() == []
    sharded.create_bandit("b", {"shards": 2}, two(0, 0))
    with pytest.raises(ConfigurationError, match="fixed at creation"):
        sharded.replace("b", {"shards": 3}, two(0, 0))
    with pytest.raises(ConfigurationError):
        Engine(MemoryStore()).create_bandit(bandit_spec("c", ["a", "b"], shards=2))
    with pytest.raises(ConfigurationError, match="additive"):
        bandit_spec("c", ["a", "b"], model={"kind": "logistic", "n_features": 2}, shards=2)


def test_one_shard_is_stored_as_before(sharded: ShardedStore) -> None:
    sharded.create_bandit("plain", {"k": 1}, two(0, 0))
    sharded.put_pending_many("plain", [NewDecision(f"d{i}", {"arm": 0}, 10.0, {"i": i})
                                       for i in range(4)])
    assert sharded.inner.list_bandits() == ["plain"]
    assert sharded.read_events("plain") == sharded.inner.read_events("plain")
    # one shard: a conditional write is the inner store's
    snap = sharded.read("plain")
    at = (snap.version, snap.config_version)
    assert sharded.put_pending_many("plain", [("c1", {"arm": 0}, 10.0)], if_at=at) is None
    sharded.apply_reward("plain", "c1", two(1, 0), None, 1.0)
    moved = sharded.put_pending_many("plain", [("c2", {"arm": 0}, 10.0)], if_at=at)
    assert moved is not None and moved.version == at[0] + 1


def test_several_shards_refuse_a_conditional_write(sharded: ShardedStore) -> None:
    """Each shard has its own version: no one check covers a sharded bandit."""
    sharded.create_bandit("hot", {"shards": S}, two(0, 0))
    with pytest.raises(ConfigurationError, match="cannot check if_at"):
        sharded.put_pending_many("hot", [("hot~" + "0" * 32, {"arm": 0}, 10.0)], if_at=(0, 0))


def test_decisions_follow_their_id(sharded: ShardedStore) -> None:
    sharded.create_bandit("hot", {"shards": S}, two(0, 0))
    ids = [f"hot~{t}" for t in shard_tokens([f"{i:032x}" for i in range(7, 12)], S)]
    sharded.put_pending_many("hot", [NewDecision(d, {"arm": 1}, 100.0, {"id": d}) for d in ids])
    home = shard_names("hot", S)[shard_of_id(ids[0], S)]
    for d in ids:  # the batch is one write on one shard; its ranking slots follow it
        assert sharded.inner.get_pending(home, d).status == "pending"
        sharded.put_pending("hot", d + "/1", {"arm": 0}, 100.0)
        assert sharded.inner.get_pending(home, d + "/1").status == "pending"
        assert sharded.apply_reward("hot", d, two(0, 1), {"r": d}, 1.0).status == "applied"
        assert sharded.apply_reward("hot", d, two(0, 1), None, 1.0).duplicate
    assert sharded.read("hot").arrays["s"].tolist() == [0.0, 5.0]
    with pytest.raises(DecisionNotFoundError):
        sharded.get_pending("hot", "hot~" + "f" * 32)


def engine_run(store: ShardedStore, shards: int, n: int) -> tuple[list[int], list[int]]:
    """n decisions in batches and singles, rewards for 2 of 3 (1 for even ones), 3 repeats."""
    engine = Engine(store, seed=7)
    engine.create_bandit(bandit_spec(f"b{shards}", ["a", "b", "c"], shards=shards))
    made = engine.decide_batch(f"b{shards}", n=n // 2)
    made += [engine.decide(f"b{shards}") for _ in range(n - n // 2)]
    statuses = [engine.record_reward(d.decision_id, int(i % 2 == 0)).status
                for i, d in enumerate(made) if i % 3]
    statuses += [engine.record_reward(made[1].decision_id, 1).status] * 3
    assert statuses.count("applied") == len([i for i in range(n) if i % 3])
    assert statuses.count("duplicate") == 3
    _, stats, _ = engine.statistics(f"b{shards}")
    pulls = stats["successes"] + stats["failures"]
    return [int(x) for x in pulls], [int(stats["successes"].sum()), int(stats["failures"].sum())]


def test_books_exact_like_one_shard(sharded: ShardedStore) -> None:
    n = 60
    pulls1, totals1 = engine_run(sharded, 1, n)
    pulls3, totals3 = engine_run(sharded, S, n)
    rewarded = [i for i in range(n) if i % 3]
    want = [len([i for i in rewarded if i % 2 == 0]), len([i for i in rewarded if i % 2])]
    assert totals1 == totals3 == want  # 20 successes, 20 failures
    assert sum(pulls1) == sum(pulls3) == len(rewarded)
    # the decisions really spread: every shard holds some
    used = [sharded.inner.read(shard_names(f"b{S}", S)[i]).version for i in range(S)]
    assert all(v > 0 for v in used), used


def test_arm_changes_on_every_shard(sharded: ShardedStore) -> None:
    engine = Engine(sharded, seed=1)
    engine.create_bandit(bandit_spec("hot", ["a", "b"], shards=S))
    made = engine.decide_batch("hot", n=12) + [engine.decide("hot") for _ in range(12)]
    for d in made[:18]:
        engine.record_reward(d.decision_id, 1)
    old_cver = sharded.read("hot").config_version
    engine.add_arm("hot", "c")
    for i in range(S):
        snap = sharded.inner.read(shard_names("hot", S)[i])
        assert snap.config["arms"] == ["a", "b", "c"] and snap.config_version == old_cver + 1
        assert snap.arrays["successes"].shape == (3,)
    stats = engine.statistics("hot")[1]
    assert stats["successes"].tolist()[2] == 0 and stats["successes"].sum() == 18
    # a delta computed against the old layout is refused on whichever shard it lands
    for d in made[18:]:
        with pytest.raises(VersionConflictError):
            sharded.apply_reward("hot", d.decision_id, {"successes": np.ones(2)}, None,
                                 d.timestamp, config_version=old_cver)
    for d in made[18:]:  # the engine recomputes against the new layout
        assert engine.record_reward(d.decision_id, 0).status == "applied"
    stats = engine.statistics("hot")[1]
    assert (stats["successes"].sum(), stats["failures"].sum()) == (18, 6)
    engine.retire_arm("hot", "a")
    assert {sharded.inner.read(shard_names("hot", S)[i]).config_version for i in range(S)} == {
        old_cver + 2}


def test_interrupted_change_completed_by_a_read(sharded: ShardedStore) -> None:
    sharded.create_bandit("hot", {"shards": S, "arms": 2}, two(1, 1))
    sharded.add("hot", two(0, 0))
    sharded.add("hot", two(5, 5))  # shard 1
    # a writer replaced shard 0 and died before the others
    sharded.inner.replace("hot", {"shards": S, "arms": 3}, {"s": np.array([1.0, 6.0, 0.0])},
                          expected_config_version=0)
    snap = sharded.read("hot")
    assert snap.config["arms"] == 3 and snap.arrays["s"].tolist() == [1.0, 6.0, 0.0]
    assert {sharded.inner.read(shard_names("hot", S)[i]).config_version for i in range(S)} == {1}
    # a config-only change keeps every shard's arrays
    sharded.inner.replace("hot", {"shards": S, "arms": 4})
    assert sharded.read("hot").arrays["s"].tolist() == [1.0, 6.0, 0.0]


def test_sweep_and_purge_every_shard(backend: Backend) -> None:
    now = [0.0]
    engine = Engine(ShardedStore(backend.open(retention=10.0)), seed=3, clock=lambda: now[0])
    engine.create_bandit(bandit_spec("hot", ["a", "b"], shards=S, reward_window=5,
                                     default_reward=0))
    made = [engine.decide("hot") for _ in range(30)]
    homes = {shard_of_id(d.decision_id, S) for d in made}
    assert homes == set(range(S))
    engine.record_reward(made[0].decision_id, 1)
    now[0] = 6.0
    res = engine.sweep("hot", limit=7)["hot"]
    assert (res.settled, res.purged) == (29, 0)
    stats = engine.statistics("hot")[1]
    assert (stats["successes"].sum(), stats["failures"].sum()) == (1, 29)
    now[0] = 20.0
    assert engine.sweep("hot")["hot"].purged == 30
    for d in made:
        with pytest.raises(DecisionNotFoundError):
            engine.pending(d.decision_id)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(st.tuples(st.just("put"), st.integers(0, 2 ** 32 - 1)),
                              st.tuples(st.just("read"), st.integers(1, 5))),
                    min_size=1, max_size=40))
def test_event_cursor_covers_all_shards(sharded: ShardedStore, ops: list) -> None:
    """Events written to random shards, read incrementally in random pages: each exactly
    once, every shard's in its order."""
    name = f"ev{next(_EXAMPLES)}"
    sharded.create_bandit(name, {"shards": S}, two(0, 0))
    written: list[int] = []
    got: list[dict] = []
    cursor = None
    for j, (op, arg) in enumerate(ops):
        if op == "put":
            did = f"{name}~{arg:08x}{j:024x}"
            sharded.put_pending(name, did, {"arm": 0}, 100.0, event={"j": j, "id": did})
            written.append(j)
        else:
            page = sharded.read_events(name, after=cursor, limit=arg)
            assert len(page.events) <= arg
            got += page.events
            cursor = page.cursor
    while True:
        page = sharded.read_events(name, after=cursor, limit=3)
        if not page.events:
            assert page.cursor == cursor
            break
        got += page.events
        cursor = page.cursor
    assert sorted(e["j"] for e in got) == written
    for i in range(S):
        mine = [e["j"] for e in got if shard_of_id(e["id"], S) == i]
        assert mine == sorted(mine)
    assert sorted(e["j"] for e in sharded.iter_events(name, batch_size=2)) == written
    with pytest.raises(ConfigurationError):
        sharded.read_events(name, after="9|||")
    sharded.delete_bandit(name)


def test_sticky_assignments_on_the_users_shard(sharded: ShardedStore) -> None:
    sharded.create_bandit("hot", {"shards": S}, two(0, 0))
    for u in range(12):
        a = sharded.assign("hot", f"u{u}", {"id": f"d{u}"}, 100.0, 1.0)
        assert a.created and sharded.get_assignment("hot", f"u{u}", 2.0) == a._replace(
            created=False)
    held = [sum(sharded.inner.get_assignment(shard_names("hot", S)[i], f"u{u}", 2.0) is not None
                for u in range(12)) for i in range(S)]
    assert sum(held) == 12 and sum(h > 0 for h in held) >= 2
    assert sharded.purge("hot", 200.0).assignments == 12


@pytest.mark.redis
def test_shards_spread_over_cluster_primaries(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    from redis.cluster import RedisCluster

    store = ShardedStore(make_cluster_store(redis_cluster.url))
    try:
        store.create_bandit("hot", {"shards": S}, two(0, 0))
        prefix = store.inner.prefix
        client = RedisCluster.from_url(redis_cluster.url.split(",")[0].replace(
            "redis+cluster://", "redis://"))
        try:
            nodes = set()
            for i in range(S):
                key = f"{prefix}{{{shard_names('hot', S)[i]}}}"
                assert client.exists(key)
                nodes.add(client.get_node_from_key(key).name)
            assert len(nodes) == S, nodes  # 3 primaries, 3 shards: one on each
        finally:
            client.close()
        store.delete_bandit("hot")
    finally:
        store.close()


def make_cluster_store(url: str):  # type: ignore[no-untyped-def]
    import uuid

    from tsbandit.stores import open_store

    sep = "&" if "?" in url else "?"
    return open_store(f"{url}{sep}prefix=tsbt-test-{uuid.uuid4().hex[:12]}:")


def test_engine_batches_are_atomic_on_one_shard(sharded: ShardedStore) -> None:
    """A batch of engine ids is one write on one shard: a known id refuses it whole; a
    retried idempotency key answers the decisions it recorded."""
    engine = Engine(sharded, seed=5)
    engine.create_bandit(bandit_spec("hot", ["a", "b"], shards=S))
    first = engine.decide_batch("hot", n=6, idempotency_key="order-1")
    assert len({shard_of_id(d.decision_id, S) for d in first}) == 1
    again = engine.decide_batch("hot", n=6, idempotency_key="order-1")
    assert [d.decision_id for d in again] == [d.decision_id for d in first]
    assert all(d.replayed for d in again)
    ids = [f"hot~{t}" for t in shard_tokens([f"{i:032x}" for i in range(100, 105)], S)]
    sharded.put_pending("hot", ids[3], {"arm": 0}, 100.0)
    with pytest.raises(DecisionExistsError):
        sharded.put_pending_many("hot", [NewDecision(d, {"arm": 1}, 100.0) for d in ids])
    for d in ids[:3]:
        with pytest.raises(DecisionNotFoundError):
            sharded.get_pending("hot", d)
    assert sharded.get_pending("hot", ids[3]).payload == {"arm": 0}


def test_unrouted_methods_are_not_forwarded(sharded: ShardedStore) -> None:
    """A method of the wrapped store that the wrapper does not route (it would miss the
    shards) is missing, not silently forwarded; plain attributes are read through."""
    assert sharded.events_maxlen == sharded.inner.events_maxlen
    with pytest.raises(AttributeError, match="_create"):
        sharded._create  # noqa: B018


@pytest.mark.parametrize("kind", ["redis", "cluster"])
@pytest.mark.redis
def test_redis_read_many_is_read_of_each(kind: str, request: pytest.FixtureRequest,
                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stores.backends import make_backend

    backend = make_backend(kind, request, tmp_path)
    try:
        store = backend.open()
        names = [f"r{i}" for i in range(7)]  # spread over the Cluster's nodes
        for i, n in enumerate(names):
            store.create_bandit(n, {"i": i}, two(i, -0.0))
            store.add(n, two(0.5, i))
        many = store.read_many(names)
        for n, snap in zip(names, many, strict=True):
            one = store.read(n)
            assert (snap.name, snap.config, snap.version) == (one.name, one.config, one.version)
            assert snap.arrays["s"].tobytes() == one.arrays["s"].tobytes()
        with pytest.raises(BanditNotFoundError, match="nope"):
            store.read_many([names[0], "nope"])
    finally:
        backend.close()
