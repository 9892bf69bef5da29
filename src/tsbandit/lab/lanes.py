"""Thin drivers of the models' batched posterior states, and the one place that picks them.

A model with a batched state (:meth:`~tsbandit.policies.base.RewardModel.lanes`: Beta, linear,
logistic) keeps every lane's posterior in a few arrays and owns its math -- the draw, the means,
the update; a rule with a batched form (:meth:`~tsbandit.policies.rules.SelectionRule.
lane_scorer`) scores the lanes of that state. The learners here only schedule: each round, score
every lane, take the row-wise arg-max, and hand the observations back to the state.

* :class:`BetaGroupLearner`: several context-free Beta policies share one
  :class:`~tsbandit.policies.beta_lanes.BetaLanes`, so one NumPy call (or one compiled call)
  serves all of them; each policy draws from its own stream, so a policy's results do not depend
  on which others run beside it.
* :class:`LanesLearner`: one policy over its model's own state (linear or logistic Thompson
  sampling).

:func:`build_learners` chooses, for each policy, one of these or the generic
:class:`~.learners.ModelLearner` (which drives the same models through their statistics API):
the same policies, with fewer NumPy calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from ..errors import ConfigurationError
from ..policies import BetaBernoulli
from ..policies.beta_lanes import BetaLanes
from ..policies.rules import LaneScorer, lanes_argmax
from .learners import Learner, posterior_state
from .policies import Policy, PolicySpec

__all__ = ["BetaGroupLearner", "LanesLearner", "build_learners"]


class LanesLearner(Learner):
    """One policy over its model's batched state: ``scorer.score(x)`` draws, the arg-max
    chooses, ``lanes.observe`` learns."""

    def __init__(self, model: Any, lanes: Any, scorer: LaneScorer) -> None:
        self.model = model
        self.lanes = lanes
        self.scorer = scorer
        self.n_lanes = lanes.n_lanes
        self._bi = np.arange(self.n_lanes)

    def begin_block(self, size: int) -> None:
        self.scorer.begin(size)

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        return lanes_argmax(self.scorer.score(contexts))

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        m = self.lanes.mean_scores()
        return np.asarray(m[self._bi, chosen] < m.max(axis=1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        self.lanes.observe(chosen, rewards, contexts)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self.lanes.apply(lanes, arms, rewards, contexts)

    def final_state(self) -> list[dict[str, Any]]:
        return [posterior_state(self.model, self.lanes.posterior())]


class BetaGroupLearner(Learner):
    """Context-free Beta-Bernoulli policies sharing one :class:`BetaLanes` state.

    Each round every policy's scorer (its rule's batched form) writes its lanes' scores, and
    one step of the state picks every lane's arm and learns every observation. The exploration
    flags (is the pulled arm's posterior mean below the best one?) are evaluated at the end of
    each block for all its rounds at once, from the posterior means the scorers wrote into a
    block buffer.
    """

    #: the runner hands it the one ``(trial, arm)`` reward table, not one per policy
    shared_rewards = True

    def __init__(self, policies: Sequence[tuple[Any, Any, np.random.Generator]],
                 n_trials: int, n_arms: int) -> None:
        self.n_policies = P = len(policies)
        self.n_trials = n_trials
        self.n_arms = n_arms
        self.n_lanes = P * n_trials
        counts = any(rule.uses_counts for _, rule, _ in policies)
        self.state = BetaLanes([m for m, _, _ in policies], n_trials, n_arms, counts)
        scorers = [rule.lane_scorer(self.state, i, rng)
                   for i, (_, rule, rng) in enumerate(policies)]
        if any(s is None for s in scorers):
            raise ConfigurationError("every policy of a Beta group needs a batched form")
        self.scorers: list[LaneScorer] = [s for s in scorers if s is not None]
        self._scores = [s.score for s in self.scorers]
        self._cap = 0

    def begin_block(self, size: int) -> None:
        for s in self.scorers:
            s.begin(size)

    # ----- the generic one-step API (the runner uses the block methods below) -------------
    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        self.begin_block(1)
        for score in self._scores:
            score(0, None)
        return self.state.choose()

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        m = self.state.means()
        return np.asarray(m[np.arange(self.n_lanes), chosen] < m.max(axis=1))

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        self.state.observe(chosen, rewards)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        self.state.add(lanes, arms, rewards)

    # ----- block API used by the runner ---------------------------------------------------
    def bind_block(self, if_pulled: np.ndarray, rewards: np.ndarray, chosen: np.ndarray,
                   explore: np.ndarray | None, immediate: bool) -> None:
        super().bind_block(if_pulled, rewards, chosen, explore, immediate)
        B = if_pulled.shape[0]
        if B > self._cap:
            self._cap = B
            self._V = np.empty((B, self.state.R, self.n_lanes))
            self._Mb = np.empty((B, self.n_policies, self.n_trials, self.n_arms))
        self.state.bind_rewards(if_pulled, learn=immediate)

    def step_row(self, b: int, t: int, contexts: np.ndarray | None) -> None:
        rew, immediate = self._blk[1], self._blk[4]
        self.run_rows(b, b + 1)
        if not immediate:
            rew[b] = self._V[b, 0]

    def run_rows(self, b0: int, b1: int) -> None:
        """Rows ``b0 .. b1 - 1`` of the bound block."""
        chosen, ex = self._blk[2], self._blk[3]
        self.state.run_rounds(b0, b1, self._scores, chosen, self._V,
                              None if ex is None else self._Mb)

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
        return [posterior_state(m, self.state.posterior(i))
                for i, m in enumerate(self.state.models)]


def _plain(spec: Policy) -> bool:
    """A library policy without a window or discount (what the batched states implement)."""
    return isinstance(spec, PolicySpec) and spec.window is None and spec.discount is None


def build_learners(policies: Sequence[Policy], n_trials: int, n_arms: int,
                   rng_for: Callable[[str], np.random.Generator], fast: bool = True
                   ) -> list[tuple[Learner, list[Policy]]]:
    """One learner per policy, or one for a group of Beta policies: the model's batched state
    driven by the rule's batched form when both have one (``fast``), else
    :meth:`PolicySpec.make_learner` (the statistics API). ``rng_for(name)`` is a policy's own
    stream. The same policies either way; the batched ones make fewer NumPy calls."""
    out: list[tuple[Learner, list[Policy]]] = []
    group: list[tuple[PolicySpec, np.random.Generator]] = []
    for spec in policies:
        rng = rng_for(spec.name)
        if fast and isinstance(spec, PolicySpec) and _plain(spec):
            if BetaLanes.accepts(spec.model):
                probe = BetaLanes([cast(BetaBernoulli, spec.model)], 1, n_arms, counts=True)
                if spec.rule.lane_scorer(probe, 0, rng) is not None:
                    group.append((spec, rng))
                    continue
            lanes = spec.model.lanes(n_trials, n_arms)
            scorer = None if lanes is None else spec.rule.lane_scorer(lanes, 0, rng)
            if scorer is not None:
                out.append((LanesLearner(spec.model, lanes, scorer), [spec]))
                continue
        out.append((spec.make_learner(n_trials, n_arms, rng), [spec]))
    if group:
        learner = BetaGroupLearner([(s.model, s.rule, g) for s, g in group], n_trials, n_arms)
        out.insert(0, (learner, [s for s, _ in group]))
    return out
