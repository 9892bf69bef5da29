"""Model-based estimators: the direct method (DM) and doubly robust (DR).

With a fitted reward model ``q(x, a)`` (:class:`~.reward_model.RidgeRewardModel` by default):

- DM ``= mean_i sum_a pi_e(a | x_i) q(x_i, a)`` — low variance, biased when ``q`` is wrong. Its
  normal interval includes the model's estimation error (influence function), and its bootstrap
  refits the model on every resample (cheap: the statistics of a resample are one matrix product).
- DR ``= mean_i [sum_a pi_e(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i))]`` — unbiased when the
  propensities are right, whatever ``q`` is; ``q`` only reduces the variance. ``q`` is
  cross-fitted (round ``i`` predicted by a model that did not see it), so the per-round terms
  are nearly independent and the plain interval of their mean is valid.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from .base import Estimator, Terms, check_clip
from .data import LoggedData
from .intervals import effective_sample_size
from .ipw import importance_weights
from .reward_model import RidgeRewardModel

__all__ = ["DM", "DR"]


class DM(Estimator):
    """Direct method: the target's expected reward under a fitted reward model.

    Parameters
    ----------
    model
        The reward model (default: :class:`RidgeRewardModel()`, one pseudo-round of shrinkage).
    """

    name = "dm"

    def __init__(self, model: RidgeRewardModel | None = None) -> None:
        self.model = model or RidgeRewardModel()

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        value, influence = self.model.dm_influence(data, pi_rows)
        lam = self.model.resolve_ridge(data)
        phi = self.model.features(data)
        n, k, p = data.n_rounds, data.n_actions, phi.shape[1]
        pi_phi = (pi_rows[:, :, None] * phi[:, None, :]).reshape(n, k * p)

        def resample(c: np.ndarray) -> np.ndarray:
            fitted = self.model.fit_counts(data, c, ridge=lam, phi=phi)
            g = c @ pi_phi  # (B, K p): sum_i c_bi pi(a|i) phi_i
            return (g * fitted.theta.reshape(c.shape[0], k * p)).sum(axis=1) / n

        return Terms(value, influence, resample, float(n),
                     n_events=int(np.count_nonzero(data.rewards)))


class DR(Estimator):
    """Doubly robust estimator with a cross-fitted reward model.

    Parameters
    ----------
    model
        The reward model (default: :class:`RidgeRewardModel()`, one pseudo-round of shrinkage).
    clip
        Cap on the importance weights (``None``: no clipping).
    n_folds
        Cross-fitting folds (1: fit and predict on the whole log).
    """

    name = "dr"

    def __init__(self, model: RidgeRewardModel | None = None, clip: float | None = None,
                 n_folds: int = 5) -> None:
        self.model = model or RidgeRewardModel()
        self.clip = check_clip(clip)
        if int(n_folds) < 1:
            raise ConfigurationError(f"n_folds == {n_folds!r}, must be >= 1")
        self.n_folds = int(n_folds)

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        q = self.model.cross_fit_predict(data, min(self.n_folds, data.n_rounds))
        w = importance_weights(data, pi_rows, self.clip)
        rows = np.arange(data.n_rounds)
        v = (pi_rows * q).sum(axis=1) + w * (data.rewards - q[rows, data.actions])
        n = data.n_rounds
        events = int(np.count_nonzero(w * data.rewards))
        return Terms(float(v.mean()), v, lambda c: c @ v / n, effective_sample_size(w),
                     float(w.max()), events)
