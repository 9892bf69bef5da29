"""The engine with several metrics per decision: each metric of a decision applied exactly once,
whenever it arrives; ``given`` metrics refused when their condition is 0 or unknown; per-metric
windows and defaults in the expiry sweep; events per metric; arm changes; on every store."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit.engine import Engine, bandit_spec
from tsbandit.errors import (
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    GivenNotMetError,
    GivenNotObservedError,
    InvalidRewardError,
    UnknownMetricError,
)
from tsbandit.stores import MemoryStore

METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
           "risk": {"model": "beta", "given": "apply"}}


def cards(**kw):
    opts = {"metrics": METRICS, "objective": {"revenue": 1.0},
            "constraints": [{"metric": "risk", "max": 0.05}], "costs": {"A": 0.5},
            "reward_window": 100.0}
    opts.update(kw)
    return bandit_spec("cards", ["A", "B", "C"], **opts)


def arrays(store):
    snap = store.read("cards")
    return snap.version, {k: v.tolist() for k, v in snap.arrays.items()}


def arm_value(store, key, arm):
    snap = store.read("cards")
    return float(np.asarray(snap.arrays[key])[["A", "B", "C"].index(arm)])


def test_each_metric_once_whenever_it_arrives(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(cards())
    d = eng.decide("cards")
    assert d.arm in ("A", "B", "C")
    out = eng.record_reward(d.decision_id, {"apply": 1})
    assert out.status == "applied" and out.metrics == {"apply": "applied"}
    again = eng.record_reward(d.decision_id, {"apply": 1})
    assert again.duplicate and again.metrics == {"apply": "duplicate"}
    clock.advance(30)
    later = eng.record_reward(d.decision_id, {"revenue": 182.5, "risk": 0})
    assert later.metrics == {"revenue": "applied", "risk": "applied"}
    before = arrays(store)
    mixed = eng.record_reward(d.decision_id, {"revenue": 182.5, "risk": 1})
    assert mixed.duplicate and mixed.metrics == {"revenue": "duplicate", "risk": "duplicate"}
    assert arrays(store) == before  # a repeat changes nothing, whatever its value
    assert arm_value(store, "apply__successes", d.arm) == 1.0
    assert arm_value(store, "risk__failures", d.arm) == 1.0
    assert arm_value(store, "risk__successes", d.arm) == 0.0
    assert arm_value(store, "revenue__sum_r", d.arm) == pytest.approx(182.5)
    assert out.to_dict()["metrics"] == {"apply": {"status": "applied", "duplicate": False}}


def test_given_zero_or_unknown_is_refused_and_changes_nothing(store, clock):
    eng = Engine(store, seed=1, clock=clock)
    eng.create_bandit(cards())
    d, e = eng.decide("cards"), eng.decide("cards")
    before = arrays(store)
    with pytest.raises(GivenNotObservedError, match="send 'apply' first"):
        eng.record_reward(d.decision_id, {"revenue": 10.0})
    with pytest.raises(GivenNotMetError):  # 0 in the same request: nothing applied
        eng.record_reward(d.decision_id, {"apply": 0, "risk": 0})
    assert arrays(store) == before
    eng.record_reward(d.decision_id, {"apply": 0})
    with pytest.raises(GivenNotMetError, match="'apply' is 0"):
        eng.record_reward(d.decision_id, {"revenue": 10.0})
    # a repeated apply=1 does not overrule the stored 0
    with pytest.raises(GivenNotMetError):
        eng.record_reward(d.decision_id, {"apply": 1, "risk": 0})
    both = eng.record_reward(e.decision_id, {"risk": 1, "apply": 1})  # given first
    assert both.metrics == {"apply": "applied", "risk": "applied"}


def test_bad_rewards_change_nothing(store, clock):
    eng = Engine(store, seed=2, clock=clock)
    eng.create_bandit(cards())
    d = eng.decide("cards")
    before = arrays(store)
    with pytest.raises(UnknownMetricError, match="clicks"):
        eng.record_reward(d.decision_id, {"clicks": 1})
    with pytest.raises(InvalidRewardError):
        eng.record_reward(d.decision_id, {"apply": 0.5})
    with pytest.raises(InvalidRewardError, match="metric: value"):
        eng.record_reward(d.decision_id, 1)
    with pytest.raises(InvalidRewardError):
        eng.record_reward(d.decision_id, {"apply": 1, "revenue": float("nan")})
    with pytest.raises(DecisionNotFoundError):
        eng.record_reward("cards~" + "0" * 32, {"apply": 1})
    assert arrays(store) == before


def test_each_metric_has_its_window(store, clock):
    eng = Engine(store, seed=3, clock=clock)
    eng.create_bandit(cards(metric_windows={"apply": 10.0, "revenue": 1000.0}))
    d, e = eng.decide("cards"), eng.decide("cards")
    eng.record_reward(d.decision_id, {"apply": 1})
    clock.advance(50)
    with pytest.raises(DecisionExpiredError, match="'apply'"):
        eng.record_reward(e.decision_id, {"apply": 1})
    assert eng.record_reward(d.decision_id, {"revenue": 5.0}).status == "applied"
    clock.advance(100)  # risk keeps the bandit's reward_window (100 s)
    before = arrays(store)
    with pytest.raises(DecisionExpiredError, match="'risk'"):
        eng.record_reward(d.decision_id, {"revenue": 5.0, "risk": 0})
    assert arrays(store) == before  # refused before anything is applied


def test_sweep_applies_each_metric_default_where_observed(store, clock):
    eng = Engine(store, seed=4, clock=clock)
    eng.create_bandit(cards(metric_defaults={"apply": 0, "risk": 0}, reward_window=10.0))
    quiet, applied = eng.decide("cards"), eng.decide("cards")
    eng.record_reward(applied.decision_id, {"apply": 1})
    clock.advance(11)
    res = eng.sweep("cards")
    assert res["cards"].settled == 5  # 3 records of quiet, revenue and risk of applied
    # quiet: apply defaults to 0, so its risk is not observed; applied: risk defaults to 0
    assert arm_value(store, "apply__failures", quiet.arm) == 1.0
    assert arm_value(store, "risk__failures", applied.arm) == 1.0
    total = store.read("cards").arrays
    assert float(np.sum(total["risk__failures"])) == 1.0
    assert float(np.sum(total["revenue__n"])) == 0.0
    expired = [e for e in eng.events("cards") if e["type"] == "expired"]
    by = {(e["decision_id"], e["metric"]): e["reward"] for e in expired}
    assert by == {(quiet.decision_id, "apply"): 0, (quiet.decision_id, "revenue"): None,
                  (quiet.decision_id, "risk"): None,
                  (applied.decision_id, "revenue"): None, (applied.decision_id, "risk"): 0}
    with pytest.raises(DecisionExpiredError):
        eng.record_reward(applied.decision_id, {"risk": 1})


def test_events_name_their_metric(store, clock):
    eng = Engine(store, seed=5, clock=clock)
    eng.create_bandit(cards())
    d = eng.decide("cards")
    eng.record_reward(d.decision_id, {"apply": 1, "revenue": 3.0})
    events = list(eng.events("cards"))
    assert [e["type"] for e in events] == ["decision", "reward", "reward"]
    assert [e.get("metric") for e in events] == [None, "apply", "revenue"]
    assert {e["decision_id"] for e in events} == {d.decision_id}


def test_stats_give_every_metric_and_constraint(store, clock):
    eng = Engine(store, seed=6, clock=clock)
    eng.create_bandit(cards())
    for _ in range(6):
        d = eng.decide("cards")
        eng.record_reward(d.decision_id, {"apply": 1, "revenue": 100.0, "risk": 0})
    out = eng.stats("cards", n_draws=500)
    assert set(out["metrics"]) == {"apply", "revenue", "risk"}
    assert set(out["metrics"]["apply"]) == {"A", "B", "C"}
    assert sum(v["n"] for v in out["metrics"]["apply"].values()) == 6
    assert [c["metric"] for c in out["constraints"]] == ["risk"]
    assert all(0 <= p <= 1 for p in out["constraints"][0]["probability"].values())
    assert set(out["objective"]) == {"A", "B", "C"}


def test_costs_and_baseline_follow_arm_changes(clock):
    eng = Engine(MemoryStore(), seed=7, clock=clock)
    eng.create_bandit(cards(baseline="B", costs={"A": 0.5, "C": 2.0}))
    spec = eng.add_arm("cards", "D")
    assert spec.metrics.costs.tolist() == [0.5, 0.0, 2.0, 0.0]
    spec = eng.retire_arm("cards", "A")
    assert spec.metrics.costs.tolist() == [0.0, 2.0, 0.0]
    assert spec.rule.baseline == 0  # still B
    with pytest.raises(ConfigurationError, match="baseline"):
        eng.retire_arm("cards", "B")
    d = eng.decide("cards")
    assert d.arm in ("B", "C", "D")


def test_configuration_errors():
    with pytest.raises(ConfigurationError, match="metric_defaults"):
        cards(default_reward=0)
    with pytest.raises(UnknownMetricError):
        cards(metric_windows={"clicks": 5})
    with pytest.raises(InvalidRewardError):
        cards(metric_defaults={"apply": 0.5})
    with pytest.raises(ConfigurationError):
        bandit_spec("x", ["a"], model={"kind": "beta"}, metrics={"apply": "beta"})
    spec = cards(metric_windows={"revenue": 500}, metric_defaults={"apply": 0})
    again = type(spec).from_config(spec.to_config())
    assert again.to_config() == spec.to_config()
    assert again.metric_window("revenue") == 500 and again.metric_window("risk") == 100


def test_idempotent_decisions_replay_with_metrics(clock):
    eng = Engine(MemoryStore(), seed=8, clock=clock)
    eng.create_bandit(cards())
    a = eng.decide("cards", idempotency_key="k1")
    b = eng.decide("cards", idempotency_key="k1")
    assert b.replayed and b.decision_id == a.decision_id and b.arm == a.arm


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(
    [{"apply": 1}, {"apply": 0}, {"revenue": 5.0}, {"risk": 1}, {"apply": 1, "risk": 0},
     {"revenue": 2.0, "risk": 0}])), max_size=25))
def test_books_equal_the_first_accepted_value_of_each_metric(steps):
    """Whatever the order of requests and repeats, each (decision, metric) is learned once,
    with the first value accepted, and only where its ``given`` metric was 1."""
    eng = Engine(MemoryStore(), seed=9, clock=lambda: 0.0)
    eng.create_bandit(cards())
    ids = [eng.decide("cards") for _ in range(4)]
    seen: dict[tuple[int, str], float] = {}
    for i, rewards in steps:
        try:
            eng.record_reward(ids[i].decision_id, rewards)
        except (GivenNotMetError, GivenNotObservedError):
            continue
        for m, v in sorted(rewards.items(), key=lambda kv: kv[0] != "apply"):
            seen.setdefault((i, m), v)
    for (i, m) in seen:
        if m != "apply":
            assert seen[(i, "apply")] == 1
    snap = MemoryStore.read(eng.store, "cards").arrays
    assert float(np.sum(snap["apply__successes"] + snap["apply__failures"])) == sum(
        1 for (_, m) in seen if m == "apply")
    assert float(np.sum(snap["revenue__sum_r"])) == pytest.approx(
        sum(v for (_, m), v in seen.items() if m == "revenue"))
    assert float(np.sum(snap["risk__successes"])) == sum(
        v for (_, m), v in seen.items() if m == "risk")


def test_decisions_say_what_the_constrained_rule_applied(clock):
    eng = Engine(MemoryStore(), seed=10, clock=clock)
    eng.create_bandit(cards(baseline="B"))
    one = eng.decide("cards")
    many = eng.decide_batch("cards", n=5)
    assert one.applied in ("constrained", "baseline", "most_likely")
    assert all(d.applied in ("constrained", "baseline", "most_likely") for d in many)
    logged = {e["decision_id"]: e.get("applied") for e in eng.events("cards")
              if e["type"] == "decision"}
    assert logged[one.decision_id] == one.applied
    assert one.to_dict()["applied"] == one.applied
    plain = Engine(MemoryStore(), seed=0, clock=clock)
    plain.create_bandit(bandit_spec("ads", ["a", "b"]))
    assert plain.decide("ads").applied is None
    assert "applied" not in plain.decide("ads").to_dict()
