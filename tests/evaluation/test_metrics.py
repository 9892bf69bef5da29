"""Off-policy evaluation of every metric of a several-metric bandit's event log."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from tsbandit import Bandit
from tsbandit.cli.evaluate import app as evaluate_app
from tsbandit.errors import InvalidLogError
from tsbandit.evaluation import FixedPolicy, UniformPolicy, make_estimators
from tsbandit.evaluation.metric_log import load_metric_log, log_metrics
from tsbandit.evaluation.metric_report import evaluate_metrics

ARMS = ("A", "B", "C")
APPLY = np.array([0.30, 0.20, 0.10])      # P(apply) per arm
REVENUE = np.array([40.0, 90.0, 150.0])   # E[revenue | apply]
RISK = np.array([0.02, 0.04, 0.12])       # P(default | apply)
GIVEN = {"revenue": "apply", "risk": "apply"}
WEIGHTS = {"revenue": 1.0, "risk": -200.0}


def truth(pi: np.ndarray) -> dict[str, float]:
    """Per-decision values of a target distribution ``pi`` over the arms (the world's)."""
    per_arm = {"apply": APPLY, "revenue": APPLY * REVENUE, "risk": APPLY * RISK}
    out = {m: float(pi @ v) for m, v in per_arm.items()}
    out["objective"] = out["revenue"] - 200.0 * out["risk"]
    return out


def world_log(n: int, seed: int, *, lose_revenue: float = 0.0) -> list[str]:
    """A uniform logging policy over three arms; apply, then revenue and risk given apply.

    ``lose_revenue``: the share of applied decisions whose revenue never arrives (at random):
    half have no event at all, half an ``expired`` event without a default.
    """
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        a = int(rng.integers(0, 3))
        did = f"cards:{i}"
        base = {"decision_id": did, "bandit": "cards", "arm": ARMS[a]}
        lines.append({"type": "decision", "timestamp": float(i), "context": None,
                      "propensity": 1 / 3, **base})
        applied = int(rng.random() < APPLY[a])
        lines.append({"type": "reward", "timestamp": i + 0.1, "metric": "apply",
                      "reward": applied, **base})
        if not applied:
            # the engine refuses conditional rewards here; the expiry sweep may log a default
            if rng.random() < 0.5:
                lines.append({"type": "expired", "timestamp": i + 9.0, "metric": "risk",
                              "reward": 0, **base})
            continue
        revenue = float(rng.normal(REVENUE[a], 25.0))
        lost = rng.random() < lose_revenue
        if not lost:
            lines.append({"type": "reward", "timestamp": i + 0.5, "metric": "revenue",
                          "reward": revenue, **base})
        elif rng.random() < 0.5:
            lines.append({"type": "expired", "timestamp": i + 9.0, "metric": "revenue",
                          "reward": None, **base})
        lines.append({"type": "reward", "timestamp": i + 0.7, "metric": "risk",
                      "reward": int(rng.random() < RISK[a]), **base})
    return [json.dumps(x) for x in lines]


def _check(rep, pi: np.ndarray, names=("ips", "snips", "dm", "dr")) -> dict[str, float]:
    """Every estimate of every metric and the objective within 4 standard errors of the
    truth; the largest |error| / SE."""
    t = truth(pi)
    worst = {}
    for what, r in [("objective", rep.objective), *rep.metrics.items()]:
        for e in r.estimates:
            if e.estimator not in names:
                continue
            z = abs(e.value - t[what]) / e.std_error
            assert z < 4.0, (what, e.estimator, e.value, t[what], e.std_error)
            worst[what] = max(worst.get(what, 0.0), z)
    return worst


@pytest.mark.parametrize("pi", [np.array([0.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.0]),
                                np.full(3, 1 / 3)])
def test_every_metric_and_the_objective_within_4_se_of_the_truth(pi):
    log = load_metric_log(world_log(6000, seed=1), given=GIVEN, objective=WEIGHTS)
    assert log.metrics == ("apply", "risk", "revenue")  # as first logged
    rep = evaluate_metrics(log, FixedPolicy(pi), rng=np.random.default_rng(2),
                           estimators=make_estimators(("ips", "snips", "dm", "dr")))
    _check(rep, pi)
    # the conditional metrics are per decision: 0 where apply was 0
    assert set(np.unique(log.values["risk"])) <= {0.0, 1.0}
    applied = log.values["apply"] == 1
    assert (log.values["revenue"][~applied] == 0).all()
    assert log.counts["risk"]["zero_by_given"] == int((~applied).sum())


def test_missing_conditional_rewards_are_imputed_without_bias():
    lines = world_log(6000, seed=3, lose_revenue=0.25)
    log = load_metric_log(lines, given=GIVEN, objective=WEIGHTS)
    c = log.counts["revenue"]
    assert c["imputed"] > 200 and c["missing"] == 0
    pi = np.array([0.0, 1.0, 0.0])
    rep = evaluate_metrics(log, FixedPolicy(pi), rng=np.random.default_rng(4),
                           estimators=make_estimators(("ips", "snips", "dr")))
    _check(rep, pi, ("ips", "snips", "dr"))
    assert any("imputed" in n for n in rep.notes)
    # dropping them instead drops conversions: fewer rows for revenue and the objective
    dropped = load_metric_log(lines, given=GIVEN, objective=WEIGHTS,
                              missing_conditional="drop")
    assert dropped.data.n_rounds == log.data.n_rounds - c["imputed"]
    assert dropped.counts["revenue"]["imputed"] == 0


def test_one_policy_distribution_for_every_metric_and_rng_streams():
    log = load_metric_log(world_log(1500, seed=5), given=GIVEN, objective=WEIGHTS)
    a = evaluate_metrics(log, UniformPolicy(), rng=np.random.default_rng(9))
    b = evaluate_metrics(log, UniformPolicy(), rng=np.random.default_rng(9))
    assert a.to_dict() == b.to_dict()
    json.dumps(a.to_dict())
    assert set(a.metrics) == {"apply", "revenue", "risk"}
    assert a.objective_weights == WEIGHTS and a.given == {"apply": None, **GIVEN}


def test_default_objective_and_order_and_errors():
    lines = world_log(300, seed=6)
    assert log_metrics(lines) == ["apply", "risk", "revenue"]  # as first logged
    assert log_metrics(lines, "cards") == log_metrics(lines) and not log_metrics(lines, "x")
    log = load_metric_log(lines)
    assert log.objective == {"apply": 1.0}
    np.testing.assert_array_equal(log.data.rewards, log.values["apply"])
    # without 'given', a conditional metric is missing wherever it was not logged
    assert np.isnan(log.values["revenue"]).sum() == (log.values["apply"] == 0).sum()
    with pytest.raises(InvalidLogError, match="second 'apply' reward"):
        load_metric_log([*lines[:2], lines[1]])
    with pytest.raises(InvalidLogError, match="not in the log's metrics"):
        load_metric_log(lines, objective={"churn": 1.0})
    bad = json.loads(lines[1])
    del bad["metric"]
    with pytest.raises(InvalidLogError, match="without 'metric'"):
        load_metric_log([*lines, json.dumps(bad)])
    with pytest.raises(InvalidLogError, match="cycle"):
        load_metric_log(lines, given={"apply": "risk", "risk": "apply"})


# ----- command line ------------------------------------------------------------------------
root = typer.Typer()


@root.callback()
def _root() -> None:
    """Root."""


root.add_typer(evaluate_app, name="evaluate")
runner = CliRunner()


@pytest.fixture
def metric_log(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(world_log(3000, seed=7)))
    return path


def test_cli_prints_every_metric_and_the_objective(metric_log):
    r = runner.invoke(root, ["evaluate", str(metric_log), "--policy", "uniform", "--seed", "1",
                             "--objective", "revenue=1,risk=-200", "--given", "revenue=apply",
                             "--given", "risk=apply"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "metrics apply, risk (given apply), revenue (given apply)" in out
    assert "objective = 1 * revenue - 200 * risk" in out
    assert "metric apply per decision" in out
    assert "metric revenue given apply: apply * revenue per decision" in out
    r = runner.invoke(root, ["evaluate", str(metric_log), "--policy", "uniform", "--seed", "1",
                             "--objective", "revenue=1,risk=-200", "--given",
                             "revenue=apply,risk=apply", "--json",
                             "--estimators", "ips,snips,dr"])
    rep = json.loads(r.output)
    t = truth(np.full(3, 1 / 3))
    for m in ("apply", "revenue", "risk"):
        ips = rep["metrics"][m]["estimates"][0]
        assert ips["estimator"] == "ips"
        assert abs(ips["value"] - t[m]) < 4 * ips["std_error"]
    obj = rep["objective"]["estimates"][1]
    assert abs(obj["value"] - t["objective"]) < 4 * obj["std_error"]


def test_cli_reads_given_and_objective_from_a_saved_bandit(metric_log, tmp_path):
    bandit = Bandit(list(ARMS), metrics={"apply": "beta",
                                         "revenue": {"model": "gaussian", "given": "apply"},
                                         "risk": {"model": "beta", "given": "apply"}},
                    objective={"revenue": 1.0}, seed=0)
    state = tmp_path / "bandit.json"
    state.write_text(json.dumps(bandit.to_dict()))
    r = runner.invoke(root, ["evaluate", str(metric_log), "--state", str(state), "--seed", "2",
                             "--batch-size", "500", "--n-sim", "500", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["objective_weights"] == {"revenue": 1.0} and rep["policy"] == "bandit"
    assert rep["given"] == {"apply": None, **GIVEN}
    assert list(rep["metrics"]) == ["apply", "revenue", "risk"]  # the bandit's order


def test_cli_single_metric_options_refused(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"type": "decision", "decision_id": "d1", "timestamp": 1, "arm": "a",
         "propensity": 0.5},
        {"type": "reward", "decision_id": "d1", "reward": 1}]))
    r = runner.invoke(root, ["evaluate", str(path), "--objective", "x=1"])
    assert r.exit_code == 2 and "several metrics" in r.output


# ----- a saved several-metric bandit, replayed ---------------------------------------------
METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
           "risk": {"model": "beta", "given": "apply"}}


def test_saved_bandit_learns_every_metric_as_observed():
    from tsbandit.evaluation import bandit_policy

    log = load_metric_log(world_log(3000, seed=8), given=GIVEN, objective=WEIGHTS)
    state = Bandit(list(ARMS), metrics=METRICS, objective=WEIGHTS, seed=0).to_dict()
    frozen = bandit_policy(state, log.data, n_sim=2000).action_dist(
        log.data, np.random.default_rng(0))
    assert np.abs(frozen - 1 / 3).max() < 0.1  # the prior alone: no arm preferred
    learner = bandit_policy(state, log.data, learn=True, batch_size=300, n_sim=2000,
                            observed=log.observed)
    pi = learner.action_dist(log.data, np.random.default_rng(0))
    # B has the best objective (0.2 * 90 - 200 * 0.2 * 0.04 = 16.4 against 10.8 and 12.6)
    assert pi[-1].argmax() == 1 and pi[-1, 1] > 0.8
    assert np.allclose(pi[:300], pi[0])  # the first batch: before any learning
    # a constrained rule is replayed too: C (risk 12 % given apply) breaks risk <= 0.05
    state = Bandit(list(ARMS), metrics=METRICS, objective={"revenue": 1.0},
                   constraints=[{"metric": "risk", "max": 0.05}], seed=0).to_dict()
    pi = bandit_policy(state, log.data, learn=True, batch_size=300, n_sim=2000,
                       observed=log.observed).action_dist(log.data, np.random.default_rng(1))
    assert pi[-1, 2] < 0.05 and pi[-1, 1] > 0.8
    assert np.isnan(log.observed["risk"][log.values["apply"] == 0]).all()  # never learned
    with pytest.raises(Exception, match="observed="):
        bandit_policy(state, log.data, learn=True)
