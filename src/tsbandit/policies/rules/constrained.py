"""Constrained Thompson sampling over several metrics (Daulton et al., 2019), with a pooled prior.

Every decision draws every metric's posterior once (:meth:`~..metrics.MetricSet.
sample_metrics`), keeps the arms whose *drawn* constraint values pass (``risk <= 0.05``, or
relative to a baseline arm: ``risk_a - risk_baseline <= 0.01``), and takes the argmax of the
drawn objective among them. When no arm passes: the baseline arm if one is named, else the arm
most likely to pass (its posterior probability of passing, normal approximation). A ranking
(top-k) puts passing arms first by objective, then the others by probability of passing.

The lock-on problem and the pooled prior. With a flat ``Beta(1, 1)`` prior on a binary
constraint metric observed only ``given`` a conversion (default risk given an application),
an arm with no data passes ``risk <= 0.05`` with probability 0.05: the prior, not data, says
it is infeasible, and an arm that rarely converts rarely gets the data that would say
otherwise, so plain constrained TS locks onto whichever feasible arm it learned first. With
``pool = w > 0`` (the default, 2) a *binary* constraint metric's prior is pooled across arms
(empirical Bayes): ``Beta(w m, w (1 - m))`` with ``m`` the rate over all arms' observations
(shrunk to the configured prior's mean), replacing the configured prior once some arm has data.
An arm without data then passes about as often as the arms of the bandit do, and ``w`` pseudo-
observations yield quickly to its own data. Additive statistics make it free: the pooled
counts are the sums over the arm axis. ``pool = 0`` is plain constrained TS.

>>> import numpy as np
>>> from tsbandit.policies.metrics import MetricSet
>>> ms = MetricSet({"apply": "beta", "risk": {"model": "beta", "given": "apply"}},
...                objective={"apply": 1.0})
>>> rule = ConstrainedThompson(({"metric": "risk", "max": 0.05},))
>>> s = ms.init_stats(3)
>>> rule.choose(ms, ms.posterior(s), s, np.random.default_rng(0)).shape
(1,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..._scipy import ndtr
from ...errors import ConfigurationError
from ..base import Posterior, RewardModel, check_positive
from ..metrics import MetricSet
from ..stats import Stats
from .base import SelectionRule

__all__ = ["ConstrainedThompson", "check_constraint"]

#: what a decision applied: the constrained argmax, the baseline, the most likely to pass
APPLIED = ("constrained", "baseline", "most_likely")


def check_constraint(c: Mapping[str, Any], n_arms: int | None = None) -> dict[str, Any]:
    """A constraint as ``{"metric", "max" | "min", "relative_to"?}`` (an arm index), or a
    :class:`ConfigurationError` naming what is wrong."""
    if not isinstance(c, Mapping) or "metric" not in c:
        raise ConfigurationError(f"constraint {c!r} needs a 'metric'")
    bad = set(c) - {"metric", "max", "min", "relative_to"}
    bounds = [k for k in ("max", "min") if k in c]
    if bad or len(bounds) != 1:
        raise ConfigurationError(f"constraint {dict(c)!r}: give 'metric' and one of 'max' or "
                                 "'min' (and optionally 'relative_to', an arm)")
    value = c[bounds[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigurationError(f"constraint on {c['metric']!r}: {bounds[0]} == {value!r}, "
                                 "must be a finite number")
    rel = c.get("relative_to")
    if rel is not None and (isinstance(rel, bool) or not isinstance(rel, int)
                            or (n_arms is not None and not 0 <= rel < n_arms)):
        raise ConfigurationError(f"constraint on {c['metric']!r}: relative_to == {rel!r}, "
                                 "must be an arm")
    return {"metric": str(c["metric"]), bounds[0]: float(value),
            **({} if rel is None else {"relative_to": int(rel)})}


@dataclass(frozen=True)
class ConstrainedThompson(SelectionRule):
    """Argmax of the drawn objective among arms whose drawn constraints pass.

    Parameters
    ----------
    constraints
        ``({"metric": "risk", "max": 0.05}, {"metric": "nps", "min": 0.0, "relative_to": 0})``
        (``relative_to`` is an arm index: the bound is on the difference to that arm).
    baseline
        Arm index chosen when no arm passes (default: the arm most likely to pass).
    pool
        Pseudo-observations of the prior pooled across arms for binary constraint metrics
        (0: the configured prior, plain constrained TS).
    scale
        Posterior spread multiplier (tempering), as :class:`ThompsonSampling`.
    """

    constraints: tuple[Mapping[str, Any], ...] = ()
    baseline: int | None = None
    pool: float = 2.0
    scale: float = 1.0

    kind = "constrained"

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints",
                           tuple(check_constraint(c) for c in self.constraints))
        b = self.baseline
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ConfigurationError(f"baseline == {b!r}, must be an arm index")
        object.__setattr__(self, "pool", check_positive("pool", self.pool, allow_zero=True))
        object.__setattr__(self, "scale", check_positive("scale", self.scale))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "constraints": [dict(c) for c in self.constraints],
                "baseline": self.baseline, "pool": self.pool, "scale": self.scale}

    def check_model(self, model: RewardModel) -> MetricSet:
        """The model as a :class:`MetricSet` whose metrics the constraints name."""
        if not isinstance(model, MetricSet):
            raise ConfigurationError(f"{type(self).__name__} needs a MetricSet model")
        for c in self.constraints:
            model.index(c["metric"])
        return model

    # ----- the draws ----------------------------------------------------------------------
    def constraint_posterior(self, model: MetricSet, posterior: Posterior, stats: Stats
                             ) -> Posterior:
        """The posterior the constraints are drawn from: binary metrics' priors pooled."""
        if self.pool == 0.0:
            return posterior
        parts = list(posterior.parts)
        for i in {model.index(c["metric"]) for c in self.constraints}:
            m = model.models[i]
            if m.kind != "beta":
                continue
            s = model.part(stats, i)
            succ, fail = s["successes"], s["failures"]
            a0, b0 = m.alpha0, m.beta0  # type: ignore[attr-defined]
            ssum = succ.sum(axis=-1, keepdims=True)
            n = ssum + fail.sum(axis=-1, keepdims=True)
            rate = (a0 + ssum) / (a0 + b0 + n)
            pa = np.where(n > 0, self.pool * rate, a0)
            pb = np.where(n > 0, self.pool * (1.0 - rate), b0)
            parts[i] = m.posterior(s)
            parts[i].params[0] = np.maximum(pa, 0.05) + succ
            parts[i].params[1] = np.maximum(pb, 0.05) + fail
        return replace(posterior, parts=tuple(parts))

    def margins(self, model: MetricSet, draws: np.ndarray) -> np.ndarray:
        """Each constraint's drawn slack ``(C, ..., K)``: >= 0 where it passes."""
        out = []
        for c in self.constraints:
            v = draws[model.index(c["metric"])]
            rel = c.get("relative_to")
            if rel is not None:
                v = v - v[..., rel:rel + 1]
            out.append(c["max"] - v if "max" in c else v - c["min"])
        return np.stack(out) if out else np.zeros((0, *draws.shape[1:]))

    def pass_probability(self, model: MetricSet, posterior: Posterior,
                         contexts: np.ndarray | None = None) -> np.ndarray:
        """Posterior probability ``(C, *batch, K)`` that each constraint holds (normal
        approximation of each metric's posterior; a difference for relative constraints)."""
        out = []
        for c in self.constraints:
            i = model.index(c["metric"])
            m, p = model.models[i], posterior.parts[i]
            mu, sd = np.asarray(m.mean(p, contexts)), np.asarray(m.std(p, contexts))
            rel = c.get("relative_to")
            if rel is not None:
                mu = mu - mu[..., rel:rel + 1]
                sd = np.sqrt(sd**2 + np.where(np.arange(mu.shape[-1]) == rel, 0, 1)
                             * sd[..., rel:rel + 1] ** 2)
            slack = c["max"] - mu if "max" in c else mu - c["min"]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(sd > 0, slack / sd, np.where(slack >= 0, np.inf, -np.inf))
            out.append(ndtr(z))
        return np.stack(out) if out else np.ones((0,))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        """The drawn objective (constraints ignored; :meth:`choose` applies them)."""
        ms = self.check_model(model)
        return ms.objective_of(ms.sample_metrics(posterior, rng, contexts, size, self.scale))

    def explain(self, model: RewardModel, posterior: Posterior, stats: Stats,
                rng: np.random.Generator, contexts: np.ndarray | None = None,
                eligible: np.ndarray | None = None, k: int = 1, size: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Chosen arms ``(..., k)`` and what applied ``(...)``: an index into
        ``APPLIED`` (0 the constrained argmax, 1 the baseline, 2 the most likely to pass)."""
        ms = self.check_model(model)
        draws = ms.sample_metrics(posterior, rng, contexts, size, self.scale)
        obj = ms.objective_of(draws)
        cpost = self.constraint_posterior(ms, posterior, stats)
        if cpost is not posterior and self.constraints:
            # constraint metrics drawn again from their pooled posterior (same stream)
            cdraws = ms.sample_metrics(cpost, rng, contexts, size, self.scale)
        else:
            cdraws = draws
        passing = (self.margins(ms, cdraws) >= 0).all(axis=0)
        likely = self.pass_probability(ms, cpost, contexts).prod(axis=0)
        likely = np.broadcast_to(likely, obj.shape)
        if self.baseline is not None:
            likely = np.where(np.arange(obj.shape[-1]) == self.baseline, 2.0, likely)
        tier = passing.astype(float)
        if eligible is not None:
            passing = passing & eligible
            tier = np.where(eligible, tier, -1.0)
        key = np.where(passing, obj, likely)
        order = np.lexsort((rng.random(obj.shape), -key, -tier), axis=-1)
        chosen = order[..., :k]
        top_passes = np.take_along_axis(passing, chosen[..., :1], axis=-1)[..., 0]
        at_base = chosen[..., 0] == (-1 if self.baseline is None else self.baseline)
        applied = np.where(top_passes, 0, np.where(at_base, 1, 2))
        return chosen, applied

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        return self.explain(model, posterior, stats, rng, contexts, eligible, k, size)[0]
