"""Target policies: exact distributions where they exist, Monte Carlo within its error, and a
replayed policy that only ever learns from the past."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError, UnknownArmError
from tsbandit.evaluation import IPS, LoggedData
from tsbandit.evaluation.targets import (
    FixedPolicy,
    ReplayedPolicy,
    UniformPolicy,
    bandit_policy,
    greedy_policy,
    ranking_probabilities,
    thompson_policy,
)
from tsbandit.policies import BetaBernoulli, EpsilonGreedy, Greedy, LinearGaussian


def beta_log(n=600, k=3, slots=1, seed=0, rates=(0.1, 0.5, 0.9)):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, k, n)
    rewards = (rng.random(n) < np.resize(np.asarray(rates), k)[actions]).astype(float)
    pos = None if slots == 1 else rng.integers(0, slots, n)
    return LoggedData(actions, rewards, np.full(n, 1 / k), k, positions=pos, n_positions=slots,
                      action_names=tuple("abcdefgh"[:k]))


def test_uniform_and_fixed():
    log = beta_log(slots=2)
    assert UniformPolicy().action_dist(log).tolist() == pytest.approx([1 / 3] * 3)
    per_slot = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert FixedPolicy(per_slot).action_dist(log).shape == (600, 3, 2)
    assert IPS().estimate(log, FixedPolicy(per_slot).action_dist(log)).ess > 0
    with pytest.raises(ConfigurationError, match="sum to 1"):
        FixedPolicy([0.5, 0.6])
    with pytest.raises(ConfigurationError, match="actions"):
        FixedPolicy([0.5, 0.5]).action_dist(log)


@given(st.lists(st.integers(0, 3), min_size=2, max_size=8), st.integers(1, 3))
def test_ranking_probabilities_are_a_doubly_substochastic_table(scores, slots):
    s = np.array(scores, dtype=float)
    slots = min(slots, s.size)
    p = ranking_probabilities(s, slots)
    assert np.allclose(p.sum(axis=0), 1.0)  # every slot is filled by exactly one arm
    assert (p.sum(axis=1) <= 1.0 + 1e-12).all()  # an arm takes at most one slot
    best = s == s.max()
    assert np.allclose(p[:, 0], best / best.sum())


def exact_p_first(a, b):
    """P(arm i has the largest of independent Beta(a_i, b_i) draws), by quadrature."""
    out = []
    for i in range(len(a)):
        def f(x, i=i):
            others = np.prod([stats.beta.cdf(x, a[j], b[j]) for j in range(len(a)) if j != i])
            return stats.beta.pdf(x, a[i], b[i]) * others
        out.append(integrate.quad(f, 0, 1)[0])
    return np.array(out)


def test_thompson_monte_carlo_matches_quadrature():
    alpha, beta = np.array([2.0, 5.0, 3.0]), np.array([6.0, 5.0, 3.0])
    log = beta_log(n=50)
    n_sim = 20_000
    pi = thompson_policy(alpha, beta, learn=False, n_sim=n_sim).action_dist(
        log, np.random.default_rng(3))
    assert pi.shape == (50, 3)
    exact = exact_p_first(alpha, beta)
    se = np.sqrt(exact * (1 - exact) / n_sim)
    assert np.all(np.abs(pi[0] - exact) < 4 * se)
    assert np.array_equal(pi[0], pi[-1])  # no learning: the same distribution every round


def test_thompson_slates_rank_by_one_draw_per_arm():
    # equal posteriors: by symmetry every arm is at every slot with probability 1/K
    log = beta_log(n=30, k=4, slots=3)
    n_sim = 20_000
    pi = thompson_policy(learn=False, n_sim=n_sim).action_dist(log, np.random.default_rng(4))
    assert pi.shape == (30, 4, 3)
    assert np.allclose(pi.sum(axis=1), 1.0)
    assert np.all(np.abs(pi[0] - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n_sim))
    # a dominant arm takes slot 1, and never two slots
    strong = thompson_policy([500.0, 1, 1, 1], [1.0, 1000, 1000, 1000], learn=False, n_sim=2000)
    p = strong.action_dist(log, np.random.default_rng(5))[0]
    assert p[0, 0] == 1.0 and p[0].sum() == 1.0
    assert (p.sum(axis=1) <= 1.0 + 1e-12).all()  # no arm is ever shown twice
    assert p.sum() == pytest.approx(3.0)


def test_same_seed_same_distribution():
    log = beta_log()
    pol = thompson_policy(n_sim=500)
    a = pol.action_dist(log, np.random.default_rng(9))
    b = pol.action_dist(log, np.random.default_rng(9))
    assert np.array_equal(a, b)
    with pytest.raises(ConfigurationError, match="rng"):
        pol.action_dist(log)


def test_replayed_policy_learns_only_from_earlier_batches():
    log = beta_log(n=600, seed=1)
    pol = greedy_policy(batch_size=100)
    pi = pol.action_dist(log)  # deterministic: needs no generator
    assert np.allclose(pi[:100], 1 / 3)  # first batch: prior only, all arms tie
    assert (pi[-1] == [0.0, 0.0, 1.0]).all()  # learned that arm c is best
    # changing the rewards of batch 3 changes nothing before batch 4
    flipped = LoggedData(log.actions, np.where(np.arange(600) // 100 == 3, 1 - log.rewards,
                                               log.rewards), log.propensities, 3)
    pi2 = pol.action_dist(flipped)
    assert np.array_equal(pi[:400], pi2[:400])


def test_non_binary_rewards_use_a_normal_model():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, 900)
    log = LoggedData(a, rng.normal(10.0 * a, 1.0), np.full(900, 1 / 3), 3)
    pi = thompson_policy(n_sim=300).action_dist(log, np.random.default_rng(0))
    assert pi[-1, 2] > 0.99


def trained_bandit(rule, model=None, seed=0):
    b = Bandit(["c", "a", "b"], model, rule, seed=seed)
    for _ in range(40):
        b.update("b", 1)
        b.update("a", 0)
        b.update("c", 0)
    return b


def test_bandit_state_from_file_matches_arms_by_name(tmp_path):
    log = beta_log(n=40, k=4)  # actions a, b, c, d; the bandit lacks d
    path = tmp_path / "bandit.json"
    path.write_text(json.dumps(trained_bandit(Greedy()).to_dict()))
    pi = bandit_policy(path, log).action_dist(log)
    assert pi.shape == (40, 4)
    assert (pi == [0.0, 1.0, 0.0, 0.0]).all()  # "b" is index 1 in the log
    eg = bandit_policy(trained_bandit(EpsilonGreedy(0.3)).to_dict(), log).action_dist(
        log, np.random.default_rng(0))
    assert eg[0] == pytest.approx([0.1, 0.8, 0.1, 0.0])
    ts = trained_bandit(None)
    pi_ts = bandit_policy(ts.to_dict(), log, n_sim=4000).action_dist(log, np.random.default_rng(1))
    assert pi_ts[0, 3] == 0.0 and pi_ts[0].sum() == pytest.approx(1.0)
    direct = ts.action_probabilities()  # the bandit's own Monte Carlo: c, a, b
    assert pi_ts[0, [2, 0, 1]] == pytest.approx(direct, abs=0.05)


def test_bandit_state_errors(tmp_path):
    log = beta_log(n=20, k=2)  # actions a, b only
    with pytest.raises(UnknownArmError, match="'c'"):
        bandit_policy(trained_bandit(Greedy()).to_dict(), log)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        bandit_policy(bad, log)


def test_contextual_bandit_state():
    rng = np.random.default_rng(6)
    n, d = 200, 2
    x = rng.normal(size=(n, d))
    b = Bandit(["a", "b"], LinearGaussian(n_features=d, noise_variance=0.1), seed=1)
    for i in range(n):
        b.update("a", float(x[i, 0]), x[i])
        b.update("b", float(-x[i, 0]), x[i])
    log = LoggedData(rng.integers(0, 2, n), np.zeros(n), np.full(n, 0.5), 2, contexts=x,
                     action_names=("a", "b"))
    pol = bandit_policy(b.to_dict(), log, n_sim=200)
    pi = pol.action_dist(log, np.random.default_rng(2))
    assert pi.shape == (n, 2) and np.allclose(pi.sum(axis=1), 1.0)
    confident = np.abs(x[:, 0]) > 0.5
    assert (pi[confident, 0] > 0.9).mean() == pytest.approx((x[confident, 0] > 0).mean())
    with pytest.raises(ConfigurationError, match="contexts"):
        pol.action_dist(LoggedData(log.actions, log.rewards, log.propensities, 2,
                                   action_names=("a", "b")), np.random.default_rng(0))


def test_replayed_policy_parameters():
    with pytest.raises(ConfigurationError, match="batch_size"):
        ReplayedPolicy(BetaBernoulli(), Greedy(), batch_size=0)
    with pytest.raises(ConfigurationError, match="n_sim"):
        ReplayedPolicy(BetaBernoulli(), Greedy(), n_sim=0)
    with pytest.raises(ConfigurationError, match="> 0"):
        thompson_policy([1.0, -1.0, 1.0]).action_dist(beta_log(), np.random.default_rng(0))
