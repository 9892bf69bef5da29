"""Learners: one policy (or a group of them) advancing all its trials in lock-step as arrays.

A learner owns ``L`` *lanes* -- one per (policy, trial) -- and the learned state of every lane in
a few arrays (the reward model's statistics with a leading batch axis). Each round the runner
asks it for one arm per lane, tells it the rewards, and asks which decisions were exploratory.
No per-trial Python object exists in the hot loop, and no learner writes posterior math of its
own: they drive the library's models and rules.

* :class:`ModelLearner` drives any reward model and selection rule of
  :mod:`tsbandit.policies` through their public, batched statistics API (optionally with a
  sliding window or discounting).
* :mod:`.lanes` drives the models' batched posterior states (``model.lanes``) with the rules'
  batched scorers (``rule.lane_scorer``): Beta policies share one state, linear and logistic
  Thompson sampling keep one each. :func:`.lanes.build_learners` picks, in one place.
* :class:`~.tutorial.TutorialLinearLearner` reproduces the tutorial's Part 7 class *as printed*.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies import BetaPosterior
from ..policies.base import RewardModel
from ..policies.rules import SelectionRule

__all__ = ["Learner", "ModelLearner", "posterior_state"]


class Learner(ABC):
    """Lanes of one or more policies; ``n_lanes = n_policies * n_trials``."""

    n_lanes: int
    n_policies: int = 1
    #: True when the learner reads one ``(trial, arm)`` reward table for all its policies
    #: (otherwise the runner tiles the table once per policy)
    shared_rewards: bool = False

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
    """Arrays describing a batch of posteriors, for plots and feature importance: Beta
    parameters, or the weights' means and 95% credible intervals (the model's
    ``weight_interval``; ``"scale"`` says whether the weights act on the reward or its logit)."""
    if isinstance(post, BetaPosterior):
        return {"kind": "beta", "alpha": np.array(post.alpha), "beta": np.array(post.beta)}
    weight_interval = getattr(model, "weight_interval", None)
    if weight_interval is None:
        return {}
    low, high = weight_interval(post)
    return {"kind": "linear", "mean": np.array(post.mean), "low": low, "high": high,
            "scale": "logit" if model.kind == "logistic" else "linear"}
