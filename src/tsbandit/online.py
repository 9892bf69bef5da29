"""A model's sufficient statistics kept in memory and learned online (what a ``Bandit`` holds).

:class:`MemoryStatistics` is the in-process counterpart of a store: the statistics of every arm,
the posterior they give (kept current), and the non-stationary variants -- ``discount=gamma``
multiplies all statistics by ``gamma`` before each observation (discounted Thompson sampling);
``window=W`` keeps only the last ``W`` observations (a bounded buffer; the statistics of an
evicted observation are subtracted exactly).

>>> from tsbandit.policies import BetaBernoulli
>>> mem = MemoryStatistics(BetaBernoulli(), 2, window=2)
>>> for arm in (0, 1, 1):
...     mem.observe(arm, 1.0, None)
>>> mem.stats["successes"].tolist(), mem.n_updates
([0.0, 2.0], 3)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigurationError, SerializationError
from .policies.base import RewardModel
from .policies.stats import Stats

__all__ = ["MemoryStatistics"]


class MemoryStatistics:
    """Sufficient statistics of ``n_arms`` arms under ``model``, with their posterior.

    Parameters
    ----------
    model
        The reward model (it owns the statistics' layout and the posterior math).
    n_arms
        Number of arms (each starts at its prior).
    discount
        ``gamma`` in (0, 1]: all statistics are multiplied by it before each observation.
    window
        Keep only the last ``window`` observations (exact, bounded buffer; additive models).

    ``stats`` and ``posterior`` belong to the learning methods (which update or replace them);
    callers read them only.
    """

    def __init__(self, model: RewardModel, n_arms: int, *, discount: float | None = None,
                 window: int | None = None) -> None:
        if discount is not None:
            discount = float(discount)
            if not (0.0 < discount <= 1.0):
                raise ConfigurationError(f"discount == {discount!r}, must be > 0 and <= 1")
        if window is not None:
            if isinstance(window, bool) or int(window) != window or window < 1:
                raise ConfigurationError(f"window == {window!r}, must be an integer >= 1")
            if not model.additive:
                raise ConfigurationError(
                    f"window needs additive statistics; {type(model).__name__} has none")
            window = int(window)
        if discount is not None and window is not None:
            raise ConfigurationError("use either discount or window, not both")
        self.model = model
        self.discount = discount
        self.window = window
        self.stats: Stats = model.init_stats(n_arms)
        self.posterior: Any = model.posterior(self.stats)
        # (arm, reward or {metric index: reward}, context) per observation in the window
        self.buffer: deque[tuple[int, Any, np.ndarray | None]] = deque()
        self.n_updates = 0
        self._one = (np.zeros(1, dtype=np.intp), np.zeros(1))

    # ----- learning -----------------------------------------------------------------------
    def observe(self, a: int, r: float, xs: np.ndarray | None) -> None:
        """Learn one validated observation: arm index ``a``, reward ``r``, context ``(d,)``."""
        model = self.model
        if self.discount is not None and self.discount < 1.0:
            self.stats = model.decay(self.stats, self.discount)
            a1, r1 = self._one  # one-element arrays, reused (accumulate keeps no reference)
            a1[0] = a
            r1[0] = r
            model.accumulate(self.stats, a1, r1, None if xs is None else xs[None, :])
            self.posterior = model.posterior(self.stats)
        else:
            self.posterior = model.observe_one(self.stats, self.posterior, a, r, xs)
        self.n_updates += 1
        if self.window is not None:
            self.buffer.append((a, r, None if xs is None else xs.copy()))
            if len(self.buffer) > self.window:
                self._evict(1)

    def observe_rewards(self, a: int, rewards: Any, context: Any) -> None:
        """Validate and learn one decision's ``{metric: reward}`` (several metrics): unknown
        metrics, invalid values and a metric whose ``given`` is 0 raise, leaving it unchanged."""
        model: Any = self.model
        checked = model.check_metric_rewards(rewards)
        if context is None and not model.contextual:
            return self.observe_metrics(a, checked, None)
        x = model.check_contexts(context, 1)
        self.observe_metrics(a, checked, None if x is None else x[0])

    def observe_rewards_batch(self, idx: np.ndarray, rewards: Any, contexts: Any) -> None:
        """:meth:`observe_rewards` of many decisions (arm indices ``idx``, one ``{metric:
        value}`` each, contexts ``(n, d)``): every one is validated before any is learned."""
        model: Any = self.model
        checked = [model.check_metric_rewards(r) for r in rewards]
        if len(checked) != idx.shape[0]:
            raise ConfigurationError(f"got {idx.shape[0]} arms and {len(checked)} rewards")
        x = model.check_contexts(contexts, idx.shape[0]) if idx.shape[0] else None
        for i, (a, r) in enumerate(zip(idx.tolist(), checked, strict=True)):
            self.observe_metrics(a, r, None if x is None else x[i])

    def observe_metrics(self, a: int, rewards: Mapping[int, float],
                        xs: np.ndarray | None) -> None:
        """Learn one decision's validated rewards of some metrics of a
        :class:`~tsbandit.policies.metrics.MetricSet` (``{metric index: reward}``; each
        metric's statistics alone change, so the others may arrive later)."""
        model: Any = self.model
        if self.discount is not None and self.discount < 1.0:
            self.stats = model.decay(self.stats, self.discount)
            a1, r1 = self._one
            a1[0] = a
            for i, r in rewards.items():
                r1[0] = r
                model.accumulate_metric(self.stats, i, a1, r1,
                                        None if xs is None else xs[None, :])
            self.posterior = model.posterior(self.stats)
        else:
            self.posterior = model.observe_one(self.stats, self.posterior, a, rewards, xs)
        self.n_updates += 1
        if self.window is not None:
            # one update is one observation of the window: its metrics leave together
            self.buffer.append((a, dict(rewards), None if xs is None else xs.copy()))
            if len(self.buffer) > self.window:
                self._evict(1)

    def observe_batch(self, idx: np.ndarray, r: np.ndarray, x: np.ndarray | None) -> None:
        """Learn ``n`` validated observations at once (statistics summed; sequential
        discounting when ``discount`` is set); all or nothing."""
        n = idx.shape[0]
        model = self.model
        stats = self.stats.copy()
        if self.discount is not None and self.discount < 1.0:
            stats = model.decay(stats, self.discount**n)
            w = self.discount ** np.arange(n - 1, -1, -1, dtype=float)
            model.accumulate(stats, idx, r, x, weights=w)
        else:
            model.accumulate(stats, idx, r, x)
        self.stats = stats
        self.n_updates += n
        if self.window is not None:
            for i in range(n):
                self.buffer.append((int(idx[i]), float(r[i]), None if x is None else x[i]))
            extra = len(self.buffer) - self.window
            if extra > 0:
                self._evict(extra, refresh=False)
        self.posterior = model.posterior(self.stats)

    def observe_delta(self, delta: Stats, n: int = 1) -> None:
        """Learn a validated statistics delta (a ranking's slot rewards) counting as ``n``
        observations (``discount`` applied once before it); not with ``window``, whose buffer
        keeps ``(arm, reward)`` observations."""
        if self.window is not None:
            raise ConfigurationError("window is not supported for ranking updates; use discount")
        stats = self.stats
        if self.discount is not None and self.discount < 1.0:
            stats = self.model.decay(stats, self.discount)
        self.stats = stats + delta
        self.posterior = self.model.posterior(self.stats)
        self.n_updates += n

    def _evict(self, count: int, refresh: bool = True) -> None:
        old = [self.buffer.popleft() for _ in range(count)]
        if isinstance(old[0][1], dict):  # several metrics: each entry's metrics leave
            model: Any = self.model
            one, minus = np.zeros(1, dtype=np.intp), -np.ones(1)
            for a, rewards, x in old:
                one[0] = a
                for i, r in rewards.items():
                    model.accumulate_metric(self.stats, i, one, np.array([r]),
                                            None if x is None else x[None, :], weights=minus)
            if refresh:
                self.posterior = model.posterior(self.stats)
            return
        arms = np.array([o[0] for o in old], dtype=np.intp)
        rewards = np.array([o[1] for o in old], dtype=float)
        ctx = None if old[0][2] is None else np.stack([o[2] for o in old])  # type: ignore[misc]
        self.model.accumulate(self.stats, arms, rewards, ctx, weights=-np.ones(count))
        if refresh:
            self.posterior = self.model.posterior(self.stats)

    def decay(self, gamma: float) -> None:
        """Multiply all statistics by ``gamma`` in (0, 1] (e.g. time-based forgetting)."""
        g = float(gamma)
        if not (0.0 < g <= 1.0):
            raise ConfigurationError(f"gamma == {gamma!r}, must be > 0 and <= 1")
        self.stats = self.model.decay(self.stats, g)
        self.posterior = self.model.posterior(self.stats)

    # ----- arm layout ---------------------------------------------------------------------
    def append_arm(self) -> None:
        """A new last arm with no observations (its prior only)."""
        self.stats = self.stats.append_arms(self.model.init_stats(1))
        self.posterior = self.model.posterior(self.stats)

    def remove_arm(self, a: int) -> None:
        """Drop arm ``a``'s statistics; its observations leave the window buffer."""
        keep = [i for i in range(self.stats.n_arms) if i != a]
        self.stats = self.stats.take_arms(keep)
        self.buffer = deque((i - (i > a), r, x) for i, r, x in self.buffer if i != a)
        self.posterior = self.model.posterior(self.stats)

    # ----- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``discount``, ``window``, ``n_updates``, ``stats``, ``window_buffer``."""
        return {
            "discount": self.discount,
            "window": self.window,
            "n_updates": self.n_updates,
            "stats": self.stats.to_dict(),
            "window_buffer": [
                [a, [[i, v] for i, v in r.items()] if isinstance(r, dict) else r,
                 None if x is None else [float(v) for v in x]] for a, r, x in self.buffer
            ],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Take the statistics, update count and window buffer of :meth:`to_dict` output
        (:class:`SerializationError` when a statistic is missing or has the wrong shape)."""
        stats = Stats.from_dict(data["stats"])
        for k, v in self.model.init_stats(self.stats.n_arms).items():
            if k not in stats or stats[k].shape != v.shape:
                raise SerializationError(f"statistic {k!r} is missing or has the wrong shape")
        self.stats = stats
        self.posterior = self.model.posterior(stats)
        self.n_updates = int(data.get("n_updates", 0))
        for a, r, x in data.get("window_buffer", []):
            # several metrics: [[metric index, reward], ...] per entry
            value: Any = ({int(i): float(v) for i, v in r} if isinstance(r, list)
                          else float(r))
            self.buffer.append((int(a), value, None if x is None else np.asarray(x, float)))
