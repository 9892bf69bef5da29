"""The ``offers-value`` scenario (issue 15): the world, its constrained oracle, the runner, and
that constrained Thompson sampling keeps off the arms that break the risk limit."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.stats import binom

from tsbandit.errors import ConfigurationError
from tsbandit.lab.offers import OFFERS, build_features, true_conversion_rates
from tsbandit.lab.offers_value import (
    OfferValueWorld,
    ValueBlock,
    true_revenue,
    true_risk,
    true_value,
)
from tsbandit.lab.scenarios import SCENARIOS, run_scenario, scenario_results
from tsbandit.lab.value_runner import MetricsLearner, run_offers_value, value_policy


def _grid() -> np.ndarray:
    """Features of a grid of customers: balance ratio x travel x grocery x business x income."""
    cols: dict[str, list[float]] = {k: [] for k in (
        "age", "annual_income", "credit_score", "revolving_balance", "credit_limit",
        "travel_spend_pct", "grocery_spend_pct", "months_as_customer", "has_business")}
    for ratio, travel, grocery, biz, income in itertools.product(
            np.linspace(0.0, 1.0, 11), (0.0, 0.2, 0.4), (0.0, 0.25, 0.5), (0, 1),
            (40_000, 250_000)):
        for k, v in (("age", 40), ("annual_income", income), ("credit_score", 700),
                     ("revolving_balance", ratio * 10_000), ("credit_limit", 10_000),
                     ("travel_spend_pct", travel), ("grocery_spend_pct", grocery),
                     ("months_as_customer", 24), ("has_business", biz)):
            cols[k].append(float(v))
    return build_features({k: np.array(v) for k, v in cols.items()})


def test_oracle_is_the_best_feasible_arm_by_brute_force() -> None:
    world = OfferValueWorld()
    x = np.concatenate([_grid(), world.profile_contexts()])
    arms = world.oracle_arms(x)
    rates, revenue, risk = true_conversion_rates(x), true_revenue(x), true_risk(x)
    binding = 0
    for i in range(x.shape[0]):
        feasible = [a for a in range(len(OFFERS)) if risk[i, a] <= world.risk_limit]
        best = max(feasible, key=lambda a: rates[i, a] * revenue[i, a])
        assert arms[i] == best and risk[i, arms[i]] <= world.risk_limit
        binding += int(np.argmax(rates[i] * revenue[i]) != best)
    assert binding > 0  # the limit changes the best arm for some customers


def test_the_constraint_matters_in_the_profiles() -> None:
    world = OfferValueWorld()
    x = world.profile_contexts()
    high = 2  # high_revolving_balance: the balance transfer is its best card, and infeasible
    bt = OFFERS.index("balance_transfer_0apr")
    assert np.argmax(true_value(x)[high]) == bt and true_risk(x)[high, bt] > 0.05
    assert world.oracle_arms(x)[high] != bt
    assert world.feasible(x).sum() == x.shape[0] * len(OFFERS) - 1  # the only infeasible cell


def test_world_validates_and_blocks_are_paired_with_the_offers_world() -> None:
    with pytest.raises(ConfigurationError, match="risk_limit"):
        OfferValueWorld(risk_limit=1.5)
    with pytest.raises(ConfigurationError, match="revenue_sd"):
        OfferValueWorld(revenue_sd=-1)
    world = OfferValueWorld()
    blk = world.episode(3, 20, np.random.SeedSequence(4)).block(0, 20)
    again = world.episode(3, 20, np.random.SeedSequence(4)).block(0, 20)
    assert isinstance(blk, ValueBlock) and blk.revenue is not None and blk.risk is not None
    assert blk.contexts is not None and again.contexts is not None
    np.testing.assert_array_equal(blk.contexts, again.contexts)
    np.testing.assert_array_equal(blk.expected, true_conversion_rates(blk.contexts))
    assert blk.revenue.shape == blk.risk.shape == (20, 3, 5)


def test_scenario_runs_short_and_is_seeded() -> None:
    assert "offers-value" in SCENARIOS
    res = run_scenario("offers-value", trials=2, rounds=80, seed=3)
    out = scenario_results(res)
    json.dumps(out)
    assert out["kind"] == "metrics" and out["trials"] == 2 and out["rounds"] == 80
    assert set(out["policies"]) == set(SCENARIOS["offers-value"].policies)
    assert out["policies"]["oracle"]["revenue_share"] == 1.0
    assert out["policies"]["oracle"]["infeasible_share"] == 0.0
    again = run_offers_value(["constrained-ts"], trials=2, rounds=80, seed=3)
    np.testing.assert_array_equal(again.policies["constrained-ts"].chosen,
                                  res.policies["constrained-ts"].chosen)
    with pytest.raises(ConfigurationError, match="unknown policy"):
        run_offers_value(["ucb1"], trials=1, rounds=5)


def test_the_learners_posterior_is_the_refit_from_its_statistics() -> None:
    # the runner follows each metric's posterior with O(d^2) updates; the rule must read the
    # posterior the statistics give (revenue and risk observed only after an application)
    world = OfferValueWorld()
    learner = value_policy("constrained-ts", world, 4, np.random.default_rng(0))
    assert isinstance(learner, MetricsLearner)
    blk = world.episode(4, 150, np.random.SeedSequence(1)).block(0, 150)
    assert blk.contexts is not None and blk.noise is not None and blk.revenue is not None
    assert blk.risk is not None and blk.revenue_noise is not None and blk.risk_noise is not None
    lanes = np.arange(4)
    seen = np.zeros(3)
    for b in range(150):
        x = blk.contexts[b]
        a = learner.choose(x)
        applied = blk.noise[b] < blk.expected[b, lanes, a]
        rev = np.where(applied, blk.revenue[b, lanes, a] + 40 * blk.revenue_noise[b], np.nan)
        risk = np.where(applied, (blk.risk_noise[b] < blk.risk[b, lanes, a]) * 1.0, np.nan)
        learner.observe(a, applied * 1.0, rev, risk, x)
        seen += [4, applied.sum(), applied.sum()]
    ms = learner.model
    assert ms.counts(learner.stats).sum() == seen[0] and seen[1] > 0
    full = ms.posterior(learner.stats)
    for i, model in enumerate(ms.models):
        assert model.counts(ms.part(learner.stats, i)).sum() == seen[i]
        np.testing.assert_allclose(model.mean(learner.post.parts[i], blk.contexts[-1]),
                                   model.mean(full.parts[i], blk.contexts[-1]),
                                   rtol=1e-9, atol=1e-9)


def test_constrained_ts_breaks_the_limit_less_than_single_metric_ts() -> None:
    # 20 trials x 1,000 rounds, scored on rounds 400-999 (after the first lessons). Two
    # checks, each with a binomial tolerance:
    # * pooled over the 20 x 600 decisions, the infeasible shares differ by more than 3
    #   binomial standard errors (sqrt(p (1 - p) / N) each);
    # * decisions within a trial are not independent, so also per trial (paired: the same
    #   customers and draws): constrained TS has the lower share in at least k of the m
    #   trials where they differ, with P(Binomial(m, 1/2) >= k) <= 0.05 under no difference.
    res = run_offers_value(["constrained-ts", "ts-applications"], trials=20, rounds=1000,
                           seed=11)
    c = res.policies["constrained-ts"].infeasible[400:]
    s = res.policies["ts-applications"].infeasible[400:]
    n = c.size
    pc, ps = c.mean(), s.mean()
    se = np.sqrt(pc * (1 - pc) / n + ps * (1 - ps) / n)
    assert ps - pc > 3 * se, (pc, ps, se)
    diff = s.mean(axis=0) - c.mean(axis=0)
    m, wins = int(np.count_nonzero(diff)), int(np.count_nonzero(diff > 0))
    k = int(next(j for j in range(m + 1) if binom.sf(j - 1, m, 0.5) <= 0.05))
    assert m >= 10 and wins >= k, (diff, k)
