"""Logistic regression per arm with a Laplace-approximate Gaussian posterior.

Binary rewards with context (Chapelle & Li, 2011, "An empirical evaluation of Thompson
sampling", Algorithm 3), with a full rather than diagonal precision. The state of an arm is the
posterior mode ``m`` and the data part ``H`` of the precision (the prior ``Lambda0`` stays
configuration): the posterior is approximated by ``N(m, (Lambda0 + H)^{-1})``.

A batch of observations refits each arm by Newton's method on

    1/2 (w - m)^T P (w - m) + sum_i c_i [log(1 + exp(x_i^T w)) - r_i x_i^T w],

the previous posterior acting as the prior, then adds the Hessian of the data at the new mode
to ``H``. One observation per arm is a one-dimensional problem along ``P^{-1} x`` and is solved
for all arms (and all simulated trials) at once (:func:`newton_1d`). These statistics are **not
additive**: the order of batches matters slightly (it is an approximation), so stores keep them
under a lock.

A batch of posteriors (one per simulated trial) follows one observation per cell with an O(d^2)
rank-one Potter update of its square-root covariance (:func:`laplace_factor_rows`; the precision
gains ``w x x^T``, ``w = p (1 - p)`` at the new mode) and is refactored from the statistics every
:data:`REFRESH_EVERY` updates, as the linear model does: the same posterior up to rounding, at
O(d^2) instead of O(d^3) per round. :meth:`LogisticLaplace.lanes` keeps it in the lab's batched
layout (:class:`~.logistic_lanes.LogisticLanes`); both use these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._scipy import expit, ndtri
from ..errors import ConfigurationError, InvalidContextError
from ._factor import potter_rows, solve_spd, sqrt_covariance
from .base import RewardModel, check_n_features, check_positive
from .beta import BetaBernoulli
from .linear import LinearPosterior, _prior_diag
from .weights import GaussianWeights

__all__ = ["REFRESH_EVERY", "LogisticLaplace", "laplace_factor_rows", "newton_1d"]

#: iterations of the one-dimensional Newton solve, and how many of them run on every cell (the
#: rest run only on the cells whose last step was not exactly 0: a cell at its fixed point
#: recomputes the same step of 0 forever, so this is the same result, bit for bit)
_NEWTON_1D_STEPS = 12
_NEWTON_FULL = 5
#: online (Potter) updates of a batch of posteriors between exact refactorizations
REFRESH_EVERY = 1000


def _newton_steps(expit_: Any, mu: np.ndarray, s: np.ndarray, r: np.ndarray,
                  c: np.ndarray | None, t: np.ndarray, scratch: np.ndarray,
                  iterations: int) -> None:
    """``iterations`` Newton steps on ``t`` in place: ``t -= (t - c (r - p)) / (1 + c s p
    (1 - p))`` with ``p = expit(mu + t s)`` (``c`` ``None``: weight 1; ``expit_`` the ufunc);
    ``scratch`` ``(4, n)``, whose row 2 holds the last step."""
    a, p, g, h = scratch
    for _ in range(iterations):
        expit_(np.add(mu, np.multiply(t, s, out=a), out=a), out=p)
        np.subtract(r, p, out=g)
        if c is None:
            np.multiply(s, p, out=h)
        else:
            g *= c
            np.multiply(c, s, out=h)
            h *= p
        np.subtract(t, g, out=g)
        h *= np.subtract(1.0, p, out=a)
        h += 1.0
        g /= h
        t -= g


def newton_1d(mu: np.ndarray, s: np.ndarray, r: np.ndarray, c: np.ndarray | None = None,
              scratch: np.ndarray | None = None) -> np.ndarray:
    """The step ``t`` of each cell's new mode ``m + t P^{-1} x`` after one observation ``r``
    (weight ``c``, default 1): the root of ``t = c (r - expit(mu + t s))`` with
    ``mu = x . m`` and ``s = x^T P^{-1} x``, by 12 Newton steps from 0 (after the first 5,
    only on the cells still moving). All inputs ``(n,)``; ``scratch`` ``(4, n)`` optional.

    >>> import numpy as np
    >>> t = newton_1d(np.zeros(1), np.ones(1), np.ones(1))
    >>> bool(abs(t[0] - (1.0 - 1.0 / (1.0 + np.exp(-t[0])))) < 1e-12)
    True
    """
    from scipy.special import expit as expit_  # the ufunc (``out=``); imported by now

    n = mu.shape[0]
    t = np.zeros(n)
    sc = np.empty((4, n)) if scratch is None else scratch
    _newton_steps(expit_, mu, s, r, c, t, sc, _NEWTON_FULL)
    live = np.flatnonzero(sc[2])
    if live.size:
        tl = t[live]
        _newton_steps(expit_, mu[live], s[live], r[live], None if c is None else c[live], tl,
                      np.empty((4, live.size)), _NEWTON_1D_STEPS - _NEWTON_FULL)
        t[live] = tl
    return t


def laplace_factor_rows(blk: np.ndarray, phi: np.ndarray, s_phi: np.ndarray, s: np.ndarray,
                        w: np.ndarray, outer: np.ndarray) -> None:
    """The square-root factors of gathered cells after their precision gained ``w x x^T``
    (Potter's step with noise ``1 / w``), in place on ``blk`` ``(n, d + 1, d)`` =
    ``[S^T; m^T]`` (the mean row is untouched). ``phi = S^T x``, ``s_phi = S phi``
    (overwritten), ``s = |phi|^2``; ``outer`` as in :func:`~._factor.potter_rows`."""
    noise = 1.0 / np.maximum(w, 1e-12)
    potter_rows(blk, phi, s_phi, s + noise, noise, outer)


@dataclass(frozen=True)
class LogisticLaplace(GaussianWeights, RewardModel):
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
        t = newton_1d(mu, s, r, c)
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
        """The cells' new modes from ``stats``, their factors by one Potter step each
        (:func:`laplace_factor_rows`, O(d^2)); every :data:`REFRESH_EVERY` updates, an exact
        refactorization of every cell from the statistics."""
        if (contexts is None or posterior.mean.ndim != 3
                or posterior.online_updates + 1 >= REFRESH_EVERY):
            return self.posterior(stats)
        cell = (batch_index, arms)
        posterior.projection = None
        d = self.n_features
        m = stats["m"][cell]
        blk = np.empty((m.shape[0], d + 1, d))
        blk[:, :d] = np.swapaxes(posterior.sqrt_cov[cell], -1, -2)
        blk[:, d] = m
        x = contexts
        phi = np.einsum("nij,nj->ni", blk[:, :d], x)                 # S^T x
        s_phi = np.einsum("nji,nj->ni", blk[:, :d], phi)             # S phi = P^{-1} x
        p = expit(np.einsum("ni,ni->n", x, m))
        laplace_factor_rows(blk, phi, s_phi, np.einsum("ni,ni->n", phi, phi), p * (1.0 - p),
                            np.zeros_like(blk))
        posterior.sqrt_cov[cell] = np.swapaxes(blk[:, :d], -1, -2)
        posterior.mean[cell] = m
        posterior.online_updates += 1
        return posterior

    def lanes(self, n_lanes: int, n_arms: int, refresh_every: int = REFRESH_EVERY) -> Any:
        """The batched posterior state of ``n_lanes`` independent lanes
        (:class:`~.logistic_lanes.LogisticLanes`), or ``None`` for a subclass."""
        if type(self) is not LogisticLaplace:
            return None
        from .logistic_lanes import LogisticLanes

        return LogisticLanes(self, n_lanes, n_arms, refresh_every)

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

    def interval(self, posterior: LinearPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mu, var = self._predictive(posterior, contexts)
        half = ndtri(0.5 + level / 2.0) * np.sqrt(var)
        # the sigmoid is monotone, so quantiles map through it exactly
        return expit(mu - half), expit(mu + half)
