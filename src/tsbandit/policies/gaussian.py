"""Normal model with unknown mean and variance (real-valued rewards such as revenue).

Statistics per arm: ``n``, ``sum_r`` and ``sum_r2`` (weighted). With the conjugate
Normal-Inverse-Gamma prior ``sigma^2 ~ IG(alpha0, beta0)``, ``mu | sigma^2 ~ N(mu0,
sigma^2 / kappa0)``, the posterior is NIG with

    kappa_n = kappa0 + n,  mu_n = (kappa0 mu0 + sum_r) / kappa_n,  alpha_n = alpha0 + n / 2,
    beta_n  = beta0 + (sum_r2 + kappa0 mu0^2 - kappa_n mu_n^2) / 2,

and the marginal posterior of the mean ``mu`` is Student-t with ``2 alpha_n`` degrees of freedom,
location ``mu_n`` and scale ``sqrt(beta_n / (alpha_n kappa_n))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._scipy import stdtrit
from .base import (
    MAX_ABS_REWARD,
    PRIOR_MAX,
    PRIOR_MIN,
    SHAPE_MIN,
    VARIANCE_MAX,
    VARIANCE_MIN,
    RewardModel,
    check_in_range,
)
from .beta import _scatter
from .stats import Stats

__all__ = ["NIGPosterior", "NormalInverseGamma"]


@dataclass
class NIGPosterior:
    """Posterior parameters, each ``(*batch, K)``."""

    mu: np.ndarray
    kappa: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray

    @property
    def scale(self) -> np.ndarray:
        """Scale of the Student-t marginal of the mean."""
        return np.sqrt(self.beta / (self.alpha * self.kappa))


@dataclass(frozen=True)
class NormalInverseGamma(RewardModel):
    """Gaussian rewards with unknown mean and variance (Normal-Inverse-Gamma prior).

    Parameters
    ----------
    mu0
        Prior mean of an arm's expected reward, ``|mu0| <= 1e12`` (the reward bound).
    kappa0
        Prior pseudo-observations behind ``mu0`` (small = weak prior), in ``[1e-6, 1e6]``.
    alpha0, beta0
        Inverse-gamma prior of the reward variance (prior mean variance ``beta0/(alpha0-1)``):
        ``alpha0`` in ``[0.5, 1e6]`` (the marginal of the mean is a Student-t with at least one
        degree of freedom, so its quantiles and draws stay finite), ``beta0`` in
        ``[1e-12, 1e12]``. These bounds keep every posterior summary finite
        (:mod:`~.base`).

    Examples
    --------
    >>> import numpy as np
    >>> m = NormalInverseGamma(mu0=0.0, kappa0=1.0)
    >>> s = m.init_stats(1)
    >>> m.accumulate(s, np.array([0, 0, 0]), np.array([10.0, 12.0, 14.0]))
    >>> float(m.mean(m.posterior(s))[0])
    9.0
    """

    mu0: float = 0.0
    kappa0: float = 1.0
    alpha0: float = 1.0
    beta0: float = 1.0

    kind = "gaussian"

    def __post_init__(self) -> None:
        bounds = {"mu0": (-MAX_ABS_REWARD, MAX_ABS_REWARD), "kappa0": (PRIOR_MIN, PRIOR_MAX),
                  "alpha0": (SHAPE_MIN, PRIOR_MAX), "beta0": (VARIANCE_MIN, VARIANCE_MAX)}
        for name, (low, high) in bounds.items():
            object.__setattr__(self, name, check_in_range(name, getattr(self, name), low, high))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "mu0": self.mu0, "kappa0": self.kappa0,
                "alpha0": self.alpha0, "beta0": self.beta0}

    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        shape = (*batch_shape, n_arms)
        return Stats({"n": np.zeros(shape), "sum_r": np.zeros(shape), "sum_r2": np.zeros(shape)},
                     len(batch_shape))

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        w = np.ones_like(rewards) if weights is None else weights
        _scatter(stats["n"], batch_index, arms, w)
        _scatter(stats["sum_r"], batch_index, arms, w * rewards)
        _scatter(stats["sum_r2"], batch_index, arms, w * rewards * rewards)

    def observe_one(self, stats: Stats, posterior: NIGPosterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> NIGPosterior:
        # accumulate's one observation and the arm's posterior, in place in Python floats: the
        # same IEEE operations as the array expressions (every other arm is unchanged); the
        # posterior is one :meth:`posterior` made (four arrays of its own, or rows of a metric
        # set's packed array), so ``mu`` stands for all four
        n, s1, s2 = stats["n"], stats["sum_r"], stats["sum_r2"]
        mu = posterior.mu
        if n.ndim != 1 or mu.ndim != 1 or mu.shape != n.shape or not mu.flags.writeable:
            return super().observe_one(stats, posterior, arm, reward, context)
        n[arm] += 1.0
        s1[arm] += reward
        s2[arm] += reward * reward
        na, k0 = float(n[arm]), self.kappa0
        kappa = k0 + na
        m = (k0 * self.mu0 + float(s1[arm])) / kappa
        ss = float(s2[arm]) + k0 * self.mu0**2 - kappa * m * m
        mu[arm] = m
        posterior.kappa[arm] = kappa
        posterior.alpha[arm] = self.alpha0 + na / 2.0
        posterior.beta[arm] = self.beta0 + 0.5 * (ss if ss > 0.0 or ss != ss else 0.0)
        return posterior

    def counts(self, stats: Stats) -> np.ndarray:
        return stats["n"].copy()

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return stats["sum_r"].copy()

    def posterior(self, stats: Stats) -> NIGPosterior:
        n, s1, s2 = stats["n"], stats["sum_r"], stats["sum_r2"]
        kappa = self.kappa0 + n
        mu = (self.kappa0 * self.mu0 + s1) / kappa
        alpha = self.alpha0 + n / 2.0
        # sum of squares about the posterior mean plus the prior's share; never below beta0 in
        # exact arithmetic, so clip rounding error there.
        ss = s2 + self.kappa0 * self.mu0**2 - kappa * mu * mu
        beta = self.beta0 + 0.5 * np.maximum(ss, 0.0)
        return NIGPosterior(mu, kappa, alpha, beta)

    def mean(self, posterior: NIGPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        return posterior.mu.copy()

    def std(self, posterior: NIGPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        nu = 2.0 * posterior.alpha
        # Student-t variance is scale^2 * nu / (nu - 2); infinite for nu <= 2.
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(nu > 2.0, posterior.scale**2 * nu / (nu - 2.0), np.inf)
        return np.sqrt(var)

    def sample(self, posterior: NIGPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        shape = posterior.mu.shape if size is None else (size, *posterior.mu.shape)
        alpha = posterior.alpha
        # sigma^2 ~ IG(alpha, beta), mu | sigma^2 ~ N(mu_n, sigma^2 / kappa)
        sigma2 = posterior.beta / rng.standard_gamma(
            alpha if alpha.shape == shape else np.broadcast_to(alpha, shape))
        return posterior.mu + np.sqrt(sigma2 / posterior.kappa) * rng.standard_normal(shape)

    def draw_log_density(self, posterior: NIGPosterior, draws: np.ndarray,
                         memo: dict[str, np.ndarray] | None = None) -> np.ndarray:
        # the mean's marginal: Student-t, 2 alpha degrees of freedom, location mu, scale
        nu = 2.0 * posterior.alpha
        scale = posterior.scale
        log_norm = np.array([math.lgamma((v + 1.0) / 2.0) - math.lgamma(v / 2.0)
                             - 0.5 * math.log(v * math.pi) for v in nu.tolist()]) - np.log(scale)
        z = (draws - posterior.mu) / scale
        return log_norm - (nu + 1.0) / 2.0 * np.log1p(z * z / nu)

    def interval(self, posterior: NIGPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        # the lower tail's quantile, negated: (1 - level) / 2 is exact where 0.5 + level / 2
        # rounds to 1 (and an infinite quantile) for levels within 1e-16 of 1
        t = -stdtrit(2.0 * posterior.alpha, (1.0 - level) / 2.0)
        half = t * posterior.scale
        return posterior.mu - half, posterior.mu + half
