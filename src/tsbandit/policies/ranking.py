"""The ranking-model contract: a reward model that learns from every slot of a ranking.

A ranking (a carousel, a list) shows ``k`` arms in slots ``0..k-1``, best first; each slot has
its own reward (a click). A *ranking model* is a reward model whose observations are such
rankings with per-slot rewards, over the same kind of additive statistics as every other model:

* :meth:`RankingModel.ranking_delta` -- the statistics of rankings' per-slot rewards
  ``(n, k)``, NaN for a slot not observed in this delta;
* :meth:`RankingModel.slot_delta` -- one slot's reward alone: **one additive delta**.

The contract every ranking model keeps (and the tests check): the per-slot deltas of a ranking,
applied one at a time in any order, sum to the delta of the whole vector of slot rewards. So a
store can add each slot's delta whenever that slot's reward arrives, exactly once, as it does
for one-arm rewards; and a vector of per-slot rewards is the same as its slots one by one.

A plain ``(arm, reward)`` observation (``accumulate``, ``Bandit.update``) is the arm shown in
the top slot, so a ranking model still learns from one-arm feedback.

Models: :class:`~.position_based.PositionBased` (click = attractiveness x examination of the
position) and :class:`~.cascade.CascadeBeta` (the user scans top-down and clicks the first
attractive arm).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from ..errors import InvalidSlotError
from .stats import Stats

__all__ = ["RankingModel"]


class RankingModel:
    """Mixin of reward models that learn from per-slot rewards of rankings.

    Subclasses supply :meth:`accumulate_ranking`; this class validates rankings, slots and
    slot rewards and builds the deltas. Arms are indices here (a ``Bandit`` maps names).
    """

    #: the most slots a ranking may have (``None``: any number)
    max_slots: int | None = None

    @abstractmethod
    def accumulate_ranking(self, stats: Stats, rankings: np.ndarray, rewards: np.ndarray, *,
                           batch_index: np.ndarray | None = None,
                           weights: np.ndarray | None = None) -> None:
        """Add rankings' per-slot rewards to ``stats`` **in place** (inputs validated).

        ``rankings`` ``(n, k)`` int (slot ``j`` shows ``rankings[:, j]``), ``rewards``
        ``(n, k)`` with NaN for a slot not observed in this call; ``batch_index`` ``(n,)`` the
        batch element (trial) of each ranking; ``weights`` ``(n,)`` scale each ranking.
        """

    # ----- validation ---------------------------------------------------------------------
    def check_ranking(self, ranking: Any, n_arms: int) -> np.ndarray:
        """``ranking`` as ``(k,)`` arm indices: distinct, in ``[0, n_arms)``, at most
        :attr:`max_slots` of them; else :class:`~tsbandit.errors.InvalidSlotError`.

        >>> from tsbandit.policies.cascade import CascadeBeta
        >>> CascadeBeta().check_ranking([2, 0], 3).tolist()
        [2, 0]
        """
        r = np.asarray(ranking)
        if r.ndim != 1 or r.shape[0] < 1 or r.dtype.kind not in "iu":
            raise InvalidSlotError(f"a ranking is a non-empty list of arm indices, got {ranking!r}")
        idx = r.astype(np.intp)
        if (idx < 0).any() or (idx >= n_arms).any():
            raise InvalidSlotError(f"ranking {idx.tolist()} names an arm outside 0..{n_arms - 1}")
        if np.unique(idx).shape[0] != idx.shape[0]:
            raise InvalidSlotError(f"ranking {idx.tolist()} shows an arm twice")
        if self.max_slots is not None and idx.shape[0] > self.max_slots:
            raise InvalidSlotError(f"ranking of {idx.shape[0]} slots, but the model has "
                                   f"{self.max_slots} positions (n_positions)")
        return idx

    def check_slot(self, slot: Any, k: int) -> int:
        """``slot`` as an int in ``[0, k)``, else :class:`~tsbandit.errors.InvalidSlotError`."""
        if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)):
            raise InvalidSlotError(f"slot == {slot!r}, must be an integer slot index")
        if not (0 <= int(slot) < k):
            raise InvalidSlotError(f"slot == {int(slot)}, but the ranking has slots 0..{k - 1}")
        return int(slot)

    def check_slot_rewards(self, rewards: Any, k: int) -> np.ndarray:
        """Per-slot rewards ``(k,)`` as floats, ``None``/NaN for a slot not observed; each
        observed one validated by the model (binary for Beta models)."""
        vals = [np.nan if v is None else v for v in np.ravel(np.asarray(rewards, dtype=object))]
        if len(vals) != k:
            raise InvalidSlotError(f"got {len(vals)} slot rewards for a ranking of {k} slots")
        out = np.array(vals, dtype=float)
        seen = ~np.isnan(out)
        if seen.any():
            out[seen] = self.check_rewards(out[seen])  # type: ignore[attr-defined]
        return out

    # ----- deltas -------------------------------------------------------------------------
    def ranking_delta(self, n_arms: int, rankings: np.ndarray, rewards: np.ndarray, *,
                      batch_shape: tuple[int, ...] = (),
                      batch_index: np.ndarray | None = None,
                      weights: np.ndarray | None = None) -> Stats:
        """Statistics of rankings ``(n, k)`` with per-slot rewards ``(n, k)`` (NaN: slot not
        in this delta) alone; add them to any state.

        >>> import numpy as np
        >>> from tsbandit.policies.cascade import CascadeBeta
        >>> d = CascadeBeta().ranking_delta(3, np.array([[2, 0, 1]]), np.array([[0, 1, 0.]]))
        >>> d["successes"].tolist(), d["failures"].tolist()
        ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])
        """
        out = self.init_stats(n_arms, batch_shape)  # type: ignore[attr-defined]
        self.accumulate_ranking(out, np.asarray(rankings, dtype=np.intp),
                                np.asarray(rewards, dtype=float), batch_index=batch_index,
                                weights=weights)
        return out

    def slot_delta(self, n_arms: int, ranking: Any, slot: int, reward: Any) -> Stats:
        """The delta of one slot's reward of one ranking (validated): what a store adds when
        that slot's reward arrives. The slot deltas of a ranking, in any order, sum to the
        :meth:`ranking_delta` of all its slot rewards.

        >>> import numpy as np
        >>> from tsbandit.policies.position_based import PositionBased
        >>> d = PositionBased(n_positions=3).slot_delta(2, [1, 0], 1, 1)
        >>> d["clicks"].tolist()
        [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
        """
        idx = self.check_ranking(ranking, n_arms)
        j = self.check_slot(slot, idx.shape[0])
        r = np.full((1, idx.shape[0]), np.nan)
        r[0, j] = self.check_reward(reward)  # type: ignore[attr-defined]
        return self.ranking_delta(n_arms, idx[None, :], r)
