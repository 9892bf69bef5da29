"""Epsilon-greedy and pure greedy (exploit the posterior mean)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import Posterior, RewardModel, check_unit_interval
from ..stats import Stats
from .base import TIE_JITTER, LaneScorer, SelectionRule, mask_scores, position_probabilities, top_k

__all__ = ["EpsilonGreedy", "Greedy"]


def _mean_lane_scorer(lanes: Any, index: int,
                      draw: Callable[[int, tuple[int, int]], np.ndarray]) -> LaneScorer | None:
    """Scores ``mean + jitter`` over Beta lanes, the jitter ``(size, n, K)`` drawn by
    ``draw(size, (n, K))`` for each block (a random tie-break, or the exploration of
    epsilon-greedy)."""
    from ..beta_lanes import BetaLanes

    if not isinstance(lanes, BetaLanes):
        return None
    out = lanes.scores[index]
    add, mean = np.add, lanes.mean_writer(index)
    pre: list[np.ndarray] = []

    def begin(size: int) -> None:
        pre[:] = [draw(size, out.shape)]

    def score(b: int, m: np.ndarray | None) -> None:
        if m is None:
            mean(out=out)
            add(out, pre[0][b], out=out)
        else:
            mean(out=m)
            add(m, pre[0][b], out=out)
    return LaneScorer(score, begin)


def _eligible_count(eligible: np.ndarray | None, n_arms: int) -> np.ndarray | int:
    return n_arms if eligible is None else eligible.sum(axis=-1)


@dataclass(frozen=True)
class EpsilonGreedy(SelectionRule):
    """With probability ``epsilon`` a uniformly random ranking of the eligible arms, otherwise
    the ranking by posterior mean (ties at random). Propensities are exact:
    ``(1 - epsilon) * P_greedy(arm at j) + epsilon / m`` with ``m`` eligible arms.

    Parameters
    ----------
    epsilon
        Exploration probability in [0, 1].
    """

    epsilon: float = 0.1

    kind = "epsilon_greedy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", check_unit_interval("epsilon", self.epsilon))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        s = model.mean(posterior, contexts)
        return s if size is None else np.broadcast_to(s, (size, *s.shape))

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        greedy_scores = mask_scores(self.scores(model, posterior, stats, rng, contexts, size),
                                    eligible)
        explore = rng.random(greedy_scores.shape[:-1]) < self.epsilon
        random_scores = mask_scores(rng.random(greedy_scores.shape), eligible)
        s = np.where(explore[..., None], random_scores, greedy_scores)
        return top_k(s, k, rng)

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        """Over Beta lanes: each block draws, per lane and round, whether to explore and, per
        arm, a uniform score ``2 + u`` (above any mean) when it does, a tie-break jitter when
        it does not."""
        if type(self).choose is not EpsilonGreedy.choose or type(self).scores is not \
                EpsilonGreedy.scores:
            return None

        def draw(size: int, shape: tuple[int, int]) -> np.ndarray:
            explore = rng.random((size, shape[0])) < self.epsilon
            rand = rng.random((size, *shape))
            tie = rng.random((size, *shape)) * TIE_JITTER
            return np.where(explore[:, :, None], 2.0 + rand, tie)
        return _mean_lane_scorer(lanes, index, draw)

    def propensities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                     chosen: np.ndarray, rng: np.random.Generator,
                     contexts: np.ndarray | None = None, eligible: np.ndarray | None = None,
                     n_draws: int = 1000) -> np.ndarray:
        s = mask_scores(self.scores(model, posterior, stats, rng, contexts), eligible)
        m = np.asarray(_eligible_count(eligible, s.shape[-1]), dtype=float)
        greedy = position_probabilities(s, chosen)
        m = m[..., None] if m.ndim else m
        return (1.0 - self.epsilon) * greedy + self.epsilon / m

    def action_probabilities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                             rng: np.random.Generator, contexts: np.ndarray | None = None,
                             eligible: np.ndarray | None = None,
                             n_draws: int = 1000) -> np.ndarray:
        s = mask_scores(self.scores(model, posterior, stats, rng, contexts), eligible)
        ties = s == s.max(axis=-1, keepdims=True)
        elig = np.isfinite(s)
        return ((1.0 - self.epsilon) * ties / ties.sum(axis=-1, keepdims=True)
                + self.epsilon * elig / elig.sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class Greedy(SelectionRule):
    """Always the highest posterior mean (no exploration; ties at random)."""

    kind = "greedy"
    deterministic = True

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        s = model.mean(posterior, contexts)
        return s if size is None else np.broadcast_to(s, (size, *s.shape))

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        """Over Beta lanes: the posterior means plus a tie-break jitter drawn per block."""
        if type(self).scores is not Greedy.scores or type(self).choose is not Greedy.choose:
            return None
        return _mean_lane_scorer(lanes, index,
                                 lambda size, shape: rng.random((size, *shape)) * TIE_JITTER)
