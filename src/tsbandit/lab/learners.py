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
)
from ..policies.base import RewardModel
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


def beta_fast_path_ok(model: RewardModel, rule: SelectionRule) -> bool:
    """True when :class:`BetaLanes` implements this (model, rule) pair."""
    return type(model) is BetaBernoulli and type(rule) in _FAST_RULES


class BetaLanes(Learner):
    """Context-free Beta-Bernoulli policies sharing one state array.

    Each policy's randomness comes from its own stream (so a policy's results do not depend on
    which other policies run beside it). Thompson draws are ``Beta`` via two gamma variates
    (exactly the draws of :meth:`BetaBernoulli.sample`), UCB1 is ``mean + c sqrt(2 ln t / n)``
    with every arm tried once first, epsilon-greedy and greedy rank posterior means; ties are
    broken uniformly at random by a perturbation far below the resolution of the means.

    Layout: ``AB`` ``(P, 2, n, K)`` holds each policy's ``alpha`` and ``beta`` contiguously (one
    gamma call per Thompson policy), and the per-lane arrays the round needs (counts, means,
    reward tables) use the same layout, so that one flat index ``lane offset + arm`` addresses
    all of them. Each policy's scoring step is a closure over views, built once.
    """

    def __init__(self, policies: list[tuple[BetaBernoulli, SelectionRule, np.random.Generator]],
                 n_trials: int, n_arms: int) -> None:
        self.n_policies = P = len(policies)
        self.n_trials = n = n_trials
        self.n_arms = K = n_arms
        self.n_lanes = P * n
        self.rules = [r for _, r, _ in policies]
        self.rngs = [g for _, _, g in policies]
        self.a0 = np.array([m.alpha0 for m, _, _ in policies])
        self.b0 = np.array([m.beta0 for m, _, _ in policies])
        self.AB = np.empty((P, 2, n, K))
        self.AB[:, 0] = self.a0[:, None, None]
        self.AB[:, 1] = self.b0[:, None, None]
        self._ABf = self.AB.reshape(-1)
        self._nK = n * K
        # flat offset of lane (p, j): alpha of arm a at off[p * n + j] + a, beta at + n * K
        self._off = (np.arange(P)[:, None] * 2 * n * K + np.arange(n)[None, :] * K).ravel()
        self._lane_off = np.arange(P * n) * K
        self._has_ucb = any(isinstance(r, UCB1) for r in self.rules)
        self.N = np.zeros((P, 2, n, K))          # pull counts (second half unused)
        self._Nf = self.N.reshape(-1)
        self.M = np.zeros((P, 2, n, K))          # posterior means (second half unused)
        self._Mf = self.M.reshape(-1)
        self._mean_ok = False
        self.scores = np.empty((P, n, K))
        self._scores2 = self.scores.reshape(P * n, K)
        self._delayed = False
        self._pre: list[dict[str, np.ndarray]] = [{} for _ in range(P)]
        self._row = 0
        self._kernels = [self._kernel(i) for i in range(P)]

    def _kernel(self, i: int) -> Any:
        """The scoring step of policy ``i``: writes its lanes' scores for one round."""
        rule, rng = self.rules[i], self.rngs[i]
        AB, out = self.AB[i], self.scores[i]
        alpha, N, mean, a0 = self.AB[i, 0], self.N[i, 0], self.M[i, 0], float(self.a0[i])
        pre = self._pre
        if isinstance(rule, ThompsonSampling) and float(getattr(rule, "scale", 1.0)) == 1.0:
            tmp = np.empty_like(out)

            def ts(row: int) -> None:
                g = rng.standard_gamma(AB)
                np.add(g[0], g[1], out=tmp)
                np.divide(g[0], tmp, out=out)
            return ts
        if isinstance(rule, (TemperedThompsonSampling, ThompsonSampling)):
            tmp = np.empty_like(out)
            scale = float(getattr(rule, "scale", 1.0))

            def tts(row: int) -> None:
                # mean + scale * (draw - mean), the draw as in ``ts``
                g = rng.standard_gamma(AB)
                np.add(g[0], g[1], out=tmp)
                np.divide(g[0], tmp, out=out)
                np.add(AB[0], AB[1], out=tmp)
                np.divide(AB[0], tmp, out=tmp)
                np.subtract(out, tmp, out=out)
                np.multiply(out, scale, out=out)
                np.add(out, tmp, out=out)
            return tts
        if isinstance(rule, UCB1):
            c2 = 2.0 * rule.c**2
            ready = [False]
            tmp = np.empty_like(out)

            def ucb(row: int) -> None:
                if not ready[0] and not self._delayed and bool((N > 0).all()):
                    ready[0] = True  # counts only grow: every arm stays tried
                if ready[0] and not self._delayed:
                    total = float(self._t)  # immediate feedback: t observations in every lane
                    np.divide(c2 * np.log(max(total, 1.0)), N, out=out)
                    np.sqrt(out, out=out)
                    np.subtract(alpha, a0, out=tmp)
                    np.divide(tmp, N, out=tmp)
                    np.add(out, tmp, out=out)
                else:
                    tot = N.sum(axis=1, keepdims=True)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        val = (alpha - a0) / N + np.sqrt(c2 * np.log(np.maximum(tot, 1.0)) / N)
                    out[...] = np.where(N > 0, val, np.inf)
                np.add(out, pre[i]["tie"][row], out=out)
            return ucb
        if isinstance(rule, (EpsilonGreedy, Greedy)):

            def eg(row: int) -> None:
                if not self._mean_ok:
                    self._posterior_mean()
                # pre = random tie-break, plus (exploring rows) 2 + uniform: beats any mean
                np.add(mean, pre[i]["add"][row], out=out)
            return eg

        def rand(row: int) -> None:
            out[...] = pre[i]["random"][row]
        return rand

    def begin_block(self, size: int) -> None:
        n, K = self.n_trials, self.n_arms
        self._row = 0
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
        if not self._mean_ok:
            m = self.M[:, 0]
            np.add(self.AB[:, 0], self.AB[:, 1], out=m)
            np.divide(self.AB[:, 0], m, out=m)
            self._mean_ok = True
        return self.M[:, 0]

    @property
    def _t(self) -> float:
        return self._t_obs

    _t_obs = 0.0

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        row = self._row
        self._row += 1
        for k in self._kernels:
            k(row)
        return self._scores2.argmax(axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        mean = self._posterior_mean()
        mf, off = self._Mf, self._off
        return np.asarray(mf.take(off + chosen)
                          < mf.take(off + mean.argmax(axis=2).ravel()))

    def _learn(self, idx: np.ndarray, rewards: np.ndarray) -> None:
        self._ABf[idx] += rewards
        self._ABf[idx + self._nK] += 1.0 - rewards
        if self._has_ucb:
            self._Nf[idx] += 1.0
        self._mean_ok = False

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        self._learn(self._off + chosen, rewards)
        self._t_obs += 1.0

    def step(self, t: int, contexts: np.ndarray | None, if_pulled: np.ndarray,
             out_reward: np.ndarray, out_chosen: np.ndarray, out_explore: np.ndarray | None,
             immediate: bool) -> None:
        row = self._row
        self._row += 1
        for k in self._kernels:
            k(row)
        ch = self._scores2.argmax(axis=1)
        idx = self._off + ch
        if out_explore is not None:
            self._explore(idx, out_explore)
        np.take(if_pulled, self._lane_off + ch, out=out_reward)
        out_chosen[...] = ch
        if immediate:
            self._learn(idx, out_reward)
            self._t_obs += 1.0

    def bind_block(self, if_pulled: np.ndarray, rewards: np.ndarray, chosen: np.ndarray,
                   explore: np.ndarray | None, immediate: bool) -> None:
        super().bind_block(if_pulled, rewards, chosen, explore, immediate)
        # the reward table in the state's own layout, so one flat index serves both
        B = if_pulled.shape[0]
        P, n, K = self.n_policies, self.n_trials, self.n_arms
        table = np.empty((B, P, 2, n, K))
        table[:, :, 0] = if_pulled.reshape(B, P, n, K)
        self._table = table.reshape(B, -1)

    def step_row(self, b: int, t: int, contexts: np.ndarray | None) -> None:
        _, rew, chosen, ex, immediate = self._blk
        self._row = b + 1
        for k in self._kernels:
            k(b)
        ch = self._scores2.argmax(axis=1)
        idx = self._off + ch
        if ex is not None:
            self._explore(idx, ex[b])
        r = rew[b]
        np.take(self._table[b], idx, out=r)
        chosen[b] = ch
        if immediate:
            self._learn(idx, r)
            self._t_obs += 1.0

    def _explore(self, idx: np.ndarray, out: np.ndarray) -> None:
        mean = self._posterior_mean()
        mf = self._Mf
        np.less(mf.take(idx), mf.take(self._off + mean.argmax(axis=2).ravel()), out=out)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self._delayed = True
        idx = self._off[lanes] + arms
        np.add.at(self._ABf, idx, rewards)
        np.add.at(self._ABf, idx + self._nK, 1.0 - rewards)
        np.add.at(self._Nf, idx, 1.0)
        self._mean_ok = False

    def final_state(self) -> list[dict[str, Any]]:
        return [{"kind": "beta", "alpha": self.AB[i, 0].copy(), "beta": self.AB[i, 1].copy()}
                for i in range(self.n_policies)]


# ---------------------------------------------------------------------------------------------
class LinearTSLanes(Learner):
    """Fast path for (tempered) Thompson sampling with
    :class:`~tsbandit.policies.LinearGaussian`.

    The model path projects every arm's square-root covariance on the context to draw, and
    projects the chosen arm's again to update. Here one projection ``phi = S^T x`` per arm
    serves both: the draw uses ``|phi|^2``, and the Potter update of the chosen arm reuses its
    ``phi``. The statistics (``A``, ``b``, ...) are accumulated exactly as the model keeps
    them (into preallocated buffers: the hot loop allocates no large temporaries), and the
    square-root factor is refreshed from them every ``model.refresh_every`` rounds, as the
    model does. Same posterior, same draws, same decisions. ``scale`` tempers the draw
    (covariance times ``scale**2``, see :class:`~.rules.TemperedThompsonSampling`).
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
        self._nf, self._sr = st["n"].reshape(-1), st["sum_r"].reshape(-1)
        self._sr2 = st["sum_r2"].reshape(-1)
        self._bf = st["b"].reshape(n * K, d)
        self._Af = st["A"].reshape(n * K, d, d)
        self._bi = np.arange(n)
        self._off = self._bi * K
        self._noise = 1.0 if model.unknown_noise else model.noise_variance
        self._phi = np.empty((n, K, d))
        self._mu = np.empty((n, K))
        self._var = np.empty((n, K))
        self._outer = np.empty((n, d, d))
        self._Sc = np.empty((n, d, d))
        self._u = np.empty((n, d, 1))
        self._refresh()

    def _refresh(self) -> None:
        post = self.model.posterior(self.stats)
        self.S = np.ascontiguousarray(post.sqrt_cov)
        self.m = np.ascontiguousarray(post.mean)
        self.noise_a = None if post.noise_a is None else np.array(post.noise_a)
        self.noise_b = None if post.noise_b is None else np.array(post.noise_b)
        n, K, d = self.m.shape
        self._Sflat = self.S.reshape(n * K, d, d)
        self._mflat = self.m.reshape(n * K, d)
        self._since = 0

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        # phi[n, k] = S[n, k]^T x[n]  (one batched product for all arms)
        np.matmul(x[:, None, None, :], self.S, out=self._phi[:, :, None, :])
        np.matmul(self.m, x[:, :, None], out=self._mu[:, :, None])
        var = np.einsum("nke,nke->nk", self._phi, self._phi, out=self._var)
        if self.scale2 != 1.0:
            var *= self.scale2
        z = self.rng.standard_normal(var.shape)
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
        self._nf[cell] += 1.0
        self._sr[cell] += rewards
        self._sr2[cell] += rewards * rewards
        self._bf[cell] += rewards[:, None] * x
        np.einsum("ni,nj->nij", x, x, out=self._outer)
        self._Af[cell] += self._outer

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        x = contexts
        assert x is not None
        bi = self._bi
        cell = self._off + chosen
        self._accumulate(cell, rewards, x)
        self._since += 1
        if self._since >= self.model.refresh_every:
            self._refresh()
            return
        phi = self._phi[bi, chosen]                              # (n, d) = S^T x, reused
        S = self._Sc
        np.take(self._Sflat, cell, axis=0, out=S)
        s_phi = np.matmul(S, phi[:, :, None], out=self._u)[:, :, 0]      # Sigma x
        c = np.einsum("ni,ni->n", phi, phi) + self._noise
        resid = rewards - self._mu[bi, chosen]
        self._mflat[cell] += s_phi * (resid / c)[:, None]
        beta = 1.0 / (c * (1.0 + np.sqrt(self._noise / c)))
        s_phi *= beta[:, None]
        np.einsum("ni,nj->nij", s_phi, phi, out=self._outer)
        S -= self._outer
        self._Sflat[cell] = S
        if self.noise_a is not None:
            assert self.noise_b is not None
            st = self.stats
            self.noise_a[bi, chosen] = self.model.noise_a0 + 0.5 * st["n"][bi, chosen]
            fit = np.einsum("ni,ni->n", st["b"][bi, chosen], self._mflat[cell])
            self.noise_b[bi, chosen] = self.model._b0 + 0.5 * np.maximum(
                st["sum_r2"][bi, chosen] - fit, 0.0)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self.model.accumulate(self.stats, arms, rewards, contexts, batch_index=lanes)
        self._refresh()

    def current_posterior(self) -> Any:
        """The posterior in the model's own layout (a view of the lanes' arrays)."""
        from ..policies.linear import LinearPosterior

        return LinearPosterior(self.m, self.S, self.noise_a, self.noise_b)

    def final_state(self) -> list[dict[str, Any]]:
        return [posterior_state(self.model, self.current_posterior())]


# ---------------------------------------------------------------------------------------------
class LogisticTSLanes(Learner):
    """Fast path for (tempered) Thompson sampling with
    :class:`~tsbandit.policies.LogisticLaplace`.

    The model refits the chosen arm by a one-dimensional Newton solve along ``P^{-1} x`` and
    refactors its precision every round (O(d^3)). Here the square-root covariance ``S``
    (``S S^T = P^{-1}``) is kept and the Laplace precision update ``P + w x x^T``
    (``w = p (1 - p)`` at the new mode) is a rank-one Potter update, O(d^2); ``P^{-1} x = S phi``
    reuses the projection ``phi = S^T x`` of the draw. The statistics (mode ``m``, data
    precision ``H``, counts) are kept exactly as the model keeps them and ``S`` is refactored
    from them every 1000 rounds. Same posterior up to rounding, same draws.
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
        self._phi = np.empty((n, K, d))
        self._mu = np.empty((n, K))
        self._refresh()

    def _refresh(self) -> None:
        post = self.model.posterior(self.stats)
        n, K, d = post.mean.shape
        self.S = np.ascontiguousarray(post.sqrt_cov)
        self._Sflat = self.S.reshape(n * K, d, d)
        self._since = 0

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        np.matmul(x[:, None, None, :], self.S, out=self._phi[:, :, None, :])
        np.matmul(self.stats["m"], x[:, :, None], out=self._mu[:, :, None])
        var = np.einsum("nke,nke->nk", self._phi, self._phi)
        z = self.rng.standard_normal(var.shape)
        # expit is monotone: the arg-max of the logits is the arg-max of the probabilities
        return np.argmax(self._mu + self.scale * np.sqrt(var) * z, axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        # posterior mean click probability, probit approximation (as LogisticLaplace.mean)
        var = np.einsum("nke,nke->nk", self._phi, self._phi)
        m = self._mu / np.sqrt(1.0 + np.pi * var / 8.0)
        return np.asarray(m[self._bi, chosen] < m.max(axis=1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        x = contexts
        assert x is not None
        bi, st, expit = self._bi, self.stats, self._expit
        cell = self._off + chosen
        phi = self._phi[bi, chosen]                              # S^T x
        S = self._Sflat[cell]
        u = np.matmul(S, phi[:, :, None])[:, :, 0]               # P^{-1} x
        s = np.einsum("ni,ni->n", phi, phi)                      # x^T P^{-1} x
        mu = self._mu[bi, chosen]
        t = np.zeros_like(mu)
        for _ in range(12):  # the model's one-dimensional Newton solve for the new mode
            p = expit(mu + t * s)
            t -= (t - (rewards - p)) / (1.0 + s * p * (1.0 - p))
        p = expit(mu + t * s)
        w = p * (1.0 - p)
        st["m"][bi, chosen] += t[:, None] * u
        st["H"][bi, chosen] += w[:, None, None] * x[:, :, None] * x[:, None, :]
        st["n"][bi, chosen] += 1.0
        st["sum_r"][bi, chosen] += rewards
        self._since += 1
        if self._since >= self.refresh_every:
            self._refresh()
            return
        # Potter update of S for the precision increment w x x^T ("noise" 1 / w)
        R = 1.0 / np.maximum(w, 1e-12)
        c = s + R
        beta = 1.0 / (c * (1.0 + np.sqrt(R / c)))
        S -= (beta[:, None] * u)[:, :, None] * phi[:, None, :]
        self._Sflat[cell] = S

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self.model.accumulate(self.stats, arms, rewards, contexts, batch_index=lanes)
        self._refresh()

    def final_state(self) -> list[dict[str, Any]]:
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
