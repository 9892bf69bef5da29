"""Sticky assignments (issue 17): ``get_assignment`` / ``assign`` / ``replace=``, expiry, purge
and delete, on every store -- Memory, SQLite (a real file), Redis and the 3-node Redis Cluster
-- directly and through :class:`ObservedStore`.

The property at the end runs random sequences of assigns, replaces, reads, purges and clock
moves against every store and a plain-dict model, and compares every answer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tsbandit.errors import BanditNotFoundError, ConfigurationError, SerializationError
from tsbandit.stores import Assignment, MemoryStore, Store
from tsbandit.stores.observed import ObservedStore, StoreObserver
from tsbandit.stores.records import PurgeResult

from .conftest import SHARED_KINDS, make_backend

K = 3


def layout() -> dict[str, np.ndarray]:
    return {"n": np.zeros(K), "s": np.zeros(K)}


@pytest.fixture
def bandit(store: Store) -> str:
    store.create_bandit("ba", {"arms": ["a", "b", "c"]}, layout())
    return "ba"


# ---------------------------------------------------------------------------------------------
# The rule: keep a live assignment, store otherwise
# ---------------------------------------------------------------------------------------------
def test_assign_keeps_the_first_until_it_expires(store: Store, bandit: str) -> None:
    assert store.get_assignment(bandit, "u1", 0.0) is None
    first = {"id": "d1", "arm": 2, "propensity": 0.25}
    a = store.assign(bandit, "u1", first, 100.0, 10.0)
    assert a == Assignment("u1", first, 100.0, True)
    # a second draw for the same user: the first is kept, nothing changes
    b = store.assign(bandit, "u1", {"id": "d2", "arm": 0}, 500.0, 20.0)
    assert b == Assignment("u1", first, 100.0, False)
    assert store.get_assignment(bandit, "u1", 20.0) == Assignment("u1", first, 100.0, False)
    assert store.get_assignment(bandit, "u1", 99.999) is not None
    # expires_at is exclusive: at 100 it is gone, and the next assign stores anew
    assert store.get_assignment(bandit, "u1", 100.0) is None
    c = store.assign(bandit, "u1", {"id": "d3", "arm": 1}, 300.0, 100.0)
    assert c == Assignment("u1", {"id": "d3", "arm": 1}, 300.0, True)
    assert store.get_assignment(bandit, "u1", 299.0) == c._replace(created=False)
    # the statistics and the pending log are not touched
    snap = store.read(bandit)
    assert snap.version == 0 and list(store.iter_events(bandit)) == []


def test_replace_takes_over_only_the_named_assignment(store: Store, bandit: str) -> None:
    store.assign(bandit, "u1", {"id": "d1", "arm": 2}, 100.0, 0.0)
    # replace naming another id (someone replaced it first, or a stale view): kept
    kept = store.assign(bandit, "u1", {"id": "d2", "arm": 0}, 200.0, 1.0, replace="d9")
    assert kept == Assignment("u1", {"id": "d1", "arm": 2}, 100.0, False)
    # replace naming the live one: stored, with its own expiry (earlier or later)
    new = store.assign(bandit, "u1", {"id": "d2", "arm": 0}, 50.0, 1.0, replace="d1")
    assert new == Assignment("u1", {"id": "d2", "arm": 0}, 50.0, True)
    # a second worker that also saw d1 retired and replaces it: gets the first replacement
    late = store.assign(bandit, "u1", {"id": "d3", "arm": 1}, 300.0, 2.0, replace="d1")
    assert late == Assignment("u1", {"id": "d2", "arm": 0}, 50.0, False)
    assert store.get_assignment(bandit, "u1", 2.0) == late
    # replace when there is nothing live (none, or expired): stored
    assert store.assign(bandit, "u2", {"id": "e1"}, 10.0, 0.0, replace="x").created
    assert store.assign(bandit, "u1", {"id": "d4"}, 90.0, 60.0, replace="zz").created


def test_keys_and_bandits_are_independent(store: Store, bandit: str) -> None:
    store.create_bandit("other", {}, layout())
    store.assign(bandit, "u1", {"id": "a"}, 10.0, 0.0)
    assert store.get_assignment(bandit, "u2", 0.0) is None
    assert store.get_assignment("other", "u1", 0.0) is None
    assert store.assign("other", "u1", {"id": "b"}, 10.0, 0.0).created
    assert store.get_assignment(bandit, "u1", 0.0).payload == {"id": "a"}  # type: ignore[union-attr]
    assert store.get_assignment("other", "u1", 0.0).payload == {"id": "b"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "payload", "expires_at"),
    [
        ("u" * 256, {"id": ""}, 5e-324),  # longest key, empty id, the smallest subnormal
        ("é ✓ {x}", {"id": 'd"1\n\\', "nested": {"a": [1, 2.5, None, True]}}, 0.1 + 1e9),
        ("user:42", {"id": "\u2028\U0001f600", "x": 0.1, "big": 2**60}, 1.7976931348623157e308),
        ("ŝü/?=&%20 ", {"id": "d", "ranking": [2, 0, 1], "propensity": 1 / 3}, 1e-300),
    ],
)
def test_payload_and_expiry_round_trip_exactly(store: Store, bandit: str, key: str,
                                               payload: dict, expires_at: float) -> None:
    a = store.assign(bandit, key, payload, expires_at, 0.0)
    assert a.payload == payload and a.created
    got = store.get_assignment(bandit, key, 0.0)
    assert got is not None and got.key == key and got.payload == payload
    assert type(got.expires_at) is float and got.expires_at.hex() == expires_at.hex()
    again = store.assign(bandit, key, {"id": "other"}, expires_at, 0.0)
    assert again == got


def test_returned_payloads_are_fresh(store: Store, bandit: str) -> None:
    payload = {"id": "d1", "ranking": [0, 1]}
    a = store.assign(bandit, "u1", payload, 10.0, 0.0)
    payload["ranking"].append(2)
    a.payload["ranking"].append(9)
    b = store.get_assignment(bandit, "u1", 0.0)
    assert b is not None and b.payload == {"id": "d1", "ranking": [0, 1]}
    b.payload["id"] = "changed"
    assert store.get_assignment(bandit, "u1", 0.0).payload["id"] == "d1"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Refused input changes nothing; unknown bandits
# ---------------------------------------------------------------------------------------------
GOOD = {"id": "d9", "arm": 1}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": ""}, ConfigurationError),
        ({"key": "u" * 257}, ConfigurationError),
        ({"key": "new\nline"}, ConfigurationError),
        ({"key": 42}, ConfigurationError),
        ({"payload": ["id", "d"]}, SerializationError),
        ({"payload": {"arm": 1}}, SerializationError),  # no id
        ({"payload": {"id": 7}}, SerializationError),  # not a string
        ({"payload": {"id": None}}, SerializationError),
        ({"payload": {"id": "d", "x": math.nan}}, SerializationError),
        ({"payload": {"id": "d", "x": object()}}, SerializationError),
        ({"expires_at": 5.0}, ConfigurationError),  # == now
        ({"expires_at": 4.0}, ConfigurationError),  # before now
        ({"expires_at": math.inf}, ConfigurationError),
        ({"expires_at": math.nan}, ConfigurationError),
        ({"expires_at": "soon"}, ConfigurationError),
        ({"now": math.nan}, ConfigurationError),
        ({"now": -math.inf}, ConfigurationError),
        ({"replace": 3}, ConfigurationError),
        ({"replace": b"d1"}, ConfigurationError),
    ],
)
def test_refused_assign_changes_nothing(store: Store, bandit: str, kwargs, error) -> None:
    store.assign(bandit, "u1", {"id": "d1", "arm": 0}, 10.0, 1.0)  # expired at now=50
    args = {"key": "u1", "payload": GOOD, "expires_at": 60.0, "now": 5.0, "replace": "d1"}
    args.update(kwargs)
    with pytest.raises(error):
        store.assign(bandit, args.pop("key"), args.pop("payload"), args.pop("expires_at"),
                     args.pop("now"), **args)
    assert store.get_assignment(bandit, "u1", 9.0) == Assignment(
        "u1", {"id": "d1", "arm": 0}, 10.0, False)
    with pytest.raises(error):  # also for an unknown bandit: the arguments are checked first
        store.assign("nope", kwargs.get("key", "u1"), kwargs.get("payload", GOOD),
                     kwargs.get("expires_at", 60.0), kwargs.get("now", 5.0),
                     replace=kwargs.get("replace"))


@pytest.mark.parametrize(("key", "now"), [("", 1.0), ("x" * 257, 1.0), ("a\tb", 1.0),
                                          (None, 1.0), ("u1", math.nan), ("u1", "later")])
def test_refused_get_assignment(store: Store, bandit: str, key, now) -> None:
    with pytest.raises(ConfigurationError):
        store.get_assignment(bandit, key, now)


def test_unknown_bandit(store: Store) -> None:
    with pytest.raises(BanditNotFoundError):
        store.get_assignment("nope", "u1", 1.0)
    with pytest.raises(BanditNotFoundError):
        store.assign("nope", "u1", GOOD, 10.0, 1.0)
    with pytest.raises(BanditNotFoundError):
        store.assign("nope", "u1", GOOD, 10.0, 1.0, replace="d9")
    assert store.list_bandits() == []


# ---------------------------------------------------------------------------------------------
# Purge and delete
# ---------------------------------------------------------------------------------------------
def test_purge_deletes_only_expired_assignments(backend) -> None:
    store = backend.open(retention=100.0)
    store.create_bandit("bp", {}, layout())
    store.create_bandit("side", {}, layout())
    for i in range(25):  # expire at 10, 11, ..., 34 (inserted in shuffled order)
        j = (i * 7) % 25
        store.assign("bp", f"u{j:02d}", {"id": f"d{j}"}, 10.0 + j, 0.0)
    store.assign("side", "u00", {"id": "s"}, 10.0, 0.0)
    # a consumed decision past its retention goes too; a pending one stays
    store.put_pending("bp", "r", {"arm": 0}, 1.0)
    store.put_pending("bp", "p", {"arm": 0}, 1e12)
    store.apply_reward("bp", "r", {}, None, now=0.5)
    assert store.purge("bp", 9.0) == PurgeResult(0, 0, 0)
    # expires_at <= now goes: u00..u09 (10..19), oldest first, at most limit
    assert store.purge("bp", 19.0, limit=4) == PurgeResult(0, 0, 4)
    assert [store.get_assignment("bp", f"u{j:02d}", 0.0) is None for j in range(6)] == [
        True] * 4 + [False] * 2
    assert store.purge("bp", 19.0, limit=100) == PurgeResult(0, 0, 6)
    assert store.purge("bp", 19.0) == PurgeResult(0, 0, 0)
    # the live ones (20..34) are all still there, at any time before they expire
    for j in range(10, 25):
        assert store.get_assignment("bp", f"u{j:02d}", 19.0).payload == {"id": f"d{j}"}  # type: ignore[union-attr]
    # r (consumed, 1 + 100 < 102) and the 15 that expired by 102, in one purge
    assert store.purge("bp", 102.0) == PurgeResult(1, 0, 15)
    assert store.purge("bp", 1000.0) == PurgeResult(0, 0, 0)
    assert store.get_pending("bp", "p").status == "pending"
    # purging one bandit leaves the other's assignments (the side one expired at 10, kept)
    assert store.assign("side", "u00", {"id": "t"}, 20.0, 5.0).payload == {"id": "s"}
    assert store.purge("side", 10.0) == PurgeResult(0, 0, 1)
    # a purged key is free again
    assert store.assign("bp", "u00", {"id": "new"}, 2000.0, 1000.0).created


def test_delete_bandit_removes_its_assignments(store: Store, bandit: str) -> None:
    store.create_bandit("kept", {}, layout())
    for key in ("u1", "u2"):
        store.assign(bandit, key, {"id": key}, 1e12, 0.0)
        store.assign("kept", key, {"id": "k" + key}, 1e12, 0.0)
    store.delete_bandit(bandit)
    with pytest.raises(BanditNotFoundError):
        store.get_assignment(bandit, "u1", 0.0)
    store.create_bandit(bandit, {}, layout())
    assert store.get_assignment(bandit, "u1", 0.0) is None
    assert store.assign(bandit, "u2", {"id": "fresh"}, 10.0, 0.0).created
    assert store.purge(bandit, 1e13) == PurgeResult(0, 0, 1)  # only the fresh one was there
    assert store.get_assignment("kept", "u1", 0.0).payload == {"id": "ku1"}  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Threads racing on the same keys: one creates, all agree
# ---------------------------------------------------------------------------------------------
def test_threads_racing_on_a_key_agree(backend) -> None:
    import threading

    n_threads, keys = 6, [f"u{i}" for i in range(30)]
    stores = [backend.open() for _ in range(n_threads)]  # own clients (memory: one store)
    stores[0].create_bandit("race", {}, layout())
    barrier = threading.Barrier(n_threads)
    got: list[list[Assignment]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for key in keys:
                barrier.wait()
                got[t].append(stores[t].assign("race", key, {"id": f"t{t}-{key}", "t": t},
                                               1e12, 1.0))
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    for i, key in enumerate(keys):
        answers = [got[t][i] for t in range(n_threads)]
        assert sum(a.created for a in answers) == 1, key
        winner = next(a for a in answers if a.created)
        assert winner.payload["id"] == f"t{winner.payload['t']}-{key}"
        assert {(a.key, a.payload["id"], a.expires_at) for a in answers} == {
            (key, winner.payload["id"], 1e12)}
        assert stores[0].get_assignment("race", key, 2.0) == winner._replace(created=False)


# ---------------------------------------------------------------------------------------------
# Observed: passed through, timed
# ---------------------------------------------------------------------------------------------
class Timings(StoreObserver):
    def __init__(self) -> None:
        self.ops: list[str] = []
        self.failures: list[tuple[str, str]] = []

    def timed(self, operation: str, seconds: float) -> None:
        assert seconds >= 0.0
        self.ops.append(operation)

    def failed(self, operation: str, error: str) -> None:
        self.failures.append((operation, error))


def test_observed_store_passes_assignments_through(store: Store, bandit: str) -> None:
    obs = Timings()
    wrapped = ObservedStore(store, obs)
    assert isinstance(wrapped, Store)
    a = wrapped.assign(bandit, "u1", {"id": "d1"}, 10.0, 0.0)
    assert a.created and wrapped.assign(bandit, "u1", {"id": "d2"}, 10.0, 0.0,
                                        replace="d1").created
    assert wrapped.get_assignment(bandit, "u1", 1.0) == Assignment("u1", {"id": "d2"}, 10.0,
                                                                   False)
    assert wrapped.purge(bandit, 10.0) == PurgeResult(0, 0, 1)
    with pytest.raises(BanditNotFoundError):
        wrapped.get_assignment("nope", "u1", 1.0)
    assert obs.ops == ["assign", "assign", "get_assignment", "purge", "get_assignment"]
    assert obs.failures == []  # an unknown bandit is an answer, not a failure


# ---------------------------------------------------------------------------------------------
# Property: every store answers as a plain dict would
# ---------------------------------------------------------------------------------------------
class Model:
    """The semantics in a few lines: key -> (payload, expires_at)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict, float]] = {}

    def get(self, key: str, now: float) -> Assignment | None:
        row = self.rows.get(key)
        if row is None or not row[1] > now:
            return None
        return Assignment(key, row[0], row[1], False)

    def assign(self, key: str, payload: dict, expires_at: float, now: float,
               replace: str | None) -> Assignment:
        live = self.get(key, now)
        if live is not None and (replace is None or live.payload["id"] != replace):
            return live
        self.rows[key] = (payload, expires_at)
        return Assignment(key, payload, expires_at, True)

    def purge(self, now: float, limit: int) -> int:
        gone = sorted((exp, k) for k, (_, exp) in self.rows.items() if exp <= now)[:limit]
        for _, k in gone:
            del self.rows[k]
        return len(gone)


keys = st.sampled_from(["u1", "u2", "u3"])
ids = st.sampled_from(["a", "b", "c", "d"])
# the clock moves forward by whole steps: ties and exact boundaries (expires_at == now) happen
steps = st.integers(0, 3).map(float)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), keys, ids, st.integers(1, 6),
                  st.one_of(st.none(), ids)),
        st.tuples(st.just("get"), keys),
        st.tuples(st.just("purge"), st.integers(1, 3)),
        st.tuples(st.just("tick"), steps),
    ),
    max_size=30,
)


@pytest.fixture(scope="module", params=SHARED_KINDS)
def other(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    backend = make_backend(request.param, request, tmp_path_factory.mktemp("asg"))
    yield backend.open()
    backend.close()


_names = itertools.count()


def _run(store: Store, name: str, seq: list) -> list:
    out: list = []
    now = 0.0
    n = 0
    for op in seq:
        if op[0] == "assign":
            _, key, item, ttl, replace = op
            n += 1  # each payload is distinct, so a kept one is told from a new one
            out.append(store.assign(name, key, {"id": item, "n": n}, now + ttl, now,
                                    replace=replace))
        elif op[0] == "get":
            out.append(store.get_assignment(name, op[1], now))
        elif op[0] == "purge":
            out.append(store.purge(name, now, limit=op[1]).assignments)
        else:
            now += op[1]
    return out


def _run_model(seq: list) -> list:
    model, out, now, n = Model(), [], 0.0, 0
    for op in seq:
        if op[0] == "assign":
            _, key, item, ttl, replace = op
            n += 1
            out.append(model.assign(key, {"id": item, "n": n}, now + ttl, now, replace))
        elif op[0] == "get":
            out.append(model.get(op[1], now))
        elif op[0] == "purge":
            out.append(model.purge(now, op[1]))
        else:
            now += op[1]
    return out


@example(seq=[("assign", "u1", "a", 2, None), ("tick", 2.0), ("get", "u1"),
              ("assign", "u1", "b", 1, "a"), ("purge", 1), ("get", "u1")])
@example(seq=[("assign", "u1", "a", 5, None), ("assign", "u1", "b", 1, "a"),
              ("assign", "u1", "c", 3, "a"), ("tick", 1.0), ("purge", 3),
              ("assign", "u2", "a", 1, None), ("tick", 3.0), ("purge", 1), ("purge", 1)])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=60)
@given(seq=ops)
def test_every_store_answers_like_the_model(other: Store, seq: list) -> None:
    name = f"m{next(_names)}"
    want = _run_model(seq)
    for store in (MemoryStore(), other):
        store.create_bandit(name, {}, layout())
        assert _run(store, name, seq) == want
    other.delete_bandit(name)
