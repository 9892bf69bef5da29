"""Environments: ground truth, validation, seeding, the tutorial's offer world and data sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsbandit.errors import ConfigurationError, InvalidContextError
from tsbandit.lab import (
    CUSTOMER_PROFILES,
    OFFERS,
    BernoulliArms,
    CustomerFieldError,
    DelayedFeedback,
    OfferWorld,
    PiecewiseBernoulli,
    SupervisedBandit,
    build_customer_context,
    build_features,
    load_dataset,
    true_conversion_rates,
)


def seed(n: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(n)


# ----- Bernoulli worlds -------------------------------------------------------------------
def test_bernoulli_rewards_follow_the_rates() -> None:
    rates = np.array([0.03, 0.5, 0.9])
    blk = BernoulliArms(rates).episode(200, 500, seed(1)).block(0, 500)
    assert blk.contexts is None and blk.apply_at is None
    rewards = blk.noise[:, :, None] < blk.expected            # every arm's potential reward
    n = rewards.shape[0] * rewards.shape[1]
    got = rewards.mean(axis=(0, 1))
    se = np.sqrt(rates * (1 - rates) / n)
    assert np.all(np.abs(got - rates) < 4 * se)


def test_bernoulli_validation_names_the_parameter() -> None:
    with pytest.raises(ConfigurationError, match="rates"):
        BernoulliArms([0.1, 1.2])
    with pytest.raises(ConfigurationError, match="at least 2 arms"):
        BernoulliArms([0.1])
    with pytest.raises(ConfigurationError, match="n_trials"):
        BernoulliArms([0.1, 0.2]).episode(0, 10, seed(0))


def test_same_seed_same_draws_and_blocks_in_order() -> None:
    env = BernoulliArms([0.1, 0.2])
    a = env.episode(5, 100, seed(3)).block(0, 100)
    b = env.episode(5, 100, seed(3)).block(0, 100)
    c = env.episode(5, 100, seed(4)).block(0, 100)
    assert np.array_equal(a.noise, b.noise)
    assert not np.array_equal(a.noise, c.noise)
    ep = env.episode(5, 100, seed(3))
    with pytest.raises(ConfigurationError, match="consecutive"):
        ep.block(10, 5)


def test_piecewise_rates_switch_at_the_change_point() -> None:
    env = PiecewiseBernoulli([[0.06, 0.03], [0.03, 0.06]], change_points=[2500])
    blk = env.episode(2, 5000, seed(0)).block(0, 5000)
    assert blk.expected[:2500, :, 0].min() == 0.06 and blk.expected[:2500, :, 1].max() == 0.03
    assert blk.expected[2500:, :, 1].min() == 0.06 and blk.expected[2500:, :, 0].max() == 0.03
    with pytest.raises(ConfigurationError, match="change_points"):
        PiecewiseBernoulli([[0.1, 0.2], [0.2, 0.1]], change_points=[0])
    with pytest.raises(ConfigurationError, match="change points"):
        PiecewiseBernoulli([[0.1, 0.2], [0.2, 0.1]], change_points=[5, 9])


# ----- delayed feedback -------------------------------------------------------------------
def test_delay_wrapper_keeps_the_world_and_delays_by_the_mean() -> None:
    base = BernoulliArms([0.1, 0.2])
    plain = base.episode(50, 400, seed(9)).block(0, 400)
    delayed = DelayedFeedback(base, mean_delay=20.0, batch_every=10).episode(
        50, 400, seed(9)).block(0, 400)
    assert np.array_equal(plain.noise, delayed.noise)         # paired across delay settings
    assert delayed.apply_at is not None
    t = np.arange(400)[:, None]
    assert np.all(delayed.apply_at >= t + 1)
    assert np.all(delayed.apply_at % 10 == 0)
    # reveal delay is geometric with mean 20; batching adds at most 9 rounds
    extra = delayed.apply_at - (t + 1)
    p = 1 / 21
    sd = math.sqrt((1 - p) / p**2)
    assert abs(extra.mean() - (20 + 4.5)) < 4 * sd / math.sqrt(extra.size) + 4.5


def test_delay_validation() -> None:
    with pytest.raises(ConfigurationError, match="mean_delay"):
        DelayedFeedback(BernoulliArms([0.1, 0.2]), mean_delay=-1)
    with pytest.raises(ConfigurationError, match="batch_every"):
        DelayedFeedback(BernoulliArms([0.1, 0.2]), batch_every=0)


# ----- the offer world --------------------------------------------------------------------
def tutorial_context(c: dict) -> np.ndarray:
    """The tutorial's build_customer_context, verbatim."""
    return np.array([
        min((c["age"] - 18) / 62, 1.0),
        np.log(max(c["annual_income"], 1)) / np.log(500_000),
        (c["credit_score"] - 300) / 550,
        min(c["revolving_balance"] / max(c["credit_limit"], 1), 1.0),
        min(c["travel_spend_pct"], 1.0),
        min(c["grocery_spend_pct"], 1.0),
        min(c["months_as_customer"] / 120, 1.0),
        float(c.get("has_mortgage", 0)),
        float(c.get("has_business", 0)),
        min(c.get("recent_app_count", 0) / 5, 1.0),
        1.0,
    ])


def tutorial_rate(offer: str, x: np.ndarray) -> float:
    """The tutorial's true_conversion_rate, verbatim."""
    travel, grocery, rev, biz, inc = x[4], x[5], x[3], x[8], x[1]
    base = {
        "cashback_grocery_2pct": 0.02 + 0.12 * grocery,
        "travel_miles_3x": 0.01 + 0.15 * travel + 0.05 * inc,
        "balance_transfer_0apr": 0.01 + 0.18 * rev,
        "business_expense_card": 0.005 + 0.20 * biz,
        "premium_rewards_500bonus": 0.01 + 0.08 * inc + 0.03 * travel,
    }
    return min(base[offer], 0.25)


def test_offer_world_matches_the_tutorial() -> None:
    world = OfferWorld()
    for k, profile in enumerate(CUSTOMER_PROFILES.values()):
        x = build_customer_context(profile)
        assert np.allclose(x, tutorial_context(profile))
        want = [tutorial_rate(o, x) for o in OFFERS]
        assert np.allclose(world.oracle_profile_rates()[k], want)
    rates = world.oracle_profile_rates()
    assert rates.max(axis=1).mean() == pytest.approx(0.1419, abs=5e-4)   # oracle
    assert rates.mean() == pytest.approx(0.0666, abs=5e-4)               # uniform random


def test_offer_contexts_are_the_profiles_and_rewards_follow_the_truth() -> None:
    blk = OfferWorld().episode(300, 200, seed(2)).block(0, 200)
    assert blk.contexts is not None and blk.contexts.shape == (200, 300, 11)
    assert np.unique(blk.contexts.reshape(-1, 11), axis=0).shape[0] == 4
    assert np.allclose(blk.expected, true_conversion_rates(blk.contexts))


def test_customers_around_profiles_vary_and_stay_valid() -> None:
    world = OfferWorld("around")
    blk = world.episode(200, 20, seed(5)).block(0, 20)
    X = blk.contexts.reshape(-1, 11)
    assert np.unique(X, axis=0).shape[0] > 3000                 # not just four points
    # every feature in [0, 1] except log-income, which the tutorial leaves uncapped
    assert np.all(X >= 0) and np.all(np.delete(X, 1, axis=1) <= 1) and np.all(X[:, -1] == 1)
    raw = world.sample_customers(np.random.default_rng(0), 500)
    raw.pop("profile")
    build_features(raw)                                          # every field valid
    assert np.allclose(blk.expected, true_conversion_rates(blk.contexts))


@pytest.mark.parametrize(("field", "value", "match"), [
    ("credit_score", 900, "'credit_score' == 900.0, must be between 300 and 850"),
    ("age", 12, "'age' == 12.0, must be between 18 and 120"),
    ("travel_spend_pct", 1.5, "'travel_spend_pct'"),
    ("has_business", 2, "'has_business' == 2.0, must be 0 or 1"),
    ("recent_app_count", 1.5, "'recent_app_count'"),
    ("annual_income", float("nan"), "'annual_income'"),
    ("credit_limit", "lots", "'credit_limit' == 'lots', must be a number"),
])
def test_feature_builder_errors_name_the_field(field: str, value: object, match: str) -> None:
    customer = {**CUSTOMER_PROFILES["grocery_shopper"], field: value}
    with pytest.raises(CustomerFieldError, match=match) as info:
        build_customer_context(customer)
    assert info.value.field == field
    assert isinstance(info.value, InvalidContextError)


def test_feature_builder_missing_and_unknown_fields() -> None:
    customer = dict(CUSTOMER_PROFILES["grocery_shopper"])
    del customer["age"]
    with pytest.raises(CustomerFieldError, match="'age' is missing"):
        build_customer_context(customer)
    optional = {k: v for k, v in CUSTOMER_PROFILES["grocery_shopper"].items()
                if k not in ("has_mortgage", "has_business", "recent_app_count")}
    assert np.allclose(build_customer_context(optional), tutorial_context(optional))
    with pytest.raises(CustomerFieldError, match="unknown customer field 'has_buisness'"):
        build_customer_context({**optional, "has_buisness": 1})


def test_column_errors_name_the_customer() -> None:
    cols = {k: np.full(3, float(v)) for k, v in CUSTOMER_PROFILES["grocery_shopper"].items()}
    cols["credit_score"][2] = 100.0
    with pytest.raises(CustomerFieldError, match=r"\(customer 2\)") as info:
        build_features(cols)
    assert info.value.index == 2


customers = st.fixed_dictionaries({
    "age": st.floats(18, 120), "annual_income": st.floats(0, 1e7),
    "credit_score": st.floats(300, 850), "revolving_balance": st.floats(0, 1e6),
    "credit_limit": st.floats(0, 1e6), "travel_spend_pct": st.floats(0, 1),
    "grocery_spend_pct": st.floats(0, 1), "months_as_customer": st.floats(0, 1000),
    "has_mortgage": st.sampled_from([0, 1]), "has_business": st.sampled_from([0, 1]),
    "recent_app_count": st.integers(0, 50),
})


@given(customers)
def test_valid_customers_give_the_tutorial_features(c: dict) -> None:
    x = build_customer_context(c)
    assert np.allclose(x, tutorial_context(c))
    cols = build_features({k: np.array([v, v]) for k, v in c.items()})
    assert np.allclose(cols, np.stack([x, x]))
    rates = true_conversion_rates(x)
    assert np.all((rates >= 0) & (rates <= 0.25))


# ----- supervised -------------------------------------------------------------------------
def test_supervised_rewards_are_the_labels_and_passes_are_permutations() -> None:
    X = np.arange(20, dtype=float).reshape(10, 2) ** 1.5
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    env = SupervisedBandit(X, y, passes=3)
    assert env.n_arms == 3 and env.n_features == 3 and env.natural_rounds == 30
    blk = env.episode(4, 30, seed(0)).block(0, 30)
    Z = (X - X.mean(0)) / X.std(0)
    for trial in range(4):
        ctx = blk.contexts[:, trial]
        assert np.all(ctx[:, -1] == 1.0)
        # map each context back to its example: each pass visits every example once
        idx = np.array([int(np.argmin(np.abs(Z - c[:2]).sum(1))) for c in ctx])
        for p in range(3):
            assert sorted(idx[p * 10:(p + 1) * 10]) == list(range(10))
        assert np.array_equal(blk.expected[:, trial].argmax(1), y[idx])
        assert np.all(blk.expected[:, trial].sum(1) == 1.0)
    assert blk.noise is None
    assert np.allclose(env._X[:, :2].mean(0), 0) and np.allclose(env._X[:, :2].std(0), 1)


@pytest.mark.parametrize(("name", "shape", "classes"), [
    ("iris", (150, 4), 3), ("wine", (178, 13), 3), ("breast_cancer", (569, 30), 2),
    ("digits", (1797, 64), 10)])
def test_sklearn_loaders(name: str, shape: tuple[int, int], classes: int) -> None:
    pytest.importorskip("sklearn")
    X, y, features, _labels = load_dataset(name)
    assert X.shape == shape and len(np.unique(y)) == classes and len(features) == shape[1]
    env = SupervisedBandit.from_sklearn(name, passes=2)
    assert env.n_arms == classes and env.n_features == shape[1] + 1
    assert env.natural_rounds == 2 * shape[0]
    with pytest.raises(ConfigurationError, match="unknown data set"):
        load_dataset("mnist")


def test_top_two_value_is_exact_on_small_cases_and_matches_simulation() -> None:
    from tsbandit.lab.bounds import top_two_value

    # one round: a coin flip; equal rates: always one half
    assert top_two_value(0.3, 0.1, 1)[1] == pytest.approx(0.5)
    assert top_two_value(0.2, 0.2, 7)[7] == pytest.approx(3.5)
    # two rounds, by hand: round 2 follows the first observation of arm A (both arms
    # are symmetric): success -> A is more likely best (posterior p / (p + q)), failure ->
    # B (posterior (1 - q) / (2 - p - q)); the optimal pick gets the larger posterior
    p, q = 0.3, 0.1
    win = 0.5 * (p + q)
    second = win * p / (p + q) + (1 - win) * (1 - q) / (2 - p - q)
    assert top_two_value(p, q, 2)[2] == pytest.approx(0.5 + second)
    # values grow with the horizon and never exceed it; a narrower grid gives the same
    # value while no arm can have more successes than the grid holds
    v = top_two_value(0.12, 0.09, 120)
    assert np.all(np.diff(v) > 0) and np.all(v <= np.arange(121))
    assert top_two_value(0.12, 0.09, 60, max_successes=60)[60] == pytest.approx(v[60])
    # Monte Carlo of the greedy learner (pick the posterior's more likely arm; optimal in this
    # symmetric problem up to ties): within 4 standard errors of the exact value
    rng = np.random.default_rng(3)
    runs, T = 20000, 120
    p, q = 0.12, 0.09
    best_is_a = rng.random(runs) < 0.5
    llr = np.zeros(runs)
    la, lb = np.log(p / q), np.log((1 - p) / (1 - q))
    correct = np.zeros(runs)
    for _ in range(T):
        pick_a = np.where(llr == 0, rng.random(runs) < 0.5, llr > 0)
        correct += pick_a == best_is_a
        rate = np.where(pick_a == best_is_a, p, q)
        won = rng.random(runs) < rate
        step = np.where(won, la, lb)
        llr += np.where(pick_a, step, -step)
    se = correct.std(ddof=1) / np.sqrt(runs)
    assert abs(correct.mean() - v[T]) < 4 * se
    with pytest.raises(ConfigurationError):
        top_two_value(0.1, 0.2, 10)
    with pytest.raises(ConfigurationError):
        top_two_value(0.2, 0.1, 0)
