"""Weight-level summaries of a Gaussian weight posterior (the linear and logistic models).

Both models keep, per arm, a weight mean ``m`` and a square-root covariance ``S``
(:class:`~.linear.LinearPosterior`); the linear model with a learned noise variance also keeps
the inverse-gamma posterior of that variance, which scales the covariance (Student-t marginals).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._scipy import ndtri, stdtrit
from ..errors import InvalidContextError
from ._factor import project

__all__ = ["GaussianWeights"]


class GaussianWeights:
    """Mixin of models whose posterior is Gaussian in the weights (``posterior.mean``
    ``(*batch, K, d)``, ``posterior.sqrt_cov`` ``(*batch, K, d, d)``)."""

    def noise_posterior(self, posterior: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """``(a, b)`` of the inverse-gamma posterior of the noise variance that scales the
        weight covariance, or ``None`` when the covariance is not scaled (the default)."""
        return None

    def _predictive(self, posterior: Any, contexts: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean ``x . m`` and variance ``|S^T x|^2`` of each arm at ``contexts``
        (:func:`~._factor.project`); a context is required."""
        if contexts is None:
            model: Any = self
            raise InvalidContextError(f"{type(self).__name__} needs a context of length "
                                      f"{model.n_features} to score arms")
        return project(contexts, posterior.mean, posterior.sqrt_cov)

    def sample_scaled(self, posterior: Any, rng: np.random.Generator, scale: float,
                      contexts: np.ndarray | None = None, size: int | None = None
                      ) -> np.ndarray:
        """An exact posterior draw with the weight covariance times ``scale**2`` (a learned
        noise posterior as is): tempered Thompson sampling for Gaussian weights."""
        model: Any = self
        return model.sample(posterior.scaled(scale), rng, contexts, size)

    def sample_weights(self, posterior: Any, rng: np.random.Generator,
                       size: int | None = None) -> np.ndarray:
        """Posterior draws of the weight vectors: ``(*batch, K, d)`` or ``(size, ...)``."""
        m, S = posterior.mean, posterior.sqrt_cov
        shape = m.shape if size is None else (size, *m.shape)
        z = rng.standard_normal(shape)
        w = (S @ z[..., None])[..., 0]
        noise = self.noise_posterior(posterior)
        if noise is not None:
            na, nb = noise
            sig2 = nb / rng.standard_gamma(np.broadcast_to(na, shape[:-1]))
            w = w * np.sqrt(sig2)[..., None]
        return m + w

    def weight_interval(self, posterior: Any, level: float = 0.95
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Marginal equal-tailed credible interval of every weight, two arrays
        ``(*batch, K, d)`` (Student-t marginals under a learned noise variance)."""
        sd = np.sqrt(np.einsum("...ij,...ij->...i", posterior.sqrt_cov, posterior.sqrt_cov))
        p = (1.0 - level) / 2.0  # the lower tail, negated: exact for levels near 1
        noise = self.noise_posterior(posterior)
        if noise is not None:
            a, b = noise[0][..., None], noise[1][..., None]
            half = -stdtrit(2.0 * a, p) * sd * np.sqrt(b / a)
        else:
            half = -ndtri(p) * sd
        return posterior.mean - half, posterior.mean + half
