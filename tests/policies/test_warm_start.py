"""Warm starts: discounted statistics of an earlier bandit, A/B pseudo-counts, a logged event
file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit.errors import (
    ConfigurationError,
    InvalidContextError,
    InvalidLogError,
    InvalidRewardError,
    WarmStartError,
)
from tsbandit.evaluation.warm_start import stats_from_event_log
from tsbandit.policies import BetaBernoulli, HierarchicalLinear, LinearGaussian
from tsbandit.policies.warm_start import arm_factors, beta_from_ab, warm_start


def _linear_stats(model, rng, K=3, n=50):
    X = rng.normal(size=(n, model.n_features))
    arms = rng.integers(0, K, n)
    r = rng.normal(size=n)
    s = model.init_stats(K)
    model.accumulate(s, arms, r, X)
    return s, X, arms, r


def test_a_full_weight_warm_start_is_the_old_posterior():
    rng = np.random.default_rng(0)
    m = HierarchicalLinear(n_features=2, shared_precision=0.5, offset_precision=2.0)
    old, *_ = _linear_stats(m, rng)
    new = m.warm_start(old)
    assert new.allclose(old, rtol=0, atol=0)
    np.testing.assert_allclose(m.posterior(new).mean, m.posterior(old).mean)


def test_a_discounted_warm_start_is_the_power_posterior():
    # weight w on every old observation == a regression whose old rows have noise s2 / w
    rng = np.random.default_rng(1)
    m = LinearGaussian(n_features=2, prior_precision=1.0, noise_variance=0.5)
    old, X, _, r = _linear_stats(m, rng, K=1)
    new = warm_start(m, old, weight=0.25)
    post = m.posterior(new)
    P = np.eye(2) + 0.25 * X.T @ X / 0.5
    np.testing.assert_allclose(post.mean[0], np.linalg.solve(P, 0.25 * X.T @ r / 0.5),
                               rtol=1e-10)
    # and new data adds to it like any statistics
    more = m.delta(1, np.zeros(3, dtype=int), np.ones(3), np.ones((3, 2)))
    assert (new + more).allclose(more + new)


def test_the_cap_limits_each_arms_effective_count():
    rng = np.random.default_rng(2)
    m = LinearGaussian(n_features=2)
    old, *_ = _linear_stats(m, rng, K=3, n=300)
    new = warm_start(m, old, weight=0.8, max_count=20.0)
    n_old = old["n"]
    np.testing.assert_allclose(new["n"], np.minimum(0.8 * n_old, 20.0))
    # a Beta arm's capped pseudo-counts keep its A/B rate exactly
    b = BetaBernoulli()
    sb = beta_from_ab([50, 5], [500, 20], max_trials=100)
    np.testing.assert_allclose(sb["successes"] / (sb["successes"] + sb["failures"]),
                               [0.1, 0.25])
    np.testing.assert_allclose(b.counts(sb), [100.0, 20.0])


def test_arm_map_moves_arms_and_new_arms_start_empty():
    rng = np.random.default_rng(3)
    m = HierarchicalLinear(n_features=2, shared_precision=0.5, offset_precision=4.0)
    old, *_ = _linear_stats(m, rng, K=2, n=80)
    new = warm_start(m, old, weight=0.5, arm_map=[1, None, 0])
    assert new.n_arms == 3
    np.testing.assert_allclose(new["A"][0], 0.5 * old["A"][1])
    np.testing.assert_allclose(new["A"][2], 0.5 * old["A"][0])
    assert not new["A"][1].any() and new["n"][1] == 0.0
    # the new arm's prior is the shared weights the old arms taught
    p = m.posterior(new)
    np.testing.assert_allclose(p.mean[1], p.shared_mean)
    assert np.abs(p.shared_mean).max() > 0


def test_beta_from_ab_pseudo_counts():
    s = beta_from_ab(np.array([30, 12]), np.array([1000, 400]), weight=0.5)
    assert s["successes"].tolist() == [15.0, 6.0]
    assert s["failures"].tolist() == [485.0, 194.0]
    post = BetaBernoulli(1.0, 1.0).posterior(s)
    np.testing.assert_allclose(post.alpha, [16.0, 7.0])


@pytest.mark.parametrize("args, kwargs, match", [
    (([1, 2], [1]), {}, "one count per arm"),
    (([5], [3]), {}, "successes"),
    (([-1], [3]), {}, "successes"),
    (([1], [np.inf]), {}, "finite"),
    (([1], [3]), {"weight": 0.0}, "weight"),
    (([1], [3]), {"weight": 1.5}, "weight"),
    (([1], [3]), {"max_trials": -2}, "max_trials"),
    ((["a"], [3]), {}, "numbers"),
])
def test_bad_ab_results_are_warm_start_errors(args, kwargs, match):
    with pytest.raises(WarmStartError, match=match) as info:
        beta_from_ab(*args, **kwargs)
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, ValueError)


def test_bad_warm_starts_are_warm_start_errors():
    m = LinearGaussian(n_features=2)
    other = BetaBernoulli().init_stats(2)
    with pytest.raises(WarmStartError, match="layout"):
        warm_start(m, other)
    with pytest.raises(WarmStartError, match="layout"):
        warm_start(m, LinearGaussian(n_features=3).init_stats(2))
    with pytest.raises(WarmStartError, match="batch"):
        warm_start(m, m.init_stats(2, (4,)))
    with pytest.raises(WarmStartError, match="arm_map"):
        warm_start(m, m.init_stats(2), arm_map=[0, 2])
    with pytest.raises(WarmStartError, match="max_count"):
        warm_start(m, m.init_stats(2), max_count=0)
    bad = m.init_stats(2)
    bad["n"][0] = np.nan
    with pytest.raises(WarmStartError, match="finite"):
        warm_start(m, bad)
    assert arm_factors(np.array([0.0, 10.0]), 1.0, 5.0).tolist() == [1.0, 0.5]


def _log(rows):
    lines = []
    for i, (arm, ctx, reward) in enumerate(rows):
        lines.append(json.dumps({"type": "decision", "decision_id": f"d{i}", "timestamp": i,
                                 "bandit": "offers", "arm": arm, "propensity": 0.5,
                                 "context": ctx}))
        if reward is not None:
            lines.append(json.dumps({"type": "reward", "decision_id": f"d{i}",
                                     "timestamp": i + 0.5, "bandit": "offers",
                                     "reward": reward}))
    return lines


def test_stats_from_an_event_log_equal_learning_the_joined_rounds(tmp_path):
    rng = np.random.default_rng(4)
    arms = ["a", "b", "c"]
    m = HierarchicalLinear(n_features=2, shared_precision=0.5, offset_precision=4.0)
    rows, X, A, R = [], [], [], []
    for _ in range(40):
        a = int(rng.integers(3))
        x = rng.normal(size=2).round(6)
        r = float(rng.integers(2))
        rows.append((arms[a], x.tolist(), r))
        X.append(x), A.append(a), R.append(r)
    rows.append(("a", [0.0, 1.0], None))       # no reward: dropped
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(_log(rows)) + "\n")
    got = stats_from_event_log(m, path, arms=arms, weight=0.5)
    want = m.init_stats(3)
    m.accumulate(want, np.array(A), np.array(R), np.array(X), weights=np.full(40, 0.5))
    assert got.allclose(want, rtol=1e-12, atol=1e-12)


def test_event_log_errors_name_the_problem():
    m = LinearGaussian(n_features=2)
    with pytest.raises(InvalidContextError):
        stats_from_event_log(m, _log([("a", [1.0, 2.0, 3.0], 1.0)]), arms=["a"])
    with pytest.raises(InvalidLogError, match="not in arms"):
        stats_from_event_log(m, _log([("z", [1.0, 2.0], 1.0)]), arms=["a"])
    with pytest.raises(InvalidRewardError):
        stats_from_event_log(BetaBernoulli(), _log([("a", None, 2.0)]), arms=["a"])
    with pytest.raises(WarmStartError, match="arms"):
        stats_from_event_log(m, _log([("a", [1.0, 2.0], 1.0)]), arms=[])
    with pytest.raises(WarmStartError, match="weight"):
        stats_from_event_log(m, _log([("a", [1.0, 2.0], 1.0)]), arms=["a"], weight=2.0)
