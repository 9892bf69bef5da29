"""``tsbandit evaluate``: off-policy evaluation of a policy on a logged file (Typer sub-app).

Mount it in the root CLI with ``app.add_typer(evaluate_app, name="evaluate")``; the group's
callback runs when no subcommand is given (``invoke_without_command=True``)::

    tsbandit evaluate events.jsonl --format jsonl --policy thompson
    tsbandit evaluate ../shared/data/obd/random/all/all.csv --format obd --policy thompson \\
        --prior obd --no-learn
    tsbandit evaluate events.jsonl --state bandit.json        # a saved Bandit.to_dict()

It prints a table of estimates, intervals, effective sample sizes and event counts (``--json``
for machines). Heavy imports happen inside the command.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .data import LoggedData
    from .report import EvaluationReport
    from .targets import TargetPolicy

__all__ = ["app", "evaluate"]

app = typer.Typer(
    help="Off-policy evaluation: estimate how a policy would have done on logged decisions.",
    add_completion=False,
    no_args_is_help=True,
    # a group parses options only before its arguments unless told otherwise; this lets
    # ``tsbandit evaluate LOG --format obd`` work (the sub-app has no subcommands).
    context_settings={"allow_interspersed_args": True},
)


class LogFormat(str, Enum):
    """Log file formats."""

    jsonl = "jsonl"
    obd = "obd"


class PolicyName(str, Enum):
    """Target policies."""

    uniform = "uniform"
    thompson = "thompson"
    greedy = "greedy"
    bandit = "bandit"


class Interval(str, Enum):
    """Interval kinds."""

    normal = "normal"
    bootstrap = "bootstrap"


def _obd_csv(path: Path) -> Path:
    if path.is_dir():
        return path / f"{path.name}.csv"
    return path


@app.callback(invoke_without_command=True)
def evaluate(
    log: Annotated[Path, typer.Argument(
        help="Event log (JSON Lines), or an Open Bandit Dataset CSV file or its folder.")],
    fmt: Annotated[LogFormat, typer.Option("--format", help="Log format.")] = LogFormat.jsonl,
    policy: Annotated[PolicyName | None, typer.Option(
        help="Target policy [default: bandit with --state, else thompson].")] = None,
    state: Annotated[Path | None, typer.Option(
        help="A saved bandit (Bandit.to_dict() JSON) to evaluate; arms matched by name.")] = None,
    prior: Annotated[str, typer.Option(
        help="Beta prior of thompson/greedy: 'uniform' (Beta(1,1)) or 'obd' (the production "
             "BTS priors of the OBD campaign).")] = "uniform",
    learn: Annotated[bool, typer.Option(
        help="Replay the policy learning from the log in time order (batches).")] = True,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Rounds per learning batch [default: n/20].")] = None,
    n_sim: Annotated[int, typer.Option(
        min=1, help="Monte-Carlo draws per action distribution.")] = 10_000,
    estimators: Annotated[str, typer.Option(
        help="Comma-separated estimators.")] = "replay,ips,snips,dm,dr",
    clip: Annotated[float | None, typer.Option(
        help="Cap on importance weights (IPS, SNIPS, DR).")] = None,
    ridge: Annotated[str, typer.Option(
        help="Shrinkage of the DM/DR reward model in pseudo-rounds, or 'auto'.")] = "1",
    interval: Annotated[Interval, typer.Option(help="Interval kind.")] = Interval.normal,
    n_bootstrap: Annotated[int, typer.Option(min=2, help="Bootstrap resamples.")] = 1000,
    level: Annotated[float, typer.Option(help="Interval coverage.")] = 0.95,
    seed: Annotated[int | None, typer.Option(
        help="Seed (default: fresh entropy, printed so the run can be repeated).")] = None,
    bandit: Annotated[str | None, typer.Option(
        help="JSONL: the bandit to evaluate when the log holds several.")] = None,
    arms: Annotated[str | None, typer.Option(
        help="JSONL: comma-separated action set, in order [default: arms seen].")] = None,
    missing_reward: Annotated[str, typer.Option(
        help="JSONL: 'drop' decisions without a reward, or a number to give them.")] = "drop",
    context: Annotated[str, typer.Option(
        help="OBD: context features none|user|affinity|user+affinity.")] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
) -> None:
    """Estimate a target policy's expected reward per round from a log."""
    import numpy as np

    from ..errors import TsbanditError

    entropy = seed if seed is not None else int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    try:
        report = _run(log, fmt, policy, state, prior, learn, batch_size, n_sim, estimators,
                      clip, ridge, interval.value, n_bootstrap, level, entropy, bandit, arms,
                      missing_reward, context)
    except (TsbanditError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "seed": entropy}, indent=2))
        return
    d = report.log
    typer.echo(f"log: {log} ({fmt.value}) - {d['n_rounds']} rounds, {d['n_actions']} actions, "
               f"{d['n_positions']} position(s), mean reward {d['reward_mean']:.5g}, "
               f"propensities in [{d['propensity_min']:.3g}, {d['propensity_max']:.3g}]")
    typer.echo(f"target policy: {report.policy}; seed: {entropy}")
    typer.echo(report.table())


def _run(log: Path, fmt: LogFormat, policy: PolicyName | None, state: Path | None, prior: str,
         learn: bool, batch_size: int | None, n_sim: int, estimators: str, clip: float | None,
         ridge: str, interval: str, n_bootstrap: int, level: float, seed: int,
         bandit: str | None, arms: str | None, missing_reward: str, context: str,
         ) -> EvaluationReport:
    import numpy as np

    from ..errors import ConfigurationError
    from .jsonl import load_event_log
    from .obd import load_obd_csv, load_obd_prior
    from .report import evaluate as run_evaluation
    from .report import make_estimators
    from .reward_model import RidgeRewardModel
    from .targets import UniformPolicy, bandit_policy, greedy_policy, thompson_policy

    csv_path = _obd_csv(log)
    data: LoggedData
    if fmt == LogFormat.obd:
        data = load_obd_csv(csv_path, context=context)
    else:
        fill: str | float = missing_reward
        if missing_reward != "drop":
            try:
                fill = float(missing_reward)
            except ValueError:
                raise ConfigurationError(
                    f"--missing-reward {missing_reward!r}: 'drop' or a number") from None
        arm_list = [a.strip() for a in arms.split(",")] if arms else None
        data = load_event_log(log, bandit=bandit, arms=arm_list, missing_reward=fill)
    name = policy.value if policy is not None else ("bandit" if state else "thompson")
    alpha: object = 1.0
    beta: object = 1.0
    if prior == "obd":
        if fmt != LogFormat.obd:
            raise ConfigurationError("--prior obd needs --format obd")
        alpha, beta = load_obd_prior(csv_path.parents[2], csv_path.parent.name)
    elif prior != "uniform":
        raise ConfigurationError(f"--prior {prior!r}: 'uniform' or 'obd'")
    target: TargetPolicy
    if name == "uniform":
        target = UniformPolicy()
    elif name == "thompson":
        target = thompson_policy(alpha, beta, learn=learn, batch_size=batch_size, n_sim=n_sim)
    elif name == "greedy":
        target = greedy_policy(alpha, beta, learn=learn, batch_size=batch_size)
    else:
        if state is None:
            raise ConfigurationError("--policy bandit needs --state FILE (Bandit.to_dict() JSON)")
        target = bandit_policy(state, data, learn=learn, batch_size=batch_size, n_sim=n_sim)
    lam: float | str = ridge if ridge == "auto" else _number("--ridge", ridge)
    ests = make_estimators([e.strip() for e in estimators.split(",") if e.strip()], clip=clip,
                           model=RidgeRewardModel(ridge=lam))
    return run_evaluation(data, target, estimators=ests, interval=interval, level=level,
                          n_bootstrap=n_bootstrap, rng=np.random.default_rng(seed))


def _number(option: str, text: str) -> float:
    from ..errors import ConfigurationError

    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"{option} {text!r} is not a number") from None
