"""Rules for experiments: a traffic floor around any rule, and top-two Thompson sampling.

:class:`TrafficFloor` keeps every eligible arm's share of first slots at least ``floor``: a test
whose estimates must stay valid (each arm keeps enough traffic for its interval to shrink, and
inverse-propensity weights stay bounded by ``1 / floor``) can still let a bandit shift the rest
of its traffic. :class:`TopTwoThompson` is the rule for *best-arm identification* (Russo, 2016):
plain Thompson sampling puts almost all traffic on the apparent leader once it is likely best,
so it learns slowly which arm is best when two are close; top-two sampling gives the leader a
fixed share ``beta`` and the rest to the arm that would most often challenge it.

Both report exact or Monte-Carlo propensities like every rule, so off-policy evaluation and the
event log stay correct.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigurationError
from ..base import Posterior, RewardModel
from ..checks import check_unit_interval
from ..stats import Stats
from .base import SelectionRule, mask_scores, top_k
from .thompson import ThompsonSampling

__all__ = ["TopTwoThompson", "TrafficFloor"]


def _eligible_count(eligible: np.ndarray | None, n_arms: int) -> np.ndarray:
    return np.asarray(n_arms if eligible is None else eligible.sum(axis=-1), dtype=float)


@dataclass(frozen=True)
class TrafficFloor(SelectionRule):
    """Any rule, with every eligible arm chosen first with probability at least ``floor``.

    Each decision explores with probability ``q = m * floor`` (``m`` eligible arms): a
    uniformly random ranking of the eligible arms; otherwise ``rule`` decides. So arm ``a`` is
    first with probability ``floor + (1 - q) * p_rule(a) >= floor``, and its propensity at
    position ``j`` is ``q / m + (1 - q) * p_rule(a at j)`` -- exact when ``rule``'s is, the
    rule's Monte-Carlo estimate mixed in otherwise.

    Parameters
    ----------
    rule
        The rule that allocates the rest of the traffic (default Thompson sampling); a rule
        object or its configuration.
    floor
        The least share of first slots of every eligible arm, in [0, 1 / K] for K arms (a
        decision over fewer eligible arms keeps the same floor per arm).

    >>> import numpy as np
    >>> from tsbandit.policies import BetaBernoulli
    >>> m = BetaBernoulli(); s = m.init_stats(4); s["successes"][0] = 500
    >>> rule = TrafficFloor(ThompsonSampling(), floor=0.05)
    >>> p = rule.action_probabilities(m, m.posterior(s), s, np.random.default_rng(0))
    >>> bool(p.min() >= 0.05), round(float(p.sum()), 6)
    (True, 1.0)
    >>> TrafficFloor.from_config(rule.to_config()) == rule
    True
    """

    rule: SelectionRule = field(default_factory=ThompsonSampling)
    floor: float = 0.05

    kind = "floor"

    def __post_init__(self) -> None:
        if isinstance(self.rule, Mapping):
            from ..registry import rule_from_config

            object.__setattr__(self, "rule", rule_from_config(self.rule))
        if not isinstance(self.rule, SelectionRule) or isinstance(self.rule, TrafficFloor):
            raise ConfigurationError(f"TrafficFloor wraps one selection rule, got {self.rule!r}")
        object.__setattr__(self, "floor", check_unit_interval("floor", self.floor))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule.to_config(), "floor": self.floor}

    def _share(self, n_arms: int, eligible: np.ndarray | None) -> np.ndarray:
        if self.floor * n_arms > 1.0 + 1e-12:
            raise ConfigurationError(
                f"floor == {self.floor} cannot hold for {n_arms} arms (at most 1/{n_arms})")
        return self.floor * _eligible_count(eligible, n_arms)

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        return self.rule.scores(model, posterior, stats, rng, contexts, size)

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        q = self._share(stats.n_arms, eligible)
        chosen = self.rule.choose(model, posterior, stats, rng, contexts, eligible, k, size)
        batch = chosen.shape[:-1]
        explore = rng.random(batch) < np.broadcast_to(q, batch) if batch else \
            np.asarray(rng.random() < float(q))
        if not explore.any():
            return chosen
        uniform = top_k(mask_scores(rng.random((*batch, stats.n_arms)), eligible), k, rng)
        return np.where(explore[..., None], uniform, chosen)

    def choose_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                   rng: np.random.Generator, context: np.ndarray | None = None) -> int:
        return int(self.choose(model, posterior, stats, rng, context)[0])

    def propensities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                     chosen: np.ndarray, rng: np.random.Generator,
                     contexts: np.ndarray | None = None, eligible: np.ndarray | None = None,
                     n_draws: int = 1000) -> np.ndarray:
        q = self._share(stats.n_arms, eligible)
        m = _eligible_count(eligible, stats.n_arms)
        inner = self.rule.propensities(model, posterior, stats, chosen, rng, contexts,
                                       eligible, n_draws)
        q, m = (q[..., None], m[..., None]) if q.ndim else (q, m)
        return q / m + (1.0 - q) * np.asarray(inner, dtype=float)

    def action_probabilities(self, model: RewardModel, posterior: Posterior, stats: Stats,
                             rng: np.random.Generator, contexts: np.ndarray | None = None,
                             eligible: np.ndarray | None = None,
                             n_draws: int = 1000) -> np.ndarray:
        q = self._share(stats.n_arms, eligible)
        inner = np.asarray(self.rule.action_probabilities(
            model, posterior, stats, rng, contexts, eligible, n_draws), dtype=float)
        elig = np.ones(inner.shape, bool) if eligible is None else np.broadcast_to(
            eligible, inner.shape)
        q = q[..., None] if q.ndim else q
        return q * elig / elig.sum(axis=-1, keepdims=True) + (1.0 - q) * inner


@dataclass(frozen=True)
class TopTwoThompson(SelectionRule):
    """Top-two Thompson sampling (Russo, 2016), for best-arm identification.

    Draw every arm's posterior once; the argmax is the *leader*. With probability ``beta`` the
    leader is chosen (the ranking is the draw's order); otherwise draws are repeated, up to
    ``max_resamples`` times, until another arm wins -- the *challenger*, chosen first (the rest
    of the ranking in the first draw's order). If no repeat finds one, the challenger is the
    first draw's second best. In the long run the best arm gets about ``beta`` of the traffic
    and the others share the rest in proportion to how plausibly each beats it, which is what
    identifies the best arm fastest (``beta = 1/2`` is within a factor 2 of optimal).
    Propensities: Monte Carlo over independent decisions.

    Parameters
    ----------
    beta
        The leader's share, in (0, 1).
    max_resamples
        Repeat draws looking for a challenger (>= 1).

    >>> import numpy as np
    >>> from tsbandit.policies import BetaBernoulli
    >>> m = BetaBernoulli(); s = m.init_stats(3); s["successes"][:] = [900, 100, 80]
    >>> s["failures"][:] = [100, 900, 920]
    >>> first = TopTwoThompson().choose(m, m.posterior(s), s, np.random.default_rng(0),
    ...                                  size=4000)[:, 0]
    >>> round(float((first == 0).mean()), 1)  # plain Thompson sampling: 1.0
    0.5
    """

    beta: float = 0.5
    max_resamples: int = 50

    kind = "top_two"

    def __post_init__(self) -> None:
        b = check_unit_interval("beta", self.beta)
        if not 0.0 < b < 1.0:
            raise ConfigurationError(f"beta == {self.beta!r}, must be in (0, 1)")
        object.__setattr__(self, "beta", b)
        r = self.max_resamples
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ConfigurationError(f"max_resamples == {r!r}, must be an integer >= 1")
        object.__setattr__(self, "max_resamples", int(r))

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        return model.sample(posterior, rng, contexts, size)

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        first = mask_scores(model.sample(posterior, rng, contexts, size), eligible)
        ranking = top_k(first, k, rng)
        batch = first.shape[:-1]
        challenge = rng.random(batch) >= self.beta
        if not np.any(challenge):
            return ranking
        leader = first.argmax(axis=-1)
        # R repeats at once: (R, *batch, K); the first repeat whose argmax is not the leader
        reps = self.max_resamples
        again = model.sample(posterior, rng, contexts, reps * (1 if size is None else size))
        again = mask_scores(again.reshape(reps, *batch, first.shape[-1]), eligible)
        winners = again.argmax(axis=-1)                                   # (R, *batch)
        other = winners != leader
        found = other.any(axis=0)
        pick = np.take_along_axis(winners, other.argmax(axis=0)[None], axis=0)[0]
        order = np.argsort(-first, axis=-1, kind="stable")
        second = order[..., 1] if first.shape[-1] > 1 else leader
        second = np.where(np.isfinite(np.take_along_axis(first, second[..., None],
                                                         axis=-1)[..., 0]), second, leader)
        challenger = np.where(found, pick, second)
        # the challenger first, then the first draw's order without it
        boosted = np.where(np.arange(first.shape[-1]) == challenger[..., None], np.inf, first)
        chall_rank = top_k(boosted, k, rng)
        return np.where(challenge[..., None], chall_rank, ranking)
