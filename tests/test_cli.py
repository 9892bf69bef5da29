"""The console script: --version, --help and the demo, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tsbandit import __version__
from tsbandit.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tsbandit {__version__}"


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.stdout


def test_demo_shifts_traffic_to_the_best_offer():
    result = runner.invoke(app, ["demo", "--rounds", "3000", "--seed", "1"])
    assert result.exit_code == 0, result.stdout
    line = next(s for s in result.stdout.splitlines() if s.startswith("Traffic to the best"))
    share = float(line.rsplit(":", 1)[1].strip().rstrip("%")) / 100
    # 5 offers: uniform play gives 20%; TS concentrates on premium_rewards_500bonus
    assert "premium_rewards_500bonus" in line and share > 0.35


def test_console_script_and_module_entry_points():
    script = Path(sys.executable).with_name("tsbandit")
    for cmd in ([str(script), "--version"], [sys.executable, "-m", "tsbandit", "--version"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == f"tsbandit {__version__}"
