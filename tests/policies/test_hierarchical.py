"""The shared-weights linear model: exact against the brute-force joint regression, its limits,
its online updates, its Thompson draws, configuration and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError, InvalidContextError
from tsbandit.policies import (
    HierarchicalLinear,
    LinearGaussian,
    ThompsonSampling,
    model_from_config,
)
from tsbandit.policies.hierarchical import expand_features


def _data(rng, K, d, n, features="linear"):
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, K, n)
    r = rng.normal(size=n)
    return X, arms, r


def _brute(model: HierarchicalLinear, K, X, arms, r):
    """The joint Bayesian linear regression on the augmented design [z, e_a (x) z]: mean and
    covariance of every arm's weights w_a = w0 + delta_a, ``(K D,)`` and ``(K D, K D)``."""
    Z = expand_features(X, model.features)
    D = Z.shape[1]
    n = Z.shape[0]
    aug = np.zeros((n, (K + 1) * D))
    aug[:, :D] = Z
    for i in range(n):
        aug[i, D * (1 + arms[i]):D * (2 + arms[i])] = Z[i]
    s2 = model.noise_variance
    P = np.diag(np.r_[model._ps, np.tile(model._po, K)]) + aug.T @ aug / s2
    C = np.linalg.inv(P)
    mu = C @ (aug.T @ r / s2)
    T = np.zeros((K * D, (K + 1) * D))
    for a in range(K):
        T[a * D:(a + 1) * D, :D] = np.eye(D)
        T[a * D:(a + 1) * D, D * (1 + a):D * (2 + a)] = np.eye(D)
    return T @ mu, T @ C @ T.T


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 4), d=st.integers(1, 4), n=st.integers(0, 25),
       seed=st.integers(0, 2**31), ps=st.floats(0.05, 20.0), po=st.floats(0.05, 20.0),
       s2=st.floats(0.05, 5.0))
def test_posterior_equals_the_brute_force_joint_regression(K, d, n, seed, ps, po, s2):
    rng = np.random.default_rng(seed)
    m = HierarchicalLinear(n_features=d, shared_precision=ps * rng.uniform(0.5, 2.0, d),
                           offset_precision=po * rng.uniform(0.5, 2.0, d), noise_variance=s2)
    X, arms, r = _data(rng, K, d, n)
    s = m.init_stats(K)
    m.accumulate(s, arms, r, X)
    p = m.posterior(s)
    mean, cov = _brute(m, K, X, arms, r)
    assert _rel(p.mean.reshape(-1), mean) < 1e-8 or np.max(np.abs(mean)) < 1e-12
    assert _rel(p.weight_covariance().reshape(K * d, K * d), cov) < 1e-8
    x = rng.normal(size=(3, d))
    mu = np.einsum("nd,kd->nk", x, mean.reshape(K, d))
    var = np.stack([np.einsum("ni,ij,nj->n", x, cov[a * d:(a + 1) * d, a * d:(a + 1) * d], x)
                    for a in range(K)], axis=1)
    np.testing.assert_allclose(m.mean(p, x), mu, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.std(p, x) ** 2, var, rtol=1e-8)


def test_quadratic_features_are_the_same_model_on_expanded_contexts():
    rng = np.random.default_rng(1)
    m = HierarchicalLinear(n_features=2, shared_precision=0.5, offset_precision=2.0,
                           features="quadratic")
    assert m.model_features == 5
    X, arms, r = _data(rng, 3, 2, 30)
    s = m.init_stats(3)
    m.accumulate(s, arms, r, X)
    mean, cov = _brute(m, 3, X, arms, r)
    p = m.posterior(s)
    assert _rel(p.mean.reshape(-1), mean) < 1e-8
    assert _rel(p.weight_covariance().reshape(15, 15), cov) < 1e-8


def _gap(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_infinite_offset_precision_is_one_pooled_linear_model():
    rng = np.random.default_rng(2)
    K, d = 3, 3
    X, arms, r = _data(rng, K, d, 60)
    pooled = LinearGaussian(n_features=d, prior_precision=0.7, noise_variance=0.5)
    sp = pooled.init_stats(1)
    pooled.accumulate(sp, np.zeros(60, dtype=int), r, X)
    pp = pooled.posterior(sp)
    x = rng.normal(size=(5, d))
    gaps = []
    for po in (1e4, 1e5, 1e6):
        h = HierarchicalLinear(n_features=d, shared_precision=0.7, offset_precision=po,
                               noise_variance=0.5)
        s = h.init_stats(K)
        h.accumulate(s, arms, r, X)
        ph = h.posterior(s)
        gaps.append(max(_gap(h.mean(ph, x)[:, a], pooled.mean(pp, x)[:, 0]) for a in range(K))
                    + max(_gap(h.std(ph, x)[:, a], pooled.std(pp, x)[:, 0]) for a in range(K)))
    # every arm becomes the pooled model, the gap O(1 / offset precision)
    assert gaps[2] < 2e-3
    assert gaps[1] < 0.2 * gaps[0] and gaps[2] < 0.2 * gaps[1]


def test_infinite_shared_precision_is_independent_per_arm_models():
    rng = np.random.default_rng(3)
    K, d = 4, 2
    X, arms, r = _data(rng, K, d, 50)
    lin = LinearGaussian(n_features=d, prior_precision=2.0, noise_variance=0.3)
    sl = lin.init_stats(K)
    lin.accumulate(sl, arms, r, X)
    pl = lin.posterior(sl)
    x = rng.normal(size=(5, d))
    gaps = []
    for ps in (1e4, 1e5, 1e6):
        h = HierarchicalLinear(n_features=d, shared_precision=ps, offset_precision=2.0,
                               noise_variance=0.3)
        s = h.init_stats(K)
        h.accumulate(s, arms, r, X)
        ph = h.posterior(s)
        cov = ph.weight_covariance()
        gaps.append(_gap(h.mean(ph, x), lin.mean(pl, x)) + _gap(h.std(ph, x), lin.std(pl, x))
                    + float(np.max(np.abs(cov[0, :, 1, :]))))   # the arms uncorrelated
    assert gaps[2] < 1e-5
    assert gaps[1] < 0.2 * gaps[0] and gaps[2] < 0.2 * gaps[1]


def test_a_new_arm_starts_at_the_shared_weights():
    rng = np.random.default_rng(4)
    m = HierarchicalLinear(n_features=2, shared_precision=0.1, offset_precision=10.0,
                           noise_variance=0.1)
    s = m.init_stats(3)
    X = rng.normal(size=(200, 2))
    arms = rng.integers(0, 2, 200)               # arm 2 never played
    m.accumulate(s, arms, X @ np.array([1.0, -0.5]) + 0.1 * rng.normal(size=200), X)
    p = m.posterior(s)
    np.testing.assert_allclose(p.mean[2], p.shared_mean, rtol=1e-12)
    assert np.allclose(p.shared_mean, [1.0, -0.5], atol=0.1)


@pytest.mark.parametrize("batch", [False, True])
def test_online_updates_equal_the_exact_posterior(batch):
    rng = np.random.default_rng(5)
    K, d = 3, 3
    m = HierarchicalLinear(n_features=d, shared_precision=np.linspace(0.5, 2.0, 9),
                           offset_precision=3.0, noise_variance=0.2, features="quadratic")
    if not batch:
        s = m.init_stats(K)
        p = m.posterior(s)
        for _ in range(40):
            x, a, r = rng.normal(size=d), int(rng.integers(K)), float(rng.normal())
            p = m.observe_one(s, p, a, r, x)
    else:
        T = 5
        s = m.init_stats(K, (T,))
        p = m.posterior(s)
        for _ in range(40):
            x, a, r = rng.normal(size=(T, d)), rng.integers(0, K, T), rng.normal(size=T)
            m.accumulate(s, a, r, x, batch_index=np.arange(T))
            p = m.update_posterior_cells(p, s, np.arange(T), a, r, x)
    q = m.posterior(s)
    assert p.online_updates == 40
    np.testing.assert_allclose(p.mean, q.mean, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(p.weight_covariance(), q.weight_covariance(), rtol=1e-9,
                               atol=1e-11)


def test_thompson_draws_match_the_joint_posterior():
    rng = np.random.default_rng(6)
    K, d = 3, 2
    m = HierarchicalLinear(n_features=d, shared_precision=0.5, offset_precision=4.0,
                           noise_variance=0.5)
    X, arms, r = _data(rng, K, d, 20)
    s = m.init_stats(K)
    m.accumulate(s, arms, r, X)
    p = m.posterior(s)
    x = np.array([0.3, -1.2])
    n = 40_000
    draws = m.sample(p, np.random.default_rng(7), x, size=n)       # (n, K)
    assert draws.shape == (n, K)
    W = p.weight_covariance()
    cov = np.einsum("i,aibj,j->ab", x, W, x)
    mu = m.mean(p, x)
    sd = np.sqrt(np.diag(cov))
    # the sample mean's standard error is sd / sqrt(n): 5 SE
    assert np.all(np.abs(draws.mean(axis=0) - mu) < 5 * sd / np.sqrt(n))
    # the sample covariance's standard error is sqrt((c_ab^2 + c_aa c_bb) / n)
    se = np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(draws.T) - cov) < 5 * se)
    assert cov[0, 1] > 10 * se[0, 1]                   # the arms are correlated, and drawn so
    scaled = m.sample_scaled(p, np.random.default_rng(8), 0.5, x, size=n)
    assert np.all(np.abs(scaled.std(axis=0) - 0.5 * sd) < 5 * 0.5 * sd / np.sqrt(2 * n))


def test_weight_draws_match_the_joint_posterior():
    rng = np.random.default_rng(9)
    m = HierarchicalLinear(n_features=2, shared_precision=1.0, offset_precision=3.0)
    X, arms, r = _data(rng, 2, 2, 15)
    s = m.init_stats(2)
    m.accumulate(s, arms, r, X)
    p = m.posterior(s)
    n = 40_000
    w = m.sample_weights(p, np.random.default_rng(10), size=n).reshape(n, 4)
    cov = p.weight_covariance().reshape(4, 4)
    se = np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(w.mean(axis=0) - p.mean.reshape(-1)) < 5 * np.sqrt(np.diag(cov) / n))
    assert np.all(np.abs(np.cov(w.T) - cov) < 5 * se)
    lo, hi = m.weight_interval(p, 0.95)
    inside = (w.reshape(n, 2, 2) > lo) & (w.reshape(n, 2, 2) < hi)
    assert np.all(np.abs(inside.mean(axis=0) - 0.95) < 5 * np.sqrt(0.95 * 0.05 / n))


def test_interval_is_the_gaussian_predictive():
    m = HierarchicalLinear(n_features=2)
    p = m.posterior(m.init_stats(2))
    x = np.array([1.0, 2.0])
    lo, hi = m.interval(p, 0.95, x)
    np.testing.assert_allclose(hi - lo, 2 * 1.959963984540054 * m.std(p, x))


def test_config_round_trip_through_json():
    m = HierarchicalLinear(n_features=3, shared_precision=np.linspace(0.5, 2.0, 9).tolist(),
                           offset_precision=8.0, noise_variance=0.2, features="quadratic",
                           refresh_every=50)
    back = model_from_config(json.loads(json.dumps(m.to_config())))
    assert back == m or back.to_config() == m.to_config()
    assert isinstance(back, HierarchicalLinear) and back.model_features == 9


@pytest.mark.parametrize("kwargs, match", [
    ({"n_features": 0}, "n_features"),
    ({"n_features": 2, "shared_precision": -1.0}, "shared_precision"),
    ({"n_features": 2, "offset_precision": [1.0, 2.0, 3.0]}, "offset_precision"),
    ({"n_features": 2, "offset_precision": "x"}, "offset_precision"),
    ({"n_features": 2, "noise_variance": 0.0}, "noise_variance"),
    ({"n_features": 2, "features": "cubic"}, "features"),
    ({"n_features": 2, "refresh_every": 0}, "refresh_every"),
    ({"n_features": 60, "features": "quadratic"}, "n_features"),
])
def test_bad_configuration_is_a_configuration_error(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        HierarchicalLinear(**kwargs)


def test_bad_contexts_are_context_errors():
    m = HierarchicalLinear(n_features=2)
    p = m.posterior(m.init_stats(2))
    with pytest.raises(InvalidContextError, match="context"):
        m.mean(p, None)
    with pytest.raises(InvalidContextError, match="length 2"):
        m.sample(p, np.random.default_rng(0), np.ones(3))
    with pytest.raises(InvalidContextError):
        m.accumulate(m.init_stats(2), np.array([0]), np.array([1.0]), None)


def test_in_a_bandit_it_learns_and_serializes():
    rng = np.random.default_rng(11)
    model = HierarchicalLinear(n_features=2, shared_precision=1.0, offset_precision=4.0,
                               noise_variance=0.1)
    b = Bandit(["a", "b", "c"], model, ThompsonSampling(), seed=3)
    W = np.array([[0.1, 0.0], [0.2, 0.1], [0.5, 0.2]])
    for _ in range(300):
        x = np.array([1.0, rng.uniform()])
        d = b.select(x)
        b.update(d.arm, float(W[["a", "b", "c"].index(d.arm)] @ x + 0.1 * rng.normal()), x)
    assert b.select(np.array([1.0, 0.5])).arm == "c"
    back = Bandit.from_dict(json.loads(json.dumps(b.to_dict())))
    np.testing.assert_allclose(back.model.mean(back.posterior, np.array([1.0, 0.5])),
                               b.model.mean(b.posterior, np.array([1.0, 0.5])))
