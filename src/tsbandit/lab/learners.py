"""Learners: one policy (or a group of them) advancing all its trials in lock-step as arrays.

A learner owns ``L`` *lanes* — one per (policy, trial) — and the learned state of every lane in
a few arrays (the reward model's statistics with a leading batch axis). Each round the runner
asks it for one arm per lane, tells it the rewards, and asks which decisions were exploratory.
No per-trial Python object exists in the hot loop.

* :class:`ModelLearner` drives any reward model and selection rule of
  :mod:`tsbandit.policies` through their public, batched API (optionally with a sliding window
  or discounting).
* :class:`BetaLanes` is the fast path for context-free Beta-Bernoulli policies (Thompson, UCB1,
  epsilon-greedy, greedy, random): several policies share one ``(L, K)`` state so that one
  NumPy call serves all of them; it is statistically the same policy as the model path.
* :class:`LinearTSLanes` is the fast path for linear Thompson sampling (known or learned noise):
  one projection per round serves both the draw and the O(d^2) update.
* :class:`TutorialLinearLearner` reproduces the tutorial's Part 7 class *as printed*, including
  its mean-update bug, so that the lab can show what that bug costs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies import (
    UCB1,
    BetaBernoulli,
    EpsilonGreedy,
    Greedy,
    LinearGaussian,
    RandomPolicy,
    ThompsonSampling,
    _jit,
)
from ..policies.base import RewardModel
from ..policies.logistic import _NEWTON_1D_STEPS
from ..policies.rules import SelectionRule
from .rules import TemperedThompsonSampling

__all__ = [
    "BetaLanes",
    "Learner",
    "LinearTSLanes",
    "LogisticTSLanes",
    "ModelLearner",
    "TutorialLinearLearner",
]

#: tie-breaking perturbation for equal posterior means in the Beta fast path: far below the
#: smallest difference of two distinct means a/(a+b) with counts under 10^5 (about 1e-10)
_TIE = 1e-13


class Learner(ABC):
    """Lanes of one or more policies; ``n_lanes = n_policies * n_trials``."""

    n_lanes: int
    n_policies: int = 1

    def begin_block(self, size: int) -> None:  # noqa: B027 - optional hook
        """Called before each block of ``size`` rounds (pre-draw randomness here)."""

    @abstractmethod
    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        """One arm per lane, ``(L,)`` int, for round ``t`` (``contexts`` ``(n, d)``)."""

    @abstractmethod
    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        """``(L,)`` bool: the chosen arm's posterior mean is below the best posterior mean
        (evaluated with the state used for the decision, before the reward is observed)."""

    @abstractmethod
    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        """One observation per lane, applied at once."""

    @abstractmethod
    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        """A batch of delayed observations (a lane may appear several times)."""

    def final_state(self) -> list[dict[str, Any]]:
        """One dict per policy describing its final posterior (for plots and reports)."""
        return [{} for _ in range(self.n_policies)]

    def step(self, t: int, contexts: np.ndarray | None, if_pulled: np.ndarray,
             out_reward: np.ndarray, out_chosen: np.ndarray, out_explore: np.ndarray | None,
             immediate: bool) -> None:
        """One round: choose, record, and (when ``immediate``) learn.

        ``if_pulled`` ``(L * K,)`` is the reward each lane would get from each arm
        (lane-major); the ``out_*`` rows ``(L,)`` receive the realized reward, the chosen arm
        and the exploration flag. Subclasses may fuse these steps; the default composes
        :meth:`choose`, :meth:`exploring` and :meth:`observe`.
        """
        ch = self.choose(t, contexts)
        if out_explore is not None:
            out_explore[...] = self.exploring(contexts, ch)
        idx = np.arange(0, if_pulled.shape[0], if_pulled.shape[0] // ch.shape[0]) + ch
        np.take(if_pulled, idx, out=out_reward)
        out_chosen[...] = ch
        if immediate:
            self.observe(ch, out_reward, contexts)

    def bind_block(self, if_pulled: np.ndarray, rewards: np.ndarray, chosen: np.ndarray,
                   explore: np.ndarray | None, immediate: bool) -> None:
        """Attach the runner's arrays of one block: ``if_pulled`` ``(B, L * K)`` and the
        output rows ``(B, L)``; then :meth:`step_row` advances one round of the block."""
        self._blk = (if_pulled, rewards, chosen, explore, immediate)

    def step_row(self, b: int, t: int, contexts: np.ndarray | None) -> None:
        """Round ``t`` = row ``b`` of the bound block (see :meth:`bind_block`)."""
        ip, rew, ch, ex, immediate = self._blk
        self.step(t, contexts, ip[b], rew[b], ch[b], None if ex is None else ex[b], immediate)

    def run_block(self, size: int, start: int, contexts: np.ndarray | None) -> None:
        """All ``size`` rounds of the bound block, rounds ``start ..`` (``contexts``
        ``(size, n, d)`` or ``None``), when nothing else happens between rounds (immediate
        feedback). Subclasses may run the loop with fewer NumPy calls."""
        for b in range(size):
            self.step_row(b, start + b, None if contexts is None else contexts[b])

    def end_block(self, size: int) -> None:  # noqa: B027 - optional hook
        """Called after the ``size`` rows of the bound block, before the runner reads them."""


def _tile_contexts(contexts: np.ndarray | None, n_policies: int) -> np.ndarray | None:
    if contexts is None or n_policies == 1:
        return contexts
    return np.tile(contexts, (n_policies, 1))


# ---------------------------------------------------------------------------------------------
class ModelLearner(Learner):
    """Any :class:`~tsbandit.policies.base.RewardModel` with any selection rule, all trials as
    one batch of statistics ``(n_trials, K, ...)``.

    Parameters
    ----------
    model, rule
        The policy.
    n_trials, n_arms
        Lanes and arms.
    rng
        This policy's own stream.
    window, discount
        Keep only the last ``window`` observations of each trial (exact subtraction), or
        multiply the statistics by ``discount`` before each observation.
    """

    def __init__(self, model: RewardModel, rule: SelectionRule, n_trials: int, n_arms: int,
                 rng: np.random.Generator, window: int | None = None,
                 discount: float | None = None) -> None:
        if window is not None and not model.additive:
            raise ConfigurationError(
                f"window needs additive statistics; {type(model).__name__} has none")
        self.model = model
        self.rule = rule
        self.rng = rng
        self.n_lanes = n_trials
        self.n_arms = n_arms
        self.uses_context = model.contextual
        self.stats = model.init_stats(n_arms, (n_trials,))
        self.post = model.posterior(self.stats)
        self._bi = np.arange(n_trials)
        self.window = window
        self.discount = discount if discount is not None and discount < 1.0 else None
        self._filled = 0
        self._pos = 0
        if window is not None:
            self._w_arms = np.zeros((window, n_trials), dtype=np.int64)
            self._w_rewards = np.zeros((window, n_trials))
            d = model.n_features
            self._w_ctx = np.zeros((window, n_trials, d)) if d else None

    def _x(self, contexts: np.ndarray | None) -> np.ndarray | None:
        return contexts if self.uses_context else None

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        return self.rule.choose(self.model, self.post, self.stats, self.rng,
                                self._x(contexts))[:, 0]

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        m = self.model.mean(self.post, self._x(contexts))
        return np.asarray(m[self._bi, chosen] < m.max(axis=-1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        x = self._x(contexts)
        model, bi = self.model, self._bi
        if self.discount is not None:
            self.stats = model.decay(self.stats, self.discount)
        model.accumulate(self.stats, chosen, rewards, x, batch_index=bi)
        if self.window is not None:
            if self._filled == self.window:
                old_x = None if self._w_ctx is None else self._w_ctx[self._pos]
                model.accumulate(self.stats, self._w_arms[self._pos], self._w_rewards[self._pos],
                                 old_x, batch_index=bi, weights=np.full(bi.shape[0], -1.0))
            else:
                self._filled += 1
            self._w_arms[self._pos] = chosen
            self._w_rewards[self._pos] = rewards
            if self._w_ctx is not None and x is not None:
                self._w_ctx[self._pos] = x
            self._pos = (self._pos + 1) % self.window
        if self.discount is not None or self.window is not None:
            self.post = model.posterior(self.stats)
        else:
            self.post = model.update_posterior_cells(self.post, self.stats, bi, chosen, rewards,
                                                      x)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        if self.window is not None or self.discount is not None:
            raise ConfigurationError("delayed feedback with a window or discount is not supported")
        self.model.accumulate(self.stats, arms, rewards, self._x(contexts), batch_index=lanes)
        self.post = self.model.posterior(self.stats)

    def final_state(self) -> list[dict[str, Any]]:
        return [posterior_state(self.model, self.post)]


def posterior_state(model: RewardModel, post: Any) -> dict[str, Any]:
    """Arrays describing a batch of posteriors, for plots and feature importance."""
    if isinstance(model, BetaBernoulli):
        return {"kind": "beta", "alpha": np.array(post.alpha), "beta": np.array(post.beta)}
    weight_interval = getattr(model, "weight_interval", None)
    if weight_interval is not None:
        low, high = weight_interval(post)
        return {"kind": "linear", "mean": np.array(post.mean), "low": low, "high": high,
                "scale": "linear"}
    if hasattr(post, "mean") and hasattr(post, "sqrt_cov"):
        from scipy.special import ndtri

        sd = np.sqrt(np.einsum("...ij,...ij->...i", post.sqrt_cov, post.sqrt_cov))
        half = ndtri(0.975) * sd
        return {"kind": "linear", "mean": np.array(post.mean), "low": post.mean - half,
                "high": post.mean + half, "scale": "logit"}
    return {}


# ---------------------------------------------------------------------------------------------
_FAST_RULES = (ThompsonSampling, TemperedThompsonSampling, UCB1, EpsilonGreedy, Greedy,
               RandomPolicy)


def _thompson_scale(rule: SelectionRule) -> float | None:
    """Posterior scale of a Thompson rule (1 for plain Thompson sampling), else ``None``."""
    if isinstance(rule, (ThompsonSampling, TemperedThompsonSampling)):
        return float(getattr(rule, "scale", 1.0))
    return None


def beta_fast_path_ok(model: RewardModel, rule: SelectionRule) -> bool:
    """True when :class:`BetaLanes` implements this (model, rule) pair."""
    return type(model) is BetaBernoulli and type(rule) in _FAST_RULES


class BetaLanes(Learner):
    """Context-free Beta-Bernoulli policies sharing one state array.

    Each policy's randomness comes from its own stream (so a policy's results do not depend on
    which other policies run beside it). Thompson draws are ``Beta`` via two gamma variates
    (exactly the draws of :meth:`BetaBernoulli.sample`; plain Thompson sampling ranks
    ``X / Y``, whose arg-max is that of the draw ``X / (X + Y)``), UCB1 is
    ``mean + c sqrt(2 ln t / n)`` with every arm tried once first, epsilon-greedy and greedy
    rank posterior means; ties are broken uniformly at random by a perturbation far below the
    resolution of the means.

    Layout: ``X`` ``(P, R, n, K)`` holds, for each policy, the rows ``alpha``, ``beta``,
    ``alpha + beta`` and (when a UCB1 policy runs) the pull count ``N`` and the reward sum
    ``S``. One round's learning is then a single scatter-add for every policy at once: the
    flat cells ``offset(policy, row, trial) + arm`` receive ``r, 1 - r, 1, 1, r``, gathered by
    one ``take`` from a per-block table ``(B, 3, n, K)`` of ``r``, ``1 - r`` and ``1`` (shared
    by all policies: common random numbers). A round is one gamma call per Thompson policy
    plus about a dozen small NumPy calls for any mix of policies, with no allocation. The
    exploration flags (is the pulled arm's posterior mean below the best one?) are evaluated
    at the end of each block for all its rounds at once, from the posterior means each round
    wrote into a block buffer (one division per policy and round, which epsilon-greedy and
    greedy score with anyway).

    With the optional compiled kernels (numba, :mod:`tsbandit.policies._jit`) the Thompson step
    (means, gamma draws, ratio) and the round's arg-max and scatter-add are one compiled call
    each, bit-identical to the NumPy calls they replace (same draws in the same order, same
    IEEE operations); ``TSBANDIT_JIT=0`` or a failed load-time check keeps the NumPy path.
    """

    def __init__(self, policies: list[tuple[BetaBernoulli, SelectionRule, np.random.Generator]],
                 n_trials: int, n_arms: int) -> None:
        self.n_policies = P = len(policies)
        self.n_trials = n = n_trials
        self.n_arms = K = n_arms
        self.n_lanes = L = P * n
        self.rules = [r for _, r, _ in policies]
        self.rngs = [g for _, _, g in policies]
        self.a0 = np.array([m.alpha0 for m, _, _ in policies])
        self.b0 = np.array([m.beta0 for m, _, _ in policies])
        self._has_ucb = any(isinstance(r, UCB1) for r in self.rules)
        self._R = R = 5 if self._has_ucb else 3
        self.X = X = np.zeros((P, R, n, K))
        X[:, 0] = self.a0[:, None, None]
        X[:, 1] = self.b0[:, None, None]
        X[:, 2] = (self.a0 + self.b0)[:, None, None]
        self._Xf = X.reshape(-1)
        self._nK = nK = n * K
        lane = np.arange(L)
        pol, trial = lane // n, lane % n
        rows = np.arange(R)
        x_off = pol[None, :] * (R * nK) + rows[:, None] * nK + trial[None, :] * K
        t_off = np.array([0, 1, 2, 2, 0][:R])[:, None] * nK + trial[None, :] * K
        self._OFF = np.stack([x_off, t_off]).astype(np.intp)            # (2, R, L)
        self._IDX = np.empty_like(self._OFF)
        self.scores = np.empty((P, n, K))
        self._scores2 = self.scores.reshape(L, K)
        self._delayed = False
        self._t_obs = 0.0
        self._pre: list[dict[str, np.ndarray]] = [{} for _ in range(P)]
        self._cap = 0
        # optional compiled steps (numba), bit-identical to the NumPy ops they replace
        jit = _jit.kernels()
        self._jit_draw = None if jit is None else jit.beta_lanes_draw
        self._jit_book = None if jit is None else jit.beta_lanes_book
        self._jit_addr = None if jit is None else jit.addresses
        self._kernels = [self._kernel(i) for i in range(P)]

    @property
    def AB(self) -> np.ndarray:
        """``(P, 2, n, K)``: each policy's ``alpha`` and ``beta`` (a view of the state)."""
        return self.X[:, :2]

    def _kernel(self, i: int) -> Any:
        """The scoring step of policy ``i``: writes its lanes' scores for block row ``b``, and
        its posterior means into ``m`` ``(n, K)`` unless ``m`` is ``None``."""
        rule, rng = self.rules[i], self.rngs[i]
        AB, alpha, denom, out = self.X[i, :2], self.X[i, 0], self.X[i, 2], self.scores[i]
        pre = self._pre
        scale = _thompson_scale(rule)
        divide, add = np.divide, np.add
        if scale is not None and self._jit_draw is not None and self._jit_addr is not None:
            return self._compiled_ts(AB, denom, out, rng, scale)
        if scale is not None:
            G = np.empty_like(AB)
            g0, g1 = G[0], G[1]
            gamma = rng.standard_gamma
            if scale == 1.0:

                def ts(b: int, m: Any) -> None:
                    if m is not None:
                        divide(alpha, denom, out=m)
                    gamma(AB, out=G)
                    divide(g0, g1, out=out)  # increasing in the draw g0 / (g0 + g1)
                return ts
            tmp, own = np.empty_like(out), np.empty_like(out)

            def tts(b: int, m: Any) -> None:
                # mean + scale * (draw - mean), the draw as in ``ts``
                mean = own if m is None else m
                divide(alpha, denom, out=mean)
                gamma(AB, out=G)
                add(g0, g1, out=tmp)
                divide(g0, tmp, out=out)
                np.subtract(out, mean, out=out)
                np.multiply(out, scale, out=out)
                add(out, mean, out=out)
            return tts
        if isinstance(rule, UCB1):
            c2 = 2.0 * rule.c**2
            ready = [False]
            tmp = np.empty_like(out)
            N, S = self.X[i, 3], self.X[i, 4]
            k = np.zeros(())  # a 0-d array: NumPy converts a Python float on every call

            def ucb(b: int, m: Any) -> None:
                if m is not None:
                    divide(alpha, denom, out=m)
                if not ready[0] and not self._delayed and bool((N > 0).all()):
                    ready[0] = True  # counts only grow: every arm stays tried
                if ready[0] and not self._delayed:
                    # immediate feedback: t observations in every lane
                    k[()] = c2 * math.log(max(self._t_obs, 1.0))
                    divide(k, N, out=tmp)
                    np.sqrt(tmp, out=tmp)
                    divide(S, N, out=out)
                    add(out, tmp, out=out)
                else:
                    tot = N.sum(axis=1, keepdims=True)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        val = S / N + np.sqrt(c2 * np.log(np.maximum(tot, 1.0)) / N)
                    out[...] = np.where(N > 0, val, np.inf)
                add(out, pre[i]["tie"][b], out=out)
            return ucb
        if isinstance(rule, (EpsilonGreedy, Greedy)):

            def eg(b: int, m: Any) -> None:
                # pre = random tie-break, plus (exploring rows) 2 + uniform: beats any mean
                if m is None:
                    divide(alpha, denom, out=out)
                    add(out, pre[i]["add"][b], out=out)
                else:
                    divide(alpha, denom, out=m)
                    add(m, pre[i]["add"][b], out=out)
            return eg

        def rand(b: int, m: Any) -> None:
            if m is not None:
                divide(alpha, denom, out=m)
            np.copyto(out, pre[i]["random"][b])
        return rand

    def _compiled_ts(self, AB: np.ndarray, denom: np.ndarray, out: np.ndarray,
                     rng: np.random.Generator, scale: float) -> Any:
        """The Thompson step in one compiled call: the same means, the same gamma draws (in
        ``standard_gamma(AB)``'s order) and the same arithmetic as the NumPy closures above."""
        draw: Any = self._jit_draw
        addresses: Any = self._jit_addr
        bg = rng.bit_generator
        addr = addresses(rng)[1]
        lock = bg.lock
        own = np.empty_like(out)
        if scale == 1.0:

            def ts(b: int, m: Any) -> None:
                with lock:
                    if m is None:
                        draw(AB, denom, own, False, 1.0, out, addr)
                    else:
                        draw(AB, denom, m, True, 1.0, out, addr)
            return ts

        def tts(b: int, m: Any) -> None:
            with lock:
                draw(AB, denom, own if m is None else m, True, scale, out, addr)
        return tts

    def begin_block(self, size: int) -> None:
        n, K = self.n_trials, self.n_arms
        for i, (rule, rng) in enumerate(zip(self.rules, self.rngs, strict=True)):
            pre: dict[str, np.ndarray] = {}
            if isinstance(rule, EpsilonGreedy):
                explore = rng.random((size, n)) < rule.epsilon
                rand = rng.random((size, n, K))
                tie = rng.random((size, n, K)) * _TIE
                pre["add"] = np.where(explore[:, :, None], 2.0 + rand, tie)
            elif isinstance(rule, Greedy):
                pre["add"] = rng.random((size, n, K)) * _TIE
            elif isinstance(rule, UCB1):
                pre["tie"] = rng.random((size, n, K)) * _TIE
            elif isinstance(rule, RandomPolicy):
                pre["random"] = rng.random((size, n, K))
            self._pre[i] = pre

    def _posterior_mean(self) -> np.ndarray:
        """``(L, K)`` posterior means of the current state (a new array)."""
        return (self.X[:, 0] / self.X[:, 2]).reshape(self.n_lanes, self.n_arms)

    # ----- the generic one-step API (the runner uses the block methods below) -------------
    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        self.begin_block(1)
        for k in self._kernels:
            k(0, None)
        return self._scores2.argmax(axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        m = self._posterior_mean()
        return np.asarray(m[np.arange(self.n_lanes), chosen] < m.max(axis=1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        self._add(np.arange(self.n_lanes), chosen, rewards)
        self._t_obs += 1.0

    def _add(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Observations ``(lane, arm, reward)``; a lane may appear several times."""
        r = np.asarray(rewards, dtype=np.float64)
        idx = self._OFF[0][:, lanes] + arms                               # (R, m)
        one = np.ones_like(r)
        np.add.at(self._Xf, idx.ravel(), np.stack([r, 1.0 - r, one, one, r][:self._R]).ravel())

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self._delayed = True
        self._add(lanes, arms, rewards)

    # ----- block API used by the runner ---------------------------------------------------
    def bind_block(self, if_pulled: np.ndarray, rewards: np.ndarray, chosen: np.ndarray,
                   explore: np.ndarray | None, immediate: bool) -> None:
        super().bind_block(if_pulled, rewards, chosen, explore, immediate)
        B = if_pulled.shape[0]
        n, K, nK = self.n_trials, self.n_arms, self._nK
        if B > self._cap:
            self._cap = B
            self._table = np.empty((B, 3, n, K))
            self._table[:, 2] = 1.0
            self._V = np.empty((B, self._R, self.n_lanes))
            self._Mb = np.empty((B, self.n_policies, n, K))
        # the reward table, shared by all policies (common random numbers): r, 1 - r, 1
        r = if_pulled[:, :nK].reshape(B, n, K)
        self._table[:B, 0] = r
        np.subtract(1.0, r, out=self._table[:B, 1])
        self._tflat = self._table.reshape(self._cap, 3 * nK)

    def step_row(self, b: int, t: int, contexts: np.ndarray | None) -> None:
        _, rew, chosen, ex, immediate = self._blk
        if immediate:
            self.run_rows(b, b + 1)
            return
        mb = None if ex is None else self._Mb[b]
        for i, k in enumerate(self._kernels):
            k(b, None if mb is None else mb[i])
        ch = chosen[b]
        self._scores2.argmax(axis=1, out=ch)
        np.add(self._OFF, ch, out=self._IDX)
        self._tflat[b].take(self._IDX[1], out=self._V[b], mode="clip")
        rew[b] = self._V[b, 0]

    def run_rows(self, b0: int, b1: int) -> None:
        """Rows ``b0 .. b1 - 1`` of the bound block with immediate feedback."""
        chosen, ex = self._blk[2], self._blk[3]
        kernels, scores2 = self._kernels, self._scores2
        Mb = None if ex is None else self._Mb
        pol = range(self.n_policies)
        OFF, IDX = self._OFF, self._IDX
        xidx, tidx = IDX[0], IDX[1]
        Xf, tflat, V = self._Xf, self._tflat, self._V
        add = np.add
        book = self._jit_book
        for b in range(b0, b1):
            if Mb is None:
                for k in kernels:
                    k(b, None)
            else:
                mb = Mb[b]
                for i in pol:
                    kernels[i](b, mb[i])
            if book is not None:  # the compiled argmax + gather + add, the same steps
                book(scores2, chosen[b], OFF, tflat[b], Xf, V[b])
            else:
                ch = chosen[b]
                scores2.argmax(axis=1, out=ch)
                add(OFF, ch, out=IDX)
                v = V[b]
                tflat[b].take(tidx, out=v, mode="clip")
                Xf[xidx] += v
            self._t_obs += 1.0

    def run_block(self, size: int, start: int, contexts: np.ndarray | None) -> None:
        self.run_rows(0, size)

    def end_block(self, size: int) -> None:
        _, rew, chosen, ex, immediate = self._blk
        if immediate:
            rew[:size] = self._V[:size, 0]
        if ex is None:
            return
        K = self.n_arms
        m = self._Mb[:size].reshape(-1, K)                          # (size * L, K)
        best = np.maximum(m[:, 0], m[:, min(1, K - 1)])
        for k in range(2, K):  # column by column: NumPy reduces a short last axis slowly
            np.maximum(best, m[:, k], out=best)
        picked = m.reshape(-1).take(np.arange(0, m.size, K) + chosen[:size].reshape(-1))
        ex[:size] = (picked < best).reshape(size, self.n_lanes)

    def final_state(self) -> list[dict[str, Any]]:
        return [{"kind": "beta", "alpha": self.X[i, 0].copy(), "beta": self.X[i, 1].copy()}
                for i in range(self.n_policies)]


# ---------------------------------------------------------------------------------------------
class _BlockNormals:
    """Standard normals of a whole block drawn in one call (``begin_block``), served row by
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


def _upper_outer(a: np.ndarray, b: np.ndarray, out: np.ndarray,
                 scratch: np.ndarray | None = None) -> np.ndarray:
    """Row-wise ``a_i b_j`` for ``i <= j`` in :func:`numpy.triu_indices` order, into ``out``
    ``(n, d (d + 1) / 2)``.

    The products are formed feature-major -- ``d`` multiplications of contiguous ``(d - i, n)``
    blocks of the transposed inputs into ``scratch`` ``(d (d + 1) / 2, n)`` -- and written to
    ``out`` with one transposing copy: the same products as ``d`` row-major slices (each is
    one IEEE multiplication of the same pair), at about half the cost for ``n`` in the
    hundreds or more (row slices of at most ``d`` elements make short inner loops)."""
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


class LinearTSLanes(Learner):
    """Fast path for (tempered) Thompson sampling with
    :class:`~tsbandit.policies.LinearGaussian`.

    The model path projects every arm's square-root covariance on the context to draw, and
    projects the chosen arm's again to update. Here one projection serves both, and it is a
    single product per trial: each trial keeps its arms' transposed square-root factors
    ``S_k^T`` and means ``m_k^T`` stacked in one ``K (d + 1) x d`` matrix
    ``T = [S_1^T; m_1^T; ...; S_K^T; m_K^T]``, so ``T x`` gives every arm's
    ``phi_k = S_k^T x`` and ``m_k . x`` at once (one small matrix-vector product per trial
    instead of ``2 K``). The draw uses ``|phi_k|^2``; the Potter update of the chosen arm
    reuses its ``phi`` and rewrites its contiguous ``(d + 1) x d`` block of ``T``. The
    statistics (``A``, ``b``, ...) are accumulated exactly as the model keeps them (into
    preallocated buffers; ``A`` as its upper triangle, the same products), and the square-root
    factor is refreshed from them every ``model.refresh_every`` rounds, as the model does.
    Same posterior, same draws, same decisions. ``scale`` tempers the draw (covariance times
    ``scale**2``).
    """

    def __init__(self, model: LinearGaussian, n_trials: int, n_arms: int,
                 rng: np.random.Generator, scale: float = 1.0) -> None:
        self.model = model
        self.rng = rng
        self.scale2 = float(scale) ** 2
        self.n_lanes = n = n_trials
        self.n_arms = K = n_arms
        self.d = d = model.n_features
        self.stats = model.init_stats(K, (n,))
        st = self.stats
        self._Af = st["A"].reshape(n * K, d, d)
        # every cell's statistics in one row, so one scatter-add learns them all: the upper
        # triangle of the symmetric A (x_i x_j, i <= j: the products of the full update), b,
        # n, sum_r and sum_r2; the model's arrays are rebuilt from it when they are read
        self._iu, self._ju = np.triu_indices(d)
        q = self._q = self._iu.shape[0]
        self._stat = np.zeros((n * K, q + d + 3))
        self._inc = np.empty((n, q + d + 3))
        self._inc[:, q + d] = 1.0
        self._outer_t = np.empty((q, n))
        self._bi = np.arange(n)
        self._off = self._bi * K
        self._noise = 1.0 if model.unknown_noise else model.noise_variance
        # T[j, k, :d] = S[j, k]^T and T[j, k, d] = m[j, k]
        self.T = np.empty((n, K, d + 1, d))
        self._T3 = self.T.reshape(n, K * (d + 1), d)
        self._Tf = self.T.reshape(n * K, d + 1, d)
        self._proj = np.empty((n, K * (d + 1), 1))
        p4 = self._proj.reshape(n, K, d + 1)
        self._phi, self._mu = p4[:, :, :d], p4[:, :, d]                 # views (n, K, d), (n, K)
        self._var = np.empty((n, K))
        # the Potter correction of a cell's block [S^T; m^T]: rows :d get phi (beta S phi)^T,
        # row d stays 0, so one contiguous subtraction updates the gathered block (subtracting
        # through the strided S^T view costs three times as much)
        self._outer = np.zeros((n, d + 1, d))
        self._cellbuf = np.empty((n, d + 1, d))
        self._z = _BlockNormals()
        self._refresh()

    def begin_block(self, size: int) -> None:
        # with a learned noise scale each round also draws a gamma after the normals, so the
        # normals of a block cannot be drawn ahead without changing the stream
        if self.noise_a is None:
            self._z.begin(self.rng, size, (self.n_lanes, self.n_arms))

    def _sync_stats(self) -> None:
        """Write the packed statistics into the model's arrays."""
        st, q, d, sp = self.stats, self._q, self.d, self._stat
        self._Af[:, self._iu, self._ju] = sp[:, :q]
        self._Af[:, self._ju, self._iu] = sp[:, :q]
        st["b"].reshape(-1, d)[...] = sp[:, q:q + d]
        st["n"].reshape(-1)[...] = sp[:, q + d]
        st["sum_r"].reshape(-1)[...] = sp[:, q + d + 1]
        st["sum_r2"].reshape(-1)[...] = sp[:, q + d + 2]

    def _pack_stats(self) -> None:
        st, q, d, sp = self.stats, self._q, self.d, self._stat
        sp[:, :q] = self._Af[:, self._iu, self._ju]
        sp[:, q:q + d] = st["b"].reshape(-1, d)
        sp[:, q + d] = st["n"].reshape(-1)
        sp[:, q + d + 1] = st["sum_r"].reshape(-1)
        sp[:, q + d + 2] = st["sum_r2"].reshape(-1)

    def _refresh(self) -> None:
        self._sync_stats()
        post = self.model.posterior(self.stats)
        self.T[:, :, :self.d] = np.swapaxes(post.sqrt_cov, -1, -2)
        self.T[:, :, self.d] = post.mean
        self.noise_a = None if post.noise_a is None else np.array(post.noise_a)
        self.noise_b = None if post.noise_b is None else np.array(post.noise_b)
        self._since = 0

    @property
    def S(self) -> np.ndarray:
        """``(n, K, d, d)`` square-root factors (a copy)."""
        return np.ascontiguousarray(np.swapaxes(self.T[:, :, :self.d], -1, -2))

    @property
    def m(self) -> np.ndarray:
        """``(n, K, d)`` posterior means (a copy)."""
        return self.T[:, :, self.d].copy()

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        # T x: phi[n, k] = S[n, k]^T x and mu[n, k] = m[n, k] . x, one product per trial
        np.matmul(self._T3, x[:, :, None], out=self._proj)
        var = np.einsum("nke,nke->nk", self._phi, self._phi, out=self._var)
        if self.scale2 != 1.0:
            var *= self.scale2
        z = self._z.next(self.rng, var.shape) if self.noise_a is None else \
            self.rng.standard_normal(var.shape)
        if self.noise_a is not None:
            assert self.noise_b is not None
            var *= self.noise_b / self.rng.standard_gamma(self.noise_a)
        np.sqrt(var, out=var)
        var *= z
        var += self._mu
        return np.argmax(var, axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        mu = self._mu
        return np.asarray(mu[self._bi, chosen] < mu.max(axis=1))

    def _accumulate(self, cell: np.ndarray, rewards: np.ndarray, x: np.ndarray) -> None:
        """``model.accumulate`` for one observation per lane (distinct cells), in place."""
        q, d, inc = self._q, self.d, self._inc
        _upper_outer(x, x, inc[:, :q], self._outer_t)
        np.multiply(rewards[:, None], x, out=inc[:, q:q + d])
        inc[:, q + d + 1] = rewards
        np.multiply(rewards, rewards, out=inc[:, q + d + 2])
        self._stat[cell] += inc

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        x = contexts
        assert x is not None
        bi, d = self._bi, self.d
        cell = self._off + chosen
        self._accumulate(cell, rewards, x)
        self._since += 1
        if self._since >= self.model.refresh_every:
            self._refresh()
            return
        phi = self._phi[bi, chosen]                              # (n, d) = S^T x, reused
        mu = self._mu[bi, chosen]
        # the chosen arm's block [S^T; m^T] of T, contiguous per trial
        blk = self._Tf.take(cell, axis=0, out=self._cellbuf, mode="clip")
        St, m = blk[:, :d], blk[:, d]
        s_phi = np.einsum("nji,nj->ni", St, phi)                 # Sigma x = S S^T x = S phi
        c = np.einsum("ni,ni->n", phi, phi) + self._noise
        m += s_phi * ((rewards - mu) / c)[:, None]
        s_phi *= (1.0 / (c * (1.0 + np.sqrt(self._noise / c))))[:, None]
        # Potter: S <- S - beta (S phi) phi^T, i.e. S^T <- S^T - phi (beta S phi)^T
        np.einsum("ni,nj->nij", phi, s_phi, out=self._outer[:, :d])
        blk -= self._outer                                       # m - 0 == m exactly
        self._Tf[cell] = blk
        if self.noise_a is not None:
            assert self.noise_b is not None
            row, q = self._stat[cell], self._q
            self.noise_a[bi, chosen] = self.model.noise_a0 + 0.5 * row[:, q + d]
            fit = np.einsum("ni,ni->n", row[:, q:q + d], m)
            self.noise_b[bi, chosen] = self.model._b0 + 0.5 * np.maximum(
                row[:, q + d + 2] - fit, 0.0)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self._sync_stats()
        self.model.accumulate(self.stats, arms, rewards, contexts, batch_index=lanes)
        self._pack_stats()
        self._refresh()

    def current_posterior(self) -> Any:
        """The posterior in the model's own layout (copies of the lanes' arrays)."""
        from ..policies.linear import LinearPosterior

        return LinearPosterior(self.m, self.S, self.noise_a, self.noise_b)

    def final_state(self) -> list[dict[str, Any]]:
        self._sync_stats()  # leave ``stats`` complete for callers that read it
        return [posterior_state(self.model, self.current_posterior())]


#: iterations of the model's one-dimensional Newton solve, and how many run on every lane
_NEWTON_ITERATIONS = _NEWTON_1D_STEPS
_NEWTON_FULL = 5


def _newton(expit: Any, mu: np.ndarray, s: np.ndarray, rewards: np.ndarray, t: np.ndarray,
            a: np.ndarray, p: np.ndarray, g: np.ndarray, h: np.ndarray, iterations: int) -> None:
    """``iterations`` steps of the model's Newton solve for the new mode, in place on ``t``:
    ``t -= (t - (r - p)) / (1 + s p (1 - p))`` with ``p = expit(mu + t s)``; ``g`` holds the
    last step."""
    for _ in range(iterations):
        expit(np.add(mu, np.multiply(t, s, out=a), out=a), out=p)
        np.subtract(t, np.subtract(rewards, p, out=g), out=g)
        np.multiply(np.multiply(s, p, out=h), np.subtract(1.0, p, out=a), out=h)
        h += 1.0
        g /= h
        t -= g


# ---------------------------------------------------------------------------------------------
class LogisticTSLanes(Learner):
    """Fast path for (tempered) Thompson sampling with
    :class:`~tsbandit.policies.LogisticLaplace`.

    The model refits the chosen arm by a one-dimensional Newton solve along ``P^{-1} x`` and
    refactors its precision every round (O(d^3)). Here the square-root covariance ``S``
    (``S S^T = P^{-1}``) is kept and the Laplace precision update ``P + w x x^T``
    (``w = p (1 - p)`` at the new mode) is a rank-one Potter update, O(d^2); ``P^{-1} x = S phi``
    reuses the projection ``phi = S^T x`` of the draw. As in :class:`LinearTSLanes`, each
    trial keeps ``[S_k^T; m_k^T]`` of all arms stacked in one ``K (d + 1) x d`` matrix, so one
    product per trial gives every arm's ``phi`` and logit ``m . x``, and the update rewrites
    the chosen arm's contiguous block. The statistics (mode ``m``, data precision ``H`` --
    accumulated as its upper triangle --, counts) are kept as the model keeps them and ``S``
    is refactored from them every 1000 rounds. Same posterior up to rounding, same draws.
    """

    def __init__(self, model: Any, n_trials: int, n_arms: int, rng: np.random.Generator,
                 scale: float = 1.0, refresh_every: int = 1000) -> None:
        from scipy.special import expit

        self._expit = expit
        self.model = model
        self.rng = rng
        self.scale = float(scale)
        self.n_lanes = n = n_trials
        self.n_arms = K = n_arms
        self.d = d = model.n_features
        self.refresh_every = refresh_every
        self.stats = model.init_stats(K, (n,))
        self._bi = np.arange(n)
        self._off = self._bi * K
        self._Hf = self.stats["H"].reshape(n * K, d, d)
        # H's upper triangle, n and sum_r of every cell in one row: one scatter-add per round
        self._iu, self._ju = np.triu_indices(d)
        q = self._q = self._iu.shape[0]
        self._stat = np.zeros((n * K, q + 2))
        self._inc = np.empty((n, q + 2))
        self._inc[:, q] = 1.0
        self._outer_t = np.empty((q, n))
        self.T = np.empty((n, K, d + 1, d))
        self._T3 = self.T.reshape(n, K * (d + 1), d)
        self._Tf = self.T.reshape(n * K, d + 1, d)
        self._proj = np.empty((n, K * (d + 1), 1))
        p4 = self._proj.reshape(n, K, d + 1)
        self._phi, self._mu = p4[:, :, :d], p4[:, :, d]                 # views (n, K, d), (n, K)
        self._var = np.empty((n, K))
        self._var0 = np.empty((n, K))
        # the Potter correction of a cell's block [S^T; m^T]: rows :d get phi (beta S phi)^T,
        # row d stays 0, so one contiguous subtraction updates the gathered block (subtracting
        # through the strided S^T view costs three times as much)
        self._outer = np.zeros((n, d + 1, d))
        self._cellbuf = np.empty((n, d + 1, d))
        self._nw = np.empty((4, n))                 # Newton scratch
        self._z = _BlockNormals()
        self.T[:, :, d] = self.stats["m"]
        self._refresh()

    def begin_block(self, size: int) -> None:
        self._z.begin(self.rng, size, (self.n_lanes, self.n_arms))

    def _sync_stats(self) -> None:
        """Write the mode (kept in ``T``) and the packed statistics into the model's arrays."""
        st, q, sp = self.stats, self._q, self._stat
        st["m"][...] = self.T[:, :, self.d]
        self._Hf[:, self._iu, self._ju] = sp[:, :q]
        self._Hf[:, self._ju, self._iu] = sp[:, :q]
        st["n"].reshape(-1)[...] = sp[:, q]
        st["sum_r"].reshape(-1)[...] = sp[:, q + 1]

    def _refresh(self) -> None:
        self._sync_stats()
        post = self.model.posterior(self.stats)
        self.T[:, :, :self.d] = np.swapaxes(post.sqrt_cov, -1, -2)
        self._since = 0

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        np.matmul(self._T3, x[:, :, None], out=self._proj)
        var = np.einsum("nke,nke->nk", self._phi, self._phi, out=self._var)
        self._var0[...] = var                       # |phi|^2, for ``exploring``
        z = self._z.next(self.rng, var.shape)
        # expit is monotone: the arg-max of the logits is the arg-max of the probabilities
        np.sqrt(var, out=var)
        var *= self.scale
        var *= z
        var += self._mu
        return np.argmax(var, axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        # posterior mean click probability, probit approximation (as LogisticLaplace.mean)
        m = self._mu / np.sqrt(1.0 + np.pi * self._var0 / 8.0)
        return np.asarray(m[self._bi, chosen] < m.max(axis=1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        x = contexts
        assert x is not None
        bi, expit, d = self._bi, self._expit, self.d
        cell = self._off + chosen
        phi = self._phi[bi, chosen]                              # S^T x
        blk = self._Tf.take(cell, axis=0, out=self._cellbuf, mode="clip")
        St, m = blk[:, :d], blk[:, d]
        u = np.einsum("nji,nj->ni", St, phi)                     # P^{-1} x = S phi
        s = np.einsum("ni,ni->n", phi, phi)                      # x^T P^{-1} x
        mu = self._mu[bi, chosen]
        t = np.zeros_like(mu)
        a, p, g, h = self._nw
        _newton(expit, mu, s, rewards, t, a, p, g, h, _NEWTON_FULL)
        # A lane whose step was exactly 0 has reached its fixed point: every later iteration
        # recomputes the same p and the same zero step. After a few iterations almost every
        # lane is there, so the rest run on the few lanes still moving (same arithmetic, so
        # the same bits as 12 iterations on all lanes).
        live = np.flatnonzero(g)
        if live.size:
            tl = t[live]
            sl, ml, rl = s[live], mu[live], rewards[live]
            a2, p2, g2, h2 = np.empty((4, live.size))
            _newton(expit, ml, sl, rl, tl, a2, p2, g2, h2, _NEWTON_ITERATIONS - _NEWTON_FULL)
            t[live] = tl
        p = expit(mu + t * s)
        w = p * (1.0 - p)
        m += t[:, None] * u
        inc, q = self._inc, self._q
        _upper_outer(w[:, None] * x, x, inc[:, :q], self._outer_t)
        inc[:, q + 1] = rewards
        self._stat[cell] += inc
        self._since += 1
        if self._since >= self.refresh_every:
            self._Tf[cell, d] = m
            self._refresh()
            return
        # Potter update of S for the precision increment w x x^T ("noise" 1 / w):
        # S <- S - (beta u) phi^T, i.e. S^T <- S^T - phi (beta u)^T
        R = 1.0 / np.maximum(w, 1e-12)
        c = s + R
        u *= (1.0 / (c * (1.0 + np.sqrt(R / c))))[:, None]
        np.einsum("ni,nj->nij", phi, u, out=self._outer[:, :d])
        blk -= self._outer                                       # m - 0 == m exactly
        self._Tf[cell] = blk

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self._sync_stats()
        self.model.accumulate(self.stats, arms, rewards, contexts, batch_index=lanes)
        st, q, sp = self.stats, self._q, self._stat
        sp[:, :q] = self._Hf[:, self._iu, self._ju]
        sp[:, q] = st["n"].reshape(-1)
        sp[:, q + 1] = st["sum_r"].reshape(-1)
        self.T[:, :, self.d] = st["m"]
        self._refresh()

    def final_state(self) -> list[dict[str, Any]]:
        self._sync_stats()
        return [posterior_state(self.model, self.model.posterior(self.stats))]


# ---------------------------------------------------------------------------------------------
class TutorialLinearLearner(Learner):
    """The tutorial's ``BayesianLinearArm`` / ``ContextualThompsonSampling`` (Part 7) *as printed*.

    Its update sets ``mu_new = Lambda_new^{-1} (Lambda_new mu_old + r x / s2)``: the old mean
    is multiplied by the *new* precision, so the mean moves by ``Sigma_new x r / s2`` and a
    reward of 0 never lowers it. The correct update uses ``Lambda_old mu_old``. Set
    ``fixed=True`` for the corrected class (the same as ``LinearGaussian`` + Thompson).
    Draws use the predictive ``x^T w ~ N(x^T mu, x^T Sigma x)``, which is the distribution of
    the tutorial's ``context @ multivariate_normal(mu, Sigma)``.
    """

    def __init__(self, n_features: int, prior_variance: float, noise_variance: float,
                 n_trials: int, n_arms: int, rng: np.random.Generator,
                 fixed: bool = False) -> None:
        self.n_lanes = n = n_trials
        self.n_arms = K = n_arms
        self.d = d = n_features
        self.rng = rng
        self.s2 = float(noise_variance)
        self.prior_variance = float(prior_variance)
        self.fixed = fixed
        self.mu = np.zeros((n, K, d))
        self.Sigma = np.broadcast_to(np.eye(d) * prior_variance, (n, K, d, d)).copy()
        self._bi = np.arange(n)
        self._m = np.empty((n, K))
        self._v = np.empty((n, K, d))

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        np.matmul(self.Sigma, x[:, None, :, None], out=self._v[..., None])
        np.matmul(self.mu, x[:, :, None], out=self._m[..., None])
        var = np.maximum(np.einsum("nkd,nd->nk", self._v, x), 0.0)
        return np.argmax(self._m + np.sqrt(var) * self.rng.standard_normal(var.shape), axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        return np.asarray(self._m[self._bi, chosen] < self._m.max(axis=1))

    def _update(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
                x: np.ndarray) -> None:
        Sig = self.Sigma[lanes, arms]
        v = np.matmul(Sig, x[:, :, None])[:, :, 0]
        c = self.s2 + np.einsum("nd,nd->n", v, x)
        mu = self.mu[lanes, arms]
        target = rewards - np.einsum("nd,nd->n", x, mu) if self.fixed else rewards
        self.mu[lanes, arms] = mu + v * (target / c)[:, None]
        self.Sigma[lanes, arms] = Sig - v[:, :, None] * (v / c[:, None])[:, None, :]

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        assert contexts is not None
        self._update(self._bi, chosen, rewards, contexts)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        assert contexts is not None
        for i in range(lanes.shape[0]):  # sequential: the tutorial's update is not additive
            self._update(lanes[i:i + 1], arms[i:i + 1], rewards[i:i + 1], contexts[i:i + 1])

    def final_state(self) -> list[dict[str, Any]]:
        from scipy.special import ndtri

        sd = np.sqrt(np.maximum(np.einsum("...ii->...i", self.Sigma), 0.0))
        half = ndtri(0.975) * sd
        return [{"kind": "linear", "mean": self.mu.copy(), "low": self.mu - half,
                 "high": self.mu + half, "scale": "linear"}]
