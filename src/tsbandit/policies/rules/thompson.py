"""Thompson sampling: choose the arm (or rank the arms) by one posterior draw each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigurationError
from ..base import Posterior, RewardModel, check_positive
from ..choice_sample import ChoiceSample
from ..stats import Stats
from .base import LaneScorer, SelectionRule, mask_scores, top_k

__all__ = ["ThompsonSampling"]


@dataclass(frozen=True)
class ThompsonSampling(SelectionRule):
    """Thompson sampling (probability matching), optionally tempered.

    Each arm's score is one draw from its posterior (of the expected reward given the context);
    the choice is the argmax, a ranking is the descending order of the same draws. Propensities
    are estimated by Monte Carlo over independent draws of the same (scaled) posterior, on the
    generator the caller passes (a spawned side stream in :class:`~tsbandit.Bandit` and the
    engine); a choice that is forced (one eligible arm) gets propensity exactly 1.

    ``scale`` multiplies the posterior spread: the draw of arm ``a`` deviates from the
    posterior mean by ``scale`` times what plain Thompson sampling would draw
    (:meth:`~tsbandit.policies.base.RewardModel.sample_scaled`). For Gaussian-weight models
    (linear, logistic) that is an exact draw from the weight posterior with covariance times
    ``scale**2``; for the others it is ``mean + scale * (draw - mean)``, whose standard deviation
    is ``scale`` times the posterior's. ``scale < 1`` explores less, in proportion to the
    remaining uncertainty (Chapelle & Li, 2011, found such scaling to help in practice; it is
    the lab bake-off's winning contextual policy at 0.25); ``scale = 1`` is plain Thompson
    sampling, with exactly the same draws as before the parameter existed.

    Parameters
    ----------
    scale
        Posterior standard-deviation multiplier, finite and > 0 (default 1).

    >>> import numpy as np
    >>> from tsbandit.policies import BetaBernoulli
    >>> m = BetaBernoulli(); s = m.init_stats(3)
    >>> ThompsonSampling().choose(m, m.posterior(s), s, np.random.default_rng(0)).shape
    (1,)
    >>> ThompsonSampling(scale=0.25).to_config()
    {'kind': 'thompson', 'scale': 0.25}
    """

    scale: float = 1.0

    kind = "thompson"

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool):
            raise ConfigurationError(f"scale == {self.scale!r}, must be a number")
        object.__setattr__(self, "scale", check_positive("scale", self.scale))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        if self.scale == 1.0:
            return model.sample(posterior, rng, contexts, size)
        return model.sample_scaled(posterior, rng, self.scale, contexts, size)

    def choice_sample(self, model: RewardModel, posterior: Posterior, stats: Stats,
                      rng: np.random.Generator, eligible: np.ndarray | None = None,
                      n_draws: int = 1000) -> ChoiceSample | None:
        # plain Thompson sampling only: the draws are the model's own, whose density it knows
        if self.scale != 1.0 or type(self).scores is not ThompsonSampling.scores:
            return None
        draws = model.sample(posterior, rng, None, n_draws)
        first = top_k(mask_scores(draws, eligible), 1, rng)[:, 0]
        return ChoiceSample.of(model, posterior, draws, first, eligible)

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        # every batched posterior state draws its own Thompson step (the model's math)
        if type(self).scores is not ThompsonSampling.scores:  # a subclass scores differently
            return None
        thompson = getattr(lanes, "thompson", None)
        return None if thompson is None else thompson(index, rng, self.scale)

    def choose_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                   rng: np.random.Generator, context: np.ndarray | None = None) -> int:
        # the single-decision fast path: the model's draw as Python floats when it has one
        # (same values, same random numbers), and the argmax of top_k's small-K path; or the
        # argmax itself when a compiled kernel found a unique one
        vals = model.sample_argmax_one(posterior, rng, context) if self.scale == 1.0 else None
        if vals is None:
            return int(self.choose(model, posterior, stats, rng, context)[0])
        if isinstance(vals, int):  # the unique maximum, found by a compiled kernel
            return vals
        if len(vals) <= 32:
            best = max(vals)
            if vals.count(best) == 1:
                return vals.index(best)
        return int(top_k(np.array(vals), 1, rng)[0])
