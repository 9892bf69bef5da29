"""The decision core's several-metric half: a metric bandit's configuration and summary.

:func:`metric_setup` turns the JSON configuration of a several-metric bandit (metrics,
objective, constraints, costs and baseline by arm name) into a
:class:`~tsbandit.policies.metrics.MetricSet` and a rule -- :class:`~tsbandit.Bandit` and the
engine build their bandits with it; :func:`metric_summary` is the summary both give;
:func:`without_arm` keeps a constrained rule's arm indices right when an arm is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .core import DecisionCore
from .errors import ConfigurationError
from .policies.base import RewardModel
from .policies.metrics import MetricSet
from .policies.rules import SelectionRule, ThompsonSampling
from .policies.rules.constrained import ConstrainedThompson
from .policies.stats import Stats

__all__ = ["metric_setup", "metric_summary", "without_arm"]


def metric_summary(core: DecisionCore, post: Any, stats: Stats, side_rng: np.random.Generator,
                   context: Any = None, level: float = 0.95, n_draws: int | None = None
                   ) -> dict[str, Any]:
    """A several-metric bandit's summary (JSON-safe): per metric per arm the posterior mean
    of ``E[metric | given]``, its interval and observations; the objective per arm (mean,
    interval, probability of being best); each constraint's probability of holding per arm
    (Monte Carlo over ``n_draws`` joint draws, on ``side_rng``)."""
    ms = core.model
    if not isinstance(ms, MetricSet):
        raise ConfigurationError("metric_summary needs a bandit with several metrics")
    x = ms.check_contexts(context)
    xs = None if x is None else x[0]
    metrics: dict[str, Any] = {}
    for i, (name, m) in enumerate(zip(ms.names, ms.models, strict=True)):
        p = post.parts[i]
        mean = np.asarray(m.mean(p, xs))
        lo, hi = m.interval(p, level, xs)
        n = m.counts(ms.part(stats, i))
        metrics[name] = {a: {"mean": float(mean[j]), "low": float(lo[j]),
                             "high": float(hi[j]), "n": float(n[j])}
                         for j, a in enumerate(core.arms)}
    objective = {s.arm: {"mean": s.mean, "low": s.lower, "high": s.upper,
                         "probability_best": s.prob_best}
                 for s in core.summary(post, stats, side_rng, context, level, n_draws)}
    out: dict[str, Any] = {"metrics": metrics, "objective": objective, "constraints": []}
    rule = core.rule
    cons = getattr(rule, "constraints", ())
    if cons:
        size = n_draws or max(core.propensity_draws, 4000)
        cpost = rule.constraint_posterior(ms, post, stats)  # type: ignore[attr-defined]
        draws = ms.sample_metrics(cpost, side_rng, xs, size)
        held = (rule.margins(ms, draws) >= 0).mean(axis=1)  # type: ignore[attr-defined]
        for c, h in zip(cons, held, strict=True):
            row = dict(c)
            if "relative_to" in row:
                row["relative_to"] = core.arms[row["relative_to"]]
            row["probability"] = {a: float(h[j]) for j, a in enumerate(core.arms)}
            out["constraints"].append(row)
    return out


def without_arm(rule: SelectionRule, a: int, name: str) -> SelectionRule:
    """A constrained rule's arm indices after arm ``a`` is removed (a baseline or a
    ``relative_to`` arm cannot be)."""
    if not isinstance(rule, ConstrainedThompson):
        return rule
    used = [rule.baseline] + [c.get("relative_to") for c in rule.constraints]
    if a in used:
        raise ConfigurationError(f"cannot remove {name!r}: a constraint or the baseline uses it")

    def shift(i: int | None) -> int | None:
        return None if i is None else i - (i > a)

    cons = tuple({**c, **({"relative_to": shift(c["relative_to"])}
                          if "relative_to" in c else {})} for c in rule.constraints)
    return replace(rule, constraints=cons, baseline=shift(rule.baseline))


def metric_setup(names: list[str], model: RewardModel | None, rule: SelectionRule | None,
                  metrics: Mapping[str, Any] | None, objective: Mapping[str, float] | None,
                  constraints: Sequence[Mapping[str, Any]] | None,
                  costs: Mapping[str, float] | None, baseline: str | None
                  ) -> tuple[MetricSet, SelectionRule]:
    """The metric set and rule of ``Bandit(arms, metrics=...)`` -- the JSON configuration
    of a several-metric bandit (arms named in ``costs``, ``baseline`` and a constraint's
    ``relative_to``) as a :class:`MetricSet` and a rule (arm indices). The engine builds its
    bandits from the same configuration with it.

    >>> ms, rule = metric_setup(["A", "B"], None, None, {"apply": "beta", "risk":
    ...     {"model": "beta", "given": "apply"}}, None, [{"metric": "risk", "max": 0.05}],
    ...     {"A": 1.0}, "B")
    >>> ms.costs.tolist(), rule.baseline
    ([1.0, 0.0], 1)
    """
    if metrics is None:
        raise ConfigurationError("objective, constraints, costs and baseline need metrics")
    if model is not None:
        raise ConfigurationError("give either model or metrics, not both")
    index = {a: i for i, a in enumerate(names)}

    def arm(value: Any, what: str) -> int:
        if value not in index:
            raise ConfigurationError(f"{what} == {value!r} is not an arm; arms: {names}")
        return index[value]

    cost = np.zeros(len(names))
    for a, value in (costs or {}).items():
        cost[arm(a, "cost arm")] = value
    ms = MetricSet(metrics, objective, cost if costs else ())
    base = None if baseline is None else arm(baseline, "baseline")
    cons: list[Mapping[str, Any]] = []
    for spec in constraints or ():
        c: Any = dict(spec) if isinstance(spec, Mapping) else spec
        if isinstance(c, dict) and c.get("relative_to") is not None:
            c["relative_to"] = arm(c["relative_to"], "relative_to")
        cons.append(c)
    if rule is None:
        rule = ConstrainedThompson(tuple(cons), base) if cons else ThompsonSampling()
    elif cons or base is not None:
        if not isinstance(rule, ConstrainedThompson):
            raise ConfigurationError("constraints and baseline need a ConstrainedThompson rule")
        rule = replace(rule, constraints=tuple(cons), baseline=base)
    if isinstance(rule, ConstrainedThompson):
        rule.check_model(ms)
    return ms, rule
