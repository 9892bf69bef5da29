"""The service's event log (JSON Lines) as logged feedback, including a real engine's export."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tsbandit.engine import BanditSpec, Engine
from tsbandit.evaluation import IPS, SNIPS, InvalidLogError
from tsbandit.evaluation.jsonl import load_event_log, parse_timestamp
from tsbandit.policies import EpsilonGreedy
from tsbandit.stores.memory import MemoryStore


def lines(*events):
    return [json.dumps(e) for e in events]


def dec(i, arm, p=0.5, t=None, bandit="b", context=None, **kw):
    return {"type": "decision", "decision_id": f"{bandit}:{i}", "timestamp": t if t is not None
            else 100.0 + i, "bandit": bandit, "context": context, "arm": arm,
            "propensity": p, **kw}


def rew(i, r, bandit="b", kind="reward", **kw):
    return {"type": kind, "decision_id": f"{bandit}:{i}", "timestamp": 500.0 + i,
            "bandit": bandit, "reward": r, **kw}


def test_join_order_and_missing_rewards():
    src = lines(dec(2, "y", 0.25, t=50.0), dec(1, "x"), dec(3, "x"), rew(1, 1.0, arm="x"),
                rew(2, 0.0), rew(9, 1.0), {"type": "heartbeat"}, rew(3, None, kind="expired"))
    data, rep = load_event_log(src, return_report=True)
    assert data.action_names == ("x", "y")
    assert data.actions.tolist() == [1, 0]  # ordered by decision time: decision 2 first
    assert data.rewards.tolist() == [0.0, 1.0]
    assert data.propensities.tolist() == [0.25, 0.5]
    assert (rep.n_decisions, rep.n_rounds, rep.missing_rewards, rep.orphan_rewards) == (3, 2, 1, 1)
    filled = load_event_log(src, missing_reward=0.0)
    assert filled.n_rounds == 3
    named = load_event_log(src, arms=["y", "x", "z"])
    assert named.n_actions == 3 and named.actions.tolist() == [0, 1]


def test_expired_with_a_default_reward_counts_and_rankings_join_the_arm_set():
    src = lines(dec(1, "x", ranking=["x", "w"]), rew(1, 0.0, kind="expired"))
    data = load_event_log(src)
    assert data.action_names == ("w", "x") and data.rewards.tolist() == [0.0]


def test_contexts_and_iso_timestamps(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines(
        dec(1, "x", t="2024-01-01T00:00:01Z", context=[1.0, 2.0]),
        dec(2, "y", t="2024-01-01T00:00:00+00:00", context=[3.0, 4.0]),
        rew(1, 1.0), rew(2, 0.0))) + "\n\n")
    data = load_event_log(path)
    assert data.contexts.tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert data.timestamps[1] - data.timestamps[0] == pytest.approx(1.0)
    assert parse_timestamp("2019-11-24 00:00:34.762830+00:00") == pytest.approx(1574553634.76283)


@pytest.mark.parametrize(
    ("src", "words"),
    [
        (["{not json"], "line 1: not JSON"),
        (["[1, 2]"], "JSON object"),
        (lines(dec(1, "x"), dec(1, "x")), "logged twice"),
        (lines(dec(1, "x"), rew(1, 1.0), rew(1, 0.0)), "second reward"),
        (lines(dec(1, "x"), rew(1, 1.0, arm="y")), "chose 'x'"),
        (lines(dec(1, "x"), rew(1, "lots")), "not a number"),
        (lines(dec(1, "x", p=0.0), rew(1, 1.0)), "(0, 1]"),
        (lines(dec(1, "x", p="high"), rew(1, 1.0)), "propensity"),
        (lines(dec(1, "x", t="yesterday"), rew(1, 1.0)), "timestamp"),
        (lines(dec(1, "x", context=[1.0]), dec(2, "x"), rew(1, 1.0), rew(2, 1.0)), "context"),
        (lines(dec(1, "x"), dec(2, "x", bandit="c"), rew(1, 1.0)), "pick one"),
        (lines(dec(1, "x")), "no decision in the log has a reward"),
        (lines({"type": "decision", "decision_id": "b:1", "arm": "x", "propensity": 0.5,
                "timestamp": 1.0}, {"type": "reward", "decision_id": "b:1"}), "'reward'"),
        (lines({"type": "decision", "arm": "x", "propensity": 0.5, "timestamp": 1.0}),
         "decision event without 'decision_id'"),
    ],
)
def test_malformed_logs(src, words):
    with pytest.raises(InvalidLogError) as info:
        load_event_log(src)
    assert words in str(info.value)


def test_bandit_filter_and_unknown_arms():
    src = lines(dec(1, "x"), dec(2, "y", bandit="c"), rew(1, 1.0), rew(2, 0.0, bandit="c"))
    assert load_event_log(src, bandit="c").action_names == ("y",)
    with pytest.raises(InvalidLogError, match="not in arms"):
        load_event_log(src, bandit="b", arms=["z"])


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_a_real_engine_export_evaluates_correctly():
    # An epsilon-greedy engine (exact propensities) serves 3,000 simulated users; its export
    # is loaded and the uniform policy's value estimated: the truth is the mean click rate.
    rates = {"a": 0.05, "b": 0.15, "c": 0.30}
    engine = Engine(MemoryStore(), seed=1, clock=Clock())
    engine.create_bandit(BanditSpec("offers", list(rates), rule=EpsilonGreedy(0.4)))
    users = np.random.default_rng(2)
    shown = []
    for _ in range(3000):
        d = engine.decide("offers")
        shown.append((d.arm, d.propensity))
        if users.random() < 0.95:  # a few rewards never come
            engine.record_reward(d.decision_id, float(users.random() < rates[d.arm]))
    buf = io.StringIO()
    assert engine.export_events("offers", buf) > 3000
    data, rep = load_event_log(io.StringIO(buf.getvalue()), return_report=True)
    assert rep.n_decisions == 3000 and rep.missing_rewards == 3000 - data.n_rounds
    assert data.action_names == ("a", "b", "c")
    # exact epsilon-greedy propensities (0.4/3 exploring, plus 0.6/ties for the greedy arms)
    assert data.propensities.min() == pytest.approx(0.4 / 3)
    logged = {(data.action_names[a], round(p, 9)) for a, p in zip(data.actions,
                                                                   data.propensities,
                                                                   strict=True)}
    assert logged <= {(arm, round(p, 9)) for arm, p in shown}
    truth = float(np.mean(list(rates.values())))
    for est in (IPS(), SNIPS()):
        e = est.estimate(data, np.full(3, 1 / 3))
        assert abs(e.value - truth) < 4 * e.std_error
    assert abs(data.rewards.mean() - truth) > 4 * data.rewards.std() / np.sqrt(data.n_rounds)
