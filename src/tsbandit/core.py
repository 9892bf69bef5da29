"""The decision core that :class:`~tsbandit.Bandit` and :class:`~tsbandit.engine.Engine` share.

A :class:`DecisionCore` is a bandit's named arms, reward model, selection rule and propensity
budget. Given a posterior and its statistics -- held in memory by a ``Bandit``, read from a store
by the ``Engine`` -- it does everything a decision or a summary needs: arm names and indices,
eligibility masks, choosing and ranking by the rule, propensities, and per-arm posterior
summaries. The two front ends differ only in where the statistics live (as httpx's
``BaseClient`` holds what ``Client`` and ``AsyncClient`` share).

Every draw comes from a generator passed in: the decision stream for choices, the spawned side
stream (:func:`make_generators`) for propensities and Monte-Carlo summaries, so asking for those
never changes the decisions that follow.

>>> from tsbandit.policies import BetaBernoulli, ThompsonSampling
>>> core = DecisionCore(["a", "b", "c"], BetaBernoulli(), ThompsonSampling())
>>> stats = core.model.init_stats(3)
>>> post = core.model.posterior(stats)
>>> rng, side = make_generators(0)
>>> d = core.decide(post, stats, rng, side, k=2, eligible=["a", "c"], propensity=True)
>>> sorted(d.ranking), len(d.position_propensities)
(['a', 'c'], 2)
>>> [s.arm for s in core.summary(post, stats, side)]
['a', 'b', 'c']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .decision import ArmSummary, BatchDecision, Decision
from .errors import ConfigurationError, DuplicateArmError, EligibilityError, UnknownArmError
from .policies.base import RewardModel
from .policies.choice_sample import ChoiceSample
from .policies.metrics import MetricSet
from .policies.rules import SelectionRule, batch_propensities
from .policies.rules.constrained import APPLIED
from .policies.stats import Stats

__all__ = ["DecisionCore", "check_names", "make_generators"]

def make_generators(seed: int | np.random.SeedSequence | np.random.Generator | None
                    ) -> tuple[np.random.Generator, np.random.Generator]:
    """The decision stream and an independent spawned stream for propensities and summaries.

    >>> a, b = make_generators(1)
    >>> float(a.random()) != float(b.random())
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed, seed.spawn(1)[0]
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    main, side = ss.spawn(2)
    return np.random.default_rng(main), np.random.default_rng(side)


def check_names(names: Iterable[Any]) -> list[str]:
    """Arm names as a list: non-empty strings, each once, at least one, else
    :class:`DuplicateArmError`.

    >>> check_names(("a", "b"))
    ['a', 'b']
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise DuplicateArmError(f"arm names must be non-empty strings, got {name!r}")
        if name in seen:
            raise DuplicateArmError(f"arm name {name!r} is given more than once")
        seen.add(name)
        out.append(name)
    if not out:
        raise DuplicateArmError("a bandit needs at least one arm; got an empty list")
    return out


def check_propensity_draws(value: Any) -> int:
    """``value`` as an int if it is an integer >= 1, else :class:`ConfigurationError`."""
    if isinstance(value, bool) or int(value) < 1:
        raise ConfigurationError(f"propensity_draws == {value!r}, must be an integer >= 1")
    return int(value)


class DecisionCore:
    """Named arms, a reward model, a selection rule: decisions and summaries over a posterior.

    Parameters
    ----------
    arms
        Arm names (unique, non-empty), in index order.
    model, rule
        The reward model and the selection rule.
    propensity_draws
        Monte-Carlo draws for propensities (stochastic rules) and probabilities of being best.

    The methods take the posterior and statistics to decide from (``post``, ``stats``) and the
    generators to draw from; none changes the core, which is immutable (a changed arm layout
    is a new core: :meth:`with_arms`).
    """

    __slots__ = ("_explains", "_index", "arms", "model", "propensity_draws", "rule")

    def __init__(self, arms: Iterable[str], model: RewardModel, rule: SelectionRule,
                 propensity_draws: int = 1000) -> None:
        self.arms: tuple[str, ...] = tuple(check_names(arms))
        self.model = model
        self.rule = rule
        self.propensity_draws = check_propensity_draws(propensity_draws)
        self._index = {a: i for i, a in enumerate(self.arms)}
        self._explains = hasattr(rule, "explain")

    @property
    def explains(self) -> bool:
        """Whether the rule says what it applied to each decision (a constrained rule)."""
        return self._explains

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arms)

    def with_arms(self, arms: Iterable[str], removed: int | None = None) -> DecisionCore:
        """The same model, rule and draws over another arm layout: this core's arms with
        some appended (``removed`` None), or with the arm at index ``removed`` left out. A
        several-metric bandit's per-arm costs and its rule's arm indices (baseline,
        ``relative_to``) follow; an arm they name cannot be removed
        (:class:`ConfigurationError`).

        >>> from tsbandit.metric_core import metric_setup
        >>> core = DecisionCore(["a", "b"], *metric_setup(["a", "b"], None, None,
        ...     {"apply": "beta"}, None, None, {"b": 2.0}, None))
        >>> core.with_arms(["a", "b", "c"]).model.costs.tolist()
        [0.0, 2.0, 0.0]
        >>> core.with_arms(["b"], removed=0).model.costs.tolist()
        [2.0]
        """
        names = tuple(check_names(arms))
        model, rule = self.model, self.rule
        if isinstance(model, MetricSet):
            costs: Any = model.costs
            if removed is None:
                if costs.size:
                    costs = [*costs, *[0.0] * (len(names) - len(self.arms))]
            else:
                costs = np.delete(costs, removed) if costs.size else ()
                from .metric_core import without_arm

                rule = without_arm(rule, removed, self.arms[removed])
            model = model.with_costs(costs)
        return DecisionCore(names, model, rule, self.propensity_draws)

    # ----- arms ---------------------------------------------------------------------------
    def arm_index(self, arm: str | int) -> int:
        """Index of an arm name (or a valid index), else :class:`UnknownArmError`."""
        if type(arm) is str:
            hit = self._index.get(arm)
            if hit is not None:
                return hit
        n = len(self.arms)
        if type(arm) is int and 0 <= arm < n:
            return arm
        if isinstance(arm, (int, np.integer)) and not isinstance(arm, bool):
            if 0 <= int(arm) < n:
                return int(arm)
        else:
            idx = self._index.get(arm) if isinstance(arm, str) else None
            if idx is not None:
                return idx
        raise UnknownArmError(f"unknown arm {arm!r}; known arms: {list(self.arms)}")

    def arm_indices(self, arms: Sequence[str | int] | np.ndarray) -> np.ndarray:
        """Indices of many arms: integer arrays are range-checked at once, names looked up."""
        if isinstance(arms, np.ndarray) and arms.dtype.kind in "iu":
            idx = arms.astype(np.intp, copy=False).reshape(-1)
            bad = (idx < 0) | (idx >= len(self.arms))
            if bad.any():
                raise UnknownArmError(
                    f"unknown arm index {int(idx[bad][0])}; the bandit has {self.n_arms} arms")
            return idx
        return np.array([self.arm_index(a) for a in arms], dtype=np.intp)

    def observations(self, arms: Sequence[str | int] | np.ndarray, rewards: Any,
                     contexts: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Validated observations: arm indices ``(n,)``, rewards ``(n,)`` and contexts
        ``(n, d)`` (None for a context-free model, and when there is no observation)."""
        idx = self.arm_indices(arms)
        r = self.model.check_rewards(rewards).reshape(-1)
        if r.shape[0] != idx.shape[0]:
            raise ConfigurationError(f"got {idx.shape[0]} arms and {r.shape[0]} rewards")
        if idx.shape[0] == 0:
            return idx, r, None
        return idx, r, self.model.check_contexts(contexts, idx.shape[0])

    def eligible(self, eligible: Iterable[str | int] | np.ndarray | None, k: int
                 ) -> np.ndarray | None:
        """The eligible-arm mask ``(K,)`` (``None``: every arm) for a top-``k`` decision, or
        :class:`EligibilityError` (``k`` not an integer >= 1, no arm, an unknown arm, fewer
        eligible arms than ``k``)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise EligibilityError(f"k == {k!r}, must be an integer >= 1")
        slots = getattr(self.model, "max_slots", None)  # a ranking model's positions
        if slots is not None and k > slots:
            raise EligibilityError(f"k == {k} but the model ranks at most {slots} slots "
                                   "(n_positions)")
        n = len(self.arms)
        if eligible is None:
            if k > n:
                raise EligibilityError(f"k == {k} but the bandit has {n} arms")
            return None
        items = list(eligible)
        if not items:
            raise EligibilityError("eligible arms are empty; leave them out for all arms")
        mask = np.zeros(n, dtype=bool)
        for a in items:
            try:
                mask[self.arm_index(a)] = True
            except UnknownArmError:
                raise EligibilityError(
                    f"eligible arm {a!r} is unknown; known arms: {list(self.arms)}") from None
        if k > int(mask.sum()):
            raise EligibilityError(f"k == {k} but only {int(mask.sum())} arms are eligible")
        return mask

    # ----- decisions ----------------------------------------------------------------------
    def decide(self, post: Any, stats: Stats, rng: np.random.Generator,
               side_rng: np.random.Generator, context: Any = None,
               eligible: Iterable[str | int] | None = None, k: int = 1, *,
               propensity: bool = False) -> Decision:
        """One user's decision: the top ``k`` eligible arms (one draw per arm for Thompson),
        with the propensities of the ranking when ``propensity`` (from ``side_rng``)."""
        if k == 1 and eligible is None:
            xs = self.model.check_context(context)
            return self.decide_one(post, stats, rng, side_rng, xs, propensity)
        mask = self.eligible(eligible, k)
        x = self.model.check_contexts(context)
        return self._decide(post, stats, rng, side_rng, None if x is None else x[0], mask, k,
                            propensity)

    def _decide(self, post: Any, stats: Stats, rng: np.random.Generator,
                side_rng: np.random.Generator, xs: np.ndarray | None, mask: np.ndarray | None,
                k: int, propensity: bool) -> Decision:
        """The general path of :meth:`decide` (a validated context ``(d,)``, a mask)."""
        explain = getattr(self.rule, "explain", None)
        applied = None
        if explain is not None:  # a constrained rule also says what it applied
            chosen, how = explain(self.model, post, stats, rng, xs, mask, k)
            applied = APPLIED[int(how)]
        else:
            chosen = self.rule.choose(self.model, post, stats, rng, xs, mask, k)
        arms = self.arms
        ranking = (arms[chosen[0]],) if k == 1 else tuple(arms[i] for i in chosen)
        if not propensity:
            return Decision(ranking[0], int(chosen[0]), ranking, applied=applied)
        probs = self.rule.propensities(self.model, post, stats, chosen, side_rng, xs, mask,
                                       self.propensity_draws)
        pp = tuple(float(p) for p in np.ravel(probs))
        return Decision(ranking[0], int(chosen[0]), ranking, pp[0], pp, applied)

    def decide_one(self, post: Any, stats: Stats, rng: np.random.Generator,
                   side_rng: np.random.Generator, xs: np.ndarray | None,
                   propensity: bool = False) -> Decision:
        """The single-decision path (one user, every arm, ``k = 1``, a validated context
        ``(d,)`` or None): one arm index, no arrays in between -- the same choice from the same
        random numbers as :meth:`decide`'s general path."""
        if self._explains:
            explain_one = getattr(self.rule, "explain_one", None)
            if explain_one is None:
                return self._decide(post, stats, rng, side_rng, xs, None, 1, propensity)
            i, how = explain_one(self.model, post, stats, rng, xs)
            name = self.arms[i]
            if not propensity:
                return Decision(name, i, (name,), applied=APPLIED[how])
            probs = self.rule.propensities(self.model, post, stats, np.array([i]), side_rng,
                                           xs, None, self.propensity_draws)
            p = float(np.ravel(probs)[0])
            return Decision(name, i, (name,), p, (p,), APPLIED[how])
        i = self.rule.choose_one(self.model, post, stats, rng, xs)
        name = self.arms[i]
        if not propensity:
            return Decision(name, i, (name,))
        probs = self.rule.propensities(self.model, post, stats, np.array([i]), side_rng, xs,
                                       None, self.propensity_draws)
        p = float(np.ravel(probs)[0])
        return Decision(name, i, (name,), p, (p,))

    def decide_batch(self, post: Any, stats: Stats, rng: np.random.Generator,
                     side_rng: np.random.Generator, contexts: Any = None, n: int | None = None,
                     eligible: Iterable[str | int] | None = None, k: int = 1, *,
                     propensity: bool = False) -> BatchDecision:
        """Decisions for many users: contexts ``(n, d)`` for a contextual model, or ``n``
        context-free users; each gets independent posterior draws (propensities from
        ``side_rng`` when asked for)."""
        mask = self.eligible(eligible, k)
        x = self.model.check_contexts(contexts)
        size = None
        if not self.model.contextual:
            if n is None or isinstance(n, bool) or int(n) < 1:
                raise ConfigurationError(f"n == {n!r}, must be an integer >= 1")
            x, size = None, int(n)
        chosen = self.choose(post, stats, rng, x, mask, k, size)
        probs = self.propensities(post, stats, chosen, side_rng, x, mask) if propensity else None
        return BatchDecision(chosen, self.arms, probs)

    def choose(self, post: Any, stats: Stats, rng: np.random.Generator,
               x: np.ndarray | None, mask: np.ndarray | None, k: int, size: int | None
               ) -> np.ndarray:
        """Chosen arm indices ``(n, k)``, best first, for contexts ``x`` ``(n, d)`` or ``size``
        context-free users."""
        return self.rule.choose(self.model, post, stats, rng, x, mask, k, size=size)

    def choose_explained(self, post: Any, stats: Stats, rng: np.random.Generator,
                         x: np.ndarray | None, mask: np.ndarray | None, k: int,
                         size: int | None) -> tuple[np.ndarray, list[str] | None]:
        """:meth:`choose`, and what a constrained rule applied to each decision (its
        ``explain``: ``"constrained"``, ``"baseline"``, ``"most_likely"``; None for other
        rules)."""
        explain = getattr(self.rule, "explain", None)
        if explain is None:
            return self.choose(post, stats, rng, x, mask, k, size), None
        chosen, how = explain(self.model, post, stats, rng, x, mask, k, size=size)
        return chosen, [APPLIED[int(h)] for h in np.ravel(how)]

    def propensities(self, post: Any, stats: Stats, chosen: np.ndarray,
                     side_rng: np.random.Generator, x: np.ndarray | None,
                     mask: np.ndarray | None) -> np.ndarray:
        """Propensities ``(n, k)`` of ``n`` users' choices ``chosen`` ``(n, k)``."""
        return batch_propensities(self.rule, self.model, post, stats, chosen, side_rng, x,
                                  mask, self.propensity_draws)

    def action_probabilities(self, post: Any, stats: Stats, side_rng: np.random.Generator,
                             x: np.ndarray | None = None, mask: np.ndarray | None = None
                             ) -> np.ndarray:
        """Probability that each arm is chosen first: ``(K,)``, or ``(n, K)`` for contexts
        ``(n, d)``; exact for deterministic, epsilon-greedy, softmax and random rules,
        Monte-Carlo (``propensity_draws`` draws) for Thompson sampling."""
        return np.asarray(self.rule.action_probabilities(
            self.model, post, stats, side_rng, x, mask, self.propensity_draws), dtype=float)

    def first_choice_probabilities(self, post: Any, stats: Stats,
                                   side_rng: np.random.Generator, mask: np.ndarray | None,
                                   earlier: ChoiceSample | None = None
                                   ) -> tuple[np.ndarray, ChoiceSample | None]:
        """:meth:`action_probabilities` of a context-free bandit ``(K,)``, and the Thompson
        draws behind them to pass as ``earlier`` for a later posterior of the same bandit and
        eligible set: its draws are then reweighted rather than drawn afresh while they still
        hold at least 90% of their effective size (:mod:`tsbandit.policies.choice_sample`).
        Rules and models without such draws estimate afresh (the sample is ``None``)."""
        if earlier is not None:
            probs = earlier.reweighted(self.model, post)
            if probs is not None:
                return probs, earlier
        sample = self.rule.choice_sample(self.model, post, stats, side_rng, mask,
                                         self.propensity_draws)
        if sample is None:
            return self.action_probabilities(post, stats, side_rng, None, mask), None
        return sample.probabilities(), sample

    def propensity_floor(self) -> float:
        """The floor of a Monte-Carlo propensity (``1 / propensity_draws``; 0 when exact):
        the observed choice proves the probability positive."""
        return 0.0 if self.rule.deterministic else 1.0 / self.propensity_draws

    # ----- summaries ----------------------------------------------------------------------
    def posterior_mean(self, post: Any, context: Any = None) -> dict[str, float]:
        """Posterior mean of each arm's expected reward (for this context)."""
        x = self.model.check_contexts(context)
        m = np.asarray(self.model.mean(post, None if x is None else x[0]))
        return {n: float(v) for n, v in zip(self.arms, m, strict=False)}

    def probability_best(self, post: Any, side_rng: np.random.Generator, context: Any = None,
                         n_draws: int | None = None) -> np.ndarray:
        """Monte-Carlo probability ``(K,)`` that each arm has the highest expected reward
        (``n_draws``, default ``max(propensity_draws, 4000)``)."""
        x = self.model.check_contexts(context)
        draws = self.model.sample(post, side_rng, None if x is None else x[0],
                                  size=n_draws or max(self.propensity_draws, 4000))
        best = np.argmax(draws, axis=-1)
        return np.bincount(best, minlength=len(self.arms)) / draws.shape[0]

    def summary(self, post: Any, stats: Stats, side_rng: np.random.Generator,
                context: Any = None, level: float = 0.95, n_draws: int | None = None
                ) -> list[ArmSummary]:
        """Per arm: posterior mean, equal-tailed credible interval at ``level``, pulls, total
        reward, probability of being best, and for Beta models ``alpha`` and ``beta``."""
        if not (0.0 < float(level) < 1.0):
            raise ConfigurationError(f"level == {level!r}, must be in (0, 1)")
        model = self.model
        x = model.check_contexts(context)
        xs = None if x is None else x[0]
        mean = np.asarray(model.mean(post, xs))
        lo, hi = model.interval(post, level, xs)
        best = self.probability_best(post, side_rng, context, n_draws)
        pulls = model.counts(stats)
        sums = model.reward_sums(stats)
        beta = model.kind == "beta" and hasattr(post, "alpha")
        return [ArmSummary(a, float(mean[i]), float(lo[i]), float(hi[i]), float(pulls[i]),
                           float(sums[i]), float(best[i]),
                           float(post.alpha[i]) if beta else None,
                           float(post.beta[i]) if beta else None)
                for i, a in enumerate(self.arms)]
