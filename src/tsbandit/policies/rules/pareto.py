"""Pareto Thompson sampling: an arm at random from the Pareto front of one draw of every metric.

Each decision draws every metric's posterior once, takes each objective metric's per-decision
value (``P(given) * E[metric | given]``, signed by the sign of its objective weight so that
higher is better) and picks uniformly among the arms no other arm dominates. A ranking (top-k)
peels fronts: the first front in random order, then the second, and so on.

>>> import numpy as np
>>> from tsbandit.policies.metrics import MetricSet
>>> ms = MetricSet({"click": "beta", "buy": "beta"}, objective={"click": 1, "buy": 1})
>>> s = ms.init_stats(3)
>>> ParetoThompson().choose(ms, ms.posterior(s), s, np.random.default_rng(0), k=3).shape
(3,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigurationError
from .. import _jit
from .. import _metrics_kernels as _mk
from ..base import Posterior, RewardModel, check_positive
from ..metrics import MetricSet
from ..stats import Stats
from .base import SelectionRule

__all__ = ["ParetoThompson", "pareto_rank"]


def pareto_rank(values: np.ndarray) -> np.ndarray:
    """Front number ``(..., K)`` (0: non-dominated) of values ``(M, ..., K)``, higher better.

    >>> pareto_rank(np.array([[1.0, 0.0, 0.5], [1.0, 1.0, 0.4]])).tolist()
    [0, 1, 1]
    """
    v = np.moveaxis(values, 0, -1)                        # (..., K, M)
    ge = (v[..., None, :, :] >= v[..., :, None, :]).all(-1)  # [i, j]: j >= i everywhere
    gt = (v[..., None, :, :] > v[..., :, None, :]).any(-1)
    dom = ge & gt                                         # [i, j]: j dominates i
    rank = np.full(v.shape[:-1], -1)
    left = np.ones(v.shape[:-1], dtype=bool)
    for r in range(v.shape[-2]):
        if not left.any():
            break
        beaten = (dom & left[..., None, :]).any(-1)
        front = left & ~beaten
        rank[front] = r
        left &= ~front
    return rank


@dataclass(frozen=True)
class ParetoThompson(SelectionRule):
    """An arm at random from the Pareto front of the drawn objective metrics.

    Parameters
    ----------
    scale
        Posterior spread multiplier (tempering), as :class:`ThompsonSampling`.
    """

    scale: float = 1.0

    kind = "pareto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_positive("scale", self.scale))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        """Minus the front number of each arm in one draw (ties broken by :meth:`choose`)."""
        ms = _metric_set(model)
        draws = ms.sample_metrics(posterior, rng, contexts, size, self.scale)
        on = np.flatnonzero(ms.weights)
        vals = ms.values(draws)[on] * np.sign(ms.weights[on]).reshape(-1, *[1] * (draws.ndim - 1))
        return -pareto_rank(vals).astype(float)

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        s = self.scores(model, posterior, stats, rng, contexts, size)
        if eligible is not None:
            s = np.where(eligible, s, -np.inf)
        return np.lexsort((rng.random(s.shape), -s), axis=-1)[..., :k]

    def choose_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                   rng: np.random.Generator, context: np.ndarray | None = None) -> int:
        """:meth:`choose` for one user among all arms, ``k = 1``: the same draws (every
        metric's, then ``K`` uniforms, in one compiled call when the constrained rule's kernel
        draws these metrics: :mod:`~.._metrics_kernels`) and the same arm -- the front's arm
        with the lowest uniform -- in Python floats."""
        ms = _metric_set(model)
        if self.scale != 1.0 or ms.contextual or stats.batch_ndim:
            return int(self.choose(model, posterior, stats, rng, context)[0])
        plan = self._plan(ms)
        jit = _jit.kernels() if plan is not None else None
        out = (None if plan is None or jit is None or jit.metrics_draw is None else
               _mk.run(jit, self, plan, posterior, stats, rng))
        if out is not None:  # the kernel's values: the draws times their given's values
            D = out[1]
            vals = D[len(ms.models):2 * len(ms.models)].tolist()
            tie = D[-1].tolist()
        else:
            draws: list[list[float]] = []
            for m, p in zip(ms.models, posterior.parts, strict=True):
                one = m.sample_one(p, rng, context)
                draws.append(one if one is not None else m.sample(p, rng, context).tolist())
            vals = [[]] * len(draws)
            for i in ms.order:
                g = ms.given[i]
                vals[i] = draws[i] if g is None else [a * b for a, b in
                                                       zip(draws[i], vals[g], strict=True)]
            tie = rng.random(len(draws[0])).tolist()
        n_arms = len(tie)
        signs = np.sign(ms.weights).tolist()
        on = [[x * signs[i] for x in vals[i]] for i in range(len(vals)) if signs[i]]
        # never empty: dominance is acyclic, and an arm with a NaN value neither dominates
        # nor is dominated
        return min(_front_one(on, n_arms), key=tie.__getitem__)

    def _plan(self, ms: MetricSet) -> _mk.Plan | None:
        """The compiled draw's plan (no constraints), kept for the last metric set."""
        hit = self.__dict__.get("_last_plan")
        if hit is not None and hit[0] is ms:
            return hit[1]
        plan = None if ms.packing is None else _mk.Plan(ms)
        object.__setattr__(self, "_last_plan", (ms, plan))
        return plan


def _front_one(vals: list[list[float]], n_arms: int) -> list[int]:
    """The arms no other arm dominates in one decision's values ``(M', K)`` (higher better),
    in Python floats: :func:`pareto_rank`'s front 0 (the same comparisons, NaN included)."""
    front = []
    for j in range(n_arms):
        dominated = False
        for i in range(n_arms):
            ge, gt = True, False
            for v in vals:
                a, b = v[i], v[j]
                if not a >= b:
                    ge = False
                    break
                if a > b:
                    gt = True
            if ge and gt:
                dominated = True
                break
        if not dominated:
            front.append(j)
    return front


def _metric_set(model: RewardModel) -> MetricSet:
    if not isinstance(model, MetricSet):
        raise ConfigurationError("ParetoThompson needs a MetricSet model")
    return model
