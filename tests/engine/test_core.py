"""The decision core Bandit and Engine share, the one Decision type, the event schema."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tsbandit import Bandit, Decision, RecordedDecision
from tsbandit.core import DecisionCore
from tsbandit.engine import BanditSpec, Engine
from tsbandit.errors import EligibilityError, SerializationError
from tsbandit.events import (
    DecisionEvent,
    ExpiredEvent,
    RewardEvent,
    iter_events,
    parse_event,
)
from tsbandit.policies import BetaBernoulli, EpsilonGreedy, LinearGaussian, ThompsonSampling
from tsbandit.stores import MemoryStore


def test_bandit_and_engine_decide_alike_from_the_same_statistics(clock):
    # same statistics, same rule, same decision stream: the same rankings and propensities
    eng = Engine(MemoryStore(), seed=5, clock=clock)
    eng.create_bandit(BanditSpec(name="ads", arms=["a", "b", "c", "d"],
                                 rule=EpsilonGreedy(0.3)))
    for arm, r in [("a", 1), ("b", 0), ("c", 1), ("c", 1), ("d", 0)]:
        d = eng.decide("ads", eligible=[arm])
        eng.record_reward(d.decision_id, r)
    bandit = eng.to_bandit("ads", seed=9)
    engine = Engine(eng.store, seed=9, clock=clock)
    got = engine.decide_batch("ads", n=6, eligible=["a", "c", "d"], k=2)
    want = bandit.select_batch(n=6, eligible=["a", "c", "d"], k=2, propensity=True)
    assert [d.ranking for d in got] == [tuple(r) for r in want.rankings]
    assert np.allclose([d.position_propensities for d in got], want.propensities)
    assert [d.index for d in got] == [bandit.arm_index(d.arm) for d in got]
    rows = engine.stats("ads")["arms"]
    assert [r["mean"] for r in rows] == [s.mean for s in bandit.posterior_summary()]
    assert [r["alpha"] for r in rows] == [s.alpha for s in bandit.posterior_summary()]


def test_one_eligibility_check():
    core = DecisionCore(["a", "b", "c"], BetaBernoulli(), ThompsonSampling())
    assert core.eligible(None, 3) is None
    assert core.eligible(["c", 0], 2).tolist() == [True, False, True]
    for eligible, k, words in [([], 1, "empty"), (["z"], 1, "unknown"), (["a"], 2, "only 1"),
                               (None, 4, "has 3 arms"), (None, 0, ">= 1"), (None, True, ">= 1")]:
        with pytest.raises(EligibilityError, match=words):
            core.eligible(eligible, k)


def test_the_decision_types():
    d = Bandit(["a", "b"], seed=0).select(propensity=True)
    assert isinstance(d, Decision) and not isinstance(d, RecordedDecision)
    assert set(d.to_dict()) == {"arm", "ranking", "propensity", "position_propensities"}
    eng = Engine(MemoryStore(), seed=0)
    eng.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
    rec = eng.decide("ads", idempotency_key="k1")
    assert isinstance(rec, Decision) and rec.index == ["a", "b"].index(rec.arm)
    wire = rec.to_dict()
    assert list(wire) == ["decision_id", "bandit", "arm", "ranking", "propensity",
                          "position_propensities", "model_version", "timestamp", "deadline"]
    back = RecordedDecision.from_dict(json.loads(json.dumps(wire)), replayed=True)
    assert back.index is None and back.replayed
    assert back.to_dict() == wire
    again = eng.decide("ads", idempotency_key="k1")
    assert again == rec and again.replayed and again.idempotency_key == "k1"


def test_the_engine_writes_every_event_through_the_schema(clock):
    eng = Engine(MemoryStore(), seed=1, clock=clock)
    eng.create_bandit(BanditSpec(name="lin", arms=["a", "b"], reward_window=5,
                                 model=LinearGaussian(n_features=2), default_reward=0.0))
    d1, d2 = eng.decide_batch("lin", [[1.0, 0.0], [0.0, 1.0]], user_ids=["u", None])
    eng.record_reward(d1.decision_id, 2.5)
    retired = d2.arm != d1.arm
    if retired:
        eng.retire_arm("lin", d2.arm)
    clock.advance(10)
    eng.sweep_expired("lin")
    buf = io.StringIO()
    eng.export_events("lin", buf)
    lines = buf.getvalue().splitlines()
    events = list(iter_events(lines))
    assert [type(e) for e in events] == [DecisionEvent, DecisionEvent, RewardEvent,
                                         ExpiredEvent]
    first = events[0]
    assert isinstance(first, DecisionEvent)
    assert (first.decision_id, first.arm, first.context, first.user_id, first.model_version) == (
        d1.decision_id, d1.arm, [1.0, 0.0], "u", d1.model_version)
    assert first.arm_probabilities is None  # contextual: no allocation logged
    reward = events[2]
    assert isinstance(reward, RewardEvent) and reward.reward == 2.5
    assert reward.propensity == d1.propensity and not reward.arm_retired
    expired = events[3]
    assert isinstance(expired, ExpiredEvent) and expired.reward == 0.0
    assert expired.arm_retired == retired
    # what is logged is exactly what the records write back (field names and order)
    for line, event in zip(lines, events, strict=True):
        assert list(json.loads(line).items()) == list(event.to_dict().items())


def test_event_schema_reads_leniently_and_refuses_what_it_cannot_read():
    assert parse_event({"type": "heartbeat"}) is None
    ev = parse_event({"type": "decision", "decision_id": "x", "extra": 1})
    assert isinstance(ev, DecisionEvent) and ev.arm is None and ev.timestamp is None
    counted = parse_event({"type": "expired", "timestamp": 3.0, "arm": "a", "reward": None})
    assert isinstance(counted, ExpiredEvent) and counted.decision_id is None
    for data, words in [({"type": "reward", "decision_id": "x"}, "'reward'"),
                        ({"type": "decision", "decision_id": "x", "format": 2}, "format 2")]:
        with pytest.raises(SerializationError, match=words):
            parse_event(data)
    with pytest.raises(SerializationError, match="line 2: not JSON"):
        list(iter_events(['{"type": "heartbeat"}', "{oops"]))
    with pytest.raises(SerializationError, match="line 1: expected a JSON object"):
        list(iter_events(["[1]"]))
    lines = ["[1]", "{oops", '{"type": "reward"}', '{"type": "reward", "decision_id": "d", '
             '"reward": null}']
    assert [e.decision_id for e in iter_events(lines, skip_malformed=True)] == ["d"]
