"""The report of a bandit with several metrics: its objective read as an A/B/n experiment, with
every metric's posterior and each constraint's probability of holding.

What the single-metric report gives for the reward, this gives for the **objective**
(``sum_m w_m value_m - cost``, a ``given`` metric's value being ``P(given) * E[metric |
given]``), by Monte Carlo over joint draws of every metric's posterior -- the objective of a
product of posteriors has no closed form, so ``method`` is always ``"monte_carlo"``:

``prob_best``
    The probability that the arm has the highest objective **among the arms whose constraints
    hold in the same draw** (without constraints: among all arms). Draws where no arm passes
    count for none, so these may sum to less than 1.
``expected_loss``
    ``E[M - X_k]``: objective units given up, in expectation, by shipping arm ``k`` rather than
    the best arm that passes (``M``: the highest objective among the arms passing in that draw,
    the highest overall when none does).
``prob_feasible``
    The probability that every constraint of the arm holds (one joint draw).

Constraint metrics are drawn from the posterior the bandit's rule decides with (binary
constraint metrics with the prior pooled across arms, :class:`~tsbandit.policies.rules.
ConstrainedThompson`), so ``prob_feasible`` and each constraint's ``probability`` are those of
``GET /v1/bandits/{name}/stats``. The stopping rule is applied to ``prob_best`` and
``expected_loss``, and a winner must also pass its constraints with probability at least the
rule's ``prob_best`` (0.95 for a rule with only an expected-loss threshold): an experiment
with guardrails declares a winner only when its guardrails hold.

>>> import numpy as np
>>> from tsbandit.engine import Engine, bandit_spec
>>> engine = Engine.open("memory://", seed=0)
>>> _ = engine.create_bandit(bandit_spec("ab", ["A", "B"], metrics={
...     "apply": "beta", "risk": {"model": "beta", "given": "apply"}},
...     constraints=[{"metric": "risk", "max": 0.5}]))
>>> for i in range(400):  # A converts 1 in 4, B 1 in 2; nobody defaults
...     d = engine.decide("ab", eligible=["AB"[i % 2]])
...     applied = int(i % 4 == 1 or i % 8 == 0)
...     _ = engine.record_reward(d.decision_id, {"apply": applied, **(
...         {"risk": 0} if applied else {})})
>>> rep = engine.report("ab", rng=np.random.default_rng(0), srm=False)
>>> rep["metric"], rep["decision"]["winner"], rep["arms"][1]["prob_feasible"] > 0.99
('objective', 'B', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies.metrics import MetricSet
from ..policies.rules import SelectionRule
from ..policies.rules.constrained import ConstrainedThompson
from ..policies.stats import Stats
from .stopping import StoppingRule

__all__ = ["GUARD_WITHOUT_PROB_BEST", "metric_report"]

#: constraints a winner must pass, with this probability, under a rule without ``prob_best``
GUARD_WITHOUT_PROB_BEST = 0.95
_CHUNK = 20_000


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _metrics(ms: MetricSet, post: Any, stats: Stats, arms: Sequence[str],
             level: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (name, m) in enumerate(zip(ms.names, ms.models, strict=True)):
        p = post.parts[i]
        mean = np.asarray(m.mean(p))
        lo, hi = m.interval(p, level)
        n = m.counts(ms.part(stats, i))
        out[name] = {a: {"mean": _num(mean[j]), "low": _num(lo[j]), "high": _num(hi[j]),
                         "n": float(n[j])} for j, a in enumerate(arms)}
    return out


def _draws(ms: MetricSet, rule: SelectionRule, post: Any, stats: Stats,
           rng: np.random.Generator, draws: int, k: int) -> dict[str, np.ndarray]:
    """Per-arm Monte-Carlo sums: wins, loss, loss^2 (objective), feasible, and each
    constraint's holds (``(C, K)``)."""
    cons = rule if isinstance(rule, ConstrainedThompson) and rule.constraints else None
    cpost = cons.constraint_posterior(ms, post, stats) if cons is not None else None
    n_c = len(cons.constraints) if cons is not None else 0
    acc = {"wins": np.zeros(k), "loss": np.zeros(k), "loss2": np.zeros(k),
           "feasible": np.zeros(k), "holds": np.zeros((n_c, k)), "none": np.zeros(1)}
    done = 0
    while done < draws:
        m = min(_CHUNK, draws - done)
        x = ms.sample(post, rng, None, m)  # (m, K) objective
        if cons is not None and cpost is not None:
            held = np.asarray(cons.margins(ms, ms.sample_metrics(cpost, rng, None, m)) >= 0)
            ok = np.asarray(held.all(axis=0))  # (m, K): every constraint (C, m, K) holds
            acc["holds"] += held.sum(axis=1)
        else:
            ok = np.ones_like(x, dtype=bool)
        acc["feasible"] += ok.sum(axis=0)
        any_ok = ok.any(axis=1)
        masked = np.where(ok, x, -np.inf)
        best = masked.argmax(axis=1)
        acc["wins"] += np.bincount(best[any_ok], minlength=k)
        acc["none"] += (~any_ok).sum()
        top = np.where(any_ok, masked.max(axis=1), x.max(axis=1))[:, None]
        gap = top - x
        acc["loss"] += gap.sum(axis=0)
        acc["loss2"] += (gap * gap).sum(axis=0)
        done += m
    return acc


def _lift(ms: MetricSet, post: Any, rng: np.random.Generator, arms: Sequence[str],
          level: float, draws: int) -> dict[str, Any]:
    """Monte-Carlo interval of ``X_treatment - X_control`` (two arms)."""
    x = ms.sample(post, rng, None, min(draws, 200_000))
    diff = x[:, 1] - x[:, 0]
    q = (1.0 - level) / 2.0
    low, med, high = np.quantile(diff, [q, 0.5, 1.0 - q])
    return {"control": arms[0], "treatment": arms[1], "level": level, "low": _num(low),
            "median": _num(med), "high": _num(high),
            "prob_positive": float((diff > 0).mean()), "relative": False}


def metric_report(spec: Any, stats: Stats, *, rule: StoppingRule | None = None,
                  level: float = 0.95, draws: int = 100_000,
                  rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The report of a bandit with several metrics (its specification ``spec``: ``arms``, a
    :class:`~tsbandit.policies.metrics.MetricSet` ``model`` and its ``rule``) over its
    statistics ``stats``: the fields of the single-metric report (``metric ==
    "objective"``), each arm's ``prob_feasible``, and ``metrics``, ``objective`` (weights,
    costs) and ``constraints`` (each one's probability of holding per arm). No SRM part: the
    caller adds it.

    Raises :class:`ConfigurationError` for contextual metrics (no per-arm posterior to
    compare) or fewer than two arms.
    """
    ms = spec.model
    if not isinstance(ms, MetricSet):
        raise ConfigurationError("metric_report needs a bandit with several metrics")
    if ms.contextual:
        raise ConfigurationError("no report for contextual metrics: their posteriors depend "
                                 "on the context")
    arms = list(spec.arms)
    k = len(arms)
    if k < 2:
        raise ConfigurationError(f"a report compares at least 2 arms, got {k}")
    if isinstance(draws, bool) or int(draws) != draws or draws < 100:
        raise ConfigurationError(f"draws == {draws!r}, must be an integer >= 100")
    draws = int(draws)
    rule = rule if rule is not None else StoppingRule()
    rng = rng if rng is not None else np.random.default_rng()
    post = ms.posterior(stats)
    acc = _draws(ms, spec.rule, post, stats, rng, draws, k)
    pb = acc["wins"] / draws
    pb_se = np.sqrt(pb * (1.0 - pb) / draws)
    el = acc["loss"] / draws
    el_se = np.sqrt(np.maximum(acc["loss2"] / draws - el * el, 0.0) / draws)
    feasible = acc["feasible"] / draws
    counts = ms.counts(stats)
    means = ms.mean(post)
    lo, hi = ms.interval(post, level)
    decision = _decide(rule, pb, el, counts, feasible, arms, bool(acc["holds"].size))
    constraints = []
    cons = spec.rule.constraints if isinstance(spec.rule, ConstrainedThompson) else ()
    for c, held in zip(cons, acc["holds"], strict=True):
        row = dict(c)
        if row.get("relative_to") is not None:
            row["relative_to"] = arms[row["relative_to"]]
        row["probability"] = {a: float(held[j] / draws) for j, a in enumerate(arms)}
        constraints.append(row)
    return {
        "format": 1, "metric": "objective", "level": level,
        "arms": [{"name": a, "n": float(counts[j]), "mean": _num(means[j]),
                  "interval": [_num(lo[j]), _num(hi[j])], "prob_best": float(pb[j]),
                  "prob_best_se": float(pb_se[j]), "expected_loss": _num(el[j]),
                  "expected_loss_se": _num(el_se[j]), "prob_feasible": float(feasible[j])}
                 for j, a in enumerate(arms)],
        "method": "monte_carlo", "draws": draws, "rule": rule.to_dict(), "decision": decision,
        "lift": _lift(ms, post, rng, arms, level, draws) if k == 2 else None,
        "prob_none_feasible": float(acc["none"][0] / draws),
        "objective": {"weights": ms.objective,
                      "costs": {a: float(ms.costs[j]) if ms.costs.size else 0.0
                                for j, a in enumerate(arms)}},
        "metrics": _metrics(ms, post, stats, arms, level),
        "constraints": constraints,
    }


def _decide(rule: StoppingRule, pb: np.ndarray, el: np.ndarray, counts: np.ndarray,
            feasible: np.ndarray, arms: Sequence[str], constrained: bool) -> dict[str, Any]:
    stop, winner, by_loss = rule.check(pb, el, counts)
    guard = rule.prob_best if rule.prob_best is not None else GUARD_WITHOUT_PROB_BEST
    w = int(winner)
    if bool(stop):
        if constrained and feasible[w] < guard:
            return {"stop": False, "winner": None,
                    "reason": f"keep going: {arms[w]!r} leads, but its constraints hold with "
                              f"probability {feasible[w]:.4f} < {guard:g}"}
        if bool(by_loss):
            reason = (f"expected loss of {arms[w]!r} is {el[w]:.3g} <= "
                      f"{rule.expected_loss:g}")
        else:
            reason = f"probability {arms[w]!r} is best is {pb[w]:.4f} >= {rule.prob_best:g}"
        if constrained:
            reason += f"; its constraints hold with probability {feasible[w]:.4f}"
        return {"stop": True, "winner": arms[w], "reason": reason}
    short = [a for a, c in zip(arms, counts, strict=True) if c < rule.min_samples]
    if short:
        return {"stop": False, "winner": None,
                "reason": f"keep going: arms {short} have fewer than min_samples == "
                          f"{rule.min_samples} observations"}
    parts = []
    if rule.prob_best is not None:
        parts.append(f"max probability best {pb.max():.4f} < {rule.prob_best:g}")
    if rule.expected_loss is not None:
        parts.append(f"min expected loss {el.min():.3g} > {rule.expected_loss:g}")
    return {"stop": False, "winner": None, "reason": "keep going: " + " and ".join(parts)}
