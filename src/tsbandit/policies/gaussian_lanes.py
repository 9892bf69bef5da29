"""Gaussian-weight posteriors of many independent lanes at once (linear and logistic models).

A *lane* is one independent copy of a bandit (one simulated trial). :class:`GaussianLanes` keeps,
for ``n`` lanes and ``K`` arms, each arm's square-root covariance ``S`` (``S S^T`` the weight
covariance, up to the noise scale) and mean ``m`` stacked per lane in one ``K (d + 1) x d``
matrix ``T = [S_1^T; m_1^T; ...; S_K^T; m_K^T]``, so ``T x`` gives every arm's ``phi_k = S_k^T x``
and ``m_k . x`` in one product per lane. The Thompson draw uses ``|phi_k|^2`` (the predictive
variance); the update of the chosen arm reuses its ``phi`` (Potter's rank-one square-root update,
O(d^2): :func:`~._factor.potter_rows`) and rewrites its contiguous ``(d + 1) x d`` block. The
model's statistics are accumulated exactly as the model keeps them (one packed row per cell, a
symmetric matrix as its upper triangle, so one scatter-add learns them all), and the factors are
refreshed from them every ``refresh_every`` rounds, as the model itself does.

:class:`LinearLanes` is :class:`~.linear.LinearGaussian`'s batched state
(:meth:`~.linear.LinearGaussian.lanes`); :class:`~.logistic_lanes.LogisticLanes` is
:class:`~.logistic.LogisticLaplace`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._factor import linear_update_rows
from .rules.base import LaneScorer
from .stats import Stats

__all__ = ["BlockNormals", "GaussianLanes", "LinearLanes", "upper_outer"]


class BlockNormals:
    """Standard normals of a whole block drawn in one call (:meth:`begin`), served row by
    row: the generator fills the ``(size, n, K)`` array in C order, so row ``b`` holds exactly
    the values that ``rng.standard_normal((n, K))`` would return at round ``b`` -- same stream,
    same draws, one call per block instead of one per round. Only valid when nothing else
    draws from ``rng`` between the rounds of a block (callers check that)."""

    def __init__(self) -> None:
        self.block: np.ndarray | None = None
        self.row = 0

    def begin(self, rng: np.random.Generator, size: int, shape: tuple[int, int]) -> None:
        self.block = rng.standard_normal((size, *shape))
        self.row = 0

    def next(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        blk = self.block
        if blk is None or self.row >= blk.shape[0]:
            self.block = None
            return rng.standard_normal(shape)
        self.row += 1
        return blk[self.row - 1]


def upper_outer(a: np.ndarray, b: np.ndarray, out: np.ndarray,
                scratch: np.ndarray | None = None) -> np.ndarray:
    """Row-wise ``a_i b_j`` for ``i <= j`` in :func:`numpy.triu_indices` order, into ``out``
    ``(n, d (d + 1) / 2)``.

    The products are formed feature-major -- ``d`` multiplications of contiguous ``(d - i, n)``
    blocks of the transposed inputs into ``scratch`` ``(d (d + 1) / 2, n)`` -- and written to
    ``out`` with one transposing copy: the same products as ``d`` row-major slices (each is
    one IEEE multiplication of the same pair), at about half the cost for ``n`` in the
    hundreds or more.

    >>> x = np.array([[1.0, 2.0]])
    >>> upper_outer(x, x, np.empty((1, 3))).tolist()
    [[1.0, 2.0, 4.0]]
    """
    n, d = a.shape
    aT = np.ascontiguousarray(a.T)
    bT = aT if b is a else np.ascontiguousarray(b.T)
    if scratch is None:
        scratch = np.empty((out.shape[1], n))
    pos = 0
    for i in range(d):
        np.multiply(aT[i:i + 1], bT[i:], out=scratch[pos:pos + d - i])
        pos += d - i
    np.copyto(out, scratch.T)
    return out


class GaussianLanes:
    """The shared state of :class:`LinearLanes` and ``LogisticLanes``: the stacked factors
    ``T`` ``(n, K, d + 1, d)``, the projection of a round's contexts, the Thompson draw, the
    Potter step, and the packed statistics.

    ``packed`` names the model's statistics kept in the packed rows, in order, with their
    width: ``"sym"`` for a symmetric ``(d, d)`` matrix (its upper triangle), else the number
    of columns. Subclasses supply :meth:`observe`, :meth:`_refresh` and the posterior.
    """

    def __init__(self, model: Any, n_lanes: int, n_arms: int, refresh_every: int,
                 packed: list[tuple[str, int | str]]) -> None:
        self.model = model
        self.n_lanes = n = n_lanes
        self.n_arms = K = n_arms
        self.d = d = int(model.n_features)
        self.refresh_every = int(refresh_every)
        self.stats: Stats = model.init_stats(K, (n,))
        self._iu, self._ju = np.triu_indices(d)
        self._q = q = self._iu.shape[0]
        self._cols: dict[str, tuple[int, int | str]] = {}
        pos = 0
        for name, width in packed:
            self._cols[name] = (pos, width)
            pos += q if width == "sym" else int(width)
        self._stat = np.zeros((n * K, pos))
        self._inc = np.empty((n, pos))
        self._outer_t = np.empty((q, n))
        self._bi = np.arange(n)
        self._off = self._bi * K
        self.T = np.empty((n, K, d + 1, d))
        self._T3 = self.T.reshape(n, K * (d + 1), d)
        self._Tf = self.T.reshape(n * K, d + 1, d)
        self._proj = np.empty((n, K * (d + 1), 1))
        p4 = self._proj.reshape(n, K, d + 1)
        self._phi, self._mu = p4[:, :, :d], p4[:, :, d]                 # views (n, K, d), (n, K)
        self._var = np.empty((n, K))
        self._var0 = np.empty((n, K))
        # the Potter correction of a cell's block [S^T; m^T]: rows :d get phi (beta S phi)^T,
        # row d stays 0, so one contiguous subtraction updates the gathered block
        self._outer = np.zeros((n, d + 1, d))
        self._cellbuf = np.empty((n, d + 1, d))
        self._z = BlockNormals()
        self._since = 0

    # ----- statistics -----------------------------------------------------------------------
    def _col(self, name: str) -> slice:
        pos, width = self._cols[name]
        return slice(pos, pos + (self._q if width == "sym" else int(width)))

    def _sync_stats(self) -> None:
        """Write the packed statistics into the model's arrays (``stats``)."""
        sp = self._stat
        for name, (_, width) in self._cols.items():
            arr, col = self.stats[name], sp[:, self._col(name)]
            if width == "sym":
                flat = arr.reshape(-1, self.d, self.d)
                flat[:, self._iu, self._ju] = col
                flat[:, self._ju, self._iu] = col
            else:
                arr.reshape(sp.shape[0], -1)[...] = col          # (cells, width) views

    def _pack_stats(self) -> None:
        """Read the model's arrays (``stats``) into the packed rows."""
        sp = self._stat
        for name, (_, width) in self._cols.items():
            arr, col = self.stats[name], self._col(name)
            if width == "sym":
                sp[:, col] = arr.reshape(-1, self.d, self.d)[:, self._iu, self._ju]
            else:
                sp[:, col] = arr.reshape(sp.shape[0], -1)

    def _learn_cells(self, cell: np.ndarray) -> None:
        """Add the increments prepared in ``_inc`` (one row per lane) to the cells."""
        self._stat[cell] += self._inc

    def current_stats(self) -> Stats:
        """The model's statistics ``(n, K, ...)`` (the state's own arrays, up to date)."""
        self._sync_stats()
        return self.stats

    # ----- decisions ------------------------------------------------------------------------
    def project(self, x: np.ndarray) -> np.ndarray:
        """Every lane's and arm's ``phi = S^T x`` and ``m . x`` for contexts ``x`` ``(n, d)``
        (one product per lane); returns the predictive variances ``|phi|^2`` ``(n, K)`` (a
        buffer, rewritten by the next call)."""
        np.matmul(self._T3, x[:, :, None], out=self._proj)
        return np.einsum("nke,nke->nk", self._phi, self._phi, out=self._var)

    def _noise_draw(self, rng: np.random.Generator, var: np.ndarray) -> None:
        """Multiply ``var`` by a posterior draw of the noise scale (learned noise only)."""

    def thompson(self, index: int, rng: np.random.Generator, scale: float = 1.0) -> LaneScorer:
        """The Thompson step from ``rng``: ``score(x)`` returns one draw of every arm's
        ``x^T w`` ``(n, K)``, ``m . x + sqrt(scale^2 |phi|^2 [sigma^2]) z``, the weight
        covariance tempered by ``scale**2`` (``index`` is ignored: one policy per state).
        ``begin(size)`` draws a block's standard normals in one call when nothing else draws
        between rounds (same stream, same values)."""
        scale2 = float(scale) ** 2
        z_block = self._z

        def score(x: np.ndarray) -> np.ndarray:
            var = self.project(x)
            self._var0[...] = var                   # |phi|^2, for ``mean_scores``
            if scale2 != 1.0:
                var *= scale2
            if self._draws_noise:
                z = rng.standard_normal(var.shape)
                self._noise_draw(rng, var)
            else:
                z = z_block.next(rng, var.shape)
            np.sqrt(var, out=var)
            var *= z
            var += self._mu
            return var

        def begin(size: int) -> None:
            # a learned noise scale draws a gamma after the normals of each round, so the
            # normals of a block cannot be drawn ahead without changing the stream
            if not self._draws_noise:
                z_block.begin(rng, size, (self.n_lanes, self.n_arms))
        return LaneScorer(score, begin)

    @property
    def _draws_noise(self) -> bool:
        return False

    def mean_scores(self) -> np.ndarray:
        """``(n, K)``, increasing in each arm's posterior mean reward at the contexts of the
        last :meth:`project` (the state that made the decision)."""
        return self._mu

    # ----- learning -------------------------------------------------------------------------
    def _chosen_block(self, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cell, block, phi)``: the chosen cells, a copy of their ``[S^T; m^T]`` blocks and
        their projections (from the last :meth:`project`)."""
        cell = self._off + chosen
        blk = self._Tf.take(cell, axis=0, out=self._cellbuf, mode="clip")
        return cell, blk, self._phi[self._bi, chosen]

    def _tick(self) -> bool:
        """Count an online update; True (after refreshing from ``stats``) when it was time."""
        self._since += 1
        if self._since >= self.refresh_every:
            self._refresh()
            return True
        return False

    def _refresh(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        """A batch of (delayed) observations; a lane may appear several times. The model's own
        :meth:`accumulate` learns them, then the factors are refreshed."""
        self._sync_stats()
        self.model.accumulate(self.stats, arms, rewards, contexts, batch_index=lanes)
        self._pack_stats()
        self._after_apply()
        self._refresh()

    def _after_apply(self) -> None:
        """Hook: read any state kept outside the packed rows back from ``stats``."""


class LinearLanes(GaussianLanes):
    """:class:`~.linear.LinearGaussian` over ``n`` lanes (known or learned noise).

    >>> import numpy as np
    >>> from tsbandit.policies import LinearGaussian, ThompsonSampling
    >>> lanes = LinearGaussian(n_features=2).lanes(4, 3)
    >>> x = np.ones((4, 2))
    >>> scorer = ThompsonSampling().lane_scorer(lanes, 0, np.random.default_rng(0))
    >>> chosen = scorer.score(x).argmax(axis=1)
    >>> lanes.observe(chosen, np.ones(4), x)
    >>> lanes.posterior().mean.shape
    (4, 3, 2)
    """

    def __init__(self, model: Any, n_lanes: int, n_arms: int) -> None:
        d = int(model.n_features)
        super().__init__(model, n_lanes, n_arms, model.refresh_every,
                         [("A", "sym"), ("b", d), ("n", 1), ("sum_r", 1), ("sum_r2", 1)])
        self._inc[:, self._col("n")] = 1.0
        self._noise = 1.0 if model.unknown_noise else model.noise_variance
        self.noise_a: np.ndarray | None = None
        self.noise_b: np.ndarray | None = None
        self._refresh()

    @property
    def _draws_noise(self) -> bool:
        return self.noise_a is not None

    def _noise_draw(self, rng: np.random.Generator, var: np.ndarray) -> None:
        assert self.noise_a is not None and self.noise_b is not None
        var *= self.noise_b / rng.standard_gamma(self.noise_a)

    def _refresh(self) -> None:
        post = self.model.posterior(self.current_stats())
        self.T[:, :, :self.d] = np.swapaxes(post.sqrt_cov, -1, -2)
        self.T[:, :, self.d] = post.mean
        self.noise_a = None if post.noise_a is None else np.array(post.noise_a)
        self.noise_b = None if post.noise_b is None else np.array(post.noise_b)
        self._since = 0

    def observe(self, chosen: np.ndarray, rewards: np.ndarray, x: np.ndarray) -> None:
        """One observation per lane: lane ``j`` pulled ``chosen[j]`` in the context ``x[j]``
        of the last :meth:`project` and got ``rewards[j]``."""
        inc, d = self._inc, self.d
        upper_outer(x, x, inc[:, self._col("A")], self._outer_t)
        np.multiply(rewards[:, None], x, out=inc[:, self._col("b")])
        inc[:, self._col("sum_r").start] = rewards
        np.multiply(rewards, rewards, out=inc[:, self._col("sum_r2").start])
        cell, blk, phi = self._chosen_block(chosen)
        self._learn_cells(cell)
        if self._tick():
            return
        s_phi = np.einsum("nji,nj->ni", blk[:, :d], phi)           # S phi = Sigma x
        linear_update_rows(blk, phi, s_phi, self._mu[self._bi, chosen], rewards, self._noise,
                           self._outer)
        self._Tf[cell] = blk
        if self.noise_a is not None:
            assert self.noise_b is not None
            row, m = self._stat[cell], blk[:, d]
            model, bi = self.model, self._bi
            self.noise_a[bi, chosen], self.noise_b[bi, chosen] = model.noise_params(
                row[:, self._col("n").start], np.einsum("ni,ni->n", row[:, self._col("b")], m),
                row[:, self._col("sum_r2").start])

    @property
    def S(self) -> np.ndarray:
        """``(n, K, d, d)`` square-root factors (a copy)."""
        return np.ascontiguousarray(np.swapaxes(self.T[:, :, :self.d], -1, -2))

    @property
    def m(self) -> np.ndarray:
        """``(n, K, d)`` posterior means (a copy)."""
        return self.T[:, :, self.d].copy()

    def posterior(self) -> Any:
        """The posterior in the model's own layout (copies of the lanes' arrays)."""
        from .linear import LinearPosterior

        self._sync_stats()  # leave ``stats`` complete for callers that read it
        return LinearPosterior(self.m, self.S, self.noise_a, self.noise_b)
