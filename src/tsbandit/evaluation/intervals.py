"""Confidence intervals, the effective sample size, and the result record of an estimate.

Two intervals are offered for every estimator:

- ``"normal"``: ``value +/- z * sd(psi) / sqrt(n)`` where ``psi`` is the estimator's per-round
  influence function (for IPS, the per-round terms themselves; for SNIPS and DM the linearized
  terms that account for the normalization and for the fitted reward model);
- ``"bootstrap"``: the percentile interval of the estimator recomputed on ``n_bootstrap``
  resamples of the rounds (drawn from the ``numpy.random.Generator`` you pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._scipy import ndtri
from ..errors import ConfigurationError

__all__ = [
    "Estimate",
    "bootstrap_counts",
    "bootstrap_interval",
    "clip_to_range",
    "effective_sample_size",
    "normal_interval",
    "reward_range",
    "wilson_interval",
]


@dataclass(frozen=True)
class Estimate:
    """One off-policy estimate of a target policy's expected reward per round.

    Attributes
    ----------
    estimator
        Short name (``"ips"``, ``"snips"``, ``"dm"``, ``"dr"``, ``"replay"``).
    value
        Point estimate.
    low, high
        Confidence interval at ``level``.
    std_error
        Standard error (normal approximation; the bootstrap standard deviation for
        ``interval == "bootstrap"``).
    ess
        Effective sample size: Kish's ``(sum w)^2 / sum w^2`` of the importance weights (``n``
        for DM, the accepted rounds for replay, the weights it keeps for Switch-DR).
    n_rounds
        Rounds in the log.
    interval, level
        How the interval was computed and its nominal coverage.
    max_weight
        Largest importance weight used (after clipping); ``nan`` for DM.
    n_events
        Rounds that move the estimate away from zero: a non-zero reward with a non-zero weight
        (kept rounds with a non-zero reward for replay; non-zero rewards for DM). With rare
        rewards (clicks) this, not ``n_rounds``, is what the precision rests on; a normal
        interval built on a handful of events (or none, which gives zero width) is not to be
        trusted.
    clipped
        True when the interval was cut to the reward range (see :func:`clip_to_range`).
    """

    estimator: str
    value: float
    low: float
    high: float
    std_error: float
    ess: float
    n_rounds: int
    interval: str
    level: float
    max_weight: float = float("nan")
    n_events: int = 0
    clipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in asdict(self).items()}


def check_level(level: float) -> float:
    """Validate a confidence level in (0, 1)."""
    lv = float(level)
    if not 0.0 < lv < 1.0:
        raise ConfigurationError(f"level == {level!r}, must be in (0, 1)")
    return lv


def reward_range(rewards: np.ndarray) -> tuple[float, float]:
    """The range a policy's expected reward lies in, judged from the logged rewards:
    ``(0, 1)`` when every reward is 0 or 1, else ``(min, max)`` of the rewards.

    >>> reward_range(np.array([0.0, 1.0, 0.0]))
    (0.0, 1.0)
    >>> reward_range(np.array([2.5, -1.0]))
    (-1.0, 2.5)
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.size == 0 or np.isin(r, (0.0, 1.0)).all():
        return 0.0, 1.0
    return float(r.min()), float(r.max())


def clip_to_range(value: float, low: float, high: float, bounds: tuple[float, float]
                  ) -> tuple[float, float, bool]:
    """``(low, high, clipped)``: the interval intersected with ``bounds``, widened again to
    contain ``value`` itself when the estimate lies outside the range (IPS can).

    An expected reward cannot leave the reward range, so cutting an interval to it never loses
    coverage; it matters when the effective sample size is tiny and a normal interval reaches
    below 0 for click rates.

    >>> clip_to_range(0.2, -0.1, 0.5, (0.0, 1.0))
    (0.0, 0.5, True)
    >>> clip_to_range(1.3, 0.4, 2.0, (0.0, 1.0))
    (0.4, 1.3, True)
    """
    lo_b, hi_b = bounds
    if not (np.isfinite(low) and np.isfinite(high)):
        return low, high, False
    new_low = max(low, min(lo_b, value))
    new_high = min(high, max(hi_b, value))
    return float(new_low), float(new_high), bool(new_low != low or new_high != high)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of non-negative weights.

    >>> effective_sample_size(np.ones(10))
    10.0
    >>> effective_sample_size(np.array([1.0, 0.0, 0.0, 0.0]))
    1.0
    """
    w = np.asarray(weights, dtype=np.float64)
    top = float(np.abs(w).max()) if w.size else 0.0
    if top == 0.0:
        return 0.0
    u = w / top  # scale-free; avoids underflow of tiny weights squared
    return float(u.sum() ** 2 / np.dot(u, u))


def normal_interval(value: float, influence: np.ndarray, level: float = 0.95
                    ) -> tuple[float, float, float]:
    """``(low, high, std_error)`` of ``value +/- z sd(influence) / sqrt(n)``."""
    psi = np.asarray(influence, dtype=np.float64)
    n = psi.shape[0]
    se = float(psi.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = float(ndtri(0.5 + check_level(level) / 2.0))
    return value - z * se, value + z * se, se


def wilson_interval(successes: float, n: int, level: float = 0.95
                    ) -> tuple[float, float, float]:
    """Wilson score interval of a binomial proportion: ``(low, high, std_error)``.

    Unlike the normal interval it stays honest with few or no successes: 0 out of 300 gives
    ``[0, 0.0126]`` at 95%, not ``[0, 0]``. ``std_error`` is the half-width over ``z``.

    >>> [round(v, 4) for v in wilson_interval(0, 300)]
    [0.0, 0.0126, 0.0032]
    """
    z = float(ndtri(0.5 + check_level(level) / 2.0))
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    p = successes / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return float(low), float(high), float(half / z)


def bootstrap_counts(n: int, n_bootstrap: int, rng: np.random.Generator,
                     chunk: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``(b, n)`` float64 resampling counts (each row sums to ``n``), in chunks.

    Chunks keep memory at about 8 MB whatever ``n_bootstrap`` is.
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigurationError(
            "the bootstrap needs a numpy.random.Generator: pass rng=np.random.default_rng(seed)"
        )
    if int(n_bootstrap) < 2:
        raise ConfigurationError(f"n_bootstrap == {n_bootstrap!r}, must be >= 2")
    size = chunk or max(1, min(int(n_bootstrap), 1_000_000 // max(n, 1)))
    done = 0
    while done < n_bootstrap:
        b = min(size, int(n_bootstrap) - done)
        idx = rng.integers(0, n, size=(b, n))
        offsets = (np.arange(b) * n)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=b * n).reshape(b, n)
        done += b
        yield counts.astype(np.float64)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    rng: np.random.Generator,
    n_bootstrap: int = 1000,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Percentile bootstrap: ``(low, high, std)`` of ``statistic(counts)`` over resamples.

    ``statistic`` maps ``(b, n)`` resampling counts to ``(b,)`` estimates (vectorized).
    Resamples where the statistic is undefined (``nan``) are dropped.
    """
    lv = check_level(level)
    stats = np.concatenate([np.asarray(statistic(c), dtype=np.float64)
                            for c in bootstrap_counts(n, n_bootstrap, rng)])
    stats = stats[np.isfinite(stats)]
    if stats.size < 2:
        return float("nan"), float("nan"), float("nan")
    q = (1.0 - lv) / 2.0
    low, high = np.quantile(stats, [q, 1.0 - q])
    return float(low), float(high), float(stats.std(ddof=1))
