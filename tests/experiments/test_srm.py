"""Sample-ratio mismatch check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tsbandit.errors import ConfigurationError
from tsbandit.experiments import srm_check, srm_check_adaptive, srm_check_allocation


def test_matches_scipy_chisquare_and_flags_below_threshold():
    r = srm_check([5000, 4600])
    ref = stats.chisquare([5000, 4600])
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.mismatch and r.to_dict()["status"] == "mismatch"
    ok = srm_check([5000, 4700])  # p = 0.0023: suspicious but not flagged at 0.001
    assert not ok.mismatch and ok.p_value > 0.001


def test_unequal_intended_split():
    r = srm_check([2000, 8000], [20, 80])
    assert r.p_value == pytest.approx(1.0) and not r.mismatch
    assert srm_check([5000, 5000], [0.2, 0.8]).mismatch
    np.testing.assert_allclose(srm_check([10, 20, 30], [1, 1, 1]).expected, [20, 20, 20])


def test_false_alarm_rate_under_correct_split_is_about_threshold():
    rng = np.random.default_rng(4)
    n = rng.binomial(10_000, 0.5, size=8_000)
    flags = [srm_check([k, 10_000 - k], threshold=0.01).mismatch for k in n]
    rate = float(np.mean(flags))
    # chi-square is a close approximation here: rate within 4 standard errors of 0.01
    assert abs(rate - 0.01) <= 4 * np.sqrt(0.01 * 0.99 / n.size)


def test_errors():
    with pytest.raises(ConfigurationError, match="at least 2 arms"):
        srm_check([10])
    with pytest.raises(ConfigurationError, match=">= 0"):
        srm_check([10, -1])
    with pytest.raises(ConfigurationError, match="2 weights for 3 arms"):
        srm_check([10, 10, 10], [1, 1])
    with pytest.raises(ConfigurationError, match="> 0"):
        srm_check([10, 10], [1, 0])
    with pytest.raises(ConfigurationError, match="all zero"):
        srm_check([0, 0])


# ----- two-arm adaptive policies: the allocation implied by the logged propensities ----------
def thompson_logs(rng, reps=2000, n=1000, batch=50, rates=(0.05, 0.10), draws=1000):
    """Batched Beta-Bernoulli Thompson sampling on ``reps`` independent streams, logged the way
    the engine logs: the chosen arm and a Monte-Carlo propensity (``draws`` posterior draws,
    floored at 1 / draws) estimated once per posterior (one batch = one model version) and
    shared by its decisions. Returns chosen, propensities and groups, each ``(reps, n)``."""
    from tsbandit.experiments._batch import beta_prob_greater_batch

    s = np.zeros((reps, 2))
    f = np.zeros((reps, 2))
    chosen = np.empty((reps, n), dtype=np.intp)
    props = np.empty((reps, n))
    groups = np.broadcast_to(np.arange(n) // batch, (reps, n))
    for start in range(0, n, batch):
        pi1 = beta_prob_greater_batch(1 + s[:, 0], 1 + f[:, 0], 1 + s[:, 1], 1 + f[:, 1])
        c1 = rng.binomial(draws, pi1)  # one estimate per posterior, as the engine caches it
        est = np.maximum(np.stack([draws - c1, c1], axis=1) / draws, 1.0 / draws)  # (reps, 2)
        a = (rng.random((reps, batch)) < pi1[:, None]).astype(np.intp)
        r = rng.random((reps, batch)) < np.asarray(rates)[a]
        for arm in (0, 1):
            s[:, arm] += ((a == arm) & r).sum(axis=1)
            f[:, arm] += ((a == arm) & ~r).sum(axis=1)
        chosen[:, start:start + batch] = a
        props[:, start:start + batch] = np.take_along_axis(est, a, axis=1)
    return chosen, props, groups


def pvalues(chosen, props, groups, mc_draws=1000):
    return np.array([srm_check_adaptive(c, p, groups=g, mc_draws=mc_draws).p_value
                     for c, p, g in zip(chosen, props, groups, strict=True)])


@pytest.fixture(scope="module")
def adaptive():
    return thompson_logs(np.random.default_rng(606))


def test_adaptive_check_is_calibrated_on_a_correct_thompson_log(adaptive):
    chosen, props, groups = adaptive
    # the allocation really is adaptive: arm 1 gets ~85 % of the traffic, a 50/50 check fails
    share = chosen.mean()
    assert 0.7 < share < 0.9
    assert np.mean([srm_check(np.bincount(c, minlength=2)).mismatch for c in chosen]) > 0.9
    pvals = pvalues(chosen, props, groups)
    n = pvals.size
    for level in (0.05, 0.01):
        rate = float(np.mean(pvals < level))
        assert abs(rate - level) <= 4 * np.sqrt(level * (1 - level) / n), (level, rate)
    assert np.mean(pvals < 0.001) <= 0.001 + 4 * np.sqrt(0.001 / n)


def test_shared_monte_carlo_propensities_need_their_variance():
    # 500 decisions per model version share one 1,000-draw estimate: its error moves E by 500x
    chosen, props, groups = thompson_logs(np.random.default_rng(17), reps=2000, batch=500)
    n = chosen.shape[0]
    naive = pvalues(chosen, props, groups, mc_draws=None)
    fixed = pvalues(chosen, props, groups)
    se = np.sqrt(0.01 * 0.99 / n)
    assert np.mean(naive < 0.01) > 0.01 + 4 * se  # over-flags correct logs
    assert abs(np.mean(fixed < 0.01) - 0.01) <= 4 * se


def test_adaptive_check_detects_lost_decisions_of_one_arm(adaptive):
    chosen, props, groups = adaptive
    rng = np.random.default_rng(7)
    flagged = []
    for c, p, g in zip(chosen[:500], props[:500], groups[:500], strict=True):
        # half of the decisions of arm 0 (~14 % of the traffic) lost; arm 1's losses would be
        # nearly invisible (each moves N - E by 1 - pi_1, about 0.1 here)
        keep = ~((c == 0) & (rng.random(c.size) < 0.5))
        flagged.append(srm_check_adaptive(c[keep], p[keep], groups=g[keep],
                                          mc_draws=1000).mismatch)
    assert np.mean(flagged) > 0.75  # measured 0.82 (0.29 when 30 % are lost)


def test_adaptive_check_reduces_to_pearson_at_a_fixed_half_split():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, 5000)
    r = srm_check_adaptive(a, np.full(a.size, 0.5))
    ref = srm_check(np.bincount(a, minlength=2))
    assert r.statistic == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.p_value)
    assert r.method == "propensity" and r.to_dict()["method"] == "propensity"


def test_adaptive_check_deterministic_policy_and_errors():
    ok = srm_check_adaptive([1, 1, 0], [1.0, 1.0, 0.0])  # pi_1 = 1 always: 3 of 3 expected
    assert not ok.mismatch or ok.expected.tolist() == [0.0, 3.0]
    assert srm_check_adaptive([1, 1, 1], [1.0, 1.0, 1.0]).p_value == 1.0
    bad = srm_check_adaptive([1, 1, 0], [1.0, 1.0, 1.0])  # arm 0 chosen when pi_0 was 1 ... fine
    assert bad.p_value == 1.0  # (pi_1 = 0 there: consistent)
    wrong = srm_check_adaptive([0, 0], [0.0, 0.0])  # chosen with probability 0
    assert wrong.mismatch and wrong.to_dict()["statistic"] is None
    with pytest.raises(ConfigurationError, match="0 or 1"):
        srm_check_adaptive([0, 2], [0.5, 0.5])
    with pytest.raises(ConfigurationError, match=r"\[0, 1\]"):
        srm_check_adaptive([0, 1], [0.5, 1.5])
    with pytest.raises(ConfigurationError, match="one length"):
        srm_check_adaptive([0, 1], [0.5])
    with pytest.raises(ConfigurationError, match="no decisions"):
        srm_check_adaptive([], [])


# ----- K-arm adaptive policies: every arm's logged probability ---------------------------------
def thompson_logs_k(rng, reps=500, n=600, batch=50, rates=(0.04, 0.06, 0.08, 0.10),
                    draws=1000):
    """Batched Beta-Bernoulli Thompson sampling with K arms on ``reps`` streams, logged like the
    engine: each decision's Monte-Carlo estimate of every arm's probability (``draws`` draws,
    one estimate per posterior, shared by its batch). Returns chosen ``(reps, n)``,
    probabilities ``(reps, n, K)`` and groups ``(reps, n)``."""
    k = len(rates)
    s, f = np.zeros((reps, k)), np.zeros((reps, k))
    chosen = np.empty((reps, n), dtype=np.intp)
    probs = np.empty((reps, n, k))
    for start in range(0, n, batch):
        # the policy's probabilities of the arms (Thompson's first-slot probabilities, by 2,000
        # draws: the policy chooses by them), then the logged 1,000-draw estimate of them, as
        # the engine makes it
        d = rng.beta(1 + s[:, None, :], 1 + f[:, None, :], size=(reps, 2000, k))
        true = np.stack([(d.argmax(axis=2) == j).mean(axis=1) for j in range(k)], axis=1)
        est = np.stack([rng.multinomial(draws, t / t.sum()) for t in true]) / draws
        u = rng.random((reps, batch, 1))
        a = (u > np.cumsum(true, axis=1)[:, None, :]).sum(axis=2).clip(0, k - 1)
        r = rng.random((reps, batch)) < np.asarray(rates)[a]
        for arm in range(k):
            s[:, arm] += ((a == arm) & r).sum(axis=1)
            f[:, arm] += ((a == arm) & ~r).sum(axis=1)
        chosen[:, start:start + batch] = a
        probs[:, start:start + batch] = est[:, None, :]
    groups = np.broadcast_to(np.arange(n) // batch, (reps, n))
    return chosen, probs, groups


@pytest.fixture(scope="module")
def adaptive_k():
    return thompson_logs_k(np.random.default_rng(909))


def test_allocation_check_is_calibrated_on_a_correct_k_arm_log(adaptive_k):
    chosen, probs, groups = adaptive_k
    pvals = np.array([srm_check_allocation(c, p, groups=g, mc_draws=1000).p_value
                      for c, p, g in zip(chosen, probs, groups, strict=True)])
    n = pvals.size
    assert {srm_check_allocation(chosen[0], probs[0]).dof} == {3}
    for level in (0.05, 0.01):
        rate = float(np.mean(pvals < level))
        assert abs(rate - level) <= 4 * np.sqrt(level * (1 - level) / n), (level, rate)


def test_allocation_check_detects_lost_decisions_of_one_arm(adaptive_k):
    chosen, probs, groups = adaptive_k
    rng = np.random.default_rng(8)
    flagged = []
    for c, p, g in zip(chosen[:300], probs[:300], groups[:300], strict=True):
        keep = ~((c == 1) & (rng.random(c.size) < 0.6))  # 60 % of arm 1's decisions lost
        flagged.append(srm_check_allocation(c[keep], p[keep], groups=g[keep],
                                            mc_draws=1000).mismatch)
    assert np.mean(flagged) > 0.75


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1),
                          # multiples of 1/64: p and 1 - (1 - p) are the same float, so both
                          # checks group decisions that share an estimate alike
                          st.integers(1, 63).map(lambda i: i / 64), st.integers(0, 3)),
                min_size=1, max_size=80),
       st.one_of(st.none(), st.integers(1, 5000)))
def test_allocation_check_with_two_arms_is_the_adaptive_check(rows, mc_draws):
    chosen = [c for c, _, _ in rows]
    p1 = np.array([p for _, p, _ in rows])
    groups = [g for _, _, g in rows]
    props = np.where(np.array(chosen) == 1, p1, 1 - p1)
    two = srm_check_adaptive(chosen, props, groups=groups, mc_draws=mc_draws)
    k = srm_check_allocation(chosen, np.column_stack([1 - p1, p1]), groups=groups,
                             mc_draws=mc_draws)
    assert k.dof == 1
    assert k.statistic == pytest.approx(two.statistic, rel=1e-6, abs=1e-9)
    assert k.p_value == pytest.approx(two.p_value, rel=1e-6, abs=1e-12)
    np.testing.assert_allclose(k.expected, two.expected)


def test_allocation_check_fixed_arms_and_errors():
    # arm 2 never had a chance: choosing it is a mismatch outright, not choosing it is fine
    pi = [[0.5, 0.5, 0.0]] * 100
    assert not srm_check_allocation([0, 1] * 50, pi).mismatch
    assert srm_check_allocation([0, 1] * 49 + [2, 2], pi).p_value == 0.0
    assert srm_check_allocation([2] * 10, [[0.0, 0.0, 1.0]] * 10).p_value == 1.0
    with pytest.raises(ConfigurationError, match="sum to 1"):
        srm_check_allocation([0, 1], [[0.5, 0.4], [0.5, 0.5]])
    with pytest.raises(ConfigurationError, match="indices"):
        srm_check_allocation([0, 3], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ConfigurationError, match=r"\(n, K\)"):
        srm_check_allocation([0, 1], [0.5, 0.5])
    with pytest.raises(ConfigurationError, match="no decisions"):
        srm_check_allocation([], np.zeros((0, 3)))
    with pytest.raises(ConfigurationError, match="mc_draws"):
        srm_check_allocation([0], [[0.5, 0.5]], mc_draws=0)
