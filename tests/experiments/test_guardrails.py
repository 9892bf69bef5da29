"""Guardrail metrics of a Bayesian A/B/n test: probabilities, credible bounds, the decision."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from tsbandit.errors import ConfigurationError
from tsbandit.experiments import (
    BinaryPosteriors,
    Guardrail,
    NormalPosteriors,
    StoppingRule,
    evaluate_guardrails,
    experiment_from_dict,
    experiment_report,
)
from tsbandit.experiments.guardrails import credible_bound, guardrail_probability

DRAWS = 200_000


def _within(mc: tuple[float, float], exact: float) -> None:
    """A Monte-Carlo probability within 4 of its standard errors of the exact value (the SE
    from the exact p, so a p near 0 or 1 is not excused by a zero estimated SE)."""
    p_mc, _ = mc
    se = math.sqrt(exact * (1.0 - exact) / DRAWS)
    assert abs(p_mc - exact) <= 4.0 * se + 1e-12, (p_mc, exact, se)


# ----- probabilities: exact against scipy, Monte Carlo against exact ------------------------
@pytest.mark.parametrize("bound,value", [("max", 0.05), ("max", 0.03), ("min", 0.04)])
def test_absolute_beta_probability_is_the_beta_cdf(bound, value):
    post = BinaryPosteriors.from_counts([31, 44], [1000, 900], names=["A", "B"])
    g = Guardrail("risk", bound, value)
    for k, (a, b) in enumerate(zip(post.alpha, post.beta, strict=True)):
        cdf = sps.beta.cdf(value, a, b)
        exact = cdf if bound == "max" else 1.0 - cdf
        p, se = guardrail_probability(g, post, k, None)
        assert se == 0.0 and p == pytest.approx(exact, abs=1e-12)
        _within(guardrail_probability(g, post, k, None, method="mc",
                                      rng=np.random.default_rng(k), draws=DRAWS), exact)


def test_absolute_normal_probability_is_the_student_t_cdf():
    post = NormalPosteriors.from_summary([400, 380], [50.0, 48.5], [20.0, 21.0], ["A", "B"])
    g = Guardrail("revenue", "min", 49.0)
    for k in range(2):
        m = post.marginal(k)
        exact = sps.t.sf(49.0, m.df, loc=m.loc, scale=m.scale)
        assert guardrail_probability(g, post, k, None)[0] == pytest.approx(exact, abs=1e-12)
        _within(guardrail_probability(g, post, k, None, method="mc",
                                      rng=np.random.default_rng(10 + k), draws=DRAWS), exact)


@pytest.mark.parametrize("lift,bound,value", [("relative", "max", 0.10),
                                              ("relative", "min", -0.05),
                                              ("absolute", "max", 0.004),
                                              ("absolute", "min", -0.5)])
def test_relative_guardrails_exact_against_monte_carlo(lift, bound, value):
    binary = BinaryPosteriors.from_counts([40, 45], [1000, 1000], names=["A", "B"])
    normal = NormalPosteriors.from_summary([300, 320], [20.0, 20.3], [8.0, 9.0], ["A", "B"])
    post = normal if value == -0.5 else binary
    g = Guardrail("m", bound, value, relative_to="control", lift=lift)
    exact, _ = guardrail_probability(g, post, 1, 0)
    assert 0.02 < exact < 0.98  # a test that can fail either way
    _within(guardrail_probability(g, post, 1, 0, method="mc", rng=np.random.default_rng(3),
                                  draws=DRAWS), exact)


def test_credible_bound_is_the_level_quantile():
    post = BinaryPosteriors.from_counts([40, 52], [1000, 1000], names=["A", "B"])
    level = 0.95
    # absolute: the Beta quantile
    g = Guardrail("risk", "max", 0.05)
    q = credible_bound(g, post, 1, None, level)
    assert q == pytest.approx(sps.beta.ppf(level, post.alpha[1], post.beta[1]), rel=1e-10)
    # relative: P(lift <= bound) == level, i.e. the probability at the bound is the level
    for lift in ("relative", "absolute"):
        for bound in ("max", "min"):
            g = Guardrail("risk", bound, 0.0, relative_to="control", lift=lift)
            b = credible_bound(g, post, 1, 0, level)
            at = guardrail_probability(Guardrail("risk", bound, b, "control", lift), post, 1,
                                       0)[0]
            assert at == pytest.approx(level, abs=1e-7)


def test_control_compared_with_itself():
    post = BinaryPosteriors.from_counts([40, 52], [1000, 1000], names=["A", "B"])
    assert guardrail_probability(Guardrail("r", "max", 0.1, "control"), post, 0, 0) == (1.0, 0.0)
    assert guardrail_probability(Guardrail("r", "max", -0.1, "control"), post, 0, 0)[0] == 0.0
    assert guardrail_probability(Guardrail("r", "min", 0.0, "control"), post, 0, 0)[0] == 1.0


def test_relative_lift_needs_a_positive_control():
    post = NormalPosteriors.from_summary([50, 50], [0.1, 0.3], [2.0, 2.0], ["A", "B"])
    with pytest.raises(ConfigurationError, match="lift': 'absolute"):
        guardrail_probability(Guardrail("m", "max", 0.1, "control"), post, 1, 0)
    p, _ = guardrail_probability(Guardrail("m", "max", 0.1, "control", "absolute"), post, 1, 0)
    assert 0.0 < p < 1.0


# ----- decisions --------------------------------------------------------------------------
GOAL = BinaryPosteriors.from_counts([100, 160, 110], [2000, 2000, 2000], names=["A", "B", "C"])
RULE = StoppingRule(prob_best=0.99, min_samples=100)


def test_best_on_goal_breaking_a_guardrail_is_not_the_winner():
    risk = BinaryPosteriors.from_counts([40, 130, 42], [2000, 2000, 2000], names=GOAL.names)
    d = evaluate_guardrails(GOAL, {"risk": risk}, [{"metric": "risk", "max": 0.05}], RULE,
                            rng=np.random.default_rng(0))
    assert d.prob_best.values[1] >= 0.99 and d.goal_met == (False, True, False)
    assert not d.stop and d.winner is None
    assert "no winner: 'B' meets the goal criterion" in d.reason and "risk <= 0.05" in d.reason
    (b,) = d.blocked
    assert b["arm"] == "B" and b["metric"] == "risk" and b["needed"] == 0.99
    # by how much: the 99% upper bound of B's risk, past the limit
    upper = sps.beta.ppf(0.99, risk.alpha[1], risk.beta[1])
    assert b["bound"] == pytest.approx(upper, rel=1e-9)
    assert b["margin"] == pytest.approx(upper - 0.05, rel=1e-9) and b["margin"] > 0
    assert b["clearly_broken"]  # risk about 6.5%: P(risk <= 5%) is far below 1%


def test_winner_when_the_guardrails_hold():
    risk = BinaryPosteriors.from_counts([40, 45, 42], [2000, 2000, 2000], names=GOAL.names)
    rails = [{"metric": "risk", "max": 0.05},
             {"metric": "risk", "max": 1.0, "relative_to": "control"}]
    d = evaluate_guardrails(GOAL, {"risk": risk}, rails, RULE, rng=np.random.default_rng(0))
    assert d.stop and d.winner == "B" and not d.blocked
    assert all(c.holds for c in d.checks[1]) and "guardrail(s) hold" in d.reason
    # the same data with a stricter relative bound: B's risk is not surely within +5% of A's
    d = evaluate_guardrails(GOAL, {"risk": risk}, [{"metric": "risk", "max": 0.05,
                                                    "relative_to": "control"}], RULE,
                            rng=np.random.default_rng(0))
    assert d.winner is None and d.blocked[0]["arm"] == "B" and d.blocked[0]["margin"] > 0


def test_guardrail_level_defaults_to_the_rule_and_can_be_set():
    risk = BinaryPosteriors.from_counts([40, 84, 42], [2000, 2000, 2000], names=GOAL.names)
    rails = [Guardrail("risk", "max", 0.05)]
    p = guardrail_probability(rails[0], risk, 1, None)[0]
    assert 0.9 < p < 0.99  # between the two levels below
    kw = {"rng": np.random.default_rng(0)}
    assert evaluate_guardrails(GOAL, {"risk": risk}, rails, RULE, **kw).winner is None
    assert evaluate_guardrails(GOAL, {"risk": risk}, rails, RULE, level=0.9, **kw).winner == "B"
    loss_only = StoppingRule(prob_best=None, expected_loss=0.001)
    with pytest.raises(ConfigurationError, match="level="):
        evaluate_guardrails(GOAL, {"risk": risk}, rails, loss_only, **kw)


def test_loss_rule_ships_the_arm_that_keeps_its_guardrails():
    goal = BinaryPosteriors.from_counts([500, 501], [5000, 5000], names=["A", "B"])
    risk = BinaryPosteriors.from_counts([250, 100], [5000, 5000], names=["A", "B"])
    rule = StoppingRule(prob_best=None, expected_loss=0.01)
    plain = evaluate_guardrails(goal, {}, [], rule)
    assert plain.winner == "B"  # the lower expected loss (a near tie)
    d = evaluate_guardrails(goal, {"risk": risk}, [Guardrail("risk", "max", 0.03)], rule,
                            level=0.95)
    assert d.goal_met == (True, True) and d.winner == "B"
    d = evaluate_guardrails(goal, {"risk": risk}, [Guardrail("risk", "max", 0.04)], rule,
                            level=0.95)
    assert d.winner == "B"
    # a bound only A keeps: A ships although B has the lower loss
    d = evaluate_guardrails(goal, {"risk": risk}, [Guardrail("risk", "min", 0.04)], rule,
                            level=0.95)
    assert d.winner == "A" and "expected loss of 'A'" in d.reason


def test_without_guardrails_the_decision_is_the_stopping_rule():
    from tsbandit.experiments import evaluate_stopping

    for counts, trials in (([100, 160, 110], [2000] * 3), ([100, 115, 110], [2000] * 3),
                           ([10, 16, 11], [200, 200, 90])):
        goal = BinaryPosteriors.from_counts(counts, trials, names=["A", "B", "C"])
        a = evaluate_guardrails(goal, {}, [], RULE, rng=np.random.default_rng(4))
        b = evaluate_stopping(goal, RULE, rng=np.random.default_rng(4))
        assert (a.stop, a.winner, a.reason) == (b.stop, b.winner, b.reason)


def test_errors_name_the_problem():
    risk = BinaryPosteriors.from_counts([1, 2], [10, 10], names=["A", "X"])
    with pytest.raises(ConfigurationError, match="same arms"):
        evaluate_guardrails(GOAL, {"risk": risk}, [Guardrail("risk", "max", 0.1)], RULE)
    with pytest.raises(ConfigurationError, match="no data for that metric"):
        evaluate_guardrails(GOAL, {}, [Guardrail("risk", "max", 0.1)], RULE)
    with pytest.raises(ConfigurationError, match="one of 'max' or 'min'"):
        Guardrail.from_dict({"metric": "risk", "max": 0.1, "min": 0.0})
    with pytest.raises(ConfigurationError, match="lift"):
        Guardrail("risk", "max", 0.1, "control", "ratio")
    with pytest.raises(ConfigurationError, match="not a number"):
        Guardrail.parse("risk:max=lots")
    with pytest.raises(ConfigurationError, match="control 'Z'"):
        evaluate_guardrails(GOAL, {}, [], RULE, control="Z", rng=np.random.default_rng(0))


def test_parse_and_round_trip():
    g = Guardrail.parse("risk:max=10%,relative_to=control")
    assert (g.metric, g.bound, g.value, g.relative_to, g.lift) == ("risk", "max", 0.1,
                                                                  "control", "relative")
    assert Guardrail.from_dict(g.to_dict()) == g
    h = Guardrail.parse("nps:min=-0.5,relative_to=A,lift=absolute")
    assert h.describe() == "nps - nps[A] >= -0.5" and Guardrail.from_dict(h.to_dict()) == h
    assert Guardrail.parse("risk:max=0.05").describe() == "risk <= 0.05"


# ----- invariants -------------------------------------------------------------------------
counts = st.tuples(st.integers(0, 400), st.integers(1, 400)).map(lambda t: (min(t), max(t)))


@settings(max_examples=25, deadline=None)
@given(st.lists(counts, min_size=2, max_size=4), st.lists(counts, min_size=4, max_size=4),
       st.floats(0.01, 0.99), st.sampled_from(["max", "min"]), st.integers(0, 2**31 - 1))
def test_invariants(goal_counts, risk_counts, value, bound, seed):
    k = len(goal_counts)
    names = [f"a{i}" for i in range(k)]
    goal = BinaryPosteriors.from_counts(*zip(*goal_counts, strict=True), names=names)
    risk = BinaryPosteriors.from_counts(*zip(*risk_counts[:k], strict=True), names=names)
    rails = [Guardrail("risk", bound, value),
             Guardrail("risk", bound, value - 0.5, "control", "absolute"),
             Guardrail("risk", bound, 4 * value - 2, "control")]  # a lift in (-198%, +194%)
    d = evaluate_guardrails(goal, {"risk": risk}, rails, StoppingRule(0.9, min_samples=0),
                            rng=np.random.default_rng(seed), draws=2000)
    assert d.prob_best.values.sum() == pytest.approx(1.0, abs=1e-9)
    assert ((d.prob_best.values >= 0) & (d.prob_best.values <= 1)).all()
    assert (d.expected_loss.values >= -1e-12).all()
    for arm_checks in d.checks:
        for c in arm_checks:
            assert 0.0 <= c.prob <= 1.0
            assert c.holds == (c.prob >= 0.9)
            if abs(c.prob - 0.9) > 1e-6:  # the credible bound agrees with the probability
                assert (c.margin <= 1e-9) == c.holds
    if d.winner is not None:
        w = names.index(d.winner)
        assert d.goal_met[w] and all(c.holds for c in d.checks[w])


# ----- report and input document ----------------------------------------------------------
DOC = {"goal": "conversion", "control": "A",
       "metrics": {
           "conversion": {"A": {"successes": 100, "trials": 2000},
                          "B": {"successes": 160, "trials": 2000}},
           "risk": {"A": {"successes": 40, "trials": 2000}, "B": {"successes": 130,
                                                                   "trials": 2000}},
           "revenue": {"A": {"n": 2000, "sum": 100_000.0, "sum_sq": 5_800_000.0},
                       "B": {"n": 2000, "mean": 50.5, "sd": 20.0}}},
       "guardrails": [{"metric": "risk", "max": 0.05},
                      {"metric": "revenue", "min": -0.05, "relative_to": "control"}]}


def test_report_with_guardrails_and_document():
    exp = experiment_from_dict(DOC)
    assert exp.goal_name == "conversion" and exp.goal.names == ("A", "B")
    assert isinstance(exp.metrics["revenue"], NormalPosteriors)
    rep = experiment_report(exp.goal, metrics=exp.metrics, guardrails=exp.guardrails,
                            control=exp.control, rule=RULE)
    json.dumps(rep)  # JSON-safe
    assert rep["decision"]["winner"] is None and rep["decision"]["guardrail_level"] == 0.99
    b = rep["arms"][1]
    assert b["goal_met"] and [c["holds"] for c in b["guardrails"]] == [False, True]
    assert rep["decision"]["blocked"][0]["describe"] == "risk <= 0.05"
    assert set(rep["metrics"]) == {"conversion", "risk", "revenue"}
    assert rep["metrics"]["revenue"]["arms"][0]["mean"] == pytest.approx(50.0, rel=1e-5)
    plain = experiment_report(exp.goal, rule=RULE)
    assert "guardrails" not in plain and plain["decision"]["winner"] == "B"


def test_document_errors():
    bad = json.loads(json.dumps(DOC))
    bad["metrics"]["risk"]["A"] = {"successes": 1}
    with pytest.raises(ConfigurationError, match="metric 'risk', arm 'A'"):
        experiment_from_dict(bad)
    bad = json.loads(json.dumps(DOC))
    del bad["metrics"]["risk"]["B"]
    with pytest.raises(ConfigurationError, match=r"same arms|at least two"):
        experiment_from_dict(bad)
    bad = json.loads(json.dumps(DOC))
    bad["guardrails"].append({"metric": "churn", "max": 0.1})
    with pytest.raises(ConfigurationError, match="no such metric"):
        experiment_from_dict(bad)
