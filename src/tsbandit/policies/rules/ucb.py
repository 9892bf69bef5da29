"""Upper-confidence-bound rules: UCB1 (counts) and LinUCB (posterior mean + alpha * sd)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import Posterior, RewardModel, check_positive
from ..stats import Stats
from .base import TIE_JITTER, LaneScorer, SelectionRule

__all__ = ["UCB1", "LinUCB"]


@dataclass(frozen=True)
class UCB1(SelectionRule):
    """UCB1 (Auer et al., 2002): empirical mean + ``c * sqrt(2 ln t / n_a)``.

    Arms never pulled score ``+inf`` (each is tried once first, ties at random). Counts come from
    the model's statistics, so discounted statistics give discounted UCB.

    Parameters
    ----------
    c
        Width multiplier (1 is the textbook rule for rewards in [0, 1]).
    """

    c: float = 1.0

    kind = "ucb1"
    deterministic = True
    uses_counts = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", check_positive("c", self.c, allow_zero=True))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        n = model.counts(stats)
        total = n.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = model.reward_sums(stats) / n
            bonus = self.c * np.sqrt(2.0 * np.log(np.maximum(total, 1.0)) / n)
            s = np.where(n > 0, mean + bonus, np.inf)
        if contexts is not None and contexts.ndim > 1:
            s = np.broadcast_to(s, (*contexts.shape[:-1], s.shape[-1]))
        return s if size is None else np.broadcast_to(s, (size, *s.shape))

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        """The index of :meth:`scores` over Beta lanes (``BetaLanes`` with ``counts``), ties
        broken by a pre-drawn jitter far below the resolution of the means."""
        from ..beta_lanes import BetaLanes

        if (type(self).scores is not UCB1.scores or not isinstance(lanes, BetaLanes)
                or lanes.R < 5):
            return None
        c2 = 2.0 * self.c**2
        ready = [False]
        out = lanes.scores[index]
        tmp = np.empty_like(out)
        N, S = lanes.counts(index)
        divide, add, mean = np.divide, np.add, lanes.mean_writer(index)
        k = np.zeros(())  # a 0-d array: NumPy converts a Python float on every call
        tie: list[np.ndarray] = []

        def begin(size: int) -> None:
            tie[:] = [rng.random((size, *out.shape)) * TIE_JITTER]

        def ucb(b: int, m: np.ndarray | None) -> None:
            if m is not None:
                mean(out=m)
            if not ready[0] and not lanes.delayed and bool((N > 0).all()):
                ready[0] = True  # counts only grow: every arm stays tried
            if ready[0] and not lanes.delayed:
                # immediate feedback: t observations in every lane
                k[()] = c2 * math.log(max(lanes.t_obs, 1.0))
                divide(k, N, out=tmp)
                np.sqrt(tmp, out=tmp)
                divide(S, N, out=out)
                add(out, tmp, out=out)
            else:
                tot = N.sum(axis=1, keepdims=True)
                with np.errstate(divide="ignore", invalid="ignore"):
                    val = S / N + np.sqrt(c2 * np.log(np.maximum(tot, 1.0)) / N)
                out[...] = np.where(N > 0, val, np.inf)
            add(out, tie[0][b], out=out)
        return LaneScorer(ucb, begin)


@dataclass(frozen=True)
class LinUCB(SelectionRule):
    """Optimism over the posterior: ``mean + alpha * sd`` of each arm's expected reward.

    With ``LinearGaussian`` this is LinUCB (Li et al., 2010) in its Bayesian form (the width is
    the posterior sd of ``x^T w``); with a context-free model it is a Bayes-UCB-like index.

    Parameters
    ----------
    alpha
        Width multiplier.
    """

    alpha: float = 1.0

    kind = "linucb"
    deterministic = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_positive("alpha", self.alpha, allow_zero=True))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        s = model.mean(posterior, contexts) + self.alpha * model.std(posterior, contexts)
        return s if size is None else np.broadcast_to(s, (size, *s.shape))
