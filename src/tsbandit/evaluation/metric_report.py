"""Off-policy evaluation of every metric and the objective of a several-metric bandit's log.

The target policy's action probabilities are computed **once**, on the log's decisions (a
replayed policy learns from the objective, or, for a saved several-metric bandit, from every
metric as it was observed), and every metric is then estimated with the same estimators on the
rows where its per-decision value is defined (:mod:`.metric_log`), and the objective (the
weighted sum) on all rows. Each estimate is :func:`~.report.evaluate`'s: an estimator's value
per decision, its interval and effective sample size. A single-metric log is evaluated by
:func:`~.report.evaluate` exactly as before; this module is only for logs whose rewards name a
metric.

>>> import numpy as np
>>> from tsbandit.evaluation.targets import UniformPolicy
>>> from tsbandit.evaluation.metric_log import load_metric_log
>>> lines = []
>>> for i in range(40):
...     arm, apply = "AB"[i % 2], int(i % 4 < 2)
...     lines.append(f'{{"type": "decision", "decision_id": "d{i}", "timestamp": {i}, '
...                  f'"arm": "{arm}", "propensity": 0.5}}')
...     lines.append(f'{{"type": "reward", "decision_id": "d{i}", "metric": "apply", '
...                  f'"reward": {apply}}}')
>>> log = load_metric_log(lines)
>>> rep = evaluate_metrics(log, UniformPolicy(), rng=np.random.default_rng(0))
>>> sorted(rep.metrics), round(rep.metrics["apply"].estimates[1].value, 3)  # IPS
(['apply'], 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .base import Estimator
from .metric_log import MetricLog
from .report import EvaluationReport, evaluate, make_estimators
from .targets import TargetPolicy

__all__ = ["MetricEvaluation", "evaluate_metrics"]


@dataclass(frozen=True)
class MetricEvaluation:
    """One target policy's estimates on a several-metric log: the objective and each metric."""

    policy: str
    objective_weights: dict[str, float]
    objective: EvaluationReport
    metrics: dict[str, EvaluationReport]
    given: dict[str, str | None]
    counts: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``objective`` and ``metrics`` are :class:`EvaluationReport` dicts."""
        return {"policy": self.policy, "objective_weights": dict(self.objective_weights),
                "objective": self.objective.to_dict(),
                "metrics": {m: r.to_dict() for m, r in self.metrics.items()},
                "given": dict(self.given), "counts": self.counts, "notes": list(self.notes)}

    def table(self) -> str:
        """Plain-text tables: the objective's, then one per metric."""
        terms = " ".join(f"{'-' if w < 0 else '+'} {abs(w):g} * {m}"
                         for m, w in self.objective_weights.items()).removeprefix("+ ")
        out = [f"objective = {terms} (per decision; {self.objective.log['n_rounds']} decisions)",
               self.objective.table()]
        for m, rep in self.metrics.items():
            g = self.given.get(m)
            c = self.counts.get(m, {})
            what = (f"{m} given {g}: {g} * {m} per decision, 0 when {g} was 0"
                    if g else f"{m} per decision")
            extra = f"; {c['imputed']} imputed" if c.get("imputed") else ""
            out += ["", f"metric {what} ({rep.log['n_rounds']} decisions{extra})", rep.table()]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


def evaluate_metrics(
    log: MetricLog,
    policy: TargetPolicy | np.ndarray,
    *,
    estimators: Sequence[Estimator] | None = None,
    interval: str = "normal",
    level: float = 0.95,
    n_bootstrap: int = 1000,
    rng: np.random.Generator,
    bounds: str | tuple[float, float] | None = "auto",
) -> MetricEvaluation:
    """Estimate the objective and every metric of ``log`` for one target policy.

    ``rng`` is split into independent streams: the target policy's, the objective's and one per
    metric (in ``log.metrics`` order). ``bounds`` applies to each metric's own rewards
    (``"auto"``: ``[0, 1]`` for a 0/1 metric, else its logged range). Estimators as
    :func:`~.report.evaluate` (default :func:`~.report.make_estimators`).
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigurationError("evaluate_metrics needs rng=np.random.default_rng(seed)")
    ests = list(estimators) if estimators is not None else make_estimators()
    policy_rng, obj_rng, *metric_rngs = rng.spawn(2 + len(log.metrics))
    if isinstance(policy, TargetPolicy):
        name = getattr(policy, "name", type(policy).__name__)
        pi_e = np.asarray(policy.action_dist(log.data, policy_rng))
    else:
        name, pi_e = "given", np.asarray(policy, dtype=np.float64)
    kw = {"estimators": ests, "interval": interval, "level": level,
          "n_bootstrap": n_bootstrap, "bounds": bounds}
    objective = evaluate(log.data, pi_e, rng=obj_rng, **kw)  # type: ignore[arg-type]
    reports: dict[str, EvaluationReport] = {}
    notes: list[str] = []
    for m, r in zip(log.metrics, metric_rngs, strict=True):
        data, mask = log.metric_data(m)
        if data.n_rounds < 2:
            notes.append(f"metric {m!r}: {data.n_rounds} decision(s) with a value; not "
                         "estimated")
            continue
        pi = pi_e if pi_e.ndim == 1 else pi_e[mask]
        reports[m] = evaluate(data, pi, rng=r, **kw)  # type: ignore[arg-type]
        reports[m].notes[:] = [f"{m}: {n}" for n in reports[m].notes]
    imputed = {m: c["imputed"] for m, c in log.counts.items()
               if isinstance(c, dict) and c.get("imputed")}
    if imputed:
        notes.append("conditional rewards missing on decisions whose 'given' metric was 1 were "
                     f"imputed with the arm's mean observed value: {imputed} (missing at random "
                     "within an arm; --missing-conditional drop drops them instead, which biases "
                     "every estimate when conversions go missing)")
    return MetricEvaluation(name, dict(log.objective), objective, reports, dict(log.given),
                            dict(log.counts), notes)
