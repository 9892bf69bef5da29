"""Probability best, expected loss and lift: exact vs Monte Carlo, invariants, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsbandit.errors import ConfigurationError, TsbanditError
from tsbandit.experiments import (
    BinaryPosteriors,
    NormalPosteriors,
    expected_loss,
    lift_interval,
    prob_best,
)

DRAWS = 200_000

TWO_ARM = [
    BinaryPosteriors.from_counts([120, 150], [1000, 1000]),
    BinaryPosteriors.from_counts([30, 36], [1000, 1000]),
    BinaryPosteriors.from_counts([3000, 3100], [100_000, 100_000]),
    BinaryPosteriors.from_counts([2, 0], [3, 1]),
    NormalPosteriors.from_summary([1000, 1000], [50.0, 51.0], [20.0, 22.0]),
    NormalPosteriors.from_summary([8, 30], [10.0, 12.0], [5.0, 9.0]),
]


@pytest.mark.parametrize("post", TWO_ARM)
def test_exact_two_arm_agrees_with_monte_carlo(post):
    rng = np.random.default_rng(11)
    exact_p, mc_p = prob_best(post), prob_best(post, rng=rng, draws=DRAWS, method="mc")
    assert exact_p.method == "exact" and mc_p.method == "monte_carlo"
    se = np.maximum(mc_p.stderr, 1.0 / DRAWS)
    assert np.all(np.abs(exact_p.probs - mc_p.probs) <= 4 * se)
    exact_l = expected_loss(post)
    mc_l = expected_loss(post, rng=rng, draws=DRAWS, method="mc")
    assert np.all(np.abs(exact_l.values - mc_l.values) <= 4 * mc_l.stderr + 1e-12)


def test_n_arm_monte_carlo_matches_a_finer_estimate_and_sums_to_one():
    post = BinaryPosteriors.from_counts([30, 36, 33, 20], [1000, 1000, 1000, 700])
    a = prob_best(post, rng=np.random.default_rng(1), draws=100_000)
    b = prob_best(post, rng=np.random.default_rng(2), draws=400_000)
    assert a.method == "monte_carlo" and a.probs.sum() == pytest.approx(1.0)
    assert np.all(np.abs(a.probs - b.probs) <= 4 * np.hypot(a.stderr, b.stderr) + 1e-12)
    la = expected_loss(post, rng=np.random.default_rng(3), draws=100_000)
    lb = expected_loss(post, rng=np.random.default_rng(4), draws=400_000)
    assert np.all(np.abs(la.values - lb.values) <= 4 * np.hypot(la.stderr, lb.stderr))


def test_n_arm_reduces_to_two_arm_with_a_hopeless_third_arm():
    # a third arm that can never be best leaves the two-arm answer unchanged
    two = BinaryPosteriors.from_counts([120, 150], [1000, 1000])
    three = BinaryPosteriors.from_counts([120, 150, 0], [1000, 1000, 100_000])
    exact = prob_best(two).probs
    mc = prob_best(three, rng=np.random.default_rng(5), draws=DRAWS)
    assert mc.probs[2] == 0.0
    assert np.all(np.abs(mc.probs[:2] - exact) <= 4 * mc.stderr[:2])


def test_same_seed_same_estimate():
    post = BinaryPosteriors.from_counts([3, 4, 5], [10, 10, 10])
    a = prob_best(post, rng=np.random.default_rng(9), draws=1000)
    b = prob_best(post, rng=np.random.default_rng(9), draws=1000)
    np.testing.assert_array_equal(a.probs, b.probs)


@pytest.mark.parametrize("post", TWO_ARM[:3] + TWO_ARM[4:5])
@pytest.mark.parametrize("relative", [True, False])
def test_lift_interval_matches_monte_carlo_quantiles(post, relative):
    li = lift_interval(post, level=0.9, relative=relative)
    x = post.sample(np.random.default_rng(21), DRAWS)
    lift = x[:, 1] / x[:, 0] - 1.0 if relative else x[:, 1] - x[:, 0]
    # the exact quantile q must sit at empirical CDF q within 4 binomial standard errors
    for q, v in ((0.05, li.low), (0.5, li.median), (0.95, li.high)):
        frac = np.mean(lift <= v)
        assert abs(frac - q) <= 4 * np.sqrt(q * (1 - q) / DRAWS)
    assert li.low < li.median < li.high
    assert li.prob_positive == pytest.approx(post.prob_greater(0, 1))


def test_relative_lift_refuses_a_control_that_can_be_negative():
    post = NormalPosteriors.from_summary([50, 50], [0.1, 0.5], [3.0, 3.0])
    with pytest.raises(ConfigurationError, match="relative=False"):
        lift_interval(post)
    assert lift_interval(post, relative=False).median == pytest.approx(0.4, abs=0.01)


counts = st.integers(0, 5000)


@st.composite
def binary_arms(draw, k=2):
    n = [draw(st.integers(0, 5000)) for _ in range(k)]
    s = [draw(st.integers(0, m)) for m in n]
    return BinaryPosteriors.from_counts(s, n)


@given(binary_arms())
def test_two_arm_invariants(post):
    pb = prob_best(post)
    assert pb.probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all((pb.probs >= 0) & (pb.probs <= 1))
    assert post.prob_greater(0, 1) + post.prob_greater(1, 0) == pytest.approx(1.0, abs=1e-9)
    el = expected_loss(post).values
    assert np.all(el >= 0)
    m = post.means()
    # E[(B-A)^+] - E[(A-B)^+] = E[B - A]
    assert el[0] - el[1] == pytest.approx(m[1] - m[0], abs=1e-9)
    swapped = BinaryPosteriors.from_counts(post.successes[::-1], post.trials[::-1])
    np.testing.assert_allclose(prob_best(swapped).probs, pb.probs[::-1], atol=1e-9)


@given(binary_arms(k=3), st.integers(0, 2**32 - 1))
def test_n_arm_invariants(post, seed):
    rng = np.random.default_rng(seed)
    pb = prob_best(post, rng=rng, draws=2000)
    assert pb.probs.sum() == pytest.approx(1.0)
    assert np.all(expected_loss(post, rng=rng, draws=2000).values >= 0)


def test_input_errors_name_the_problem():
    with pytest.raises(ConfigurationError, match=r"arm 'B'.*exceeds trials"):
        BinaryPosteriors.from_counts([1, 11], [10, 10], names=["A", "B"])
    with pytest.raises(ConfigurationError, match=r"arm 'A'.*>= 0"):
        BinaryPosteriors.from_counts([-1, 1], [10, 10], names=["A", "B"])
    with pytest.raises(ValueError, match="trials has 1 values for 2 arms"):
        BinaryPosteriors.from_counts([1, 2], [10])
    with pytest.raises(ConfigurationError, match="NaN"):
        BinaryPosteriors.from_counts([1, np.nan], [10, 10])
    with pytest.raises(ConfigurationError, match="unique"):
        BinaryPosteriors.from_counts([1, 2], [10, 10], names=["A", "A"])
    with pytest.raises(ConfigurationError, match="sd must be >= 0"):
        NormalPosteriors.from_summary([10, 10], [1.0, 2.0], [-1.0, 1.0])
    with pytest.raises(ConfigurationError, match="impossible"):
        NormalPosteriors.from_stats([10, 10], [10.0, 10.0], [1.0, 100.0])
    post3 = BinaryPosteriors.from_counts([1, 2, 3], [10, 10, 10])
    with pytest.raises(ConfigurationError, match="pass rng"):
        prob_best(post3)
    with pytest.raises(ConfigurationError, match="needs exactly 2 arms"):
        expected_loss(post3, method="exact")
    with pytest.raises(ConfigurationError, match="at least 2 arms"):
        prob_best(BinaryPosteriors.from_counts([1], [10]))
    with pytest.raises(ConfigurationError, match="draws"):
        prob_best(post3, rng=np.random.default_rng(0), draws=10)
    with pytest.raises(TsbanditError, match="level"):
        lift_interval(TWO_ARM[0], level=1.5)
    with pytest.raises(ConfigurationError, match="treatment"):
        lift_interval(TWO_ARM[0], treatment=5)


def test_normal_posteriors_constructors_agree():
    rng = np.random.default_rng(0)
    xs = [rng.normal(50, 20, 300), rng.normal(52, 25, 200)]
    a = NormalPosteriors.from_samples(xs, names=["A", "B"])
    b = NormalPosteriors.from_summary([300, 200], [x.mean() for x in xs],
                                      [x.std(ddof=1) for x in xs], names=["A", "B"])
    np.testing.assert_allclose(a.means(), b.means())
    assert a.prob_greater(0, 1) == pytest.approx(b.prob_greater(0, 1), abs=1e-9)
    # the default prior is nearly non-informative: posterior mean == sample mean
    np.testing.assert_allclose(a.means(), [x.mean() for x in xs], rtol=1e-6)


@pytest.mark.parametrize("alpha0", [0.5])  # the smallest shape a model accepts (df = 1)
def test_heavy_tailed_posteriors_without_a_mean(alpha0):
    # df = 2 alpha_n <= 1 before much data: no mean, infinite expected loss; the lift interval
    # still exists and the report stays JSON-safe (regression: the solver started at NaN)
    from tsbandit.experiments import experiment_report
    from tsbandit.policies import NormalInverseGamma

    post = NormalPosteriors.from_stats([0, 1], [0.0, 5.0], [0.0, 25.0],
                                       prior=NormalInverseGamma(alpha0=alpha0))
    li = lift_interval(post, level=0.9, relative=False)
    x = post.sample(np.random.default_rng(5), DRAWS)
    d = x[:, 1] - x[:, 0]
    for q, v in ((0.05, li.low), (0.5, li.median), (0.95, li.high)):
        assert abs(np.mean(d <= v) - q) <= 4 * np.sqrt(q * (1 - q) / DRAWS)
    rep = experiment_report(post)
    json.dumps(rep, allow_nan=False)
    assert rep["arms"][0]["expected_loss"] is None  # infinite: JSON null
    assert rep["arms"][0]["mean"] == 0.0  # the posterior location, as the bandit's /stats
