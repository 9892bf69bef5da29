"""The friendly Bandit, the tutorial's classes and the non-stationary variants."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit import (
    Bandit,
    ContextualThompsonSampling,
    DiscountedThompsonSampling,
    SlidingWindowThompsonSampling,
    ThompsonSamplingBandit,
)
from tsbandit.errors import (
    ConfigurationError,
    DuplicateArmError,
    LastArmError,
    SerializationError,
    UnknownArmError,
)
from tsbandit.policies import BetaBernoulli, LinearGaussian


def test_tutorial_api():
    offers = ["cashback_grocery_2pct", "travel_miles_3x", "balance_transfer_0apr"]
    bandit = ThompsonSamplingBandit(offers, prior_alpha=1.0, prior_beta=1.0, seed=42)
    selected, posteriors = bandit.recommend()
    assert selected in offers and set(posteriors) == set(offers)
    bandit.update(selected, reward=1)
    bandit.update(selected, reward=0)
    arm = bandit.arms[selected]
    assert (arm.alpha, arm.beta, arm.total_pulls, arm.total_rewards) == (2.0, 2.0, 2, 1)
    assert arm.mean_reward == 0.5
    table = bandit.summary()
    assert selected in table and "Total decisions: 2" in table
    with pytest.raises(KeyError):
        bandit.arms["nope"]


def test_tutorial_part6_allocation_is_statistically_sound():
    """TS on the tutorial's rates sends most traffic to the best arm (0.060)."""
    rates = np.array([0.030, 0.045, 0.028, 0.015, 0.060])
    shares = []
    for seed in range(4):
        b = ThompsonSamplingBandit([f"arm{i}" for i in range(5)], seed=seed)
        rng = np.random.default_rng(100 + seed)
        for _ in range(3000):
            a = b.select_arm()
            b.update(a, int(rng.random() < rates[int(a[3:])]))
        shares.append(b.arms["arm4"].total_pulls / 3000)
    # uniform play would give 0.2; Thompson sampling concentrates on the best arm
    assert np.mean(shares) > 0.4


def test_contextual_tutorial_api():
    rng = np.random.default_rng(0)
    c = ContextualThompsonSampling(["x", "y"], n_features=2, prior_variance=1.0,
                                   noise_variance=0.1, seed=0)
    for _ in range(200):
        ctx = np.array([1.0, rng.random()])
        arm = c.select_arm(ctx)
        c.update(arm, ctx, 0.8 if arm == "x" else 0.2)
    assert c.arms["x"].expected_reward([1.0, 0.5]) == pytest.approx(0.8, abs=0.1)
    assert c.arms["x"].mu.shape == (2,)


def test_arm_management():
    b = Bandit(["a", "b"], seed=0)
    b.update("a", 1)
    b.add_arm("c")
    assert b.arms == ("a", "b", "c")
    assert b.posterior_mean()["c"] == 0.5 and b.posterior_mean()["a"] == 2 / 3
    b.remove_arm("a")
    assert b.arms == ("b", "c")
    with pytest.raises(DuplicateArmError):
        b.add_arm("b")
    with pytest.raises(DuplicateArmError):
        b.add_arm("")
    with pytest.raises(UnknownArmError):
        b.remove_arm("a")
    b.remove_arm("b")
    with pytest.raises(LastArmError):
        b.remove_arm("c")


@pytest.mark.parametrize("arms", [[], ["a", "a"], ["a", ""], ["a", 3]])
def test_bad_arm_lists(arms):
    with pytest.raises(DuplicateArmError):
        Bandit(arms)


@pytest.mark.parametrize(
    "kwargs",
    [{"discount": 0.0}, {"discount": 1.5}, {"window": 0}, {"window": 2.5},
     {"propensity_draws": 0}, {"discount": 0.9, "window": 10}],
)
def test_bad_bandit_configuration(kwargs):
    with pytest.raises(ConfigurationError):
        Bandit(["a", "b"], **kwargs)


def test_update_batch_equals_sequential_updates():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    arms = rng.choice(["a", "b"], size=50)
    r = rng.normal(size=50)
    b1 = Bandit(["a", "b"], LinearGaussian(n_features=3), seed=0)
    b2 = Bandit(["a", "b"], LinearGaussian(n_features=3), seed=0)
    b1.update_batch(list(arms), r, X)
    for i in range(50):
        b2.update(arms[i], r[i], X[i])
    assert b1.stats.allclose(b2.stats)
    np.testing.assert_allclose(b1.posterior.mean, b2.posterior.mean, atol=1e-10)


def test_discounted_matches_closed_form():
    gamma = 0.9
    b = DiscountedThompsonSampling(["a", "b"], gamma=gamma, seed=0)
    seq = [("a", 1), ("a", 0), ("b", 1), ("a", 1)]
    for arm, r in seq:
        b.update(arm, r)
    # successes of 'a' = 1*g^3 + 1*g^0 ; failures of 'a' = g^2
    assert b.arms["a"].alpha == pytest.approx(1 + gamma**3 + 1)
    assert b.arms["a"].beta == pytest.approx(1 + gamma**2)
    assert b.arms["b"].alpha == pytest.approx(1 + gamma)
    # a batch applies the same sequential discounting
    c = Bandit(["a", "b"], BetaBernoulli(), discount=gamma, seed=0)
    c.update_batch([s[0] for s in seq], [s[1] for s in seq])
    np.testing.assert_allclose(c.posterior.alpha, b.bandit.posterior.alpha)
    np.testing.assert_allclose(c.posterior.beta, b.bandit.posterior.beta)


def test_sliding_window_keeps_exactly_the_last_w():
    w = 5
    b = SlidingWindowThompsonSampling(["a", "b"], window_size=w, seed=0)
    rng = np.random.default_rng(1)
    history = []
    for _ in range(23):
        arm, r = ("a" if rng.random() < 0.5 else "b"), int(rng.random() < 0.5)
        b.update(arm, r)
        history.append((arm, r))
    last = history[-w:]
    for arm in ("a", "b"):
        s = sum(r for a, r in last if a == arm)
        f = sum(1 - r for a, r in last if a == arm)
        assert (b.arms[arm].alpha, b.arms[arm].beta) == (1 + s, 1 + f)
    assert len(b.bandit._memory.buffer) == w


def test_sliding_window_adapts_to_a_change_point():
    """Exercise 1: arm 0 best first, arm 1 best after the change; the window follows."""
    rates_before, rates_after = [0.7, 0.3], [0.3, 0.7]
    late = {"standard": 0, "window": 0}
    for seed in range(3):
        std = ThompsonSamplingBandit(["0", "1"], seed=seed)
        win = SlidingWindowThompsonSampling(["0", "1"], window_size=200, seed=seed)
        rng = np.random.default_rng(seed)
        for t in range(3000):
            rates = rates_before if t < 2000 else rates_after
            u = rng.random()
            for name, b in (("standard", std), ("window", win)):
                a = b.select_arm()
                b.update(a, int(u < rates[int(a)]))
                if t >= 2500 and a == "1":
                    late[name] += 1
    # after the change, the windowed sampler plays the new best arm far more often
    # (1500 late rounds in all; the window should be near its steady state of ~95%)
    assert late["window"] > 0.85 * 1500
    assert late["window"] > late["standard"] + 150


def test_from_dict_rejects_bad_state():
    b = Bandit(["a", "b"], seed=0)
    data = b.to_dict()
    with pytest.raises(SerializationError, match="format"):
        Bandit.from_dict({**data, "format": 99})
    bad = dict(data)
    bad["stats"] = {"batch_ndim": 0, "arrays": {"successes": {"shape": [3], "data": "AAAA"}}}
    with pytest.raises(SerializationError):
        Bandit.from_dict(bad)
    with pytest.raises(SerializationError):
        Bandit.from_dict({**data, "model": {"kind": "nope"}})


def test_reads_never_change_state():
    b = Bandit(["a", "b", "c"], seed=0)
    b.update("a", 1)
    before = b.to_dict()
    b.posterior_mean()
    b.stats["successes"][0] = 99  # a copy
    after = b.to_dict()
    assert before["stats"] == after["stats"]


def test_update_batch_with_index_arrays():
    b = Bandit(["a", "b"], seed=0)
    b.update_batch(np.array([0, 1, 1]), [1, 0, 1])
    assert b.posterior.alpha.tolist() == [2.0, 2.0]
    before = b.to_dict()
    with pytest.raises(UnknownArmError, match="index 5"):
        b.update_batch(np.array([0, 5]), [1, 1])
    with pytest.raises(UnknownArmError):
        b.update_batch(np.array([-1]), [1])
    assert b.to_dict() == before
