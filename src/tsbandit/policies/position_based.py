"""The position-based model (PBM): click = attractiveness x examination of the position.

A ranking shows arm ``a`` at position ``j``; the user examines position ``j`` with probability
``kappa_j`` and, independently, finds arm ``a`` attractive with probability ``theta_a``:
``P(click) = theta_a * kappa_j`` (Richardson et al., 2007; Chuklin et al., 2015, *Click
models for web search*; Lagree et al., 2016, *Multiple-play bandits in the position-based
model*). Clicks at different positions are independent given the ranking.

**Statistics** (additive, exact): per arm and position, ``impressions[a, j]`` and
``clicks[a, j]`` -- ``(*batch, K, P)``. They are sufficient: the PBM likelihood is
``prod_{a,j} (theta_a kappa_j)^c_aj (1 - theta_a kappa_j)^(n_aj - c_aj)``. One slot's reward
is one cell of each table, so per-slot rewards are exact, additive, order-free deltas.

**Posterior** (what is exact and what is approximate):

* Examination ``kappa`` -- given (``examination=(1.0, 0.6, 0.3)``) or *learned*: the
  maximum a-posteriori fit of the PBM to the tables by expectation-maximization
  (at most ``em_iterations`` steps, fewer once no ``kappa`` moves by 1e-10, from ``theta`` =
  the arms' pooled click rates and ``kappa`` = each
  position's pooled click rate over the best position's; each
  position starts with ``examination_prior`` pseudo-impressions, all examined), then scaled so
  the most examined position has ``kappa = 1`` (the likelihood only knows the products
  ``theta_a kappa_j``; this convention fixes the scale) and, with ``monotone`` (default),
  projected onto non-increasing ``kappa`` (weighted isotonic regression by impressions): slots
  are listed best first. The learned ``kappa`` is a point estimate; its uncertainty is not
  sampled (it is shared by all arms and pins down fast).
* Attractiveness, given ``kappa``: ``theta_a ~ Beta(alpha0 + C_a, beta0 + max(N_a - C_a, 0))``
  with ``C_a = sum_j clicks[a, j]`` and ``N_a = sum_j kappa_j impressions[a, j]`` (the
  *kappa-weighted trials*). Exact when every ``kappa_j`` is 0 or 1; otherwise an
  approximation of the true (non-conjugate) posterior with the same clicks and the expected
  number of examinations as trials -- the PBM-TS approximation of Lagree et al.

Thompson sampling draws ``theta``, sorts it and fills positions best first; with
non-increasing ``kappa`` that is the PBM's optimal ranking for the draw (rearrangement
inequality). ``mean``/``sample``/``interval`` are those of ``theta``: an arm's click rate in
the most examined position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .base import check_in_range
from .beta import BetaBernoulli, BetaPosterior
from .ranking import RankingModel
from .stats import Stats

__all__ = ["PBMPosterior", "PositionBased", "isotonic_decreasing"]

_EPS = 1e-12


class PBMPosterior(BetaPosterior):
    """``Beta(alpha, beta)`` of each arm's attractiveness ``(*batch, K)``, and the examination
    probabilities it was computed with, ``examination`` ``(*batch, P)``."""

    __slots__ = ("examination",)

    def __init__(self, alpha: np.ndarray, beta: np.ndarray, examination: np.ndarray) -> None:
        super().__init__(alpha, beta)
        self.examination = examination


def isotonic_decreasing(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares projection of ``y`` ``(*batch, P)`` onto non-increasing
    sequences (weights ``w`` > 0), by the min-max formula
    ``y_j = min_{i <= j} max_{l >= j} mean_w(y[i..l])``.

    >>> isotonic_decreasing(np.array([1.0, 0.5, 0.7]), np.ones(3)).round(6).tolist()
    [1.0, 0.6, 0.6]
    """
    w = np.maximum(w, _EPS)
    p = y.shape[-1]
    cw = np.concatenate([np.zeros((*w.shape[:-1], 1)), np.cumsum(w, axis=-1)], axis=-1)
    cy = np.concatenate([np.zeros((*w.shape[:-1], 1)), np.cumsum(w * y, axis=-1)], axis=-1)
    # avg[..., i, l] = weighted mean of y[i..l] (l >= i), -inf below the diagonal
    below = np.tri(p, k=-1, dtype=bool)
    den = np.where(below, 1.0, cw[..., None, 1:] - cw[..., :-1, None])
    avg = np.where(below, -np.inf, (cy[..., None, 1:] - cy[..., :-1, None]) / den)
    right = np.flip(np.maximum.accumulate(np.flip(avg, -1), axis=-1), -1)  # max over l >= j
    right = np.where(below, np.inf, right)  # only i <= j
    return np.asarray(right.min(axis=-2))


@dataclass(frozen=True)
class PositionBased(RankingModel, BetaBernoulli):
    """Position-based click model with Beta attractiveness and learned (or given) examination.

    Parameters
    ----------
    alpha0, beta0
        Beta prior of each arm's attractiveness.
    n_positions
        Positions a ranking may have (``P``), >= 1.
    examination
        ``P`` known examination probabilities in (0, 1], or ``None`` to learn them.
    em_iterations
        EM steps of the learned examination (>= 1).
    examination_prior
        Pseudo-impressions per position, all examined (> 0): early ``kappa`` stays near 1.
    monotone
        Project learned examination onto non-increasing (slots listed best first).

    >>> import numpy as np
    >>> m = PositionBased(n_positions=2, examination=(1.0, 0.5))
    >>> s = m.ranking_delta(2, np.array([[0, 1]] * 4), np.array([[1.0, 1.0]] * 2 + [[0., 0.]] * 2))
    >>> p = m.posterior(s)
    >>> p.alpha.tolist(), p.beta.tolist()
    ([3.0, 3.0], [3.0, 1.0])
    """

    n_positions: int = 3
    examination: tuple[float, ...] | None = None
    em_iterations: int = 30
    examination_prior: float = 1.0
    monotone: bool = True

    kind = "position_based"

    def __post_init__(self) -> None:
        BetaBernoulli.__post_init__(self)
        for name, low in (("n_positions", 1), ("em_iterations", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ConfigurationError(f"{name} == {v!r}, must be an integer >= {low}")
            object.__setattr__(self, name, int(v))
        object.__setattr__(self, "examination_prior",
                           check_in_range("examination_prior", self.examination_prior, 1e-9,
                                          1e6))
        if self.examination is not None:
            ex = tuple(float(v) for v in self.examination)
            if len(ex) != self.n_positions:
                raise ConfigurationError(f"examination has {len(ex)} values, must have "
                                         f"n_positions == {self.n_positions}")
            if not all(0.0 < v <= 1.0 for v in ex):
                raise ConfigurationError(f"examination == {ex}, each must be in (0, 1]")
            object.__setattr__(self, "examination", ex)
        object.__setattr__(self, "monotone", bool(self.monotone))

    @property
    def max_slots(self) -> int:  # type: ignore[override]
        """A ranking has at most ``n_positions`` slots."""
        return self.n_positions

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha0": self.alpha0, "beta0": self.beta0,
                "n_positions": self.n_positions,
                "examination": None if self.examination is None else list(self.examination),
                "em_iterations": self.em_iterations,
                "examination_prior": self.examination_prior, "monotone": self.monotone}

    # ----- statistics ---------------------------------------------------------------------
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        shape = (*batch_shape, n_arms, self.n_positions)
        return Stats({"clicks": np.zeros(shape), "impressions": np.zeros(shape)},
                     len(batch_shape))

    def accumulate_slots(self, stats: Stats, arms: np.ndarray, positions: np.ndarray,
                         rewards: np.ndarray, *, batch_index: np.ndarray | None = None,
                         weights: np.ndarray | None = None) -> None:
        """Add clicks ``rewards`` ``(n,)`` of ``arms`` shown at ``positions`` in place."""
        w = np.ones(rewards.shape[0]) if weights is None else np.asarray(weights, dtype=float)
        cell = (arms, positions) if batch_index is None else (batch_index, arms, positions)
        np.add.at(stats["clicks"], cell, w * rewards)
        np.add.at(stats["impressions"], cell, w)

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        """Plain ``(arm, reward)`` observations: the arm shown at the top position."""
        self.accumulate_slots(stats, arms, np.zeros_like(arms), rewards,
                              batch_index=batch_index, weights=weights)

    def accumulate_ranking(self, stats: Stats, rankings: np.ndarray, rewards: np.ndarray, *,
                           batch_index: np.ndarray | None = None,
                           weights: np.ndarray | None = None) -> None:
        seen = ~np.isnan(rewards)
        rows, pos = np.nonzero(seen)
        self.accumulate_slots(
            stats, rankings[rows, pos], pos, rewards[rows, pos],
            batch_index=None if batch_index is None else np.asarray(batch_index)[rows],
            weights=None if weights is None else np.asarray(weights, dtype=float)[rows])

    def observe_one(self, stats: Stats, posterior: BetaPosterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> BetaPosterior:
        stats["clicks"][arm, 0] += reward
        stats["impressions"][arm, 0] += 1.0
        return self.posterior(stats)

    def update_posterior(self, posterior: BetaPosterior, stats: Stats, arm: int, reward: float,
                         context: np.ndarray | None = None) -> BetaPosterior:
        return self.posterior(stats)

    def counts(self, stats: Stats) -> np.ndarray:
        """Impressions per arm, all positions."""
        return np.asarray(stats["impressions"].sum(axis=-1))

    def reward_sums(self, stats: Stats) -> np.ndarray:
        """Clicks per arm, all positions."""
        return np.asarray(stats["clicks"].sum(axis=-1))

    # ----- posterior ----------------------------------------------------------------------
    def learn_examination(self, stats: Stats) -> np.ndarray:
        """The examination probabilities ``(*batch, P)`` the posterior uses: the given ones,
        or the EM fit described in the module docstring."""
        c, n = stats["clicks"], stats["impressions"]
        batch = c.shape[:-2]
        if self.examination is not None:
            return np.broadcast_to(np.asarray(self.examination), (*batch, self.n_positions))
        a0, b0, s = self.alpha0, self.beta0, self.examination_prior
        nc = np.maximum(n - c, 0.0)
        n_arm = n.sum(axis=-1)
        n_pos = n.sum(axis=-2)
        theta = (c.sum(axis=-1) + a0) / (n_arm + a0 + b0)
        # start from each position's pooled click rate relative to the best position's
        rate = (c.sum(axis=-2) + s * a0 / (a0 + b0)) / (n_pos + s)
        kappa = np.clip(rate / rate.max(axis=-1, keepdims=True), 0.01, 1.0)
        clicks_arm, clicks_pos = c.sum(axis=-1), c.sum(axis=-2)
        for _ in range(self.em_iterations):
            # E step: a no-click at (a, j) was an unattractive-but-examined arm with
            # probability theta_a (1 - kappa_j) / (1 - theta_a kappa_j) ... (and symmetrically)
            ratio = nc / np.maximum(1.0 - theta[..., :, None] * kappa[..., None, :], _EPS)
            att = clicks_arm + theta * (ratio @ (1.0 - kappa)[..., :, None])[..., 0]
            exa = clicks_pos + kappa * ((1.0 - theta)[..., None, :] @ ratio)[..., 0, :]
            theta = (att + a0) / (n_arm + a0 + b0)
            new = (exa + s) / (n_pos + s)
            top = new.max(axis=-1, keepdims=True)
            theta = np.minimum(theta * top, 1.0)
            new = new / top
            done = bool(np.abs(new - kappa).max() < 1e-10)
            kappa = new
            if done:
                break
        if self.monotone and self.n_positions > 1:
            kappa = isotonic_decreasing(kappa, n_pos + s)
        return np.clip(kappa, _EPS, 1.0)

    def posterior(self, stats: Stats) -> PBMPosterior:
        kappa = self.learn_examination(stats)
        c, n = stats["clicks"], stats["impressions"]
        clicks = c.sum(axis=-1)
        trials = (n * kappa[..., None, :]).sum(axis=-1)
        return PBMPosterior(self.alpha0 + clicks, self.beta0 + np.maximum(trials - clicks, 0.0),
                            np.array(kappa))
