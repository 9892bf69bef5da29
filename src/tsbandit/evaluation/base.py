"""The estimator contract: a target policy's action probabilities in, an :class:`Estimate` out.

The target policy ``pi_e`` is given as action probabilities, one of

- ``(K,)``: the same distribution in every round;
- ``(n, K)``: one distribution per round;
- ``(n, K, L)``: per round and slot, for slates (``pi_e[i, a, k]`` is the probability that the
  target shows action ``a`` at slot ``k``; each ``pi_e[i, :, k]`` sums to 1).

As in the Open Bandit Pipeline's standard estimators, a slate log is treated slot by slot: round
``i`` is the logged action ``a_i`` at slot ``k_i`` with the per-slot propensity ``p_i``, and the
target's probability of the same event is ``pi_e[i, a_i, k_i]``. The estimand is the expected
reward per (round, slot) row, which is what the log's own mean reward measures on-policy.

Each estimator supplies only its per-round terms (:class:`Terms`); this base class does the
validation, the intervals and the effective sample size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigurationError
from .data import LoggedData
from .intervals import (
    Estimate,
    bootstrap_interval,
    check_level,
    clip_to_range,
    normal_interval,
    reward_range,
)

__all__ = ["Estimator", "Terms", "action_dist_rows", "check_clip"]

_SUM_TOL = 1e-6


def action_dist_rows(data: LoggedData, pi_e: np.ndarray) -> np.ndarray:
    """The target's ``(n, K)`` distribution at each logged round (and the round's slot).

    Raises :class:`~tsbandit.errors.ConfigurationError` for a wrong shape, negative or
    non-finite probabilities, or rows that do not sum to 1.
    """
    pi = np.asarray(pi_e, dtype=np.float64)
    n, k = data.n_rounds, data.n_actions
    if pi.ndim == 1 and pi.shape == (k,):
        pi = np.broadcast_to(pi, (n, k))
    elif pi.ndim == 2 and pi.shape == (n, k):
        pass
    elif pi.ndim == 3 and pi.shape == (n, k, data.n_positions):
        pi = pi[np.arange(n), :, data.position_index]
    else:
        raise ConfigurationError(
            f"target action probabilities have shape {pi.shape}; expected ({k},), ({n}, {k})"
            f" or ({n}, {k}, {data.n_positions}) for this log"
        )
    if not np.isfinite(pi).all() or (pi < 0).any():
        raise ConfigurationError("target action probabilities must be finite and >= 0")
    sums = pi.sum(axis=1)
    if n and np.abs(sums - 1.0).max() > _SUM_TOL:
        i = int(np.abs(sums - 1.0).argmax())
        raise ConfigurationError(
            f"target action probabilities of round {i} sum to {sums[i]:.6g}, must sum to 1"
        )
    return pi


def check_clip(clip: float | None) -> float | None:
    """Validate a weight-clipping threshold (``None`` = no clipping)."""
    if clip is None:
        return None
    c = float(clip)
    if not (c > 0):
        raise ConfigurationError(f"clip == {clip!r}, must be > 0 (or None for no clipping)")
    return c


@dataclass
class Terms:
    """What an estimator computes from a log: the point estimate and how to resample it.

    ``influence`` ``(m,)`` gives the normal interval; ``resample`` maps ``(B, m)`` resampling
    counts over the same ``m`` units to ``(B,)`` estimates (the bootstrap). ``normal``, when
    given, replaces the influence-function interval: ``level -> (low, high, std_error)``.
    """

    value: float
    influence: np.ndarray
    resample: Callable[[np.ndarray], np.ndarray]
    ess: float
    max_weight: float = float("nan")
    n_events: int = 0
    normal: Callable[[float], tuple[float, float, float]] | None = None


class Estimator(ABC):
    """Base class of off-policy estimators of a target policy's expected reward per round."""

    name: ClassVar[str]
    #: True when the estimator draws random numbers itself (replay)
    needs_rng: ClassVar[bool] = False

    @abstractmethod
    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        """Per-round terms of the estimator, given the ``(n, K)`` target distribution."""

    def estimate(
        self,
        data: LoggedData,
        pi_e: np.ndarray,
        *,
        interval: str = "normal",
        level: float = 0.95,
        rng: np.random.Generator | None = None,
        n_bootstrap: int = 1000,
        bounds: str | tuple[float, float] | None = "auto",
    ) -> Estimate:
        """Estimate the target policy's expected reward per round, with an interval.

        Parameters
        ----------
        data
            The logged feedback.
        pi_e
            Target action probabilities ``(K,)``, ``(n, K)`` or ``(n, K, L)``.
        interval
            ``"normal"`` (influence-function normal approximation) or ``"bootstrap"``
            (percentile interval over ``n_bootstrap`` resamples of the rounds).
        level
            Nominal coverage of the interval.
        rng
            Generator for the bootstrap (and the replay's rejection sampling); required then.
        bounds
            The reward range the interval is cut to (an expected reward cannot leave it):
            ``"auto"`` (``[0, 1]`` for 0/1 rewards, else the logged rewards' min and max; see
            :func:`~.intervals.reward_range`), ``(low, high)``, or ``None`` (no cut).
            ``Estimate.clipped`` says when it cut.
        """
        limits = _check_bounds(bounds, data)
        if interval not in ("normal", "bootstrap"):
            raise ConfigurationError(f"interval == {interval!r}, must be 'normal' or 'bootstrap'")
        check_level(level)
        if data.n_rounds < 2:
            raise ConfigurationError(f"the log has {data.n_rounds} rounds; need at least 2")
        if (self.needs_rng or interval == "bootstrap") and not isinstance(
            rng, np.random.Generator
        ):
            raise ConfigurationError(
                f"{self.name} with a {interval} interval needs rng=np.random.default_rng(seed)"
            )
        pi_rows = action_dist_rows(data, pi_e)
        own_rng, boot_rng = rng.spawn(2) if rng is not None else (None, None)
        t = self.terms(data, pi_rows, own_rng)
        m = t.influence.shape[0]
        if not np.isfinite(t.value) or m < 2:
            low = high = se = float("nan")
        elif interval == "normal" and t.normal is not None:
            low, high, se = t.normal(level)
        elif interval == "normal":
            low, high, se = normal_interval(t.value, t.influence, level)
        else:
            assert boot_rng is not None
            low, high, se = bootstrap_interval(
                t.resample, m, rng=boot_rng, n_bootstrap=n_bootstrap, level=level
            )
        clipped = False
        if limits is not None:
            low, high, clipped = clip_to_range(float(t.value), low, high, limits)
        return Estimate(self.name, float(t.value), low, high, se, float(t.ess), data.n_rounds,
                        interval, float(level), float(t.max_weight), int(t.n_events), clipped)


def _check_bounds(bounds: str | tuple[float, float] | None, data: LoggedData
                  ) -> tuple[float, float] | None:
    if bounds is None:
        return None
    if isinstance(bounds, str):
        if bounds != "auto":
            raise ConfigurationError(f"bounds == {bounds!r}, must be 'auto', (low, high) or None")
        return reward_range(data.rewards)
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"bounds == {bounds!r}, must be 'auto', (low, high) or None") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ConfigurationError(f"bounds == {bounds!r}: need finite low <= high")
    return lo, hi
