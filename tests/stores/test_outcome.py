"""The outcome a reward stores with its decision (issue 15: a metric rewarded *given* another
must know the value the other was rewarded with), on every store: Memory, SQLite (a real file),
Redis and the 3-node Redis Cluster, directly and through :class:`ObservedStore`.

The property at the end checks, on random sequences of rewards, repeats and expiries, that
every store keeps exactly the first applied outcome of each decision, bit for bit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tsbandit.errors import (
    DecisionExpiredError,
    SerializationError,
    VersionConflictError,
)
from tsbandit.stores import MemoryStore, Store
from tsbandit.stores.observed import ObservedStore, StoreObserver

from .conftest import SHARED_KINDS, make_backend

K = 3


def layout() -> dict[str, np.ndarray]:
    return {"n": np.zeros(K), "s": np.zeros(K)}


def delta(arm: int, value: float = 1.0) -> dict[str, np.ndarray]:
    d = layout()
    d["n"][arm] = 1.0
    d["s"][arm] = value
    return d


@pytest.fixture
def bandit(store: Store) -> str:
    store.create_bandit("bo", {"arms": ["a", "b", "c"]}, layout())
    return "bo"


# ---------------------------------------------------------------------------------------------
# Stored and read back
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "stored"),
    [
        (1.0, 1.0),
        (0.0, 0.0),
        (-0.0, 0.0),  # no sign of zero: SQLite cannot keep it, so no store does
        (True, 1.0),
        (False, 0.0),
        (7, 7.0),
        (np.float32(0.5), 0.5),
        (np.int64(-3), -3.0),
        (0.1, 0.1),  # not a short binary fraction: the text encodings must be exact
        (-123.456e-7, -123.456e-7),
        (1.7976931348623157e308, 1.7976931348623157e308),
        (5e-324, 5e-324),  # the smallest subnormal
    ],
)
def test_outcome_is_stored_with_the_reward_and_read_back(
    store: Store, bandit: str, outcome, stored: float
) -> None:
    store.put_pending(bandit, "d1", {"arm": 1}, 100.0)
    res = store.apply_reward(bandit, "d1", delta(1), {"type": "reward"}, 50.0, outcome=outcome)
    assert res.status == "applied"
    p = store.get_pending(bandit, "d1")
    assert p.status == "rewarded"
    assert type(p.outcome) is float
    assert p.outcome.hex() == stored.hex()  # the same float64, bit for bit (and sign)


def test_reward_without_outcome_stores_none(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    assert store.apply_reward(bandit, "d1", delta(0), None, 1.0).status == "applied"
    p = store.get_pending(bandit, "d1")
    assert (p.status, p.outcome) == ("rewarded", None)


def test_outcome_is_none_until_rewarded_and_after_expiry(store: Store, bandit: str) -> None:
    for i in range(3):
        store.put_pending(bandit, f"d{i}", {"arm": i}, 100.0 + i)
    assert store.get_pending(bandit, "d0").outcome is None  # pending
    claims = store.claim_expired(bandit, 101.5, limit=2)  # d0 and d1
    assert [c.decision_id for c in claims] == ["d0", "d1"]
    p = store.get_pending(bandit, "d0")
    assert (p.status, p.outcome) == ("claimed", None)
    assert store.settle_expired(bandit, claims[0], delta(0, 0.0), {"type": "expired"})
    p = store.get_pending(bandit, "d0")
    assert (p.status, p.outcome) == ("expired", None)
    with pytest.raises(DecisionExpiredError):  # a late reward stores nothing
        store.apply_reward(bandit, "d0", delta(0), None, 1.0, outcome=1.0)
    assert store.get_pending(bandit, "d0").outcome is None
    # a claimed decision rewarded in time (deadline not passed for the reward's clock) keeps
    # the reward's outcome; its claim can no longer be settled
    assert store.apply_reward(bandit, "d1", delta(1), None, 100.0, outcome=0.25).status == "applied"
    assert not store.settle_expired(bandit, claims[1], None, None)
    p = store.get_pending(bandit, "d1")
    assert (p.status, p.outcome) == ("rewarded", 0.25)
    assert store.get_pending(bandit, "d2").outcome is None


def test_duplicate_keeps_the_first_outcome(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 2}, 100.0)
    store.put_pending(bandit, "d2", {"arm": 2}, 100.0)
    assert store.apply_reward(bandit, "d1", delta(2), {"r": 1}, 1.0, outcome=1.0).version == 1
    assert store.apply_reward(bandit, "d2", delta(2), {"r": 2}, 1.0).version == 2
    for did, again in itertools.product(("d1", "d2"), (0.0, None, 5.5)):
        res = store.apply_reward(bandit, did, delta(2, 9.0), {"again": True}, 2.0, outcome=again)
        assert res.duplicate and res.version == 2
    assert store.get_pending(bandit, "d1").outcome == 1.0
    assert store.get_pending(bandit, "d2").outcome is None  # a first reward without one
    assert store.read(bandit).arrays["s"].tolist() == [0.0, 0.0, 2.0]
    assert list(store.iter_events(bandit)) == [{"r": 1}, {"r": 2}]


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan"), "1.0", b"1", [1.0],
            np.array([1.0]), 1j, 10**400, {"v": 1.0}],
)
def test_bad_outcome_is_refused_and_nothing_changes(store: Store, bandit: str, bad) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    before = store.read(bandit)
    with pytest.raises(SerializationError, match="outcome"):
        store.apply_reward(bandit, "d1", delta(0), {"type": "reward"}, 1.0, outcome=bad)
    p = store.get_pending(bandit, "d1")
    assert (p.status, p.outcome) == ("pending", None)
    after = store.read(bandit)
    assert after.version == before.version
    for key, v in before.arrays.items():
        np.testing.assert_array_equal(after.arrays[key], v)
    assert list(store.iter_events(bandit)) == []
    # the decision is still rewardable, and then the good outcome is the one kept
    assert store.apply_reward(bandit, "d1", delta(0), None, 1.0, outcome=0.0).status == "applied"
    assert store.get_pending(bandit, "d1").outcome == 0.0
    # a bad outcome on a repeat is refused too (validated before the store is asked)
    with pytest.raises(SerializationError):
        store.apply_reward(bandit, "d1", delta(0), None, 1.0, outcome=bad)
    assert store.get_pending(bandit, "d1").outcome == 0.0


def test_refused_reward_stores_no_outcome(store: Store, bandit: str) -> None:
    store.put_pending(bandit, "d1", {"arm": 0}, 100.0)
    with pytest.raises(VersionConflictError):
        store.apply_reward(bandit, "d1", delta(0), None, 1.0, config_version=9, outcome=1.0)
    with pytest.raises(SerializationError):  # a bad delta shape, checked in the atomic step
        store.apply_reward(bandit, "d1", {"n": np.zeros(K + 1)}, None, 1.0, outcome=1.0)
    with pytest.raises(DecisionExpiredError):
        store.apply_reward(bandit, "d1", delta(0), None, 100.5, outcome=1.0)
    p = store.get_pending(bandit, "d1")
    assert (p.status, p.outcome) == ("pending", None)
    assert store.apply_reward(bandit, "d1", delta(0), None, 1.0, outcome=0.0).status == "applied"
    assert store.get_pending(bandit, "d1").outcome == 0.0


def test_outcome_is_gone_with_its_purged_decision(backend) -> None:
    store = backend.open(retention=10.0)
    store.create_bandit("bp", {}, layout())
    store.put_pending("bp", "d1", {"arm": 0}, 100.0)
    store.apply_reward("bp", "d1", delta(0), None, 1.0, outcome=1.0)
    assert store.purge("bp", 105.0).decisions == 0
    assert store.get_pending("bp", "d1").outcome == 1.0
    assert store.purge("bp", 111.0).decisions == 1
    with pytest.raises(KeyError):
        store.get_pending("bp", "d1")


def test_outcome_seen_by_another_client(backend) -> None:
    """Written by one client, read by a new one (another worker, or the store reopened)."""
    first = backend.open()
    first.create_bandit("bs", {}, layout())
    first.put_pending("bs", "d1", {"arm": 0}, 100.0)
    first.apply_reward("bs", "d1", delta(0), None, 1.0, outcome=0.1)
    second = backend.open()
    assert second.get_pending("bs", "d1").outcome == 0.1
    assert second.apply_reward("bs", "d1", delta(0), None, 1.0, outcome=2.0).duplicate
    assert first.get_pending("bs", "d1").outcome == 0.1


class _Rewards(StoreObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def rewarded(self, bandit: str, decision_id: str, arm: str, status: str, reward: object,
                 model_version: int) -> None:
        self.calls.append((decision_id, status))


def test_observed_store_passes_the_outcome_through(store: Store, bandit: str) -> None:
    obs = _Rewards()
    observed = ObservedStore(store, obs)
    observed.put_pending(bandit, "d1", {"arm": 1}, 100.0)
    assert observed.apply_reward(bandit, "d1", delta(1), {"arm": "b"}, 1.0,
                                 outcome=1.0).status == "applied"
    assert observed.apply_reward(bandit, "d1", delta(1), None, 1.0, outcome=0.0).duplicate
    assert observed.get_pending(bandit, "d1").outcome == 1.0
    assert store.get_pending(bandit, "d1").outcome == 1.0
    with pytest.raises(SerializationError):
        observed.apply_reward(bandit, "d1", delta(1), None, 1.0, outcome=float("nan"))
    assert obs.calls == [("d1", "applied"), ("d1", "duplicate")]


# ---------------------------------------------------------------------------------------------
# Property: each decision keeps the outcome of its first applied reward, on every store
# ---------------------------------------------------------------------------------------------
N_DECISIONS = 4
outcomes = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
# (decision, outcome, late): a late reward arrives after the deadline and is refused, unless
# the decision was rewarded already (then it is a duplicate)
attempts = st.lists(
    st.tuples(st.integers(0, N_DECISIONS - 1), outcomes, st.booleans()), max_size=16
)


@pytest.fixture(scope="module", params=SHARED_KINDS)
def other(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    backend = make_backend(request.param, request, tmp_path_factory.mktemp("outcome"))
    yield backend.open()
    backend.close()


def _run(store: Store, name: str, seq: list) -> list[str]:
    """Apply the attempts; the status (or refusal) of each."""
    out: list[str] = []
    for i, (d, outcome, late) in enumerate(seq):
        try:
            res = store.apply_reward(name, f"d{d}", delta(d % K, float(i)), {"i": i},
                                     200.0 if late else 50.0, outcome=outcome)
            out.append(res.status)
        except DecisionExpiredError:
            out.append("expired")
    return out


_names = itertools.count()


@example(seq=[(0, -0.0, False), (0, 1.0, False), (1, 5e-324, True), (1, 2**60 - 1, False)])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(seq=attempts)
def test_every_store_keeps_the_first_outcome(other: Store, seq: list) -> None:
    name = f"o{next(_names)}"
    first: dict[int, float | None] = {}
    want_status = []
    for d, outcome, late in seq:  # the reference: a dict of first outcomes
        if d in first:
            want_status.append("duplicate")
        elif late:
            want_status.append("expired")
        else:
            first[d] = None if outcome is None else float(outcome) + 0.0
            want_status.append("applied")
    memory = MemoryStore()
    for store in (memory, other):
        store.create_bandit(name, {}, layout())
        for d in range(N_DECISIONS):
            store.put_pending(name, f"d{d}", {"arm": d % K}, 100.0)
        assert _run(store, name, seq) == want_status
        for d in range(N_DECISIONS):
            p = store.get_pending(name, f"d{d}")
            assert p.status == ("rewarded" if d in first else "pending")
            got, want = p.outcome, first.get(d)
            assert (got is None) == (want is None), (d, got, want)
            if want is not None:
                assert got is not None and got.hex() == want.hex(), (d, got, want)
        assert store.read(name).version == len(first)
    other.delete_bandit(name)
