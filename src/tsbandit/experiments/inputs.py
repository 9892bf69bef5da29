"""An experiment with several metrics as one JSON-safe document (``tsbandit abtest --input``).

::

    {"goal": "conversion",
     "control": "A",                               # optional; default: the first arm
     "metrics": {
       "conversion": {"A": {"successes": 120, "trials": 1000}, "B": {...}},
       "risk":       {"A": {"successes": 31, "trials": 1000}, "B": {...}},
       "revenue":    {"A": {"n": 1000, "sum": 52300.0, "sum_sq": 3.1e6}, "B": {...}},
       "latency":    {"A": {"n": 1000, "mean": 212.0, "sd": 40.5}, "B": {...}}},
     "guardrails": [{"metric": "risk", "max": 0.05},
                    {"metric": "revenue", "min": -0.02, "relative_to": "control"}]}

A binary metric gives ``successes`` and ``trials`` per arm (Beta posteriors); a real-valued one
``n``, ``sum`` and ``sum_sq`` (sufficient statistics) or ``n``, ``mean`` and ``sd`` (sample
standard deviation; arms may mix the two), with Normal-Inverse-Gamma posteriors
(:mod:`.posteriors`). Every metric
covers the same arms; the arms' order is the goal metric's (as written), so the control is first
unless ``"control"`` names another.

>>> exp = experiment_from_dict({"goal": "c", "metrics": {
...     "c": {"A": {"successes": 10, "trials": 100}, "B": {"successes": 20, "trials": 100}},
...     "risk": {"A": {"successes": 1, "trials": 100}, "B": {"successes": 2, "trials": 100}}},
...     "guardrails": [{"metric": "risk", "max": 0.05}]})
>>> exp.goal.names, sorted(exp.metrics), exp.control  # metrics: the goal's too
(('A', 'B'), ['c', 'risk'], 'A')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from .guardrails import Guardrail
from .posteriors import ArmPosteriors, BinaryPosteriors, NormalPosteriors

__all__ = ["Experiment", "experiment_from_dict", "metric_posteriors"]

_FORMS = {
    frozenset({"successes", "trials"}): "binary",
    frozenset({"n", "sum", "sum_sq"}): "sums",
    frozenset({"n", "mean", "sd"}): "summary",
}


@dataclass(frozen=True)
class Experiment:
    """The goal's posteriors, the other metrics', the guardrails and the control arm."""

    goal_name: str
    goal: ArmPosteriors
    metrics: dict[str, ArmPosteriors]
    guardrails: tuple[Guardrail, ...]
    control: str


def metric_posteriors(name: str, arms: Mapping[str, Mapping[str, Any]],
                      order: tuple[str, ...] | None = None) -> ArmPosteriors:
    """One metric's posteriors from ``{arm: {"successes", "trials"}}`` (binary), ``{arm: {"n",
    "sum", "sum_sq"}}`` or ``{arm: {"n", "mean", "sd"}}`` (real-valued); every arm in one form.

    ``order`` puts the arms in that order (and requires exactly those arms).
    """
    if not isinstance(arms, Mapping) or len(arms) < 2:
        raise ConfigurationError(f"metric {name!r}: give {{arm: statistics}} for at least two "
                                 "arms")
    names = tuple(str(a) for a in arms)
    if order is not None:
        if set(names) != set(order):
            raise ConfigurationError(f"metric {name!r} has arms {sorted(names)}; the goal has "
                                     f"{sorted(order)} (every metric covers the same arms)")
        names = order
    forms = set()
    for arm in names:
        stats = arms[arm]
        form = _FORMS.get(frozenset(stats) if isinstance(stats, Mapping) else frozenset())
        if form is None:
            raise ConfigurationError(
                f"metric {name!r}, arm {arm!r}: give successes and trials (binary), n, sum and "
                f"sum_sq, or n, mean and sd (real-valued); got {stats!r}")
        forms.add(form)
    if "binary" in forms and len(forms) > 1:
        raise ConfigurationError(f"metric {name!r}: every arm needs the same kind of "
                                 "statistics (binary or real-valued)")
    if forms == {"binary"}:
        s = [_number(name, a, "successes", arms[a]["successes"]) for a in names]
        n = [_number(name, a, "trials", arms[a]["trials"]) for a in names]
        return BinaryPosteriors.from_counts(s, n, names)
    sums = [_sums(name, a, arms[a]) for a in names]  # n, mean, sd become n, sum, sum_sq
    return NormalPosteriors.from_stats([t[0] for t in sums], [t[1] for t in sums],
                                       [t[2] for t in sums], names)


def _sums(metric: str, arm: str, stats: Mapping[str, Any]) -> tuple[float, float, float]:
    n = _number(metric, arm, "n", stats["n"])
    if "sum" in stats:
        return (n, _number(metric, arm, "sum", stats["sum"]),
                _number(metric, arm, "sum_sq", stats["sum_sq"]))
    mean = _number(metric, arm, "mean", stats["mean"])
    sd = _number(metric, arm, "sd", stats["sd"])
    if sd < 0 or n < 0:
        raise ConfigurationError(f"metric {metric!r}, arm {arm!r}: n and sd must be >= 0")
    return n, n * mean, max(n - 1.0, 0.0) * sd * sd + n * mean * mean


def _number(metric: str, arm: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"metric {metric!r}, arm {arm!r}: {key} == {value!r}, must "
                                 "be a number")
    return float(value)


def experiment_from_dict(data: Mapping[str, Any]) -> Experiment:
    """Validate a document of the form in the module docstring."""
    if not isinstance(data, Mapping):
        raise ConfigurationError("an experiment document is a JSON object")
    bad = set(data) - {"goal", "control", "metrics", "guardrails"}
    if bad:
        raise ConfigurationError(f"unknown experiment keys {sorted(bad)}; known: goal, "
                                 "control, metrics, guardrails")
    metrics = data.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics:
        raise ConfigurationError("an experiment needs 'metrics': {name: {arm: statistics}}")
    goal_name = data.get("goal", next(iter(metrics)))
    if goal_name not in metrics:
        raise ConfigurationError(f"goal {goal_name!r} is not among the metrics "
                                 f"{sorted(metrics)}")
    goal = metric_posteriors(str(goal_name), metrics[goal_name])
    others = {str(n): metric_posteriors(str(n), arms, goal.names)
              for n, arms in metrics.items() if n != goal_name}
    rails = data.get("guardrails") or []
    if not isinstance(rails, list):
        raise ConfigurationError("'guardrails' is a list of {metric, max | min, ...}")
    guardrails = tuple(Guardrail.from_dict(g) for g in rails)
    control = str(data.get("control", goal.names[0]))
    if control not in goal.names:
        raise ConfigurationError(f"control {control!r} is not an arm; arms: {list(goal.names)}")
    all_metrics = {str(goal_name): goal, **others}
    for g in guardrails:
        if g.metric not in all_metrics:
            raise ConfigurationError(f"guardrail on {g.metric!r}: no such metric; metrics: "
                                     f"{sorted(all_metrics)}")
    return Experiment(str(goal_name), goal, all_metrics, guardrails, control)
