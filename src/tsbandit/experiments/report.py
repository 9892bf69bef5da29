"""One JSON-safe report of an experiment, for the CLI and the service's ``/report`` endpoint.

Examples
--------
>>> from tsbandit.experiments import BinaryPosteriors, experiment_report
>>> post = BinaryPosteriors.from_counts([120, 150], [1000, 1000], names=["A", "B"])
>>> rep = experiment_report(post, intended_split=[1, 1])
>>> [round(a["prob_best"], 4) for a in rep["arms"]], rep["decision"]["winner"], rep["srm"]["status"]
([0.0249, 0.9751], None, 'ok')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bayes import lift_interval
from .guarded import evaluate_guardrails
from .guardrails import Guardrail
from .posteriors import ArmPosteriors
from .srm import srm_check
from .stopping import StoppingRule, evaluate_stopping

__all__ = ["experiment_report"]


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def experiment_report(post: ArmPosteriors, *, rule: StoppingRule | None = None,
                      intended_split: Sequence[float] | None = None,
                      rng: np.random.Generator | None = None, level: float = 0.95,
                      draws: int = 200_000, srm_threshold: float = 0.001,
                      metrics: Mapping[str, ArmPosteriors] | None = None,
                      guardrails: Sequence[Guardrail | Mapping[str, Any]] = (),
                      control: int | str = 0, guardrail_level: float | None = None,
                      guardrail_method: str = "exact") -> dict[str, Any]:
    """Probability best, expected loss, the decision of ``rule`` and the SRM status.

    With ``guardrails`` (and the guardrail metrics' posteriors in ``metrics``) the decision is
    :func:`~.guardrails.evaluate_guardrails`'s: a winner must also keep every guardrail with
    probability ``>= guardrail_level`` (default ``rule.prob_best``).

    Parameters
    ----------
    post
        Posteriors of the arms (:class:`BinaryPosteriors`, :class:`NormalPosteriors`, or
        :func:`posteriors_from_model` for a bandit's model and statistics).
    rule
        Stopping rule (default ``StoppingRule()``: probability best >= 0.99, 100 per arm).
    intended_split
        Intended traffic weights per arm; ``None`` skips the SRM check (``"not_checked"``),
        which is right for a bandit whose allocation adapts on purpose.
    rng
        Needed for more than two arms (Monte-Carlo estimates).
    level
        Credible level of the per-arm and lift intervals.
    metrics, guardrails, control, guardrail_level, guardrail_method
        Guardrail metrics ``{name: posteriors}`` over the same arms, the guardrails, the arm
        ``"relative_to": "control"`` means, the probability they must hold with, and
        ``"exact"`` or ``"mc"`` probabilities (see :mod:`.guardrails`).

    Returns
    -------
    dict
        ``{"format": 1, "metric", "arms": [{"name", "n", "mean", "interval", "prob_best",
        "prob_best_se", "expected_loss", "expected_loss_se"}], "method", "rule", "decision":
        {"stop", "winner", "reason"}, "lift" (two arms only, else None), "srm"}``. The
        winner is ``None`` unless the rule holds. Non-finite numbers become ``None``.
        With guardrails, also ``"goal_met"`` and ``"guardrails"`` (one check per guardrail:
        ``prob``, ``bound``, ``margin``, ``holds``) per arm, ``"guardrails"`` and
        ``"metrics"`` (per metric: kind, per-arm ``n``, ``mean``, ``interval``) at the top,
        and ``"guardrail_level"`` and ``"blocked"`` in the decision.
    """
    rule = rule if rule is not None else StoppingRule()
    decision: Any
    if guardrails:
        decision = evaluate_guardrails(post, metrics or {}, guardrails, rule, control=control,
                                       level=guardrail_level, rng=rng, draws=draws,
                                       method=guardrail_method)
    else:
        decision = evaluate_stopping(post, rule, rng=rng, draws=draws)
    pb, el = decision.prob_best, decision.expected_loss
    lo, hi = post.intervals(level)
    means, counts = post.means(), post.counts()
    arms = [{"name": name, "n": float(counts[k]), "mean": _num(means[k]),
             "interval": [_num(lo[k]), _num(hi[k])], "prob_best": float(pb.values[k]),
             "prob_best_se": float(pb.stderr[k]), "expected_loss": _num(el.values[k]),
             "expected_loss_se": _num(el.stderr[k])} for k, name in enumerate(post.names)]
    lift = None
    if post.n_arms == 2:
        relative = post.marginal(0).cdf(0.0) <= 1e-9
        li = lift_interval(post, 0, 1, level=level, relative=relative)
        lift = {k: (_num(v) if isinstance(v, float) else v) for k, v in li.to_dict().items()}
    if intended_split is None:
        srm: dict[str, Any] = {"status": "not_checked"}
    else:
        srm = srm_check(counts, intended_split, threshold=srm_threshold).to_dict()
    out = {"format": 1, "metric": post.kind, "level": level, "arms": arms,
           "method": pb.method, "draws": pb.draws, "rule": rule.to_dict(),
           "decision": decision.to_dict(), "lift": lift, "srm": srm}
    if guardrails:
        for k, arm in enumerate(arms):
            arm["goal_met"] = decision.goal_met[k]
            arm["guardrails"] = [c.to_dict() for c in decision.checks[k]]
        out["guardrails"] = [Guardrail.from_dict(g).to_dict() for g in guardrails]
        out["guardrail_method"] = guardrail_method
        out["metrics"] = {name: _summary(m, level) for name, m in (metrics or {}).items()}
    return out


def _summary(post: ArmPosteriors, level: float) -> dict[str, Any]:
    lo, hi = post.intervals(level)
    means, counts = post.means(), post.counts()
    return {"kind": post.kind,
            "arms": [{"name": name, "n": float(counts[k]), "mean": _num(means[k]),
                      "interval": [_num(lo[k]), _num(hi[k])]}
                     for k, name in enumerate(post.names)]}
