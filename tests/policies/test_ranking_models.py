"""Ranking models (position-based, cascade): statistics against brute-force counts, per-slot
deltas in any order against the vector update, Thompson rankings, errors, configuration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError, InvalidRewardError, InvalidSlotError
from tsbandit.policies import (
    BetaBernoulli,
    CascadeBeta,
    PositionBased,
    ThompsonSampling,
    model_from_config,
)
from tsbandit.policies.position_based import isotonic_decreasing

K, P = 5, 3


def _log(rng: np.random.Generator, n: int, theta: np.ndarray, kappa: np.ndarray,
         cascade: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniformly random rankings of ``P`` of ``K`` arms and their clicks."""
    rk = np.argsort(rng.random((n, K)), axis=1)[:, :P]
    if cascade:
        att = rng.random((n, P)) < theta[rk]
        first = np.where(att.any(axis=1), att.argmax(axis=1), P)
        return rk, (np.arange(P)[None, :] == first[:, None]).astype(float)
    return rk, (rng.random((n, P)) < theta[rk] * kappa).astype(float)


# ----- position-based model -----------------------------------------------------------------
def test_pbm_statistics_are_the_brute_force_counts_and_the_known_kappa_posterior():
    rng = np.random.default_rng(0)
    kappa = np.array([1.0, 0.6, 0.3])
    rk, clicks = _log(rng, 300, np.array([0.5, 0.3, 0.2, 0.1, 0.05]), kappa)
    m = PositionBased(alpha0=2.0, beta0=3.0, n_positions=P, examination=tuple(kappa))
    s = m.ranking_delta(K, rk, clicks)
    for a, j in itertools.product(range(K), range(P)):
        shown = rk[:, j] == a
        assert s["impressions"][a, j] == shown.sum()
        assert s["clicks"][a, j] == clicks[shown, j].sum()
    post = m.posterior(s)
    for a in range(K):
        c = sum(clicks[i, j] for i in range(300) for j in range(P) if rk[i, j] == a)
        trials = sum(kappa[j] for i in range(300) for j in range(P) if rk[i, j] == a)
        assert post.alpha[a] == pytest.approx(2.0 + c)
        assert post.beta[a] == pytest.approx(3.0 + max(trials - c, 0.0))


def test_pbm_learns_the_examination_and_attractiveness():
    # 20,000 uniformly random rankings: kappa_j's standard error is about 0.01 (0.02 for the
    # bottom slot); the EM estimate is within 0.04 (a few SE) and theta within 0.03
    rng = np.random.default_rng(1)
    theta, kappa = np.array([0.5, 0.3, 0.2, 0.1, 0.05]), np.array([1.0, 0.6, 0.3])
    rk, clicks = _log(rng, 20_000, theta, kappa)
    m = PositionBased(n_positions=P, em_iterations=60)
    post = m.posterior(m.ranking_delta(K, rk, clicks))
    np.testing.assert_allclose(post.examination, kappa, atol=0.04)
    np.testing.assert_allclose(m.mean(post), theta, atol=0.03)


def test_pbm_batched_posterior_is_each_lane_alone():
    rng = np.random.default_rng(2)
    m = PositionBased(n_positions=P)
    lanes = m.init_stats(K, (3,))
    alone = []
    for t in range(3):
        rk, clicks = _log(rng, 200, np.array([0.6, 0.4, 0.3, 0.2, 0.1]), np.array([1, .5, .2]))
        m.accumulate_ranking(lanes, rk, clicks, batch_index=np.full(200, t))
        alone.append(m.posterior(m.ranking_delta(K, rk, clicks)))
    post = m.posterior(lanes)
    for t in range(3):
        np.testing.assert_allclose(post.params[:, t], alone[t].params)
        np.testing.assert_allclose(post.examination[t], alone[t].examination)


def test_isotonic_projection_is_non_increasing_and_keeps_the_weighted_mean():
    rng = np.random.default_rng(3)
    y, w = rng.random((50, 4)), rng.random((50, 4)) + 0.1
    z = isotonic_decreasing(y, w)
    assert (np.diff(z, axis=1) <= 1e-12).all()
    np.testing.assert_allclose((w * z).sum(axis=1), (w * y).sum(axis=1))
    # a sequence that is already non-increasing is kept
    np.testing.assert_allclose(isotonic_decreasing(np.sort(y)[:, ::-1], w), np.sort(y)[:, ::-1])


# ----- cascade model ------------------------------------------------------------------------
def test_cascade_statistics_are_the_brute_force_cascade_update():
    rng = np.random.default_rng(4)
    rk, clicks = _log(rng, 400, np.array([0.5, 0.3, 0.2, 0.1, 0.05]), np.ones(P), cascade=True)
    m = CascadeBeta()
    s = m.ranking_delta(K, rk, clicks)
    succ, fail = np.zeros(K), np.zeros(K)
    for row, c in zip(rk, clicks, strict=True):
        for j in range(P):  # examined down to the (first) click
            if c[j]:
                succ[row[j]] += 1
                break
            fail[row[j]] += 1
    np.testing.assert_array_equal(s["successes"], succ)
    np.testing.assert_array_equal(s["failures"], fail)
    post = m.posterior(s)
    np.testing.assert_array_equal(post.alpha, 1 + succ)
    np.testing.assert_array_equal(post.beta, 1 + fail)


def test_cascade_clamps_a_transient_negative_failure_count():
    m = CascadeBeta()
    d = m.slot_delta(3, [0, 1, 2], 0, 1)  # the click arrived; the slots below not yet
    assert d["failures"].tolist() == [0.0, -1.0, -1.0]
    assert m.posterior(d).beta.tolist() == [1.0, 1.0, 1.0]


# ----- the per-slot contract ----------------------------------------------------------------
rankings = st.permutations(list(range(K))).map(lambda p: p[:P])
slot_rewards = st.lists(st.sampled_from([0.0, 1.0]), min_size=P, max_size=P)


@pytest.mark.parametrize("model", [PositionBased(n_positions=P), CascadeBeta()],
                         ids=["pbm", "cascade"])
@settings(max_examples=40, deadline=None)
@given(ranking=rankings, rewards=slot_rewards, order=st.permutations(list(range(P))))
def test_slot_deltas_in_any_order_sum_to_the_vector_update(model, ranking, rewards, order):
    whole = model.ranking_delta(K, np.array([ranking]), np.array([rewards]))
    total = model.init_stats(K)
    for j in order:
        total.iadd(model.slot_delta(K, ranking, j, rewards[j]))
    assert total.allclose(whole)
    # through the Bandit: slots one by one (any order) == the vector at once
    a = Bandit([f"x{i}" for i in range(K)], model, seed=0)
    b = Bandit([f"x{i}" for i in range(K)], model, seed=0)
    names = [f"x{i}" for i in ranking]
    for j in order:
        a.update_slot(names, j, rewards[j])
    b.update_ranking(names, rewards)
    assert a.stats.allclose(b.stats)


@settings(max_examples=30, deadline=None)
@given(eligible=st.sets(st.integers(0, K - 1), min_size=1), k=st.integers(1, P),
       seed=st.integers(0, 2**16))
def test_thompson_rankings_are_permutations_of_eligible_arms(eligible, k, seed):
    k = min(k, len(eligible))
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(K)]
    for model in (PositionBased(n_positions=P), CascadeBeta()):
        b = Bandit(names, model, ThompsonSampling(), seed=seed)
        rk, clicks = _log(rng, 5, np.full(K, 0.3), np.array([1, .5, .2]))
        for row, c in zip(rk, clicks, strict=True):
            b.update_ranking([names[i] for i in row], c)
        d = b.rank(k, eligible=[names[i] for i in eligible])
        assert len(d.ranking) == k and len(set(d.ranking)) == k
        assert {b.arm_index(a) for a in d.ranking} <= eligible


def test_pbm_thompson_ranks_the_most_attractive_arms_first_once_learned():
    rng = np.random.default_rng(5)
    theta = np.array([0.05, 0.4, 0.1, 0.6, 0.2])
    rk, clicks = _log(rng, 1200, theta, np.array([1.0, 0.6, 0.3]))
    b = Bandit([f"x{i}" for i in range(K)], PositionBased(n_positions=P), seed=5)
    for row, c in zip(rk, clicks, strict=True):
        b.update_ranking([f"x{i}" for i in row], c)
    assert b.rank(3).ranking == ("x3", "x1", "x4")


# ----- errors and configuration -------------------------------------------------------------
def test_invalid_slots_and_rankings_raise_clear_errors():
    b = Bandit(["a", "b", "c", "d"], PositionBased(n_positions=3), seed=0)
    before = b.stats
    with pytest.raises(InvalidSlotError, match=r"slot == 3, but the ranking has slots 0\.\.2"):
        b.update_slot(["a", "b", "c"], 3, 1)
    with pytest.raises(InvalidSlotError, match="got 2 slot rewards for a ranking of 3"):
        b.update_ranking(["a", "b", "c"], [1, 0])
    with pytest.raises(InvalidSlotError, match="shows an arm twice"):
        b.update_ranking(["a", "b", "a"], [1, 0, 0])
    with pytest.raises(InvalidSlotError, match="4 slots, but the model has 3 positions"):
        b.update_ranking(["a", "b", "c", "d"], [1, 0, 0, 0])
    with pytest.raises(InvalidSlotError, match="must be an integer slot index"):
        b.update_slot(["a", "b", "c"], 1.5, 1)
    with pytest.raises(InvalidRewardError, match="not binary"):
        b.update_ranking(["a", "b", "c"], [1, 0.5, 0])
    assert isinstance(InvalidSlotError("x"), ValueError)
    assert b.stats.allclose(before) and b.n_updates == 0
    plain = Bandit(["a", "b"], BetaBernoulli(), seed=0)
    with pytest.raises(ConfigurationError, match="need a ranking model"):
        plain.update_slot(["a", "b"], 0, 1)


def test_partial_vector_then_missing_slot():
    b = Bandit(["a", "b", "c"], CascadeBeta(), seed=0)
    b.update_ranking(["c", "a", "b"], [0, None, 0])
    b.update_slot(["c", "a", "b"], 1, 1)
    whole = Bandit(["a", "b", "c"], CascadeBeta(), seed=0)
    whole.update_ranking(["c", "a", "b"], [0, 1, 0])
    assert b.stats.allclose(whole.stats)


@pytest.mark.parametrize("config", [
    {"kind": "position_based", "n_positions": 3, "examination": [1.0, 0.6, 0.3]},
    {"kind": "position_based", "n_positions": 4, "em_iterations": 10, "monotone": False},
    {"kind": "cascade", "alpha0": 2.0, "beta0": 5.0},
])
def test_configuration_round_trip(config):
    m = model_from_config(config)
    assert model_from_config(m.to_config()) == m
    b = Bandit(["a", "b", "c"], m, seed=1)
    b.update_ranking(["b", "a", "c"], [0, 1, 0])
    restored = Bandit.from_dict(b.to_dict())
    assert restored.model == m and restored.stats.allclose(b.stats)


@pytest.mark.parametrize(("config", "message"), [
    ({"n_positions": 0}, "n_positions == 0"),
    ({"n_positions": 2, "examination": (1.0,)}, "examination has 1 values"),
    ({"n_positions": 2, "examination": (1.0, 1.5)}, r"each must be in \(0, 1\]"),
    ({"em_iterations": 0}, "em_iterations == 0"),
])
def test_pbm_configuration_errors_name_the_parameter(config, message):
    with pytest.raises(ConfigurationError, match=message):
        PositionBased(**config)


def test_discount_applies_before_a_ranking_update_and_window_is_refused():
    b = Bandit(["a", "b", "c"], CascadeBeta(), seed=0, discount=0.5)
    b.update_ranking(["a", "b", "c"], [0, 0, 0])
    b.update_ranking(["c", "b", "a"], [1, 0, 0])
    assert b.stats["failures"].tolist() == [0.5, 0.5, 0.5]
    assert b.stats["successes"].tolist() == [0.0, 0.0, 1.0]
    w = Bandit(["a", "b", "c"], PositionBased(n_positions=3), seed=0, window=10)
    w.update("a", 1)  # one-arm feedback (the top slot) keeps its window
    with pytest.raises(ConfigurationError, match="window is not supported for ranking"):
        w.update_slot(["a", "b"], 0, 1)
    assert w.n_updates == 1
