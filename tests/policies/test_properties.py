"""Property tests: statistics are additive and order-free; decay composes; exact round trips."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tsbandit.policies import BetaBernoulli, LinearGaussian, NormalInverseGamma, Stats

K, D = 3, 2


@st.composite
def observations(draw, binary: bool, contextual: bool):
    n = draw(st.integers(0, 25))
    arms = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)), dtype=int)
    if binary:
        rewards = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    else:
        rewards = np.array(draw(st.lists(st.floats(-100, 100), min_size=n, max_size=n)))
    ctx = None
    if contextual:
        flat = draw(st.lists(st.floats(-10, 10), min_size=n * D, max_size=n * D))
        ctx = np.array(flat, dtype=float).reshape(n, D)
    return arms, rewards.astype(float), ctx


MODELS = [
    (BetaBernoulli(), True, False),
    (NormalInverseGamma(), False, False),
    (LinearGaussian(n_features=D), False, True),
]


def _delta(model, obs):
    arms, rewards, ctx = obs
    return model.delta(K, arms, rewards, ctx)


def _concat(a, b):
    arms = np.concatenate([a[0], b[0]])
    rewards = np.concatenate([a[1], b[1]])
    ctx = None if a[2] is None else np.concatenate([a[2], b[2]])
    return arms, rewards, ctx


def _check_additive(model, o1, o2):
    union = _delta(model, _concat(o1, o2))
    d1, d2 = _delta(model, o1), _delta(model, o2)
    assert (d1 + d2).allclose(union, rtol=1e-9, atol=1e-6)
    assert (d2 + d1).allclose(union, rtol=1e-9, atol=1e-6)
    # permuting the observations inside a batch changes nothing either
    arms, rewards, ctx = _concat(o2, o1)
    perm = np.random.default_rng(len(arms)).permutation(len(arms))
    shuffled = (arms[perm], rewards[perm], None if ctx is None else ctx[perm])
    assert _delta(model, shuffled).allclose(union, rtol=1e-9, atol=1e-6)


@given(observations(True, False), observations(True, False))
def test_beta_additive_order_free(o1, o2):
    _check_additive(MODELS[0][0], o1, o2)


@given(observations(False, False), observations(False, False))
def test_gaussian_additive_order_free(o1, o2):
    _check_additive(MODELS[1][0], o1, o2)


@given(observations(False, True), observations(False, True))
def test_linear_additive_order_free(o1, o2):
    _check_additive(MODELS[2][0], o1, o2)


@given(observations(False, True), st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_decay_composes(obs, g1, g2):
    for model, binary, contextual in MODELS:
        arms, rewards, ctx = obs
        if binary:
            rewards = (rewards > 0).astype(float)
        s = model.delta(K, arms, rewards, ctx if contextual else None)
        twice = model.decay(model.decay(s, g1), g2)
        once = model.decay(s, g1 * g2)
        assert twice.allclose(once, rtol=1e-12, atol=1e-12)


@given(observations(False, True))
def test_stats_round_trip_exactly(obs):
    s = _delta(MODELS[2][0], obs)
    back = Stats.from_dict(s.to_dict())
    for k in s:
        assert np.array_equal(back[k], s[k])


@given(observations(True, False), observations(True, False))
def test_batch_update_equals_one_at_a_time_posterior(o1, o2):
    """The posterior depends on the data only through the summed statistics."""
    model = BetaBernoulli(2.0, 3.0)
    arms, rewards, _ = _concat(o1, o2)
    s = model.init_stats(K)
    for a, r in zip(arms, rewards, strict=True):
        model.accumulate(s, np.array([a]), np.array([r]))
    p1 = model.posterior(s)
    p2 = model.posterior(model.delta(K, arms, rewards))
    np.testing.assert_allclose(p1.alpha, p2.alpha)
    np.testing.assert_allclose(p1.beta, p2.beta)
