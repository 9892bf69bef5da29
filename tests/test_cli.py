"""The console script as a user runs it: --version, --help, the demo (over a real service) and
every mounted sub-command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from tsbandit import __version__
from tsbandit.cli import app
from tsbandit.cli.demo import DEMO_RATES, LocalService, run_demo

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tsbandit {__version__}"


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "export", "sweep", "scenarios", "simulate", "abtest",
                    "evaluate"):
        assert command in result.stdout


def test_in_process_demo_shifts_traffic_to_the_best_offer():
    result = runner.invoke(app, ["demo", "--in-process", "--rounds", "3000", "--seed", "1"])
    assert result.exit_code == 0, result.stdout
    line = next(s for s in result.stdout.splitlines() if s.startswith("Traffic to the best"))
    share = float(line.rsplit(":", 1)[1].strip().rstrip("%")) / 100
    # 5 offers: uniform play gives 20%; TS concentrates on premium_rewards_500bonus
    assert "premium_rewards_500bonus" in line and share > 0.35


@pytest.fixture
def seeded_env(monkeypatch):
    monkeypatch.setenv("TSBANDIT_SEED", "7")  # the service's decision stream, for repeatability


def test_demo_through_a_live_sqlite_service(tmp_path, seeded_env):
    """`tsbandit serve` in a subprocess on a real SQLite file; every reward applied once."""
    db = tmp_path / "demo.db"
    with LocalService(f"sqlite:///{db}") as service:
        result = run_demo(service.base_url, customers=1500, seed=3, batch=64)
        again = run_demo(service.base_url, customers=200, seed=4)  # recreated from the prior
    assert db.exists()
    assert sum(result.shown.values()) == 1500
    arms = {row["arm"]: row for row in result.stats["arms"]}
    assert set(arms) == set(DEMO_RATES)
    # exactly-once: the service's counts are the demo's counts, nothing lost or doubled
    assert sum(row["pulls"] for row in arms.values()) == 1500
    assert sum(row["rewards"] for row in arms.values()) == result.applications
    for arm, row in arms.items():
        assert row["pulls"] == result.shown[arm]
        assert row["alpha"] == 1 + row["rewards"]
        assert row["beta"] == 1 + row["pulls"] - row["rewards"]
    # with a 0.060 offer among 0.015-0.045 ones, TS must beat uniform play's 20% share
    assert result.best_share > 0.25
    assert sum(row["pulls"] for row in again.stats["arms"]) == 200
    assert result.requests == 3 + 1500 + 24


def test_demo_command_prints_the_table(tmp_path, seeded_env):
    script = Path(sys.executable).with_name("tsbandit")
    out = subprocess.run(
        [str(script), "demo", "--customers", "300", "--store", f"sqlite:///{tmp_path / 'd.db'}"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert out.returncode == 0, out.stderr
    assert "Traffic to the best offer (premium_rewards_500bonus)" in out.stdout
    for arm in DEMO_RATES:
        assert arm in out.stdout
    assert "Applications:" in out.stdout


def test_demo_reports_an_unreachable_service():
    port = LocalService().port  # a free port nobody listens on
    result = runner.invoke(app, ["demo", "--customers", "5", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "demo failed" in result.output


def test_serve_command_serves_the_tutorial_endpoints(tmp_path, seeded_env):
    with LocalService(f"sqlite:///{tmp_path / 's.db'}") as service:
        rec = httpx.get(f"{service.base_url}/recommend/cust_1").json()
        assert rec["offer"] in DEMO_RATES
        done = httpx.post(f"{service.base_url}/reward",
                          json={"customer_id": "cust_1", "arm": rec["offer"], "reward": 1})
        assert done.json()["status"] == "updated"
        stats = httpx.get(f"{service.base_url}/stats").json()
        assert stats[rec["offer"]]["alpha"] == 2.0


def test_run_demo_validates_its_arguments():
    with pytest.raises(ValueError, match="customers"):
        run_demo("http://127.0.0.1:1", customers=0)


def test_mounted_lab_commands():
    listed = runner.invoke(app, ["scenarios", "--json"])
    assert listed.exit_code == 0, listed.output
    names = {s["name"] for s in json.loads(listed.stdout)}
    assert {"tutorial-part6", "offers", "changepoint", "delayed"} <= names


def test_mounted_abtest_command():
    result = runner.invoke(app, ["abtest", "--arm", "A=120/1000", "--arm", "B=150/1000"])
    assert result.exit_code == 0, result.output
    # 120/1000 vs 150/1000: P(B > A) is about 0.975, short of the default 0.99 threshold
    assert "P(B > A) = 0.97" in result.stdout
    assert "decision: CONTINUE" in result.stdout


def test_mounted_evaluate_command_rejects_a_missing_log(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "missing.jsonl"), "--format", "jsonl"])
    assert result.exit_code == 2
    assert "missing.jsonl" in result.output


def test_console_script_and_module_entry_points():
    script = Path(sys.executable).with_name("tsbandit")
    for cmd in ([str(script), "--version"], [sys.executable, "-m", "tsbandit", "--version"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == f"tsbandit {__version__}"


def test_export_then_evaluate_with_the_exported_state(tmp_path):
    """A bandit the engine learned in a SQLite file, exported as a library Bandit and its log,
    and evaluated offline with that state: the same statistics, every event exported."""
    from tsbandit import Bandit
    from tsbandit.engine import BanditSpec, Engine
    from tsbandit.stores import open_store

    url = f"sqlite:///{tmp_path / 'ex.db'}"
    store = open_store(url)
    engine = Engine(store, seed=1)
    engine.create_bandit(BanditSpec(name="offers", arms=["a", "b", "c"]))
    rng = np.random.default_rng(0)
    rates = {"a": 0.2, "b": 0.5, "c": 0.1}
    for _ in range(300):
        d = engine.decide("offers")
        engine.record_reward(d.decision_id, int(rng.random() < rates[d.arm]))
    want = engine.stats("offers")
    store.close()

    state, log = tmp_path / "bandit.json", tmp_path / "events.jsonl"
    result = runner.invoke(app, ["export", "offers", "--store", url, "--out", str(state),
                                 "--events", str(log)])
    assert result.exit_code == 0, result.output
    bandit = Bandit.from_dict(json.loads(state.read_text()))
    got = {s.arm: s for s in bandit.posterior_summary()}
    for row in want["arms"]:
        assert got[row["arm"]].mean == pytest.approx(row["mean"], rel=1e-12)
        assert got[row["arm"]].pulls == row["pulls"]
    assert sum(s.pulls for s in got.values()) == 300
    lines = log.read_text().splitlines()
    assert len(lines) == 600  # 300 decisions + 300 rewards
    result = runner.invoke(app, ["evaluate", str(log), "--format", "jsonl", "--state", str(state)])
    assert result.exit_code == 0, result.output

    # to standard output; an unknown bandit and a bad URL are clear errors
    result = runner.invoke(app, ["export", "offers", "--store", url])
    assert result.exit_code == 0 and json.loads(result.stdout)["arms"] == ["a", "b", "c"]
    result = runner.invoke(app, ["export", "nope", "--store", url])
    assert result.exit_code == 1 and "nope" in result.output
    result = runner.invoke(app, ["export", "offers", "--store", "ftp://x"])
    assert result.exit_code == 2 and "ftp" in result.output


def test_sweep_settles_purges_and_trims(tmp_path):
    """`tsbandit sweep` on a SQLite file: expired decisions settled with the default reward,
    then (with a retention of 0) every consumed decision purged and the log trimmed."""
    import time

    from tsbandit.engine import BanditSpec, Engine
    from tsbandit.stores import open_store

    url = f"sqlite:///{tmp_path / 'sw.db'}"
    store = open_store(url)
    past = time.time() - 1000.0  # the decisions' windows ended long ago
    engine = Engine(store, seed=1, clock=lambda: past)
    engine.create_bandit(BanditSpec(name="offers", arms=["a", "b"], reward_window=10,
                                    default_reward=0))
    engine.create_bandit(BanditSpec(name="quiet", arms=["a"]))
    ds = engine.decide_batch("offers", n=7)
    engine.record_reward(ds[0].decision_id, 1)
    store.close()

    result = runner.invoke(app, ["sweep", "--store", url, "--no-purge", "--limit", "4"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:3]}
    assert rows == {"offers": ["6", "0", "0"], "quiet": ["0", "0", "0"]}
    assert "2 bandits: 6 decisions settled, 0 purged, 0 events trimmed" in result.stdout

    result = runner.invoke(app, ["sweep", "--store", url, "--bandit", "offers",
                                 "--retention", "0", "--events-maxlen", "5"])
    assert result.exit_code == 0, result.output
    # 7 consumed decisions purged; 7 decisions + 1 reward + 6 expiries = 14 events, 5 kept
    assert result.stdout.splitlines()[1].split() == ["offers", "0", "7", "9"]

    store = open_store(url)
    try:
        engine = Engine(store)
        arms = engine.stats("offers")["arms"]
        assert sum(r["pulls"] for r in arms) == 7 and sum(r["rewards"] for r in arms) == 1
        assert len(list(store.iter_events("offers"))) == 5
    finally:
        store.close()

    result = runner.invoke(app, ["sweep", "--store", url, "--bandit", "nope"])
    assert result.exit_code == 1 and "nope" in result.output
    result = runner.invoke(app, ["sweep", "--store", "bogus://x"])
    assert result.exit_code == 2


def _modules_loaded_by(code: str) -> list[str]:
    probe = (f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] == "
             "'scipy' or m.startswith(('tsbandit.lab', 'tsbandit.experiments', "
             "'tsbandit.evaluation', 'tsbandit.service'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_import_tsbandit_loads_no_scipy_and_no_extras():
    """`import tsbandit` stays light: SciPy is imported on the first interval or refit."""
    assert _modules_loaded_by("import tsbandit") == []


def test_help_imports_no_sub_command():
    """`tsbandit --help` lists the lazy sub-commands without importing them (or SciPy)."""
    code = ("from tsbandit.cli import app\ntry:\n    app(['--help'])\n"
            "except SystemExit:\n    pass")
    assert _modules_loaded_by(code) == []


def test_a_lazy_sub_command_parses_its_own_options_and_exit_codes():
    result = runner.invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0 and "Scenario name" in result.stdout
    result = runner.invoke(app, ["abtest", "--no-such-option"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["simulate", "no-such-scenario"])
    assert result.exit_code != 0 and "unknown scenario" in result.output


def test_the_lazy_one_line_helps_are_the_commands_own():
    from tsbandit.cli import _LAZY, _load_command

    for name, (_, _, short) in _LAZY.items():
        real = _load_command(name)
        assert " ".join((real.help or "").split()).startswith(" ".join(short.split())), name


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["export"], ["sweep"], ["simulate"],
                                     ["scenarios"], ["abtest"], ["abtest", "simulate"],
                                     ["evaluate"]])
def test_a_sub_command_help_imports_no_library_layer(command):
    """`tsbandit CMD --help` imports CMD's module of tsbandit.cli only: the service, lab, A/B
    and OPE packages (and SciPy) are imported when the command runs."""
    code = (f"from tsbandit.cli import app\ntry:\n    app({[*command, '--help']!r})\n"
            "except SystemExit:\n    pass")
    assert _modules_loaded_by(code) == []
