"""Beta-Bernoulli per context cell: a Beta bandit for every (cell, arm), the cells learned
from nothing but the raw context.

A context ``x`` is quantized to the integer grid ``q = floor(x / cell_width)`` and the grid
point is hashed (a fixed multiply-xorshift hash, the same in every process) into one of
``n_cells`` cells. Each arm keeps ``successes`` and ``failures`` per cell, so the statistics
have the layout ``(*batch, K, n_cells)`` and the posterior of arm ``a`` in cell ``c`` is
``Beta(alpha0 + s[a, c], beta0 + f[a, c])``. Customers whose contexts fall in the same cell
(the same segment, when segments differ by more than a cell width in some feature) share one
Beta bandit; nothing is told about the segments or the form of the conversion model.

The cell of a context is a pure function of the context and the configuration, so the
statistics are additive exactly as Beta-Bernoulli's are: two shards' statistics add up to the
union's, decay multiplies them, stores keep them as plain arrays. Two grid points may hash to
the same cell (then they share a bandit); :meth:`BinnedBeta.cells` shows where a set of
contexts lands.

>>> import numpy as np
>>> m = BinnedBeta(n_features=2, n_cells=8, cell_width=0.5)
>>> s = m.init_stats(3)
>>> x = np.array([[0.1, 1.0], [0.9, 1.0], [0.1, 1.0]])
>>> m.accumulate(s, np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]), x)
>>> m.mean(m.posterior(s), x[:2]).round(3).tolist()
[[0.667, 0.667, 0.5], [0.333, 0.5, 0.5]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError, InvalidContextError, InvalidRewardError
from .base import BETA_SHAPE_MIN, PRIOR_MAX, RewardModel, check_in_range, check_n_features
from .beta import _beta_quantile
from .stats import Stats

__all__ = ["BinnedBeta", "BinnedPosterior"]

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


@dataclass(frozen=True)
class BinnedPosterior:
    """``alpha`` and ``beta`` per (arm, cell), each ``(*batch, K, n_cells)``."""

    alpha: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class BinnedBeta(RewardModel):
    """A Beta-Bernoulli bandit per context cell (binary rewards).

    Parameters
    ----------
    n_features
        Context dimension ``d``.
    n_cells
        Number of hash cells (1-65536); more cells, fewer collisions, more state.
    cell_width
        Side of the quantization grid, in the context's units (> 0): contexts closer than this
        in every feature usually share a cell, contexts further apart than this in some
        feature never share one unless their grid points collide in the hash.
    alpha0, beta0
        Beta prior of every (arm, cell), as :class:`~.beta.BetaBernoulli`'s.
    pooling
        Partial pooling strength ``kappa >= 0``: each (arm, cell) prior gets ``kappa``
        pseudo-observations at the arm's rate in the *other* cells,
        ``m = (alpha0 + S_a - s_ac) / (alpha0 + beta0 + N_a - n_ac)``, i.e. ``Beta(alpha0 +
        kappa m, beta0 + kappa (1 - m))``. ``0`` (the default) is independent cells. The
        posterior is still a function of the additive counts. (On the ``offers`` world any
        ``kappa > 0`` measured *worse*: docs/shared.md.)
    """

    n_features: int = 1
    n_cells: int = 64
    cell_width: float = 0.25
    alpha0: float = 1.0
    beta0: float = 1.0
    pooling: float = 0.0

    kind = "binned-beta"
    contextual = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_features", check_n_features(self.n_features))
        n = self.n_cells
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 65536:
            raise ConfigurationError(f"n_cells == {n!r}, must be an integer in [1, 65536]")
        object.__setattr__(self, "n_cells", int(n))
        object.__setattr__(self, "cell_width",
                           check_in_range("cell_width", self.cell_width, 1e-9, 1e9))
        for name in ("alpha0", "beta0"):
            object.__setattr__(self, name, check_in_range(name, getattr(self, name),
                                                          BETA_SHAPE_MIN, PRIOR_MAX))
        object.__setattr__(self, "pooling", check_in_range("pooling", self.pooling, 0.0,
                                                           PRIOR_MAX))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_features": self.n_features, "n_cells": self.n_cells,
                "cell_width": self.cell_width, "alpha0": self.alpha0, "beta0": self.beta0,
                "pooling": self.pooling}

    # ----- cells ---------------------------------------------------------------------------
    def cells(self, contexts: np.ndarray) -> np.ndarray:
        """The cell of each context: ``(*n, d)`` to ``(*n,)`` integers in ``[0, n_cells)``.

        >>> BinnedBeta(n_features=2, n_cells=1).cells(np.zeros((3, 2))).tolist()
        [0, 0, 0]
        """
        q = np.floor(np.asarray(contexts, dtype=np.float64) / self.cell_width)
        q = np.clip(q, -(2.0**62), 2.0**62).astype(np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            mult = _GOLD * (2 * np.arange(q.shape[-1], dtype=np.uint64) + np.uint64(1))
            h = (q * mult).sum(axis=-1, dtype=np.uint64)
            h = (h ^ (h >> np.uint64(31))) * _MIX
            h ^= h >> np.uint64(29)
        return (h % np.uint64(self.n_cells)).astype(np.intp)

    # ----- statistics ----------------------------------------------------------------------
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        shape = (*batch_shape, n_arms, self.n_cells)
        return Stats({"successes": np.zeros(shape), "failures": np.zeros(shape)},
                     len(batch_shape))

    def check_rewards(self, rewards: Any) -> np.ndarray:
        r = RewardModel.check_rewards(self, rewards)
        bad = (r != 0.0) & (r != 1.0)
        if bad.any():
            raise InvalidRewardError(
                f"reward {r[bad].ravel()[0]!r} is not binary; this model takes rewards 0 or 1")
        return r

    def check_reward(self, reward: Any) -> float:
        r = RewardModel.check_reward(self, reward)
        if r != 0.0 and r != 1.0:
            raise InvalidRewardError(f"reward {r!r} is not binary; this model takes rewards 0 or 1")
        return r

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        if contexts is None:
            raise InvalidContextError("BinnedBeta needs the contexts of the observations")
        cell = self.cells(contexts)
        w = np.ones_like(rewards, dtype=np.float64) if weights is None else weights
        idx = (arms, cell) if batch_index is None else (batch_index, arms, cell)
        np.add.at(stats["successes"], idx, w * rewards)
        np.add.at(stats["failures"], idx, w * (1.0 - rewards))

    def counts(self, stats: Stats) -> np.ndarray:
        return (stats["successes"] + stats["failures"]).sum(axis=-1)

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return stats["successes"].sum(axis=-1)

    # ----- posterior -----------------------------------------------------------------------
    def posterior(self, stats: Stats) -> BinnedPosterior:
        s, f = stats["successes"], stats["failures"]
        a0, b0 = self.alpha0, self.beta0
        if self.pooling == 0.0:
            return BinnedPosterior(a0 + s, b0 + f)
        s_out = s.sum(axis=-1, keepdims=True) - s            # the arm's other cells
        f_out = f.sum(axis=-1, keepdims=True) - f
        m = (a0 + s_out) / (a0 + b0 + s_out + f_out)
        k = self.pooling
        return BinnedPosterior(a0 + k * m + s, b0 + k * (1.0 - m) + f)

    def _at(self, posterior: BinnedPosterior,
            contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``alpha``, ``beta`` of every arm in each context's cell, ``(*batch, K)``."""
        if contexts is None:
            raise InvalidContextError("BinnedBeta needs a context for each decision")
        cell = self.cells(contexts)
        a, b = posterior.alpha, posterior.beta
        bs = np.broadcast_shapes(a.shape[:-2], cell.shape)
        full = (*bs, a.shape[-2], a.shape[-1])
        idx = np.broadcast_to(cell.reshape((*cell.shape, 1, 1)), (*bs, a.shape[-2], 1))
        pick = [np.take_along_axis(np.broadcast_to(v, full), idx, axis=-1)[..., 0]
                for v in (a, b)]
        return pick[0], pick[1]

    def mean(self, posterior: BinnedPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        a, b = self._at(posterior, contexts)
        return a / (a + b)

    def std(self, posterior: BinnedPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        a, b = self._at(posterior, contexts)
        n = a + b
        return np.sqrt(a * b / (n * n * (n + 1.0)))

    def sample(self, posterior: BinnedPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        ab = np.stack(self._at(posterior, contexts))
        if size is not None:
            ab = np.broadcast_to(ab[:, None], (2, size, *ab.shape[1:]))
        g = rng.standard_gamma(ab)
        return g[0] / (g[0] + g[1])

    def interval(self, posterior: BinnedPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = (1.0 - level) / 2.0
        a, b = self._at(posterior, contexts)
        return _beta_quantile(a, b, q), _beta_quantile(a, b, 1.0 - q)
