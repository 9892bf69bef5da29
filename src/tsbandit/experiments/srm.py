"""Sample-ratio mismatch (SRM): is the observed traffic split the one that was intended?

A Pearson chi-square goodness-of-fit test of the users per arm against the intended split.
An SRM means the assignment or the logging is broken (bots, redirects, a crashing variant), and
no comparison of the arms can be trusted until it is explained. The conventional flag is
``p < 0.001`` (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments", KDD): strict, because the check runs on every experiment, and real SRMs usually
give p-values far smaller.

Examples
--------
>>> srm_check([5000, 5000]).mismatch
False
>>> r = srm_check([5000, 4600])
>>> r.mismatch, round(r.p_value, 5)
(True, 4e-05)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import chdtrc

from ..errors import ConfigurationError

__all__ = ["SRMResult", "srm_check"]


@dataclass(frozen=True)
class SRMResult:
    """Chi-square statistic, p-value and flag (``p_value < threshold``); arrays are ``(K,)``."""

    statistic: float
    p_value: float
    dof: int
    mismatch: bool
    threshold: float
    observed: np.ndarray
    expected: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"status": "mismatch" if self.mismatch else "ok", "statistic": self.statistic,
                "p_value": self.p_value, "dof": self.dof, "threshold": self.threshold,
                "observed": self.observed.tolist(), "expected": self.expected.tolist()}


def srm_check(observed: Sequence[float] | np.ndarray,
              intended_split: Sequence[float] | np.ndarray | None = None, *,
              threshold: float = 0.001) -> SRMResult:
    """Chi-square test of observed users per arm against the intended split.

    Parameters
    ----------
    observed
        ``(K,)`` users (or sessions) assigned to each arm, ``K >= 2``.
    intended_split
        ``(K,)`` positive weights (need not sum to 1; ``[50, 50]`` works). Default: equal.
    threshold
        Flag a mismatch when ``p_value < threshold``.
    """
    try:
        obs = np.asarray(observed, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"observed must be numbers, got {observed!r}") from None
    if obs.ndim != 1 or obs.size < 2:
        raise ConfigurationError(f"observed needs counts for at least 2 arms, got {obs.tolist()}")
    if not np.isfinite(obs).all() or (obs < 0).any():
        raise ConfigurationError(f"observed counts must be finite and >= 0, got {obs.tolist()}")
    total = float(obs.sum())
    if total <= 0:
        raise ConfigurationError("observed counts are all zero: nothing to check")
    if intended_split is None:
        w = np.ones_like(obs)
    else:
        try:
            w = np.asarray(intended_split, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"intended_split must be numbers, got {intended_split!r}") from None
        if w.shape != obs.shape:
            raise ConfigurationError(
                f"intended_split has {w.size} weights for {obs.size} arms")
        if not np.isfinite(w).all() or (w <= 0).any():
            raise ConfigurationError(
                f"intended_split weights must be finite and > 0, got {w.tolist()}")
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigurationError(f"threshold == {threshold!r}, must be in (0, 1)")
    expected = total * w / w.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    dof = obs.size - 1
    p = float(chdtrc(dof, stat))
    return SRMResult(stat, p, dof, p < threshold, float(threshold), obs, expected)
