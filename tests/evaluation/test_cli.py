"""``tsbandit evaluate``, mounted on a root app the way src/tsbandit/cli/__init__.py mounts it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from tsbandit import Bandit
from tsbandit.cli.evaluate import app as evaluate_app

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


# ----- what users have: CSV tables, OBD folders, policy files, other models -------------------
@pytest.fixture
def table_log(tmp_path):
    """A CSV log with named columns: 2 arms, clicks at 0.2 / 0.6, uniform logging."""
    rng = np.random.default_rng(5)
    lines = ["user_age,user_score,arm,clicked,pscore"]
    for _ in range(600):
        arm = ["x", "y"][int(rng.integers(0, 2))]
        r = int(rng.random() < (0.2 if arm == "x" else 0.6))
        lines.append(f"{rng.normal():.4f},{rng.random():.4f},{arm},{r},0.5")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


TABLE = ["--action-col", "arm", "--reward-col", "clicked", "--propensity-col", "pscore",
         "--context-cols", "user_*"]


def test_a_csv_log_is_read_without_being_told_its_format(table_log, tmp_path):
    np.save(tmp_path / "pi.npy", np.tile([0.0, 1.0], (600, 1)))  # always y
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--policy-file",
                               str(tmp_path / "pi.npy"), "--seed", "0", "--json",
                               "--estimators", "ips,snips,dr,sndr"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["format"] == "csv" and out["policy"] == "file"
    assert out["log"]["n_rounds"] == 600 and out["log"]["n_features"] == 2
    rows = [line.split(",") for line in table_log.read_text().split()[1:]]
    y_rate = np.mean([float(r[3]) for r in rows if r[2] == "y"])
    est = {e["estimator"]: e for e in out["estimates"]}
    assert est["snips"]["value"] == pytest.approx(y_rate, rel=1e-12)  # the y rows' mean
    for e in est.values():
        assert e["low"] < y_rate < e["high"], e


def test_a_csv_given_as_jsonl_gets_a_hint_not_line_1_not_json(table_log):
    res = runner.invoke(root, ["evaluate", str(table_log), "--format", "jsonl"])
    assert res.exit_code == 2
    assert "looks like CSV: use --format csv" in res.output and "Traceback" not in res.output


def test_csv_column_errors_exit_2(table_log):
    res = runner.invoke(root, ["evaluate", str(table_log), "--seed", "0"])
    assert res.exit_code == 2
    assert "no action column 'action'" in res.output and "--action-col" in res.output


def test_policy_file_errors_exit_2(table_log, tmp_path):
    np.save(tmp_path / "short.npy", np.tile([0.5, 0.5], (10, 1)))
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--policy-file",
                               str(tmp_path / "short.npy")])
    assert res.exit_code == 2 and "10 rows for a log of 600 rounds" in res.output
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--policy", "file"])
    assert res.exit_code == 2 and "--policy file needs --policy-file" in res.output
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--policy", "uniform",
                               "--policy-file", str(tmp_path / "short.npy")])
    assert res.exit_code == 2 and "give one target policy" in res.output
    (tmp_path / "state.json").write_text("{}")
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--state",
                               str(tmp_path / "state.json"), "--policy-file",
                               str(tmp_path / "short.npy")])
    assert res.exit_code == 2 and "give one target policy" in res.output


def test_sndr_switch_dr_and_a_scikit_learn_reward_model(table_log):
    pytest.importorskip("sklearn")
    args = ["evaluate", str(table_log), *TABLE, "--policy", "uniform", "--seed", "2", "--json",
            "--estimators", "dm,dr,sndr,switch-dr", "--reward-model", "random-forest",
            "--folds", "3", "--tau", "1.5"]
    res = runner.invoke(root, args)
    assert res.exit_code == 0, res.output
    est = {e["estimator"]: e for e in json.loads(res.output)["estimates"]}
    rows = [line.split(",") for line in table_log.read_text().split()[1:]]
    in_sample = np.mean([np.mean([float(r[3]) for r in rows if r[2] == a]) for a in "xy"])
    for e in est.values():
        assert e["low"] < in_sample < e["high"], e  # uniform over the two arms' rates
    assert runner.invoke(root, args).output == res.output  # seeded forest: same numbers
    inf = runner.invoke(root, [*args[:-2], "--reward-model", "ridge"])
    assert "switch-dr with --tau inf is DR" in inf.output


def test_reward_model_errors_exit_2(table_log, monkeypatch):
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--reward-model", "magic"])
    assert res.exit_code == 2 and "reward model 'magic'" in res.output
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--estimators", "dr",
                               "--reward-model", "logistic", "--reward-col", "user_score"])
    assert res.exit_code == 2 and "needs 0/1 rewards" in res.output
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--reward-model",
                               "gradient-boosting"])
    assert res.exit_code == 2 and "pip install 'tsbandit[sklearn]'" in res.output


@pytest.mark.parametrize(
    ("value", "ok"), [("none", True), ("0,1", True), ("auto", True), ("1,0", False),
                      ("wide", False)])
def test_reward_range_option(table_log, value, ok):
    res = runner.invoke(root, ["evaluate", str(table_log), *TABLE, "--policy", "uniform",
                               "--reward-range", value, "--estimators", "ips", "--seed", "0"])
    assert (res.exit_code == 0) == ok, res.output
    if not ok:
        assert res.exit_code == 2 and "error:" in res.output


def test_obd_root_needs_a_campaign_then_finds_log_and_prior(obd_dir):
    res = runner.invoke(root, ["evaluate", str(obd_dir), "--prior", "obd"])
    assert res.exit_code == 2 and "--campaign random/all" in res.output
    base = ["--policy", "thompson", "--prior", "obd", "--no-learn", "--n-sim", "2000",
            "--seed", "0", "--estimators", "ips", "--json"]
    outs = [runner.invoke(root, ["evaluate", *where, *base])
            for where in ([str(obd_dir), "--campaign", "random/men"],
                          [str(obd_dir / "random"), "--campaign", "men"],
                          [str(obd_dir / "random" / "men" / "men.csv")])]
    for res in outs:
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["format"] == "obd"
    values = [json.loads(r.output)["estimates"][0]["value"] for r in outs]
    assert values[0] == values[1] == values[2]
    res = runner.invoke(root, ["evaluate", str(obd_dir / "random"), "--campaign", "bts/men"])
    assert res.exit_code == 2 and "'random' folder" in res.output


def test_obd_csv_elsewhere_takes_prior_file_and_campaign(obd_dir, tmp_path):
    import shutil

    copy = tmp_path / "clicks.csv"
    shutil.copy(obd_dir / "random" / "men" / "men.csv", copy)
    shutil.copy(obd_dir / "random" / "men" / "item_context.csv", tmp_path)
    base = ["evaluate", str(copy), "--policy", "thompson", "--no-learn", "--n-sim", "2000",
            "--seed", "0", "--estimators", "ips", "--json"]
    res = runner.invoke(root, [*base, "--prior", "obd"])
    assert res.exit_code == 2 and "give it with --prior-file" in res.output
    prior = str(obd_dir / "bts_prior" / "prior_bts.yaml")
    res = runner.invoke(root, [*base, "--prior-file", prior])
    assert res.exit_code == 2 and "pass --campaign" in res.output
    res = runner.invoke(root, [*base, "--prior-file", prior, "--campaign", "all"])
    assert res.exit_code == 2 and "80 items, the log 34 actions" in res.output
    res = runner.invoke(root, [*base, "--prior-file", prior, "--campaign", "men"])
    assert res.exit_code == 0, res.output
    direct = runner.invoke(root, ["evaluate", str(obd_dir / "random" / "men"),
                                  *base[2:], "--prior", "obd"])
    assert json.loads(res.output)["estimates"] == json.loads(direct.output)["estimates"]


def test_a_parquet_log_gives_the_csv_numbers(table_log, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (optional: [parquet])")
    import pyarrow.parquet as pq

    header, *rows = (line.split(",") for line in table_log.read_text().split())
    cols = list(zip(*rows, strict=True))
    pq.write_table(pa.table({h: [float(v) for v in c] if h != "arm" else list(c)
                             for h, c in zip(header, cols, strict=True)}),
                   tmp_path / "log.parquet")
    args = [*TABLE, "--policy", "uniform", "--seed", "0", "--json", "--estimators", "ips,dr"]
    outs = [json.loads(runner.invoke(root, ["evaluate", str(p), *args]).output)
            for p in (table_log, tmp_path / "log.parquet")]
    assert outs[1]["format"] == "parquet"
    assert outs[0]["estimates"] == outs[1]["estimates"]
