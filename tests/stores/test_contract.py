"""One contract suite, run unchanged against Memory, SQLite, Redis and Redis Cluster."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest

from concurrency import in_threads
from tsbandit.errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    InvalidRewardError,
    SerializationError,
)
from tsbandit.stores import (
    ClaimedDecision,
    DecisionExistsError,
    NewDecision,
    RewardResult,
    Store,
    VersionConflictError,
)

K = 3
CONFIG = {"arms": ["a", "b", "c"], "model": {"kind": "linear", "d": 2}, "note": "é ✓"}


def arrays(k: int = K) -> dict[str, np.ndarray]:
    return {"n": np.zeros(k), "b": np.zeros((k, 2)), "A": np.zeros((k, 2, 2))}


def one_hot(arm: int, k: int = K, value: float = 1.0) -> dict[str, np.ndarray]:
    d = arrays(k)
    d["n"][arm] = value
    d["b"][arm] = [value, 2 * value]
    d["A"][arm] = [[value, 0.5], [0.5, value]]
    return d


def expected(deltas: list[dict[str, np.ndarray]], k: int = K) -> dict[str, np.ndarray]:
    out = arrays(k)
    for d in deltas:
        for key, v in d.items():
            out[key] = out[key] + v
    return out


def assert_arrays(store: Store, name: str, want: dict[str, np.ndarray]) -> None:
    got = store.read(name).arrays
    assert list(got) == list(want)
    for key, v in want.items():
        assert got[key].dtype == np.float64
        np.testing.assert_array_equal(got[key], v)


@pytest.fixture
def bandit(store: Store) -> str:
    store.create_bandit("bx", CONFIG, arrays())
    return "bx"


# ---------------------------------------------------------------------------------------------
# Bandits
# ---------------------------------------------------------------------------------------------
def test_create_read_roundtrip(store: Store) -> None:
    init = {"n": np.array([1.0, 2.5, -3.0]), "A": np.arange(12.0).reshape(3, 2, 2)}
    snap = store.create_bandit("b1", CONFIG, init)
    assert (snap.name, snap.config, snap.version, snap.config_version) == ("b1", CONFIG, 0, 0)
    assert snap.decayed_at is None
    again = store.read("b1")
    assert again.config == CONFIG
    for key, v in init.items():
        np.testing.assert_array_equal(again.arrays[key], v)
        assert again.arrays[key].shape == v.shape
        assert not again.arrays[key].flags.writeable  # reads never expose mutable state
    assert store.exists("b1") and not store.exists("b2")
    assert store.list_bandits() == ["b1"]


def test_snapshot_does_not_alias_store_state(store: Store) -> None:
    store.create_bandit("b1", CONFIG, arrays())
    snap = store.read("b1")
    snap.config["arms"].append("zzz")
    assert store.read("b1").config == CONFIG


def test_float64_bits_survive(store: Store) -> None:
    tricky = np.array([np.nextafter(0.1, 1.0), -0.0, 1e-310, 2.0**60 + 1.0 * 256])
    store.create_bandit("b1", {}, {"x": tricky})
    got = store.read("b1").arrays["x"]
    assert got.tobytes() == tricky.tobytes()


def test_create_at_a_configuration_version_of_its_own(store: Store) -> None:
    """``create_bandit(..., config_version=c)``: version 0, configuration version ``c`` (what
    the engine uses to tell a bandit from an older one of the same name); every fence then
    counts from it. Values outside ``[0, 2**53)`` are refused and create nothing."""
    start = 2**40 + 5
    snap = store.create_bandit("cv", CONFIG, arrays(), config_version=start)
    assert (snap.version, snap.config_version) == (0, start)
    assert store.read("cv").config_version == start
    with pytest.raises(VersionConflictError):
        store.add("cv", one_hot(0), config_version=0)
    assert store.add("cv", one_hot(0), config_version=start) == 1
    assert store.replace("cv", CONFIG, expected_config_version=start).config_version == start + 1
    for bad in (-1, 2**53, True, 1.5, "3"):
        with pytest.raises(ConfigurationError, match="config_version"):
            store.create_bandit("bad", CONFIG, arrays(), config_version=bad)
    assert not store.exists("bad")


def test_create_existing_raises_and_keeps_state(store: Store, bandit: str) -> None:
    store.add(bandit, one_hot(1))
    with pytest.raises(BanditExistsError):
        store.create_bandit(bandit, {"other": True}, arrays())
    snap = store.read(bandit)
    assert snap.config == CONFIG
    assert snap.arrays["n"].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("name", ["", "a{b}", "a b", "x" * 129, "-lead", "ä"])
def test_bad_bandit_names(store: Store, name: str) -> None:
    with pytest.raises(ConfigurationError):
        store.create_bandit(name, {}, arrays())
    assert store.list_bandits() == []


@pytest.mark.parametrize(
    ("config", "arrs"),
    [
        ({"x": float("nan")}, arrays()),
        ({"x": {1, 2}}, arrays()),
        ({}, {"n": np.zeros(3), "m": np.zeros(4)}),  # arm counts differ
        ({}, {"n": np.float64(1.0)}),  # no arm axis
        ({}, {"bad name": np.zeros(3)}),
    ],
)
def test_bad_config_or_arrays_create_nothing(store: Store, config, arrs) -> None:
    with pytest.raises(SerializationError):
        store.create_bandit("b1", config, arrs)
    assert not store.exists("b1")


def test_unknown_bandit_everywhere(store: Store) -> None:
    claim = ClaimedDecision("d", {}, 0.0, "t")
    calls = [
        lambda: store.read("nope"),
        lambda: store.delete_bandit("nope"),
        lambda: store.replace("nope", {}),
        lambda: store.add("nope", {"n": np.zeros(K)}),
        lambda: store.scale("nope", 0.5),
        lambda: store.decay("nope", 10.0, 1.0),
        lambda: store.put_pending("nope", "d", {}, 1.0),
        lambda: store.put_pending_many("nope", [NewDecision("d", {}, 1.0)]),
        lambda: store.get_pending("nope", "d"),
        lambda: store.apply_reward("nope", "d", {}, None, 0.0),
        lambda: store.claim_expired("nope", 1.0),
        lambda: store.claim_expired("nope", 1.0, limit=0),
        lambda: store.settle_expired("nope", claim, None, None),
        lambda: store.append_event("nope", {}),
        lambda: store.iter_events("nope"),
        lambda: store.read_events("nope"),
    ]
    for call in calls:
        with pytest.raises(BanditNotFoundError):
            call()


def test_delete_removes_everything(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0, event={"e": 1})
    store.add(bandit, one_hot(0))
    store.delete_bandit(bandit)
    assert not store.exists(bandit)
    assert store.list_bandits() == []
    store.create_bandit(bandit, {"v": 2}, arrays())
    snap = store.read(bandit)
    assert snap.config == {"v": 2} and snap.version == 0
    assert list(store.iter_events(bandit)) == []
    with pytest.raises(DecisionNotFoundError):
        store.get_pending(bandit, "d1")


def test_list_many(store: Store) -> None:
    for name in ["zeta", "alpha", "mid.1"]:
        store.create_bandit(name, {}, arrays())
    assert store.list_bandits() == ["alpha", "mid.1", "zeta"]
    store.delete_bandit("mid.1")
    assert store.list_bandits() == ["alpha", "zeta"]


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def test_add_exact_and_versioned(store: Store, bandit: str) -> None:
    d1, d2 = one_hot(0), one_hot(2, value=3.0)
    assert store.add(bandit, d1) == 1
    assert store.add(bandit, d2) == 2
    assert_arrays(store, bandit, expected([d1, d2]))
    assert store.read(bandit).version == 2


def test_add_dense_and_subset(store: Store, bandit: str) -> None:
    rng = np.random.default_rng(3)
    dense = {k: rng.normal(size=v.shape) for k, v in arrays().items()}
    store.add(bandit, dense)
    store.add(bandit, {"n": np.array([1.0, 0.0, -1.0])})  # only one statistic
    want = expected([dense, {"n": np.array([1.0, 0.0, -1.0])}])
    got = store.read(bandit).arrays
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])  # IEEE sums, bit-identical


def test_add_zero_delta_still_counts_as_update(store: Store, bandit: str) -> None:
    assert store.add(bandit, arrays()) == 1
    assert_arrays(store, bandit, arrays())


@pytest.mark.parametrize(
    "deltas",
    [
        {"n": np.zeros(4)},  # wrong arm count
        {"b": np.zeros((3, 3))},  # wrong event shape
        {"unknown": np.zeros(3)},
        {"n": np.array([np.nan, 0.0, 0.0])},
        {"n": np.array([np.inf, 0.0, 0.0])},
    ],
)
def test_bad_deltas_change_nothing(store: Store, bandit: str, deltas) -> None:
    # a valid statistic first: validation must happen before any write
    bad = {"A": one_hot(1)["A"], **deltas}
    with pytest.raises(SerializationError):
        store.add(bandit, bad)
    snap = store.read(bandit)
    assert snap.version == 0
    assert_arrays(store, bandit, arrays())


def test_scale(store: Store, bandit: str) -> None:
    d = one_hot(1, value=4.0)
    store.add(bandit, d)
    assert store.scale(bandit, 0.25) == 2
    want = {k: v * 0.25 for k, v in d.items()}
    assert_arrays(store, bandit, want)
    with pytest.raises(ConfigurationError):
        store.scale(bandit, -1.0)
    with pytest.raises(ConfigurationError):
        store.scale(bandit, float("nan"))


def test_decay(store: Store, bandit: str) -> None:
    d = one_hot(1, value=8.0)
    store.add(bandit, d)
    assert store.decay(bandit, 10.0, 1000.0) == 1.0  # first call starts the clock
    assert store.read(bandit).decayed_at == 1000.0
    assert store.decay(bandit, 10.0, 1010.0) == 0.5
    assert store.decay(bandit, 10.0, 1005.0) == 1.0  # a worker with a late clock: no-op
    g = store.decay(bandit, 10.0, 1030.0)
    assert g == 0.5**2
    snap = store.read(bandit)
    assert snap.decayed_at == 1030.0
    np.testing.assert_array_equal(snap.arrays["n"], d["n"] * 0.5 * 0.25)
    # two steps compose into the decay of the whole period
    store.decay(bandit, 10.0, 1033.0)
    store.decay(bandit, 10.0, 1037.0)
    np.testing.assert_allclose(store.read(bandit).arrays["n"], d["n"] * 0.5**3.7, rtol=1e-14)
    with pytest.raises(ConfigurationError):
        store.decay(bandit, 0.0, 2000.0)


def test_replace_config_and_arrays(store: Store, bandit: str) -> None:
    store.add(bandit, one_hot(0))
    new = {
        k: np.concatenate([v, np.full((1, *v.shape[1:]), 7.0)])
        for k, v in expected([one_hot(0)]).items()
    }
    snap = store.replace(bandit, {"arms": ["a", "b", "c", "d"]}, new, expected_config_version=0)
    assert snap.config_version == 1 and snap.version == 2
    assert snap.config == {"arms": ["a", "b", "c", "d"]}
    assert_arrays(store, bandit, new)
    # deltas computed for the old layout are refused, not added to the wrong arm
    with pytest.raises(VersionConflictError):
        store.add(bandit, one_hot(1, k=4), config_version=0)
    with pytest.raises(VersionConflictError):
        store.replace(bandit, {"x": 1}, expected_config_version=0)
    assert store.add(bandit, one_hot(3, k=4), config_version=1) == 3
    assert store.read(bandit).arrays["n"].tolist() == [1.0, 0.0, 0.0, 8.0]


def test_replace_config_only_keeps_arrays(store: Store, bandit: str) -> None:
    store.add(bandit, one_hot(2))
    snap = store.replace(bandit, {"half_life": 60})
    assert snap.config == {"half_life": 60} and snap.config_version == 1
    assert_arrays(store, bandit, expected([one_hot(2)]))


def test_replace_can_drop_and_add_statistics(store: Store, bandit: str) -> None:
    store.replace(bandit, {}, {"s": np.ones(2), "f": np.zeros(2)})
    snap = store.read(bandit)
    assert list(snap.arrays) == ["s", "f"]
    with pytest.raises(SerializationError):
        store.add(bandit, {"n": np.zeros(3)})


def test_threads_add_exactly(store: Store, bandit: str) -> None:
    n_threads, n_adds = 8, 100

    def work(t: int) -> None:
        for j in range(n_adds):
            store.add(bandit, one_hot((t + j) % K))

    in_threads(work, n_threads)
    counts = np.bincount([(t + j) % K for t in range(n_threads) for j in range(n_adds)])
    snap = store.read(bandit)
    assert snap.arrays["n"].tolist() == counts.astype(float).tolist()
    assert snap.version == n_threads * n_adds


# ---------------------------------------------------------------------------------------------
# Pending decisions and rewards
# ---------------------------------------------------------------------------------------------
def test_pending_roundtrip(store: Store, bandit: str) -> None:
    payload = {"arm": 2, "arm_name": "c", "context": [0.5, -1.25], "propensity": 0.3}
    store.put_pending(bandit, "d-1", payload, 1234.5)
    p = store.get_pending(bandit, "d-1")
    assert (p.decision_id, p.payload, p.deadline, p.status) == ("d-1", payload, 1234.5, "pending")
    with pytest.raises(DecisionExistsError):
        store.put_pending(bandit, "d-1", {"arm": 0}, 2000.0)
    assert store.get_pending(bandit, "d-1").payload == payload
    with pytest.raises(DecisionNotFoundError):
        store.get_pending(bandit, "d-2")


def test_put_pending_rejects_bad_input(store: Store, bandit: str) -> None:
    with pytest.raises(SerializationError):
        store.put_pending(bandit, "d1", {"x": float("inf")}, 10.0)
    with pytest.raises(ConfigurationError):
        store.put_pending(bandit, "", {}, 10.0)
    with pytest.raises(ConfigurationError):
        store.put_pending(bandit, "d1", {}, float("nan"))
    with pytest.raises(DecisionNotFoundError):
        store.get_pending(bandit, "d1")
    assert list(store.iter_events(bandit)) == []


def test_apply_reward_once(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 1}, 100.0, event={"type": "decision", "id": "d1"})
    r = store.apply_reward(bandit, "d1", one_hot(1), {"type": "reward", "id": "d1"}, now=100.0)
    assert r == RewardResult("applied", 1) and not r.duplicate
    assert store.get_pending(bandit, "d1").status == "rewarded"
    again = store.apply_reward(bandit, "d1", one_hot(1), {"type": "reward"}, now=100.0)
    assert again.status == "duplicate" and again.duplicate and again.version == 1
    # a repeat after the deadline is still a duplicate, not an expiry
    assert store.apply_reward(bandit, "d1", one_hot(1), None, now=1e9).duplicate
    assert_arrays(store, bandit, expected([one_hot(1)]))
    assert list(store.iter_events(bandit)) == [
        {"type": "decision", "id": "d1"},
        {"type": "reward", "id": "d1"},
    ]


def test_apply_reward_unknown_and_expired(store: Store, bandit: str) -> None:
    with pytest.raises(DecisionNotFoundError):
        store.apply_reward(bandit, "nope", one_hot(0), None, now=0.0)
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    with pytest.raises(DecisionExpiredError):
        store.apply_reward(bandit, "d1", one_hot(0), {"x": 1}, now=100.001)
    p = store.get_pending(bandit, "d1")
    assert p.status == "pending"  # an expired reward does not consume the decision
    assert store.read(bandit).version == 0
    assert list(store.iter_events(bandit)) == []


def test_failed_reward_leaves_decision_rewardable(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    with pytest.raises(SerializationError):
        store.apply_reward(bandit, "d1", {"n": np.zeros(5)}, {"x": 1}, now=1.0)
    with pytest.raises(SerializationError):
        store.apply_reward(bandit, "d1", one_hot(0), {"x": float("nan")}, now=1.0)
    with pytest.raises(VersionConflictError):
        store.apply_reward(bandit, "d1", one_hot(0), None, now=1.0, config_version=7)
    assert store.get_pending(bandit, "d1").status == "pending"
    assert store.read(bandit).version == 0
    assert store.apply_reward(bandit, "d1", one_hot(0), None, now=1.0).status == "applied"


def test_overflowing_deltas_are_refused_and_change_nothing(store: Store, bandit: str) -> None:
    """A finite delta whose sum with the stored totals is not finite (two squares of 1.3e154)
    is refused inside the atomic write: nothing written, the decision stays pending."""
    big = one_hot(1, value=1.3e154)
    big["A"][1] = [[1.7e308, 0.0], [0.0, 1.0]]  # finite; twice that is not
    store.add(bandit, big)
    before = store.read(bandit)
    store.put_pending(bandit, "d1", {"arm": 1}, 100.0)
    # the overflow is in the last statistic only: the earlier sums (finite) are not written
    # either
    with pytest.raises(InvalidRewardError, match="'A'"):
        store.add(bandit, big)
    with pytest.raises(InvalidRewardError, match="non-finite"):
        store.apply_reward(bandit, "d1", big, {"type": "reward"}, now=1.0)
    assert store.get_pending(bandit, "d1").status == "pending"
    (claim,) = store.claim_expired(bandit, 200.0)
    with pytest.raises(InvalidRewardError):
        store.settle_expired(bandit, claim, big, {"type": "expired"})
    assert store.get_pending(bandit, "d1").status == "claimed"
    after = store.read(bandit)
    assert after.version == before.version
    for key, v in before.arrays.items():
        np.testing.assert_array_equal(after.arrays[key], v)
    assert list(store.iter_events(bandit)) == []
    # negative overflow too; a delta that stays finite still goes through
    neg = one_hot(1, value=0.0)
    neg["b"][1] = [-1.7e308, 0.0]
    store.add(bandit, neg)
    with pytest.raises(InvalidRewardError, match="'b'"):
        store.add(bandit, neg)
    assert store.settle_expired(bandit, claim, one_hot(0), None) is True


# ---------------------------------------------------------------------------------------------
# Many pending decisions at once
# ---------------------------------------------------------------------------------------------
def test_put_pending_many_is_put_pending_for_each(store: Store, bandit: str) -> None:
    store.append_event(bandit, {"before": True})
    items = [
        NewDecision(f"m{i}", {"arm": i % K, "context": [i * 0.25, -1.0]}, 100.0 + i,
                    None if i == 2 else {"type": "decision", "id": f"m{i}"})
        for i in range(5)
    ]
    store.put_pending_many(bandit, items)
    store.put_pending_many(bandit, [("t0", {"arm": 0}, 50.0)])  # plain tuples, no event
    for it in items:
        p = store.get_pending(bandit, it.decision_id)
        assert (p.payload, p.deadline, p.status) == (it.payload, it.deadline, "pending")
    assert store.get_pending(bandit, "t0").deadline == 50.0
    # events appended in item order, after what was there, none for an item without one
    assert list(store.iter_events(bandit)) == [
        {"before": True}, *[{"type": "decision", "id": f"m{i}"} for i in (0, 1, 3, 4)]]
    # each one is rewarded exactly once, and the batch's ids are known to put_pending
    for it in items:
        arm = it.payload["arm"]
        assert store.apply_reward(bandit, it.decision_id, one_hot(arm), None, 1.0).status \
            == "applied"
        assert store.apply_reward(bandit, it.decision_id, one_hot(arm), None, 1.0).duplicate
    assert_arrays(store, bandit, expected([one_hot(i % K) for i in range(5)]))
    with pytest.raises(DecisionExistsError):
        store.put_pending(bandit, "m0", {}, 100.0)
    # the expiry sweep sees batch decisions like any other
    assert [c.decision_id for c in store.claim_expired(bandit, 60.0)] == ["t0"]
    store.put_pending_many(bandit, [])  # nothing to do
    assert store.read(bandit).version == 5


def test_put_pending_many_all_or_nothing(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "old", {"arm": 0}, 100.0, event={"id": "old"})

    def batch(*extra: NewDecision) -> list[NewDecision]:
        return [NewDecision("n1", {"arm": 1}, 100.0, {"id": "n1"}), *extra,
                NewDecision("n2", {"arm": 2}, 100.0, {"id": "n2"})]

    bad = [
        (DecisionExistsError, NewDecision("old", {"arm": 1}, 100.0, {"id": "x"})),  # stored
        (DecisionExistsError, NewDecision("n1", {"arm": 1}, 100.0)),  # twice in the batch
        (ConfigurationError, NewDecision("", {"arm": 1}, 100.0)),
        (ConfigurationError, NewDecision("n3", {"arm": 1}, float("nan"))),
        (SerializationError, NewDecision("n3", {"arm": float("inf")}, 100.0)),
        (SerializationError, NewDecision("n3", {"arm": 1}, 100.0, {"x": float("nan")})),
    ]
    for exc, item in bad:
        with pytest.raises(exc):
            store.put_pending_many(bandit, batch(item))
        for did in ("n1", "n2", "n3"):
            with pytest.raises(DecisionNotFoundError):
                store.get_pending(bandit, did)
        assert store.get_pending(bandit, "old").payload == {"arm": 0}
        assert list(store.iter_events(bandit)) == [{"id": "old"}]
    store.put_pending_many(bandit, batch())
    assert [e["id"] for e in store.iter_events(bandit)] == ["old", "n1", "n2"]


def test_put_pending_many_if_at_writes_only_at_that_version(store: Store, bandit: str) -> None:
    """``if_at=(version, config_version)``: written when the bandit is there (None back); once
    it moved (a reward, a configuration change), nothing written and the current snapshot
    back -- the same as read() -- so the caller can decide again from it."""
    snap = store.read(bandit)
    at = (snap.version, snap.config_version)
    item = NewDecision("c1", {"arm": 0}, 100.0, {"id": "c1"})
    assert store.put_pending_many(bandit, [item], if_at=at) is None
    assert store.get_pending(bandit, "c1").status == "pending"
    store.apply_reward(bandit, "c1", one_hot(0), None, 1.0)  # the version moves
    moved = store.put_pending_many(bandit, [NewDecision("c2", {"arm": 1}, 100.0,
                                                        {"id": "c2"})], if_at=at)
    now = store.read(bandit)
    assert moved is not None and moved.version == now.version == at[0] + 1
    assert moved.config_version == now.config_version and moved.config == now.config
    for key, v in now.arrays.items():
        np.testing.assert_array_equal(moved.arrays[key], v)
    with pytest.raises(DecisionNotFoundError):
        store.get_pending(bandit, "c2")
    assert [e["id"] for e in store.iter_events(bandit)] == ["c1"]
    # at the new version it goes through; a configuration change moves it again
    assert store.put_pending_many(bandit, [("c2", {"arm": 1}, 100.0)],
                                  if_at=(now.version, now.config_version)) is None
    store.replace(bandit, {"changed": True}, expected_config_version=now.config_version)
    assert store.put_pending_many(bandit, [("c3", {"arm": 1}, 100.0)],
                                  if_at=(now.version, now.config_version)) is not None
    with pytest.raises(DecisionNotFoundError):
        store.get_pending(bandit, "c3")
    # a known id is still refused, an unknown bandit still not found, a bad if_at refused
    later = store.read(bandit)
    fresh = (later.version, later.config_version)
    with pytest.raises(DecisionExistsError):
        store.put_pending_many(bandit, [("c1", {"arm": 0}, 100.0)], if_at=fresh)
    with pytest.raises(BanditNotFoundError):
        store.put_pending_many("no-such-bandit", [("x", {"arm": 0}, 100.0)], if_at=(0, 0))
    for bad in ((1,), (1, -1), ("1", 0), 5):
        with pytest.raises(ConfigurationError):
            store.put_pending_many(bandit, [("c4", {"arm": 0}, 100.0)], if_at=bad)


def test_put_pending_many_large_and_concurrent(store: Store, bandit: str) -> None:
    # batches of 300 from 4 threads at once: every decision stored once, every event logged
    n_threads, size = 4, 300

    def work(t: int) -> None:
        store.put_pending_many(bandit, [
            NewDecision(f"t{t}-{j}", {"arm": j % K}, 1000.0 + j, {"id": f"t{t}-{j}"})
            for j in range(size)])

    in_threads(work, n_threads)
    ids = [e["id"] for e in store.iter_events(bandit)]
    assert sorted(ids) == sorted(f"t{t}-{j}" for t in range(n_threads) for j in range(size))
    for t in range(n_threads):  # each batch's events are contiguous and in order
        mine = [i for i, x in enumerate(ids) if x.startswith(f"t{t}-")]
        assert mine == list(range(mine[0], mine[0] + size))
        assert [ids[i] for i in mine] == [f"t{t}-{j}" for j in range(size)]
    assert store.get_pending(bandit, "t3-299").deadline == 1299.0
    assert len(store.claim_expired(bandit, 2000.0, limit=10_000)) == n_threads * size


def test_put_pending_many_same_ids_concurrently_one_wins(backend, bandit: str) -> None:
    """Idempotency keys rely on this: many clients insert the same ids at once, exactly one
    batch is stored (with its events), the others get DecisionExistsError."""
    n = 6
    stores = [backend.open() for _ in range(n)]

    def work(t: int) -> bool:
        items = [NewDecision(f"key-{j}", {"arm": j % K, "writer": t}, 100.0,
                             {"id": f"key-{j}", "writer": t}) for j in range(3)]
        try:
            stores[t].put_pending_many(bandit, items)
        except DecisionExistsError:
            return False
        return True

    won = [t for t, stored in enumerate(in_threads(work, n)) if stored]
    assert len(won) == 1
    for j in range(3):  # every id holds the winner's payload; only the winner's events
        assert stores[0].get_pending(bandit, f"key-{j}").payload["writer"] == won[0]
    assert [(e["id"], e["writer"]) for e in stores[0].iter_events(bandit)] == [
        (f"key-{j}", won[0]) for j in range(3)]


def test_consumed_ids_stay_taken_until_purged(backend) -> None:
    """A rewarded or expired decision's id cannot be inserted again while it is kept (a
    retry with its idempotency key finds it); once purged, it can."""
    store = backend.open(retention=100.0)
    store.create_bandit("b1", {}, arrays())
    store.put_pending("b1", "r", {"arm": 0}, 10.0)
    store.put_pending("b1", "x", {"arm": 1}, 10.0)
    store.apply_reward("b1", "r", one_hot(0), None, now=5.0)
    claims = {c.decision_id: c for c in store.claim_expired("b1", 50.0)}
    assert store.settle_expired("b1", claims["x"], None, None)
    for did, status in (("r", "rewarded"), ("x", "expired")):
        for put in (lambda d: store.put_pending("b1", d, {"arm": 2}, 500.0),
                    lambda d: store.put_pending_many("b1", [NewDecision(d, {"arm": 2}, 500.0)])):
            with pytest.raises(DecisionExistsError):
                put(did)
        p = store.get_pending("b1", did)
        assert (p.status, p.payload["arm"]) == (status, 0 if did == "r" else 1)
    store.purge("b1", 111.0)  # past deadline + retention: purged
    store.put_pending_many("b1", [NewDecision("r", {"arm": 2}, 500.0),
                                  NewDecision("x", {"arm": 2}, 500.0)])
    assert store.get_pending("b1", "r").status == "pending"
    assert store.get_pending("b1", "x").payload == {"arm": 2}


def test_claim_and_settle(store: Store, bandit: str) -> None:
    for i, dl in enumerate([30.0, 10.0, 20.0, 500.0]):
        store.put_pending(bandit, f"d{i}", {"arm": i % K}, dl)
    assert store.claim_expired(bandit, 5.0) == []
    claims = store.claim_expired(bandit, 100.0, limit=2, lease=30.0)
    assert [c.decision_id for c in claims] == ["d1", "d2"]  # earliest deadline first
    assert claims[0].payload == {"arm": 1} and claims[0].deadline == 10.0
    assert len({c.token for c in claims}) == 1
    assert store.get_pending(bandit, "d1").status == "claimed"
    # held claims are not handed out again before their lease lapses
    rest = store.claim_expired(bandit, 101.0)
    assert [c.decision_id for c in rest] == ["d0"]
    assert store.claim_expired(bandit, 129.0) == []
    assert store.settle_expired(bandit, claims[0], one_hot(1), {"type": "expired"}) is True
    assert store.settle_expired(bandit, claims[0], one_hot(1), {"type": "expired"}) is False
    assert store.get_pending(bandit, "d1").status == "expired"
    with pytest.raises(DecisionExpiredError):
        store.apply_reward(bandit, "d1", one_hot(1), None, now=0.0)
    # a lapsed lease: another sweeper takes d2 over; the first holder can no longer settle it
    again = store.claim_expired(bandit, 200.0)
    assert sorted(c.decision_id for c in again) == ["d0", "d2"]
    assert again[0].token != claims[1].token
    assert store.settle_expired(bandit, claims[1], one_hot(2), None) is False
    by_id = {c.decision_id: c for c in again}
    assert store.settle_expired(bandit, by_id["d2"], None, None) is True  # no default reward
    assert_arrays(store, bandit, expected([one_hot(1)]))
    assert store.read(bandit).version == 1
    assert list(store.iter_events(bandit)) == [{"type": "expired"}]


def test_reward_wins_over_a_claim(store: Store, bandit: str) -> None:
    # clocks differ between workers: a sweeper claimed, a reward arrived within its window
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    (claim,) = store.claim_expired(bandit, 101.0)
    assert store.apply_reward(bandit, "d1", one_hot(0), None, now=99.0).status == "applied"
    assert store.settle_expired(bandit, claim, one_hot(0), None) is False
    assert_arrays(store, bandit, expected([one_hot(0)]))


def test_settle_refuses_stale_layout(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 10.0)
    (claim,) = store.claim_expired(bandit, 20.0)
    store.replace(bandit, {"v": 2})
    with pytest.raises(VersionConflictError):
        store.settle_expired(bandit, claim, one_hot(0), None, config_version=0)
    assert store.get_pending(bandit, "d1").status == "claimed"
    assert store.settle_expired(bandit, claim, one_hot(0), None, config_version=1)


def test_sweep_expired(store: Store, bandit: str) -> None:
    for i in range(7):
        store.put_pending(bandit, f"d{i}", {"arm": i % K}, 10.0 + i)
    store.apply_reward(bandit, "d0", one_hot(0), None, now=0.0)

    def deltas_fn(claim: ClaimedDecision):
        return one_hot(claim.payload["arm"], value=0.5), {"expired": claim.decision_id}

    assert store.sweep_expired(bandit, 14.5, deltas_fn) == 4  # d1..d4
    assert store.sweep_expired(bandit, 14.5, deltas_fn) == 0
    assert store.sweep_expired(bandit, 100.0, deltas_fn, limit=1) == 1
    assert store.sweep_expired(bandit, 100.0, deltas_fn) == 1
    want = expected([one_hot(0)] + [one_hot(i % K, value=0.5) for i in range(1, 7)])
    assert_arrays(store, bandit, want)
    ids = [e["expired"] for e in store.iter_events(bandit)]
    assert sorted(ids) == [f"d{i}" for i in range(1, 7)]


def test_concurrent_sweepers_settle_each_once(backend, bandit: str) -> None:
    stores = [backend.open() for _ in range(4)]
    n = 60
    for i in range(n):
        stores[0].put_pending(bandit, f"d{i}", {"arm": i % K}, float(i))

    def sweep(w: int) -> int:
        count = 0
        while True:
            got = stores[w].sweep_expired(
                bandit, 1000.0, lambda c: (one_hot(c.payload["arm"]), None), limit=7
            )
            count += got
            if got == 0 and all(
                stores[w].get_pending(bandit, f"d{i}").status == "expired" for i in range(n)
            ):
                return count

    assert sum(in_threads(sweep, len(stores))) == n
    assert_arrays(stores[0], bandit, expected([one_hot(i % K) for i in range(n)]))


def test_purge_after_retention(backend) -> None:
    store = backend.open(retention=100.0)
    store.create_bandit("b1", {}, arrays())
    store.put_pending("b1", "r", {"arm": 0}, 10.0)
    store.put_pending("b1", "x", {"arm": 0}, 10.0)
    store.put_pending("b1", "late", {"arm": 0}, 10.0)
    store.put_pending("b1", "open", {"arm": 0}, 500.0)
    store.apply_reward("b1", "r", one_hot(0), None, now=5.0)
    claims = {c.decision_id: c for c in store.claim_expired("b1", 50.0)}
    assert sorted(claims) == ["late", "x"]
    assert store.settle_expired("b1", claims["x"], None, None)
    # claiming never purges; purge before deadline + retention deletes nothing
    store.claim_expired("b1", 111.0)
    assert store.purge("b1", 109.0) == (0, 0, 0)
    assert store.apply_reward("b1", "r", one_hot(0), None, now=5.0).duplicate
    assert store.get_pending("b1", "x").status == "expired"
    store.retention = 1000.0  # the retention in effect when purge runs decides
    assert store.purge("b1", 111.0) == (0, 0, 0)
    store.retention = 100.0
    assert store.purge("b1", 111.0) == (2, 0, 0)  # the consumed ones, past their retention
    for did in ("r", "x"):
        with pytest.raises(DecisionNotFoundError):
            store.get_pending("b1", did)
    # a reward for a purged decision: not found, and nothing changes
    before = store.read("b1").version
    with pytest.raises(DecisionNotFoundError):
        store.apply_reward("b1", "r", one_hot(0), None, now=5.0)
    assert store.read("b1").version == before
    # unconsumed decisions are never purged, only claimed
    assert store.purge("b1", 10_000.0) == (0, 0, 0)
    assert store.get_pending("b1", "late").status == "claimed"
    assert store.get_pending("b1", "open").status == "pending"
    assert_arrays(store, "b1", expected([one_hot(0)]))
    with pytest.raises(BanditNotFoundError):
        store.purge("nope", 1.0)
    with pytest.raises(ConfigurationError):
        store.purge("b1", 1.0, limit=0)


def test_purge_oldest_first_in_batches(store: Store, bandit: str) -> None:
    store.put_pending_many(bandit, [NewDecision(f"d{i:03d}", {"arm": 0}, float(i))
                                    for i in range(25)])
    for i in range(25):
        store.apply_reward(bandit, f"d{i:03d}", {}, None, now=0.0)
    far = 1e12  # past every retention
    assert store.purge(bandit, far, limit=10) == (10, 0, 0)
    for i in range(10):
        with pytest.raises(DecisionNotFoundError):
            store.get_pending(bandit, f"d{i:03d}")
    assert store.get_pending(bandit, "d010").status == "rewarded"
    assert store.purge(bandit, far, limit=10) == (10, 0, 0)
    assert store.purge(bandit, far, limit=10) == (5, 0, 0)
    assert store.purge(bandit, far) == (0, 0, 0)


def test_purge_trims_the_event_log_to_events_maxlen(backend) -> None:
    store = backend.open(events_maxlen=40)
    assert store.events_maxlen == 40
    store.create_bandit("ev", {}, arrays())
    store.create_bandit("other", {}, arrays())
    for i in range(300):
        store.append_event("ev", {"i": i})
    for i in range(30):
        store.append_event("other", {"i": i})
    kept = len(list(store.iter_events("ev")))
    assert 40 <= kept <= 300  # Memory trims at append; SQLite at purge; Redis both (~)
    assert store.purge("ev", 0.0).events == kept - 40
    assert [e["i"] for e in store.iter_events("ev")] == list(range(260, 300))  # the newest
    assert store.purge("ev", 0.0) == (0, 0, 0)
    assert store.purge("other", 0.0) == (0, 0, 0)  # under the bound: untouched
    assert len(list(store.iter_events("other"))) == 30
    # a reader's cursor past trimmed events continues with the oldest one kept
    page = store.read_events("ev", limit=5)
    assert [e["i"] for e in page.events] == list(range(260, 265))


@pytest.mark.parametrize("options", [{"events_maxlen": 0}, {"events_maxlen": -3},
                                     {"retention": -1.0}, {"retention": float("nan")}])
def test_bad_retention_options_are_refused(backend, options) -> None:
    with pytest.raises(ConfigurationError):
        backend.open(**options)


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------
def test_events_in_order_and_export(store: Store, bandit: str) -> None:
    events = [{"i": i, "ctx": [i * 0.5, -1.0], "s": "ü" * (i % 3), "n": None} for i in range(25)]
    for e in events:
        store.append_event(bandit, e)
    assert list(store.iter_events(bandit)) == events
    assert list(store.iter_events(bandit, batch_size=4)) == events  # paging
    assert list(store.iter_events(bandit, batch_size=5)) == events  # pages end exactly
    buf = io.StringIO()
    assert store.export_events(bandit, buf) == 25
    lines = buf.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == events
    with pytest.raises(SerializationError):
        store.append_event(bandit, {"bad": float("nan")})
    assert len(list(store.iter_events(bandit))) == 25


def test_events_are_per_bandit(store: Store) -> None:
    store.create_bandit("a", {}, arrays())
    store.create_bandit("b", {}, arrays())
    store.append_event("a", {"x": 1})
    store.append_event("b", {"x": 2})
    assert list(store.iter_events("a")) == [{"x": 1}]
    assert list(store.iter_events("b")) == [{"x": 2}]


def test_ping_and_context_manager(backend) -> None:
    store = backend.open()
    store.ping()
    with store as s:
        assert s is store


# ----- the event log's cursor ------------------------------------------------------------------
def test_read_events_pages_and_cursor(store: Store, bandit: str) -> None:
    assert store.read_events(bandit) == ([], None)
    for i in range(7):
        store.append_event(bandit, {"i": i})
    seen: list[int] = []
    cursor = None
    while True:
        page = store.read_events(bandit, after=cursor, limit=3)
        if not page.events:
            assert page.cursor == cursor  # nothing new: the cursor stays where it was
            break
        assert len(page.events) <= 3
        seen += [e["i"] for e in page.events]
        cursor = page.cursor
    assert seen == list(range(7))
    # only what was appended since: by append_event, by a decision, and by a reward
    store.append_event(bandit, {"i": 7})
    store.put_pending(bandit, "d1", {"arm": 0}, 1e12, event={"i": 8})
    store.apply_reward(bandit, "d1", one_hot(0), {"i": 9}, 1.0)
    store.put_pending(bandit, "d2", {"arm": 1}, 1e12)  # no event: nothing logged
    page = store.read_events(bandit, after=cursor)
    assert [e["i"] for e in page.events] == [7, 8, 9]
    assert store.read_events(bandit, after=page.cursor) == ([], page.cursor)
    assert [e["i"] for e in store.iter_events(bandit)] == list(range(10))


def test_read_events_cursor_grows_across_recreate(store: Store, bandit: str) -> None:
    store.append_event(bandit, {"old": 1})
    cursor = store.read_events(bandit).cursor
    store.delete_bandit(bandit)
    store.create_bandit(bandit, {}, arrays())
    store.append_event(bandit, {"new": 1})
    # a reader holding the old cursor sees the new bandit's events, not nothing
    assert store.read_events(bandit, after=cursor).events == [{"new": 1}]


@pytest.mark.parametrize("bad", [dict(limit=0), dict(limit=-1), dict(limit=True),
                                 dict(limit=2.5), dict(after="not-a-cursor"),
                                 dict(after="1;DROP")])
def test_read_events_bad_arguments(store: Store, bandit: str, bad: dict) -> None:
    store.append_event(bandit, {"i": 0})
    with pytest.raises(ConfigurationError):
        store.read_events(bandit, **bad)
    assert list(store.iter_events(bandit)) == [{"i": 0}]


def test_read_events_concurrent_appends_none_lost(store: Store, bandit: str) -> None:
    """An incremental reader racing 4 writers sees every event exactly once, in order per
    writer."""

    n, writers = 150, 4
    done = threading.Event()

    def write(w: int) -> None:
        for j in range(n):
            store.append_event(bandit, {"w": w, "j": j})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    got: list[dict] = []
    cursor = None
    while True:
        finished = done.is_set()
        page = store.read_events(bandit, after=cursor, limit=50)
        got += page.events
        cursor = page.cursor
        if finished and not page.events:
            break
        if all(not t.is_alive() for t in threads):
            done.set()
    for t in threads:
        t.join()
    assert len(got) == n * writers
    for w in range(writers):
        assert [e["j"] for e in got if e["w"] == w] == list(range(n))
