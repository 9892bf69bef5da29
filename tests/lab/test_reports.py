"""Metrics, results.json, scenarios, plots and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from tsbandit.cli.lab import app
from tsbandit.errors import ConfigurationError
from tsbandit.lab import (
    BernoulliArms,
    OfferWorld,
    curve_band,
    feature_importance,
    make_policy,
    mean_ci,
    regret_decomposition,
    results_dict,
    simulate,
)
from tsbandit.lab.scenarios import SCENARIOS, run_scenario, scenario_results

POLICY_KEYS = {"final_regret_mean", "final_regret_sd", "best_arm_share", "optimal_arm_rate",
               "reward_rate", "pull_share", "regret_exploration", "regret_exploitation",
               "wall_seconds"}


def test_mean_ci_is_the_student_t_interval() -> None:
    x = np.random.default_rng(0).normal(3.0, 2.0, 25)
    m, lo, hi = mean_ci(x)
    want = sps.t.interval(0.95, 24, loc=x.mean(), scale=sps.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(want)
    curves = np.vstack([x, 2 * x])
    _mean, low, high = curve_band(curves)
    assert low[0] == pytest.approx(lo) and high[1] == pytest.approx(2 * hi - 2 * m + 2 * m)


def test_results_json_has_the_documented_keys() -> None:
    env = BernoulliArms([0.03, 0.06, 0.045])
    res = simulate(env, [make_policy(p, env) for p in ("ts", "ucb1")], 6, 400, seed=1,
                   checkpoints=[100], scenario="unit")
    out = json.loads(json.dumps(results_dict(res, checkpoints=[100])))
    assert {"scenario", "rounds", "trials", "seed", "policies"} <= set(out)
    assert out["scenario"] == "unit" and out["rounds"] == 400 and out["trials"] == 6
    assert out["seed"] == 1
    for p in out["policies"].values():
        assert POLICY_KEYS <= set(p)
        assert set(p["pull_share"]) == set(env.arm_names)
        assert sum(p["pull_share"].values()) == pytest.approx(1.0)
        assert p["regret_exploration"] + p["regret_exploitation"] == pytest.approx(
            p["final_regret_mean"])
        dec = p["regret_decomposition"]
        assert set(dec) == {"100", "400"}
        assert dec["100"]["total"] <= dec["400"]["total"]
    # best-arm share for a Bernoulli world is the share of pulls of the best arm
    run = res.policies["ts"]
    assert out["policies"]["ts"]["best_arm_share"] == pytest.approx(
        run.pulls[:, 1].sum() / run.pulls.sum())
    off_grid = next(r for r in range(1, 400) if r not in set(res.grid.tolist()))
    with pytest.raises(ConfigurationError, match="checkpoints"):
        regret_decomposition(res, "ts", [off_grid])


def test_feature_importance_recovers_the_true_signs() -> None:
    world = OfferWorld("around")
    res = simulate(world, [make_policy("linear-ts", world)], 12, 1500, seed=0,
                   decompose=False)
    rows = feature_importance(res, "linear-ts")
    assert len(rows) == 5 * 11
    by = {(r["arm"], r["feature"]): r for r in rows}
    assert all(r["low"] <= r["high"] for r in rows)
    assert all("true" in r and 0 <= r["coverage"] <= 1 for r in rows)
    # the business card's weight on has_business is learned large and positive (true 0.20),
    # and the balance transfer's on the revolving ratio (true 0.18)
    biz = by[("business_expense_card", "has_business")]
    bal = by[("balance_transfer_0apr", "revolving_balance_ratio")]
    assert biz["mean"] > 0.1 and bal["mean"] > 0.08
    assert biz["mean"] > 3 * biz["sd_over_trials"] / np.sqrt(12)


def test_every_scenario_runs_small() -> None:
    pytest.importorskip("sklearn")
    for name, sc in SCENARIOS.items():
        res = run_scenario(name, trials=2, rounds=60, seed=3)
        out = scenario_results(res)
        assert out["scenario"] == name and out["rounds"] == 60 and out["trials"] == 2
        expected = {p + suffix for p in sc.policies for suffix, _ in (sc.variants or [("", 0)])}
        assert set(out["policies"]) == expected, name
        json.dumps(out)
    with pytest.raises(ConfigurationError, match="unknown scenario"):
        run_scenario("part6")


def test_delayed_scenario_is_paired_across_delays() -> None:
    res = run_scenario("delayed", trials=3, rounds=200, seed=2)
    assert list(res.policies) == ["ts-classic", "ts", "ts-classic@delay50/batch100",
                                  "ts@delay50/batch100", "ts-classic@delay500/batch500",
                                  "ts@delay500/batch500"]


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tsbandit.lab.scenarios import scenario_plots

    res = run_scenario("tutorial-part6", trials=3, rounds=300, seed=1)
    paths = scenario_plots(res, tmp_path)
    assert {p.name for p in paths} == {"regret.png", "allocation.png", "posteriors.png",
                                       "decomposition.png"}
    assert all(p.stat().st_size > 10_000 for p in paths)
    res = run_scenario("offers", trials=2, rounds=200, seed=1,
                       policies=["linear-ts", "ts", "random"])
    names = {p.name for p in scenario_plots(res, tmp_path / "offers", fmt="svg")}
    assert "weights-linear-ts.svg" in names


def test_importing_the_lab_does_not_import_matplotlib() -> None:
    code = ("import sys, tsbandit.lab, tsbandit.cli.lab, tsbandit.lab.scenarios; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_cli_lists_and_simulates(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["scenarios"])
    assert listed.exit_code == 0
    for name in ("tutorial-part6", "offers", "changepoint", "delayed", "bakeoff-digits"):
        assert name in listed.stdout
    as_json = runner.invoke(app, ["scenarios", "--json"])
    assert {r["name"] for r in json.loads(as_json.stdout)} == set(SCENARIOS)
    res = runner.invoke(app, ["simulate", "tutorial-part6", "--policies", "ts,random",
                              "--trials", "3", "--rounds", "200", "--seed", "5",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.stdout
    assert "ts" in res.stdout and "random" in res.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["seed"] == 5 and set(data["policies"]) == {"ts", "random"}
    assert (tmp_path / "regret.png").exists()
    bad = runner.invoke(app, ["simulate", "tutorial-part6", "--policies", "tsx"])
    assert bad.exit_code == 2 and "unknown policy 'tsx'" in bad.output
    bad = runner.invoke(app, ["simulate", "nope"])
    assert bad.exit_code == 2 and "unknown scenario" in bad.output


def test_part6_thompson_beats_ucb1_with_separate_intervals() -> None:
    res = run_scenario("tutorial-part6", trials=20, rounds=2000, seed=0,
                       policies=["ts", "ucb1"])
    out = scenario_results(res)["policies"]
    assert out["ts"]["final_regret_ci95"][1] < out["ucb1"]["final_regret_ci95"][0]


def test_default_contextual_sampler_beats_greedy_on_iris() -> None:
    pytest.importorskip("sklearn")
    res = run_scenario("bakeoff-iris", trials=10, seed=0, policies=["ts", "greedy"])
    ts, greedy = res.policies["ts"].rewards, res.policies["greedy"].rewards
    _d, lo, _hi = mean_ci((ts - greedy) / res.rounds)      # paired: same permutations
    assert lo > 0


def test_root_cli_mounts_the_lab_commands(tmp_path: Path) -> None:
    """``tsbandit scenarios`` / ``tsbandit simulate`` through the installed entry point module."""
    listed = subprocess.run([sys.executable, "-m", "tsbandit", "scenarios"], capture_output=True,
                            text=True, check=True)
    assert "tutorial-part6" in listed.stdout and "bakeoff-digits" in listed.stdout
    out = tmp_path / "run"
    ran = subprocess.run([sys.executable, "-m", "tsbandit", "simulate", "changepoint",
                          "--policies", "ts,sw-ts", "--trials", "2", "--rounds", "300",
                          "--seed", "4", "--out", str(out), "--no-plots"],
                         capture_output=True, text=True, check=True)
    assert "sw-ts" in ran.stdout
    data = json.loads((out / "results.json").read_text())
    assert (data["scenario"], data["rounds"], data["trials"], data["seed"]) == (
        "changepoint", 300, 2, 4)
    assert set(data["policies"]) == {"ts", "sw-ts"}
    assert POLICY_KEYS <= set(data["policies"]["ts"])
    bad = subprocess.run([sys.executable, "-m", "tsbandit", "simulate", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr
