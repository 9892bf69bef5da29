"""Per-slot rewards of rankings in the engine: a ranking model learns from every slot, each slot
applied exactly once whenever it arrives, the sweep settles the rest; other models learn from
the first slot only. On every store."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.engine import BanditSpec, Engine
from tsbandit.errors import EligibilityError, InvalidRewardError, InvalidSlotError
from tsbandit.policies.cascade import CascadeBeta
from tsbandit.policies.position_based import PositionBased

ARMS = ["a", "b", "c", "d", "e"]


def arrays(store, name="carousel"):
    snap = store.read(name)
    return snap.version, {k: np.asarray(v).tolist() for k, v in snap.arrays.items()}


def learned(store, model, name="carousel"):
    prior = model.init_stats(len(ARMS))
    snap = store.read(name)
    return {k: np.asarray(snap.arrays[k]) - prior[k] for k in prior}


def expected(model, rankings, rewards):
    return model.ranking_delta(len(ARMS), np.array(rankings), np.array(rewards, dtype=float))


@pytest.mark.parametrize("model", [PositionBased(n_positions=3, examination=(1.0, 0.6, 0.3)),
                                   CascadeBeta()], ids=["pbm", "cascade"])
def test_every_slot_once_whenever_it_arrives(store, clock, model):
    eng = Engine(store, seed=0, clock=clock)
    eng.create_bandit(BanditSpec(name="carousel", arms=ARMS, model=model))
    d = eng.decide("carousel", k=3)
    idx = [ARMS.index(a) for a in d.ranking]
    two = eng.record_reward(d.decision_id, 1, slot=2)
    assert two.status == "applied" and two.slots == {2: "applied"} and two.arm == d.ranking[2]
    assert eng.record_reward(d.decision_id, 0, slot=2).duplicate  # first value stays
    rest = eng.record_reward(d.decision_id, [0, 0, None])
    assert rest.slots == {0: "applied", 1: "applied"}
    again = eng.record_reward(d.decision_id, [0, 0, 1])
    assert again.duplicate and again.slots == {0: "duplicate", 1: "duplicate", 2: "duplicate"}
    want = expected(model, [idx], [[0, 0, 1]])
    got = learned(store, model)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-12)
    events = [e for e in eng.events("carousel") if e["type"] == "reward"]
    assert sorted(e["slot"] for e in events) == [0, 1, 2]
    for e in events:
        assert e["arm"] == d.ranking[e["slot"]]
        assert e["propensity"] == pytest.approx(d.position_propensities[e["slot"]])


def test_the_sweep_settles_the_slots_not_rewarded(store, clock):
    model = CascadeBeta()
    eng = Engine(store, seed=1, clock=clock)
    eng.create_bandit(BanditSpec(name="carousel", arms=ARMS, model=model, reward_window=10,
                                 default_reward=0))
    d = eng.decide("carousel", k=3)
    eng.record_reward(d.decision_id, 1, slot=1)
    clock.advance(11)
    assert eng.sweep("carousel")["carousel"].settled == 2
    idx = [ARMS.index(a) for a in d.ranking]
    want = expected(model, [idx], [[0, 1, 0]])
    got = learned(store, model)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-12)
    expired = sorted(e["slot"] for e in eng.events("carousel") if e["type"] == "expired")
    assert expired == [0, 2]


def test_bad_slots_change_nothing(store, clock):
    eng = Engine(store, seed=2, clock=clock)
    eng.create_bandit(BanditSpec(name="carousel", arms=ARMS, model=CascadeBeta()))
    d = eng.decide("carousel", k=3)
    before = arrays(store)
    for reward, slot in ((1, 3), (1, -1), ([1, 0], None), ([None, None, None], None),
                         ([1, 0, 0], 1)):
        with pytest.raises(InvalidSlotError):
            eng.record_reward(d.decision_id, reward, slot=slot)
    with pytest.raises(InvalidRewardError):
        eng.record_reward(d.decision_id, 0.5, slot=1)
    assert arrays(store) == before


def test_other_models_learn_from_the_first_slot_only(store, clock):
    eng = Engine(store, seed=3, clock=clock)
    eng.create_bandit(BanditSpec(name="carousel", arms=ARMS))
    d = eng.decide("carousel", k=3)
    with pytest.raises(InvalidSlotError, match="first slot"):
        eng.record_reward(d.decision_id, 1, slot=1)
    assert eng.record_reward(d.decision_id, 1, slot=0).status == "applied"


def test_a_ranking_longer_than_the_model_positions_is_refused(clock):
    from tsbandit.stores import MemoryStore

    eng = Engine(MemoryStore(), seed=4, clock=clock)
    eng.create_bandit(BanditSpec(name="carousel", arms=ARMS, model=PositionBased(n_positions=2)))
    with pytest.raises(EligibilityError, match="n_positions"):
        eng.decide("carousel", k=3)
    assert len(eng.decide("carousel", k=2).ranking) == 2
