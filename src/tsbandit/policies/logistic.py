"""Logistic regression per arm with a Laplace-approximate Gaussian posterior.

Binary rewards with context (Chapelle & Li, 2011, "An empirical evaluation of Thompson
sampling", Algorithm 3), with a full rather than diagonal precision. The state of an arm is the
posterior mode ``m`` and the data part ``H`` of the precision (the prior ``Lambda0`` stays
configuration): the posterior is approximated by ``N(m, (Lambda0 + H)^{-1})``.

A batch of observations refits each arm by Newton's method on

    1/2 (w - m)^T P (w - m) + sum_i c_i [log(1 + exp(x_i^T w)) - r_i x_i^T w],

the previous posterior acting as the prior, then adds the Hessian of the data at the new mode
to ``H``. One observation per arm is a one-dimensional problem along ``P^{-1} x`` and is solved
for all arms (and all simulated trials) at once. These statistics are **not additive**: the
order of batches matters slightly (it is an approximation), so stores keep them under a lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._scipy import expit, ndtri
from ..errors import ConfigurationError, InvalidContextError
from ._factor import project, solve_spd, sqrt_covariance
from .base import RewardModel, check_n_features, check_positive
from .beta import BetaBernoulli
from .linear import LinearPosterior, _prior_diag

__all__ = ["LogisticLaplace"]

_NEWTON_1D_STEPS = 12


@dataclass(frozen=True)
class LogisticLaplace(RewardModel):
    """Bayesian logistic regression per arm, Laplace approximation, refit on batches.

    Parameters
    ----------
    n_features
        Context dimension ``d`` (include a constant feature for an intercept), at most
        :data:`~.base.MAX_FEATURES` (1024).
    prior_precision
        Precision of the zero-mean Gaussian weight prior (scalar or ``(d,)``), every entry in
        ``[1e-6, 1e6]``.
    max_newton_steps, tol
        Newton iterations per batch refit (1 to 1000) and the step-size tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> m = LogisticLaplace(n_features=2)
    >>> s = m.init_stats(1)
    >>> X = np.array([[1.0, 1.0]] * 20)
    >>> m.accumulate(s, np.zeros(20, dtype=int), np.ones(20), X)
    >>> bool(m.mean(m.posterior(s), X[0])[0] > 0.8)
    True
    """

    n_features: int = 1
    prior_precision: Any = 1.0
    max_newton_steps: int = 25
    tol: float = 1e-8

    kind = "logistic"
    contextual = True
    additive = False

    def __post_init__(self) -> None:
        d = check_n_features(self.n_features)  # before _prior_diag allocates (d,)
        object.__setattr__(self, "n_features", d)
        object.__setattr__(self, "_lam", _prior_diag(self.prior_precision, d, "prior_precision"))
        if not 1 <= int(self.max_newton_steps) <= 1000:  # bounds the time of one refit
            raise ConfigurationError(
                f"max_newton_steps == {self.max_newton_steps!r}, must be between 1 and 1000")
        check_positive("tol", self.tol)

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_features": self.n_features,
                "prior_precision": np.asarray(self.prior_precision, dtype=float).tolist(),
                "max_newton_steps": int(self.max_newton_steps), "tol": float(self.tol)}

    @property
    def prior_diag(self) -> np.ndarray:
        """Diagonal of the prior precision, ``(d,)``."""
        return self._lam  # type: ignore[attr-defined]

    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Any:
        from .stats import Stats

        d = self.n_features
        s = (*batch_shape, n_arms)
        return Stats({"n": np.zeros(s), "sum_r": np.zeros(s), "m": np.zeros((*s, d)),
                      "H": np.zeros((*s, d, d))}, len(batch_shape))

    def check_reward(self, reward: Any) -> float:
        return BetaBernoulli.check_reward(self, reward)  # type: ignore[arg-type]

    def check_rewards(self, rewards: Any) -> np.ndarray:
        return BetaBernoulli.check_rewards(self, rewards)  # type: ignore[arg-type]

    def counts(self, stats: Any) -> np.ndarray:
        return np.asarray(stats["n"]).copy()

    def reward_sums(self, stats: Any) -> np.ndarray:
        return np.asarray(stats["sum_r"]).copy()

    def _full_precision(self, H: np.ndarray) -> np.ndarray:
        P = H.copy()
        idx = np.arange(self.n_features)
        P[..., idx, idx] += self.prior_diag
        return P

    # ----- learning -----------------------------------------------------------------------
    def accumulate(self, stats: Any, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        if contexts is None:
            raise InvalidContextError("LogisticLaplace needs contexts to learn from")
        w = np.ones_like(rewards) if weights is None else weights
        if batch_index is None:
            key = arms
            index: tuple[np.ndarray, ...] = (arms,)
        else:
            key = batch_index * stats.n_arms + arms
            index = (batch_index, arms)
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        if counts.max() == 1:
            self._single_step(stats, index, rewards, contexts, w)
            return
        for g in range(uniq.shape[0]):
            sel = inverse == g
            first = int(np.flatnonzero(sel)[0])
            cell = tuple(ix[first] for ix in index)
            self._refit(stats, cell, rewards[sel], contexts[sel], w[sel])

    def _single_step(self, stats: Any, index: tuple[np.ndarray, ...], r: np.ndarray,
                     X: np.ndarray, c: np.ndarray) -> None:
        """Exact Laplace refit for cells that each receive one observation (vectorized)."""
        m = stats["m"][index]                       # (n, d)
        H = stats["H"][index]                       # (n, d, d)
        P = self._full_precision(H)
        u = solve_spd(P, X[..., None])[..., 0]  # P^{-1} x
        mu = np.einsum("nd,nd->n", X, m)
        s = np.einsum("nd,nd->n", X, u)
        # the mode is m + t u with t = c (r - sigmoid(mu + t s)); Newton on t
        t = np.zeros_like(mu)
        for _ in range(_NEWTON_1D_STEPS):
            p = expit(mu + t * s)
            g = t - c * (r - p)
            t -= g / (1.0 + c * s * p * (1.0 - p))
        p = expit(mu + t * s)
        stats["m"][index] = m + t[:, None] * u
        stats["H"][index] = H + (c * p * (1.0 - p))[:, None, None] * X[:, :, None] * X[:, None, :]
        np.add.at(stats["n"], index, c)
        np.add.at(stats["sum_r"], index, c * r)

    def _refit(self, stats: Any, cell: tuple[Any, ...], r: np.ndarray, X: np.ndarray,
               c: np.ndarray) -> None:
        """Newton refit of one arm (one batch cell) on several observations."""
        m0 = stats["m"][cell].copy()
        P0 = self._full_precision(stats["H"][cell])
        w = m0.copy()
        for _ in range(int(self.max_newton_steps)):
            p = expit(X @ w)
            grad = P0 @ (w - m0) + X.T @ (c * (p - r))
            hess = P0 + (X * (c * p * (1.0 - p))[:, None]).T @ X
            step = solve_spd(hess, grad[:, None])[:, 0]
            w -= step
            if float(np.max(np.abs(step))) < self.tol:
                break
        p = expit(X @ w)
        stats["m"][cell] = w
        stats["H"][cell] = stats["H"][cell] + (X * (c * p * (1.0 - p))[:, None]).T @ X
        stats["n"][cell] += c.sum()
        stats["sum_r"][cell] += (c * r).sum()

    def decay(self, stats: Any, gamma: float | np.ndarray) -> Any:
        """Forget: the data precision ``H`` and the counts shrink by ``gamma``; the mode stays."""
        out = stats.copy()
        g = np.asarray(gamma, dtype=np.float64)
        for k in ("n", "sum_r", "H"):
            v = out[k]
            v *= g.reshape(g.shape + (1,) * (v.ndim - g.ndim)) if g.ndim else g
        return out

    # ----- posterior ----------------------------------------------------------------------
    def posterior(self, stats: Any) -> LinearPosterior:
        return LinearPosterior(stats["m"].copy(), sqrt_covariance(self._full_precision(stats["H"])))

    def update_posterior(self, posterior: LinearPosterior, stats: Any, arm: int, reward: float,
                         context: np.ndarray | None = None) -> LinearPosterior:
        if posterior.mean.ndim != 2:
            return self.posterior(stats)
        posterior.projection = None
        posterior.mean[arm] = stats["m"][arm]
        posterior.sqrt_cov[arm] = sqrt_covariance(self._full_precision(stats["H"][arm]))
        return posterior

    def update_posterior_cells(self, posterior: LinearPosterior, stats: Any,
                               batch_index: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
                               contexts: np.ndarray | None = None) -> LinearPosterior:
        if posterior.mean.ndim != 3:
            return self.posterior(stats)
        cell = (batch_index, arms)
        posterior.projection = None
        posterior.mean[cell] = stats["m"][cell]
        posterior.sqrt_cov[cell] = sqrt_covariance(self._full_precision(stats["H"][cell]))
        return posterior

    def _predictive(self, posterior: LinearPosterior, contexts: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        if contexts is None:
            raise InvalidContextError(
                f"LogisticLaplace needs a context of length {self.n_features} to score arms")
        return project(contexts, posterior.mean, posterior.sqrt_cov)

    def mean(self, posterior: LinearPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        """Posterior mean click probability (probit approximation of the logistic-normal)."""
        mu, var = self._predictive(posterior, contexts)
        return expit(mu / np.sqrt(1.0 + np.pi * var / 8.0))

    def std(self, posterior: LinearPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        """Delta-method standard deviation of the click probability."""
        mu, var = self._predictive(posterior, contexts)
        p = expit(mu)
        return p * (1.0 - p) * np.sqrt(var)

    def sample(self, posterior: LinearPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        mu, var = self._predictive(posterior, contexts)
        shape = mu.shape if size is None else (size, *mu.shape)
        return expit(mu + np.sqrt(var) * rng.standard_normal(shape))

    def sample_scaled(self, posterior: LinearPosterior, rng: np.random.Generator, scale: float,
                      contexts: np.ndarray | None = None, size: int | None = None
                      ) -> np.ndarray:
        """Exact draw from the Laplace posterior with its covariance times ``scale**2``."""
        return self.sample(posterior.scaled(scale), rng, contexts, size)

    def interval(self, posterior: LinearPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mu, var = self._predictive(posterior, contexts)
        half = ndtri(0.5 + level / 2.0) * np.sqrt(var)
        # the sigmoid is monotone, so quantiles map through it exactly
        return expit(mu - half), expit(mu + half)
