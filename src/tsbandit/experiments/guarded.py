"""The decision of an A/B/n test with guardrails: the stopping rule on the goal, and every
arm's guardrails (:mod:`.guardrails` defines them and computes their probabilities).

An arm wins only when it meets the goal criterion (probability best ``>= prob_best`` or expected
loss ``<= expected_loss``, after ``min_samples`` goal observations per arm) **and** every
guardrail holds for it with probability ``>= level`` (default: the rule's ``prob_best``).
Otherwise the decision says which guardrail blocks which arm, and by how much (the credible
bound past the limit).

Examples
--------
>>> import numpy as np
>>> from tsbandit.experiments import BinaryPosteriors, StoppingRule
>>> goal = BinaryPosteriors.from_counts([100, 160], [1000, 1000], names=["A", "B"])
>>> risk = BinaryPosteriors.from_counts([20, 60], [1000, 1000], names=["A", "B"])
>>> d = evaluate_guardrails(goal, {"risk": risk}, [{"metric": "risk", "max": 0.05}],
...                         StoppingRule(prob_best=0.99))
>>> d.winner, d.blocked[0]["arm"], round(d.blocked[0]["prob"], 3)
(None, 'B', 0.068)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .bayes import ArmEstimate, expected_loss, prob_best
from .guardrails import Guardrail, credible_bound, guardrail_probability
from .posteriors import ArmPosteriors
from .stopping import StoppingRule

__all__ = ["GuardedDecision", "GuardrailCheck", "evaluate_guardrails"]


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail on one arm: its probability of holding and its credible bound."""

    arm: str
    guardrail: Guardrail
    reference: str | None
    prob: float
    stderr: float
    level: float
    bound: float
    holds: bool

    @property
    def margin(self) -> float:
        """How far the credible bound is past the limit (``> 0``: the guardrail fails)."""
        g = self.guardrail
        return self.bound - g.value if g.bound == "max" else g.value - self.bound

    def why(self) -> str:
        """One sentence for a guardrail that fails: its probability and its credible bound."""
        g = self.guardrail
        side = "upper" if g.bound == "max" else "lower"
        past = "above" if g.bound == "max" else "below"
        if g.relative_to is not None and g.lift == "relative":
            bound = f"{100 * self.bound:+.3g}%"
            margin = f"{100 * abs(self.margin):.3g} percentage points"
        else:
            bound, margin = f"{self.bound:.4g}", f"{abs(self.margin):.4g}"
        return (f"{g.describe(self.reference)} holds with probability {self.prob:.4f} < "
                f"{self.level:g} ({100 * self.level:g}% {side} bound {bound}, {margin} {past} "
                "the limit)")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.guardrail.metric, "guardrail": self.guardrail.to_dict(),
                "describe": self.guardrail.describe(self.reference), "prob": self.prob,
                "prob_se": self.stderr, "bound": _num(self.bound), "margin": _num(self.margin),
                "holds": self.holds}


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class GuardedDecision:
    """The stopping rule on the goal, with every arm's guardrails (:func:`evaluate_guardrails`).

    ``checks[k]`` are arm ``k``'s guardrail checks (in the guardrails' order); ``goal_met[k]``
    whether arm ``k`` meets the goal criterion; ``blocked`` lists, for the arms that meet it,
    every guardrail that fails (``arm``, ``metric``, ``describe``, ``prob``, ``needed``,
    ``bound``, ``margin``).
    """

    stop: bool
    winner: str | None
    reason: str
    prob_best: ArmEstimate
    expected_loss: ArmEstimate
    level: float
    goal_met: tuple[bool, ...]
    checks: tuple[tuple[GuardrailCheck, ...], ...]
    blocked: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"stop": self.stop, "winner": self.winner, "reason": self.reason,
                "guardrail_level": self.level, "blocked": [dict(b) for b in self.blocked]}


def evaluate_guardrails(goal: ArmPosteriors, metrics: Mapping[str, ArmPosteriors],
                        guardrails: Sequence[Guardrail | Mapping[str, Any]],
                        rule: StoppingRule | None = None, *, control: int | str = 0,
                        level: float | None = None, rng: np.random.Generator | None = None,
                        draws: int = 200_000, method: str = "exact") -> GuardedDecision:
    """Apply ``rule`` to the goal's posteriors and ``guardrails`` to every arm.

    Parameters
    ----------
    goal
        Posteriors of the goal metric (``K`` arms).
    metrics
        ``{name: posteriors}`` of the guardrail metrics, over the goal's arms in its order.
    guardrails
        :class:`Guardrail` objects or their dicts.
    rule
        Stopping rule on the goal (default ``StoppingRule()``).
    control
        The control arm (index or name) that ``"relative_to": "control"`` refers to.
    level
        Probability a guardrail must hold with (default: ``rule.prob_best``; required when the
        rule has none).
    rng, draws
        Monte Carlo of the goal for more than two arms (as :func:`~.bayes.prob_best`) and of
        the guardrails with ``method="mc"``.
    method
        Guardrail probabilities: ``"exact"`` (default) or ``"mc"``.
    """
    rule = rule if rule is not None else StoppingRule()
    rails = [Guardrail.from_dict(g) for g in guardrails]
    lvl = level if level is not None else rule.prob_best
    if lvl is None:
        if rails:
            raise ConfigurationError("the stopping rule has no prob_best: pass level=, the "
                                     "probability every guardrail must hold with")
        lvl = 0.5  # unused: no guardrail to hold
    if isinstance(lvl, bool) or not isinstance(lvl, (int, float)) or not 0.0 < lvl < 1.0:
        raise ConfigurationError(f"level == {lvl!r}, must be in (0, 1)")
    lvl = float(lvl)
    names = goal.names
    ctrl = _arm_index(control, names, "control")
    checks = _checks(rails, metrics, names, ctrl, lvl, rng, draws, method)
    pb = prob_best(goal, rng=rng, draws=draws)
    el = expected_loss(goal, rng=rng, draws=draws)
    counts = goal.counts()
    enough = bool((counts >= rule.min_samples).all())
    by_prob = (pb.values >= rule.prob_best if rule.prob_best is not None
               else np.zeros(len(names), bool))
    by_loss = (el.values <= rule.expected_loss if rule.expected_loss is not None
               else np.zeros(len(names), bool))
    met = enough & (by_prob | by_loss)
    ok = met & np.array([all(c.holds for c in arm) for arm in checks], dtype=bool)
    blocked = tuple({"arm": c.arm, "metric": c.guardrail.metric,
                     "describe": c.guardrail.describe(c.reference), "prob": c.prob,
                     "needed": lvl, "bound": _num(c.bound), "margin": _num(c.margin),
                     "clearly_broken": c.prob < 1.0 - lvl}
                    for k in np.flatnonzero(met) for c in checks[k] if not c.holds)
    if (ok & by_prob).any():
        w = int(np.flatnonzero(ok & by_prob)[np.argmax(pb.values[ok & by_prob])])
        reason = (f"probability {names[w]!r} is best is {pb.values[w]:.4f} >= "
                  f"{rule.prob_best:g}")
    elif ok.any():
        w = int(np.flatnonzero(ok)[np.argmin(el.values[ok])])
        reason = f"expected loss of {names[w]!r} is {el.values[w]:.3g} <= {rule.expected_loss:g}"
    else:
        reason = _why_not(pb, el, names, rule, counts, met, checks)
        return GuardedDecision(False, None, reason, pb, el, lvl, tuple(bool(m) for m in met),
                               checks, blocked)
    if rails:
        reason += f", and its {len(rails)} guardrail(s) hold with probability >= {lvl:g}"
    return GuardedDecision(True, names[w], reason, pb, el, lvl, tuple(bool(m) for m in met),
                           checks, blocked)


def _arm_index(arm: int | str, names: tuple[str, ...], what: str) -> int:
    if isinstance(arm, str):
        if arm not in names:
            raise ConfigurationError(f"{what} {arm!r} is not an arm; arms: {list(names)}")
        return names.index(arm)
    if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not (
            0 <= arm < len(names)):
        raise ConfigurationError(f"{what} == {arm!r}, must be an arm index in "
                                 f"[0, {len(names)}) or a name")
    return int(arm)


def _checks(rails: list[Guardrail], metrics: Mapping[str, ArmPosteriors],
            names: tuple[str, ...], ctrl: int, lvl: float, rng: np.random.Generator | None,
            draws: int, method: str) -> tuple[tuple[GuardrailCheck, ...], ...]:
    for name, post in metrics.items():
        if tuple(post.names) != tuple(names):
            raise ConfigurationError(f"metric {name!r} has arms {list(post.names)}; the goal "
                                     f"has {list(names)} (same arms, same order)")
    out: list[list[GuardrailCheck]] = [[] for _ in names]
    for g in rails:
        if g.metric not in metrics:
            raise ConfigurationError(f"guardrail on {g.metric!r}: no data for that metric; "
                                     f"metrics with data: {sorted(metrics)}")
        post = metrics[g.metric]
        ref = (None if g.relative_to is None else ctrl if g.relative_to == "control"
               else _arm_index(g.relative_to, names, "relative_to"))
        for k, arm in enumerate(names):
            p, se = guardrail_probability(g, post, k, ref, method=method, rng=rng, draws=draws)
            bound = credible_bound(g, post, k, ref, lvl)
            out[k].append(GuardrailCheck(arm, g, None if ref is None else names[ref], p, se,
                                         lvl, bound, p >= lvl))
    return tuple(tuple(c) for c in out)


def _why_not(pb: ArmEstimate, el: ArmEstimate, names: tuple[str, ...], rule: StoppingRule,
             counts: np.ndarray, met: np.ndarray,
             checks: tuple[tuple[GuardrailCheck, ...], ...]) -> str:
    short = [n for n, c in zip(names, counts, strict=True) if c < rule.min_samples]
    if short:
        return (f"keep going: arms {short} have fewer than min_samples == {rule.min_samples} "
                "observations")
    if not met.any():
        parts = []
        if rule.prob_best is not None:
            parts.append(f"max probability best {pb.values.max():.4f} < {rule.prob_best:g}")
        if rule.expected_loss is not None:
            parts.append(f"min expected loss {el.values.min():.3g} > {rule.expected_loss:g}")
        return "keep going: " + " and ".join(parts)
    out = []
    for k in np.flatnonzero(met):
        crit = (f"P(best) {pb.values[k]:.4f}" if rule.prob_best is not None
                and pb.values[k] >= rule.prob_best else f"expected loss {el.values[k]:.3g}")
        fails = "; ".join(c.why() for c in checks[k] if not c.holds)
        out.append(f"{names[k]!r} meets the goal criterion ({crit}) but {fails}")
    return "no winner: " + " | ".join(out)
