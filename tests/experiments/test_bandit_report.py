"""A live bandit's report (experiments/bandit_report.py), reached through Engine.report."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.engine import BanditSpec, Engine, bandit_spec
from tsbandit.errors import BanditNotFoundError, ConfigurationError, InvalidSplitError
from tsbandit.experiments import StoppingRule
from tsbandit.experiments.bandit_report import parse_split, read_decisions


@pytest.fixture
def engine() -> Engine:
    engine = Engine.open("memory://", seed=0)
    engine.create_bandit(BanditSpec(name="ab", arms=["A", "B"]))
    rng = np.random.default_rng(0)
    for _ in range(300):
        d = engine.decide("ab")
        engine.record_reward(d.decision_id, int(rng.random() < (0.3 if d.arm == "B" else 0.1)))
    return engine


def test_report_of_a_two_arm_bandit(engine):
    rep = engine.report("ab", rule=StoppingRule(prob_best=0.95, min_samples=10),
                        rng=np.random.default_rng(1))
    assert rep["bandit"] == "ab" and rep["format"] == 1 and rep["metric"] == "binary"
    assert rep["model_version"] == 300 and rep["method"] == "exact"
    assert [a["name"] for a in rep["arms"]] == ["A", "B"]
    assert rep["arms"][1]["prob_best"] > 0.95 and rep["decision"]["winner"] == "B"
    srm = rep["srm"]
    assert srm["status"] == "ok" and srm["method"] == "propensity"
    assert srm["decisions"] == 300 and srm["skipped"] == 0


def test_split_is_parsed_and_checked_against_the_arms(engine):
    assert engine.report("ab", split="1,1")["srm"]["method"] == "split"
    assert engine.report("ab", split=[1.0, 1.0])["srm"]["method"] == "split"
    for bad in ("1", "1,x", "1,-1", "1,inf", [1.0, float("nan")]):
        with pytest.raises(InvalidSplitError, match="split =="):
            engine.report("ab", split=bad)
    assert issubclass(InvalidSplitError, ConfigurationError)
    assert parse_split(" 2, 3", 2) == [2.0, 3.0]


def test_srm_false_reads_no_events_and_errors(engine):
    calls = []
    spec, stats, version = engine.statistics("ab")

    from tsbandit.experiments.bandit_report import bandit_report

    def events():
        calls.append(1)
        return []

    rep = bandit_report("ab", spec, stats, version, events, srm=False)
    assert rep["srm"]["status"] == "not_checked" and calls == []
    assert bandit_report("ab", spec, stats, version, events)["srm"]["status"] == "not_checked"
    assert calls == [1]
    with pytest.raises(BanditNotFoundError):
        engine.report("nope")
    engine.create_bandit(bandit_spec("lin", ["A", "B"], model={"kind": "linear",
                                                                "n_features": 2}))
    engine.create_bandit(BanditSpec(name="one", arms=["A"]))
    for name in ("lin", "one"):
        with pytest.raises(ConfigurationError):
            engine.report(name)


def test_read_decisions_keeps_decisions_of_current_arms():
    events = [{"type": "decision", "arm": "A", "propensity": 0.4, "model_version": 3},
              {"type": "reward", "arm": "A", "reward": 1.0},
              {"type": "decision", "arm": "gone", "propensity": 0.5},
              {"type": "decision", "arm": "B", "arm_probabilities": {"A": 0.5, "B": 0.5}}]
    got = read_decisions(events, ["A", "B"])
    assert got.chosen == [0, 1] and got.skipped == 1
    assert got.propensities[0] == 0.4 and np.isnan(got.propensities[1])
    assert got.versions[0] == 3.0 and np.isnan(got.versions[1])
    assert got.allocations == [None, {"A": 0.5, "B": 0.5}]
