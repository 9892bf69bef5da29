""":class:`~.logistic.LogisticLaplace` over many independent lanes (the lab's batched state).

The layout is :class:`~.gaussian_lanes.GaussianLanes`' (each lane's ``[S_k^T; m_k^T]`` stacked,
one product per lane gives every arm's ``phi = S^T x`` and logit ``m . x``). One observation per
lane refits the chosen arm by the model's one-dimensional Newton solve
(:func:`~.logistic.newton_1d`) along ``P^{-1} x = S phi`` (reusing the draw's projection), and
the precision's gain ``w x x^T`` is the model's Potter step (:func:`~.logistic.
laplace_factor_rows`), O(d^2). The statistics (mode ``m``, data precision ``H`` -- packed as its
upper triangle --, counts) are kept as the model keeps them, and ``S`` is refactored from them
every ``refresh_every`` rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._scipy import expit
from .gaussian_lanes import GaussianLanes, upper_outer
from .logistic import laplace_factor_rows, newton_1d

__all__ = ["LogisticLanes"]


class LogisticLanes(GaussianLanes):
    """Bayesian logistic regression (Laplace) per arm over ``n`` lanes.

    >>> import numpy as np
    >>> from tsbandit.policies import LogisticLaplace, ThompsonSampling
    >>> lanes = LogisticLaplace(n_features=2).lanes(4, 3)
    >>> x = np.ones((4, 2))
    >>> scorer = ThompsonSampling(scale=0.25).lane_scorer(lanes, 0, np.random.default_rng(0))
    >>> chosen = scorer.score(x).argmax(axis=1)
    >>> lanes.observe(chosen, np.ones(4), x)
    >>> lanes.posterior().mean.shape
    (4, 3, 2)
    """

    def __init__(self, model: Any, n_lanes: int, n_arms: int, refresh_every: int) -> None:
        super().__init__(model, n_lanes, n_arms, refresh_every,
                         [("H", "sym"), ("n", 1), ("sum_r", 1)])
        self._inc[:, self._col("n")] = 1.0
        self._nw = np.empty((4, n_lanes))                # Newton scratch
        self.T[:, :, self.d] = self.stats["m"]
        self._refresh()

    def _sync_stats(self) -> None:
        self.stats["m"][...] = self.T[:, :, self.d]      # the mode lives in T
        super()._sync_stats()

    def _after_apply(self) -> None:
        self.T[:, :, self.d] = self.stats["m"]

    def _refresh(self) -> None:
        post = self.model.posterior(self.current_stats())
        self.T[:, :, :self.d] = np.swapaxes(post.sqrt_cov, -1, -2)
        self._since = 0

    def mean_scores(self) -> np.ndarray:
        # the model's posterior mean click probability (probit approximation) before its
        # monotone expit
        return self._mu / np.sqrt(1.0 + np.pi * self._var0 / 8.0)

    def observe(self, chosen: np.ndarray, rewards: np.ndarray, x: np.ndarray) -> None:
        """One observation per lane: lane ``j`` pulled ``chosen[j]`` in the context ``x[j]``
        of the last :meth:`project` and got ``rewards[j]``."""
        d = self.d
        cell, blk, phi = self._chosen_block(chosen)
        m = blk[:, d]
        u = np.einsum("nji,nj->ni", blk[:, :d], phi)            # P^{-1} x = S phi
        s = np.einsum("ni,ni->n", phi, phi)                      # x^T P^{-1} x
        mu = self._mu[self._bi, chosen]
        t = newton_1d(mu, s, rewards, None, self._nw)
        p = expit(mu + t * s)
        w = p * (1.0 - p)
        m += t[:, None] * u
        inc = self._inc
        upper_outer(w[:, None] * x, x, inc[:, self._col("H")], self._outer_t)
        inc[:, self._col("sum_r").start] = rewards
        self._learn_cells(cell)
        self._since += 1
        if self._since >= self.refresh_every:
            self._Tf[cell, d] = m
            self._refresh()
            return
        laplace_factor_rows(blk, phi, u, s, w, self._outer)
        self._Tf[cell] = blk

    def posterior(self) -> Any:
        """The model's posterior from the lanes' statistics (refactored exactly)."""
        return self.model.posterior(self.current_stats())
