"""Stopping rules and the JSON report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.experiments import (
    BinaryPosteriors,
    NormalPosteriors,
    StoppingRule,
    evaluate_stopping,
    experiment_report,
    posteriors_from_model,
)
from tsbandit.policies import BetaBernoulli, NormalInverseGamma


def test_rule_check_vectorized():
    rule = StoppingRule(prob_best=0.95, expected_loss=0.001, min_samples=10)
    probs = np.array([[0.97, 0.03], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01]])
    losses = np.array([[0.0001, 0.02], [0.01, 0.01], [0.0005, 0.003], [0.0, 0.1]])
    counts = np.array([[20, 20], [20, 20], [20, 20], [5, 20]])
    stop, winner, by_loss = rule.check(probs, losses, counts)
    assert stop.tolist() == [True, False, True, False]
    assert winner.tolist() == [0, -1, 0, -1]
    assert by_loss.tolist() == [False, False, True, False]


def test_evaluate_stopping_reasons():
    post = BinaryPosteriors.from_counts([120, 160], [1000, 1000], names=["A", "B"])
    d = evaluate_stopping(post, StoppingRule(prob_best=0.99, min_samples=500))
    assert d.stop and d.winner == "B" and "probability 'B' is best" in d.reason
    d = evaluate_stopping(post, StoppingRule(min_samples=5000))
    assert not d.stop and d.winner is None and "min_samples" in d.reason
    d = evaluate_stopping(post, StoppingRule(prob_best=0.9999, expected_loss=1e-3))
    assert d.stop and d.winner == "B" and "expected loss" in d.reason
    d = evaluate_stopping(post, StoppingRule(prob_best=0.9999))
    assert not d.stop and "keep going" in d.reason


@pytest.mark.parametrize("kwargs,msg", [
    ({"prob_best": None, "expected_loss": None}, "needs prob_best or expected_loss"),
    ({"prob_best": 1.0}, "prob_best == 1.0"),
    ({"prob_best": "x"}, "must be a number"),
    ({"expected_loss": -1.0}, "expected_loss == -1.0"),
    ({"min_samples": -3}, "min_samples == -3"),
    ({"min_samples": 2.5}, "min_samples == 2.5"),
])
def test_rule_validation(kwargs, msg):
    with pytest.raises(ConfigurationError, match=msg):
        StoppingRule(**kwargs)


def test_report_two_arms_is_json_safe_and_complete():
    post = BinaryPosteriors.from_counts([120, 150], [1000, 1000], names=["A", "B"])
    rep = experiment_report(post, intended_split=[50, 50])
    json.dumps(rep, allow_nan=False)
    assert rep["format"] == 1 and rep["metric"] == "binary" and rep["method"] == "exact"
    assert [a["name"] for a in rep["arms"]] == ["A", "B"]
    assert sum(a["prob_best"] for a in rep["arms"]) == pytest.approx(1.0)
    assert rep["decision"] == {"stop": False, "winner": None,
                               "reason": "keep going: max probability best 0.9751 < 0.99"}
    assert rep["lift"]["relative"] and rep["lift"]["low"] < rep["lift"]["high"]
    assert rep["srm"]["status"] == "ok"
    assert experiment_report(post)["srm"] == {"status": "not_checked"}


def test_report_n_arms_needs_rng_and_flags_srm():
    post = BinaryPosteriors.from_counts([30, 80, 33], [1000, 1000, 700])
    with pytest.raises(ConfigurationError, match="rng"):
        experiment_report(post)
    rep = experiment_report(post, rng=np.random.default_rng(0), draws=20_000,
                            intended_split=[1, 1, 1])
    json.dumps(rep, allow_nan=False)
    assert rep["method"] == "monte_carlo" and rep["lift"] is None
    assert rep["srm"]["status"] == "mismatch"
    assert rep["decision"]["winner"] == "B"


def test_report_from_a_bandit_model():
    beta = BetaBernoulli()
    stats = beta.init_stats(2)
    beta.accumulate(stats, np.array([0, 0, 1, 1, 1]), np.array([1.0, 0.0, 1.0, 1.0, 0.0]))
    rep = experiment_report(posteriors_from_model(beta, stats, ["x", "y"]))
    assert [a["n"] for a in rep["arms"]] == [2.0, 3.0]
    nig = NormalInverseGamma()
    st = nig.init_stats(2)
    nig.accumulate(st, np.array([0, 0, 1, 1]), np.array([1.0, 2.0, 3.0, 5.0]))
    rep = experiment_report(posteriors_from_model(nig, st, ["x", "y"]))
    assert rep["metric"] == "normal"
    json.dumps(rep, allow_nan=False)


def test_report_normal_metric_with_negative_mean_uses_difference():
    post = NormalPosteriors.from_summary([200, 200], [-1.0, 0.5], [4.0, 4.0])
    rep = experiment_report(post)
    assert rep["lift"]["relative"] is False
    assert rep["lift"]["median"] == pytest.approx(1.5, abs=0.01)
