"""``tsbandit evaluate``: off-policy evaluation of a policy on a logged file (Typer sub-app).

The root command mounts ``app`` as ``evaluate``; the group's callback runs when no subcommand
is given (``invoke_without_command=True``)::

    tsbandit evaluate events.jsonl --format jsonl --policy thompson
    tsbandit evaluate ../shared/data/obd/random/all/all.csv --format obd --policy thompson \\
        --prior obd --no-learn
    tsbandit evaluate events.jsonl --state bandit.json        # a saved Bandit.to_dict()

It prints a table of estimates, intervals, effective sample sizes and event counts (``--json``
for machines). A JSON Lines log of a bandit with several metrics (reward events naming a
``metric``) gets one table for the objective (``--objective revenue=1``, or the saved bandit's
with ``--state``) and one per metric (``--given revenue=apply`` for a conditional metric, or
the saved bandit's declaration); see :mod:`tsbandit.evaluation.metric_log`.
:mod:`tsbandit.evaluation` and NumPy are imported inside the command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._options import fail, number, sub_app

if TYPE_CHECKING:
    from ..evaluation.data import LoggedData
    from ..evaluation.metric_log import MetricLog
    from ..evaluation.metric_report import MetricEvaluation
    from ..evaluation.report import EvaluationReport
    from ..evaluation.targets import TargetPolicy

__all__ = ["app", "evaluate"]

app = sub_app(
    "Off-policy evaluation: estimate how a policy would have done on logged decisions.",
    no_args_is_help=True,
    # a group parses options only before its arguments unless told otherwise; this lets
    # ``tsbandit evaluate LOG --format obd`` work (the sub-app has no subcommands).
    context_settings={"allow_interspersed_args": True},
)


class LogFormat(str, Enum):
    """Log file formats."""

    auto = "auto"
    jsonl = "jsonl"
    obd = "obd"
    csv = "csv"
    parquet = "parquet"


class PolicyName(str, Enum):
    """Target policies."""

    uniform = "uniform"
    thompson = "thompson"
    greedy = "greedy"
    bandit = "bandit"
    file = "file"


class Interval(str, Enum):
    """Interval kinds."""

    normal = "normal"
    bootstrap = "bootstrap"


@dataclass(frozen=True)
class Options:
    """Every option of the command, as parsed (``_run`` reads them)."""

    log: Path
    fmt: LogFormat
    policy: PolicyName | None
    policy_file: Path | None
    state: Path | None
    prior: str
    prior_file: Path | None
    campaign: str | None
    learn: bool
    batch_size: int | None
    n_sim: int
    estimators: str
    clip: float | None
    ridge: str
    reward_model: str
    folds: int
    tau: float
    interval: str
    n_bootstrap: int
    level: float
    reward_range: str
    seed: int
    bandit: str | None
    arms: str | None
    missing_reward: str
    context: str
    action_col: str
    reward_col: str
    propensity_col: str
    context_cols: str | None
    position_col: str | None
    objective: list[str] | None = None
    given: list[str] | None = None
    missing_conditional: str = "impute"


@app.callback(invoke_without_command=True)
def evaluate(
    log: Annotated[Path, typer.Argument(
        help="Event log (JSON Lines), CSV/Parquet table, or an Open Bandit Dataset CSV or "
             "folder.")],
    fmt: Annotated[LogFormat, typer.Option(
        "--format", help="Log format [auto: a folder or a CSV with OBD columns is obd, other "
                         ".csv is csv, .parquet/.pq parquet, anything else jsonl].")
    ] = LogFormat.auto,
    policy: Annotated[PolicyName | None, typer.Option(
        help="Target policy [default: file with --policy-file, bandit with --state, else "
             "thompson].")] = None,
    policy_file: Annotated[Path | None, typer.Option(
        help="Per-round target action probabilities: .npy/.npz (n_rounds, n_actions[, "
             "n_positions]) or JSON Lines (one list per round), in the log's row order.")
    ] = None,
    state: Annotated[Path | None, typer.Option(
        help="A saved bandit (Bandit.to_dict() JSON) to evaluate; arms matched by name.")] = None,
    prior: Annotated[str, typer.Option(
        help="Beta prior of thompson/greedy: 'uniform' (Beta(1,1)) or 'obd' (the production "
             "BTS priors of the OBD campaign).")] = "uniform",
    prior_file: Annotated[Path | None, typer.Option(
        help="OBD: the prior_bts.yaml to read for --prior obd [default: bts_prior/"
             "prior_bts.yaml in the nearest folder above the log].")] = None,
    campaign: Annotated[str | None, typer.Option(
        help="OBD: the campaign all|men|women (of the prior; and of the log when LOG is a "
             "behaviour folder), or BEHAVIOR/CAMPAIGN (e.g. random/all) when LOG is the "
             "dataset root.")] = None,
    learn: Annotated[bool, typer.Option(
        help="Replay the policy learning from the log in time order (batches).")] = True,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Rounds per learning batch [default: n/20].")] = None,
    n_sim: Annotated[int, typer.Option(
        min=1, help="Monte-Carlo draws per action distribution.")] = 10_000,
    estimators: Annotated[str, typer.Option(
        help="Comma-separated estimators: replay, ips, snips, dm, dr, sndr, switch-dr.")
    ] = "replay,ips,snips,dm,dr",
    clip: Annotated[float | None, typer.Option(
        help="Cap on importance weights (IPS, SNIPS, DR, SNDR, Switch-DR).")] = None,
    ridge: Annotated[str, typer.Option(
        help="Shrinkage of the ridge reward model in pseudo-rounds, or 'auto'.")] = "1",
    reward_model: Annotated[str, typer.Option(
        help="Reward model of DM and the DR family: ridge (tsbandit's, no extra needed), "
             "logistic, random-forest, gradient-boosting (scikit-learn, cross-fitted).")
    ] = "ridge",
    folds: Annotated[int, typer.Option(
        min=1, help="Cross-fitting folds of the reward model (DR family; DM with a "
                    "scikit-learn model).")] = 5,
    tau: Annotated[float, typer.Option(
        help="Switch-DR: rounds with an importance weight above tau use the model alone "
             "[inf: Switch-DR is DR].")] = float("inf"),
    interval: Annotated[Interval, typer.Option(help="Interval kind.")] = Interval.normal,
    n_bootstrap: Annotated[int, typer.Option(min=2, help="Bootstrap resamples.")] = 1000,
    level: Annotated[float, typer.Option(help="Interval coverage.")] = 0.95,
    reward_range: Annotated[str, typer.Option(
        help="Intervals are cut to this range: 'auto' ([0,1] for 0/1 rewards, else the "
             "logged min,max), 'LOW,HIGH', or 'none'.")] = "auto",
    seed: Annotated[int | None, typer.Option(
        help="Seed (default: fresh entropy, printed so the run can be repeated).")] = None,
    bandit: Annotated[str | None, typer.Option(
        help="JSONL: the bandit to evaluate when the log holds several.")] = None,
    arms: Annotated[str | None, typer.Option(
        help="JSONL/CSV/Parquet: comma-separated action set, in order [default: arms seen].")
    ] = None,
    missing_reward: Annotated[str, typer.Option(
        help="JSONL: 'drop' decisions without a reward, or a number to give them.")] = "drop",
    context: Annotated[str, typer.Option(
        help="OBD: context features none|user|affinity|user+affinity.")] = "none",
    action_col: Annotated[str, typer.Option(help="CSV/Parquet: action column.")] = "action",
    reward_col: Annotated[str, typer.Option(help="CSV/Parquet: reward column.")] = "reward",
    propensity_col: Annotated[str, typer.Option(
        help="CSV/Parquet: logging propensity column.")] = "propensity",
    context_cols: Annotated[str | None, typer.Option(
        help="CSV/Parquet: context columns 'a,b,c', or a prefix 'x_*'.")] = None,
    position_col: Annotated[str | None, typer.Option(
        help="CSV/Parquet: slot column of a slate log.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
    objective: Annotated[list[str] | None, typer.Option(
        "--objective", help="JSONL with several metrics: METRIC=WEIGHT (repeat, or comma-"
        "separated) of the objective [default: the --state bandit's, else 1 on the first "
        "metric logged].")] = None,
    given: Annotated[list[str] | None, typer.Option(
        "--given", help="JSONL with several metrics: METRIC=BINARY_METRIC, a metric observed "
        "only when BINARY_METRIC was 1; its value per decision is 0 otherwise [default: the "
        "--state bandit's].")] = None,
    missing_conditional: Annotated[str, typer.Option(
        help="JSONL with several metrics: a conditional reward missing where its given metric "
        "was 1: 'impute' (the arm's mean observed value) or 'drop'.")] = "impute",
) -> None:
    """Estimate a target policy's expected reward per round from a log."""
    import numpy as np

    from ..errors import TsbanditError

    entropy = seed if seed is not None else int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    opts = Options(log, fmt, policy, policy_file, state, prior, prior_file, campaign, learn,
                   batch_size, n_sim, estimators, clip, ridge, reward_model, folds, tau,
                   interval.value, n_bootstrap, level, reward_range, entropy, bandit, arms,
                   missing_reward, context, action_col, reward_col, propensity_col,
                   context_cols, position_col, objective, given, missing_conditional)
    try:
        kind, report = _run(opts)
    except (TsbanditError, OSError) as exc:
        fail(exc, 2)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "format": kind, "seed": entropy}, indent=2))
        return
    from ..evaluation.metric_report import MetricEvaluation

    if isinstance(report, MetricEvaluation):
        d = report.objective.log
        described = ", ".join(m + (f" (given {g})" if g else "")
                              for m, g in report.given.items())
        typer.echo(f"log: {log} ({kind}) - {report.counts['n_decisions']} decisions, "
                   f"{d['n_actions']} actions, metrics {described}")
        typer.echo(f"target policy: {report.policy}; seed: {entropy}")
        typer.echo(report.table())
        return
    d = report.log
    typer.echo(f"log: {log} ({kind}) - {d['n_rounds']} rounds, {d['n_actions']} actions, "
               f"{d['n_positions']} position(s), mean reward {d['reward_mean']:.5g}, "
               f"propensities in [{d['propensity_min']:.3g}, {d['propensity_max']:.3g}]")
    typer.echo(f"target policy: {report.policy}; seed: {entropy}")
    typer.echo(report.table())


_OBD_COLUMNS = ("item_id", "position", "click", "propensity_score")


def _detect(log: Path) -> LogFormat:
    """The format ``--format auto`` picks for ``log``."""
    from ..evaluation.tabular import PARQUET_SUFFIXES, table_columns

    if log.is_dir():
        return LogFormat.obd
    suffix = log.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return LogFormat.parquet
    if suffix in (".csv", ".tsv"):
        columns = table_columns(log)
        return LogFormat.obd if all(c in columns for c in _OBD_COLUMNS) else LogFormat.csv
    return LogFormat.jsonl


def _load_jsonl(opts: Options) -> LoggedData | MetricLog:
    from ..errors import ConfigurationError
    from ..evaluation.data import InvalidLogError
    from ..evaluation.jsonl import load_event_log
    from ..evaluation.metric_log import load_metric_log, log_metrics

    fill: str | float = opts.missing_reward
    if opts.missing_reward != "drop":
        fill = number("--missing-reward", opts.missing_reward,
                       "'drop' or a number")
    arm_list = [a.strip() for a in opts.arms.split(",")] if opts.arms else None
    try:
        if not log_metrics(opts.log, opts.bandit):
            if opts.objective or opts.given:
                raise ConfigurationError("--objective and --given are for a log with several "
                                         "metrics (reward events naming a 'metric')")
            return load_event_log(opts.log, bandit=opts.bandit, arms=arm_list,
                                  missing_reward=fill)
        given, weights, order = _metric_config(opts)
        return load_metric_log(opts.log, bandit=opts.bandit, arms=arm_list, missing_reward=fill,
                               given=given, objective=weights, metrics=order,
                               missing_conditional=opts.missing_conditional)
    except InvalidLogError as exc:
        if str(exc).startswith("line 1: not JSON") and _looks_like_csv(opts.log):
            raise ConfigurationError(
                f"{opts.log} is not JSON Lines, it looks like CSV: use --format csv (name the "
                "columns with --action-col, --reward-col, --propensity-col, --context-cols) "
                "or --format obd for an Open Bandit Dataset file") from None
        raise


def _pairs(option: str, items: list[str] | None) -> dict[str, str]:
    from ..errors import ConfigurationError

    out: dict[str, str] = {}
    for item in items or []:
        for part in (p.strip() for p in item.split(",") if p.strip()):
            key, eq, value = part.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise ConfigurationError(f"{option} {part!r}: expected METRIC=VALUE")
            out[key.strip()] = value.strip()
    return out


def _metric_config(opts: Options) -> tuple[dict[str, str], dict[str, float] | None,
                                           list[str] | None]:
    """``given``, objective weights and metric order: the options', else the ``--state``
    bandit's (when it has several metrics)."""
    given = _pairs("--given", opts.given)
    weights: dict[str, float] | None = {
        k: number("--objective", v) for k, v in _pairs("--objective", opts.objective).items()}
    order = None
    model = _state_model(opts.state) if opts.state is not None else None
    if model is not None and model.get("kind") == "metrics":
        declared = model.get("metrics") or {}
        order = list(declared)
        for name, spec in declared.items():
            if isinstance(spec, dict) and spec.get("given") and name not in given:
                given[name] = str(spec["given"])
        if not weights:
            weights = {str(k): float(v) for k, v in (model.get("objective") or {}).items()}
    return given, weights or None, order


def _state_model(path: Path) -> dict[str, Any] | None:
    from ..errors import SerializationError

    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SerializationError(f"cannot read bandit state {path}: {exc}") from None
    model = state.get("model") if isinstance(state, dict) else None
    return model if isinstance(model, dict) else None


def _looks_like_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fp:
            first = fp.readline()
    except OSError:
        return False
    return "," in first and not first.lstrip().startswith(("{", "["))


def _run(opts: Options) -> tuple[str, EvaluationReport | MetricEvaluation]:
    import numpy as np

    from ..errors import ConfigurationError
    from ..evaluation.obd import find_obd_prior, load_obd_csv, read_bts_prior, resolve_obd_log
    from ..evaluation.policy_file import FilePolicy
    from ..evaluation.report import evaluate as run_evaluation
    from ..evaluation.report import make_estimators
    from ..evaluation.reward_model import RidgeRewardModel
    from ..evaluation.sklearn_model import make_reward_model
    from ..evaluation.tabular import load_table
    from ..evaluation.targets import UniformPolicy, bandit_policy, greedy_policy, thompson_policy

    fmt = _detect(opts.log) if opts.fmt == LogFormat.auto else opts.fmt
    obd_campaign: str | None = None
    data: LoggedData
    mlog: MetricLog | None = None
    if fmt == LogFormat.obd:
        csv_path, obd_campaign = resolve_obd_log(opts.log, opts.campaign)
        data = load_obd_csv(csv_path, context=opts.context)
    elif opts.campaign is not None:
        raise ConfigurationError("--campaign is for Open Bandit Dataset logs (--format obd)")
    elif fmt in (LogFormat.csv, LogFormat.parquet):
        data = load_table(opts.log, action_col=opts.action_col, reward_col=opts.reward_col,
                          propensity_col=opts.propensity_col, context_cols=opts.context_cols,
                          position_col=opts.position_col,
                          arms=[a.strip() for a in opts.arms.split(",")] if opts.arms else None)
    else:
        from ..evaluation.metric_log import MetricLog as _MetricLog

        loaded = _load_jsonl(opts)
        mlog = loaded if isinstance(loaded, _MetricLog) else None
        data = loaded.data if isinstance(loaded, _MetricLog) else loaded
    if opts.policy_file is not None and opts.state is not None:
        raise ConfigurationError("--policy-file and --state: give one target policy")
    if opts.policy_file is not None and opts.policy not in (None, PolicyName.file):
        raise ConfigurationError(
            f"--policy-file and --policy {opts.policy.value}: give one target policy")
    if opts.policy == PolicyName.file and opts.policy_file is None:
        raise ConfigurationError("--policy file needs --policy-file PATH")
    name = (opts.policy.value if opts.policy is not None
            else "file" if opts.policy_file else "bandit" if opts.state else "thompson")
    alpha: object = 1.0
    beta: object = 1.0
    prior = "obd" if opts.prior_file is not None and opts.prior == "uniform" else opts.prior
    if prior == "obd":
        if fmt != LogFormat.obd:
            raise ConfigurationError("--prior obd needs --format obd")
        prior_path = opts.prior_file or find_obd_prior(csv_path.parent)
        if prior_path is None:
            raise ConfigurationError(
                f"--prior obd: no bts_prior/prior_bts.yaml in a folder above {csv_path}; "
                "give it with --prior-file")
        if obd_campaign is None:
            raise ConfigurationError(
                f"--prior obd: which campaign is {csv_path.name}? pass --campaign all|men|women")
        alpha, beta = read_bts_prior(prior_path, obd_campaign)
        if len(alpha) != data.n_actions:
            raise ConfigurationError(
                f"the {obd_campaign!r} prior has {len(alpha)} items, the log "
                f"{data.n_actions} actions: is --campaign right?")
    elif prior != "uniform":
        raise ConfigurationError(f"--prior {prior!r}: 'uniform' or 'obd'")
    target: TargetPolicy
    if name == "file":
        assert opts.policy_file is not None
        target = FilePolicy(opts.policy_file)
    elif name == "uniform":
        target = UniformPolicy()
    elif name == "thompson":
        target = thompson_policy(alpha, beta, learn=opts.learn, batch_size=opts.batch_size,
                                 n_sim=opts.n_sim)
    elif name == "greedy":
        target = greedy_policy(alpha, beta, learn=opts.learn, batch_size=opts.batch_size)
    else:
        if opts.state is None:
            raise ConfigurationError("--policy bandit needs --state FILE (Bandit.to_dict() JSON)")
        target = bandit_policy(opts.state, data, learn=opts.learn, batch_size=opts.batch_size,
                               n_sim=opts.n_sim,
                               observed=None if mlog is None else mlog.observed)
    model: object
    if opts.reward_model == "ridge":
        lam: float | str = opts.ridge if opts.ridge == "auto" else number("--ridge", opts.ridge)
        model = RidgeRewardModel(ridge=lam)
    else:
        model = make_reward_model(opts.reward_model, random_state=opts.seed % 2**32)
    ests = make_estimators([e.strip() for e in opts.estimators.split(",") if e.strip()],
                           clip=opts.clip, model=model, n_folds=opts.folds, tau=opts.tau)
    report: EvaluationReport | MetricEvaluation
    if mlog is not None:
        from ..evaluation.metric_report import evaluate_metrics

        report = evaluate_metrics(mlog, target, estimators=ests, interval=opts.interval,
                                  level=opts.level, n_bootstrap=opts.n_bootstrap,
                                  rng=np.random.default_rng(opts.seed),
                                  bounds=_bounds(opts.reward_range))
    else:
        report = run_evaluation(data, target, estimators=ests, interval=opts.interval,
                                level=opts.level, n_bootstrap=opts.n_bootstrap,
                                rng=np.random.default_rng(opts.seed),
                                bounds=_bounds(opts.reward_range))
    if any(e.name == "switch-dr" for e in ests) and opts.tau == float("inf"):
        report.notes.append("switch-dr with --tau inf is DR: set --tau to switch")
    return fmt.value, report


def _bounds(text: str) -> str | tuple[float, float] | None:
    from ..errors import ConfigurationError

    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    parts = text.split(",")
    if len(parts) != 2:
        raise ConfigurationError(f"--reward-range {text!r}: 'auto', 'none' or 'LOW,HIGH'")
    return (number("--reward-range", parts[0], "'auto', 'none' or 'LOW,HIGH'"),
            number("--reward-range", parts[1], "'auto', 'none' or 'LOW,HIGH'"))

