"""The single-decision fast path (``Bandit.select`` / ``Bandit.update`` one at a time) makes
exactly the decisions, posteriors and random-number use of the general path, bit for bit.

* ``sample_one`` == ``sample`` (values and generator state afterwards);
* ``choose_one`` == ``choose(...)[0]``, ties included;
* ``observe_one`` == ``accumulate`` + ``update_posterior``;
* ``select(x)`` == ``select(x, eligible=all arms)`` (which takes the general path) over whole
  trajectories, with identical final posteriors;
* the caches behind it (the validated context, the projection ``S^T x``) never serve stale
  data: an array changed in place after the decision is validated and used as it is now.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit import Bandit
from tsbandit.errors import InvalidContextError
from tsbandit.policies import (
    UCB1,
    BetaBernoulli,
    BetaPosterior,
    EpsilonGreedy,
    Greedy,
    LinearGaussian,
    Softmax,
    ThompsonSampling,
)

from .test_contract import ARMS, _models, context, reward

MODELS = ["beta", "gaussian", "linear", "linear-nig", "logistic"]


def _played(model_name: str, rule=None, seed: int = 0, rounds: int = 30) -> Bandit:
    b = Bandit(ARMS, _models()[model_name], rule, seed=seed)
    rng = np.random.default_rng(seed + 50)
    for _ in range(rounds):
        x = context(rng, model_name)
        d = b.select(x)
        b.update(d.arm, reward(model_name, d.index, x, rng), x)
    return b


def _same_posterior(p, q) -> bool:
    names = getattr(type(p), "__slots__", None) or vars(p)
    fields = [k for k in names if k not in ("projection", "scratch")]  # caches, not state
    return all(np.array_equal(np.asarray(getattr(p, k)), np.asarray(getattr(q, k)))
               for k in fields)


@pytest.mark.parametrize("model_name", MODELS)
def test_sample_one_is_sample_bit_for_bit(model_name):
    b = _played(model_name)
    x = context(np.random.default_rng(1), model_name)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    fast = b.model.sample_one(b.posterior, r1, x)
    slow = b.model.sample(b.posterior, r2, x)
    if fast is not None:
        assert fast == slow.tolist()
        assert r1.bit_generator.state == r2.bit_generator.state
    else:
        assert model_name in ("gaussian", "logistic")  # no fast draw: sample is used


def test_sample_one_matches_sample_when_gamma_draws_underflow():
    # tiny priors: both gamma variates of an arm can be exactly 0, and 0 / 0 is NaN in both
    # (a posterior no accepted prior reaches since alpha0, beta0 >= 0.05: built directly, to
    # keep the NaN path of the kernels and the tie-break exact)
    m = BetaBernoulli()
    p = BetaPosterior.from_params(np.full((2, 5), 1e-3))
    r1, r2 = np.random.default_rng(0), np.random.default_rng(0)
    nans = 0
    with np.errstate(invalid="ignore"):
        for _ in range(200):
            fast, slow = np.array(m.sample_one(p, r1)), m.sample(p, r2)
            assert np.array_equal(fast, slow, equal_nan=True)
            nans += int(np.isnan(slow).sum())
    assert nans > 0  # the case really happened


def test_sample_one_declines_batched_posteriors():
    m = BetaBernoulli()
    assert m.sample_one(m.posterior(m.init_stats(3, (4,))), np.random.default_rng(0)) is None
    lm = LinearGaussian(n_features=2)
    post = lm.posterior(lm.init_stats(3, (4,)))
    assert lm.sample_one(post, np.random.default_rng(0), np.ones(2)) is None


class _Tied(BetaBernoulli):
    """Draws with a tie at the top (to reach the tie-break of the fast path)."""

    def sample(self, posterior, rng, contexts=None, size=None):
        rng.random()
        return np.array([0.2, 0.7, 0.7, 0.1])

    def sample_one(self, posterior, rng, context=None):
        return self.sample(posterior, rng, context).tolist()


@pytest.mark.parametrize("model_name", [*MODELS, "tied"])
@pytest.mark.parametrize("rule", [ThompsonSampling(), ThompsonSampling(scale=0.5), Greedy(),
                                  UCB1(), EpsilonGreedy(0.3), Softmax(0.1)])
def test_choose_one_is_choose_bit_for_bit(model_name, rule):
    if model_name == "tied":
        model = _Tied()
        b = Bandit(ARMS, model, rule, seed=0)
        x = None
    else:
        b = _played(model_name, rule)
        x = context(np.random.default_rng(2), model_name)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(40):
        one = b.rule.choose_one(b.model, b.posterior, b.stats, r1, x)
        full = b.rule.choose(b.model, b.posterior, b.stats, r2, x)
        assert type(one) is int and one == int(full[0])
    assert r1.bit_generator.state == r2.bit_generator.state


@pytest.mark.parametrize("model_name", MODELS)
def test_observe_one_is_accumulate_then_update_posterior(model_name):
    b = _played(model_name)
    m = b.model
    rng = np.random.default_rng(3)
    s1, s2 = b.stats, b.stats
    p1, p2 = m.posterior(s1), m.posterior(s2)
    for _ in range(25):
        x = context(rng, model_name)
        a = int(rng.integers(len(ARMS)))
        r = m.check_reward(reward(model_name, a, x, rng))
        p1 = m.observe_one(s1, p1, a, r, x)
        m.accumulate(s2, np.array([a]), np.array([r]), None if x is None else x[None, :])
        p2 = m.update_posterior(p2, s2, a, r, x)
        assert all(np.array_equal(s1[k], s2[k]) for k in s1)
        assert _same_posterior(p1, p2)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("rule", [ThompsonSampling(), ThompsonSampling(scale=0.25)])
def test_fast_select_equals_the_general_path(model_name, rule):
    fast = Bandit(ARMS, _models()[model_name], rule, seed=21)
    slow = Bandit(ARMS, _models()[model_name], rule, seed=21)
    rng = np.random.default_rng(22)
    for t in range(80):
        x = context(rng, model_name)
        d1 = fast.select(x, propensity=(t % 10 == 0))
        d2 = slow.select(x, eligible=ARMS, propensity=(t % 10 == 0))  # the general path
        assert (d1.arm, d1.index, d1.propensity) == (d2.arm, d2.index, d2.propensity)
        r = reward(model_name, d1.index, x, rng)
        fast.update(d1.arm, r, x)
        slow.update(d2.arm, r, None if x is None else x.tolist())  # no cache: validated anew
    assert json.dumps(fast.to_dict(), sort_keys=True) == json.dumps(slow.to_dict(),
                                                                     sort_keys=True)
    assert _same_posterior(fast.posterior, slow.posterior)


@pytest.mark.parametrize("model_name", ["linear", "linear-nig", "logistic"])
def test_a_context_changed_after_the_decision_is_validated_and_used_as_it_is(model_name):
    b, ref = _played(model_name, seed=3), _played(model_name, seed=3)
    x = np.array([1.0, 0.3, 0.6])
    d = b.select(x)
    ref.select(x.copy())
    before = json.dumps(b.to_dict(), sort_keys=True)
    x[1] = np.nan  # changed in place after the decision
    with pytest.raises(InvalidContextError):
        b.update(d.arm, 1.0, x)
    assert json.dumps(b.to_dict(), sort_keys=True) == before
    x[1] = 0.9  # a different finite context: learned as it is now, not as it was decided
    b.update(d.arm, 1.0, x)
    ref.update(d.arm, 1.0, np.array([1.0, 0.9, 0.6]))
    assert json.dumps(b.to_dict(), sort_keys=True) == json.dumps(ref.to_dict(), sort_keys=True)
    assert _same_posterior(b.posterior, ref.posterior)


def test_projection_cache_is_keyed_by_context_and_cleared_by_updates():
    b, ref = _played("linear", seed=4), _played("linear", seed=4)
    x1, x2 = np.array([1.0, 0.2, 0.4]), np.array([1.0, 0.8, 0.1])
    b.select(x1)
    key, phi = b.posterior.projection
    assert key == x1.tobytes()
    np.testing.assert_array_equal(phi, x1 @ b.posterior.sqrt_cov)
    assert b.posterior.scaled(0.5).projection is None  # copies start without it
    b.update("a", 0.5, x2)  # another context: the cache is not used, and is cleared
    ref.update("a", 0.5, x2)
    assert b.posterior.projection is None
    assert _same_posterior(b.posterior, ref.posterior)


def test_window_buffer_keeps_its_own_copy_of_the_context():
    b = Bandit(ARMS, LinearGaussian(n_features=3), seed=0, window=5)
    x = np.array([1.0, 0.5, 0.5])
    b.update("a", 1.0, x)
    x[:] = 7.0  # the caller reuses its array
    assert b.to_dict()["window_buffer"][0][2] == [1.0, 0.5, 0.5]
