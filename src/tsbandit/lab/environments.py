"""Simulated worlds for the lab: the ground truth stays here, hidden from the policies.

An :class:`Environment` describes a world (its arms, its context features) and starts an
:class:`Episode` for ``n_trials`` independent replications. An episode hands the runner
:class:`Block` s of consecutive rounds: the contexts the policies see, and — for the runner's
bookkeeping only — every arm's *expected* reward and the uniform draw that realizes the reward of
whichever arm a policy pulls (``reward = noise < expected[arm]``). Because the block is shared
by every policy, all policies meet the same customers and the same reward draws (common random
numbers), so their comparison is paired.

Policies never receive an environment or a block: they get the contexts and the realized
reward of the arm they chose, nothing else.

Examples
--------
>>> import numpy as np
>>> env = BernoulliArms([0.03, 0.06])
>>> ep = env.episode(n_trials=4, n_rounds=10, seed=np.random.SeedSequence(0))
>>> blk = ep.block(0, 10)
>>> blk.expected.shape, blk.noise.shape
((10, 4, 2), (10, 4))
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError

__all__ = [
    "BernoulliArms",
    "Block",
    "DelayedFeedback",
    "Environment",
    "Episode",
    "PiecewiseBernoulli",
]


@dataclass(frozen=True)
class Block:
    """Rounds ``[start, start + size)`` of an episode for ``n`` trials.

    Attributes
    ----------
    start
        First round of the block (0-based).
    contexts
        ``(size, n, d)`` context of each trial in each round, or ``None`` (context-free world).
    expected
        ``(size, n, K)`` expected reward of every arm (ground truth: runner only).
    noise
        ``(size, n)`` uniform draws in [0, 1); the reward of arm ``a`` is
        ``noise < expected[..., a]``. ``None`` when the expected rewards are exactly 0 or 1
        (the reward is then the expected reward itself).
    apply_at
        ``(size, n)`` round at whose start the reward reaches the policy (delayed feedback), or
        ``None`` (immediately, before the next decision).
    """

    start: int
    contexts: np.ndarray | None
    expected: np.ndarray
    noise: np.ndarray | None
    apply_at: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of rounds in the block."""
        return int(self.expected.shape[0])


class Episode(ABC):
    """The random course of one run: ``n_trials`` replications, drawn block by block.

    Blocks must be requested in order (``start`` = previous ``start + size``); the draws depend
    only on the seed, never on the block sizes the runner happens to use.
    """

    n_trials: int

    @abstractmethod
    def block(self, start: int, size: int) -> Block:
        """Rounds ``[start, start + size)``."""


class Environment(ABC):
    """A simulated world with ``K`` arms and (optionally) ``d`` context features.

    Subclasses keep the ground truth in private attributes; the ``oracle_*`` accessors exist for
    tests and reports, never for policies.
    """

    #: short name used in reports
    name: str = "environment"

    def __init__(self, arm_names: Sequence[str], feature_names: Sequence[str] | None = None
                 ) -> None:
        names = tuple(str(a) for a in arm_names)
        if len(names) < 2:
            raise ConfigurationError(f"an environment needs at least 2 arms, got {len(names)}")
        if len(set(names)) != len(names):
            raise ConfigurationError(f"arm names must be distinct, got {list(names)}")
        self.arm_names: tuple[str, ...] = names
        self.feature_names: tuple[str, ...] | None = (
            None if feature_names is None else tuple(str(f) for f in feature_names))

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return len(self.arm_names)

    @property
    def n_features(self) -> int | None:
        """Context dimension ``d`` (``None`` for a context-free world)."""
        return None if self.feature_names is None else len(self.feature_names)

    @property
    def contextual(self) -> bool:
        """True when decisions come with a context vector."""
        return self.feature_names is not None

    @abstractmethod
    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        """Start ``n_trials`` replications of ``n_rounds`` rounds drawn from ``seed``."""

    def oracle_coefficients(self) -> np.ndarray | None:
        """True linear coefficients ``(K, d)`` of the expected reward, when the world has them."""
        return None

    def describe(self) -> dict[str, Any]:
        """JSON-safe description for reports (no per-round ground truth)."""
        return {"name": self.name, "arms": list(self.arm_names),
                "features": None if self.feature_names is None else list(self.feature_names)}


def _check_trials(n_trials: int, n_rounds: int) -> None:
    for name, v in (("n_trials", n_trials), ("n_rounds", n_rounds)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ConfigurationError(f"{name} == {v!r}, must be an integer >= 1")


def _rates(name: str, rates: Any) -> np.ndarray:
    try:
        r = np.asarray(rates, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {rates!r}, must be numbers") from None
    if not np.all(np.isfinite(r)) or np.any(r < 0) or np.any(r > 1):
        raise ConfigurationError(f"{name} == {rates!r}, every rate must be in [0, 1]")
    r.setflags(write=False)
    return r


# ---------------------------------------------------------------------------------------------
class BernoulliArms(Environment):
    """Context-free arms with fixed success probabilities (the tutorial's Part 6).

    Parameters
    ----------
    rates
        ``(K,)`` success probability of each arm.
    arm_names
        Optional names (default ``arm0..``).
    """

    name = "bernoulli"

    def __init__(self, rates: Sequence[float] | np.ndarray,
                 arm_names: Sequence[str] | None = None) -> None:
        r = _rates("rates", rates)
        if r.ndim != 1:
            raise ConfigurationError(f"rates has shape {r.shape}, expected (K,)")
        super().__init__(arm_names or [f"arm{i}" for i in range(r.shape[0])])
        if len(self.arm_names) != r.shape[0]:
            raise ConfigurationError(f"{len(self.arm_names)} arm names for {r.shape[0]} rates")
        self._rates = r

    def oracle_rates(self) -> np.ndarray:
        """The hidden success probabilities ``(K,)`` (a read-only array)."""
        return self._rates

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        _check_trials(n_trials, n_rounds)
        return _RateEpisode(int(n_trials), lambda start, size: self._rates[None, :], seed)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "rates": self._rates.tolist()}


class _RateEpisode(Episode):
    """Episode of a context-free world whose rates depend on the round only."""

    def __init__(self, n_trials: int, rates_for: Any, seed: np.random.SeedSequence) -> None:
        self.n_trials = n_trials
        self._rates_for = rates_for
        self._rng = np.random.default_rng(seed)
        self._next = 0

    def block(self, start: int, size: int) -> Block:
        if start != self._next:
            raise ConfigurationError(f"blocks must be consecutive: expected start {self._next}")
        self._next = start + size
        rates = self._rates_for(start, size)                       # (size or 1, K)
        expected = np.ascontiguousarray(
            np.broadcast_to(rates[:, None, :], (size, self.n_trials, rates.shape[-1])))
        return Block(start, None, expected, self._rng.random((size, self.n_trials)))


class PiecewiseBernoulli(Environment):
    """Context-free arms whose rates change at given rounds (the tutorial's Exercise 1).

    Parameters
    ----------
    rates
        ``(P, K)``: the rates of each of ``P`` phases.
    change_points
        ``P - 1`` increasing rounds (0-based) at which the next phase starts.

    Examples
    --------
    Arm 0 best in rounds 1-2500, arm 1 best in rounds 2501-5000:

    >>> env = PiecewiseBernoulli([[0.06, 0.03], [0.03, 0.06]], change_points=[2500])
    >>> env.oracle_rates_at(np.array([0, 2499, 2500]))[:, 0].tolist()
    [0.06, 0.06, 0.03]
    """

    name = "piecewise-bernoulli"

    def __init__(self, rates: Sequence[Sequence[float]] | np.ndarray,
                 change_points: Sequence[int], arm_names: Sequence[str] | None = None) -> None:
        r = _rates("rates", rates)
        if r.ndim != 2:
            raise ConfigurationError(f"rates has shape {r.shape}, expected (phases, K)")
        cps = [int(c) for c in change_points]
        if len(cps) != r.shape[0] - 1:
            raise ConfigurationError(
                f"{len(cps)} change points for {r.shape[0]} phases, expected {r.shape[0] - 1}")
        if any(c <= 0 for c in cps) or any(b <= a for a, b in itertools.pairwise(cps)):
            raise ConfigurationError(
                f"change_points == {cps}, must be positive and strictly increasing")
        super().__init__(arm_names or [f"arm{i}" for i in range(r.shape[1])])
        if len(self.arm_names) != r.shape[1]:
            raise ConfigurationError(f"{len(self.arm_names)} arm names for {r.shape[1]} arms")
        self._rates = r
        self._cps = np.asarray(cps, dtype=np.int64)

    def oracle_rates_at(self, rounds: np.ndarray) -> np.ndarray:
        """Rates ``(len(rounds), K)`` in force at the given 0-based rounds."""
        return self._rates[np.searchsorted(self._cps, np.asarray(rounds), side="right")]

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        _check_trials(n_trials, n_rounds)
        return _RateEpisode(int(n_trials),
                            lambda start, size: self.oracle_rates_at(np.arange(start,
                                                                               start + size)),
                            seed)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "rates": self._rates.tolist(),
                "change_points": self._cps.tolist()}


# ---------------------------------------------------------------------------------------------
class DelayedFeedback(Environment):
    """Wrap a world so that rewards reach the policies late, and in batches (Exercise 3).

    The reward of round ``t`` is revealed at round ``t + 1 + D`` with ``D`` geometric on
    ``{0, 1, ...}`` with mean ``mean_delay``, and applied at the first multiple of
    ``batch_every`` at or after that round (a nightly job, say). The delays come from their own
    stream, derived from the episode seed, so the wrapped world draws exactly the same customers
    and rewards as the bare one: runs with different delays are paired too.

    Parameters
    ----------
    env
        The world to wrap.
    mean_delay
        Mean extra delay in rounds (0 = next round).
    batch_every
        Rewards are applied every ``batch_every`` rounds (1 = as soon as revealed).
    """

    name = "delayed"

    def __init__(self, env: Environment, mean_delay: float = 0.0, batch_every: int = 1) -> None:
        md = float(mean_delay)
        if not math.isfinite(md) or md < 0:
            raise ConfigurationError(f"mean_delay == {mean_delay!r}, must be finite and >= 0")
        if isinstance(batch_every, bool) or int(batch_every) != batch_every or batch_every < 1:
            raise ConfigurationError(f"batch_every == {batch_every!r}, must be an integer >= 1")
        super().__init__(env.arm_names, env.feature_names)
        self.base = env
        self.mean_delay = md
        self.batch_every = int(batch_every)

    def oracle_coefficients(self) -> np.ndarray | None:
        return self.base.oracle_coefficients()

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        inner = self.base.episode(n_trials, n_rounds, seed)
        # a stream of its own that does not consume anything from the base world's seed
        delay_seed = np.random.SeedSequence(seed.entropy,
                                            spawn_key=(*seed.spawn_key, 0x64656C61))
        return _DelayedEpisode(inner, np.random.default_rng(delay_seed), self.mean_delay,
                               self.batch_every)

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "mean_delay": self.mean_delay,
                "batch_every": self.batch_every}


class _DelayedEpisode(Episode):
    def __init__(self, inner: Episode, rng: np.random.Generator, mean_delay: float,
                 batch_every: int) -> None:
        self.inner = inner
        self.n_trials = inner.n_trials
        self._rng = rng
        self._p = 1.0 / (1.0 + mean_delay)
        self._batch = batch_every

    def block(self, start: int, size: int) -> Block:
        blk = self.inner.block(start, size)
        shape = (size, self.n_trials)
        delay = self._rng.geometric(self._p, shape) - 1 if self._p < 1.0 else np.zeros(shape,
                                                                                         int)
        reveal = np.arange(start, start + size)[:, None] + 1 + delay
        apply_at = -(-reveal // self._batch) * self._batch
        return Block(blk.start, blk.contexts, blk.expected, blk.noise,
                     apply_at.astype(np.int64))
