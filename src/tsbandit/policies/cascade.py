"""The cascade model (Craswell et al., 2008) with Beta attractiveness: CascadeTS.

The user scans a ranking top-down, clicks the first attractive arm and stops. Arm ``a`` is
attractive with probability ``theta_a``; the slots above the click were examined and not
attractive, the clicked slot was examined and attractive, the slots below it were not examined;
with no click every slot was examined and none was attractive. So each ranking gives exact
Bernoulli observations of the examined arms, and ``theta_a ~ Beta(alpha0 + s_a, beta0 + f_a)``
is the exact conjugate posterior (Kveton et al., 2015, *Cascading bandits*; Zhong et al.,
2021, *Thompson sampling algorithms for cascading bandits*). Thompson sampling ranks the arms
by one draw of ``theta`` each, best first -- the cascade model's optimal ranking for the draw.

Statistics per arm: ``successes`` and ``failures``, as :class:`~.beta.BetaBernoulli`.

**Per-slot rewards.** A ranking's update depends on where its click is, which a slot alone
does not know; the model splits it into per-slot deltas that are additive and order-free:

* slot ``j`` not clicked: ``failures[arm_j] += 1`` (examined, not attractive);
* slot ``j`` clicked: ``successes[arm_j] += 1`` and ``failures[arm_i] -= 1`` for every slot
  ``i > j`` (below the click: not examined after all, so its no-click is taken back).

With at most one click per ranking -- the cascade model's own assumption -- the sum over all
slots is exactly the cascade update above, whatever the order the slot rewards arrive in.
Until the slots below a click have arrived (or with several clicks in one ranking, feedback the
cascade model says cannot happen) an arm's failures may be negative; the posterior counts them
as 0 (``beta = beta0 + max(f, 0)``). For logs with several clicks per ranking use
:class:`~.position_based.PositionBased`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .beta import BetaBernoulli, BetaPosterior, _scatter
from .ranking import RankingModel
from .stats import Stats

__all__ = ["CascadeBeta"]


@dataclass(frozen=True)
class CascadeBeta(RankingModel, BetaBernoulli):
    """Cascade model with a ``Beta(alpha0, beta0)`` prior on each arm's attractiveness.

    >>> import numpy as np
    >>> m = CascadeBeta()
    >>> s = m.ranking_delta(3, np.array([[0, 1, 2]]), np.array([[0.0, 1.0, 0.0]]))
    >>> s["successes"].tolist(), s["failures"].tolist()
    ([0.0, 1.0, 0.0], [1.0, 0.0, 0.0])
    """

    kind = "cascade"

    def accumulate_ranking(self, stats: Stats, rankings: np.ndarray, rewards: np.ndarray, *,
                           batch_index: np.ndarray | None = None,
                           weights: np.ndarray | None = None) -> None:
        n, k = rankings.shape
        seen = ~np.isnan(rewards)
        r = np.where(seen, rewards, 0.0)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        # clicks strictly above each slot (observed ones): each takes back that slot's no-click
        above = np.cumsum(r, axis=1) - r
        succ = w[:, None] * r
        fail = w[:, None] * (np.where(seen, 1.0 - r, 0.0) - above)
        arms = rankings.reshape(-1)
        bi = None if batch_index is None else np.repeat(np.asarray(batch_index, np.intp), k)
        if bi is not None and k > 1:  # cells repeat within a row's batch element: add.at
            np.add.at(stats["successes"], (bi, arms), succ.reshape(-1))
            np.add.at(stats["failures"], (bi, arms), fail.reshape(-1))
            return
        _scatter(stats["successes"], bi, arms, succ.reshape(-1))
        _scatter(stats["failures"], bi, arms, fail.reshape(-1))

    def posterior(self, stats: Stats) -> BetaPosterior:
        return BetaPosterior.from_params(np.stack([
            self.alpha0 + np.maximum(stats["successes"], 0.0),
            self.beta0 + np.maximum(stats["failures"], 0.0)]))

    def observe_one(self, stats: Stats, posterior: BetaPosterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> BetaPosterior:
        stats["successes"][arm] += reward
        stats["failures"][arm] += 1.0 - reward
        return self.posterior(stats)

    def update_posterior(self, posterior: BetaPosterior, stats: Stats, arm: int, reward: float,
                         context: np.ndarray | None = None) -> BetaPosterior:
        return self.posterior(stats)

    def counts(self, stats: Stats) -> np.ndarray:
        """Examinations per arm (negative transients counted as 0)."""
        return np.maximum(stats["successes"], 0.0) + np.maximum(stats["failures"], 0.0)

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha0": self.alpha0, "beta0": self.beta0}
