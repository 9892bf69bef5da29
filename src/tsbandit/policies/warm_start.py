"""Warm starts: a new bandit's starting statistics from what was learned before.

A warm start is a *power prior*: an earlier posterior's statistics, each observation counted
``weight`` times (``0 < weight <= 1``) and each arm capped at ``max_count`` effective
observations. Because every posterior here is set by additive statistics, the prior built this
way is exactly the posterior of the discounted old data, and the new bandit's statistics are
``warm start + new observations``: stores keep them as they keep any statistics, and the
model's prior (its configuration) stays what it was.

* :func:`warm_start` -- from another bandit's statistics (same model), optionally mapping
  arms (a new arm starts from nothing, or, for :class:`~.hierarchical.HierarchicalLinear`,
  from the shared weights the old arms taught).
* :func:`beta_from_ab` -- Beta-Bernoulli statistics from an A/B test's successes and trials.
* :func:`tsbandit.evaluation.warm_start.stats_from_event_log` fits them from a logged event
  file.

>>> import numpy as np
>>> from tsbandit.policies import BetaBernoulli
>>> s = beta_from_ab([30, 12], [1000, 400], max_trials=100)
>>> s["successes"].tolist(), s["failures"].tolist()
([3.0, 3.0], [97.0, 97.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import WarmStartError
from .base import RewardModel
from .stats import Stats

__all__ = ["arm_factors", "beta_from_ab", "warm_start"]


def _check_weight(weight: Any) -> float:
    w = float(weight) if isinstance(weight, (int, float)) and not isinstance(weight, bool) \
        else math.nan
    if not 0.0 < w <= 1.0:
        raise WarmStartError(f"weight == {weight!r}, must be > 0 and <= 1")
    return w


def _check_cap(max_count: Any, name: str) -> float | None:
    if max_count is None:
        return None
    c = float(max_count) if isinstance(max_count, (int, float)) and \
        not isinstance(max_count, bool) else math.nan
    if not (c > 0.0 and math.isfinite(c)):
        raise WarmStartError(f"{name} == {max_count!r}, must be a finite number > 0")
    return c


def arm_factors(counts: np.ndarray, weight: float = 1.0,
                max_count: float | None = None) -> np.ndarray:
    """Per-arm discount ``min(weight, max_count / n_a)`` for (weighted) counts ``n``
    ``(*batch, K)``: every arm keeps at most ``max_count`` effective observations.

    >>> arm_factors(np.array([10.0, 400.0, 0.0]), 0.5, 100.0).tolist()
    [0.5, 0.25, 0.5]
    """
    w = _check_weight(weight)
    cap = _check_cap(max_count, "max_count")
    f = np.full(np.shape(counts), w)
    if cap is not None:
        with np.errstate(divide="ignore"):
            f = np.minimum(f, np.where(counts > 0, cap / np.maximum(counts, 1e-300), w))
    return f


def warm_start(model: RewardModel, stats: Stats, *, weight: float = 1.0,
               max_count: float | None = None,
               arm_map: Sequence[int | None] | None = None) -> Stats:
    """Starting statistics for a new bandit from an earlier bandit's ``stats`` (same model).

    Parameters
    ----------
    model
        The reward model of both bandits (its statistics layout is checked).
    stats
        The earlier bandit's statistics, ``(K_old, ...)`` (no batch axis).
    weight
        Every old observation counts ``weight`` times, in ``(0, 1]`` (discounting for drift).
    max_count
        Cap on each arm's effective number of old observations (the prior never outweighs
        ``max_count`` new ones); ``None`` for no cap.
    arm_map
        For each new arm, the index of the old arm it continues, or ``None`` for an arm with
        no history (default: the same arms, in order).

    Returns
    -------
    Stats
        ``(K_new, ...)``: add new observations to it, or write it to a store.

    Raises
    ------
    WarmStartError
        Statistics of another layout or with a batch axis, a bad weight, cap or arm index.

    Examples
    --------
    >>> import numpy as np
    >>> from tsbandit.policies import BetaBernoulli
    >>> m = BetaBernoulli()
    >>> old = m.delta(2, np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]))
    >>> new = warm_start(m, old, weight=0.5, arm_map=[1, None, 0])
    >>> new["successes"].tolist(), new["failures"].tolist()
    ([0.5, 0.0, 0.5], [0.0, 0.0, 0.5])
    """
    if not isinstance(stats, Stats):
        raise WarmStartError(f"stats must be a Stats, got {type(stats).__name__}")
    if stats.batch_ndim != 0:
        raise WarmStartError(f"warm start takes one bandit's statistics (no batch axis), got "
                             f"batch shape {stats.batch_shape}")
    template = model.init_stats(stats.n_arms)
    if set(template) != set(stats) or any(template[k].shape != stats[k].shape
                                          for k in template):
        raise WarmStartError(
            f"statistics {stats!r} do not have the layout of {type(model).__name__} "
            f"({template!r})")
    if not all(np.isfinite(v).all() for v in stats.values()):
        raise WarmStartError("statistics to warm start from must be finite")
    f = arm_factors(model.counts(stats), weight, max_count)
    scaled = Stats({k: v * f.reshape(f.shape + (1,) * (v.ndim - 1)) for k, v in stats.items()})
    if arm_map is None:
        return scaled
    old_k = stats.n_arms
    out = model.init_stats(len(arm_map))
    for new, old in enumerate(arm_map):
        if old is None:
            continue
        if isinstance(old, bool) or not isinstance(old, (int, np.integer)) \
                or not 0 <= old < old_k:
            raise WarmStartError(f"arm_map[{new}] == {old!r}, must be None or an old arm "
                                 f"index in 0..{old_k - 1}")
        for k in out:
            out[k][new] = scaled[k][int(old)]
    return out


def beta_from_ab(successes: Sequence[float] | np.ndarray, trials: Sequence[float] | np.ndarray,
                 *, weight: float = 1.0, max_trials: float | None = None) -> Stats:
    """Beta-Bernoulli statistics from an A/B test: successes and trials per arm as
    pseudo-counts, each arm discounted by ``weight`` and capped at ``max_trials`` effective
    trials (its rate kept), to add to :class:`~.beta.BetaBernoulli` statistics.

    Raises
    ------
    WarmStartError
        Unequal lengths, negative or non-finite counts, successes above trials, a bad weight
        or cap.
    """
    try:
        s = np.asarray(successes, dtype=np.float64)
        t = np.asarray(trials, dtype=np.float64)
    except (TypeError, ValueError):
        raise WarmStartError(f"successes {successes!r} and trials {trials!r} must be numbers"
                             ) from None
    if s.ndim != 1 or s.shape != t.shape or s.size == 0:
        raise WarmStartError(f"successes {s.shape} and trials {t.shape} must be two lists of "
                             "one count per arm")
    if not (np.isfinite(s).all() and np.isfinite(t).all()) or (s < 0).any() or (s > t).any():
        i = int(np.flatnonzero(~(np.isfinite(s) & np.isfinite(t) & (s >= 0) & (s <= t)))[0])
        raise WarmStartError(f"arm {i}: successes == {s[i]!r}, trials == {t[i]!r}; need "
                             "0 <= successes <= trials, both finite")
    f = arm_factors(t, weight, _check_cap(max_trials, "max_trials"))
    return Stats({"successes": s * f, "failures": (t - s) * f})
