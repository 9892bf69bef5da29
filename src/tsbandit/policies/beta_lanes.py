"""Beta-Bernoulli posteriors of many independent lanes at once (the lab's batched state).

A *lane* is one independent copy of a bandit (one simulated trial of one policy). ``BetaLanes``
keeps, for ``P`` policies (each with its own :class:`~.beta.BetaBernoulli` prior) of ``n`` lanes
and ``K`` arms, the rows ``alpha``, ``beta``, ``alpha + beta`` and (when a count-based rule such
as UCB1 runs) the pull count ``N`` and the reward sum ``S`` in one array ``X`` ``(P, R, n, K)``.
It owns the Beta math of a lane: the Thompson draw (:meth:`thompson`), the posterior means
(:meth:`mean_writer`), and the rounds of a block, each an arg-max plus learning
(:meth:`run_rounds`, one scatter-add for every policy at once: the flat cells
``offset(policy, row, lane) + arm`` receive ``r, 1 - r, 1, 1, r`` gathered from a per-block
table of ``r``, ``1 - r`` and ``1``). Selection rules score a policy's lanes through their
``lane_scorer`` (:mod:`.rules`); the simulation lab drives this class and writes no posterior
math of its own.

With the optional compiled kernels (numba, :mod:`._beta_kernels`) the Thompson step and the
round's arg-max + scatter-add are one compiled call each, bit-identical to the NumPy calls they
replace (same draws in the same order, same IEEE operations); ``TSBANDIT_JIT=0`` or a failed
load-time check keeps the NumPy path.

>>> import numpy as np
>>> from tsbandit.policies import BetaBernoulli
>>> lanes = BetaLanes([BetaBernoulli(), BetaBernoulli(0.5, 0.5)], n_lanes=3, n_arms=2)
>>> lanes.add(np.array([0, 0, 3]), np.array([1, 1, 0]), np.array([1.0, 0.0, 1.0]))
>>> lanes.posterior(0).alpha.tolist(), lanes.posterior(1).alpha.tolist()[0]
([[1.0, 2.0], [1.0, 1.0], [1.0, 1.0]], [1.5, 0.5])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from . import _jit
from .beta import BetaBernoulli, BetaPosterior
from .rules.base import LaneScorer, lanes_argmax

__all__ = ["BetaLanes", "LaneScore"]

#: a policy's scoring step: ``score(b, m)`` writes its lanes' scores ``(n, K)`` for block row
#: ``b`` and, unless ``m`` is ``None``, its posterior means into ``m`` ``(n, K)``
LaneScore = Callable[[int, "np.ndarray | None"], None]

#: rows of ``X`` and the row of the reward table each one learns from (r, 1 - r, 1, 1, r)
_TABLE_ROW = (0, 1, 2, 2, 0)


class BetaLanes:
    """Beta posteriors of ``P`` policies x ``n_lanes`` lanes x ``n_arms`` arms in one array.

    Parameters
    ----------
    models
        One prior per policy.
    n_lanes, n_arms
        Lanes per policy and arms.
    counts
        Also keep each cell's pull count ``N`` and reward sum ``S`` (rows 3 and 4), for rules
        that score from counts (UCB1).
    """

    def __init__(self, models: Sequence[BetaBernoulli], n_lanes: int, n_arms: int,
                 counts: bool = False) -> None:
        self.n_policies = P = len(models)
        self.n_lanes = n = n_lanes
        self.n_arms = K = n_arms
        self.models = list(models)
        a0 = np.array([m.alpha0 for m in models])
        b0 = np.array([m.beta0 for m in models])
        self.R = R = 5 if counts else 3
        self.X = X = np.zeros((P, R, n, K))
        X[:, 0] = a0[:, None, None]
        X[:, 1] = b0[:, None, None]
        X[:, 2] = (a0 + b0)[:, None, None]
        self._Xf = X.reshape(-1)
        self._nK = nK = n * K
        L = P * n
        lane = np.arange(L)
        pol, trial = lane // n, lane % n
        rows = np.arange(R)
        x_off = pol[None, :] * (R * nK) + rows[:, None] * nK + trial[None, :] * K
        t_off = np.array(_TABLE_ROW[:R])[:, None] * nK + trial[None, :] * K
        self._OFF = np.stack([x_off, t_off]).astype(np.intp)            # (2, R, L)
        self._IDX = np.empty_like(self._OFF)
        #: ``(P, n, K)``: the scores each policy's scoring step writes (its lanes' choice is the
        #: arg-max), and ``(P * n, K)`` the same rows lane by lane
        self.scores = np.empty((P, n, K))
        self.scores2 = self.scores.reshape(L, K)
        self._cap = 0
        self._table = np.empty((0, 3, n, K))
        self._tflat = self._table.reshape(0, 3 * nK)
        self._learn = True
        #: observations learned so far in every lane (immediate feedback), and whether any came
        #: late (delayed feedback: lanes then differ)
        self.t_obs = 0.0
        self.delayed = False
        jit = _jit.kernels()
        self._jit_draw = None if jit is None else jit.beta_lanes_draw
        self._jit_book = None if jit is None else jit.beta_lanes_book
        self._jit_addr = None if jit is None else jit.addresses

    @staticmethod
    def accepts(model: object) -> bool:
        """True when ``model``'s posterior is this state's (a :class:`BetaBernoulli`, not a
        subclass that may draw differently)."""
        return type(model) is BetaBernoulli

    @property
    def compiled(self) -> tuple[bool, bool]:
        """Whether the compiled Thompson step and the compiled round step are in use."""
        return self._jit_draw is not None, self._jit_book is not None

    # ----- views ------------------------------------------------------------------------
    def counts(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Policy ``i``'s pull counts ``N`` and reward sums ``S`` ``(n, K)`` (views; needs
        ``counts=True``)."""
        return self.X[i, 3], self.X[i, 4]

    def posterior(self, i: int) -> BetaPosterior:
        """Policy ``i``'s posterior, ``(n, K)`` per parameter (copies)."""
        return BetaPosterior(self.X[i, 0].copy(), self.X[i, 1].copy())

    def means(self) -> np.ndarray:
        """``(P * n, K)`` posterior means of every lane (a new array)."""
        out = np.empty((self.n_policies, self.n_lanes, self.n_arms))
        for i in range(self.n_policies):
            self.mean_writer(i)(out=out[i])
        return out.reshape(-1, self.n_arms)

    def mean_writer(self, i: int) -> Callable[..., np.ndarray]:
        """``write(out=m)`` puts policy ``i``'s posterior means ``alpha / (alpha + beta)`` into
        ``m`` ``(n, K)`` (bound once: the scorers call it every round)."""
        return partial(np.divide, self.X[i, 0], self.X[i, 2])

    # ----- the Thompson draw --------------------------------------------------------------
    def thompson(self, i: int, rng: np.random.Generator, scale: float = 1.0) -> LaneScorer:
        """Policy ``i``'s Thompson step: one posterior draw per lane and arm into
        ``scores[i]``, from ``rng`` (its ``score(b, m)`` is a :data:`LaneScore`).

        The gamma variates are those of :meth:`BetaBernoulli.sample` (one
        ``standard_gamma((alpha, beta))`` call: ``X``, ``Y``). With ``scale == 1`` the score is
        ``X / Y``, increasing in the draw ``X / (X + Y)`` (the same arg-max, one operation
        fewer); otherwise the tempered draw ``mean + scale (X / (X + Y) - mean)``
        (:meth:`~.base.RewardModel.sample_scaled`).
        """
        AB, denom, out = self.X[i, :2], self.X[i, 2], self.scores[i]
        if self._jit_draw is not None and self._jit_addr is not None:
            return LaneScorer(self._compiled_thompson(AB, denom, out, rng, scale))
        mean_of = self.mean_writer(i)
        divide, add = np.divide, np.add
        G = np.empty_like(AB)
        g0, g1 = G[0], G[1]
        gamma = rng.standard_gamma
        if scale == 1.0:

            def ts(b: int, m: np.ndarray | None) -> None:
                if m is not None:
                    mean_of(out=m)
                gamma(AB, out=G)
                divide(g0, g1, out=out)  # increasing in the draw g0 / (g0 + g1)
            return LaneScorer(ts)
        tmp, own = np.empty_like(out), np.empty_like(out)

        def tts(b: int, m: np.ndarray | None) -> None:
            mean = own if m is None else m
            mean_of(out=mean)
            gamma(AB, out=G)
            add(g0, g1, out=tmp)
            divide(g0, tmp, out=out)
            np.subtract(out, mean, out=out)
            np.multiply(out, scale, out=out)
            add(out, mean, out=out)
        return LaneScorer(tts)

    def _compiled_thompson(self, AB: np.ndarray, denom: np.ndarray, out: np.ndarray,
                           rng: np.random.Generator, scale: float) -> LaneScore:
        """:meth:`thompson` in one compiled call: the same means, the same gamma draws (in
        ``standard_gamma(AB)``'s order) and the same arithmetic."""
        draw = self._jit_draw
        assert draw is not None and self._jit_addr is not None
        addr = self._jit_addr(rng)[1]
        lock = rng.bit_generator.lock
        own = np.empty_like(out)
        if scale == 1.0:

            def ts(b: int, m: np.ndarray | None) -> None:
                with lock:
                    if m is None:
                        draw(AB, denom, own, False, 1.0, out, addr)
                    else:
                        draw(AB, denom, m, True, 1.0, out, addr)
            return ts

        def tts(b: int, m: np.ndarray | None) -> None:
            with lock:
                draw(AB, denom, own if m is None else m, True, scale, out, addr)
        return tts

    # ----- choosing and learning -------------------------------------------------------------
    def choose(self) -> np.ndarray:
        """``(P * n,)`` each lane's arm: the arg-max of its row of ``scores`` (NumPy's rule:
        the first maximum, or the first NaN)."""
        return lanes_argmax(self.scores2)

    def bind_rewards(self, rewards: np.ndarray, learn: bool = True) -> None:
        """The rounds of a block: ``rewards`` ``(B, n * K)`` is what each lane would get from
        each arm in each of ``B`` rounds (the same for every policy: common random numbers);
        :meth:`run_rounds` then plays them, learning each round's observations when
        ``learn`` (immediate feedback)."""
        B = rewards.shape[0]
        n, K, nK = self.n_lanes, self.n_arms, self._nK
        if B > self._cap:
            self._cap = B
            self._table = np.empty((B, 3, n, K))
            self._table[:, 2] = 1.0
        r = rewards[:, :nK].reshape(B, n, K)
        self._table[:B, 0] = r
        np.subtract(1.0, r, out=self._table[:B, 1])
        self._tflat = self._table.reshape(self._cap, 3 * nK)
        self._learn = learn

    def run_rounds(self, b0: int, b1: int, scores: Sequence[LaneScore], chosen: np.ndarray,
                   v: np.ndarray, means: np.ndarray | None = None) -> None:
        """Rows ``b0 .. b1 - 1`` of the bound block. Each round every policy's scoring step
        ``scores[i](b, m)`` writes its lanes' scores (and, with ``means`` ``(B, P, n, K)``,
        its posterior means into ``means[b, i]``); then ``chosen[b]`` ``(P * n,)`` receives
        each lane's arm (:func:`~.rules.base.lanes_argmax`), ``v[b]`` ``(R, P * n)`` the
        increments of its observation (``v[b, 0]`` is the reward, gathered from a table
        ``r, 1 - r, 1``), and, when learning, the state adds them, every policy in one
        scatter-add (one compiled call, argmax included, with the kernels)."""
        tflat, learn, scores2, OFF, Xf = self._tflat, self._learn, self.scores2, self._OFF, self._Xf
        book = self._jit_book if learn else None
        IDX = self._IDX
        xidx, tidx = IDX[0], IDX[1]
        add = np.add
        pol = range(len(scores))
        for b in range(b0, b1):
            if means is None:
                for score in scores:
                    score(b, None)
            else:
                mb = means[b]
                for i in pol:
                    scores[i](b, mb[i])
            ch, vb = chosen[b], v[b]
            if book is not None:
                book(scores2, ch, OFF, tflat[b], Xf, vb)  # argmax + gather + add
            else:
                lanes_argmax(scores2, ch)
                add(OFF, ch, out=IDX)
                tflat[b].take(tidx, out=vb, mode="clip")
                if learn:
                    Xf[xidx] += vb
            if learn:
                self.t_obs += 1.0

    def observe(self, chosen: np.ndarray, rewards: np.ndarray) -> None:
        """One observation per lane (``chosen``, ``rewards`` ``(P * n,)``)."""
        self._scatter(np.arange(self.n_policies * self.n_lanes), chosen, rewards)
        self.t_obs += 1.0

    def add(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Delayed observations ``(lane, arm, reward)``, lanes numbered ``policy * n + trial``;
        a lane may appear several times (lanes then differ in how much they saw)."""
        self.delayed = True
        self._scatter(lanes, arms, rewards)

    def _scatter(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        r = np.asarray(rewards, dtype=np.float64)
        idx = self._OFF[0][:, lanes] + arms                               # (R, m)
        one = np.ones_like(r)
        np.add.at(self._Xf, idx.ravel(), np.stack([r, 1.0 - r, one, one, r][:self.R]).ravel())
