"""The shared-weights learner in the lab: registered, seeded, learning, and the model's
batched path equal to its exact posterior."""

from __future__ import annotations

import numpy as np

from tsbandit.lab import OfferWorld
from tsbandit.lab.policies import available_policies, make_policy
from tsbandit.lab.scenarios import SCENARIOS, run_scenario
from tsbandit.policies import HierarchicalLinear


def test_shared_ts_runs_beside_linear_ts_in_offers() -> None:
    assert "shared-ts" in SCENARIOS["offers"].policies
    assert "shared-ts" in available_policies(OfferWorld())
    spec = make_policy("shared-ts", OfferWorld())
    assert isinstance(spec.model, HierarchicalLinear) and spec.model.n_features == 11
    a = run_scenario("offers", policies=["shared-ts", "random"], trials=8, rounds=600, seed=4)
    b = run_scenario("offers", policies=["shared-ts", "random"], trials=8, rounds=600, seed=4)
    sa, sb = a.policies["shared-ts"], b.policies["shared-ts"]
    np.testing.assert_array_equal(sa.pulls, sb.pulls)          # same seed, same run
    # learning: the learner's optimal-arm rate is far above random's 1/5 (8 x 600 decisions;
    # the binomial sd of random's rate is 0.006)
    assert sa.optimal.mean() / 600 > 0.2 + 0.15
    assert a.policies["random"].optimal.mean() / 600 < 0.25


def test_the_lab_state_is_the_exact_posterior() -> None:
    spec = make_policy("shared-ts", OfferWorld())
    rng = np.random.default_rng(0)
    learner = spec.make_learner(4, 5, rng)
    world = OfferWorld("around")
    for t in range(30):
        x = world.episode(4, 1, np.random.SeedSequence(t)).block(0, 1).contexts[0]
        ch = learner.choose(t, x)
        learner.observe(ch, rng.integers(0, 2, 4).astype(float), x)
    exact = spec.model.posterior(learner.stats)
    np.testing.assert_allclose(learner.post.mean, exact.mean, rtol=1e-9, atol=1e-12)


def test_cells_ts_runs_in_offers_and_learns() -> None:
    from tsbandit.policies import BinnedBeta

    spec = make_policy("cells-ts", OfferWorld())
    assert isinstance(spec.model, BinnedBeta) and spec.model.n_features == 11
    assert "cells-ts" in available_policies(OfferWorld())
    a = run_scenario("offers", policies=["cells-ts", "random"], trials=8, rounds=600, seed=4)
    b = run_scenario("offers", policies=["cells-ts", "random"], trials=8, rounds=600, seed=4)
    sa, sb = a.policies["cells-ts"], b.policies["cells-ts"]
    np.testing.assert_array_equal(sa.pulls, sb.pulls)          # same seed, same run
    # learning: far above random's 1/5 (8 x 600 decisions; random's rate has sd 0.006)
    assert sa.optimal.mean() / 600 > 0.2 + 0.15
