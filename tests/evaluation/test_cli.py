"""``tsbandit evaluate``, mounted on a root app the way src/tsbandit/cli.py mounts it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from tsbandit import Bandit
from tsbandit.evaluation.cli import app as evaluate_app

root = typer.Typer()


@root.callback()
def _root() -> None:
    """Root."""


root.add_typer(evaluate_app, name="evaluate")
runner = CliRunner()


@pytest.fixture
def event_log(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(400):
        arm = ["x", "y"][int(rng.integers(0, 2))]
        lines.append({"type": "decision", "decision_id": f"b:{i}", "timestamp": float(i),
                      "bandit": "b", "context": None, "arm": arm, "propensity": 0.5})
        r = float(rng.random() < (0.2 if arm == "x" else 0.6))
        lines.append({"type": "reward", "decision_id": f"b:{i}", "timestamp": i + 0.5,
                      "bandit": "b", "arm": arm, "reward": r})
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    return path


@pytest.mark.parametrize("policy", ["uniform", "thompson", "greedy"])
def test_jsonl_table(event_log, policy):
    res = runner.invoke(root, ["evaluate", str(event_log), "--format", "jsonl", "--policy",
                               policy, "--seed", "1", "--n-sim", "500"])
    assert res.exit_code == 0, res.output
    assert "400 rounds, 2 actions" in res.output
    for name in ("replay", "ips", "snips", "dm", "dr", "logged"):
        assert f"\n{name} " in res.output
    again = runner.invoke(root, ["evaluate", str(event_log), "--policy", policy, "--seed", "1",
                                 "--n-sim", "500"])
    assert again.output == res.output  # same seed, same numbers


def test_json_output_bootstrap_and_options(event_log):
    res = runner.invoke(root, ["evaluate", str(event_log), "--policy", "uniform", "--json",
                               "--interval", "bootstrap", "--n-bootstrap", "200", "--seed", "3",
                               "--estimators", "ips,dr", "--clip", "5", "--ridge", "auto"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [e["estimator"] for e in out["estimates"]] == ["ips", "dr"]
    assert out["seed"] == 3 and out["estimates"][0]["interval"] == "bootstrap"
    truth = 0.4  # uniform over click rates 0.2 and 0.6
    ips = out["estimates"][0]
    assert ips["low"] < truth < ips["high"]


def test_saved_bandit_state(event_log, tmp_path):
    b = Bandit(["y", "x"], seed=0)
    for _ in range(30):
        b.update("y", 1)
        b.update("x", 0)
    state = tmp_path / "bandit.json"
    state.write_text(json.dumps(b.to_dict()))
    res = runner.invoke(root, ["evaluate", str(event_log), "--state", str(state), "--seed", "0",
                               "--json", "--n-sim", "2000"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["policy"] == "bandit"
    snips = next(e for e in out["estimates"] if e["estimator"] == "snips")
    assert snips["low"] < 0.6 < snips["high"]  # it nearly always shows y (rate 0.6)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--prior", "obd"], "--prior obd needs --format obd"),
        (["--estimators", "ips,magic"], "unknown estimator 'magic'"),
        (["--policy", "bandit"], "needs --state"),
        (["--ridge", "lots"], "--ridge 'lots'"),
        (["--missing-reward", "zero"], "--missing-reward"),
    ],
)
def test_errors_exit_2_with_a_message(event_log, args, words):
    res = runner.invoke(root, ["evaluate", str(event_log), "--seed", "0", *args])
    assert res.exit_code == 2
    assert words in res.output


def test_missing_file(tmp_path):
    res = runner.invoke(root, ["evaluate", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "error:" in res.output


def test_obd(obd_dir):
    folder = obd_dir / "random" / "men"
    res = runner.invoke(root, ["evaluate", str(folder), "--format", "obd", "--policy",
                               "thompson", "--prior", "obd", "--no-learn", "--n-sim", "5000",
                               "--seed", "0", "--estimators", "ips,snips,dr"])
    assert res.exit_code == 0, res.output
    assert "10000 rounds, 34 actions, 3 position(s)" in res.output
    assert "\nips " in res.output


def test_a_live_engine_export_through_the_tsbandit_root_command(tmp_path):
    # the whole chain: an engine logs decisions, its export is evaluated by `tsbandit evaluate`
    from tsbandit.cli import app as tsbandit_app
    from tsbandit.engine import BanditSpec, Engine
    from tsbandit.policies import EpsilonGreedy
    from tsbandit.stores.memory import MemoryStore

    rates = {"a": 0.1, "b": 0.4}
    engine = Engine(MemoryStore(), seed=3)
    engine.create_bandit(BanditSpec("offers", list(rates), rule=EpsilonGreedy(0.5)))
    users = np.random.default_rng(4)
    for _ in range(1500):
        d = engine.decide("offers")
        engine.record_reward(d.decision_id, float(users.random() < rates[d.arm]))
    path = tmp_path / "events.jsonl"
    with open(path, "w") as fp:
        engine.export_events("offers", fp)
    outs = {}
    for policy in ("uniform", "thompson", "greedy"):
        res = runner.invoke(tsbandit_app, ["evaluate", str(path), "--policy", policy, "--json",
                                           "--seed", "0", "--n-sim", "500"])
        assert res.exit_code == 0, res.output
        outs[policy] = {e["estimator"]: e for e in json.loads(res.output)["estimates"]}
    ips = outs["uniform"]["ips"]
    assert ips["low"] < 0.25 < ips["high"]  # the uniform policy's value is the mean rate
    # learning policies replayed on the log find b (0.4): well above uniform
    for policy in ("thompson", "greedy"):
        assert outs[policy]["snips"]["value"] > ips["high"]
