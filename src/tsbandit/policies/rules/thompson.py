"""Thompson sampling: choose the arm (or rank the arms) by one posterior draw each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import Posterior, RewardModel
from ..stats import Stats
from .base import SelectionRule

__all__ = ["ThompsonSampling"]


@dataclass(frozen=True)
class ThompsonSampling(SelectionRule):
    """Thompson sampling (probability matching).

    Each arm's score is one draw from its posterior (of the expected reward given the context);
    the choice is the argmax, a ranking is the descending order of the same draws. Propensities
    are estimated by Monte Carlo.

    >>> import numpy as np
    >>> from tsbandit.policies import BetaBernoulli
    >>> m = BetaBernoulli(); s = m.init_stats(3)
    >>> ThompsonSampling().choose(m, m.posterior(s), s, np.random.default_rng(0)).shape
    (1,)
    """

    kind = "thompson"

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        return model.sample(posterior, rng, contexts, size)
