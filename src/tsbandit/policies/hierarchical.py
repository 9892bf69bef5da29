"""Linear Thompson sampling with weights shared across arms: ``w_a = w0 + delta_a``.

Every arm's weights are one shared vector plus the arm's own offset, with independent zero-mean
Gaussian priors ``w0 ~ N(0, P_s^-1)`` and ``delta_a ~ N(0, P_o^-1)`` (diagonal precisions; an
offset precision larger than the shared one shrinks the arms toward each other, so what one arm
learns moves every arm's estimate). Rewards are ``r = phi(x)^T w_a + e``, ``e ~ N(0, s2)``. It is
the Bayesian linear regression on the augmented design ``z = [phi(x), e_a (x) phi(x)]``, and its
sufficient statistics are the per-arm ones of :class:`~.linear.LinearGaussian` (``A_a = sum x
x^T``, ``b_a = sum r x``, ``n``, ``sum_r``, ``sum_r2``): the augmented ``Z^T Z`` is made of the
``A_a`` blocks alone, so stores keep exactly what they keep for the per-arm model.

The joint posterior over ``(w0, delta_1..K)`` has precision ``[[P_s + sum A_a/s2, A_a/s2 ...],
[A_a/s2, P_o + A_a/s2] ...]`` (arrow-shaped). Block elimination solves it in O(K d^3), never
forming the ``(K+1) d`` system: with ``D_a = P_o + A_a/s2`` and ``beta_a = D_a^-1 b_a/s2`` (the
arm's own ridge fit),

* ``w0 ~ N(m0, C0)`` with ``C0^-1 = P_s + sum_a (A_a/s2) D_a^-1 P_o`` (the Schur complement) and
  ``m0 = C0 sum_a P_o beta_a``;
* ``w_a | w0 ~ N(beta_a + G_a w0, D_a^-1)`` independently, ``G_a = D_a^-1 P_o``: each arm is a
  ridge regression centred on the shared weights.

So ``E[w_a] = beta_a + G_a m0`` and ``Cov(w_a, w_b) = G_a C0 G_b^T + [a = b] D_a^-1``. A Thompson
draw is exact and joint over arms: ``x^T w_a = mu_a + (C0^1/2 G_a^T x) . z0 + |D_a^-1/2 x| z_a``
with one ``z0`` shared by all arms. One observation updates the posterior in O(d^2): Potter's
step on the arm's ``D_a`` factor, and on ``C0`` with the observation ``r - x^T beta_a = (G_a^T
x)^T w0 + N(0, s2 + x^T D_a^-1 x)`` (the arm's offset integrated out).

Limits: offset precision -> infinity pins every offset at 0 (one pooled linear model); shared
precision -> infinity pins ``w0`` at 0 (independent per-arm models with prior ``P_o``).

``features="quadratic"`` lets the model work on ``[x, x_i x_j (i <= j)]`` instead of ``x``: a
generic expansion (every pairwise product and square), chosen without knowing the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._scipy import ndtri
from ..errors import ConfigurationError, InvalidContextError
from ._factor import potter_update, potter_update_many, sqrt_covariance
from .base import VARIANCE_MAX, VARIANCE_MIN, RewardModel, check_in_range, check_n_features
from .linear import _add_many, _add_one, _prior_diag
from .stats import Stats

__all__ = ["FEATURE_MAPS", "HierarchicalLinear", "HierarchicalPosterior", "expand_features"]

#: names of the generic feature maps (see :func:`expand_features`)
FEATURE_MAPS = ("linear", "quadratic")


def expand_features(x: np.ndarray, features: str) -> np.ndarray:
    """Contexts ``(..., d)`` under a feature map: ``"linear"`` (as is) or ``"quadratic"``
    (``[x, x_i x_j for i <= j]``, ``d + d (d + 1) / 2`` columns).

    >>> expand_features(np.array([1.0, 2.0]), "quadratic").tolist()
    [1.0, 2.0, 1.0, 2.0, 4.0]
    """
    if features == "linear":
        return x
    i, j = np.triu_indices(x.shape[-1])
    return np.concatenate([x, x[..., i] * x[..., j]], axis=-1)


@dataclass
class HierarchicalPosterior:
    """Joint posterior of the shared weights and the offsets, factored by block elimination.

    ``shared_mean`` ``(*batch, D)`` and ``shared_sqrt_cov`` ``(*batch, D, D)``: ``w0 ~ N(m0, S0
    S0^T)``. ``own_mean`` ``(*batch, K, D)`` (``beta_a``) and ``own_sqrt_cov`` ``(*batch, K, D,
    D)`` (``S_a S_a^T = D_a^-1``): ``w_a | w0 ~ N(beta_a + D_a^-1 P_o w0, D_a^-1)``.
    ``offset_precision`` ``(D,)`` is the diagonal of ``P_o``. ``D`` is the expanded dimension.
    """

    shared_mean: np.ndarray
    shared_sqrt_cov: np.ndarray
    own_mean: np.ndarray
    own_sqrt_cov: np.ndarray
    offset_precision: np.ndarray
    online_updates: int = field(default=0)

    def gain(self) -> np.ndarray:
        """``G_a = D_a^-1 P_o`` ``(*batch, K, D, D)``."""
        S = self.own_sqrt_cov
        return (S @ np.swapaxes(S, -1, -2)) * self.offset_precision

    @property
    def mean(self) -> np.ndarray:
        """Every arm's posterior mean weights ``beta_a + G_a m0``, ``(*batch, K, D)``."""
        return self.own_mean + (self.gain() @ self.shared_mean[..., None, :, None])[..., 0]

    def weight_covariance(self) -> np.ndarray:
        """The joint covariance of all arms' weights, ``(*batch, K, D, K, D)`` (a diagnostic,
        O(K^2 D^3)): ``Cov(w_a, w_b) = G_a C0 G_b^T + [a = b] D_a^-1``."""
        G = self.gain()
        GS = G @ self.shared_sqrt_cov[..., None, :, :]                  # (*b, K, D, D)
        cross = np.einsum("...aij,...bkj->...aibk", GS, GS)
        S = self.own_sqrt_cov
        own = S @ np.swapaxes(S, -1, -2)
        K = S.shape[-3]
        for a in range(K):
            cross[..., a, :, a, :] += own[..., a, :, :]
        return cross


@dataclass(frozen=True)
class HierarchicalLinear(RewardModel):
    """Bayesian linear regression with weights shared across arms (``w_a = w0 + delta_a``).

    Parameters
    ----------
    n_features
        Context dimension ``d`` (before the feature map).
    shared_precision
        Prior precision ``P_s`` of the shared weights ``w0``: a scalar or one per expanded
        feature, in ``[1e-6, 1e6]``.
    offset_precision
        Prior precision ``P_o`` of each arm's offset ``delta_a`` (same form). Larger than
        ``shared_precision`` shrinks the arms toward the shared weights.
    noise_variance
        Known reward noise variance ``s2``, in ``[1e-12, 1e12]``.
    features
        ``"linear"`` (the context as is) or ``"quadratic"`` (:func:`expand_features`).
    refresh_every
        Exact refactorization from the statistics after this many O(D^2) online updates.

    Examples
    --------
    >>> import numpy as np
    >>> m = HierarchicalLinear(n_features=2, shared_precision=1.0, offset_precision=4.0)
    >>> s = m.init_stats(3)
    >>> X = np.array([[1.0, 0.0], [1.0, 1.0]] * 20)
    >>> m.accumulate(s, np.zeros(40, dtype=int), X @ np.array([0.5, 0.2]), X)
    >>> p = m.posterior(s)
    >>> m.mean(p, np.array([1.0, 1.0])).round(2).tolist()  # arms 1, 2 learn from arm 0
    [0.7, 0.56, 0.56]
    """

    n_features: int = 1
    shared_precision: Any = 1.0
    offset_precision: Any = 4.0
    noise_variance: float = 0.1
    features: str = "linear"
    refresh_every: int = 1000

    kind = "hierarchical-linear"
    contextual = True

    def __post_init__(self) -> None:
        d = check_n_features(self.n_features)
        object.__setattr__(self, "n_features", d)
        if self.features not in FEATURE_MAPS:
            raise ConfigurationError(
                f"features == {self.features!r}, must be one of {list(FEATURE_MAPS)}")
        D = d if self.features == "linear" else d + d * (d + 1) // 2
        check_n_features(D)
        object.__setattr__(self, "_D", D)
        object.__setattr__(self, "_ps", _prior_diag(self.shared_precision, D,
                                                    "shared_precision"))
        object.__setattr__(self, "_po", _prior_diag(self.offset_precision, D,
                                                    "offset_precision"))
        object.__setattr__(self, "noise_variance", check_in_range(
            "noise_variance", self.noise_variance, VARIANCE_MIN, VARIANCE_MAX))
        if isinstance(self.refresh_every, bool) or int(self.refresh_every) < 1:
            raise ConfigurationError(f"refresh_every == {self.refresh_every!r}, must be >= 1")

    # ----- configuration ------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_features": self.n_features,
                "shared_precision": np.asarray(self.shared_precision, float).tolist(),
                "offset_precision": np.asarray(self.offset_precision, float).tolist(),
                "noise_variance": self.noise_variance, "features": self.features,
                "refresh_every": int(self.refresh_every)}

    @property
    def model_features(self) -> int:
        """Dimension ``D`` of the expanded features (the statistics' ``A`` is ``(D, D)``)."""
        return int(self._D)  # type: ignore[attr-defined]

    def _phi(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != self.n_features:
            raise InvalidContextError(f"{type(self).__name__} needs contexts of length "
                                      f"{self.n_features}, got shape {x.shape}")
        return expand_features(x, self.features)

    # ----- statistics ---------------------------------------------------------------------
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        D = self.model_features
        s = (*batch_shape, n_arms)
        return Stats({"n": np.zeros(s), "sum_r": np.zeros(s), "sum_r2": np.zeros(s),
                      "b": np.zeros((*s, D)), "A": np.zeros((*s, D, D))}, len(batch_shape))

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        if contexts is None:
            raise InvalidContextError(f"{type(self).__name__} needs contexts to learn from")
        z = self._phi(np.asarray(contexts, dtype=np.float64))
        if weights is None and batch_index is None and arms.shape[0] == 1:
            _add_one(stats, int(arms[0]), float(rewards[0]), z[0])
            return
        _add_many(stats, arms, rewards, z, batch_index,
                  np.ones_like(rewards, dtype=np.float64) if weights is None else weights)

    def counts(self, stats: Stats) -> np.ndarray:
        return stats["n"].copy()

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return stats["sum_r"].copy()

    # ----- posterior ----------------------------------------------------------------------
    def posterior(self, stats: Stats) -> HierarchicalPosterior:
        """The exact joint posterior by block elimination, O(K D^3) per batch element."""
        s2 = self.noise_variance
        po, ps = self._po, self._ps  # type: ignore[attr-defined]
        A = stats["A"] / s2
        idx = np.arange(self.model_features)
        Dm = A.copy()
        Dm[..., idx, idx] += po
        Sa = sqrt_covariance(Dm)                                          # D_a^-1 = Sa Sa^T
        cov_a = Sa @ np.swapaxes(Sa, -1, -2)
        beta = (cov_a @ (stats["b"] / s2)[..., None])[..., 0]
        M = A @ (cov_a * po)                                             # (A_a/s2) D_a^-1 P_o
        prec0 = M.sum(axis=-3)
        prec0 = 0.5 * (prec0 + np.swapaxes(prec0, -1, -2))
        prec0[..., idx, idx] += ps
        S0 = sqrt_covariance(prec0)
        h = (beta * po).sum(axis=-2)
        m0 = (S0 @ (np.swapaxes(S0, -1, -2) @ h[..., None]))[..., 0]
        return HierarchicalPosterior(m0, S0, beta, Sa, po)

    def update_posterior(self, posterior: HierarchicalPosterior, stats: Stats, arm: int,
                         reward: float, context: np.ndarray | None = None
                         ) -> HierarchicalPosterior:
        if (context is None or posterior.own_mean.ndim != 2
                or posterior.online_updates + 1 >= self.refresh_every):
            return self.posterior(stats)
        z = self._phi(np.asarray(context, dtype=np.float64).reshape(-1))
        s2 = self.noise_variance
        Sa, beta = posterior.own_sqrt_cov[arm], posterior.own_mean[arm]
        phi = z @ Sa
        v = posterior.offset_precision * (Sa @ phi)                      # G_a^T z
        c = float(phi @ phi) + s2
        # w0 sees r - z.beta_a = v.w0 + N(0, c) (the offset integrated out), then the arm
        potter_update(posterior.shared_sqrt_cov, posterior.shared_mean, v,
                      float(reward) - float(z @ beta), c)
        potter_update(Sa, beta, z, float(reward), s2, phi)
        posterior.online_updates += 1
        return posterior

    def update_posterior_cells(self, posterior: HierarchicalPosterior, stats: Stats,
                               batch_index: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
                               contexts: np.ndarray | None = None) -> HierarchicalPosterior:
        if (contexts is None or posterior.own_mean.ndim != 3
                or posterior.online_updates + 1 >= self.refresh_every
                or np.unique(batch_index).size != batch_index.size):
            return self.posterior(stats)
        z = self._phi(np.asarray(contexts, dtype=np.float64))
        s2 = self.noise_variance
        cell = (batch_index, arms)
        Sa, beta = posterior.own_sqrt_cov[cell], posterior.own_mean[cell]
        phi = (z[:, None, :] @ Sa)[:, 0, :]
        v = posterior.offset_precision * (Sa @ phi[:, :, None])[:, :, 0]
        c = np.einsum("ni,ni->n", phi, phi) + s2
        y = rewards - np.einsum("ni,ni->n", z, beta)
        new_s0, new_m0 = potter_update_many(posterior.shared_sqrt_cov[batch_index],
                                            posterior.shared_mean[batch_index], v, y, c)
        posterior.shared_sqrt_cov[batch_index] = new_s0
        posterior.shared_mean[batch_index] = new_m0
        new_s, new_b = potter_update_many(Sa, beta, z, rewards, s2)
        posterior.own_sqrt_cov[cell] = new_s
        posterior.own_mean[cell] = new_b
        posterior.online_updates += 1
        return posterior

    # ----- summaries ----------------------------------------------------------------------
    def _project(self, posterior: HierarchicalPosterior, contexts: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per arm at ``contexts``: mean ``mu``, the shared loading ``psi = S0^T G_a^T z``
        ``(..., K, D)`` and the own variance ``|S_a^T z|^2``."""
        if contexts is None:
            raise InvalidContextError(f"{type(self).__name__} needs a context of length "
                                      f"{self.n_features} to score arms")
        z = self._phi(np.asarray(contexts, dtype=np.float64))
        zr = z[..., None, None, :]
        phi = (zr @ posterior.own_sqrt_cov)[..., 0, :]                   # (..., K, D)
        v = posterior.offset_precision * (
            phi[..., None, :] @ np.swapaxes(posterior.own_sqrt_cov, -1, -2))[..., 0, :]
        psi = (v[..., None, :] @ posterior.shared_sqrt_cov[..., None, :, :])[..., 0, :]
        mu = ((zr @ posterior.own_mean[..., None])[..., 0, 0]
              + (v[..., None, :] @ posterior.shared_mean[..., None, :, None])[..., 0, 0])
        return mu, psi, np.einsum("...i,...i->...", phi, phi)

    def mean(self, posterior: HierarchicalPosterior,
             contexts: np.ndarray | None = None) -> np.ndarray:
        return self._project(posterior, contexts)[0]

    def std(self, posterior: HierarchicalPosterior,
            contexts: np.ndarray | None = None) -> np.ndarray:
        _, psi, own = self._project(posterior, contexts)
        return np.sqrt(np.einsum("...i,...i->...", psi, psi) + own)

    def sample(self, posterior: HierarchicalPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        """One joint draw of every arm's ``x^T w_a`` (the shared part drawn once for all
        arms of a row): ``(*batch, K)`` or ``(size, *batch, K)``."""
        return self.sample_scaled(posterior, rng, 1.0, contexts, size)

    def sample_scaled(self, posterior: HierarchicalPosterior, rng: np.random.Generator,
                      scale: float, contexts: np.ndarray | None = None,
                      size: int | None = None) -> np.ndarray:
        """An exact joint draw with the weights' covariance times ``scale**2`` (tempered
        Thompson sampling); shapes as in :meth:`sample`."""
        mu, psi, own = self._project(posterior, contexts)
        shape = mu.shape if size is None else (size, *mu.shape)
        z0 = rng.standard_normal((*shape[:-1], 1, psi.shape[-1]))
        noise = np.einsum("...i,...i->...", psi, z0) + np.sqrt(own) * rng.standard_normal(shape)
        return mu + noise if scale == 1.0 else mu + scale * noise

    def sample_weights(self, posterior: HierarchicalPosterior, rng: np.random.Generator,
                       size: int | None = None) -> np.ndarray:
        """Joint posterior draws of every arm's (expanded) weights: ``(*batch, K, D)`` or
        ``(size, *batch, K, D)``."""
        m0, S0 = posterior.shared_mean, posterior.shared_sqrt_cov
        shape0 = m0.shape if size is None else (size, *m0.shape)
        w0 = m0 + (S0 @ rng.standard_normal(shape0)[..., None])[..., 0]
        Sa = posterior.own_sqrt_cov
        shape = posterior.own_mean.shape if size is None else (size, *posterior.own_mean.shape)
        eps = (Sa @ rng.standard_normal(shape)[..., None])[..., 0]
        return (posterior.own_mean + (posterior.gain() @ w0[..., None, :, None])[..., 0]
                + eps)

    def interval(self, posterior: HierarchicalPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mu = self.mean(posterior, contexts)
        half = -ndtri((1.0 - level) / 2.0) * self.std(posterior, contexts)
        return mu - half, mu + half

    def weight_interval(self, posterior: HierarchicalPosterior, level: float = 0.95
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Marginal equal-tailed credible interval of every arm's (expanded) weights,
        ``(*batch, K, D)`` each."""
        GS = posterior.gain() @ posterior.shared_sqrt_cov[..., None, :, :]
        Sa = posterior.own_sqrt_cov
        sd = np.sqrt(np.einsum("...ij,...ij->...i", GS, GS)
                     + np.einsum("...ij,...ij->...i", Sa, Sa))
        half = -ndtri((1.0 - level) / 2.0) * sd
        m = posterior.mean
        return m - half, m + half
