"""The friendly in-process bandit: named arms, a reward model, a selection rule, a generator.

:class:`Bandit` is what most users start with, in a notebook or inside their own service::

    >>> from tsbandit import Bandit
    >>> from tsbandit.policies import BetaBernoulli, ThompsonSampling
    >>> bandit = Bandit(["cashback", "travel", "premium"], BetaBernoulli(), seed=7)
    >>> d = bandit.select()
    >>> bandit.update(d.arm, 1)
    >>> sorted(bandit.posterior_mean())
    ['cashback', 'premium', 'travel']

Its decisions and summaries are the :class:`~tsbandit.core.DecisionCore`'s, the same as the
:class:`~tsbandit.engine.Engine`'s; its statistics live in memory
(:class:`~tsbandit.online.MemoryStatistics`). Non-stationary variants: ``discount=gamma``
multiplies all statistics by ``gamma`` before each observation (discounted Thompson sampling);
``window=W`` keeps only the last ``W`` observations (a bounded buffer; the statistics of an
evicted observation are subtracted exactly).

Randomness: a seed becomes one ``SeedSequence``; decisions draw from one stream, and
propensities and Monte-Carlo summaries from a *spawned* second stream, so asking for them never
changes the decisions that follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .core import DecisionCore, check_names, make_generators
from .decision import ArmSummary, BatchDecision, Decision
from .errors import LastArmError, SerializationError
from .metric_core import metric_setup, metric_summary
from .online import MemoryStatistics
from .policies.base import RewardModel
from .policies.metrics import MetricSet
from .policies.registry import model_from_config, rule_from_config
from .policies.rules import SelectionRule, ThompsonSampling
from .policies.stats import Stats

__all__ = ["ArmSummary", "Bandit", "BatchDecision", "Decision", "make_generators"]

FORMAT_VERSION = 1


class Bandit:
    """A bandit over named arms with any reward model and selection rule.

    Parameters
    ----------
    arms
        Arm names (unique, non-empty).
    model
        Reward model (default ``BetaBernoulli()``).
    rule
        Selection rule (default ``ThompsonSampling()``).
    seed
        Int, ``SeedSequence`` or ``Generator``; ``None`` draws fresh entropy.
    discount
        ``gamma`` in (0, 1]: all statistics are multiplied by it before each observation.
    window
        Keep only the last ``window`` observations (exact, bounded buffer).
    propensity_draws
        Monte-Carlo draws for propensities and probabilities of being best.
    metrics, objective, constraints, costs, baseline
        Several metrics instead of ``model`` (:class:`~tsbandit.policies.metrics.MetricSet`;
        arms by name): the rule defaults to :class:`~tsbandit.policies.rules.constrained.
        ConstrainedThompson` with constraints, else Thompson sampling on the objective.

    """

    def __init__(self, arms: Sequence[str], model: RewardModel | None = None,
                 rule: SelectionRule | None = None, *,
                 seed: int | np.random.SeedSequence | np.random.Generator | None = None,
                 discount: float | None = None, window: int | None = None,
                 propensity_draws: int = 1000, metrics: Mapping[str, Any] | None = None,
                 objective: Mapping[str, float] | None = None,
                 constraints: Sequence[Mapping[str, Any]] | None = None,
                 costs: Mapping[str, float] | None = None, baseline: str | None = None) -> None:
        from .policies.beta import BetaBernoulli

        names = check_names(arms)
        if metrics is not None or objective or constraints or costs or baseline is not None:
            model, rule = metric_setup(names, model, rule, metrics, objective, constraints,
                                        costs, baseline)
        model = model if model is not None else BetaBernoulli()
        rule = rule if rule is not None else ThompsonSampling()
        self._memory = MemoryStatistics(model, len(names), discount=discount, window=window)
        self._core = DecisionCore(names, model, rule, propensity_draws)
        self._rng, self._side_rng = make_generators(seed)
        self._metrics = isinstance(model, MetricSet)
        #: the last context a decision validated and its bytes: the update that follows the
        #: decision skips validating it again when it is the same, unchanged array
        self._seen: tuple[np.ndarray, bytes] | None = None

    # ----- introspection ------------------------------------------------------------------
    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names, in index order."""
        return self._core.arms

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self._core.arms)

    @property
    def model(self) -> RewardModel:
        """The reward model."""
        return self._core.model

    @property
    def rule(self) -> SelectionRule:
        """The selection rule."""
        return self._core.rule

    @property
    def propensity_draws(self) -> int:
        """Monte-Carlo draws for propensities and probabilities of being best."""
        return self._core.propensity_draws

    @property
    def discount(self) -> float | None:
        """The discount ``gamma`` applied before each observation, or None."""
        return self._memory.discount

    @property
    def window(self) -> int | None:
        """The number of observations kept, or None (all)."""
        return self._memory.window

    @property
    def n_updates(self) -> int:
        """Observations learned so far."""
        return self._memory.n_updates

    @property
    def stats(self) -> Stats:
        """A copy of the sufficient statistics (reads never change the bandit)."""
        return self._memory.stats.copy()

    @property
    def posterior(self) -> Any:
        """The current posterior parameters (treat as read-only)."""
        return self._memory.posterior

    def arm_index(self, arm: str | int) -> int:
        """Index of an arm name (or a valid index), else :class:`UnknownArmError`."""
        return self._core.arm_index(arm)

    # ----- decisions ----------------------------------------------------------------------
    def rank(self, k: int, context: Any = None, eligible: Iterable[str | int] | None = None,
             *, propensity: bool = False) -> Decision:
        """The top ``k`` arms, best first, for one user (one draw per arm for Thompson).

        >>> from tsbandit import Bandit
        >>> b = Bandit(["a", "b", "c"], seed=1)
        >>> len(b.rank(2).ranking)
        2
        """
        if k == 1 and eligible is None:
            return self.select(context, propensity=propensity)
        mem = self._memory
        return self._core.decide(mem.posterior, mem.stats, self._rng, self._side_rng, context,
                                 eligible, k, propensity=propensity)

    def select(self, context: Any = None, eligible: Iterable[str | int] | None = None,
               *, propensity: bool = False) -> Decision:
        """Choose one arm for one user; see :meth:`rank`."""
        if eligible is not None:
            return self.rank(1, context, eligible, propensity=propensity)
        core, mem = self._core, self._memory
        xs = core.model.check_context(context)
        if xs is not None and xs is context:
            self._seen = (xs, xs.tobytes())
        return core.decide_one(mem.posterior, mem.stats, self._rng, self._side_rng, xs,
                               propensity)

    def select_batch(self, contexts: Any = None, n: int | None = None,
                     eligible: Iterable[str | int] | None = None, k: int = 1, *,
                     propensity: bool = False) -> BatchDecision:
        """Decisions for many users in one vectorized call.

        Give ``contexts`` ``(n, d)`` for a contextual model, or ``n`` for a context-free one.
        Each user gets independent posterior draws.
        """
        mem = self._memory
        return self._core.decide_batch(mem.posterior, mem.stats, self._rng, self._side_rng,
                                       contexts, n, eligible, k, propensity=propensity)

    def action_probabilities(self, contexts: Any = None,
                             eligible: Iterable[str | int] | None = None) -> np.ndarray:
        """Probability that each arm is chosen first: ``(K,)``, or ``(n, K)`` for contexts.

        Exact for deterministic, epsilon-greedy, softmax and random rules; Monte-Carlo (on the
        side stream) for Thompson sampling. Off-policy evaluation uses this.
        """
        core, mem = self._core, self._memory
        mask = core.eligible(eligible, 1)
        x = core.model.check_contexts(contexts)
        return core.action_probabilities(mem.posterior, mem.stats, self._side_rng, x, mask)

    # ----- learning -----------------------------------------------------------------------
    def update(self, arm: str | int, reward: Any, context: Any = None) -> None:
        """Learn from one observation. Invalid input raises and leaves the bandit unchanged.
        With several metrics ``reward`` is ``{metric: value}``, any subset of the metrics."""
        core = self._core
        a = core.arm_index(arm)
        model = core.model
        if self._metrics:  # a flag: isinstance on the ABC would cost this path 0.25 us
            return self._memory.observe_rewards(a, reward, context)
        r = model.check_reward(reward)
        seen = self._seen
        xs: np.ndarray | None
        if seen is not None and context is seen[0] and context.tobytes() == seen[1]:
            xs = context  # validated by the decision, unchanged since (same bytes)
        elif context is None and not model.contextual:
            xs = None
        else:
            x = model.check_contexts(context, 1)
            xs = None if x is None else x[0]
        self._memory.observe(a, r, xs)

    def update_batch(self, arms: Sequence[str | int], rewards: Any, contexts: Any = None) -> None:
        """Learn from many observations at once (statistics summed; order-free for additive
        models, sequential discounting when ``discount`` is set). All-or-nothing on errors.
        With several metrics ``rewards`` is one ``{metric: value}`` per observation."""
        if self._metrics:
            return self._memory.observe_rewards_batch(self._core.arm_indices(arms), rewards,
                                                      contexts)
        idx, r, x = self._core.observations(arms, rewards, contexts)
        if idx.shape[0]:
            self._memory.observe_batch(idx, r, x)

    def decay(self, gamma: float) -> None:
        """Multiply all statistics by ``gamma`` in (0, 1] (e.g. time-based forgetting)."""
        self._memory.decay(gamma)

    # ----- arm management -----------------------------------------------------------------
    def add_arm(self, name: str) -> None:
        """Add an arm with no observations (its prior only; cost 0 with several metrics)."""
        core = self._core.with_arms([*self._core.arms, name])
        self._memory.append_arm()
        self._core = core

    def remove_arm(self, name: str | int) -> None:
        """Retire an arm and its statistics (observations of it leave the window buffer)."""
        a = self._core.arm_index(name)
        arms = self._core.arms
        if len(arms) == 1:
            raise LastArmError(f"cannot remove {arms[a]!r}: it is the last arm")
        self._core = self._core.with_arms(arms[:a] + arms[a + 1:], a)
        self._memory.remove_arm(a)

    # ----- summaries (never change the decision stream) ------------------------------------
    def posterior_mean(self, context: Any = None) -> dict[str, float]:
        """Posterior mean of each arm's expected reward (for this context)."""
        return self._core.posterior_mean(self._memory.posterior, context)

    def probability_best(self, context: Any = None, n_draws: int | None = None
                         ) -> dict[str, float]:
        """Monte-Carlo probability that each arm has the highest expected reward."""
        best = self._core.probability_best(self._memory.posterior, self._side_rng, context,
                                           n_draws)
        return {n: float(v) for n, v in zip(self._core.arms, best, strict=False)}

    def posterior_summary(self, context: Any = None, level: float = 0.95,
                          n_draws: int | None = None) -> list[ArmSummary]:
        """Per arm: posterior mean, equal-tailed credible interval, pulls, total reward and
        probability of being best (and ``alpha``, ``beta`` for a Beta model)."""
        mem = self._memory
        return self._core.summary(mem.posterior, mem.stats, self._side_rng, context, level,
                                  n_draws)

    def summary(self, context: Any = None, level: float = 0.95,
                n_draws: int | None = None) -> dict[str, Any]:
        """Several metrics: :func:`~tsbandit.metric_core.metric_summary` (on the side stream)."""
        mem = self._memory
        return metric_summary(self._core, mem.posterior, mem.stats, self._side_rng, context,
                              level, n_draws)

    # ----- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Versioned JSON-safe state (configuration, statistics, generator states, window).

        >>> from tsbandit import Bandit
        >>> b = Bandit(["a", "b"], seed=3); b.update("a", 1)
        >>> Bandit.from_dict(b.to_dict()).posterior_mean() == b.posterior_mean()
        True
        """
        return _state(self._core, self._memory, self._rng, self._side_rng)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bandit:
        """Rebuild a bandit from :meth:`to_dict` output (never unpickles anything)."""
        return _restore(cls, data)

    def __repr__(self) -> str:
        return (f"Bandit(arms={list(self.arms)}, model={self.model!r}, rule={self.rule!r}, "
                f"n_updates={self.n_updates})")


def _state(core: DecisionCore, memory: MemoryStatistics, rng: np.random.Generator,
           side_rng: np.random.Generator) -> dict[str, Any]:
    """A bandit's ``to_dict``: its core's configuration, its statistics, its generators."""
    learned = memory.to_dict()
    return {
        "format": FORMAT_VERSION,
        "type": "Bandit",
        "arms": list(core.arms),
        "model": core.model.to_config(),
        "rule": core.rule.to_config(),
        "discount": learned.pop("discount"),
        "window": learned.pop("window"),
        "propensity_draws": core.propensity_draws,
        **learned,
        "rng": {"decisions": rng.bit_generator.state, "side": side_rng.bit_generator.state},
    }


def _restore(cls: type[Bandit], data: Mapping[str, Any]) -> Bandit:
    """:meth:`Bandit.from_dict`: configuration, statistics and generator states."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT_VERSION:
        got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise SerializationError(
            f"unsupported bandit state format {got!r}; expected {FORMAT_VERSION}")
    try:
        # without saved generator states the restored bandit draws fresh entropy (no fixed
        # default seed); with them it continues the original streams exactly
        obj = cls(data["arms"], model_from_config(data["model"]),
                  rule_from_config(data["rule"]), seed=None, discount=data.get("discount"),
                  window=data.get("window"),
                  propensity_draws=int(data.get("propensity_draws", 1000)))
        obj._memory.load(data)
        rng = data.get("rng")
        if rng:
            obj._rng.bit_generator.state = rng["decisions"]
            obj._side_rng.bit_generator.state = rng["side"]
    except SerializationError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SerializationError(f"malformed bandit state: {exc}") from exc
    return obj
