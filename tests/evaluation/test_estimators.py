"""Estimator invariants (hypothesis) and exact small cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import (
    DM,
    DR,
    IPS,
    SNDR,
    SNIPS,
    LoggedData,
    Replay,
    RidgeRewardModel,
    SwitchDR,
    action_dist_rows,
    effective_sample_size,
    importance_weights,
)

ESTIMATORS = [Replay(), IPS(), SNIPS(), DM(), DR(), IPS(clip=3.0), SNIPS(clip=3.0), DR(clip=3.0),
              SNDR(), SwitchDR(tau=3.0)]


def random_log(seed: int, n: int, k: int, reward: str = "binary"):
    """A log drawn from per-round random logging distributions; returns (log, pi_b)."""
    rng = np.random.default_rng(seed)
    pi_b = rng.dirichlet(np.ones(k), size=n) * 0.9 + 0.1 / k
    actions = (pi_b.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    if reward == "binary":
        rewards = (rng.random(n) < 0.3 + 0.1 * (actions % 3)).astype(float)
    else:
        rewards = rng.normal(1.0 + actions, 2.0)
    props = pi_b[np.arange(n), actions]
    return LoggedData(actions, rewards, props, k, contexts=rng.normal(size=(n, 2))), pi_b


logs = st.builds(random_log, st.integers(0, 2**32 - 1), st.integers(5, 300), st.integers(2, 6),
                 st.sampled_from(["binary", "real"]))


@given(logs)
def test_on_policy_ips_is_the_mean_reward(case):
    log, pi_b = case
    for est in (IPS(), SNIPS()):
        e = est.estimate(log, pi_b)
        assert e.value == pytest.approx(log.rewards.mean(), rel=1e-9, abs=1e-12)
        assert e.ess == pytest.approx(log.n_rounds)
        assert e.max_weight == pytest.approx(1.0)


@given(logs, st.floats(-5, 5), st.integers(0, 2**32 - 1))
def test_snips_weights_normalize(case, c, seed):
    log, _ = case
    pi_e = np.random.default_rng(seed).dirichlet(np.ones(log.n_actions), size=log.n_rounds)
    const = LoggedData(log.actions, np.full(log.n_rounds, c), log.propensities, log.n_actions)
    # a constant reward is recovered exactly, whatever the weights
    assert SNIPS().estimate(const, pi_e).value == pytest.approx(c, abs=1e-9)
    # and scaling every propensity by the same factor changes nothing
    half = LoggedData(log.actions, log.rewards, log.propensities / 2, log.n_actions)
    assert SNIPS().estimate(half, pi_e).value == pytest.approx(SNIPS().estimate(log, pi_e).value)
    assert IPS().estimate(half, pi_e).value == pytest.approx(2 * IPS().estimate(log, pi_e).value)


@given(logs, st.floats(0.01, 50.0), st.integers(0, 2**32 - 1))
def test_clipping_never_increases_weights(case, clip, seed):
    log, _ = case
    pi_e = np.random.default_rng(seed).dirichlet(np.ones(log.n_actions), size=log.n_rounds)
    w = importance_weights(log, pi_e)
    wc = importance_weights(log, pi_e, clip)
    assert (wc <= w).all() and (wc <= clip).all()
    assert np.array_equal(wc, w) == bool((w <= clip).all())
    assert np.array_equal(importance_weights(log, pi_e, float(w.max())), w)
    if (log.rewards >= 0).all():
        assert IPS(clip).estimate(log, pi_e).value <= IPS().estimate(log, pi_e).value + 1e-12


@given(st.lists(st.floats(0.0, 100.0), min_size=1, max_size=50))
def test_effective_sample_size_bounds(weights):
    w = np.array(weights)
    ess = effective_sample_size(w)
    if w.sum() == 0:
        assert ess == 0.0
    else:
        assert 1.0 - 1e-9 <= ess <= len(w) + 1e-9
        if (w == w[0]).all():
            assert ess == pytest.approx(len(w))


@given(logs, st.integers(0, 2**32 - 1))
def test_intervals_contain_the_estimate_and_grow_with_level(case, seed):
    log, _ = case
    pi_e = np.random.default_rng(seed).dirichlet(np.ones(log.n_actions), size=log.n_rounds)
    for est in (IPS(), SNIPS(), DM(), DR(), SNDR(), SwitchDR(tau=2.0)):
        lo = est.estimate(log, pi_e, level=0.8)
        hi = est.estimate(log, pi_e, level=0.99)
        assert lo.low <= lo.value <= lo.high
        assert hi.low <= lo.low + 1e-12 and lo.high <= hi.high + 1e-12


def test_dm_with_exact_per_action_means():
    # rewards depend on the action only: the unshrunk DM is the target-weighted action means
    rng = np.random.default_rng(3)
    n, k = 400, 3
    actions = rng.integers(0, k, n)
    rewards = np.array([0.0, 1.0, 5.0])[actions]
    log = LoggedData(actions, rewards, np.full(n, 1 / k), k)
    pi_e = np.array([0.2, 0.3, 0.5])
    model = RidgeRewardModel(ridge=0.0)
    assert DM(model).estimate(log, pi_e).value == pytest.approx(0.3 + 2.5, abs=1e-6)
    assert DR(model).estimate(log, pi_e).value == pytest.approx(0.3 + 2.5, abs=1e-6)


def test_dm_normal_interval_accounts_for_the_fitted_model():
    # deterministic target on one action, intercept-only unshrunk model: DM is that action's
    # sample mean, so its standard error must be that of a mean of n_a rewards
    rng = np.random.default_rng(4)
    n, k = 3000, 3
    actions = rng.integers(0, k, n)
    rewards = rng.normal(actions.astype(float), 1.0)
    log = LoggedData(actions, rewards, np.full(n, 1 / k), k)
    e = DM(RidgeRewardModel(ridge=0.0)).estimate(log, np.array([0.0, 1.0, 0.0]))
    r1 = rewards[actions == 1]
    assert e.value == pytest.approx(r1.mean(), abs=1e-6)
    assert e.std_error == pytest.approx(r1.std(ddof=1) / np.sqrt(r1.size), rel=0.02)


def test_auto_ridge_pools_when_actions_do_not_differ():
    rng = np.random.default_rng(5)
    n = 2000
    same = LoggedData(rng.integers(0, 4, n), rng.normal(0, 1, n), np.full(n, 0.25), 4)
    assert RidgeRewardModel(ridge="auto").resolve_ridge(same) >= 100
    a = rng.integers(0, 4, n)
    apart = LoggedData(a, rng.normal(3.0 * a, 1, n), np.full(n, 0.25), 4)
    assert RidgeRewardModel(ridge="auto").resolve_ridge(apart) < 1


def test_slate_distributions_use_the_logged_slot():
    log = LoggedData(np.array([0, 1]), np.array([1.0, 1.0]), np.array([0.5, 0.5]), 2,
                     positions=np.array([0, 1]), n_positions=2)
    pi = np.zeros((2, 2, 2))
    pi[:, 0, 0] = pi[:, 1, 1] = 1.0  # action 0 in slot 0, action 1 in slot 1
    assert action_dist_rows(log, pi).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert IPS().estimate(log, pi).value == pytest.approx(2.0)
    swapped = pi[:, ::-1, :]
    assert IPS().estimate(log, swapped).value == 0.0


@pytest.mark.parametrize(
    ("pi", "words"),
    [
        (np.ones((3, 2)) / 2, "shape"),
        (np.array([0.7, 0.7]), "sum to"),
        (np.array([1.5, -0.5]), ">= 0"),
        (np.array([np.nan, 1.0]), "finite"),
    ],
)
def test_bad_target_distributions(pi, words):
    log, _ = random_log(0, 10, 2)
    with pytest.raises(ConfigurationError, match=words):
        IPS().estimate(log, pi)


def test_bad_parameters():
    log, pi_b = random_log(0, 20, 3)
    with pytest.raises(ConfigurationError, match="clip"):
        IPS(clip=0.0)
    with pytest.raises(ConfigurationError, match="n_folds"):
        DR(n_folds=0)
    with pytest.raises(ConfigurationError, match="ridge"):
        RidgeRewardModel(ridge=-1.0)
    with pytest.raises(ConfigurationError, match="rng"):
        IPS().estimate(log, pi_b, interval="bootstrap")
    with pytest.raises(ConfigurationError, match="rng"):
        Replay().estimate(log, pi_b)
    with pytest.raises(ConfigurationError, match="interval"):
        IPS().estimate(log, pi_b, interval="exact")
    with pytest.raises(ConfigurationError, match="level"):
        IPS().estimate(log, pi_b, level=1.0)


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: f"{e.name}")
def test_same_seed_same_result_and_bootstrap_agrees(est):
    log, pi_b = random_log(11, 500, 4)
    pi_e = np.roll(pi_b, 1, axis=1)
    a = est.estimate(log, pi_e, interval="bootstrap", rng=np.random.default_rng(1),
                     n_bootstrap=400)
    b = est.estimate(log, pi_e, interval="bootstrap", rng=np.random.default_rng(1),
                     n_bootstrap=400)
    assert a == b
    normal = est.estimate(log, pi_e, rng=np.random.default_rng(1))
    assert normal.value == a.value
    # the bootstrap and the normal standard errors estimate the same thing
    assert a.std_error == pytest.approx(normal.std_error, rel=0.25)
    assert a.to_dict()["estimator"] == est.name


def test_replay_keeps_matching_rounds_only():
    rng = np.random.default_rng(2)
    n, k = 4000, 4
    actions = rng.integers(0, k, n)
    log = LoggedData(actions, (actions == 2).astype(float), np.full(n, 1 / k), k)
    e = Replay().estimate(log, np.eye(k)[2], rng=rng)
    assert e.value == 1.0 and e.ess == np.count_nonzero(actions == 2)
    u = Replay().estimate(log, np.full(k, 1 / k), rng=rng)
    assert abs(u.ess - n / k) < 4 * np.sqrt(n * (1 / k) * (1 - 1 / k))
