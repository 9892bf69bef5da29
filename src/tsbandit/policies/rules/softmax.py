"""Softmax (Boltzmann) exploration and uniform random choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import Posterior, RewardModel, check_positive
from ..stats import Stats
from .base import LaneScorer, SelectionRule, mask_scores

__all__ = ["RandomPolicy", "Softmax"]


@dataclass(frozen=True)
class Softmax(SelectionRule):
    """Choose arm ``a`` with probability proportional to ``exp(mean_a / temperature)``.

    Rankings are Plackett-Luce draws (Gumbel top-k: the same rule for ``k = 1``). The first
    position's propensity is exact; later positions are Monte-Carlo estimates.

    Parameters
    ----------
    temperature
        Positive temperature; small is greedy, large is uniform.
    """

    temperature: float = 0.1

    kind = "softmax"

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", check_positive("temperature", self.temperature))

    def _probs(self, model: RewardModel, posterior: Posterior,
               contexts: np.ndarray | None, eligible: np.ndarray | None) -> np.ndarray:
        logits = mask_scores(model.mean(posterior, contexts) / self.temperature, eligible)
        logits = logits - logits.max(axis=-1, keepdims=True)
        w = np.exp(logits)
        return w / w.sum(axis=-1, keepdims=True)

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        logits = model.mean(posterior, contexts) / self.temperature
        shape = logits.shape if size is None else (size, *logits.shape)
        return logits + rng.gumbel(size=shape)

    def propensities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                     chosen: np.ndarray, rng: np.random.Generator,
                     contexts: np.ndarray | None = None, eligible: np.ndarray | None = None,
                     n_draws: int = 1000) -> np.ndarray:
        p = self._probs(model, posterior, contexts, eligible)
        first = np.take_along_axis(p, chosen[..., :1], axis=-1)
        if chosen.shape[-1] == 1:
            return first
        mc = super().propensities(model, posterior, stats, chosen, rng, contexts, eligible,
                                  n_draws)
        return np.concatenate([first, mc[..., 1:]], axis=-1)

    def action_probabilities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                             rng: np.random.Generator, contexts: np.ndarray | None = None,
                             eligible: np.ndarray | None = None,
                             n_draws: int = 1000) -> np.ndarray:
        return self._probs(model, posterior, contexts, eligible)


@dataclass(frozen=True)
class RandomPolicy(SelectionRule):
    """Uniformly random choice (and uniformly random rankings) among the eligible arms."""

    kind = "random"

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        shape = stats.batch_shape
        if contexts is not None and model.contextual:
            shape = np.broadcast_shapes(shape, contexts.shape[:-1])
        full = (*shape, stats.n_arms) if size is None else (size, *shape, stats.n_arms)
        return rng.random(full)

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        """Over Beta lanes: uniform scores drawn for each block, as :meth:`scores` draws."""
        from ..beta_lanes import BetaLanes

        if (type(self).scores is not RandomPolicy.scores
                or type(self).choose is not RandomPolicy.choose
                or not isinstance(lanes, BetaLanes)):
            return None
        out, mean = lanes.scores[index], lanes.mean_writer(index)
        pre: list[np.ndarray] = []

        def begin(size: int) -> None:
            pre[:] = [rng.random((size, *out.shape))]

        def score(b: int, m: np.ndarray | None) -> None:
            if m is not None:
                mean(out=m)
            np.copyto(out, pre[0][b])
        return LaneScorer(score, begin)

    def propensities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                     chosen: np.ndarray, rng: np.random.Generator,
                     contexts: np.ndarray | None = None, eligible: np.ndarray | None = None,
                     n_draws: int = 1000) -> np.ndarray:
        m = stats.n_arms if eligible is None else eligible.sum(axis=-1)
        m = np.asarray(m, dtype=float)
        return np.broadcast_to((1.0 / m)[..., None] if m.ndim else 1.0 / m,
                               chosen.shape).astype(float)

    def action_probabilities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                             rng: np.random.Generator, contexts: np.ndarray | None = None,
                             eligible: np.ndarray | None = None,
                             n_draws: int = 1000) -> np.ndarray:
        s = mask_scores(self.scores(model, posterior, stats, rng, contexts), eligible)
        elig = np.isfinite(s)
        return elig / elig.sum(axis=-1, keepdims=True)
