"""The engine's reward path: the payload cache (a reward for a decision this engine made is one
store call) and ``record_rewards`` (a batch: one read of the misses, one write of all), each
reward applied exactly once and answered on its own, on every store."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsbandit.engine import BanditSpec, Engine, bandit_spec
from tsbandit.errors import (
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    InvalidRewardError,
    InvalidSlotError,
)
from tsbandit.stores import MemoryStore, Store
from tsbandit.stores.observed import ObservedStore, StoreObserver


class Calls(StoreObserver):
    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def timed(self, operation: str, seconds: float) -> None:
        self.ops[operation] += 1


def alphas(store: Store, name: str = "offers") -> list[float]:
    return store.read(name).arrays["successes"].tolist()


def spec(**kw) -> BanditSpec:  # type: ignore[no-untyped-def]
    return BanditSpec(name="offers", arms=["a", "b", "c"], reward_window=100.0, **kw)


def counted(store: Store) -> tuple[ObservedStore, Calls]:
    calls = Calls()
    return ObservedStore(store, calls), calls


@pytest.mark.usefixtures("trusted_cache")  # counts store calls
def test_a_reward_for_its_own_decision_is_one_store_call(store, clock):
    observed, calls = counted(store)
    mine, other = Engine(observed, seed=0, clock=clock), Engine(observed, seed=1, clock=clock)
    mine.create_bandit(spec())
    d1, d2 = mine.decide("offers"), mine.decide("offers")
    calls.ops.clear()
    assert mine.record_reward(d1.decision_id, 1).status == "applied"
    assert calls.ops == {"apply_reward": 1}  # the payload came from the cache
    calls.ops.clear()
    assert other.record_reward(d2.decision_id, 1).status == "applied"  # not its decision
    assert calls.ops == {"get_pending": 1, "apply_reward": 1, "read": 1}
    calls.ops.clear()
    # statuses are never cached: a repeat through the cache is the store's "duplicate"
    assert mine.record_reward(d2.decision_id, 0).duplicate
    assert mine.record_reward(d1.decision_id, 0).duplicate
    assert calls.ops == {"apply_reward": 2}
    s = alphas(store)
    assert sorted(s) in ([0.0, 1.0, 1.0], [0.0, 0.0, 2.0])
    assert sum(s) == 2.0


@pytest.mark.usefixtures("trusted_cache")  # counts store calls
def test_record_rewards_answers_each_on_its_own(store, clock):
    observed, calls = counted(store)
    eng, peer = Engine(observed, seed=2, clock=clock), Engine(observed, seed=3, clock=clock)
    eng.create_bandit(spec())
    eng.create_bandit(BanditSpec(name="other", arms=["x", "y"]))
    late = eng.decide("offers")
    clock.advance(50)
    mine = eng.decide_batch("offers", n=3)
    theirs = peer.decide_batch("offers", n=2)
    fresh = eng.decide("offers")
    o = eng.decide("other")
    clock.advance(60)  # late's window closed, fresh's is open
    ghost = "offers~" + "0" * 32
    items = [
        (mine[0].decision_id, 1), (mine[1].decision_id, 0, None), (mine[0].decision_id, 0),
        (theirs[0].decision_id, 1), (theirs[0].decision_id, 0), (theirs[1].decision_id, 1, 0),
        (ghost, 1), ("not an id", 1), (mine[2].decision_id, 7), (mine[2].decision_id, 1, 2),
        (late.decision_id, 1), (fresh.decision_id, 1), (o.decision_id, 1),
    ]
    calls.ops.clear()
    out = eng.record_rewards(items)
    st = [getattr(r, "status", type(r).__name__) for r in out]
    assert st == ["applied", "applied", "duplicate", "applied", "duplicate", "applied",
                  "DecisionNotFoundError", "DecisionNotFoundError", "InvalidRewardError",
                  "InvalidSlotError", "DecisionExpiredError", "applied", "applied"]
    assert isinstance(out[8], InvalidRewardError) and isinstance(out[9], InvalidSlotError)
    assert isinstance(out[10], DecisionExpiredError) and isinstance(out[6], DecisionNotFoundError)
    assert out[0].arm == mine[0].arm and out[3].arm == theirs[0].arm  # type: ignore[union-attr]
    # one bandit: one read of the two peer decisions and the ghost, one write of the rest
    assert calls.ops["get_pending_many"] == 1 and calls.ops["apply_reward_many"] == 1
    assert "get_pending" not in calls.ops
    assert sum(alphas(store)) == 4.0  # mine[0], theirs[0], theirs[1], fresh
    assert sum(store.read("offers").arrays["failures"]) == 1.0  # mine[1]
    assert sum(alphas(store, "other")) == 1.0
    rewards = [e for e in eng.events("offers") if e["type"] == "reward"]
    assert sorted(e["decision_id"] for e in rewards) == sorted(
        d.decision_id for d in (mine[0], mine[1], theirs[0], theirs[1], fresh))
    # the refused ones are still rewardable on their own
    assert eng.record_reward(mine[2].decision_id, 1).status == "applied"
    assert eng.record_rewards([]) == []


def test_arms_changed_meanwhile_rebuild_the_batch(store, clock):
    w1, w2 = Engine(store, seed=4, clock=clock), Engine(store, seed=5, clock=clock)
    w1.create_bandit(spec())
    ds = w1.decide_batch("offers", n=4, eligible=["b"])
    w2.retire_arm("offers", "a")  # w1's cached layout is stale: the write is refused, rebuilt
    w2.add_arm("offers", "d")
    out = w1.record_rewards([(d.decision_id, 1) for d in ds])
    assert [r.status for r in out] == ["applied"] * 4  # type: ignore[union-attr]
    arms = {r["arm"]: r for r in w2.stats("offers")["arms"]}
    assert list(arms) == ["b", "c", "d"] and arms["b"]["alpha"] == 5.0
    assert arms["c"]["alpha"] == arms["d"]["alpha"] == 1.0


def test_delete_and_recreate_never_answers_from_a_stale_entry(store, clock):
    w1, w2 = Engine(store, seed=6, clock=clock), Engine(store, seed=7, clock=clock)
    w1.create_bandit(spec())
    d = w1.decide("offers")
    w2.delete_bandit("offers")  # another worker: w1 still has the payload
    w2.create_bandit(spec())
    with pytest.raises(DecisionNotFoundError):  # random ids are never reused
        w1.record_reward(d.decision_id, 1)
    assert alphas(store) == [0.0, 0.0, 0.0]
    d2 = w1.decide("offers")
    assert len(w1._payloads) == 1
    w1.delete_bandit("offers")  # this worker: its entries go
    assert len(w1._payloads) == 0
    with pytest.raises(DecisionNotFoundError):
        w1.record_reward(d2.decision_id, 1)


@pytest.mark.usefixtures("trusted_cache")  # counts store calls
def test_idempotency_keyed_decisions_are_read_not_cached(clock):
    observed, calls = counted(MemoryStore())
    eng = Engine(observed, seed=8, clock=clock)
    eng.create_bandit(spec())
    d = eng.decide("offers", idempotency_key="req-1")
    again = eng.decide("offers", idempotency_key="req-1")  # a replay
    assert again.decision_id == d.decision_id and len(eng._payloads) == 0
    calls.ops.clear()
    assert eng.record_reward(d.decision_id, 1).status == "applied"
    assert calls.ops["get_pending"] == 1


@pytest.mark.usefixtures("trusted_cache")  # counts store calls
def test_payload_cache_is_bounded_and_optional(clock):
    observed, calls = counted(MemoryStore())
    eng = Engine(observed, seed=9, clock=clock, payload_cache=3)
    eng.create_bandit(spec())
    ds = eng.decide_batch("offers", n=5)
    assert len(eng._payloads) == 3
    calls.ops.clear()
    out = eng.record_rewards([(d.decision_id, 1) for d in ds])
    assert [r.status for r in out] == ["applied"] * 5  # type: ignore[union-attr]
    assert calls.ops["get_pending_many"] == 1  # the two evicted ones were read
    off = Engine(MemoryStore(), payload_cache=0)
    off.create_bandit(spec())
    off.decide("offers")
    assert len(off._payloads) == 0
    with pytest.raises(ConfigurationError):
        Engine(MemoryStore(), payload_cache=-1)


def test_metric_and_slot_rewards_in_a_batch(store, clock):
    eng = Engine(store, seed=10, clock=clock)
    eng.create_bandit(bandit_spec("cards", ["A", "B"], metrics={
        "apply": "beta", "revenue": {"model": "gaussian", "given": "apply"}},
        objective={"revenue": 1.0}, reward_window=100.0))
    eng.create_bandit(bandit_spec("carousel", ["a", "b", "c"], model={"kind": "cascade"}))
    d, r = eng.decide("cards"), eng.decide("carousel", k=3)
    out = eng.record_rewards([
        (d.decision_id, {"revenue": 10.0}),  # apply not observed yet: refused alone
        (d.decision_id, {"apply": 1}), (d.decision_id, {"apply": 1}),
        (d.decision_id, {"revenue": 10.0}),
        (r.decision_id, 1, 1), (r.decision_id, [0, 1, None]),
    ])
    assert type(out[0]).__name__ == "GivenNotObservedError"
    assert [o.status for o in out[1:]] == [  # type: ignore[union-attr]
        "applied", "duplicate", "applied", "applied", "applied"]
    assert out[5].slots == {0: "applied", 1: "duplicate"}  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Property: single and batched rewards from a worker that made the decisions (cached) and one
# that did not, duplicates and unknown ids included, apply each decision's first reward once.
# ---------------------------------------------------------------------------------------------
_names = itertools.count()
N = 5
reward = st.tuples(st.booleans(), st.integers(0, N), st.integers(0, 1))  # (worker, id, r)
calls_st = st.lists(st.one_of(st.tuples(st.just("one"), reward),
                              st.tuples(st.just("many"), st.lists(reward, max_size=6))),
                    max_size=6)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=25)
@given(seq=calls_st)
def test_any_interleaving_applies_each_first_reward_once(store, clock, seq):
    name = f"p{next(_names)}"
    maker, peer = Engine(store, seed=11, clock=clock), Engine(store, seed=12, clock=clock)
    maker.create_bandit(BanditSpec(name=name, arms=["a", "b"], reward_window=100.0))
    ds = maker.decide_batch(name, n=N)
    ids = [d.decision_id for d in ds] + [f"{name}~" + "f" * 32]
    first: dict[int, int] = {}
    want, got = [], []
    for kind, arg in seq:
        # a batch: each worker sends its share (the maker's first), one record_rewards each
        sends = [[arg]] if kind == "one" else [[x for x in arg if x[0] == w]
                                               for w in (True, False)]
        for part in sends:
            if not part:
                continue
            eng = maker if part[0][0] else peer
            for _, i, r in part:
                want.append("DecisionNotFoundError" if i == N else
                            "duplicate" if i in first else "applied")
                if i < N:
                    first.setdefault(i, r)
            if kind == "one":
                try:
                    got.append(eng.record_reward(ids[part[0][1]], part[0][2]).status)
                except DecisionNotFoundError:
                    got.append("DecisionNotFoundError")
            else:
                got += [getattr(o, "status", type(o).__name__)
                        for o in eng.record_rewards([(ids[i], r) for _, i, r in part])]
    assert got == want
    snap = store.read(name)
    s, f = np.zeros(2), np.zeros(2)
    for i, r in first.items():
        (s if r else f)[["a", "b"].index(ds[i].arm)] += 1
    assert snap.arrays["successes"].tolist() == s.tolist()
    assert snap.arrays["failures"].tolist() == f.tolist()
    assert snap.version == len(first)
    maker.delete_bandit(name)


@pytest.mark.usefixtures("trusted_cache")  # counts store calls
def test_a_large_batch_goes_to_the_store_in_chunks(clock):
    observed, calls = counted(MemoryStore())
    maker, other = Engine(observed, seed=13, clock=clock), Engine(observed, seed=14, clock=clock)
    maker.create_bandit(spec())
    ids = [d.decision_id for d in maker.decide_batch("offers", n=2500)]
    calls.ops.clear()
    out = other.record_rewards([(i, 1) for i in ids + ids[:10]])
    assert [r.status for r in out] == ["applied"] * 2500 + ["duplicate"] * 10  # type: ignore[union-attr]
    assert calls.ops["get_pending_many"] == 3 and calls.ops["apply_reward_many"] == 3
    assert sum(alphas(observed)) == 2500
