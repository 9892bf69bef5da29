"""Thompson first-choice probabilities carried to a later posterior by importance weighting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exact import first_slot_beta, first_slot_t
from tsbandit.policies import BetaBernoulli, NormalInverseGamma, ThompsonSampling
from tsbandit.policies.choice_sample import MIN_EFFECTIVE, ChoiceSample
from tsbandit.policies.rules import EpsilonGreedy

N_DRAWS = 4000


def _beta_stats(wins: list[int], losses: list[int]):
    m = BetaBernoulli()
    s = m.init_stats(len(wins))
    s["successes"][:] = wins
    s["failures"][:] = losses
    return m, s


def test_a_sample_is_the_rules_own_monte_carlo_estimate():
    """The same random numbers, the same probabilities as action_probabilities."""
    m, s = _beta_stats([20, 30, 25], [80, 70, 75])
    rule, post = ThompsonSampling(), m.posterior(s)
    mask = np.array([True, False, True])
    for eligible in (None, mask):
        sample = rule.choice_sample(m, post, s, np.random.default_rng(3), eligible, 500)
        expected = rule.action_probabilities(m, post, s, np.random.default_rng(3), None,
                                             eligible, 500)
        assert sample is not None
        np.testing.assert_array_equal(sample.probabilities(), expected)


def test_reweighted_beta_probabilities_match_the_exact_ones():
    """Draws of Beta(61, 541) / (76, 526) / (67, 535) reweighted to the posterior after three
    more rewards: within 4 standard errors (of the effective size) of the quadrature."""
    m, s = _beta_stats([60, 75, 66], [540, 525, 534])
    rule = ThompsonSampling()
    sample = rule.choice_sample(m, m.posterior(s), s, np.random.default_rng(7), None, N_DRAWS)
    assert sample is not None
    s["successes"][1] += 1
    s["failures"][0] += 2
    post = m.posterior(s)
    p = sample.reweighted(m, post)
    assert p is not None
    exact = first_slot_beta(post.alpha, post.beta)
    se = np.sqrt(exact * (1 - exact) / (MIN_EFFECTIVE * N_DRAWS))
    assert np.all(np.abs(p - exact) <= 4 * se), (p, exact)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_reweighted_gaussian_probabilities_match_the_exact_ones():
    """The Normal-Inverse-Gamma model's Student-t marginals, the same way."""
    m = NormalInverseGamma()
    s = m.init_stats(3)
    rng = np.random.default_rng(11)
    arms = np.repeat(np.arange(3), 300)
    m.accumulate(s, arms, rng.normal([0.10, 0.15, 0.12], 1.0, (300, 3)).T.ravel())
    rule = ThompsonSampling()
    sample = rule.choice_sample(m, m.posterior(s), s, np.random.default_rng(8), None, N_DRAWS)
    assert sample is not None
    m.accumulate(s, np.array([2]), np.array([0.4]))
    post = m.posterior(s)
    p = sample.reweighted(m, post)
    assert p is not None
    exact = first_slot_t(2 * post.alpha, post.mu, post.scale)
    se = np.sqrt(exact * (1 - exact) / (MIN_EFFECTIVE * N_DRAWS))
    assert np.all(np.abs(p - exact) <= 4 * se), (p, exact)


def test_a_posterior_the_draws_no_longer_cover_is_refused():
    """Few observations: one success moves Beta(3, 5) far (effective size well under 90%)."""
    m, s = _beta_stats([2, 3], [4, 2])
    rule = ThompsonSampling()
    sample = rule.choice_sample(m, m.posterior(s), s, np.random.default_rng(1), None, 1000)
    assert sample is not None
    s["successes"][0] += 1
    assert sample.reweighted(m, m.posterior(s)) is None
    # a lower bar accepts the same draws
    assert sample.reweighted(m, m.posterior(s), min_effective=0.2) is not None


def test_no_sample_where_the_choice_is_not_the_models_own_draw():
    """Tempered Thompson sampling and other rules keep estimating afresh."""
    m, s = _beta_stats([2, 3], [4, 2])
    rng = np.random.default_rng(0)
    assert ThompsonSampling(scale=0.5).choice_sample(m, m.posterior(s), s, rng) is None
    assert EpsilonGreedy(0.1).choice_sample(m, m.posterior(s), s, rng) is None


@settings(max_examples=60, deadline=None)
@given(wins=st.lists(st.integers(0, 400), min_size=2, max_size=6),
       extra=st.integers(0, 3), seed=st.integers(0, 2**32 - 1),
       eligible_bits=st.integers(1, 63))
def test_reweighted_probabilities_are_a_distribution_over_the_eligible_arms(
        wins, extra, seed, eligible_bits):
    """Whatever the posterior: reweighting to the drawing posterior gives the plain estimate;
    to a later one, probabilities >= 0 summing to 1, zero on ineligible arms, or a refusal."""
    k = len(wins)
    mask = np.array([(eligible_bits >> i) & 1 == 1 for i in range(k)])
    if not mask.any():
        mask[0] = True
    m, s = _beta_stats(wins, [400 - w for w in wins])
    rule = ThompsonSampling()
    sample = rule.choice_sample(m, m.posterior(s), s, np.random.default_rng(seed), mask, 300)
    assert isinstance(sample, ChoiceSample)
    same = sample.reweighted(m, m.posterior(s))
    np.testing.assert_allclose(same, sample.probabilities(), rtol=0, atol=1e-12)
    s["successes"][0] += extra
    p = sample.reweighted(m, m.posterior(s))
    if p is not None:
        assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(p[~mask] == 0)
