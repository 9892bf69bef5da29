"""``tsbandit scenarios`` and ``tsbandit simulate``: the lab from the command line.

The root command mounts the two functions at the top level; ``app`` groups them for tests and
for embedding (``tsbandit.cli.lab.app``). The lab (NumPy-heavy, matplotlib for the plots) and
Rich are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import fail

__all__ = ["app", "scenarios", "simulate"]

app = typer.Typer(help="Simulation lab: compare bandit strategies on simulated worlds.",
                  add_completion=False, no_args_is_help=True)


@app.command("scenarios")
def scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the named scenarios, their defaults and the policies they accept."""
    from ..lab.policies import POLICY_HELP
    from ..lab.scenarios import SCENARIOS

    if as_json:
        rows = []
        for sc in SCENARIOS.values():
            try:
                rows.append(sc.describe())
            except ImportError as exc:
                rows.append({"name": sc.name, "title": sc.title, "unavailable": str(exc)})
        typer.echo(json.dumps(rows, indent=2))
        return
    for sc in SCENARIOS.values():
        rounds = sc.rounds if sc.rounds is not None else "data stream"
        typer.echo(f"{sc.name:24s} {sc.trials:>4d} trials x {rounds} rounds; "
              f"policies {','.join(sc.policies)}")
        typer.echo(f"{'':24s} {sc.title}")
    typer.echo("\npolicies (context-free worlds):")
    for k, v in POLICY_HELP["context-free"].items():
        typer.echo(f"  {k:20s} {v}")
    typer.echo("policies (contextual worlds):")
    for k, v in POLICY_HELP["contextual"].items():
        typer.echo(f"  {k:20s} {v}")


def _table(summary: dict[str, Any]) -> str:
    head = (f"{'policy':26s} {'regret mean':>11s} {'sd':>7s} {'95% CI':>17s} {'best arm':>8s} "
            f"{'optimal':>8s} {'reward':>8s} {'explore':>8s} {'exploit':>8s} {'sec':>6s}")
    lines = [head, "-" * len(head)]
    for name, p in summary["policies"].items():
        lo, hi = p["final_regret_ci95"]
        lines.append(
            f"{name:26s} {p['final_regret_mean']:11.2f} {p['final_regret_sd']:7.2f} "
            f"{f'[{lo:.1f}, {hi:.1f}]':>17s} {p['best_arm_share']:8.1%} "
            f"{p['optimal_arm_rate']:8.1%} {p['reward_rate']:8.4f} "
            f"{p['regret_exploration']:8.2f} {p['regret_exploitation']:8.2f} "
            f"{p['wall_seconds']:6.2f}")
    lines.append(f"oracle reward rate {summary['oracle_reward_rate']:.4f}, uniform random "
                 f"{summary['uniform_reward_rate']:.4f}; {summary['trials']} trials x "
                 f"{summary['rounds']} rounds, seed {summary['seed']}")
    return "\n".join(lines)


def _value_table(summary: dict[str, Any]) -> str:
    """Several signals per decision (``offers-value``): revenue per offer as a share of the
    constrained oracle's (all decisions, and feasible decisions only), the infeasible share and
    the regret, mean over trials."""
    head = (f"{'policy':18s} {'revenue/oracle':>14s} {'sd':>6s} {'feasible only':>13s} "
            f"{'infeasible':>10s} "
            f"{'max trial':>9s} {'regret':>9s} {'oracle arm':>10s} {'sec':>6s}")
    lines = [head, "-" * len(head)]
    for name, p in summary["policies"].items():
        lines.append(
            f"{name:18s} {p['revenue_share']:14.1%} {p['revenue_share_sd']:6.1%} "
            f"{p['feasible_revenue_share']:13.1%} {p['infeasible_share']:10.1%} "
            f"{max(p['per_trial']['infeasible_share']):9.1%} "
            f"{p['regret']:9.0f} {p['optimal_rate']:10.1%} {p['wall_seconds']:6.2f}")
    lines.append(f"constrained oracle revenue per offer {summary['oracle_revenue_per_offer']:.2f}"
                 f"; risk limit {summary['environment'].get('risk_limit')}; "
                 f"{summary['trials']} trials x {summary['rounds']} rounds, seed "
                 f"{summary['seed']}")
    return "\n".join(lines)


@app.command("simulate")
def simulate(
    scenario: Annotated[str, typer.Argument(help="Scenario name (see `tsbandit scenarios`).")],
    policies: Annotated[str | None, typer.Option(
        "--policies", help="Comma-separated policy names (default: the scenario's).")] = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1,
                                               help="Independent trials.")] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", min=1,
                                               help="Rounds per trial.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the whole run.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Directory for results.json and the plots.")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots",
                                        help="Write PNG plots to --out.")] = True,
) -> None:
    """Run a scenario: print a table, write DIR/results.json and the plots."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..errors import TsbanditError
    from ..lab.scenarios import run_scenario, scenario_plots, scenario_results

    names = [p.strip() for p in policies.split(",") if p.strip()] if policies else None
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} rounds"),
                      TimeRemainingColumn(), transient=True,
                      disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task(scenario, total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_scenario(scenario, names, trials, rounds, seed, progress=progress)
    except (TsbanditError, ImportError) as exc:
        fail(exc, 2)
    summary = scenario_results(result)
    typer.echo(f"{scenario}: {summary.get('title', '')}")
    typer.echo(_value_table(summary) if summary.get("kind") == "metrics" else _table(summary))
    if summary.get("tutorial"):
        typer.echo(f"tutorial prints: {summary['tutorial']}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(summary, indent=1))
        written = [out / "results.json"]
        if plots:
            try:
                written += scenario_plots(result, out)
            except ImportError as exc:
                typer.secho(f"no plots: {exc}", fg=typer.colors.YELLOW, err=True)
        typer.echo("wrote " + ", ".join(str(p) for p in written))
