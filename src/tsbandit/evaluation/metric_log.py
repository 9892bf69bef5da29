"""Load the event log of a bandit with several metrics: every metric's value per decision.

A bandit with several metrics (:class:`~tsbandit.policies.metrics.MetricSet`) logs one
``decision`` event per decision and one ``reward`` event **per metric** (``"metric": name``,
``"reward": value``), or an ``expired`` event per metric whose window passed (``"reward"``: the
metric's default, or null: nothing observed). :func:`load_metric_log` joins them into
:class:`MetricLog`: the decisions as :class:`~.data.LoggedData` and each metric's **per-decision
value** (``(n,)``, NaN where it is missing), which is what off-policy evaluation estimates
(:func:`~.metric_report.evaluate_metrics`):

- a metric without ``given``: the logged reward (or expiry default);
- a metric ``given`` a binary metric ``g`` (revenue given apply): ``g * metric``, i.e. the
  logged value when ``g`` was 1 and **0 when g was 0** (whatever was logged for it: the engine
  refuses such rewards, an expiry may settle it) -- its mean is ``P(g) * E[metric | g]``;
  missing when ``g`` is missing. A decision whose ``g`` was 1 but whose conditional reward
  never arrived (not yet, or expired without a default) is *missing data*: by default
  (``missing_conditional="impute"``) it gets the mean of the conditional rewards observed for
  the same arm (missing at random within an arm: keeps ``P(g)`` unbiased instead of dropping
  conversions), counted in ``imputed``; ``"drop"`` drops the decision from that metric (and
  from the objective); an arm with no observed conditional reward cannot be imputed and drops.
  Intervals treat imputed values as observed (a little narrow when many are imputed: measured
  95-97 % coverage of 95 % intervals with a quarter of the revenues missing, README).

``missing_reward`` works as in :func:`~.jsonl.load_event_log`: ``"drop"`` (a metric with no
event for a decision is missing), or a number every missing metric gets (before ``given`` is
applied). The **objective** is ``sum_m w_m value_m`` (weights from ``objective``; default weight
1 on the first metric, as :class:`~tsbandit.policies.metrics.MetricSet`), defined where every
weighted metric is. The log's rows are the decisions whose objective is defined, in time order;
``data.rewards`` is the objective (what a replayed target policy learns from), each metric is
evaluated on the rows where its value is defined.

>>> lines = [
...     '{"type": "decision", "decision_id": "d1", "timestamp": 1, "arm": "A", "propensity": 0.5}',
...     '{"type": "reward", "decision_id": "d1", "metric": "apply", "reward": 1}',
...     '{"type": "reward", "decision_id": "d1", "metric": "revenue", "reward": 80}',
...     '{"type": "decision", "decision_id": "d2", "timestamp": 2, "arm": "B", "propensity": 0.5}',
...     '{"type": "reward", "decision_id": "d2", "metric": "apply", "reward": 0}']
>>> log = load_metric_log(lines, given={"revenue": "apply"}, objective={"revenue": 1.0})
>>> log.values["revenue"].tolist(), log.data.rewards.tolist()
([80.0, 0.0], [80.0, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..events import DecisionEvent, RewardEvent
from .data import InvalidLogError, LoggedData
from .jsonl import _build, _events, _required

__all__ = ["MetricLog", "load_metric_log", "log_metrics"]


@dataclass(frozen=True)
class MetricLog:
    """Decisions with every metric's per-decision value (see the module docstring).

    Attributes
    ----------
    data
        The decisions whose objective is defined, in time order; ``rewards`` is the objective.
    values
        ``{metric: (n,)}`` per-decision values, NaN where missing.
    observed
        ``{metric: (n,)}`` what was observed (logged reward or expiry default), NaN where
        nothing was: what a bandit learns (a ``given`` metric is not observed where ``g`` was
        0, whatever was logged for it).
    given
        ``{metric: the binary metric it is conditional on, or None}``.
    objective
        ``{metric: weight}``.
    counts
        Per metric: ``observed``, ``zero_by_given`` (``g`` was 0), ``imputed``, ``missing``
        (over every decision of the log), and ``n_decisions``, ``orphan_rewards``.
    """

    data: LoggedData
    values: dict[str, np.ndarray]
    observed: dict[str, np.ndarray]
    given: dict[str, str | None]
    objective: dict[str, float]
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics, in the order they were first logged (or as ``given`` names them)."""
        return tuple(self.values)

    def metric_data(self, metric: str) -> tuple[LoggedData, np.ndarray]:
        """The rows where ``metric`` is defined (rewards: its values) and their row mask."""
        v = self.values[metric]
        mask = np.isfinite(v)
        return replace(self.data.subset(mask), rewards=v[mask]), mask


def log_metrics(source: str | Path | IO[str] | Iterable[str], bandit: str | None = None
                ) -> list[str]:
    """The metric names of a log's reward and expired events (of ``bandit``'s only, when
    given), in order of first appearance; empty for a single-metric log."""
    seen: dict[str, None] = {}
    for _, event in _events(source):
        if bandit is not None and event.bandit is not None and str(event.bandit) != bandit:
            continue
        if isinstance(event, RewardEvent) and event.metric is not None:
            seen.setdefault(str(event.metric), None)
    return list(seen)


def load_metric_log(
    source: str | Path | IO[str] | Iterable[str],
    *,
    bandit: str | None = None,
    arms: Sequence[str] | None = None,
    missing_reward: str | float = "drop",
    given: Mapping[str, str] | None = None,
    objective: Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    missing_conditional: str = "impute",
) -> MetricLog:
    """Join a several-metric event log (see the module docstring).

    Parameters
    ----------
    source, bandit, arms, missing_reward
        As :func:`~.jsonl.load_event_log`.
    given
        ``{metric: binary metric it is observed under}`` (a bandit's configuration says it).
    objective
        ``{metric: weight}`` (default: weight 1 on the first metric).
    metrics
        The metrics, in order (default: as first logged); a metric never logged is all missing.
    missing_conditional
        ``"impute"`` (the arm's mean observed conditional reward) or ``"drop"``.
    """
    if not (missing_reward == "drop" or (isinstance(missing_reward, (int, float))
                                         and not isinstance(missing_reward, bool))):
        raise InvalidLogError(f"missing_reward == {missing_reward!r}, must be 'drop' or a number")
    if missing_conditional not in ("impute", "drop"):
        raise InvalidLogError(f"missing_conditional == {missing_conditional!r}, must be "
                              "'impute' or 'drop'")
    decisions, raw, names, orphans = _join(source, bandit)
    names = list(metrics) if metrics is not None else names
    given = {str(k): str(v) for k, v in (given or {}).items()}
    for pair in given.items():
        for x in pair:
            if x not in names:
                names.append(x)  # declared but never logged: all missing
    if not names:
        raise InvalidLogError("no reward event names a metric: a single-metric log "
                              "(load_event_log reads it)")
    weights = {str(k): float(v) for k, v in (objective or {names[0]: 1.0}).items()}
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise InvalidLogError(f"objective metrics {unknown} are not in the log's metrics "
                              f"{names}")
    base = _build(decisions, {did: 0.0 for did in decisions}, arms, "drop")
    order = _row_order(decisions)
    arm_of = base.actions
    observed = {m: np.array([raw.get((did, m), math.nan) for did in order]) for m in names}
    fill = math.nan if missing_reward == "drop" else float(missing_reward)
    present = {m: np.array([(did, m) in raw for did in order]) for m in names}
    values: dict[str, np.ndarray] = {}
    counts: dict[str, Any] = {"n_decisions": len(order), "orphan_rewards": orphans}
    for m in _given_order(names, given):
        v = observed[m].copy()
        v[~present[m]] = fill
        g = given.get(m)
        c = {"zero_by_given": 0, "imputed": 0}
        if g is not None:
            gv = values[g]
            bad = np.isfinite(gv) & (gv != 0.0) & (gv != 1.0)
            if bad.any():
                raise InvalidLogError(f"metric {m!r} is given {g!r}, whose values must be 0 or "
                                      f"1; found {gv[bad][0]!r}")
            zero, one = gv == 0.0, gv == 1.0
            v[zero] = 0.0
            observed[m][zero] = math.nan  # not observed by the bandit: its given was 0
            v[~np.isfinite(gv)] = math.nan
            c["zero_by_given"] = int(zero.sum())
            gap = one & ~np.isfinite(v)
            if gap.any() and missing_conditional == "impute":
                seen = one & np.isfinite(v)
                for a in np.unique(arm_of[gap]):
                    rows = seen & (arm_of == a)
                    if rows.any():
                        fill_rows = gap & (arm_of == a)
                        v[fill_rows] = v[rows].mean()
                        c["imputed"] += int(fill_rows.sum())
        c["observed"] = int(np.isfinite(observed[m]).sum())
        c["missing"] = int((~np.isfinite(v)).sum())
        values[m] = v
        counts[m] = c
    values = {m: values[m] for m in names}
    obj = np.zeros(len(order))
    for m, w in weights.items():
        obj = obj + w * values[m]
    keep = np.isfinite(obj)
    if not keep.any():
        raise InvalidLogError(f"no decision has every objective metric {sorted(weights)} "
                              "(nothing to evaluate)")
    counts["objective_missing"] = int((~keep).sum())
    data = replace(base.subset(keep), rewards=obj[keep])
    return MetricLog(data, {m: v[keep] for m, v in values.items()},
                     {m: v[keep] for m, v in observed.items()},
                     {m: given.get(m) for m in names}, weights, counts)


def _join(source: str | Path | IO[str] | Iterable[str], bandit: str | None
          ) -> tuple[dict[str, tuple[int, DecisionEvent]], dict[tuple[str, str], float],
                     list[str], int]:
    """Decisions by id, ``{(decision, metric): value}`` (null expiries left out), the metric
    names in order of first appearance and the count of rewards without their decision."""
    decisions: dict[str, tuple[int, DecisionEvent]] = {}
    raw: dict[tuple[str, str], float] = {}
    settled: set[tuple[str, str]] = set()
    names: dict[str, None] = {}
    bandits: set[str] = set()
    orphans = 0
    for lineno, event in _events(source):
        if event.bandit is not None:
            bandits.add(str(event.bandit))
            if bandit is not None and str(event.bandit) != bandit:
                continue
        did = str(_required(event.decision_id, type(event).type, "decision_id", lineno))
        if isinstance(event, DecisionEvent):
            if did in decisions:
                raise InvalidLogError(f"line {lineno}: decision {did!r} logged twice")
            decisions[did] = (lineno, event)
            continue
        if event.metric is None:
            raise InvalidLogError(f"line {lineno}: {type(event).type} event without 'metric' "
                                  "in a log with several metrics")
        metric = str(event.metric)
        names.setdefault(metric, None)
        if did not in decisions:
            orphans += 1
            continue
        if (did, metric) in settled:
            raise InvalidLogError(f"line {lineno}: decision {did!r} has a second {metric!r} "
                                  "reward")
        settled.add((did, metric))
        chose = decisions[did][1].arm
        if event.arm is not None and event.arm != chose:
            raise InvalidLogError(f"line {lineno}: reward for arm {event.arm!r} but decision "
                                  f"{did!r} chose {chose!r}")
        if event.reward is None:
            continue  # expired without a default: nothing observed
        try:
            value = float(event.reward)
        except (TypeError, ValueError):
            raise InvalidLogError(f"line {lineno}: reward {event.reward!r} is not a "
                                  "number") from None
        if not math.isfinite(value):
            raise InvalidLogError(f"line {lineno}: reward {event.reward!r} is not finite")
        raw[(did, metric)] = value
    if bandit is None and len(bandits) > 1:
        raise InvalidLogError(f"the log holds bandits {sorted(bandits)}; pick one with bandit=")
    if not decisions:
        raise InvalidLogError("the log has no decision (nothing to evaluate)")
    return decisions, raw, list(names), orphans


def _row_order(decisions: dict[str, tuple[int, DecisionEvent]]) -> list[str]:
    """Decision ids in the row order of :func:`~.jsonl._build` (timestamp, then line)."""
    from .jsonl import parse_timestamp

    keyed = [(parse_timestamp(_required(ev.timestamp, "decision", "timestamp", ln)), ln, did)
             for did, (ln, ev) in decisions.items()]
    return [did for _, _, did in sorted(keyed)]


def _given_order(names: list[str], given: Mapping[str, str]) -> list[str]:
    """The metrics with every ``given`` before the metrics conditional on it."""
    out: list[str] = []
    visiting: set[str] = set()

    def visit(m: str) -> None:
        if m in out:
            return
        if m in visiting:
            raise InvalidLogError(f"metric {m!r}: 'given' forms a cycle")
        visiting.add(m)
        if m in given:
            visit(given[m])
        visiting.discard(m)
        out.append(m)

    for m in names:
        visit(m)
    return out
