"""Inverse propensity scoring: IPS and self-normalized IPS (SNIPS), with optional clipping.

With importance weights ``w_i = min(pi_e(a_i | x_i) / p_i, clip)``:

- IPS ``= mean_i w_i r_i`` — unbiased without clipping when the logging policy gives every action
  the target may take a positive probability; its variance grows with the weights.
- SNIPS ``= sum_i w_i r_i / sum_i w_i`` — slightly biased (O(1/n)), invariant to adding a constant
  to rewards, usually much less variable. Its normal interval uses the linearization
  ``w_i (r_i - V) / mean(w)``.

Clipping trades variance for a downward bias (for non-negative rewards).
"""

from __future__ import annotations

import numpy as np

from .base import Estimator, Terms, check_clip
from .data import LoggedData
from .intervals import effective_sample_size

__all__ = ["IPS", "SNIPS", "importance_weights"]


def importance_weights(data: LoggedData, pi_rows: np.ndarray, clip: float | None = None
                       ) -> np.ndarray:
    """``(n,)`` weights ``min(pi_e(a_i | x_i) / p_i, clip)``.

    >>> import numpy as np
    >>> from tsbandit.evaluation import LoggedData
    >>> log = LoggedData(np.array([0, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.25]), 2)
    >>> importance_weights(log, np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
    [2.0, 2.0]
    """
    w = pi_rows[np.arange(data.n_rounds), data.actions] / data.propensities
    return w if clip is None else np.minimum(w, clip)


class IPS(Estimator):
    """Inverse propensity scoring (Horvitz-Thompson).

    Parameters
    ----------
    clip
        Cap on the importance weights (``None``: no clipping).
    """

    name = "ips"

    def __init__(self, clip: float | None = None) -> None:
        self.clip = check_clip(clip)

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        w = importance_weights(data, pi_rows, self.clip)
        v = w * data.rewards
        n = data.n_rounds
        return Terms(float(v.mean()), v, lambda c: c @ v / n, effective_sample_size(w),
                     float(w.max()), int(np.count_nonzero(v)))


class SNIPS(Estimator):
    """Self-normalized inverse propensity scoring.

    Parameters
    ----------
    clip
        Cap on the importance weights (``None``: no clipping).
    """

    name = "snips"

    def __init__(self, clip: float | None = None) -> None:
        self.clip = check_clip(clip)

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        w = importance_weights(data, pi_rows, self.clip)
        wr = w * data.rewards
        total = float(w.sum())
        if total <= 0:
            return Terms(float("nan"), np.zeros(data.n_rounds), lambda c: c[:, 0] * np.nan, 0.0,
                         float(w.max()))
        value = float(wr.sum() / total)
        influence = w * (data.rewards - value) / w.mean()

        def resample(c: np.ndarray) -> np.ndarray:
            den = c @ w
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(den > 0, (c @ wr) / den, np.nan)

        return Terms(value, influence, resample, effective_sample_size(w), float(w.max()),
                     int(np.count_nonzero(wr)))
