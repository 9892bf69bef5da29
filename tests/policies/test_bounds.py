"""Bounds on configurations, rewards and contexts that keep every statistic and posterior
summary finite (``tsbandit.policies.base``): what is refused, with which error and message,
and that whatever is accepted gives finite means, intervals and draws."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError, InvalidContextError, InvalidRewardError
from tsbandit.policies import LinearGaussian, LogisticLaplace, NormalInverseGamma
from tsbandit.policies.base import (
    BETA_SHAPE_MIN,
    MAX_ABS_CONTEXT,
    MAX_ABS_REWARD,
    MAX_FEATURES,
)
from tsbandit.policies.registry import model_from_config

HUGE_D = 145042897285184  # found by Schemathesis: answered 500 (ArrayMemoryError)


@pytest.mark.parametrize(("config", "name"), [
    ({"kind": "beta", "alpha0": 1e308}, "alpha0"),
    ({"kind": "beta", "beta0": 1e-308}, "beta0"),
    ({"kind": "beta", "alpha0": 1e7}, "alpha0"),
    ({"kind": "beta", "alpha0": "1"}, "alpha0"),
    ({"kind": "gaussian", "mu0": 1e308, "kappa0": 1e-308}, "mu0"),
    ({"kind": "gaussian", "mu0": 1e200}, "mu0"),
    ({"kind": "gaussian", "mu0": -1.0000001e12}, "mu0"),
    ({"kind": "gaussian", "kappa0": 1e-308}, "kappa0"),
    ({"kind": "gaussian", "alpha0": 0.4}, "alpha0"),
    ({"kind": "gaussian", "beta0": 1e13}, "beta0"),
    ({"kind": "gaussian", "beta0": float("nan")}, "beta0"),
    ({"kind": "linear", "n_features": HUGE_D}, "n_features"),
    ({"kind": "linear", "n_features": MAX_FEATURES + 1}, "n_features"),
    ({"kind": "linear", "n_features": 2, "prior_precision": 1e-7}, "prior_precision"),
    ({"kind": "linear", "n_features": 2, "prior_precision": [1.0, 1e7]}, "prior_precision"),
    ({"kind": "linear", "n_features": 2, "noise_variance": 1e13}, "noise_variance"),
    ({"kind": "linear", "n_features": 2, "unknown_noise": True, "noise_a0": 0.1}, "noise_a0"),
    ({"kind": "linear", "n_features": 2, "noise_b0": 1e-13}, "noise_b0"),
    ({"kind": "logistic", "n_features": HUGE_D}, "n_features"),
    ({"kind": "logistic", "n_features": 200_000_000}, "n_features"),
    ({"kind": "logistic", "n_features": 2, "max_newton_steps": 10**18}, "max_newton_steps"),
])
def test_configurations_that_would_break_later_are_refused(config, name):
    # nothing is allocated before n_features is checked (2e8 features used to allocate
    # gigabytes, 1.45e14 raised ArrayMemoryError): measured in bytes, not seconds
    tracemalloc.start()
    try:
        with pytest.raises(ConfigurationError, match=name):
            model_from_config(config)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


@pytest.mark.parametrize("config", [
    {"kind": "beta", "alpha0": BETA_SHAPE_MIN, "beta0": 1e6},
    {"kind": "gaussian", "mu0": -1e12, "kappa0": 1e-6, "alpha0": 0.5, "beta0": 1e12},
    {"kind": "gaussian", "mu0": 0.0, "kappa0": 1e-6, "alpha0": 1.0, "beta0": 1e-6},
    {"kind": "linear", "n_features": MAX_FEATURES, "prior_precision": 1e-6},
    {"kind": "logistic", "n_features": 3, "prior_precision": [1e-6, 1.0, 1e6]},
])
def test_the_bounds_themselves_are_accepted(config):
    model_from_config(config)


@pytest.mark.parametrize("model", [NormalInverseGamma(), LinearGaussian(n_features=2)])
def test_rewards_beyond_the_bound_are_refused(model):
    x = None if model.n_features is None else np.array([1.0, 0.5])
    b = Bandit(["a", "b"], model, seed=0)
    before = {k: v.copy() for k, v in b.stats.items()}
    for r in (1.3e154, -1e13, 1e308, np.float64(2e12)):
        with pytest.raises(InvalidRewardError, match="too large"):
            b.update("a", r, x)
        with pytest.raises(InvalidRewardError, match="too large"):
            b.update_batch(["a", "b"], [1.0, r], None if x is None else [x, x])
    with pytest.raises(InvalidRewardError, match="not finite"):
        b.update("a", float("nan"), x)
    assert all(np.array_equal(b.stats[k], v) for k, v in before.items())
    # the bound itself is accepted, twice, and the statistics stay finite
    for r in (MAX_ABS_REWARD, -MAX_ABS_REWARD, MAX_ABS_REWARD):
        b.update("a", r, x)
    assert all(np.isfinite(v).all() for v in b.stats.values())
    lo, hi = b.model.interval(b.posterior, 0.95, x)
    assert np.isfinite(lo).all() and np.isfinite(hi).all()


@pytest.mark.parametrize("model", [LinearGaussian(n_features=2), LogisticLaplace(n_features=2)])
def test_contexts_beyond_the_bound_are_refused(model):
    b = Bandit(["a", "b"], model, seed=0)
    for bad in ([1e308, 1.0], np.array([1.0, -1.0000001e12]), np.array([[1.0, 0.0], [2e12, 0]])):
        with pytest.raises(InvalidContextError, match="too large"):
            b.select(bad)
        with pytest.raises(InvalidContextError, match="too large"):
            b.update("a", 1.0, np.atleast_2d(bad)[-1])
        with pytest.raises(InvalidContextError, match="too large"):
            model.check_contexts(bad)
    with pytest.raises(InvalidContextError, match="NaN or infinite"):
        b.select(np.array([np.inf, 1.0]))
    # a sum of squares above the bound squared, but every entry within it: accepted
    x = np.array([MAX_ABS_CONTEXT, -MAX_ABS_CONTEXT])
    assert model.check_context(x) is x
    b.select(x)


LEVELS = st.sampled_from([0.5, 0.95, 0.999999, 1 - 2**-52, 1 - 2**-53, 1e-300])


def _prior_value(low: float, high: float) -> st.SearchStrategy[float]:
    """Values around and beyond a range: the bounds, far outside, and inside (log-uniform)."""
    inside = st.floats(np.log10(low), np.log10(high)).map(lambda e: float(10.0 ** e))
    return st.one_of(st.sampled_from([low, high, low / 2, high * 2, 1e-308, 1e308, 5e-324]),
                     inside)


configs = st.one_of(
    st.builds(lambda a, b: {"kind": "beta", "alpha0": a, "beta0": b},
              _prior_value(BETA_SHAPE_MIN, 1e6), _prior_value(BETA_SHAPE_MIN, 1e6)),
    st.builds(lambda m, k, a, b: {"kind": "gaussian", "mu0": m, "kappa0": k, "alpha0": a,
                                  "beta0": b},
              st.one_of(st.sampled_from([0.0, 1e12, -1e12, 1e13, 1e200]), st.floats(-1e12, 1e12)),
              _prior_value(1e-6, 1e6), _prior_value(0.5, 1e6), _prior_value(1e-12, 1e12)),
    st.builds(lambda p, s, u, a: {"kind": "linear", "n_features": 2, "prior_precision": p,
                                  "noise_variance": s, "unknown_noise": u, "noise_a0": a},
              _prior_value(1e-6, 1e6), _prior_value(1e-12, 1e12), st.booleans(),
              _prior_value(0.5, 1e6)),
    st.builds(lambda p: {"kind": "logistic", "n_features": 2, "prior_precision": p},
              _prior_value(1e-6, 1e6)),
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, level=LEVELS, extreme=st.booleans())
def test_any_accepted_configuration_gives_finite_summaries(config, level, extreme):
    """Whatever configuration is accepted, with observations at the reward and context bounds,
    has finite posterior means, credible intervals at any level < 1, and draws."""
    try:
        model = model_from_config(config)
    except ConfigurationError:
        return
    b = Bandit(["a", "b", "c"], model, seed=1)
    binary = config["kind"] in ("beta", "logistic")
    big = 1.0 if binary else (MAX_ABS_REWARD if extreme else 3.0)
    xs = [None] * 4 if model.n_features is None else [
        np.array([1.0, MAX_ABS_CONTEXT if extreme else 0.5]), np.array([1.0, -2.0]),
        np.array([MAX_ABS_CONTEXT, MAX_ABS_CONTEXT]) if extreme else np.array([0.0, 1.0]),
        np.array([1.0, 0.0])]
    for i, x in enumerate(xs):
        b.update(["a", "a", "b", "a"][i], [big, 0.0, big, -big if not binary else 0.0][i], x)
    x = xs[0]
    post = b.posterior
    assert np.isfinite(model.mean(post, x)).all()
    lo, hi = model.interval(post, level, x)
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and (lo <= hi).all()
    draws = model.sample(post, np.random.default_rng(0), x, size=200)
    assert np.isfinite(draws).all()
    if config["kind"] == "beta":
        assert ((draws >= 0) & (draws <= 1)).all()
    assert b.select(x).arm in ("a", "b", "c")
    assert all(np.isfinite(v).all() for v in b.stats.values())


@pytest.mark.parametrize("model", [
    LinearGaussian(n_features=2, prior_precision=1e-6),
    LinearGaussian(n_features=2, prior_precision=1e-6, unknown_noise=True),
    LogisticLaplace(n_features=2, prior_precision=1e-6),
])
def test_precisions_that_rounding_leaves_indefinite_still_factor(model):
    """Collinear contexts at the bound beside a weak prior: next to entries ~1e24 the prior's
    1e-6 is lost to rounding and the precision is numerically indefinite (LinAlgError before);
    the factorization adds the smallest jitter that works and everything stays finite."""
    b = Bandit(["a"], model, seed=0)
    x, y = np.array([1e12, 1e12]), np.array([1e12, 1e12 * (1 - 2**-52)])
    for i in range(6):
        b.update("a", float(i % 2), x if i % 3 else y)
    post = b.model.posterior(b.stats)
    assert np.isfinite(post.sqrt_cov).all() and np.isfinite(post.mean).all()
    lo, hi = b.model.interval(post, 0.95, x)
    assert np.isfinite(lo).all() and np.isfinite(hi).all()
    assert np.isfinite(b.model.sample(post, np.random.default_rng(0), x, size=50)).all()
