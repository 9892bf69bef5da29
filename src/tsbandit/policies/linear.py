"""Bayesian linear regression per arm: the contextual Thompson-sampling model, done right.

Statistics per arm (additive): ``A = sum w x x^T`` ``(d, d)``, ``b = sum w r x`` ``(d,)``,
``n = sum w``, ``sum_r``, ``sum_r2``. With a zero-mean Gaussian prior of precision ``Lambda0``:

* known noise variance ``s2``: ``w ~ N(m, P^{-1})`` with ``P = Lambda0 + A / s2``,
  ``m = P^{-1} b / s2``;
* unknown noise (``unknown_noise=True``, Normal-Inverse-Gamma): ``sigma^2 ~ IG(a_n, b_n)``,
  ``w | sigma^2 ~ N(m, sigma^2 P^{-1})`` with ``P = Lambda0 + A``, ``m = P^{-1} b``,
  ``a_n = a0 + n/2``, ``b_n = b0 + (sum_r2 - b^T m)/2``. The learned noise scale makes the
  exploration match the data instead of a guessed ``s2``.

The posterior mean is the ridge solution. Sampling goes through the square-root covariance
``S = L^{-T}`` (``P = L L^T``) and O(d^2) Potter updates between exact refreshes, never ``inv``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from operator import add, mul
from typing import Any

import numpy as np

from .._scipy import ndtri, stdtrit
from ..errors import ConfigurationError, InvalidContextError
from . import _jit, _linear_kernels
from ._factor import potter_update, potter_update_many, sqrt_covariance
from .base import (
    PRIOR_MAX,
    PRIOR_MIN,
    SHAPE_MIN,
    VARIANCE_MAX,
    VARIANCE_MIN,
    RewardModel,
    check_in_range,
    check_n_features,
)
from .beta import _scatter
from .stats import Stats
from .weights import GaussianWeights

__all__ = ["LinearGaussian", "LinearPosterior"]


@dataclass
class LinearPosterior:
    """Posterior of per-arm weights.

    ``mean`` ``(*batch, K, d)``; ``sqrt_cov`` ``(*batch, K, d, d)`` with
    ``Cov(w) = scale * S S^T`` where ``scale`` is 1 (known noise) or ``sigma^2`` (unknown
    noise, ``sigma^2 ~ IG(noise_a, noise_b)``, both ``(*batch, K)``).
    """

    mean: np.ndarray
    sqrt_cov: np.ndarray
    noise_a: np.ndarray | None = None
    noise_b: np.ndarray | None = None
    online_updates: int = field(default=0)
    #: ``(context bytes, S^T x for every arm)`` of the last single-context draw, so the update
    #: that follows a decision reuses the projection (cleared by every in-place update; a copy
    #: starts without it)
    projection: tuple[bytes, np.ndarray] | None = field(default=None, init=False, repr=False,
                                                        compare=False)
    #: ``(mean, sqrt_cov, S^T view, phi buffer, draw buffer)`` of the compiled path, kept once
    #: ``mean`` and ``sqrt_cov`` passed the kernel's layout checks (a copy starts without it)
    scratch: tuple[np.ndarray, ...] | None = field(default=None, init=False, repr=False,
                                                   compare=False)

    def scaled(self, scale: float) -> LinearPosterior:
        """The same posterior with the square-root covariance times ``scale`` (a copy)."""
        return dataclasses.replace(self, sqrt_cov=self.sqrt_cov * scale)

    def noise(self) -> tuple[np.ndarray, np.ndarray]:
        """``(noise_a, noise_b)`` of the unknown-noise model."""
        if self.noise_a is None or self.noise_b is None:
            raise ConfigurationError("this posterior has a known noise variance")
        return self.noise_a, self.noise_b


def _prior_diag(value: Any, d: int, name: str) -> np.ndarray:
    """A prior precision as its ``(d,)`` diagonal, every entry in ``[PRIOR_MIN, PRIOR_MAX]``
    (``d`` must have been checked: this allocates)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number or a list of numbers"
                                 ) from None
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.shape != (d,):
        raise ConfigurationError(f"{name} has shape {arr.shape}, expected a scalar or ({d},)")
    if not np.all((arr >= PRIOR_MIN) & (arr <= PRIOR_MAX)):
        raise ConfigurationError(f"{name} == {value!r}, every entry must be finite and between "
                                 f"{PRIOR_MIN:g} and {PRIOR_MAX:g}")
    return arr


def _add_one(stats: Stats, a: int, r: float, x: np.ndarray) -> None:
    """One observation's statistics, added in place (the online hot path: direct additions)."""
    stats["n"][a] += 1.0
    stats["sum_r"][a] += r
    stats["sum_r2"][a] += r * r
    stats["b"][a] += r * x
    A = stats["A"][a]
    A += x[:, None] * x


def _add_many(stats: Stats, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray,
              batch_index: np.ndarray | None, w: np.ndarray) -> None:
    """Weighted observations' statistics, added in place (repeated cells summed)."""
    _scatter(stats["n"], batch_index, arms, w)
    _scatter(stats["sum_r"], batch_index, arms, w * rewards)
    _scatter(stats["sum_r2"], batch_index, arms, w * rewards * rewards)
    _scatter(stats["b"], batch_index, arms, (w * rewards)[:, None] * contexts)
    A = stats["A"]
    if arms.shape[0] == 1 and batch_index is None:
        x = contexts[0]
        A[arms[0]] += w[0] * np.outer(x, x)
    elif batch_index is None:
        # one matrix product per arm instead of n outer products
        for a in np.unique(arms):
            sel = arms == a
            xa = contexts[sel]
            A[a] += (xa * w[sel, None]).T @ xa
    else:
        _scatter(A, batch_index, arms,
                 w[:, None, None] * contexts[:, :, None] * contexts[:, None, :])


@dataclass(frozen=True)
class LinearGaussian(GaussianWeights, RewardModel):
    """Bayesian linear regression per arm (Gaussian prior on the weights).

    Parameters
    ----------
    n_features
        Context dimension ``d``, at most :data:`~.base.MAX_FEATURES` (1024; checked before
        anything is allocated).
    prior_precision
        Precision of the zero-mean Gaussian weight prior: a scalar (isotropic) or ``(d,)``
        diagonal, every entry in ``[1e-6, 1e6]``. ``1 / prior_variance`` in the tutorial's terms.
    noise_variance
        Reward noise variance ``s2`` (known-noise model), or the prior guess of it when
        ``unknown_noise`` is set (it then sets ``noise_b0 = noise_a0 * noise_variance``
        unless ``noise_b0`` is given); in ``[1e-12, 1e12]``.
    unknown_noise
        Learn the noise variance with a conjugate inverse-gamma prior (Normal-Inverse-Gamma).
    noise_a0, noise_b0
        Inverse-gamma prior of the noise variance (unknown-noise model only): ``noise_a0`` in
        ``[0.5, 1e6]`` (Student-t predictive with at least one degree of freedom), ``noise_b0``
        in ``[1e-12, 1e12]``. The bounds keep every posterior summary finite (:mod:`~.base`).
    refresh_every
        Exact refactorization from the statistics after this many O(d^2) online updates
        (bounds floating-point drift).

    Examples
    --------
    >>> import numpy as np
    >>> m = LinearGaussian(n_features=2, prior_precision=1e-6, noise_variance=1.0)
    >>> s = m.init_stats(1)
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> m.accumulate(s, np.zeros(3, dtype=int), X @ np.array([2.0, -1.0]), X)
    >>> m.posterior(s).mean.round(3).tolist()
    [[2.0, -1.0]]
    """

    n_features: int = 1
    prior_precision: Any = 1.0
    noise_variance: float = 0.1
    unknown_noise: bool = False
    noise_a0: float = 2.0
    noise_b0: float | None = None
    refresh_every: int = 1000

    kind = "linear"
    contextual = True

    def __post_init__(self) -> None:
        d = check_n_features(self.n_features)  # before _prior_diag allocates (d,)
        object.__setattr__(self, "n_features", d)
        object.__setattr__(self, "_lam", _prior_diag(self.prior_precision, d, "prior_precision"))
        object.__setattr__(self, "noise_variance", check_in_range(
            "noise_variance", self.noise_variance, VARIANCE_MIN, VARIANCE_MAX))
        object.__setattr__(self, "noise_a0",
                           check_in_range("noise_a0", self.noise_a0, SHAPE_MIN, PRIOR_MAX))
        if self.noise_b0 is not None:
            object.__setattr__(self, "noise_b0", check_in_range(
                "noise_b0", self.noise_b0, VARIANCE_MIN, VARIANCE_MAX))
        if int(self.refresh_every) < 1:
            raise ConfigurationError(f"refresh_every == {self.refresh_every!r}, must be >= 1")

    # ----- configuration ------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        pp = np.asarray(self.prior_precision, dtype=float)
        return {"kind": self.kind, "n_features": self.n_features,
                "prior_precision": pp.tolist(), "noise_variance": self.noise_variance,
                "unknown_noise": bool(self.unknown_noise), "noise_a0": self.noise_a0,
                "noise_b0": self.noise_b0, "refresh_every": int(self.refresh_every)}

    @property
    def prior_diag(self) -> np.ndarray:
        """Diagonal of the prior precision, ``(d,)``."""
        return self._lam  # type: ignore[attr-defined]

    @property
    def effective_noise_b0(self) -> float:
        """The noise prior's scale in effect: ``noise_b0``, else ``noise_a0 * noise_variance``."""
        return self.noise_b0 if self.noise_b0 is not None else self.noise_a0 * self.noise_variance

    def noise_params(self, n: Any, fit: Any, sum_r2: Any) -> tuple[Any, Any]:
        """The noise variance's inverse-gamma posterior ``(a_n, b_n)`` from the counts, the fit
        ``b . m`` and ``sum_r2`` (arrays or scalars, computed by the caller's own products)."""
        return (self.noise_a0 + 0.5 * n,
                self.effective_noise_b0 + 0.5 * np.maximum(sum_r2 - fit, 0.0))

    def lanes(self, n_lanes: int, n_arms: int) -> Any:
        """The batched posterior state of ``n_lanes`` independent lanes
        (:class:`~.gaussian_lanes.LinearLanes`), or ``None`` for a subclass (whose math may
        differ)."""
        if type(self) is not LinearGaussian:
            return None
        from .gaussian_lanes import LinearLanes

        return LinearLanes(self, n_lanes, n_arms)

    # ----- statistics ---------------------------------------------------------------------
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        d = self.n_features
        s = (*batch_shape, n_arms)
        return Stats({"n": np.zeros(s), "sum_r": np.zeros(s), "sum_r2": np.zeros(s),
                      "b": np.zeros((*s, d)), "A": np.zeros((*s, d, d))}, len(batch_shape))

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        if contexts is None:
            raise InvalidContextError("LinearGaussian needs contexts to learn from")
        if weights is None and batch_index is None and arms.shape[0] == 1:
            _add_one(stats, int(arms[0]), float(rewards[0]), contexts[0])
            return
        _add_many(stats, arms, rewards, contexts, batch_index,
                  np.ones_like(rewards) if weights is None else weights)

    def observe_one(self, stats: Stats, posterior: LinearPosterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> LinearPosterior:
        if context is None:
            raise InvalidContextError("LinearGaussian needs contexts to learn from")
        jit = _jit.kernels()
        if (jit is not None and jit.linear_observe is not None
                and type(self).update_posterior is LinearGaussian.update_posterior):
            done = _linear_kernels.observe_one(jit, self, stats, posterior, arm, reward,
                                               context)
            if done is not None:
                return done
        # accumulate's one-observation path, then the O(d^2) posterior update
        _add_one(stats, arm, reward, context)
        return self.update_posterior(posterior, stats, arm, reward, context)

    def counts(self, stats: Stats) -> np.ndarray:
        return stats["n"].copy()

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return stats["sum_r"].copy()

    # ----- posterior ----------------------------------------------------------------------
    def _precision(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        A, b = stats["A"], stats["b"]
        scale = 1.0 if self.unknown_noise else 1.0 / self.noise_variance
        P = A * scale
        idx = np.arange(self.n_features)
        P[..., idx, idx] += self.prior_diag
        return P, b * scale

    def posterior(self, stats: Stats) -> LinearPosterior:
        P, rhs = self._precision(stats)
        S = sqrt_covariance(P)
        mean = (S @ (np.swapaxes(S, -1, -2) @ rhs[..., None]))[..., 0]
        if not self.unknown_noise:
            return LinearPosterior(mean, S)
        a, bn = self.noise_params(stats["n"], np.einsum("...i,...i->...", stats["b"], mean),
                                  stats["sum_r2"])
        return LinearPosterior(mean, S, a, bn)

    def update_posterior(self, posterior: LinearPosterior, stats: Stats, arm: int,
                         reward: float, context: np.ndarray | None = None) -> LinearPosterior:
        if (context is None or posterior.mean.ndim != 2
                or posterior.online_updates + 1 >= self.refresh_every):
            return self.posterior(stats)
        x = context if context.ndim == 1 else np.asarray(context, dtype=np.float64).reshape(-1)
        noise = 1.0 if self.unknown_noise else self.noise_variance
        memo, posterior.projection = posterior.projection, None
        # the decision for this context already computed S^T x for every arm; row ``arm`` of
        # that stacked product is bit-for-bit ``x @ S[arm]``
        phi = memo[1][arm] if memo is not None and memo[0] == x.tobytes() else None
        potter_update(posterior.sqrt_cov[arm], posterior.mean[arm], x, float(reward), noise,
                      phi)
        if self.unknown_noise:
            assert posterior.noise_a is not None and posterior.noise_b is not None
            posterior.noise_a[arm], posterior.noise_b[arm] = self.noise_params(
                stats["n"][arm], float(stats["b"][arm] @ posterior.mean[arm]),
                stats["sum_r2"][arm])
        posterior.online_updates += 1
        return posterior

    def update_posterior_cells(self, posterior: LinearPosterior, stats: Stats,
                               batch_index: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
                               contexts: np.ndarray | None = None) -> LinearPosterior:
        if (contexts is None or posterior.mean.ndim != 3
                or posterior.online_updates + 1 >= self.refresh_every):
            return self.posterior(stats)
        cell = (batch_index, arms)
        noise = 1.0 if self.unknown_noise else self.noise_variance
        posterior.projection = None
        new_s, new_m = potter_update_many(posterior.sqrt_cov[cell], posterior.mean[cell],
                                          contexts, rewards, noise)
        posterior.sqrt_cov[cell] = new_s
        posterior.mean[cell] = new_m
        if self.unknown_noise:
            assert posterior.noise_a is not None and posterior.noise_b is not None
            posterior.noise_a[cell], posterior.noise_b[cell] = self.noise_params(
                stats["n"][cell], np.einsum("ni,ni->n", stats["b"][cell], new_m),
                stats["sum_r2"][cell])
        posterior.online_updates += 1
        return posterior

    def mean(self, posterior: LinearPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        return self._predictive(posterior, contexts)[0]

    def std(self, posterior: LinearPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        _, var = self._predictive(posterior, contexts)
        if self.unknown_noise:
            a, b = posterior.noise()
            with np.errstate(divide="ignore"):
                var = var * np.where(a > 1.0, b / np.maximum(a - 1.0, 1e-300), np.inf)
        return np.sqrt(var)

    def sample(self, posterior: LinearPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        mu, var = self._predictive(posterior, contexts)
        shape = mu.shape if size is None else (size, *mu.shape)
        z = rng.standard_normal(shape)
        if self.unknown_noise:
            # x^T w | sigma^2 ~ N(x^T m, sigma^2 x^T S S^T x), sigma^2 ~ IG(a, b) per arm
            na, nb = posterior.noise()
            sig2 = np.broadcast_to(nb, shape) / rng.standard_gamma(np.broadcast_to(na, shape))
            var = var * sig2
        return mu + np.sqrt(var) * z

    def sample_one(self, posterior: LinearPosterior, rng: np.random.Generator,
                   context: np.ndarray | None = None) -> list[float] | None:
        if context is None or context.ndim != 1 or posterior.mean.ndim != 2:
            return None
        # exactly ``sample``'s operations on one context (project's one-context branch, the
        # same draws in the same order); the last elementwise steps run on Python floats,
        # which round like numpy's
        phi = context @ posterior.sqrt_cov
        mu = np.dot(posterior.mean, context).tolist()  # == mean @ context, bit for bit
        var = np.add.reduce(phi * phi, axis=-1)          # == (phi * phi).sum(axis=-1)
        z = rng.standard_normal(len(mu)).tolist()
        if self.unknown_noise:
            na, nb = posterior.noise()
            var = var * (nb / rng.standard_gamma(na))
        posterior.projection = (context.tobytes(), phi)
        return list(map(add, mu, map(mul, map(math.sqrt, var.tolist()), z)))  # mu + sd z

    def sample_argmax_one(self, posterior: LinearPosterior, rng: np.random.Generator,
                          context: np.ndarray | None = None) -> int | list[float] | None:
        jit = _jit.kernels()
        if (jit is not None and jit.linear_argmax is not None and context is not None
                and type(self).sample_one is LinearGaussian.sample_one):  # not a subclass's
            done = _linear_kernels.argmax_one(jit, self, posterior, rng, context)
            if done is not None:
                return done
        return self.sample_one(posterior, rng, context)

    def noise_posterior(self, posterior: LinearPosterior
                        ) -> tuple[np.ndarray, np.ndarray] | None:
        return posterior.noise() if self.unknown_noise else None

    def interval(self, posterior: LinearPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mu, var = self._predictive(posterior, contexts)
        # the lower tail's quantile, negated: (1 - level) / 2 is exact where 0.5 + level / 2
        # rounds to 1 (and an infinite quantile) for levels within 1e-16 of 1
        p = (1.0 - level) / 2.0
        if self.unknown_noise:
            a, b = posterior.noise()
            half = -stdtrit(2.0 * a, p) * np.sqrt(var * b / a)
        else:
            half = -ndtri(p) * np.sqrt(var)
        return mu - half, mu + half

