"""The selection-rule contract and the shared machinery (masking, random tie-breaks, top-k).

A selection rule turns a model's posterior into a choice (``k = 1``) or a ranking (``k > 1``)
of arms, for a batch of users or simulated trials at once, and reports the probability of what
it chose (its *propensity*), which off-policy evaluation needs. Subclasses supply ``scores``;
deterministic rules get exact, tie-aware propensities here, stochastic ones a Monte-Carlo
estimate on the generator they are given (callers pass a spawned stream, so asking for a
propensity never shifts the decisions).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..base import Posterior, RewardModel
from ..stats import Stats

if TYPE_CHECKING:
    from ..choice_sample import ChoiceSample

__all__ = [
    "TIE_JITTER",
    "LaneScorer",
    "SelectionRule",
    "batch_propensities",
    "lanes_argmax",
    "mask_scores",
    "position_probabilities",
    "top_k",
]


#: random tie-breaking jitter added to posterior means over batched lanes: far below the
#: smallest difference of two distinct means a/(a+b) with counts under 10^5 (about 1e-10)
TIE_JITTER = 1e-13


def _no_block(size: int) -> None:
    """A scorer that draws nothing ahead."""


@dataclass(frozen=True)
class LaneScorer:
    """A rule's scoring step over one policy's lanes of a batched posterior state.

    ``score`` writes (or returns) the lanes' scores, whose row-wise arg-max is the choice; its
    arguments are those of the state's own step (:meth:`.BetaLanes.thompson`,
    :meth:`.GaussianLanes.thompson`). ``begin(size)`` runs before each block of ``size``
    rounds, to draw the block's randomness in one call.
    """

    score: Callable[..., Any]
    begin: Callable[[int], None] = _no_block


def lanes_argmax(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Each lane's choice: the row-wise arg-max of ``scores`` ``(L, K)`` (NumPy's rule: the
    first maximum, or the first NaN), into ``out`` ``(L,)`` when given.

    Batched lanes need no random tie-break (unlike :func:`top_k`): posterior draws tie with
    probability 0, and the rules whose scores can tie add :data:`TIE_JITTER` drawn per block.

    >>> lanes_argmax(np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.7]])).tolist()
    [1, 0]
    """
    return scores.argmax(axis=1, out=out)


def mask_scores(scores: np.ndarray, eligible: np.ndarray | None) -> np.ndarray:
    """Scores with ineligible arms set to ``-inf`` (never chosen)."""
    if eligible is None:
        return scores
    return np.where(eligible, scores, -np.inf)


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``k`` highest scores along the last axis, ties broken at random.

    Returns ``(*batch, k)`` int. For ``k == 1`` random numbers are drawn only when a tie exists.

    >>> import numpy as np
    >>> top_k(np.array([[0.1, 0.9, 0.5]]), 2, np.random.default_rng(0)).tolist()
    [[1, 2]]
    """
    if k == 1 and scores.ndim == 1 and scores.shape[0] <= 32:
        # one user, few arms: plain Python on the list beats three NumPy calls
        vals = scores.tolist()
        best = max(vals)
        if vals.count(best) == 1:
            return np.array([vals.index(best)])
    if k == 1 and scores.ndim == 1:
        i = int(scores.argmax())
        ties = scores == scores[i]
        if np.count_nonzero(ties) == 1:
            return np.array([i])
        return np.array([int(np.argmax(np.where(ties, rng.random(scores.shape), -1.0)))])
    if k == 1:
        best = scores.max(axis=-1, keepdims=True)
        ties = scores == best
        if ties.sum(axis=-1).max() <= 1:
            return np.argmax(scores, axis=-1)[..., None]
        noise = np.where(ties, rng.random(scores.shape), -1.0)
        return np.argmax(noise, axis=-1)[..., None]
    order = np.lexsort((rng.random(scores.shape), -scores), axis=-1)
    return order[..., :k]


def position_probabilities(scores: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Exact propensities of a deterministic ranking with random tie-breaks.

    The arm at position ``j`` belongs to a tie group of ``g`` arms that occupies positions
    ``[above, above + g)``; a uniformly random order within the group puts it at ``j`` with
    probability ``1/g`` (and never outside that range).
    """
    s_ch = np.take_along_axis(scores, chosen, axis=-1)                     # (*b, k)
    above = (scores[..., None, :] > s_ch[..., :, None]).sum(axis=-1)        # (*b, k)
    group = (scores[..., None, :] == s_ch[..., :, None]).sum(axis=-1)
    j = np.arange(chosen.shape[-1])
    inside = (j >= above) & (j < above + group)
    return np.where(inside, 1.0 / np.maximum(group, 1), 0.0)


class SelectionRule(ABC):
    """Base class of selection rules. Subclasses are frozen dataclasses of hyper-parameters."""

    kind: ClassVar[str]
    #: True when the choice is a function of the scores (only ties are random)
    deterministic: ClassVar[bool] = False
    #: True when the rule scores from pull counts and reward sums (batched Beta lanes then
    #: keep them: ``BetaLanes(counts=True)``)
    uses_counts: ClassVar[bool] = False

    def to_config(self) -> dict[str, Any]:
        """JSON-safe hyper-parameters, ``{"kind": ..., ...}``."""
        from dataclasses import asdict, is_dataclass

        cfg: dict[str, Any] = asdict(self) if is_dataclass(self) else {}
        return {"kind": self.kind, **cfg}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SelectionRule:
        """Inverse of :meth:`to_config`."""
        return cls(**{k: v for k, v in config.items() if k != "kind"})

    @abstractmethod
    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        """The per-arm score whose top-k is the choice: ``(*batch, K)`` or ``(size, ...)``."""

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        """Chosen arm indices, best first: ``(*batch, k)`` (``(size, *batch, k)`` with size)."""
        s = mask_scores(self.scores(model, posterior, stats, rng, contexts, size), eligible)
        return top_k(s, k, rng)

    def lane_scorer(self, lanes: Any, index: int, rng: np.random.Generator
                    ) -> LaneScorer | None:
        """This rule's scoring step over policy ``index``'s lanes of a batched posterior state
        (:class:`~tsbandit.policies.beta_lanes.BetaLanes`, :class:`~tsbandit.policies.
        gaussian_lanes.GaussianLanes`), drawing from ``rng``; ``None`` when the rule has no
        batched form for that state (callers then use :meth:`choose`). A rule's batched form
        is the same rule: the same law of decisions as :meth:`choose` on the same posteriors.
        """
        return None

    def choose_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                   rng: np.random.Generator, context: np.ndarray | None = None) -> int:
        """The arm index :meth:`choose` picks for one user among all arms (``k = 1``).

        Same choice, same random numbers as ``choose(...)[0]``; rules override it with a
        faster single-decision path.
        """
        return int(self.choose(model, posterior, stats, rng, context)[0])

    def propensities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                     chosen: np.ndarray, rng: np.random.Generator,
                     contexts: np.ndarray | None = None, eligible: np.ndarray | None = None,
                     n_draws: int = 1000) -> np.ndarray:
        """Probability that the rule puts ``chosen[..., j]`` at position ``j``: ``(*batch, k)``.

        Monte-Carlo over ``n_draws`` independent decisions for stochastic rules; the estimate
        is floored at ``1 / n_draws`` because the observed choice proves it positive.
        """
        if self.deterministic:
            s = mask_scores(self.scores(model, posterior, stats, rng, contexts), eligible)
            return position_probabilities(s, chosen)
        k = chosen.shape[-1]
        draws = self.choose(model, posterior, stats, rng, contexts, eligible, k, size=n_draws)
        hits = (draws == chosen[None]).mean(axis=0)
        return np.maximum(hits, 1.0 / n_draws)

    def choice_sample(self, model: RewardModel, posterior: Posterior, stats: Stats,
                      rng: np.random.Generator, eligible: np.ndarray | None = None,
                      n_draws: int = 1000) -> ChoiceSample | None:
        """``n_draws`` context-free first choices with the draws' log density, whose
        probabilities (:meth:`ChoiceSample.probabilities`) are :meth:`action_probabilities`'
        estimate -- the same random numbers, the same values -- and which estimate them again
        under a later posterior by reweighting (:mod:`tsbandit.policies.choice_sample`).
        ``None`` for rules whose choice is not the argmax of the model's own draws."""
        return None

    def action_probabilities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                             rng: np.random.Generator, contexts: np.ndarray | None = None,
                             eligible: np.ndarray | None = None,
                             n_draws: int = 1000) -> np.ndarray:
        """Probability of each arm being chosen first: ``(*batch, K)``, rows sum to 1.

        Exact for deterministic rules (ties shared); Monte-Carlo otherwise (no floor).
        """
        if self.deterministic:
            s = mask_scores(self.scores(model, posterior, stats, rng, contexts), eligible)
            ties = s == s.max(axis=-1, keepdims=True)
            return ties / ties.sum(axis=-1, keepdims=True)
        first = self.choose(model, posterior, stats, rng, contexts, eligible, 1,
                            size=n_draws)[..., 0]
        n_arms = stats.n_arms
        onehot = first[..., None] == np.arange(n_arms)
        return onehot.mean(axis=0)


def batch_propensities(rule: SelectionRule, model: RewardModel, posterior: Posterior,
                       stats: Stats, chosen: np.ndarray, rng: np.random.Generator,
                       contexts: np.ndarray | None, eligible: np.ndarray | None,
                       n_draws: int) -> np.ndarray:
    """Propensities ``(n, k)`` of ``n`` users' choices ``chosen`` ``(n, k)``.

    With contexts ``(n, d)`` each user has their own distribution; without, all users share the
    posterior, so one first-slot distribution serves every ``k = 1`` choice.
    """
    if contexts is not None:
        return np.asarray(rule.propensities(model, posterior, stats, chosen, rng, contexts,
                                            eligible, n_draws), dtype=float)
    if chosen.shape[-1] == 1:
        one = rule.action_probabilities(model, posterior, stats, rng, None, eligible, n_draws)
        floor = 0.0 if rule.deterministic else 1.0 / n_draws
        return np.maximum(np.asarray(one, dtype=float)[chosen], floor)
    return np.stack([np.asarray(rule.propensities(model, posterior, stats, row, rng, None,
                                                  eligible, n_draws), dtype=float)
                     for row in chosen])
