"""``tsbandit abtest``: Bayesian A/B/n analysis and the design simulation (Typer sub-app).

The root command mounts ``app`` as ``abtest``. Two forms work:

- ``tsbandit abtest --arm A=120/1000 --arm B=150/1000`` (the group's callback, which runs when
  no subcommand is given: ``invoke_without_command=True``) prints probability best, expected
  loss, the lift interval, the SRM check and the decision. Real-valued metrics use
  ``--arm NAME=N:MEAN:SD``.
- Guardrails: ``--metric risk:A=31/1000 --metric risk:B=52/1000 --guardrail risk:max=0.05``
  (``--arm`` is the goal metric; ``--metric METRIC:ARM=...`` gives another metric's data in the
  same forms; ``--guardrail METRIC:max=V[,relative_to=control][,lift=absolute]``), or the whole
  experiment as JSON with ``--input FILE`` (:mod:`tsbandit.experiments.inputs`). A winner must
  then also keep every guardrail with probability ``>= --threshold`` (or
  ``--guardrail-level``).
- ``tsbandit abtest simulate --rates 0.030,0.036`` prints the comparison of the Bayesian
  sequential design with the fixed-horizon z-test and writes a plot and a JSON summary to
  ``--out``.

:mod:`tsbandit.experiments` (SciPy) and NumPy are imported inside the commands.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigurationError, TsbanditError
from ._options import numbers, sub_app

if TYPE_CHECKING:
    import numpy as np

    from ..experiments.inputs import Experiment
    from ..experiments.posteriors import ArmPosteriors
    from ..experiments.simulation import SimulationResult
    from ..experiments.stopping import StoppingRule

__all__ = ["app", "parse_arms", "parse_experiment"]

app = sub_app(
    "Bayesian A/B/n tests: analyse counts (--arm NAME=SUCCESSES/TRIALS) or simulate designs.",
    no_args_is_help=False,
)

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BINARY = re.compile(rf"^(?P<name>[^=]+)=\s*(?P<s>{_NUM})\s*/\s*(?P<n>{_NUM})$")
_NORMAL = re.compile(
    rf"^(?P<name>[^=]+)=\s*(?P<n>{_NUM})\s*:\s*(?P<mean>{_NUM})\s*:\s*(?P<sd>{_NUM})$")


def parse_arms(specs: list[str]) -> ArmPosteriors:
    """Posteriors from ``--arm`` specifications.

    ``NAME=SUCCESSES/TRIALS`` (conversion) or ``NAME=N:MEAN:SD`` (real-valued metric); all arms
    of one experiment use the same form. Raises :class:`~tsbandit.errors.ConfigurationError`
    naming the malformed specification.

    >>> parse_arms(["A=120/1000", "B=150/1000"]).names
    ('A', 'B')
    """
    from ..experiments.posteriors import BinaryPosteriors, NormalPosteriors

    if len(specs) < 2:
        raise ConfigurationError(
            f"an A/B test needs at least two --arm options, got {len(specs)} "
            "(e.g. --arm A=120/1000 --arm B=150/1000)")
    binary, normal = [], []
    for spec in specs:
        text = spec.strip()
        if (m := _BINARY.match(text)) and m["name"].strip():
            binary.append((m["name"].strip(), float(m["s"]), float(m["n"])))
        elif (m := _NORMAL.match(text)) and m["name"].strip():
            normal.append((m["name"].strip(), float(m["n"]), float(m["mean"]), float(m["sd"])))
        else:
            raise ConfigurationError(
                f"malformed --arm {spec!r}: expected NAME=SUCCESSES/TRIALS (e.g. A=120/1000) "
                "or NAME=N:MEAN:SD (e.g. A=1000:52.3:18.1)")
    if binary and normal:
        raise ConfigurationError(
            "mixed --arm forms: use NAME=SUCCESSES/TRIALS for every arm or NAME=N:MEAN:SD for "
            "every arm")
    if binary:
        names, s, n = zip(*binary, strict=True)
        return BinaryPosteriors.from_counts(s, n, names)
    names, n, mean, sd = zip(*normal, strict=True)
    return NormalPosteriors.from_summary(n, mean, sd, names)


def parse_experiment(arms: list[str], metric_specs: list[str], guardrails: list[str],
                     input_file: Path | None, goal: str = "goal",
                     control: str | None = None) -> Experiment:
    """The experiment of the command line: ``--input`` (JSON) and/or ``--arm`` (the goal),
    ``--metric METRIC:ARM=...`` (other metrics) and ``--guardrail`` options.

    >>> exp = parse_experiment(["A=120/1000", "B=150/1000"], ["risk:A=3/1000",
    ...                        "risk:B=9/1000"], ["risk:max=0.02"], None)
    >>> exp.goal_name, exp.metrics["risk"].names, exp.guardrails[0].value
    ('goal', ('A', 'B'), 0.02)
    """
    from ..experiments.guardrails import Guardrail
    from ..experiments.inputs import Experiment, experiment_from_dict

    if input_file is not None:
        if arms or metric_specs:
            raise ConfigurationError("--input gives the data: no --arm or --metric with it")
        try:
            doc = json.loads(input_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"--input {input_file}: {exc}") from None
        exp = experiment_from_dict(doc)
    else:
        post = parse_arms(arms)
        by_metric: dict[str, list[str]] = {}
        for spec in metric_specs:
            name, sep, rest = spec.partition(":")
            if not sep or not name.strip() or "=" not in rest:
                raise ConfigurationError(
                    f"malformed --metric {spec!r}: expected METRIC:ARM=SUCCESSES/TRIALS or "
                    "METRIC:ARM=N:MEAN:SD (e.g. risk:A=31/1000)")
            by_metric.setdefault(name.strip(), []).append(rest)
        if goal in by_metric:
            raise ConfigurationError(f"--metric {goal}: that is the goal's name (--arm)")
        metrics: dict[str, ArmPosteriors] = {goal: post}
        for name, specs in by_metric.items():
            m = parse_arms(specs) if len(specs) == post.n_arms else None
            if m is None or set(m.names) != set(post.names):
                raise ConfigurationError(f"--metric {name}: {len(specs)} arm(s) for the goal's "
                                         f"(--arm) {list(post.names)}: give every arm once")
            metrics[name] = _reorder(m, post.names)
        exp = Experiment(goal, post, metrics, (), post.names[0])
    extra = tuple(Guardrail.parse(g) for g in guardrails)
    for g in extra:
        if g.metric not in exp.metrics:
            raise ConfigurationError(f"--guardrail {g.metric}: no data for that metric "
                                     f"(metrics: {sorted(exp.metrics)}); add --metric "
                                     f"{g.metric}:ARM=... for every arm")
    ctrl = control if control is not None else exp.control
    if ctrl not in exp.goal.names:
        raise ConfigurationError(f"--control {ctrl!r} is not an arm; arms: "
                                 f"{list(exp.goal.names)}")
    return Experiment(exp.goal_name, exp.goal, exp.metrics, exp.guardrails + extra, ctrl)


def _reorder(post: ArmPosteriors, names: tuple[str, ...]) -> ArmPosteriors:
    from ..experiments.posteriors import BinaryPosteriors, NormalPosteriors

    idx = [post.names.index(n) for n in names]
    if isinstance(post, BinaryPosteriors):
        return BinaryPosteriors.from_counts(post.successes[idx], post.trials[idx], names)
    assert isinstance(post, NormalPosteriors)
    return NormalPosteriors.from_stats(post.n[idx], post.sum_r[idx], post.sum_r2[idx], names)


def _rule(threshold: float | None, loss: float | None, min_samples: int) -> StoppingRule:
    from ..experiments.stopping import StoppingRule

    return StoppingRule(prob_best=threshold, expected_loss=loss, min_samples=min_samples)


def _rng(seed: int | None) -> tuple[np.random.Generator, int]:
    import numpy as np

    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return np.random.default_rng(seed), seed


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:+.{digits}f}%"


@app.callback(invoke_without_command=True)
def abtest(
    ctx: typer.Context,
    arm: Annotated[list[str] | None, typer.Option(
        "--arm", help="NAME=SUCCESSES/TRIALS, or NAME=N:MEAN:SD for a real-valued metric; "
        "repeat for each arm (the first is the control).")] = None,
    threshold: Annotated[float, typer.Option(
        help="Stop when an arm's probability of being best reaches this.")] = 0.99,
    loss: Annotated[float | None, typer.Option(
        "--loss", help="Also stop when an arm's expected loss is at most this (metric units).")
    ] = None,
    min_samples: Annotated[int, typer.Option(help="Observations every arm needs first.")] = 100,
    level: Annotated[float, typer.Option(help="Credible level of the intervals.")] = 0.95,
    split: Annotated[str | None, typer.Option(
        help="Intended traffic split for the SRM check, e.g. 50,50 (default: equal).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of the Monte-Carlo estimates (only used with more than two arms).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Directory to write a plot of the posterior densities to.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Another metric's data, METRIC:ARM=SUCCESSES/TRIALS or "
        "METRIC:ARM=N:MEAN:SD; repeat for every arm (--arm is the goal).")] = None,
    guardrail: Annotated[list[str] | None, typer.Option(
        "--guardrail", help="METRIC:max=V or METRIC:min=V, optionally ,relative_to=control "
        "(a lift X/X_control - 1; V may be 10%) and ,lift=absolute (a difference "
        "X - X_control); repeatable.")] = None,
    input_file: Annotated[Path | None, typer.Option(
        "--input", help="The experiment as JSON: {goal, control?, metrics: {name: {arm: "
        "statistics}}, guardrails: [...]} (see tsbandit.experiments.inputs).")] = None,
    control: Annotated[str | None, typer.Option(
        help="The arm 'relative_to=control' refers to [default: the first].")] = None,
    guardrail_level: Annotated[float | None, typer.Option(
        help="Probability every guardrail must hold with [default: --threshold].")] = None,
) -> None:
    """Analyse an A/B/n test: probability best, lift interval, expected loss, decision."""
    if ctx.invoked_subcommand is not None:
        if arm:
            raise typer.BadParameter(
                f"analyses counts; `{ctx.invoked_subcommand}` takes its own options", ctx,
                param_hint="'--arm'")
        return
    if not arm and input_file is None:
        raise typer.BadParameter(
            "give at least two (e.g. --arm A=120/1000 --arm B=150/1000), --input FILE, "
            "or run `abtest simulate --rates 0.030,0.036`", ctx, param_hint="'--arm'")
    from ..experiments.report import experiment_report

    try:
        if input_file is None and not metric and not guardrail and control is None:
            post = parse_arms(arm or [])
            extra: dict[str, Any] = {}
        else:
            exp = parse_experiment(arm or [], metric or [], guardrail or [], input_file,
                                   control=control)
            post = exp.goal
            extra = {"metrics": exp.metrics, "guardrails": exp.guardrails,
                     "control": exp.control, "guardrail_level": guardrail_level}
        rule = _rule(threshold, loss, min_samples)
        weights = numbers("--split", split) if split else [1.0] * post.n_arms
        rng, seed = _rng(seed)
        report = experiment_report(post, rule=rule, intended_split=weights, rng=rng, level=level,
                                   **extra)
    except TsbanditError as exc:
        raise typer.BadParameter(str(exc), ctx) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report, post.n_arms > 2, seed)
    if out is not None:
        from ..experiments.plots import plot_posteriors

        out.mkdir(parents=True, exist_ok=True)
        path = plot_posteriors(post, out / "abtest_posteriors.png")
        typer.echo(f"wrote {path}")


def _print_report(rep: dict[str, Any], mc: bool, seed: int) -> None:
    lvl = f"{100 * rep['level']:g}%"
    typer.echo(f"{'arm':<12}{'n':>10}{'mean':>11}  {lvl + ' interval':<24}"
               f"{'P(best)':>9}{'E[loss]':>12}")
    for a in rep["arms"]:
        lo, hi = a["interval"]
        typer.echo(f"{a['name']:<12}{a['n']:>10.0f}{a['mean']:>11.5g}  "
                   f"{f'[{lo:.5g}, {hi:.5g}]':<24}{a['prob_best']:>9.4f}"
                   f"{a['expected_loss']:>12.3g}")
    if mc:
        typer.echo(f"(Monte Carlo, {rep['draws']:,} draws, seed {seed}; standard error of "
                   f"P(best) <= {max(a['prob_best_se'] for a in rep['arms']):.4f})")
    lift = rep["lift"]
    if lift is not None:
        t, c = lift["treatment"], lift["control"]
        if lift["relative"]:
            typer.echo(f"lift of {t} over {c}: {_pct(lift['median'])} "
                       f"({lvl} interval {_pct(lift['low'])} to {_pct(lift['high'])}); "
                       f"P({t} > {c}) = {lift['prob_positive']:.4f}")
        else:
            typer.echo(f"difference {t} - {c}: {lift['median']:+.5g} ({lvl} interval "
                       f"{lift['low']:+.5g} to {lift['high']:+.5g}); "
                       f"P({t} > {c}) = {lift['prob_positive']:.4f}")
    srm = rep["srm"]
    typer.echo(f"sample-ratio check: {srm['status'].upper()} (chi-square p = "
               f"{srm['p_value']:.3g}; flagged below {srm['threshold']:g})")
    if srm["status"] == "mismatch":
        typer.echo("  traffic does not match the intended split: fix assignment/logging "
                   "before trusting any comparison")
    if rep.get("guardrails"):
        _print_guardrails(rep)
    d = rep["decision"]
    typer.echo(f"decision: {'STOP, ship ' + d['winner'] if d['stop'] else 'CONTINUE'} "
               f"({d['reason']})")


def _print_guardrails(rep: dict[str, Any]) -> None:
    lvl = rep["decision"]["guardrail_level"]
    typer.echo(f"guardrails (each must hold with probability >= {lvl:g}; bound: the "
               f"{100 * lvl:g}% credible bound of the guarded quantity):")
    typer.echo(f"  {'arm':<12}{'guardrail':<36}{'P(holds)':>10}{'bound':>12}  status")
    for a in rep["arms"]:
        for c in a["guardrails"]:
            bound = c["bound"]
            rel = c["guardrail"].get("lift") == "relative"
            text = ("n/a" if bound is None else f"{100 * bound:+.3g}%" if rel
                    else f"{bound:.4g}")
            typer.echo(f"  {a['name']:<12}{c['describe']:<36}{c['prob']:>10.4f}{text:>12}  "
                       f"{'holds' if c['holds'] else 'FAILS'}")


@app.command()
def simulate(
    rates: Annotated[str, typer.Option(
        help="True conversion rates of control and treatment, e.g. 0.030,0.036.")],
    reps: Annotated[int, typer.Option(help="Replications per scenario.")] = 1000,
    batch: Annotated[int, typer.Option(help="Users per arm between looks.")] = 500,
    max_samples: Annotated[int | None, typer.Option(
        help="Cap on users per arm for the sequential designs (default: 2 x fixed n).")] = None,
    n_fixed: Annotated[int | None, typer.Option(
        help="Fixed-horizon users per arm (default: z-test sample size for --rates).")] = None,
    threshold: Annotated[float, typer.Option(help="Bayesian probability-best threshold.")] = 0.99,
    loss: Annotated[float | None, typer.Option(
        "--loss", help="Also stop when the expected loss is at most this.")] = None,
    min_samples: Annotated[int, typer.Option(help="Users per arm before any stop.")] = 100,
    alpha: Annotated[float, typer.Option(help="z-test level (two-sided).")] = 0.05,
    power: Annotated[float, typer.Option(help="z-test design power.")] = 0.80,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: fresh entropy).")
                    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the plot and the JSON summary.")
                   ] = Path("abtest-simulation"),
    plot: Annotated[bool, typer.Option(help="Write the plot (needs matplotlib).")] = True,
) -> None:
    """Simulate the Bayesian sequential design against the fixed-horizon z-test."""
    from ..experiments.simulation import simulate_ab

    try:
        r = numbers("--rates", rates)
        rule = _rule(threshold, loss, min_samples)
        rng, seed = _rng(seed)
        with typer.progressbar(length=1, label="simulating", file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            result = simulate_ab(r, rng=rng, rule=rule, reps=reps, batch=batch,
                                 max_samples=max_samples, n_fixed=n_fixed, alpha=alpha,
                                 power=power, progress=progress)
    except TsbanditError as exc:
        raise typer.BadParameter(str(exc)) from None
    _print_simulation(result, seed)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_dict() | {"seed": seed}
    (out / "abtest_simulation.json").write_text(json.dumps(summary, indent=2))
    typer.echo(f"wrote {out / 'abtest_simulation.json'}")
    if plot:
        try:
            from ..experiments.plots import plot_simulation

            typer.echo(f"wrote {plot_simulation(result, out / 'abtest_simulation.png')}")
        except ImportError:
            typer.echo("matplotlib is not installed (pip install 'tsbandit[plot]'); no plot")


def _print_simulation(res: SimulationResult, seed: int) -> None:
    rule = res.rule
    crit = []
    if rule.prob_best is not None:
        crit.append(f"P(best) >= {rule.prob_best:g}")
    if rule.expected_loss is not None:
        crit.append(f"expected loss <= {rule.expected_loss:g}")
    typer.echo(f"rates {res.rates[0]:g} (A) vs {res.rates[1]:g} (B); {res.reps:,} replications "
               f"per scenario; seed {seed}")
    typer.echo(f"fixed horizon n = {res.n_fixed:,} per arm (pooled two-proportion z-test, "
               f"alpha {res.alpha:g} two-sided); Bayesian rule: {' or '.join(crit)}, "
               f"min {rule.min_samples} per arm; looks every {res.batch:,} per arm up to "
               f"{res.max_samples:,}")
    typer.echo("")
    typer.echo(f"{'design':<20}{'median':>8}{'q1':>8}{'q3':>8}{'decided':>9}"
               f"{'wrong winner':>14}{'A/A false pos.':>16}")
    rows = {row["design"]: row for row in res.summary()}
    for name, row in rows.items():
        typer.echo(f"{name:<20}{row['median']:>8.0f}{row['q1']:>8.0f}{row['q3']:>8.0f}"
                   f"{row['decided']:>9.1%}{row['wrong_winner']:>14.2%}"
                   f"{row['aa_false_positive']:>10.1%} ±{row['aa_false_positive_se']:.1%}")
    typer.echo("(users per arm to a decision in the A/B scenario; an undecided replication "
               "counts at its last look)")
    seq, one = rows["bayes_sequential"], rows["bayes_single_look"]
    zf, zp = rows["ztest_fixed"], rows["ztest_peeking"]
    typer.echo("")
    typer.echo(f"Peeking: checking the Bayesian rule after every {res.batch:,} users per arm "
               f"declares a winner in {seq['aa_false_positive']:.1%} of A/A tests, against "
               f"{one['aa_false_positive']:.1%} with one look at n; the z-test goes from "
               f"{zf['aa_false_positive']:.1%} to {zp['aa_false_positive']:.1%}. A posterior "
               "probability checked repeatedly is not a fixed false-positive rate.")
