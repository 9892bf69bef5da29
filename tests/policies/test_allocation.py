"""Traffic floor and top-two Thompson sampling: shares, propensities, masks, configuration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError
from tsbandit.policies import BetaBernoulli, Greedy, ThompsonSampling, rule_from_config
from tsbandit.policies.rules import TopTwoThompson, TrafficFloor


def beta_state(successes, failures):
    m = BetaBernoulli()
    s = m.init_stats(len(successes))
    s["successes"][:] = successes
    s["failures"][:] = failures
    return m, m.posterior(s), s


def within(p_hat, p, n):
    return abs(p_hat - p) <= 4 * np.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def test_floor_keeps_every_arm_at_least_its_share():
    m, post, s = beta_state([500, 1, 1, 1], [1, 500, 500, 500])
    rule = TrafficFloor(ThompsonSampling(), floor=0.05)
    p = rule.action_probabilities(m, post, s, np.random.default_rng(0))
    assert p.min() >= 0.05 - 1e-12 and p.sum() == pytest.approx(1.0)
    n = 20_000
    first = rule.choose(m, post, s, np.random.default_rng(1), size=n)[:, 0]
    for a in range(4):  # exact here: Thompson puts arm 0 first with probability ~1
        want = 0.05 + (0.8 if a == 0 else 0.0)
        assert within(float((first == a).mean()), want, n)


def test_floor_propensities_are_the_exact_mixture():
    m, post, s = beta_state([30, 10, 5], [10, 30, 35])
    rule = TrafficFloor(Greedy(), floor=0.1)
    chosen = np.array([0, 2])
    got = rule.propensities(m, post, s, chosen, np.random.default_rng(0))
    inner = Greedy().propensities(m, post, s, chosen, np.random.default_rng(0))
    np.testing.assert_allclose(got, 0.3 / 3 + 0.7 * inner)
    eligible = np.array([False, True, True])
    p = rule.action_probabilities(m, post, s, np.random.default_rng(0), eligible=eligible)
    assert p[0] == 0.0 and p[1] >= 0.1 and p.sum() == pytest.approx(1.0)
    picks = rule.choose(m, post, s, np.random.default_rng(2), eligible=eligible, size=2000)
    assert not (picks == 0).any()


def test_floor_configuration():
    rule = TrafficFloor(ThompsonSampling(scale=0.5), floor=0.02)
    assert rule_from_config(rule.to_config()) == rule
    assert rule_from_config({"kind": "floor", "floor": 0.1, "rule": {"kind": "greedy"}}
                            ).rule == Greedy()
    with pytest.raises(ConfigurationError):
        TrafficFloor(floor=1.5)
    with pytest.raises(ConfigurationError):
        TrafficFloor(rule=TrafficFloor())
    m, post, s = beta_state([1] * 4, [1] * 4)
    with pytest.raises(ConfigurationError, match="at most 1/4"):
        TrafficFloor(floor=0.3).choose(m, post, s, np.random.default_rng(0))


def test_floor_in_a_bandit_logs_floored_propensities():
    b = Bandit(["a", "b", "c"], rule=TrafficFloor(ThompsonSampling(), floor=0.1), seed=0)
    for _ in range(300):
        b.update("a", 1)
        b.update("b", 0)
        b.update("c", 0)
    d = b.select(propensity=True)
    assert d.propensity >= 0.1 - 1e-12
    counts = {a: 0 for a in "abc"}
    for _ in range(2000):
        counts[b.select().arm] += 1
    assert within(counts["c"] / 2000, 0.1, 2000)


def test_top_two_gives_the_leader_beta():
    m, post, s = beta_state([900, 100, 80], [100, 900, 920])
    n = 8000
    for beta in (0.5, 0.75):
        first = TopTwoThompson(beta=beta).choose(m, post, s, np.random.default_rng(3),
                                                 size=n)[:, 0]
        assert within(float((first == 0).mean()), beta, n)
        ts = ThompsonSampling().choose(m, post, s, np.random.default_rng(3), size=n)[:, 0]
        assert (ts == 0).mean() > 0.999


def test_top_two_challenger_is_the_likely_runner_up():
    m, post, s = beta_state([500, 480, 100], [500, 520, 900])
    first = TopTwoThompson().choose(m, post, s, np.random.default_rng(4), size=6000)[:, 0]
    share = np.bincount(first, minlength=3) / first.size
    assert share[2] < 0.01 and share[0] > 0.45 and share[1] > 0.3


@settings(max_examples=40)
@given(st.integers(2, 6), st.integers(1, 6), st.integers(0, 2**31 - 1), st.data())
def test_top_two_rankings_are_permutations_of_eligible_arms(n_arms, k, seed, data):
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n_arms, max_size=n_arms)))
    if mask.sum() < k:
        mask[:k] = True
    k = min(k, n_arms)
    rng = np.random.default_rng(seed)
    m, post, s = beta_state(rng.integers(0, 50, n_arms), rng.integers(0, 50, n_arms))
    out = TopTwoThompson().choose(m, post, s, rng, eligible=mask, k=k, size=20)
    assert out.shape == (20, k)
    for row in out:
        assert len(set(row.tolist())) == k and mask[row].all()


def test_top_two_configuration_and_bandit():
    rule = TopTwoThompson(beta=0.6, max_resamples=10)
    assert rule_from_config(rule.to_config()) == rule
    for bad in ({"beta": 0.0}, {"beta": 1.0}, {"max_resamples": 0}, {"max_resamples": 1.5}):
        with pytest.raises(ConfigurationError):
            TopTwoThompson(**bad)
    b = Bandit(["a", "b"], rule=rule, seed=0)
    d = b.select(propensity=True)
    assert d.arm in ("a", "b") and 0 < d.propensity <= 1
