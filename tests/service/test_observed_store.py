"""The observability store decorator (stores/observed.py) that the service's metrics build on:
an engine built over it reports every store call, and each decision, reward, refusal and
expiry once the wrapped store committed it."""

from __future__ import annotations

from collections import Counter

import pytest

from tsbandit.engine import BanditSpec, Engine, StoreObserver
from tsbandit.errors import BanditNotFoundError, DecisionExpiredError, StoreUnavailableError
from tsbandit.stores.memory import MemoryStore
from tsbandit.stores.observed import ObservedStore


class Recorder(StoreObserver):
    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()
        self.failures: list[tuple[str, str]] = []
        self.events: list[tuple] = []

    def timed(self, operation, seconds):
        assert seconds >= 0
        self.ops[operation] += 1

    def failed(self, operation, error):
        self.failures.append((operation, error))

    def decided(self, bandit, decision_id, payload, event):
        self.events.append(("decided", bandit, decision_id, payload["arm"]))

    def rewarded(self, bandit, decision_id, arm, status, reward, model_version):
        self.events.append(("rewarded", decision_id, arm, status, reward))

    def refused(self, bandit, decision_id, reason):
        self.events.append(("refused", decision_id, reason))

    def settled(self, bandit, decision_id, arm, reward):
        self.events.append(("settled", decision_id, arm, reward))


def test_an_engine_built_with_an_observer_reports_its_store_calls(clock):
    rec = Recorder()
    engine = Engine.open("memory://", observer=rec, seed=0, clock=clock)
    assert isinstance(engine.store, ObservedStore)
    engine.create_bandit(BanditSpec(name="b", arms=["x", "y"], reward_window=10,
                                    default_reward=0))
    d = engine.decide("b")
    batch = engine.decide_batch("b", n=2)
    assert engine.record_reward(d.decision_id, 1).status == "applied"
    assert engine.record_reward(d.decision_id, 1).status == "duplicate"
    clock.advance(11)
    with pytest.raises(DecisionExpiredError):
        engine.record_reward(batch[0].decision_id, 1)
    assert engine.sweep_expired("b") == 2  # through the decorator: each settlement reported
    assert rec.events[:-2] == [
        ("decided", "b", d.decision_id, d.arm),
        *[("decided", "b", x.decision_id, x.arm) for x in batch],
        ("rewarded", d.decision_id, d.arm, "applied", 1.0),
        ("rewarded", d.decision_id, d.arm, "duplicate", 1.0),
        ("refused", batch[0].decision_id, "expired"),
    ]
    assert sorted(rec.events[-2:]) == sorted(("settled", x.decision_id, x.arm, 0)
                                             for x in batch)
    assert rec.ops["put_pending_many"] == 2 and rec.ops["apply_reward"] == 3
    assert rec.ops["claim_expired"] == 1 and rec.ops["settle_expired"] == 2
    assert rec.failures == []


class Flaky(MemoryStore):
    down = False

    def read(self, name):
        if self.down:
            raise StoreUnavailableError("down (test)")
        return super().read(name)


def test_failures_are_reported_and_answers_are_not():
    rec = Recorder()
    inner = Flaky()
    engine = Engine(inner, seed=0).observed(rec)
    engine.create_bandit(BanditSpec(name="b", arms=["x", "y"]))
    with pytest.raises(BanditNotFoundError):
        engine.decide("nope")
    inner.down = True
    with pytest.raises(StoreUnavailableError):
        engine.decide("b")
    inner.read = lambda name: 1 / 0  # an instance attribute of the wrapped store is honoured
    with pytest.raises(ZeroDivisionError):
        engine.store.read("b")
    assert rec.failures == [("read", "unavailable"), ("read", "ZeroDivisionError")]
    assert rec.ops["read"] == 3


def test_the_observed_twin_shares_streams_and_store():
    rec = Recorder()
    engine = Engine(MemoryStore(), seed=0)
    twin = engine.observed(rec)
    engine.create_bandit(BanditSpec(name="b", arms=["x", "y", "z"]))
    reference = Engine(MemoryStore(), seed=0)
    reference.create_bandit(BanditSpec(name="b", arms=["x", "y", "z"]))
    # one engine with two doors: decisions alternate between them on one random stream
    arms = [(twin if i % 2 else engine).decide("b").arm for i in range(20)]
    assert arms == [reference.decide("b").arm for _ in range(20)]
    assert twin.store.inner is engine.store and twin.list_bandits() == ["b"]
    assert len([e for e in rec.events if e[0] == "decided"]) == 10
