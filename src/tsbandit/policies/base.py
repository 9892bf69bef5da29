"""The reward-model contract (its input validation is :mod:`.checks`, re-exported here).

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

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigurationError
from . import checks as _checks
from .checks import *  # noqa: F403 - the validation helpers, re-exported (engine, experiments)
from .checks import InputChecks
from .stats import Stats

__all__ = ["Posterior", "RewardModel", *_checks.__all__]

Posterior = Any  # each model defines its own small dataclass of arrays

class RewardModel(InputChecks, ABC):
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

    def warm_start(self, stats: Stats, weight: float = 1.0, max_count: float | None = None,
                   arm_map: Any = None) -> Stats:
        """Starting statistics from an earlier bandit's ``stats`` of this model, each old
        observation counted ``weight`` times and each arm capped at ``max_count`` (a power
        prior; see :func:`~.warm_start.warm_start`)."""
        from .warm_start import warm_start

        return warm_start(self, stats, weight=weight, max_count=max_count, arm_map=arm_map)

    @abstractmethod
    def counts(self, stats: Stats) -> np.ndarray:
        """(Weighted) number of observations per arm, ``(*batch, K)``."""

    @abstractmethod
    def reward_sums(self, stats: Stats) -> np.ndarray:
        """(Weighted) sum of rewards per arm, ``(*batch, K)``."""

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

    def draw_log_density(self, posterior: Posterior, draws: np.ndarray,
                         memo: dict[str, np.ndarray] | None = None) -> np.ndarray | None:
        """Log density of each arm's draw under a context-free posterior: ``draws`` ``(n, K)``
        (as :meth:`sample` with ``size=n`` draws them) -> ``(n, K)``. ``memo``: a dict kept
        with these ``draws``, where a model may keep functions of the draws that every
        posterior's density needs (their logarithms), to compute them once.

        ``None`` (the default) when the model has no closed form; then Thompson propensities
        are estimated afresh for every posterior instead of being reweighted
        (:class:`~tsbandit.policies.choice_sample.ChoiceSample`).
        """
        return None

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
