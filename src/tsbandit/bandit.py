"""The friendly in-process bandit: named arms, a reward model, a selection rule, a generator.

:class:`Bandit` is what most users start with, in a notebook or inside their own service::

    >>> from tsbandit import Bandit
    >>> from tsbandit.policies import BetaBernoulli, ThompsonSampling
    >>> bandit = Bandit(["cashback", "travel", "premium"], BetaBernoulli(), seed=7)
    >>> d = bandit.select()
    >>> bandit.update(d.arm, 1)
    >>> sorted(bandit.posterior_mean())
    ['cashback', 'premium', 'travel']

Non-stationary variants: ``discount=gamma`` multiplies all statistics by ``gamma`` before each
observation (discounted Thompson sampling); ``window=W`` keeps only the last ``W`` observations
(a bounded buffer; the statistics of an evicted observation are subtracted exactly).

Randomness: a seed becomes one ``SeedSequence``; decisions draw from one stream, and
propensities and Monte-Carlo summaries from a *spawned* second stream, so asking for them never
changes the decisions that follow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import (
    ConfigurationError,
    DuplicateArmError,
    EligibilityError,
    LastArmError,
    SerializationError,
    UnknownArmError,
)
from .policies.base import RewardModel
from .policies.registry import model_from_config, rule_from_config
from .policies.rules import SelectionRule, ThompsonSampling, batch_propensities
from .policies.stats import Stats

__all__ = ["ArmSummary", "Bandit", "BatchDecision", "Decision", "make_generators"]

FORMAT_VERSION = 1


@dataclass(slots=True)
class Decision:
    """One decision: the chosen arm, the ranking (best first) and propensities.

    ``propensity`` is the probability that the rule chose ``arm`` first given what it knew
    (``None`` unless asked for); ``position_propensities[j]`` is that of ``ranking[j]`` at
    position ``j``.
    """

    arm: str
    index: int
    ranking: tuple[str, ...]
    propensity: float | None = None
    position_propensities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class BatchDecision:
    """Decisions for many users at once: ``indices`` ``(n, k)``, ``propensities`` ``(n, k)``."""

    indices: np.ndarray
    arm_names: tuple[str, ...]
    propensities: np.ndarray | None = None

    @property
    def arms(self) -> list[str]:
        """The first-choice arm name of each user."""
        return [self.arm_names[i] for i in self.indices[:, 0]]

    @property
    def rankings(self) -> list[list[str]]:
        """Each user's ranking as arm names."""
        return [[self.arm_names[i] for i in row] for row in self.indices]


@dataclass(frozen=True)
class ArmSummary:
    """Posterior summary of one arm (see :meth:`Bandit.posterior_summary`)."""

    arm: str
    mean: float
    lower: float
    upper: float
    pulls: float
    rewards: float
    prob_best: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-safe)."""
        return dict(self.__dict__)


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


def _check_names(names: Iterable[Any]) -> list[str]:
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
    """

    def __init__(
        self,
        arms: Sequence[str],
        model: RewardModel | None = None,
        rule: SelectionRule | None = None,
        *,
        seed: int | np.random.SeedSequence | np.random.Generator | None = None,
        discount: float | None = None,
        window: int | None = None,
        propensity_draws: int = 1000,
    ) -> None:
        from .policies.beta import BetaBernoulli

        names = _check_names(arms)
        self.model: RewardModel = model if model is not None else BetaBernoulli()
        self.rule: SelectionRule = rule if rule is not None else ThompsonSampling()
        if discount is not None:
            discount = float(discount)
            if not (0.0 < discount <= 1.0):
                raise ConfigurationError(f"discount == {discount!r}, must be > 0 and <= 1")
        if window is not None:
            if isinstance(window, bool) or int(window) != window or window < 1:
                raise ConfigurationError(f"window == {window!r}, must be an integer >= 1")
            if not self.model.additive:
                raise ConfigurationError(
                    f"window needs additive statistics; {type(self.model).__name__} has none"
                )
            window = int(window)
        if discount is not None and window is not None:
            raise ConfigurationError("use either discount or window, not both")
        if isinstance(propensity_draws, bool) or int(propensity_draws) < 1:
            raise ConfigurationError(
                f"propensity_draws == {propensity_draws!r}, must be an integer >= 1")
        self.discount = discount
        self.window = window
        self.propensity_draws = int(propensity_draws)
        self._names = names
        self._index = {n: i for i, n in enumerate(names)}
        self._rng, self._side_rng = make_generators(seed)
        self._stats = self.model.init_stats(len(names))
        self._post = self.model.posterior(self._stats)
        self._buffer: deque[tuple[int, float, np.ndarray | None]] = deque()
        self._one = (np.zeros(1, dtype=np.intp), np.zeros(1))
        #: the last context a decision validated and its bytes: the update that follows the
        #: decision skips validating it again when it is the same, unchanged array
        self._seen: tuple[np.ndarray, bytes] | None = None
        self.n_updates = 0

    # ----- introspection ------------------------------------------------------------------
    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names, in index order."""
        return tuple(self._names)

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self._names)

    @property
    def stats(self) -> Stats:
        """A copy of the sufficient statistics (reads never change the bandit)."""
        return self._stats.copy()

    @property
    def posterior(self) -> Any:
        """The current posterior parameters (treat as read-only)."""
        return self._post

    def arm_index(self, arm: str | int) -> int:
        """Index of an arm name (or a valid index), else :class:`UnknownArmError`."""
        if type(arm) is int and 0 <= arm < len(self._names):
            return arm
        if isinstance(arm, (int, np.integer)) and not isinstance(arm, bool):
            if 0 <= int(arm) < len(self._names):
                return int(arm)
        else:
            idx = self._index.get(arm) if isinstance(arm, str) else None
            if idx is not None:
                return idx
        raise UnknownArmError(f"unknown arm {arm!r}; known arms: {self._names}")

    def _arm_indices(self, arms: Sequence[str | int] | np.ndarray) -> np.ndarray:
        """Indices of many arms: integer arrays are range-checked at once, names looked up."""
        if isinstance(arms, np.ndarray) and arms.dtype.kind in "iu":
            idx = arms.astype(np.intp, copy=False).reshape(-1)
            bad = (idx < 0) | (idx >= len(self._names))
            if bad.any():
                raise UnknownArmError(
                    f"unknown arm index {int(idx[bad][0])}; the bandit has {self.n_arms} arms")
            return idx
        return np.array([self.arm_index(a) for a in arms], dtype=np.intp)

    # ----- validation helpers -------------------------------------------------------------
    def _context(self, context: Any, n: int | None = None) -> np.ndarray | None:
        return self.model.check_contexts(context, n)

    def _eligible(self, eligible: Iterable[str | int] | np.ndarray | None, k: int
                  ) -> np.ndarray | None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise EligibilityError(f"k == {k!r}, must be an integer >= 1")
        if eligible is None:
            if k > len(self._names):
                raise EligibilityError(f"k == {k} but the bandit has {len(self._names)} arms")
            return None
        items = list(eligible)
        if not items:
            raise EligibilityError("eligible arms are empty; pass None for all arms")
        mask = np.zeros(len(self._names), dtype=bool)
        for a in items:
            try:
                mask[self.arm_index(a)] = True
            except UnknownArmError:
                raise EligibilityError(
                    f"eligible arm {a!r} is unknown; known arms: {self._names}") from None
        if k > int(mask.sum()):
            raise EligibilityError(f"k == {k} but only {int(mask.sum())} arms are eligible")
        return mask

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
            return self._select_one(context, propensity)
        mask = None if (eligible is None and k == 1) else self._eligible(eligible, k)
        x = self._context(context)
        xs = None if x is None else x[0]
        chosen = self.rule.choose(self.model, self._post, self._stats, self._rng, xs, mask, k)
        names = self._names
        ranking = (names[chosen[0]],) if k == 1 else tuple(names[i] for i in chosen)
        if not propensity:
            return Decision(ranking[0], int(chosen[0]), ranking)
        probs = self.rule.propensities(self.model, self._post, self._stats, chosen,
                                       self._side_rng, xs, mask, self.propensity_draws)
        pp = tuple(float(p) for p in np.ravel(probs))
        return Decision(ranking[0], int(chosen[0]), ranking, pp[0], pp)

    def select(self, context: Any = None, eligible: Iterable[str | int] | None = None,
               *, propensity: bool = False) -> Decision:
        """Choose one arm for one user; see :meth:`rank`."""
        if eligible is None:
            return self._select_one(context, propensity)
        return self.rank(1, context, eligible, propensity=propensity)

    def _select_one(self, context: Any, propensity: bool) -> Decision:
        """The single-decision path: one arm index, no arrays in between (the same choice and
        the same random numbers as ``rank``'s general path)."""
        xs = self.model.check_context(context)
        if xs is not None and xs is context:
            self._seen = (xs, xs.tobytes())
        i = self.rule.choose_one(self.model, self._post, self._stats, self._rng, xs)
        name = self._names[i]
        if not propensity:
            return Decision(name, i, (name,))
        probs = self.rule.propensities(self.model, self._post, self._stats, np.array([i]),
                                       self._side_rng, xs, None, self.propensity_draws)
        p = float(np.ravel(probs)[0])
        return Decision(name, i, (name,), p, (p,))

    def select_batch(self, contexts: Any = None, n: int | None = None,
                     eligible: Iterable[str | int] | None = None, k: int = 1, *,
                     propensity: bool = False) -> BatchDecision:
        """Decisions for many users in one vectorized call.

        Give ``contexts`` ``(n, d)`` for a contextual model, or ``n`` for a context-free one.
        Each user gets independent posterior draws.
        """
        mask = self._eligible(eligible, k)
        if self.model.contextual:
            x = self._context(contexts)
            assert x is not None
            size = None
        else:
            self._context(contexts)
            if n is None or isinstance(n, bool) or int(n) < 1:
                raise ConfigurationError(f"n == {n!r}, must be an integer >= 1")
            x, size = None, int(n)
        chosen = self.rule.choose(self.model, self._post, self._stats, self._rng, x, mask, k,
                                  size=size)
        probs = None
        if propensity:
            probs = batch_propensities(self.rule, self.model, self._post, self._stats, chosen,
                                       self._side_rng, x, mask, self.propensity_draws)
        return BatchDecision(chosen, tuple(self._names), probs)

    def action_probabilities(self, contexts: Any = None,
                             eligible: Iterable[str | int] | None = None) -> np.ndarray:
        """Probability that each arm is chosen first: ``(K,)``, or ``(n, K)`` for contexts.

        Exact for deterministic, epsilon-greedy, softmax and random rules; Monte-Carlo (on the
        side stream) for Thompson sampling. Off-policy evaluation uses this.
        """
        mask = self._eligible(eligible, 1)
        x = self._context(contexts)
        return np.asarray(self.rule.action_probabilities(
            self.model, self._post, self._stats, self._side_rng, x, mask,
            self.propensity_draws), dtype=float)

    # ----- learning -----------------------------------------------------------------------
    def update(self, arm: str | int, reward: Any, context: Any = None) -> None:
        """Learn from one observation. Invalid input raises and leaves the bandit unchanged."""
        a = self.arm_index(arm)
        r = self.model.check_reward(reward)
        seen = self._seen
        xs: np.ndarray | None
        if seen is not None and context is seen[0] and context.tobytes() == seen[1]:
            xs = context  # validated by the decision, unchanged since (same bytes)
        elif context is None and not self.model.contextual:
            xs = None
        else:
            x = self._context(context, 1)
            xs = None if x is None else x[0]
        if self.discount is not None and self.discount < 1.0:
            self._stats = self.model.decay(self._stats, self.discount)
            a1, r1 = self._one  # one-element arrays, reused (accumulate keeps no reference)
            a1[0] = a
            r1[0] = r
            self.model.accumulate(self._stats, a1, r1, None if xs is None else xs[None, :])
            self._post = self.model.posterior(self._stats)
        else:
            self._post = self.model.observe_one(self._stats, self._post, a, r, xs)
        self.n_updates += 1
        if self.window is not None:
            self._buffer.append((a, r, None if xs is None else xs.copy()))
            if len(self._buffer) > self.window:
                self._evict(1)

    def update_batch(self, arms: Sequence[str | int], rewards: Any, contexts: Any = None) -> None:
        """Learn from many observations at once (statistics summed; order-free for additive
        models, sequential discounting when ``discount`` is set). All-or-nothing on errors."""
        idx = self._arm_indices(arms)
        r = self.model.check_rewards(rewards).reshape(-1)
        if r.shape[0] != idx.shape[0]:
            raise ConfigurationError(f"got {idx.shape[0]} arms and {r.shape[0]} rewards")
        n = idx.shape[0]
        if n == 0:
            return
        x = self._context(contexts, n)
        stats = self._stats.copy()
        if self.discount is not None and self.discount < 1.0:
            stats = self.model.decay(stats, self.discount**n)
            w = self.discount ** np.arange(n - 1, -1, -1, dtype=float)
            self.model.accumulate(stats, idx, r, x, weights=w)
        else:
            self.model.accumulate(stats, idx, r, x)
        self._stats = stats
        self.n_updates += n
        if self.window is not None:
            for i in range(n):
                self._buffer.append((int(idx[i]), float(r[i]), None if x is None else x[i]))
            extra = len(self._buffer) - self.window
            if extra > 0:
                self._evict(extra, refresh=False)
        self._post = self.model.posterior(self._stats)

    def _evict(self, count: int, refresh: bool = True) -> None:
        old = [self._buffer.popleft() for _ in range(count)]
        arms = np.array([o[0] for o in old], dtype=np.intp)
        rewards = np.array([o[1] for o in old], dtype=float)
        ctx = None if old[0][2] is None else np.stack([o[2] for o in old])  # type: ignore[misc]
        self.model.accumulate(self._stats, arms, rewards, ctx, weights=-np.ones(count))
        if refresh:
            self._post = self.model.posterior(self._stats)

    def decay(self, gamma: float) -> None:
        """Multiply all statistics by ``gamma`` in (0, 1] (e.g. time-based forgetting)."""
        g = float(gamma)
        if not (0.0 < g <= 1.0):
            raise ConfigurationError(f"gamma == {gamma!r}, must be > 0 and <= 1")
        self._stats = self.model.decay(self._stats, g)
        self._post = self.model.posterior(self._stats)

    # ----- arm management -----------------------------------------------------------------
    def add_arm(self, name: str) -> None:
        """Add an arm with no observations (its prior only)."""
        _check_names([*self._names, name])
        self._stats = self._stats.append_arms(self.model.init_stats(1))
        self._names.append(name)
        self._index[name] = len(self._names) - 1
        self._post = self.model.posterior(self._stats)

    def remove_arm(self, name: str | int) -> None:
        """Retire an arm and its statistics (observations of it leave the window buffer)."""
        a = self.arm_index(name)
        if len(self._names) == 1:
            raise LastArmError(f"cannot remove {self._names[a]!r}: it is the last arm")
        keep = [i for i in range(len(self._names)) if i != a]
        self._stats = self._stats.take_arms(keep)
        del self._names[a]
        self._index = {n: i for i, n in enumerate(self._names)}
        self._buffer = deque((i - (i > a), r, x) for i, r, x in self._buffer if i != a)
        self._post = self.model.posterior(self._stats)

    # ----- summaries (never change the decision stream) ------------------------------------
    def posterior_mean(self, context: Any = None) -> dict[str, float]:
        """Posterior mean of each arm's expected reward (for this context)."""
        x = self._context(context)
        m = np.asarray(self.model.mean(self._post, None if x is None else x[0]))
        return {n: float(v) for n, v in zip(self._names, m, strict=False)}

    def probability_best(self, context: Any = None, n_draws: int | None = None
                         ) -> dict[str, float]:
        """Monte-Carlo probability that each arm has the highest expected reward."""
        x = self._context(context)
        draws = self.model.sample(self._post, self._side_rng, None if x is None else x[0],
                                  size=n_draws or max(self.propensity_draws, 4000))
        best = np.argmax(draws, axis=-1)
        counts = np.bincount(best, minlength=self.n_arms) / draws.shape[0]
        return {n: float(v) for n, v in zip(self._names, counts, strict=False)}

    def posterior_summary(self, context: Any = None, level: float = 0.95,
                          n_draws: int | None = None) -> list[ArmSummary]:
        """Per arm: posterior mean, equal-tailed credible interval, pulls, total reward and
        probability of being best."""
        if not (0.0 < float(level) < 1.0):
            raise ConfigurationError(f"level == {level!r}, must be in (0, 1)")
        x = self._context(context)
        xs = None if x is None else x[0]
        mean = np.asarray(self.model.mean(self._post, xs))
        lo, hi = self.model.interval(self._post, level, xs)
        pb = self.probability_best(context, n_draws)
        pulls = self.model.counts(self._stats)
        sums = self.model.reward_sums(self._stats)
        return [
            ArmSummary(n, float(mean[i]), float(lo[i]), float(hi[i]), float(pulls[i]),
                       float(sums[i]), pb[n])
            for i, n in enumerate(self._names)
        ]

    # ----- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Versioned JSON-safe state (configuration, statistics, generator states, window).

        >>> from tsbandit import Bandit
        >>> b = Bandit(["a", "b"], seed=3); b.update("a", 1)
        >>> Bandit.from_dict(b.to_dict()).posterior_mean() == b.posterior_mean()
        True
        """
        return {
            "format": FORMAT_VERSION,
            "type": "Bandit",
            "arms": list(self._names),
            "model": self.model.to_config(),
            "rule": self.rule.to_config(),
            "discount": self.discount,
            "window": self.window,
            "propensity_draws": self.propensity_draws,
            "n_updates": self.n_updates,
            "stats": self._stats.to_dict(),
            "window_buffer": [
                [a, r, None if x is None else [float(v) for v in x]] for a, r, x in self._buffer
            ],
            "rng": {"decisions": self._rng.bit_generator.state,
                    "side": self._side_rng.bit_generator.state},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bandit:
        """Rebuild a bandit from :meth:`to_dict` output (never unpickles anything)."""
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
            stats = Stats.from_dict(data["stats"])
            expected = obj.model.init_stats(obj.n_arms)
            for k, v in expected.items():
                if k not in stats or stats[k].shape != v.shape:
                    raise SerializationError(f"statistic {k!r} is missing or has the wrong shape")
            obj._stats = stats
            obj._post = obj.model.posterior(stats)
            obj.n_updates = int(data.get("n_updates", 0))
            for a, r, x in data.get("window_buffer", []):
                obj._buffer.append((int(a), float(r), None if x is None else np.asarray(x, float)))
            rng = data.get("rng")
            if rng:
                obj._rng.bit_generator.state = rng["decisions"]
                obj._side_rng.bit_generator.state = rng["side"]
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"malformed bandit state: {exc}") from exc
        return obj

    def __repr__(self) -> str:
        return (f"Bandit(arms={self._names}, model={self.model!r}, rule={self.rule!r}, "
                f"n_updates={self.n_updates})")
