"""The models' batched posterior states (``model.lanes``) and the rules' batched forms
(``rule.lane_scorer``): the same math as the statistics API, one implementation."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.policies import (
    UCB1,
    BetaBernoulli,
    EpsilonGreedy,
    Greedy,
    LinearGaussian,
    LinUCB,
    LogisticLaplace,
    NormalInverseGamma,
    RandomPolicy,
    Softmax,
    ThompsonSampling,
    lanes_argmax,
)
from tsbandit.policies.beta_lanes import BetaLanes

N, K, D = 7, 4, 3


def _contexts(rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.normal(size=(N, D - 1)), np.ones((N, 1))], axis=1)


def test_models_without_a_batched_state_say_so() -> None:
    assert NormalInverseGamma().lanes(N, K) is None

    class MyBeta(BetaBernoulli):
        pass

    assert MyBeta().lanes(N, K) is None and not BetaLanes.accepts(MyBeta())
    assert isinstance(BetaBernoulli().lanes(N, K), BetaLanes)


def test_rules_without_a_batched_form_or_for_another_state_decline() -> None:
    rng = np.random.default_rng(0)
    beta = BetaLanes([BetaBernoulli()], N, K, counts=True)
    linear = LinearGaussian(n_features=D).lanes(N, K)
    for rule in (Softmax(0.1), LinUCB(1.0)):
        assert rule.lane_scorer(beta, 0, rng) is None
    for rule in (UCB1(), EpsilonGreedy(0.1), Greedy(), RandomPolicy()):
        assert rule.lane_scorer(beta, 0, rng) is not None
        assert rule.lane_scorer(linear, 0, rng) is None
    # UCB1 needs the counts rows
    assert UCB1().lane_scorer(BetaLanes([BetaBernoulli()], N, K), 0, rng) is None

    class Other(ThompsonSampling):
        def scores(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return super().scores(*args, **kwargs) + 1.0

    assert Other().lane_scorer(beta, 0, rng) is None


def test_beta_lanes_draw_the_models_draws() -> None:
    # the lanes' Thompson step is BetaBernoulli.sample's gamma draws (ranked by X / Y)
    model = BetaBernoulli(0.5, 2.0)
    lanes = BetaLanes([model], N, K)
    rng = np.random.default_rng(1)
    arms = rng.integers(0, K, 40)
    rewards = (rng.random(40) < 0.3).astype(float)
    which = rng.integers(0, N, 40)
    lanes.add(which, arms, rewards)
    stats = model.init_stats(K, (N,))
    model.accumulate(stats, arms, rewards, batch_index=which)
    post = model.posterior(stats)
    assert np.array_equal(lanes.posterior(0).params, post.params)
    means = np.empty((N, K))
    scorer = ThompsonSampling().lane_scorer(lanes, 0, np.random.default_rng(5))
    assert scorer is not None
    scorer.score(0, means)
    assert np.allclose(means, model.mean(post))
    draws = model.sample(post, np.random.default_rng(5))
    assert np.array_equal(lanes_argmax(lanes.scores[0]), draws.argmax(axis=1))


@pytest.mark.parametrize("make", [
    lambda: LinearGaussian(n_features=D, prior_precision=0.5, noise_variance=0.2),
    lambda: LinearGaussian(n_features=D, unknown_noise=True, noise_a0=1.0),
    lambda: LogisticLaplace(n_features=D, prior_precision=3.0),
], ids=["linear", "nig", "logistic"])
def test_gaussian_lanes_learn_the_models_posterior(make) -> None:  # type: ignore[no-untyped-def]
    model = make()
    lanes = model.lanes(N, K)
    stats = model.init_stats(K, (N,))
    rng = np.random.default_rng(2)
    scorer = ThompsonSampling().lane_scorer(lanes, 0, np.random.default_rng(3))
    assert scorer is not None
    bi = np.arange(N)
    for _ in range(60):
        x = _contexts(rng)
        chosen = lanes_argmax(scorer.score(x))
        r = (rng.random(N) < 0.3).astype(float)
        lanes.observe(chosen, r, x)
        model.accumulate(stats, chosen, r, x, batch_index=bi)
    got = lanes.current_stats()
    for name in stats:
        assert np.allclose(got[name], stats[name], rtol=1e-10, atol=1e-10), name
    ref = model.posterior(stats)
    post = lanes.posterior()
    assert np.allclose(post.mean, ref.mean, atol=1e-8)
    cov = post.sqrt_cov @ np.swapaxes(post.sqrt_cov, -1, -2)
    ref_cov = ref.sqrt_cov @ np.swapaxes(ref.sqrt_cov, -1, -2)
    assert np.allclose(cov, ref_cov, atol=1e-8)


def test_gaussian_lanes_draw_the_models_draws() -> None:
    # known noise: the lanes' draw is LinearGaussian.sample's (the same normals), up to rounding
    model = LinearGaussian(n_features=D, prior_precision=0.5, noise_variance=0.2)
    lanes = model.lanes(N, K)
    x = _contexts(np.random.default_rng(4))
    scorer = ThompsonSampling(scale=0.5).lane_scorer(lanes, 0, np.random.default_rng(6))
    assert scorer is not None
    got = scorer.score(x).copy()
    stats = model.init_stats(K, (N,))
    want = model.sample_scaled(model.posterior(stats), np.random.default_rng(6), 0.5, x)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_batched_model_update_is_the_lanes_update() -> None:
    # LogisticLaplace.update_posterior_cells takes the lanes' Potter step (one implementation):
    # after the same observations both hold the same factors, up to rounding
    model = LogisticLaplace(n_features=D, prior_precision=3.0)
    stats = model.init_stats(K, (N,))
    post = model.posterior(stats)
    rng = np.random.default_rng(8)
    bi = np.arange(N)
    for _ in range(30):
        x = _contexts(rng)
        arms = rng.integers(0, K, N)
        r = (rng.random(N) < 0.4).astype(float)
        model.accumulate(stats, arms, r, x, batch_index=bi)
        post = model.update_posterior_cells(post, stats, bi, arms, r, x)
    assert post.online_updates == 30
    exact = model.posterior(stats)
    cov = post.sqrt_cov @ np.swapaxes(post.sqrt_cov, -1, -2)
    assert np.allclose(cov, exact.sqrt_cov @ np.swapaxes(exact.sqrt_cov, -1, -2), atol=1e-10)
    assert np.array_equal(post.mean, exact.mean)


def test_non_additive_statistics_have_no_delta() -> None:
    with pytest.raises(ConfigurationError, match="not additive"):
        LogisticLaplace(n_features=2).delta(2, np.array([0]), np.array([1.0]),
                                            np.ones((1, 2)))
