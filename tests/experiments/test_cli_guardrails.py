"""``tsbandit abtest`` with guardrail metrics: flags and a JSON document."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from tsbandit.cli.abtest import app as abtest_app
from tsbandit.cli.abtest import parse_experiment
from tsbandit.errors import ConfigurationError

root = typer.Typer()


@root.callback()
def _root() -> None:
    """Stand-in for the tsbandit root command."""


root.add_typer(abtest_app, name="abtest")
runner = CliRunner()
GOAL = ("--arm", "A=100/2000", "--arm", "B=160/2000")


def run(*args: str):
    return runner.invoke(root, ["abtest", *args])


def flat(text: str) -> str:
    """Output without rich's box drawing and line wrapping."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def test_guardrail_blocks_the_goal_winner():
    r = run(*GOAL, "--metric", "risk:A=40/2000", "--metric", "risk:B=130/2000",
            "--guardrail", "risk:max=0.05")
    assert r.exit_code == 0, r.output
    assert "guardrails (each must hold with probability >= 0.99" in r.output
    assert "risk <= 0.05" in r.output and "FAILS" in r.output
    assert "decision: CONTINUE (no winner: 'B' meets the goal criterion" in r.output
    # the same goal without guardrails ships B
    assert "decision: STOP, ship B" in run(*GOAL).output


def test_guardrails_hold_json_and_level():
    args = (*GOAL, "--metric", "risk:B=45/2000", "--metric", "risk:A=40/2000",  # any order
            "--guardrail", "risk:max=0.05", "--guardrail", "risk:max=100%,relative_to=control")
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["decision"]["winner"] == "B" and rep["decision"]["stop"]
    checks = rep["arms"][1]["guardrails"]
    assert [c["describe"] for c in checks] == ["risk <= 0.05", "risk / risk[A] - 1 <= +100%"]
    assert all(c["holds"] for c in checks) and rep["metrics"]["risk"]["arms"][0]["n"] == 2000
    # a stricter relative bound blocks B; a lower guardrail level lets it through again
    strict = (*GOAL, "--metric", "risk:A=40/2000", "--metric", "risk:B=45/2000",
              "--guardrail", "risk:max=30%,relative_to=control")
    assert "decision: CONTINUE" in run(*strict).output
    assert "decision: STOP, ship B" in run(*strict, "--guardrail-level", "0.6").output


def test_input_document(tmp_path):
    doc = {"goal": "conversion", "metrics": {
        "conversion": {"A": {"successes": 100, "trials": 2000},
                       "B": {"successes": 160, "trials": 2000}},
        "revenue": {"A": {"n": 2000, "mean": 50.0, "sd": 20.0},
                    "B": {"n": 2000, "mean": 46.0, "sd": 20.0}}},
        "guardrails": [{"metric": "revenue", "min": -0.05, "relative_to": "control"}]}
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(doc))
    r = run("--input", str(path))
    assert r.exit_code == 0, r.output
    assert "revenue / revenue[A] - 1 >= -5%" in r.output
    assert "decision: CONTINUE (no winner" in r.output and "lower bound" in r.output
    # a guardrail flag adds to the document's; revenue is fine against an absolute floor
    doc["guardrails"] = []
    path.write_text(json.dumps(doc))
    r = run("--input", str(path), "--guardrail", "revenue:min=40", "--json")
    assert json.loads(r.output)["decision"]["winner"] == "B"


def test_errors():
    r = run(*GOAL, "--guardrail", "risk:max=0.05")
    assert r.exit_code == 2 and "no data for that metric" in flat(r.output)
    r = run(*GOAL, "--metric", "risk:A=4/2000", "--guardrail", "risk:max=0.05")
    assert r.exit_code == 2 and "give every arm once" in flat(r.output)
    r = run(*GOAL, "--metric", "risk=4/2000")
    assert r.exit_code == 2 and "malformed --metric" in flat(r.output)
    with pytest.raises(ConfigurationError, match="--control 'Z'"):
        parse_experiment(list(GOAL[1::2]), [], [], None, control="Z")
