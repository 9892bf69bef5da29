"""The ``abtest`` sub-app, mounted on a tiny root exactly as ``tsbandit.cli`` mounts it."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from tsbandit.cli.abtest import app as abtest_app
from tsbandit.cli.abtest import parse_arms
from tsbandit.errors import ConfigurationError

root = typer.Typer()


@root.callback()
def _root() -> None:
    """Stand-in for the tsbandit root command."""


root.add_typer(abtest_app, name="abtest")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(root, ["abtest", *args])


def flat(text: str) -> str:
    """Output without rich's box drawing and line wrapping."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def test_analysis_two_arms():
    r = run("--arm", "A=120/1000", "--arm", "B=150/1000")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "P(best)" in out and "0.9751" in out and "0.0249" in out
    assert "lift of B over A: +24.9%" in out
    assert "sample-ratio check: OK" in out
    assert "decision: CONTINUE" in out


def test_analysis_stops_and_json():
    r = run("--arm", "A=100/1000", "--arm", "B=160/1000")
    assert r.exit_code == 0 and "decision: STOP, ship B" in r.output
    r = run("--arm", "A=120/1000", "--arm", "B=150/1000", "--json")
    rep = json.loads(r.output)
    assert rep["arms"][1]["prob_best"] == pytest.approx(0.97507, abs=1e-5)


def test_analysis_normal_metric_and_loss_rule():
    r = run("--arm", "A=1000:50:20", "--arm", "B=1000:51:22", "--loss", "0.1")
    assert r.exit_code == 0, r.output
    assert "decision: STOP, ship B" in r.output and "expected loss" in r.output


def test_analysis_three_arms_seeded_and_srm(tmp_path):
    args = ("--arm", "A=30/1000", "--arm", "B=80/1000", "--arm", "C=33/700", "--seed", "7")
    a, b = run(*args), run(*args)
    assert a.exit_code == 0 and a.output == b.output
    assert "Monte Carlo" in a.output and "seed 7" in a.output
    assert "sample-ratio check: MISMATCH" in a.output
    c = run(*args, "--split", "10,10,7", "--out", str(tmp_path))
    assert "sample-ratio check: OK" in c.output
    assert (tmp_path / "abtest_posteriors.png").stat().st_size > 0


def test_simulate_prints_table_and_writes_files(tmp_path):
    r = run("simulate", "--rates", "0.10,0.13", "--reps", "100", "--batch", "200",
            "--seed", "1", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    for name in ("bayes_sequential", "bayes_single_look", "ztest_fixed", "ztest_peeking"):
        assert name in r.output
    assert "fixed horizon n = 1,774 per arm" in r.output
    assert "Peeking:" in r.output
    summary = json.loads((tmp_path / "abtest_simulation.json").read_text())
    assert summary["seed"] == 1 and len(summary["designs"]) == 4
    assert (tmp_path / "abtest_simulation.png").stat().st_size > 0
    again = run("simulate", "--rates", "0.10,0.13", "--reps", "100", "--batch", "200",
                "--seed", "1", "--out", str(tmp_path), "--no-plot")
    assert again.stdout.split("wrote")[0] == r.stdout.split("wrote")[0]


@pytest.mark.parametrize("args,msg", [
    ((), "give at least two"),
    (("--arm", "A=120/1000"), "at least two --arm"),
    (("--arm", "A=120-1000", "--arm", "B=1/10"), "malformed --arm 'A=120-1000'"),
    (("--arm", "A=12/10", "--arm", "B=1/10"), "arm 'A': successes == 12 exceeds trials == 10"),
    (("--arm", "A=-1/10", "--arm", "B=1/10"), "counts must be >= 0"),
    (("--arm", "A=1/10", "--arm", "B=10:1:1"), "mixed --arm forms"),
    (("--arm", "A=1/10", "--arm", "A=2/10"), "unique"),
    (("--arm", "A=1/10", "--arm", "B=2/10", "--threshold", "1.5"), "prob_best == 1.5"),
    (("--arm", "A=1/10", "--arm", "B=2/10", "--split", "1,x"), "--split"),
    (("--arm", "A=1/10", "simulate", "--rates", "0.1,0.2"), "takes its own options"),
    (("simulate", "--rates", "0.1"), "compares 2 arms"),
    (("simulate", "--rates", "0.1,abc"), "comma-separated numbers"),
    (("simulate", "--rates", "0.1,0.1"), "rates are equal"),
])
def test_input_errors_exit_2_with_a_clear_message(args, msg):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert msg in flat(r.output)


def test_parse_arms_raises_library_errors():
    with pytest.raises(ConfigurationError, match="malformed --arm"):
        parse_arms(["A=1/2/3", "B=1/2"])
    post = parse_arms(["control = 3/10 ", "treat=4.5/10"])
    assert post.names == ("control", "treat")


def test_mounted_in_the_tsbandit_root_command(tmp_path):
    from tsbandit.cli import app as tsbandit_app

    r = runner.invoke(tsbandit_app, ["abtest", "--arm", "A=120/1000", "--arm", "B=150/1000"])
    assert r.exit_code == 0, r.output
    assert "0.9751" in r.output and "decision: CONTINUE" in r.output
    r = runner.invoke(tsbandit_app, ["abtest", "simulate", "--rates", "0.1,0.13", "--reps", "50",
                                     "--seed", "0", "--out", str(tmp_path), "--no-plot"])
    assert r.exit_code == 0 and "ztest_peeking" in r.output
