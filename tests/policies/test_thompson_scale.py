"""Tempered Thompson sampling, ``ThompsonSampling(scale=...)``.

* ``scale = 1`` makes exactly the decisions of the rule before ``scale`` existed (pinned
  trajectories recorded from that code, same seeds);
* a scaled draw has exactly the distribution the math says (Kolmogorov-Smirnov against the
  exact scaled posterior, for every model) and its spread is ``scale`` times the posterior's;
* propensities are those of the scaled draw: Monte-Carlo estimates (on the side stream) and
  the observed choice frequencies agree with the exact P(arm has the best scaled draw);
* the configuration is validated, round-trips through the registry, and old configurations
  without ``scale`` still load.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from scipy.special import logit

from tsbandit import Bandit
from tsbandit.errors import ConfigurationError
from tsbandit.policies import (
    BetaBernoulli,
    LinearGaussian,
    LogisticLaplace,
    NormalInverseGamma,
    ThompsonSampling,
)
from tsbandit.policies.registry import rule_from_config
from tsbandit.tutorial import ContextualThompsonSampling, ThompsonSamplingBandit

from .test_contract import ARMS, _models, context, reward

# ----- scale = 1 is the rule as it was ------------------------------------------------------
#: recorded with the code before ``scale`` existed (commit 5548bc3), same seeds: the arm index
#: of every decision, the final statistics and the generators' states
PINNED = json.loads((Path(__file__).parent / "data" / "thompson_scale_one.json").read_text())
#: float statistics computed through BLAS/LAPACK and compiled kernels differ in the last bits
#: between CPUs (FMA, vector widths), so they are compared with a tolerance: 120 updates of
#: relative rounding ~1e-16 stay far below 1e-9, while any change of the update math moves
#: them by far more. Integer-valued statistics (counts of events) are exact on every machine.
RTOL = 1e-9


def _check_state(b: Bandit, want: dict) -> None:
    """``b``'s statistics and generator states against a recorded ``{"stats", "rng"}``."""
    assert b.to_dict()["rng"] == want["rng"]  # integers: draws consumed are the same
    assert sorted(b.stats) == sorted(want["stats"])
    for key, rec in want["stats"].items():
        got, rec = np.asarray(b.stats[key]), np.asarray(rec, dtype=np.float64)
        assert got.shape == rec.shape, key
        if np.array_equal(rec, np.round(rec)):  # counts: exact
            np.testing.assert_array_equal(got, rec, err_msg=key)
        else:
            np.testing.assert_allclose(got, rec, rtol=RTOL,
                                       atol=RTOL * float(np.max(np.abs(rec))), err_msg=key)


def _trajectory(model_name: str, rule: ThompsonSampling) -> tuple[str, Bandit]:
    """Selections, rankings with propensities and updates, mixed, from fixed seeds."""
    b = Bandit(ARMS, _models()[model_name], rule, seed=2024, propensity_draws=50)
    rng = np.random.default_rng(7)
    arms = []
    for t in range(120):
        x = context(rng, model_name)
        d = b.rank(2, x, propensity=(t % 7 == 0)) if t % 3 == 0 else b.select(x)
        b.update(d.arm, reward(model_name, d.index, x, rng), x)
        arms.append(str(d.index))
    return "".join(arms), b


@pytest.mark.parametrize("model_name", ["beta", "gaussian", "linear", "linear-nig", "logistic"])
@pytest.mark.parametrize("rule", [ThompsonSampling(), ThompsonSampling(scale=1.0),
                                  ThompsonSampling(scale=1)])
def test_scale_one_makes_the_pinned_decisions(model_name, rule):
    arms, b = _trajectory(model_name, rule)
    assert arms == PINNED[model_name]["arms"]
    _check_state(b, PINNED[model_name])


def test_pinned_state_check_catches_a_changed_update():
    """The tolerance is tight: a sum of rewards off by 1e-6, or one count off, fails."""
    _, b = _trajectory("linear", ThompsonSampling())
    for key, index, change in (("sum_r", 2, 1e-6), ("b", (1, 2), -1e-6), ("n", 3, 1.0)):
        want = copy.deepcopy(PINNED["linear"])
        cell = np.asarray(want["stats"][key])
        cell[index] += change
        want["stats"][key] = cell.tolist()
        with pytest.raises(AssertionError, match=key):
            _check_state(b, want)
    # while rounding-sized differences (another CPU's BLAS) pass
    want = copy.deepcopy(PINNED["linear"])
    for key in ("sum_r", "sum_r2", "b", "A"):
        want["stats"][key] = (np.asarray(want["stats"][key]) * (1 + 1e-13)).tolist()
    _check_state(b, want)


def test_tutorial_classes_make_the_pinned_decisions():
    tb = ThompsonSamplingBandit(["a", "b", "c", "d", "e"], seed=5)
    rng = np.random.default_rng(1)
    p = [0.03, 0.045, 0.028, 0.015, 0.06]
    arms = []
    for _ in range(300):
        a = tb.select_arm()
        i = "abcde".index(a)
        tb.update(a, int(rng.random() < p[i] * 5))
        arms.append(str(i))
    assert "".join(arms) == PINNED["tutorial"]["arms"]
    _check_state(tb.bandit, PINNED["tutorial"])
    cb = ContextualThompsonSampling(["a", "b", "c"], n_features=3, seed=5)
    arms = []
    for _ in range(100):
        x = rng.random(3)
        a = cb.select_arm(x)
        i = "abc".index(a)
        cb.update(a, x, float(x[i] > 0.5))
        arms.append(str(i))
    assert "".join(arms) == PINNED["tutorial-contextual"]["arms"]
    _check_state(cb.bandit, PINNED["tutorial-contextual"])


@pytest.mark.parametrize("model_name", ["beta", "gaussian", "linear", "linear-nig", "logistic"])
def test_scale_one_scores_are_the_model_draws_bit_for_bit(model_name):
    b = Bandit(ARMS, _models()[model_name], seed=1)
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = context(rng, model_name)
        b.update(b.select(x).arm, reward(model_name, 0, x, rng), x)
    x = context(rng, model_name)
    for size in (None, 9):
        got = ThompsonSampling(scale=1.0).scores(b.model, b.posterior, b.stats,
                                                 np.random.default_rng(42), x, size)
        want = b.model.sample(b.posterior, np.random.default_rng(42), x, size)
        assert np.array_equal(got, want)


# ----- the scaled draw has the scaled posterior's distribution ------------------------------
N_DRAWS = 20_000
#: KS p-values: a correct sampler falls below 1e-4 one time in 10,000 (seeded: never flaky);
#: the same test against the unscaled posterior must reject far more strongly
P_OK, P_WRONG = 1e-4, 1e-12


def _learned(model_name: str, seed: int = 0) -> Bandit:
    b = Bandit(ARMS, _models()[model_name], seed=seed)
    rng = np.random.default_rng(seed + 100)
    for _ in range(40):
        x = context(rng, model_name)
        d = b.select(x)
        b.update(d.arm, reward(model_name, d.index, x, rng), x)
    return b


def _draws(b: Bandit, scale: float, x: np.ndarray | None, seed: int) -> np.ndarray:
    return ThompsonSampling(scale=scale).scores(b.model, b.posterior, b.stats,
                                                np.random.default_rng(seed), x, N_DRAWS)


def _standardized(b: Bandit, model_name: str, draws: np.ndarray, x: np.ndarray | None,
                  scale: float) -> tuple[np.ndarray, object]:
    """Draws mapped so that, if their spread is ``scale`` times the posterior's, they follow the
    returned frozen scipy distribution exactly (arm 0)."""
    p = b.posterior
    if model_name == "beta":
        a, bb = p.alpha[0], p.beta[0]
        m = a / (a + bb)
        return m + (draws[:, 0] - m) / scale, sps.beta(a, bb)
    if model_name == "gaussian":
        return ((draws[:, 0] - p.mu[0]) / scale + p.mu[0],
                sps.t(df=2 * p.alpha[0], loc=p.mu[0], scale=p.scale[0]))
    mu = float(p.mean[0] @ x)
    sd = float(np.linalg.norm(p.sqrt_cov[0].T @ x))  # sqrt(x^T S S^T x)
    if model_name == "linear":
        return (draws[:, 0] - mu) / scale + mu, sps.norm(mu, sd)
    if model_name == "linear-nig":
        na, nb = p.noise_a[0], p.noise_b[0]
        return ((draws[:, 0] - mu) / scale + mu,
                sps.t(df=2 * na, loc=mu, scale=sd * np.sqrt(nb / na)))
    assert model_name == "logistic"  # sigmoid of a Gaussian draw of x^T w
    return (logit(draws[:, 0]) - mu) / scale + mu, sps.norm(mu, sd)


@pytest.mark.parametrize("model_name", ["beta", "gaussian", "linear", "linear-nig", "logistic"])
@pytest.mark.parametrize("scale", [0.25, 2.0])
def test_scaled_draws_follow_the_scaled_posterior_exactly(model_name, scale):
    b = _learned(model_name)
    x = context(np.random.default_rng(9), model_name)
    draws = _draws(b, scale, x, seed=11)
    z, dist = _standardized(b, model_name, draws, x, scale)
    assert sps.kstest(z, dist.cdf).pvalue > P_OK
    # the test has power: the same draws read as unscaled are far from the posterior
    z_wrong, _ = _standardized(b, model_name, draws, x, 1.0)
    assert sps.kstest(z_wrong, dist.cdf).pvalue < P_WRONG


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0])
def test_beta_draw_spread_is_scale_times_the_posterior_sd(scale):
    """Mean and standard deviation of the scaled draws, within 4 standard errors."""
    b = _learned("beta")
    a, bb = b.posterior.alpha, b.posterior.beta
    mean, var, _, kurt = (np.array(v) for v in sps.beta.stats(a, bb, moments="mvsk"))
    draws = _draws(b, scale, None, seed=12)
    n = draws.shape[0]
    sd = scale * np.sqrt(var)
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 4 * sd / np.sqrt(n))
    # Var(s^2) = sigma^4 (kurtosis - 1) / n to first order (kurtosis = excess + 3); scaling
    # changes sigma, not the kurtosis
    se_var = sd**2 * np.sqrt((kurt + 2.0) / n)
    assert np.all(np.abs(draws.var(axis=0, ddof=1) - sd**2) <= 4 * se_var)
    # and the variance really is scale^2 times that of plain Thompson draws (arms not fully
    # determined: the two sampled variances differ by far more than their errors otherwise)
    plain = _draws(b, 1.0, None, seed=13).var(axis=0, ddof=1)
    ratio = draws.var(axis=0, ddof=1) / plain
    se_ratio = scale**2 * np.sqrt(2 * (kurt + 2.0) / n)
    assert np.all(np.abs(ratio - scale**2) <= 4 * se_ratio)


def test_linear_weight_posterior_is_scaled_exactly():
    """For Gaussian-weight models the tempered draw is N(m, scale^2 S S^T): the square-root
    factor is multiplied, the mean and the original posterior are untouched."""
    b = _learned("linear")
    post = b.posterior
    before = post.sqrt_cov.copy()
    tempered = post.scaled(0.25)
    np.testing.assert_array_equal(tempered.sqrt_cov, 0.25 * before)
    np.testing.assert_array_equal(tempered.mean, post.mean)
    np.testing.assert_array_equal(post.sqrt_cov, before)


# ----- propensities of the scaled draw ------------------------------------------------------
def _beta_bandit(scale: float, draws: int = 20_000, seed: int = 0) -> Bandit:
    b = Bandit(["a", "b", "c"], BetaBernoulli(), ThompsonSampling(scale=scale), seed=seed,
               propensity_draws=draws)
    b.update_batch(["a"] * 10 + ["b"] * 10 + ["c"] * 4,
                   [1] * 6 + [0] * 4 + [1] * 4 + [0] * 6 + [1, 0, 0, 1])
    return b


def _exact_scaled_beta_prob_best(alpha: np.ndarray, beta: np.ndarray, s: float) -> np.ndarray:
    """P(arm i has the largest scaled draw m_i + s (X_i - m_i)), X_i ~ Beta(alpha_i, beta_i):
    ``int f_i(x) prod_{j != i} F_j(m_j + (m_i + s (x - m_i) - m_j) / s) dx``."""
    m = alpha / (alpha + beta)
    out = []
    for i in range(len(alpha)):
        def f(x, i=i):
            y = m[i] + s * (x - m[i])
            val = sps.beta.pdf(x, alpha[i], beta[i])
            for j in range(len(alpha)):
                if j != i:
                    val *= sps.beta.cdf(m[j] + (y - m[j]) / s, alpha[j], beta[j])
            return val
        out.append(integrate.quad(f, 0.0, 1.0, epsabs=1e-11, limit=200)[0])
    return np.array(out)


@pytest.mark.parametrize("scale", [0.25, 0.5])
def test_scaled_thompson_propensities_match_the_exact_probabilities(scale):
    b = _beta_bandit(scale)
    exact = _exact_scaled_beta_prob_best(b.posterior.alpha, b.posterior.beta, scale)
    assert exact.sum() == pytest.approx(1.0, abs=1e-6)
    n = b.propensity_draws
    se = np.sqrt(exact * (1 - exact) / n)
    # the scale matters: plain Thompson's probabilities are many standard errors away, so
    # propensities computed from unscaled draws would fail below
    plain = _exact_scaled_beta_prob_best(b.posterior.alpha, b.posterior.beta, 1.0)
    assert np.max(np.abs(plain - exact) / se) > 8
    probs = b.action_probabilities()
    assert np.all(np.abs(probs - exact) <= 4 * se), (probs, exact)
    for _ in range(5):
        d = b.select(propensity=True)
        i = b.arm_index(d.arm)
        assert abs(d.propensity - exact[i]) <= 4 * se[i]
    batch = b.select_batch(n=50, propensity=True)
    assert batch.propensities is not None
    got = batch.propensities[:, 0]
    want = exact[batch.indices[:, 0]]
    assert np.all(np.abs(got - want) <= 4 * se[batch.indices[:, 0]])
    # and the rule really chooses with those frequencies (binomial, 4 sd)
    m = 4000
    picks = [b.select().index for _ in range(m)]
    for i in range(3):
        assert abs(picks.count(i) - m * exact[i]) <= 4 * np.sqrt(m * exact[i] * (1 - exact[i]))


@pytest.mark.parametrize("model", [
    LinearGaussian(n_features=2, prior_precision=1.0, noise_variance=0.5),
    LogisticLaplace(n_features=2, prior_precision=1.0),
])
def test_scaled_gaussian_two_arm_propensity_is_the_normal_cdf(model):
    """Two Gaussian arms: P(arm 0's draw wins) = Phi((mu0 - mu1) / (scale sqrt(v0 + v1)))
    on the linear-predictor scale (the sigmoid is monotone)."""
    scale = 0.4
    b = Bandit(["a", "b"], model, ThompsonSampling(scale=scale), seed=5,
               propensity_draws=20_000)
    X = np.array([[1.0, 0.5], [1.0, -0.5], [1.0, 0.2]] * 4)
    b.update_batch([0, 1, 0] * 4, [1.0, 0.0, 0.0] * 4, X)
    x = np.array([1.0, 0.3])
    p = b.posterior
    mu = p.mean @ x
    var = np.array([np.sum((p.sqrt_cov[k].T @ x) ** 2) for k in range(2)])
    exact0 = sps.norm.cdf((mu[0] - mu[1]) / (scale * np.sqrt(var.sum())))
    exact = np.array([exact0, 1 - exact0])
    unscaled0 = sps.norm.cdf((mu[0] - mu[1]) / np.sqrt(var.sum()))
    se = np.sqrt(exact * (1 - exact) / b.propensity_draws)
    assert abs(unscaled0 - exact0) > 8 * se[0]
    np.testing.assert_array_less(np.abs(b.action_probabilities(x)[0] - exact), 4 * se)
    d = b.select(x, propensity=True)
    assert abs(d.propensity - exact[d.index]) <= 4 * se[d.index]


def test_forced_choice_has_propensity_exactly_one():
    b = _beta_bandit(0.25, draws=100)
    d = b.select(eligible=["c"], propensity=True)
    assert d.arm == "c" and d.propensity == 1.0
    # with two eligible arms the second place is decided by the first
    d = b.rank(2, eligible=["b", "c"], propensity=True)
    assert set(d.ranking) == {"b", "c"}
    assert d.position_propensities[0] == d.position_propensities[1]


# ----- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, 0.0, -0.5, float("nan"), float("inf"), "wide", None, True])
def test_scale_is_validated_and_named(bad):
    with pytest.raises(ConfigurationError, match="scale"):
        ThompsonSampling(scale=bad)
    with pytest.raises(ConfigurationError, match="scale"):
        rule_from_config({"kind": "thompson", "scale": bad})


def test_config_round_trip_and_old_configs():
    rule = ThompsonSampling(scale=0.25)
    cfg = rule.to_config()
    assert cfg == {"kind": "thompson", "scale": 0.25}
    assert json.loads(json.dumps(cfg)) == cfg
    assert rule_from_config(cfg) == rule
    assert ThompsonSampling().to_config() == {"kind": "thompson", "scale": 1.0}
    # configurations written before ``scale`` existed load as plain Thompson sampling
    assert rule_from_config({"kind": "thompson"}) == ThompsonSampling() == ThompsonSampling(1.0)
    with pytest.raises(ConfigurationError, match="thompson"):
        rule_from_config({"kind": "thompson", "temperature": 0.5})


@pytest.mark.parametrize("model", [BetaBernoulli(), NormalInverseGamma(),
                                   LogisticLaplace(n_features=2)])
def test_bandit_state_keeps_the_scale_and_old_states_load(model):
    b = Bandit(["a", "b", "c"], model, ThompsonSampling(scale=0.25), seed=3)
    x = None if model.n_features is None else np.array([1.0, 0.5])
    for _ in range(10):
        b.update(b.select(x).arm, 1.0, x)
    state = json.loads(json.dumps(b.to_dict()))
    c = Bandit.from_dict(state)
    assert c.rule == ThompsonSampling(scale=0.25)
    assert [c.select(x).arm for _ in range(30)] == [b.select(x).arm for _ in range(30)]
    # a state saved before ``scale`` existed: the rule is {"kind": "thompson"}
    old = {**state, "rule": {"kind": "thompson"}}
    assert Bandit.from_dict(old).rule == ThompsonSampling()


def test_lab_uses_the_core_rule():
    from tsbandit.lab.environments import BernoulliArms
    from tsbandit.lab.offers import OfferWorld
    from tsbandit.lab.policies import DEFAULT_SCALE, make_policy
    from tsbandit.lab.rules import TemperedThompsonSampling

    spec = make_policy("ts", OfferWorld())
    assert type(spec.rule) is ThompsonSampling and spec.rule.scale == DEFAULT_SCALE == 0.25
    assert type(spec.model) is LogisticLaplace
    assert make_policy("ts-tempered", BernoulliArms([0.1, 0.2])).rule == ThompsonSampling(0.5)
    # the old lab name is the core rule with the lab's old default, and draws the same
    old = TemperedThompsonSampling()
    assert old.scale == 0.25 and old.to_config() == {"kind": "thompson", "scale": 0.25}
    b = _learned("logistic")
    x = np.array([1.0, 0.4, 0.7])
    for rule in (old, ThompsonSampling(scale=0.25)):
        got = rule.scores(b.model, b.posterior, b.stats, np.random.default_rng(8), x, 5)
        want = b.model.sample(b.posterior.scaled(0.25), np.random.default_rng(8), x, 5)
        assert np.array_equal(got, want)
