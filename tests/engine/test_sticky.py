"""Sticky assignment: a returning user keeps the arm (or ranking) first chosen for them, through
the store (every worker alike), until it expires or an arm is retired; each visit is its own
decision, logged with the original draw's propensities. On every store."""

from __future__ import annotations

import pytest

from concurrency import in_threads
from tsbandit.engine import BanditSpec, Engine
from tsbandit.errors import ConfigurationError


def spec(**kw):
    opts = {"stickiness": 100.0}
    opts.update(kw)
    return BanditSpec(name="offers", arms=["a", "b", "c", "d"], **opts)


def test_a_returning_user_keeps_the_first_draw(store, clock):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(spec())
    first = eng.decide("offers", user_id="u1")
    assert first.sticky_of == first.decision_id
    for _ in range(15):
        clock.advance(5)
        again = eng.decide("offers", user_id="u1")
        assert again.arm == first.arm and again.decision_id != first.decision_id
        assert again.sticky_of == first.decision_id
        assert again.propensity == pytest.approx(first.propensity)
        eng.record_reward(again.decision_id, 0)  # every visit is rewarded on its own
    events = [e for e in eng.events("offers") if e["type"] == "decision"]
    assert {e["sticky_of"] for e in events} == {first.decision_id}
    assert {e["arm"] for e in events} == {first.arm}


def test_users_draw_independently_and_anonymous_decisions_are_not_sticky(store, clock):
    eng = Engine(store, seed=1, clock=clock)
    eng.create_bandit(spec())
    arms = {eng.decide("offers", user_id=f"u{i}").arm for i in range(40)}
    assert len(arms) >= 3  # uniform prior: 40 users over 4 arms
    anon = eng.decide("offers")
    assert anon.sticky_of is None and "sticky_of" not in anon.to_dict()


def test_expiry_and_retirement_assign_anew(store, clock):
    eng = Engine(store, seed=2, clock=clock)
    eng.create_bandit(spec())
    first = eng.decide("offers", user_id="u1")
    clock.advance(101)
    later = eng.decide("offers", user_id="u1")
    assert later.sticky_of == later.decision_id  # a new draw, a new assignment
    eng.retire_arm("offers", later.arm)
    after = eng.decide("offers", user_id="u1")
    assert after.arm != later.arm and after.sticky_of == after.decision_id
    assert eng.decide("offers", user_id="u1").sticky_of == after.decision_id
    del first


def test_a_request_the_assignment_does_not_fit_draws_without_reassigning(store, clock):
    eng = Engine(store, seed=3, clock=clock)
    eng.create_bandit(spec())
    first = eng.decide("offers", user_id="u1")
    others = [a for a in "abcd" if a != first.arm]
    narrow = eng.decide("offers", eligible=others, user_id="u1")
    assert narrow.arm in others and narrow.sticky_of is None
    assert eng.decide("offers", user_id="u1").sticky_of == first.decision_id


def test_rankings_are_sticky_too(store, clock):
    eng = Engine(store, seed=4, clock=clock)
    eng.create_bandit(spec())
    first = eng.decide("offers", k=3, user_id="u1")
    again = eng.decide("offers", k=3, user_id="u1")
    assert again.ranking == first.ranking and again.sticky_of == first.decision_id
    assert again.position_propensities == pytest.approx(first.position_propensities)
    batch = eng.decide_batch("offers", k=3, user_ids=["u1", "u2", None], n=3)
    assert batch[0].ranking == first.ranking and batch[2].sticky_of is None
    assert batch[1].sticky_of == batch[1].decision_id


def test_workers_agree_on_a_new_user(shared_backend, clock):
    engines = [Engine(shared_backend.open(), seed=i, clock=clock) for i in range(6)]
    engines[0].create_bandit(spec())
    got = in_threads(lambda i: engines[i].decide("offers", user_id="new-user"), len(engines))
    assert len({d.arm for d in got}) == 1
    assert len({d.sticky_of for d in got}) == 1
    owner = got[0].sticky_of
    assert owner in {d.decision_id for d in got}


def test_configuration():
    s = spec(stickiness=30)
    assert BanditSpec.from_config(s.to_config()).stickiness == 30.0
    assert "stickiness" not in BanditSpec(name="x", arms=["a"]).to_config()
    with pytest.raises(ConfigurationError):
        spec(stickiness=0)


def test_the_sweep_deletes_expired_assignments(store, clock):
    eng = Engine(store, seed=5, clock=clock)
    eng.create_bandit(spec(stickiness=10.0))
    for i in range(3):
        eng.decide("offers", user_id=f"u{i}")
    assert eng.sweep("offers")["offers"].assignments == 0
    clock.advance(11)
    assert eng.sweep("offers")["offers"].assignments == 3
    assert store.get_assignment("offers", "u0", clock()) is None


def test_the_pending_decision_says_whose_draw_it_shows(store, clock):
    eng = Engine(store, seed=6, clock=clock)
    eng.create_bandit(spec())
    first = eng.decide("offers", user_id="u1")
    again = eng.decide("offers", user_id="u1")
    assert eng.pending(again.decision_id)["sticky_of"] == first.decision_id
    assert eng.pending(first.decision_id)["sticky_of"] == first.decision_id
