"""The reward-model contract and the validation helpers every model shares.

A *reward model* is pure math over additive sufficient statistics (:class:`~.stats.Stats`):
it knows the statistics layout, the delta of observations, and how to turn statistics into a
posterior that can be summarized (mean, standard deviation, credible interval) and sampled.
Hyper-parameters (priors, noise) live on the frozen model object; learned state lives in
``Stats``. Nothing here does I/O or touches a global random state.

Shapes: statistics are ``(*batch, K, ...)``. Contexts are ``(*cbatch, d)`` and broadcast against
the statistics' batch, so ``K``-arm statistics with contexts ``(B, d)`` give ``(B, K)`` scores,
and statistics ``(T, K, ...)`` with contexts ``(T, d)`` give ``(T, K)`` (one context per trial).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigurationError, InvalidContextError, InvalidRewardError
from .stats import Stats

__all__ = [
    "BETA_SHAPE_MIN",
    "MAX_ABS_CONTEXT",
    "MAX_ABS_REWARD",
    "MAX_FEATURES",
    "PRIOR_MAX",
    "PRIOR_MIN",
    "SHAPE_MIN",
    "VARIANCE_MAX",
    "VARIANCE_MIN",
    "Posterior",
    "RewardModel",
    "check_in_range",
    "check_n_features",
    "check_positive",
    "check_unit_interval",
]

Posterior = Any  # each model defines its own small dataclass of arrays

_F64 = np.dtype(np.float64)

# ----- bounds that keep every statistic and posterior summary finite ------------------------
# Statistics are float64 sums of r, r^2, r x, x x^T over observations. With |r|, |x_i| <= 1e12 one
# observation adds at most 1e24 to any total, so ~1e284 observations would be needed to overflow
# (the stores still refuse a sum that would, see tsbandit.stores.base.finite_sums). Pseudo-counts
# and prior precisions in [1e-6, 1e6] keep posterior precisions >= 1e-6 (variances <= 1e6) and
# prior shares like kappa0 * mu0^2 <= 1e30; variance-like priors in [1e-12, 1e12] do the same for
# noise scales. An inverse-gamma shape >= 0.5 gives Student-t marginals with >= 1 degree of
# freedom, whose quantiles stay finite at every level < 1 (and whose prior draws do not
# overflow); smaller shapes overflow both.
#: largest accepted magnitude of a reward
MAX_ABS_REWARD = 1e12
#: largest accepted magnitude of a context entry
MAX_ABS_CONTEXT = 1e12
#: range of pseudo-counts and prior precisions (alpha0, beta0, kappa0, prior_precision)
PRIOR_MIN, PRIOR_MAX = 1e-6, 1e6
#: range of variance-like priors (Normal beta0, noise_variance, noise_b0)
VARIANCE_MIN, VARIANCE_MAX = 1e-12, 1e12
#: smallest inverse-gamma shape (Normal alpha0, noise_a0): one degree of freedom
SHAPE_MIN = 0.5
#: smallest Beta prior pseudo-count (alpha0, beta0). A Beta draw is G_a / (G_a + G_b) with
#: gamma draws; P(G_c < 5e-324, the smallest float) is about exp(-744.4 c), so at c = 1e-3 a draw
#: underflows to 0 half the time and both do (0/0: NaN) a quarter of the time. At 0.05 one does
#: with probability 7e-17, both 5e-33: never. (Beta(0.5, 0.5), Jeffreys, is well inside.)
BETA_SHAPE_MIN = 0.05
#: largest context dimension of a model: checked before anything is allocated (statistics hold
#: a (d, d) matrix per arm; 1024 is 8 MiB per arm)
MAX_FEATURES = 1024
_MAX_CONTEXT_SQ = MAX_ABS_CONTEXT * MAX_ABS_CONTEXT


def check_in_range(name: str, value: Any, low: float, high: float) -> float:
    """Validate a scalar hyper-parameter within ``[low, high]``; the message names it.

    >>> check_in_range("alpha0", 2, 1e-6, 1e6)
    2.0
    """
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(f"{name} == {value!r}, must be a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number") from None
    if not low <= v <= high:  # NaN fails too
        raise ConfigurationError(
            f"{name} == {value!r}, must be finite and between {low:g} and {high:g}"
        )
    return v


def check_n_features(value: Any) -> int:
    """A context dimension: an integer in ``[1, MAX_FEATURES]`` (checked before allocating)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigurationError(f"n_features == {value!r}, must be an integer >= 1")
    if value > MAX_FEATURES:
        raise ConfigurationError(f"n_features == {value!r}, must be <= {MAX_FEATURES}")
    return int(value)


def _refuse_bad_context(x: np.ndarray) -> None:
    """Raise for non-finite or too large entries (the slow path behind the screens below)."""
    if not np.isfinite(x).all():
        raise InvalidContextError("context contains NaN or infinite values")
    big = np.abs(x) > MAX_ABS_CONTEXT
    if big.any():
        raise InvalidContextError(
            f"context entry {float(x[big].ravel()[0])!r} is too large: every |x_i| must be <= "
            f"{MAX_ABS_CONTEXT:g}"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a scalar hyper-parameter; the message names the parameter.

    >>> check_positive("alpha0", 1.0)
    1.0
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} == {value!r}, must be finite and {bound}")
    return v


def check_unit_interval(name: str, value: float, *, open_low: bool = False) -> float:
    """Validate a probability-like scalar in [0, 1] (or (0, 1] with ``open_low``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number") from None
    if not (0.0 <= v <= 1.0) or (open_low and v == 0.0):
        low = "> 0" if open_low else ">= 0"
        raise ConfigurationError(f"{name} == {value!r}, must be {low} and <= 1")
    return v


class RewardModel(ABC):
    """Base class of reward models (Beta-Bernoulli, Normal-Inverse-Gamma, linear, logistic).

    Subclasses are frozen dataclasses of hyper-parameters and supply the statistics layout, the
    accumulation of observations and the posterior summaries; this class does the shared
    validation and the generic derived operations (``delta``, ``decay``, ``interval``).
    """

    #: short name used in serialized configurations (``"beta"``, ``"linear"``...)
    kind: ClassVar[str]
    #: True when decisions need a context vector
    contextual: ClassVar[bool] = False
    #: True when statistics of disjoint batches add up exactly (False for the Laplace model)
    additive: ClassVar[bool] = True

    # ----- configuration ------------------------------------------------------------------
    @property
    def n_features(self) -> int | None:
        """Context dimension ``d`` (``None`` for context-free models)."""
        return None

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """JSON-safe hyper-parameters, ``{"kind": ..., ...}``; inverse of ``from_config``."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RewardModel:
        """Build a model from :meth:`to_config` output."""
        cfg = {k: v for k, v in config.items() if k != "kind"}
        return cls(**cfg)

    # ----- statistics ---------------------------------------------------------------------
    @abstractmethod
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        """Zero statistics (no observations) for ``n_arms`` arms. Priors are not in here."""

    @abstractmethod
    def accumulate(
        self,
        stats: Stats,
        arms: np.ndarray,
        rewards: np.ndarray,
        contexts: np.ndarray | None = None,
        *,
        batch_index: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        """Add observations to ``stats`` **in place** (inputs already validated).

        ``arms`` (n,) int, ``rewards`` (n,), ``contexts`` (n, d); ``batch_index`` (n,) int selects
        the batch element (trial) of each observation when the statistics have one batch axis;
        ``weights`` (n,) scale each observation's contribution (importance weights, discounting).
        """

    def lanes(self, n_lanes: int, n_arms: int) -> Any:
        """The model's batched posterior state over ``n_lanes`` independent lanes (simulated
        trials), updated in place one observation per lane per round, or ``None`` when the
        model has none (the default; callers then use the statistics API above). It is the
        same posterior math as :meth:`posterior`, :meth:`sample` and :meth:`accumulate`:
        Beta (:class:`~.beta_lanes.BetaLanes`), linear (:class:`~.gaussian_lanes.
        LinearLanes`) and logistic (:class:`~.logistic_lanes.LogisticLanes`) have one.
        """
        return None

    def observe_one(self, stats: Stats, posterior: Posterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> Posterior:
        """Add one (validated) observation to ``stats`` in place; return the posterior after it.

        The online hot path: exactly :meth:`accumulate` of the one observation followed by
        :meth:`update_posterior` (which is the default); models override it to skip the
        one-element arrays. ``context`` is ``(d,)``.
        """
        self.accumulate(stats, np.array([arm], dtype=np.intp), np.array([reward]),
                        None if context is None else context[None, :])
        return self.update_posterior(posterior, stats, arm, reward, context)

    def delta(
        self,
        n_arms: int,
        arms: np.ndarray,
        rewards: np.ndarray,
        contexts: np.ndarray | None = None,
        *,
        batch_shape: tuple[int, ...] = (),
        batch_index: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> Stats:
        """Statistics of a batch of observations alone (add them to any state); a
        :class:`~tsbandit.errors.ConfigurationError` for a model whose statistics are not
        additive.

        >>> import numpy as np
        >>> from tsbandit.policies import BetaBernoulli
        >>> d = BetaBernoulli().delta(3, np.array([0, 2, 2]), np.array([1, 0, 1]))
        >>> d["successes"].tolist(), d["failures"].tolist()
        ([1.0, 0.0, 1.0], [0.0, 0.0, 1.0])
        """
        if not self.additive:
            raise ConfigurationError(
                f"{type(self).__name__} statistics are not additive; use accumulate")
        out = self.init_stats(n_arms, batch_shape)
        self.accumulate(out, arms, rewards, contexts, batch_index=batch_index, weights=weights)
        return out

    def decay(self, stats: Stats, gamma: float | np.ndarray) -> Stats:
        """Statistics after forgetting: every observation's weight multiplied by ``gamma``.

        Decay composes: ``decay(decay(s, g1), g2) == decay(s, g1 * g2)``.
        """
        return stats.scaled(gamma)

    @abstractmethod
    def counts(self, stats: Stats) -> np.ndarray:
        """(Weighted) number of observations per arm, ``(*batch, K)``."""

    @abstractmethod
    def reward_sums(self, stats: Stats) -> np.ndarray:
        """(Weighted) sum of rewards per arm, ``(*batch, K)``."""

    # ----- validation ---------------------------------------------------------------------
    def check_reward(self, reward: Any) -> float:
        """One reward as a float, or :class:`InvalidRewardError` (the scalar fast path)."""
        if isinstance(reward, (str, bytes)):
            raise InvalidRewardError(f"reward {reward!r} is not a number")
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise InvalidRewardError(f"reward {reward!r} is not a number") from None
        if not -MAX_ABS_REWARD <= r <= MAX_ABS_REWARD:
            if not math.isfinite(r):
                raise InvalidRewardError(
                    f"reward {r!r} is not finite; rewards must be finite numbers")
            raise InvalidRewardError(
                f"reward {r!r} is too large: |reward| must be <= {MAX_ABS_REWARD:g}")
        return r

    def check_rewards(self, rewards: Any) -> np.ndarray:
        """Rewards as float64, or :class:`InvalidRewardError` naming the bad value."""
        r: np.ndarray | None = None
        if not isinstance(rewards, (str, bytes)):
            try:
                r = np.asarray(rewards, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        if r is None:
            raise InvalidRewardError(f"reward {rewards!r} is not a number")
        bad = ~(np.abs(r) <= MAX_ABS_REWARD)
        if bad.any():
            for v in r[bad].ravel()[:1].tolist():
                RewardModel.check_reward(self, v)  # raises, with the scalar check's message
        return r

    def check_contexts(self, contexts: Any, n: int | None = None) -> np.ndarray | None:
        """Contexts as float64 ``(n, d)`` (a single ``(d,)`` is promoted), or an error.

        Context-free models accept ``None`` only.
        """
        d = self.n_features
        if d is None:
            if contexts is not None:
                raise InvalidContextError(
                    f"{type(self).__name__} takes no context, got one of shape "
                    f"{np.shape(contexts)}"
                )
            return None
        if contexts is None:
            raise InvalidContextError(
                f"{type(self).__name__} needs a context vector of length {d}, got none"
            )
        if (type(contexts) is np.ndarray and contexts.dtype == np.float64
                and contexts.shape == (d,) and n in (None, 1)):
            # one float64 context (the online decision path): a single screen (|x|^2 within
            # the bound implies every entry is; NaN or inf fail the comparison)
            if not float(contexts @ contexts) <= _MAX_CONTEXT_SQ:
                _refuse_bad_context(contexts)
            return contexts[None, :]
        try:
            x = np.asarray(contexts, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidContextError("context must be a sequence of numbers") from None
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != d:
            raise InvalidContextError(
                f"context has shape {np.shape(contexts)}, expected ({d},) or (n, {d})"
            )
        if n is not None and x.shape[0] != n:
            raise InvalidContextError(f"got {x.shape[0]} contexts for {n} observations")
        # one dot product screens the common case: a sum of squares within the bound implies
        # every entry is (NaN or inf fail the comparison); only a larger sum (or an overflow)
        # pays for the element-wise check
        flat = x.reshape(-1)
        if not float(flat @ flat) <= _MAX_CONTEXT_SQ:
            _refuse_bad_context(x)
        return x

    def check_context(self, context: Any) -> np.ndarray | None:
        """One user's context as float64 ``(d,)`` (``None`` for context-free models), or an
        error: the single-decision form of :meth:`check_contexts` (which it falls back to, so
        it accepts and refuses the same inputs; of several contexts it takes the first)."""
        d = self.n_features
        if d is None:
            if context is not None:
                self.check_contexts(context)  # raises, naming the model
            return None
        if type(context) is np.ndarray and context.dtype is _F64 and context.shape == (d,):
            # one dot product screens the common case, as in check_contexts
            if not float(np.dot(context, context)) <= _MAX_CONTEXT_SQ:
                _refuse_bad_context(context)
            return context
        x = self.check_contexts(context)
        assert x is not None
        return x[0]

    # ----- posterior ----------------------------------------------------------------------
    @abstractmethod
    def posterior(self, stats: Stats) -> Posterior:
        """Posterior parameters computed from prior + statistics (arrays, same batch shape)."""

    def update_posterior(
        self,
        posterior: Posterior,
        stats: Stats,
        arm: int,
        reward: float,
        context: np.ndarray | None = None,
    ) -> Posterior:
        """Posterior after one observation, given ``stats`` that already include it.

        The default recomputes from ``stats``; models with an O(d^2) incremental update
        override this. The result is the same posterior up to rounding.
        """
        return self.posterior(stats)

    def update_posterior_cells(
        self,
        posterior: Posterior,
        stats: Stats,
        batch_index: np.ndarray,
        arms: np.ndarray,
        rewards: np.ndarray,
        contexts: np.ndarray | None = None,
    ) -> Posterior:
        """Batched :meth:`update_posterior`: one observation for each distinct
        ``(batch_index[i], arms[i])`` cell, ``stats`` already including them.

        This is the simulation lab's hot path (one observation per trial per round). The
        default recomputes from ``stats``; the Gaussian models override it with O(d^2) updates.
        """
        return self.posterior(stats)

    @abstractmethod
    def mean(self, posterior: Posterior, contexts: np.ndarray | None = None) -> np.ndarray:
        """Posterior mean of each arm's expected reward, ``(*batch, K)``."""

    @abstractmethod
    def std(self, posterior: Posterior, contexts: np.ndarray | None = None) -> np.ndarray:
        """Posterior standard deviation of each arm's expected reward, ``(*batch, K)``."""

    @abstractmethod
    def sample(
        self,
        posterior: Posterior,
        rng: np.random.Generator,
        contexts: np.ndarray | None = None,
        size: int | None = None,
    ) -> np.ndarray:
        """One posterior draw of each arm's expected reward.

        Returns ``(*batch, K)``; with ``size`` the draws are independent and the result is
        ``(size, *batch, K)`` (many users, or Monte-Carlo draws).
        """

    def sample_one(self, posterior: Posterior, rng: np.random.Generator,
                   context: np.ndarray | None = None) -> list[float] | None:
        """One user's draw of every arm as Python floats, or ``None`` (no fast path here).

        The single-decision fast path of :meth:`sample`: statistics without a batch axis and one
        context ``(d,)`` (or none). A model that implements it returns exactly the values, and
        consumes exactly the random numbers, of ``sample(posterior, rng, context)``; the
        default declines and callers use :meth:`sample`.
        """
        return None

    def sample_argmax_one(self, posterior: Posterior, rng: np.random.Generator,
                          context: np.ndarray | None = None) -> int | list[float] | None:
        """The arm whose draw is highest in one user's draw (:meth:`sample_one`), when the model
        can tell it without returning the draws.

        Returns the index (``int``) when the maximum is unique, else the draws as
        :meth:`sample_one` returns them (a tie or a NaN at the top, or no shortcut here: the
        caller breaks ties from the values), or ``None`` when there is no fast path. Consumes
        exactly the random numbers of :meth:`sample_one`. The default returns
        :meth:`sample_one`; Beta and linear models override it with compiled kernels when
        numba is installed (:mod:`~tsbandit.policies._jit`).
        """
        return self.sample_one(posterior, rng, context)

    def sample_scaled(
        self,
        posterior: Posterior,
        rng: np.random.Generator,
        scale: float,
        contexts: np.ndarray | None = None,
        size: int | None = None,
    ) -> np.ndarray:
        """A posterior draw with its spread multiplied by ``scale`` (tempered Thompson sampling).

        The default is ``mean + scale * (draw - mean)`` with ``draw`` from :meth:`sample`: same
        mean, standard deviation times ``scale``, same shape of distribution. Models whose
        posterior is Gaussian in the weights override it to draw exactly from the posterior
        with covariance times ``scale**2``. Shapes as in :meth:`sample`.

        >>> import numpy as np
        >>> from tsbandit.policies import BetaBernoulli
        >>> m = BetaBernoulli(); p = m.posterior(m.init_stats(2))
        >>> m.sample_scaled(p, np.random.default_rng(0), 0.5, size=4).shape
        (4, 2)
        """
        mean = self.mean(posterior, contexts)
        return mean + scale * (self.sample(posterior, rng, contexts, size) - mean)

    @abstractmethod
    def interval(
        self, posterior: Posterior, level: float = 0.95, contexts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of each arm's expected reward: ``(low, high)``."""
