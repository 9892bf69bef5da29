"""The engine: decide, exactly-once rewards, expiry, arms, decay, staleness, event log."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from concurrency import in_threads
from exact import first_slot_beta
from tsbandit.engine import BanditSpec, Engine, SweepResult
from tsbandit.errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    EligibilityError,
    InvalidContextError,
    InvalidRewardError,
    LastArmError,
    UnknownArmError,
)
from tsbandit.policies import BetaBernoulli, LinearGaussian, LogisticLaplace
from tsbandit.policies.choice_sample import ChoiceSample


def snapshot(store, name="offers"):
    snap = store.read(name)
    return snap.version, {k: v.tolist() for k, v in snap.arrays.items()}


def beta_spec(**kw):
    return BanditSpec(name="offers", arms=["a", "b", "c"], **kw)


def test_decide_and_reward_exactly_once(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers")
    assert d.arm in ("a", "b", "c") and d.ranking == (d.arm,)
    assert 0 < d.propensity <= 1 and d.decision_id.startswith("offers~")
    out = eng.record_reward(d.decision_id, 1)
    assert out.status == "applied" and not out.duplicate
    again = eng.record_reward(d.decision_id, 1)
    assert again.duplicate
    arms = {r["arm"]: r for r in eng.stats("offers")["arms"]}
    assert arms[d.arm]["alpha"] == 2.0 and arms[d.arm]["pulls"] == 1.0
    assert sum(r["pulls"] for r in arms.values()) == 1.0


def test_errors(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec(reward_window=60))
    with pytest.raises(BanditExistsError):
        eng.create_bandit(beta_spec())
    d = eng.decide("offers")
    before = snapshot(store)
    with pytest.raises(InvalidRewardError):
        eng.record_reward(d.decision_id, 0.5)
    with pytest.raises(InvalidRewardError):
        eng.record_reward(d.decision_id, float("nan"))
    with pytest.raises(DecisionNotFoundError):
        eng.record_reward("offers~" + "0" * 32, 1)
    with pytest.raises(DecisionNotFoundError):
        eng.record_reward("nosuchbandit~" + "0" * 32, 1)
    with pytest.raises(DecisionNotFoundError):
        eng.record_reward("garbage", 1)
    with pytest.raises(EligibilityError):
        eng.decide("offers", eligible=["zzz"])
    with pytest.raises(EligibilityError):
        eng.decide("offers", k=4)
    with pytest.raises(InvalidContextError):
        eng.decide("offers", context=[1.0, 2.0])
    assert snapshot(store) == before  # nothing half-applied
    clock.advance(61)
    with pytest.raises(DecisionExpiredError):
        eng.record_reward(d.decision_id, 1)
    assert snapshot(store) == before


def test_expiry_sweep_applies_default_reward_once(store, clock):
    eng = Engine(store, seed=1, clock=clock)
    eng.create_bandit(beta_spec(reward_window=10, default_reward=0.0))
    ds = [eng.decide("offers") for _ in range(5)]
    eng.record_reward(ds[0].decision_id, 1)
    clock.advance(11)
    assert eng.sweep_expired("offers") == 4
    assert eng.sweep_expired("offers") == 0  # exactly once
    arms = eng.stats("offers")["arms"]
    assert sum(r["pulls"] for r in arms) == 5.0
    assert sum(r["rewards"] for r in arms) == 1.0
    with pytest.raises(DecisionExpiredError):
        eng.record_reward(ds[1].decision_id, 1)


def test_a_bandit_that_cannot_be_swept_does_not_stop_the_others(clock):
    """A configuration stored by an older version with a prior outside today's bounds is
    refused on load; sweeping all bandits still sweeps the others, then names it."""
    from tsbandit.errors import ConfigurationError
    from tsbandit.stores.memory import MemoryStore

    store = MemoryStore()
    eng = Engine(store, seed=0, clock=clock)
    bad = beta_spec(reward_window=1, default_reward=0.0).to_config()
    bad["name"] = "legacy"
    bad["model"] = {**bad["model"], "alpha0": 1e308}
    store.create_bandit("legacy", bad, {"successes": np.zeros(3), "failures": np.zeros(3)})
    eng.create_bandit(beta_spec(reward_window=1, default_reward=0.0))
    eng.decide_batch("offers", n=4)
    clock.advance(2)
    with pytest.raises(ConfigurationError, match=r"skipped 1 bandit\(s\) \['legacy'\]"):
        eng.sweep()
    assert eng.sweep("offers") == {"offers": SweepResult(0, 0, 0)}  # settled by the first
    assert sum(r["pulls"] for r in eng.stats("offers")["arms"]) == 4.0


def test_sweep_settles_purges_and_trims_every_store(backend, clock):
    store = backend.open(retention=100.0, events_maxlen=30)
    eng = Engine(store, seed=1, clock=clock)
    eng.create_bandit(beta_spec(reward_window=10, default_reward=0.0))
    ds = eng.decide_batch("offers", n=25)
    rewarded = ds[0].decision_id
    assert eng.record_reward(rewarded, 1).status == "applied"
    clock.advance(11)
    # 24 expired: settled in rounds of 10 (10, 10, 4); nothing is past its retention yet;
    # 50 events (25 decisions, 1 reward, 24 expiries) trimmed to the newest 30
    out = eng.sweep("offers", limit=10)["offers"]
    assert (out.settled, out.purged) == (24, 0)
    assert 0 <= out.trimmed <= 20  # Memory trims at each append, Redis about (~) at each one
    kinds = [e["type"] for e in store.iter_events("offers")]
    assert kinds == ["decision"] * 5 + ["reward"] + ["expired"] * 24  # the newest 30
    assert eng.sweep() == {"offers": SweepResult(0, 0, 0)}
    assert sum(r["pulls"] for r in eng.stats("offers")["arms"]) == 25.0
    # within the retention a repeat is still a duplicate
    assert eng.record_reward(rewarded, 1).duplicate
    clock.advance(100)  # past deadline + retention: all 25 consumed decisions go
    assert eng.sweep(limit=10) == {"offers": SweepResult(0, 25, 0)}
    with pytest.raises(DecisionNotFoundError):
        eng.record_reward(rewarded, 1)  # purged: not found (404 in the service)
    with pytest.raises(DecisionNotFoundError):
        eng.pending(ds[1].decision_id)
    # the statistics are untouched by purging
    assert sum(r["pulls"] for r in eng.stats("offers")["arms"]) == 25.0
    # purge off: settles only
    d = eng.decide("offers")
    eng.record_reward(d.decision_id, 0)
    clock.advance(1000)
    assert eng.sweep(purge=False) == {"offers": SweepResult(0, 0, 0)}
    assert eng.pending(d.decision_id)["status"] == "rewarded"
    with pytest.raises(BanditNotFoundError):
        eng.sweep("nope")


def test_workers_share_the_bandit(store, clock):
    w1, w2 = Engine(store, seed=1, clock=clock), Engine(store, seed=2, clock=clock)
    w1.create_bandit(beta_spec())
    d = w1.decide("offers")
    w2.record_reward(d.decision_id, 1)  # another worker can reward it
    assert w1.stats("offers")["model_version"] == w2.stats("offers")["model_version"]
    assert w2.get_bandit("offers").arms == ("a", "b", "c")


def test_ranking_eligible_and_batch(store, clock):
    eng = Engine(store, seed=3, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers", k=2, eligible=["a", "c"], user_id="u1")
    assert set(d.ranking) == {"a", "c"} and len(d.position_propensities) == 2
    batch = eng.decide_batch("offers", n=20, k=1)
    assert len(batch) == 20 and len({b.decision_id for b in batch}) == 20
    assert eng.pending(d.decision_id)["user_id"] == "u1"


def test_contextual_bandit_learns(store, clock):
    eng = Engine(store, seed=4, clock=clock)
    spec = BanditSpec(name="ctx", arms=["x", "y"],
                      model=LinearGaussian(n_features=2, unknown_noise=True))
    eng.create_bandit(spec)
    rng = np.random.default_rng(0)
    for _ in range(150):
        ctx = [1.0, float(rng.random())]
        d = eng.decide("ctx", ctx)
        eng.record_reward(d.decision_id, (0.8 if d.arm == "x" else 0.2)
                          + 0.05 * rng.standard_normal())
    s = {r["arm"]: r for r in eng.stats("ctx", [1.0, 0.5])["arms"]}
    assert s["x"]["mean"] == pytest.approx(0.8, abs=0.05)
    assert s["x"]["prob_best"] > 0.95
    with pytest.raises(InvalidContextError):
        eng.decide("ctx", [1.0])


def test_logistic_bandit_through_the_store(store, clock):
    eng = Engine(store, seed=5, clock=clock)
    eng.create_bandit(BanditSpec(name="lg", arms=["x", "y"],
                                 model=LogisticLaplace(n_features=2)))
    for _ in range(40):
        d = eng.decide("lg", [1.0, 0.5])
        eng.record_reward(d.decision_id, 1 if d.arm == "x" else 0)
    s = {r["arm"]: r for r in eng.stats("lg", [1.0, 0.5])["arms"]}
    assert s["x"]["mean"] > s["y"]["mean"]
    with pytest.raises(ConfigurationError):
        BanditSpec(name="lg2", arms=["x"], model=LogisticLaplace(n_features=2), half_life=60)


def test_arm_management(store, clock):
    eng = Engine(store, seed=6, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers", eligible=["b"])
    eng.add_arm("offers", "d")
    assert eng.get_bandit("offers").arms == ("a", "b", "c", "d")
    eng.retire_arm("offers", "a")
    assert eng.get_bandit("offers").arms == ("b", "c", "d")
    # a decision made before the change still lands on the right arm
    eng.record_reward(d.decision_id, 1)
    arms = {r["arm"]: r for r in eng.stats("offers")["arms"]}
    assert arms["b"]["alpha"] == 2.0 and arms["d"]["alpha"] == 1.0
    with pytest.raises(UnknownArmError):
        eng.retire_arm("offers", "a")
    eng.retire_arm("offers", "b")
    eng.retire_arm("offers", "c")
    with pytest.raises(LastArmError):
        eng.retire_arm("offers", "d")


def test_reward_for_retired_arm_is_consumed_not_learned(store, clock):
    eng = Engine(store, seed=7, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers", eligible=["a"])
    eng.retire_arm("offers", "a")
    assert eng.record_reward(d.decision_id, 1).status == "arm_retired"
    assert eng.record_reward(d.decision_id, 1).duplicate
    assert sum(r["pulls"] for r in eng.stats("offers")["arms"]) == 0.0
    rewards = [e for e in eng.store.iter_events("offers") if e["type"] == "reward"]
    assert [e.get("arm_retired") for e in rewards] == [True]


def test_re_added_arm_does_not_learn_its_old_incarnations_rewards(store, clock):
    eng = Engine(store, seed=7, clock=clock)
    eng.create_bandit(beta_spec(reward_window=60, default_reward=1))
    old = eng.decide("offers", eligible=["b"])
    silent = eng.decide("offers", eligible=["b"])  # never rewarded: the sweep settles it
    eng.retire_arm("offers", "b")
    eng.add_arm("offers", "b")  # a new arm of the same name, at another position
    assert eng.get_bandit("offers").arms == ("a", "c", "b")
    new = eng.decide("offers", eligible=["b"])
    assert eng.record_reward(old.decision_id, 1).status == "arm_retired"
    assert eng.record_reward(old.decision_id, 1).status == "duplicate"
    assert eng.pending(old.decision_id)["status"] == "rewarded"  # consumed once
    assert eng.record_reward(new.decision_id, 0).status == "applied"
    b = next(r for r in eng.stats("offers")["arms"] if r["arm"] == "b")
    assert (b["alpha"], b["beta"]) == (1.0, 2.0)  # only the new incarnation's reward
    clock.advance(61)
    assert eng.sweep_expired("offers") == 1  # the silent one: consumed, no default reward
    assert eng.pending(silent.decision_id)["status"] == "expired"
    b = next(r for r in eng.stats("offers")["arms"] if r["arm"] == "b")
    assert (b["alpha"], b["beta"]) == (1.0, 2.0)
    expired = [e for e in eng.store.iter_events("offers") if e["type"] == "expired"]
    assert [(e["decision_id"], e.get("arm_retired")) for e in expired] == [
        (silent.decision_id, True)]
    # arm_since survives another arm change, and a decision for the new b still learns
    eng.add_arm("offers", "d")
    start = store.read("offers").config_version - 3  # the version it was created at
    assert eng.get_bandit("offers").arm_since == {"b": start + 2, "d": start + 3}
    again = eng.decide("offers", eligible=["b"])
    clock.advance(1)
    assert eng.record_reward(again.decision_id, 1).status == "applied"


def test_half_life_decay(store, clock):
    eng = Engine(store, seed=8, clock=clock)
    eng.create_bandit(beta_spec(half_life=100.0))
    for _ in range(4):
        d = eng.decide("offers", eligible=["a"])
        eng.record_reward(d.decision_id, 1)
    clock.advance(100.0)
    a = next(r for r in eng.stats("offers")["arms"] if r["arm"] == "a")
    assert a["pulls"] == pytest.approx(2.0)  # four observations, one half-life ago
    d = eng.decide("offers", eligible=["a"])
    eng.record_reward(d.decision_id, 0)
    clock.advance(100.0)
    a = next(r for r in eng.stats("offers")["arms"] if r["arm"] == "a")
    assert a["pulls"] == pytest.approx((2.0 + 1.0) / 2)
    assert a["rewards"] == pytest.approx(1.0)


def test_bounded_staleness_saves_reads(store, clock, trusted_cache):
    calls = {"read": 0}
    original = store.read

    def counting_read(name):
        calls["read"] += 1
        return original(name)

    store.read = counting_read  # type: ignore[method-assign]
    eng = Engine(store, seed=9, clock=clock, max_staleness_ms=60_000)
    eng.create_bandit(beta_spec())
    for _ in range(10):
        eng.decide("offers")
    assert calls["read"] == 1
    fresh = Engine(store, seed=9, clock=clock)
    for _ in range(10):
        fresh.decide("offers")
    # staleness 0: one read, then every write verifies the cached version instead of a read
    assert calls["read"] == 2


def test_decisions_are_drawn_from_the_version_they_are_recorded_at(store, clock,
                                                                    trusted_cache):
    """With staleness 0 a worker reads once; a write that finds the bandit moved (another
    worker's reward) records nothing and the batch is drawn again from the snapshot the store
    answered -- every decision carries the version it was recorded at, with no extra read."""
    reads = {"n": 0}
    original = store.read

    def counting_read(name):
        reads["n"] += 1
        return original(name)

    eng, other = Engine(store, seed=30, clock=clock), Engine(store, seed=31, clock=clock)
    eng.create_bandit(beta_spec())
    store.read = counting_read  # type: ignore[method-assign]
    try:
        first = eng.decide("offers")
        assert (first.model_version, reads["n"]) == (0, 1)
        for version in (1, 2, 3):
            other.record_reward(other.decide("offers").decision_id, 1)
            n_reads = reads["n"]
            batch = eng.decide_batch("offers", n=3)
            assert [d.model_version for d in batch] == [version] * 3
            assert reads["n"] == n_reads  # the moved write brought the snapshot
            d = eng.decide("offers")
            assert d.model_version == version
        arms = {r["arm"]: r for r in eng.stats("offers")["arms"]}
        assert sum(r["alpha"] - 1 for r in arms.values()) == 3  # the three rewards, once each
        pending = [store.get_pending("offers", x.decision_id) for x in [first, *batch, d]]
        assert all(p.status == "pending" for p in pending)  # each recorded exactly once
    finally:
        store.read = original  # type: ignore[method-assign]


def test_a_cached_layout_that_refuses_a_request_is_read_again(store, clock):
    """Another worker added an arm: a request naming it is not refused by the stale cached
    configuration -- the engine reads the bandit again and decides."""
    w1, w2 = Engine(store, seed=32, clock=clock), Engine(store, seed=33, clock=clock)
    w1.create_bandit(beta_spec())
    w1.decide("offers")  # cached: arms a, b, c
    w2.add_arm("offers", "d")
    d = w1.decide("offers", eligible=["d"])
    assert d.arm == "d" and d.propensity == 1.0
    with pytest.raises(EligibilityError):
        w1.decide("offers", eligible=["zz"])


def test_event_log_export(store, clock):
    eng = Engine(store, seed=10, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers")
    eng.record_reward(d.decision_id, 1)
    buf = io.StringIO()
    assert eng.export_events("offers", buf) == 2
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [e["type"] for e in events] == ["decision", "reward"]
    assert events[0]["decision_id"] == events[1]["decision_id"] == d.decision_id
    assert events[0]["propensity"] == pytest.approx(d.propensity)
    assert events[1]["reward"] == 1.0 and events[1]["arm"] == d.arm


def test_thompson_allocation_through_the_engine(store, clock):
    """End to end, the engine's bandit shifts traffic to the best arm."""
    eng = Engine(store, seed=11, clock=clock)
    eng.create_bandit(BanditSpec(name="ts", arms=["lo", "hi"], model=BetaBernoulli()))
    rng = np.random.default_rng(3)
    late_hi = 0
    for t in range(300):
        d = eng.decide("ts")
        p = 0.7 if d.arm == "hi" else 0.3
        eng.record_reward(d.decision_id, int(rng.random() < p))
        late_hi += t >= 150 and d.arm == "hi"
    assert late_hi / 150 > 0.75  # uniform play: 0.5, sd 0.04


def test_propensities_once_per_model_version_and_right(store, clock):
    """Context-free propensities are estimated once per model version (and eligible set) and
    match the exact Thompson-sampling probabilities within 4 Monte-Carlo standard errors."""
    eng = Engine(store, seed=12, clock=clock)
    eng.create_bandit(beta_spec())
    for arm, rewards in (("a", [1, 1, 1, 0]), ("b", [0, 0, 1]), ("c", [1, 0])):
        for r in rewards:
            eng.record_reward(eng.decide("offers", eligible=[arm]).decision_id, r)
    calls = {"draws": 0, "reweights": 0}
    rule = eng.get_bandit("offers").rule
    original, reweighted = type(rule).choice_sample, ChoiceSample.reweighted

    def counting(self, *args, **kwargs):
        calls["draws"] += 1
        return original(self, *args, **kwargs)

    def counting_reweights(self, *args, **kwargs):
        calls["reweights"] += 1
        return reweighted(self, *args, **kwargs)

    type(rule).choice_sample = counting  # type: ignore[method-assign]
    ChoiceSample.reweighted = counting_reweights  # type: ignore[method-assign]
    try:
        decisions = [eng.decide("offers") for _ in range(60)]
        assert calls == {"draws": 1, "reweights": 0}  # one estimate for this version's 60
        by_arm = {}
        for d in decisions:
            assert by_arm.setdefault(d.arm, d.propensity) == d.propensity
        s = {r["arm"]: r for r in eng.stats("offers")["arms"]}
        exact = first_slot_beta(np.array([s[a]["alpha"] for a in "abc"]),
                                  np.array([s[a]["beta"] for a in "abc"]))
        n = eng.get_bandit("offers").propensity_draws
        for arm, p in by_arm.items():
            q = exact["abc".index(arm)]
            assert abs(p - q) <= 4 * np.sqrt(q * (1 - q) / n), (arm, p, q)
        eng.decide("offers", eligible=["b", "c"])  # another eligible set: its own estimate
        assert calls == {"draws": 2, "reweights": 0}
        eng.record_reward(decisions[0].decision_id, 1)  # a new model version: the draws are
        eng.decide("offers")  # tried first, and with 10 observations one success moves the
        # posterior too far for them (effective size < 90%): drawn afresh
        assert calls == {"draws": 3, "reweights": 1}
    finally:
        type(rule).choice_sample = original  # type: ignore[method-assign]
        ChoiceSample.reweighted = reweighted  # type: ignore[method-assign]


def test_propensities_of_a_later_version_reweight_the_earlier_draws(store, clock):
    """With thousands of observations a reward barely moves the posterior: the next version's
    propensities reuse the earlier draws, importance-weighted (no new draws), and still match
    the exact Thompson probabilities within 4 standard errors of 90% of the draws; the logged
    allocation sums to 1. Once the draws no longer cover the posterior, fresh ones are drawn."""
    eng = Engine(store, seed=21, clock=clock)
    eng.create_bandit(beta_spec())
    counts = {"a": (60, 540), "b": (75, 525), "c": (66, 534)}
    for arm, (wins, losses) in counts.items():
        for r in [1] * wins + [0] * losses:
            eng.record_reward(eng.decide("offers", eligible=[arm]).decision_id, r)
    eng.decide("offers")
    draws = {"n": 0}
    rule = eng.get_bandit("offers").rule
    original = type(rule).choice_sample

    def counting(self, model, posterior, stats, rng, eligible, n_draws):
        draws["n"] += eligible is None  # every arm eligible (the decisions counted here)
        return original(self, model, posterior, stats, rng, eligible, n_draws)

    type(rule).choice_sample = counting  # type: ignore[method-assign]
    n = eng.get_bandit("offers").propensity_draws
    try:
        for reward in (0, 0, 1):
            eng.record_reward(eng.decide("offers", eligible=["b"]).decision_id, reward)
            decisions = [eng.decide("offers") for _ in range(30)]
            s = {r["arm"]: r for r in eng.stats("offers")["arms"]}
            exact = first_slot_beta(np.array([s[a]["alpha"] for a in "abc"]),
                                      np.array([s[a]["beta"] for a in "abc"]))
            for d in decisions:
                q = exact["abc".index(d.arm)]
                assert abs(d.propensity - q) <= 4 * np.sqrt(q * (1 - q) / (0.9 * n))
        assert draws["n"] == 0  # three versions, not one new draw
        # a posterior far from the draws' (twenty more successes on c): drawn afresh
        for _ in range(20):
            eng.record_reward(eng.decide("offers", eligible=["c"]).decision_id, 1)
        eng.decide("offers")
        assert draws["n"] == 1
    finally:
        type(rule).choice_sample = original  # type: ignore[method-assign]


def test_reward_with_a_stale_cached_layout_lands_on_the_right_arm(store, clock):
    """Worker 1 decides; worker 2 changes the arms; worker 1's reward (computed from its cached
    layout) is refused by the version guard and recomputed, never applied to the wrong arm."""
    w1, w2 = Engine(store, seed=13, clock=clock), Engine(store, seed=14, clock=clock)
    w1.create_bandit(beta_spec())
    d = w1.decide("offers", eligible=["b"])
    w2.retire_arm("offers", "a")
    w2.add_arm("offers", "d")
    assert w1.record_reward(d.decision_id, 1).status == "applied"
    arms = {r["arm"]: r for r in w2.stats("offers")["arms"]}
    assert list(arms) == ["b", "c", "d"]
    assert arms["b"]["alpha"] == 2.0 and arms["c"]["alpha"] == 1.0 and arms["d"]["alpha"] == 1.0
    assert sum(r["pulls"] for r in arms.values()) == 1.0
    # the bandit deleted by another worker: the cached state does not resurrect it
    d2 = w1.decide("offers")
    w2.delete_bandit("offers")
    with pytest.raises(DecisionNotFoundError):
        w1.record_reward(d2.decision_id, 1)


def test_a_bandit_created_anew_under_its_name_is_not_taken_for_the_old_one(
        store, clock, trusted_cache):
    """Another worker deletes the bandit and creates it again with other arms. The engine
    starts every bandit at a configuration version of its own, so the writes a worker guards
    by the version it cached -- decisions, rewards -- do not pass on the new one: its
    decisions are drawn from the new arms at once, its rewards land on their own arms (here
    with the cache trusted unread for an hour)."""
    w1, w2 = Engine(store, seed=21, clock=clock), Engine(store, seed=22, clock=clock)
    w1.create_bandit(beta_spec())
    assert w1.decide("offers").arm in {"a", "b", "c"}
    old = store.read("offers").config_version
    w2.delete_bandit("offers")
    w2.create_bandit(BanditSpec(name="offers", arms=["x", "y"]))
    assert store.read("offers").config_version != old  # equal with probability 2**-31
    got = w1.decide_batch("offers", n=20)  # from its cache: refused, drawn from the answer
    assert {d.arm for d in got} <= {"x", "y"}
    assert [w2.record_reward(d.decision_id, 1).status for d in got] == ["applied"] * 20
    assert sum(r["pulls"] for r in w2.stats("offers")["arms"]) == 20
    # the arms of the new one in another order: a reward w1 computes lands on its own arm
    w1.create_bandit(BanditSpec(name="third", arms=["a", "b", "c"]))
    w1.record_reward(w1.decide("third", eligible=["b"]).decision_id, 0)  # cached: a b c
    w2.delete_bandit("third")
    w2.create_bandit(BanditSpec(name="third", arms=["c", "b", "a"]))
    d = w2.decide("third", eligible=["a"])
    assert w1.record_reward(d.decision_id, 1).status == "applied"
    arms = {r["arm"]: (r["pulls"], r["alpha"]) for r in w2.stats("third")["arms"]}
    assert arms == {"c": (0.0, 1.0), "b": (0.0, 1.0), "a": (1.0, 2.0)}


def test_a_bandit_of_configuration_version_0_created_anew_is_seen_within_the_trust(
        store, clock, monkeypatch):
    """Bandits created at configuration version 0 (by a store's own ``create_bandit``, or an
    engine before the versions were drawn): the old one and a new one under its name are at
    the very (version, configuration version), which no version check tells apart. A read
    does (their configurations differ), and a cached state is read again once it is
    UNREAD_TRUST_SECONDS old, for decisions and rewards alike."""
    from tsbandit.engine import state as state_module

    def create_at_0(arms: list[str]) -> None:
        spec = BanditSpec(name="offers", arms=arms)
        store.create_bandit("offers", spec.to_config(), dict(spec.model.init_stats(len(arms))))

    w1 = Engine(store, seed=23, clock=clock)
    create_at_0(["a", "b", "c"])
    assert w1.decide("offers").arm in {"a", "b", "c"}
    assert [r["arm"] for r in w1.stats("offers")["arms"]] == ["a", "b", "c"]
    store.delete_bandit("offers")
    create_at_0(["x", "y"])
    assert [r["arm"] for r in w1.stats("offers")["arms"]] == ["x", "y"]  # a read: the new one
    w1.decide("offers")  # cached again
    store.delete_bandit("offers")
    create_at_0(["c", "b", "a"])
    monkeypatch.setattr(state_module, "UNREAD_TRUST_SECONDS", 0.0)  # the trust has run out
    got = w1.decide_batch("offers", n=20, eligible=["a"])
    assert {d.arm for d in got} == {"a"}
    assert [w1.record_reward(d.decision_id, 1).status for d in got] == ["applied"] * 20
    arms = {r["arm"]: r["pulls"] for r in w1.stats("offers")["arms"]}
    assert arms == {"c": 0.0, "b": 0.0, "a": 20.0}


def test_batch_records_every_decision_in_one_write(store, clock):
    calls = {"one": 0, "many": []}
    one, many = store.put_pending, store.put_pending_many

    def counting_one(*a, **kw):
        calls["one"] += 1
        return one(*a, **kw)

    def counting_many(name, items, **kw):
        calls["many"].append(len(items))
        return many(name, items, **kw)

    store.put_pending = counting_one  # type: ignore[method-assign]
    store.put_pending_many = counting_many  # type: ignore[method-assign]
    eng = Engine(store, seed=12, clock=clock)
    eng.create_bandit(beta_spec())
    batch = eng.decide_batch("offers", n=25, k=2, user_ids=[f"u{i}" for i in range(25)])
    assert calls == {"one": 0, "many": [25]}
    events = [e for e in store.iter_events("offers") if e["type"] == "decision"]
    assert [e["decision_id"] for e in events] == [b.decision_id for b in batch]
    for i, b in enumerate(batch):
        p = eng.pending(b.decision_id)
        assert (p["status"], p["user_id"], p["ranking"]) == ("pending", f"u{i}", list(b.ranking))
    for b in batch:
        assert eng.record_reward(b.decision_id, 1).status == "applied"
        assert eng.record_reward(b.decision_id, 1).duplicate
    assert sum(r["pulls"] for r in eng.stats("offers")["arms"]) == 25.0


def test_batch_write_failure_records_nothing(store, clock):
    from tsbandit.errors import StoreUnavailableError

    eng = Engine(store, seed=13, clock=clock)
    eng.create_bandit(beta_spec())

    def down(name, items, **kw):
        raise StoreUnavailableError("store down")

    many = store.put_pending_many
    store.put_pending_many = down  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError):
        eng.decide_batch("offers", n=5)
    store.put_pending_many = many  # type: ignore[method-assign]
    assert list(store.iter_events("offers")) == []
    assert len(eng.decide_batch("offers", n=5)) == 5


def test_decision_events_log_every_arms_probability(store, clock):
    """A context-free single decision's event carries the first-slot probability of every arm
    (unfloored, summing to 1; the chosen arm's floored value is its propensity) -- what the
    report's K-arm SRM check needs. Top-k and contextual decisions carry none."""
    eng = Engine(store, seed=5, clock=clock)
    eng.create_bandit(beta_spec())
    d = eng.decide("offers", eligible=["a", "b"])
    rk = eng.decide("offers", k=2)
    eng.create_bandit(BanditSpec(name="lin", arms=["a", "b"],
                                 model=LinearGaussian(n_features=2)))
    cx = eng.decide("lin", context=[1.0, 0.5])
    many = [f"arm{i}" for i in range(65)]
    eng.create_bandit(BanditSpec(name="wide", arms=many))
    wide = eng.decide("wide")
    events = {e["decision_id"]: e for name in ("offers", "lin", "wide")
              for e in eng.store.iter_events(name) if e["type"] == "decision"}
    alloc = events[d.decision_id]["arm_probabilities"]
    assert set(alloc) <= {"a", "b"} and sum(alloc.values()) == pytest.approx(1.0)
    assert d.propensity == pytest.approx(max(alloc[d.arm], 1e-3))
    for other in (rk, cx, wide):
        assert "arm_probabilities" not in events[other.decision_id]


@pytest.mark.parametrize("contextual", [False, True], ids=["beta", "linear"])
def test_single_decisions_choose_as_the_vectorized_rule_does(contextual):
    """``decide`` for one user over every arm takes the rule's single-decision path (compiled
    kernels with tsbandit[fast]); it must choose what ``rule.choose`` chooses from the same
    generator: the engine's decision stream is the first of ``make_generators(seed)``."""
    from tsbandit.bandit import make_generators
    from tsbandit.stores import MemoryStore

    model = LinearGaussian(n_features=3) if contextual else BetaBernoulli()
    spec = BanditSpec(name="one", arms=["a", "b", "c", "d"], model=model)
    store = MemoryStore()
    teacher = Engine(store, seed=99)  # a posterior that is not the prior, made by another engine
    teacher.create_bandit(spec)
    users = np.random.default_rng(0)
    for _ in range(40):
        x = users.normal(size=3) if contextual else None
        d = teacher.decide("one", context=x)
        teacher.record_reward(d.decision_id, float(users.random() < 0.3))
    eng = Engine(store, seed=11)
    spec_now, stats, _ = eng.statistics("one")
    post = model.posterior(stats)
    rng = make_generators(11)[0]
    xs = users.normal(size=(200, 3))
    got = [eng.decide("one", context=x if contextual else None).arm for x in xs]
    want = [spec.arms[int(spec_now.rule.choose(model, post, stats, rng,
                                               x[None, :] if contextual else None,
                                               size=None if contextual else 1)[0, 0])]
            for x in xs]
    assert got == want


@pytest.mark.parametrize(("model", "context", "reward"), [
    ({"kind": "gaussian"}, None, 1e308),
    ({"kind": "gaussian"}, None, -1e200),
    ({"kind": "linear", "n_features": 2}, [1e6, 1.0], 1e250),
])
def test_reward_whose_statistics_overflow_is_an_invalid_reward(store, clock, model, context,
                                                                reward):
    """Refused (by the model's bound on rewards, |r| <= 1e12, before the engine's and the
    store's overflow checks), nothing written, the decision still pending."""
    from tsbandit.policies.registry import model_from_config

    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(BanditSpec("offers", ["a", "b"], model=model_from_config(model)))
    d = eng.decide("offers", context)
    before = snapshot(store)
    with pytest.raises(InvalidRewardError, match="reward"):
        eng.record_reward(d.decision_id, reward)
    assert snapshot(store) == before
    assert eng.pending(d.decision_id)["status"] == "pending"
    assert eng.record_reward(d.decision_id, 1.0).status == "applied"


# ----- idempotent decisions ------------------------------------------------------------------
def decision_events(store, name="offers"):
    return [e for e in store.iter_events(name) if e.get("type") == "decision"]


def test_idempotency_key_replays_the_same_decision(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec())
    first = eng.decide("offers", eligible=["a", "c"], user_id="u1", idempotency_key="order-42")
    assert not first.replayed
    clock.advance(5.0)
    for _ in range(3):
        again = eng.decide("offers", eligible=["c", "a"], user_id="u1",
                           idempotency_key="order-42")
        assert again.replayed
        assert again == first and again.to_dict() == first.to_dict()
    assert [e["decision_id"] for e in decision_events(store)] == [first.decision_id]
    # another key, or none, is another decision
    other = eng.decide("offers", eligible=["a", "c"], user_id="u1", idempotency_key="order-43")
    assert other.decision_id != first.decision_id and not other.replayed
    assert eng.decide("offers").decision_id not in (first.decision_id, other.decision_id)
    # a rewarded decision still replays (and the reward is not applied twice)
    assert eng.record_reward(first.decision_id, 1).status == "applied"
    assert eng.decide("offers", eligible=["a", "c"], user_id="u1",
                      idempotency_key="order-42") == first
    assert eng.record_reward(first.decision_id, 1).status == "duplicate"


def test_idempotency_key_is_per_bandit(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec())
    eng.create_bandit(BanditSpec(name="other", arms=["x", "y"]))
    a = eng.decide("offers", idempotency_key="k")
    b = eng.decide("other", idempotency_key="k")
    assert a.bandit == "offers" and b.bandit == "other" and not b.replayed


@pytest.mark.parametrize("change", [
    {"eligible": ["a"]}, {"k": 2}, {"user_id": "u2"}, {"user_id": None},
])
def test_idempotency_key_reused_for_another_request_is_a_conflict(store, clock, change):
    from tsbandit.errors import IdempotencyConflictError

    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec())
    base = {"eligible": ["a", "b"], "k": 1, "user_id": "u1"}
    first = eng.decide("offers", **base, idempotency_key="key-1")
    before = snapshot(store), len(list(store.iter_events("offers")))
    with pytest.raises(IdempotencyConflictError, match="key-1"):
        eng.decide("offers", **{**base, **change}, idempotency_key="key-1")
    assert (snapshot(store), len(list(store.iter_events("offers")))) == before
    assert eng.decide("offers", **base, idempotency_key="key-1") == first


def test_idempotency_key_contextual_and_batch(store, clock):
    from tsbandit.errors import IdempotencyConflictError

    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(BanditSpec("offers", ["a", "b", "c"], model=LinearGaussian(n_features=2)))
    ctx = [[0.5, 1.0], [-1.0, 0.25], [0.0, 0.0]]
    first = eng.decide_batch("offers", ctx, user_ids=["u1", None, "u3"], idempotency_key="b-1")
    assert len({d.decision_id for d in first}) == 3
    again = eng.decide_batch("offers", ctx, user_ids=["u1", None, "u3"], idempotency_key="b-1")
    assert again == first and all(d.replayed for d in again)
    assert len(decision_events(store)) == 3
    with pytest.raises(IdempotencyConflictError):  # another context
        eng.decide_batch("offers", [[0.5, 1.0], [-1.0, 0.25], [0.0, 1e-9]],
                         user_ids=["u1", None, "u3"], idempotency_key="b-1")
    with pytest.raises(IdempotencyConflictError):  # the first of the batch alone
        eng.decide("offers", ctx[0], user_id="u1", idempotency_key="b-1")
    one = eng.decide("offers", ctx[0], idempotency_key="single")
    assert eng.decide("offers", [0.5, 1.0], idempotency_key="single") == one
    assert len(decision_events(store)) == 4


def test_idempotency_key_across_workers(store, clock):
    """Two engines (two workers, two seeds) over one store answer the key's one decision."""
    workers = [Engine(store, seed=s, clock=clock) for s in (1, 2)]
    workers[0].create_bandit(BanditSpec("offers", [f"arm{i}" for i in range(20)]))
    first = workers[0].decide("offers", idempotency_key="req-7")
    assert workers[1].decide("offers", idempotency_key="req-7") == first
    assert len(decision_events(store)) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "é", "tab\there", 7])
def test_bad_idempotency_keys(store, clock, key):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec())
    with pytest.raises(ConfigurationError, match="idempotency key"):
        eng.decide("offers", idempotency_key=key)
    assert decision_events(store) == []


def test_concurrent_retries_record_one_decision(shared_backend, clock):
    """Threads, each with its own engine and client (workers), send the same key at once."""
    Engine(shared_backend.open(), seed=0, clock=clock).create_bandit(beta_spec())
    n = 6
    engines = [Engine(shared_backend.open(), seed=i, clock=clock) for i in range(n)]
    results = in_threads(lambda i: engines[i].decide("offers", idempotency_key="same-key"), n)
    assert all(r == results[0] for r in results)
    assert sum(not r.replayed for r in results) == 1
    assert len(decision_events(engines[0].store)) == 1


def test_concurrent_workers_record_every_decision_once_and_never_ahead(shared_backend, clock):
    """Four workers (threads, each its own engine and client) decide and reward at once, with
    no reads between decisions: every decision is recorded once, none at a version the log
    has not reached (a reward's event and its version step are one atomic write, as are a
    batch's decisions and the version check), and the books are exact."""
    Engine(shared_backend.open(), seed=0, clock=clock).create_bandit(beta_spec())
    n, rounds = 4, 25
    engines = [Engine(shared_backend.open(), seed=40 + i, clock=clock) for i in range(n)]

    def work(i: int) -> None:
        for r in range(rounds):
            batch = engines[i].decide_batch("offers", n=2)
            engines[i].record_reward(batch[0].decision_id, (i + r) % 2)

    in_threads(work, n)
    rewards, ids = 0, set()
    for event in engines[0].store.iter_events("offers"):
        if event.get("type") == "reward":
            rewards += 1
        elif event.get("type") == "decision":
            ids.add(event["decision_id"])
            assert 0 <= event["model_version"] <= rewards, event
    assert (len(ids), rewards) == (2 * n * rounds, n * rounds)
    arms = engines[0].stats("offers")["arms"]
    assert sum(a["alpha"] + a["beta"] - 2 for a in arms) == n * rounds
    assert sum(a["alpha"] - 1 for a in arms) == sum((i + r) % 2 for i in range(n)
                                                    for r in range(rounds))


def test_a_bandit_that_keeps_moving_is_recorded_from_the_last_answer(store, clock,
                                                                     trusted_cache):
    """Another worker's reward lands before each verified write: the batch is drawn again from
    the answered snapshot once, and then recorded unconditionally from the last answer -- three
    writes, no read, the decision at the version it was drawn from."""
    eng, other = Engine(store, seed=34, clock=clock), Engine(store, seed=35, clock=clock)
    eng.create_bandit(beta_spec())
    eng.decide("offers")  # cached at version 0
    theirs = [other.decide("offers") for _ in range(2)]
    calls: list[object] = []
    original, read = store.put_pending_many, store.read

    def racing(name, items, **kw):
        calls.append(kw.get("if_at"))
        if kw.get("if_at") is not None and theirs:
            other.record_reward(theirs.pop().decision_id, 1)  # the version moves first
        return original(name, items, **kw)

    def no_read(name):
        raise AssertionError("read")

    store.put_pending_many, store.read = racing, no_read  # type: ignore[method-assign]
    try:
        d = eng.decide("offers")
    finally:
        store.put_pending_many, store.read = original, read  # type: ignore[method-assign]
    cver = store.read("offers").config_version
    assert calls == [(0, cver), (1, cver), None]
    assert d.model_version == 2 == store.read("offers").version
    assert store.get_pending("offers", d.decision_id).status == "pending"


def test_idempotency_key_expires_with_its_decision(clock):
    from tsbandit.stores.memory import MemoryStore

    store = MemoryStore(retention=100.0)
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(beta_spec(reward_window=10.0))
    first = eng.decide("offers", idempotency_key="k")
    eng.record_reward(first.decision_id, 1)
    clock.advance(50.0)
    eng.sweep()
    assert eng.decide("offers", idempotency_key="k") == first  # kept: still the same
    clock.advance(100.0)
    eng.sweep()  # past deadline + retention: purged, and the key with it
    fresh = eng.decide("offers", idempotency_key="k")
    assert not fresh.replayed and fresh.timestamp == clock()
