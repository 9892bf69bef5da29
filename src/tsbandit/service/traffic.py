"""Traffic over time, derived from a bandit's event log.

The event log lives in the shared store, so every worker computes the same series: decisions
and rewards per arm in equal time buckets. (Per-process counters would show one worker's
traffic only.) Reading the whole log costs about 10 us per event on SQLite, 1 s per 100,000
events (``benchmarks/bench_observability.py``), so the endpoint (``service/dashboard.py``) keeps
a :class:`TrafficFold` per bandit: counts per (time bin, kind, arm), folded from the log
incrementally through the event log's cursor (:meth:`Engine.read_events
<tsbandit.engine.Engine.read_events>`): each request reads only the events appended since the
last one.

>>> events = [{"type": "decision", "timestamp": 10.0, "arm": "a"},
...           {"type": "decision", "timestamp": 11.0, "arm": "b"},
...           {"type": "reward", "timestamp": 12.0, "arm": "b", "reward": 1.0},
...           {"type": "decision", "timestamp": 70.0, "arm": "b"}]
>>> out = traffic_series(events, ["a", "b"], now=70.0, buckets=2)
>>> out["bucket_seconds"], out["decisions"], out["rewards"]
(30.0, [[1, 1], [0, 0], [0, 1]], [[0, 1], [0, 0], [0, 0]])
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..events import Event, ExpiredEvent, RewardEvent, iter_events

__all__ = ["EventReader", "TrafficFold", "nice_bucket", "traffic_series"]


class EventReader(Protocol):
    """What a :class:`TrafficFold` reads: an :class:`~tsbandit.engine.Engine` (or a store)."""

    def read_events(self, name: str, *, after: str | None = None, limit: int = 1000) -> Any:
        """A page of events after the cursor ``after``: ``.events`` and ``.cursor``."""
        ...

_NICE = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
         86400, 172800, 604800)


def nice_bucket(span: float, buckets: int) -> float:
    """The smallest round width (1 s, 2 s, 5 s ... 1 h ... 1 week) giving at most ``buckets``
    buckets over ``span`` seconds."""
    want = span / max(int(buckets), 1)
    for w in _NICE:
        if w >= want:
            return float(w)
    return float(math.ceil(want / 604800) * 604800)


def traffic_series(events: Iterable[Mapping[str, Any]], arms: Sequence[str], *, now: float,
                   buckets: int = 60, window: float | None = None) -> dict[str, Any]:
    """Decisions (first-slot arm) and rewards per arm in equal time buckets.

    Parameters
    ----------
    events
        The event log (``type``, ``timestamp``, ``arm``, and ``reward`` for rewards), in any
        order.
    arms
        The bandit's current arms; arms met only in old events (retired) are appended.
    now
        End of the series (epoch seconds).
    buckets
        At most this many buckets (the width is rounded to a nice value, see
        :func:`nice_bucket`).
    window
        Only the last ``window`` seconds (default: since the first event).

    Returns
    -------
    dict
        ``{"arms", "start", "bucket_seconds", "times" (bucket starts), "decisions" and
        "rewards" (lists of shape (n_buckets, n_arms), counts), "reward_sums" (same shape),
        "expired" (same shape), "totals": {"decisions", "rewards"} per arm}``.
    """
    since = None if window is None else now - float(window)
    rows = [(t, kind, arm, 1, r) for t, kind, arm, r in _parse(events)
            if since is None or t >= since]
    return _series(rows, arms, now=now, buckets=buckets, since=since,
                   first=min((r[0] for r in rows), default=now),
                   last=max((r[0] for r in rows), default=now), resolution=1)


def _kind(event: Event) -> int:
    # ExpiredEvent is a RewardEvent: ask for it first
    if isinstance(event, ExpiredEvent):
        return 2
    return 1 if isinstance(event, RewardEvent) else 0


def _parse(events: Iterable[Mapping[str, Any]]) -> Iterable[tuple[float, int, str, float]]:
    """``(timestamp, kind, arm, reward)`` of the decision, reward and expiry events (read
    through :mod:`tsbandit.events`; malformed ones are passed over: a dashboard goes on)."""
    for e in iter_events(events, skip_malformed=True):
        t = e.timestamp
        if not isinstance(t, (int, float)):
            continue
        r = getattr(e, "reward", None)
        yield float(t), _kind(e), str(e.arm), float(r) if isinstance(r, (int, float)) else 0.0


def _series(rows: Iterable[tuple[float, int, str, int, float]], arms: Sequence[str], *,
            now: float, buckets: int, since: float | None, first: float, last: float,
            resolution: int) -> dict[str, Any]:
    """The buckets of ``(time, kind, arm, count, reward sum)`` rows, each row's time the start
    of a bin of ``resolution`` seconds (1 and exact times for raw events): the bucket width is
    a nice width that is a multiple of ``resolution``, so no bin straddles two buckets."""
    index = {a: i for i, a in enumerate(arms)}
    names = list(arms)
    first = first if since is None else since
    end = max(now, last)
    width = nice_bucket(max(end - first, 1.0), buckets)
    if width % resolution:
        # the next nice width that is a multiple of the bins' (one always exists: every
        # resolution divides 604800, and widths past it are multiples of 604800)
        width = next(w for w in _NICE if w >= width and w % resolution == 0)
    start = math.floor(first / width) * width
    n = int((end - start) // width) + 1
    cells: list[tuple[int, int, int, int, float]] = []
    for t, kind, arm, count, r in rows:
        i = index.get(arm)
        if i is None:
            i = index[arm] = len(names)
            names.append(arm)
        cells.append((min(max(int((t - start) // width), 0), n - 1), kind, i, count, r))
    k = len(names)
    grids = [[[0] * k for _ in range(n)] for _ in range(3)]
    sums = [[0.0] * k for _ in range(n)]
    for b, kind, i, count, r in cells:
        grids[kind][b][i] += count
        if kind == 1:
            sums[b][i] += r
    return {"arms": names, "start": start, "bucket_seconds": float(width),
            "times": [start + j * width for j in range(n)],
            "decisions": grids[0], "rewards": grids[1], "expired": grids[2],
            "reward_sums": sums,
            "totals": {"decisions": [sum(row[i] for row in grids[0]) for i in range(k)],
                       "rewards": [sum(row[i] for row in grids[1]) for i in range(k)]}}


class TrafficFold:
    """One bandit's event log folded into counts and reward sums per (time bin, kind, arm),
    kept up to date through the log's cursor: :meth:`update` reads only the events appended
    since the last call, so a series costs what is new, not the length of the log.

    Bins are 1 s wide until there are more than ``max_bins`` of them; then they merge into
    1 min, 1 h, then 1 day bins (each width a multiple of the one before, and the series' bucket
    widths become multiples of it, so every count stays exact; a long log's finest buckets are
    the bin width). The log's oldest event is checked on every update: when it changed -- the
    bandit was deleted and re-created, or the store trimmed its log (``events_maxlen``) -- the
    fold starts over from what the log holds now. Thread-safe.

    >>> from tsbandit.engine import BanditSpec, Engine
    >>> now = [10.0]
    >>> engine = Engine.open("memory://", seed=0, clock=lambda: now[0])
    >>> _ = engine.create_bandit(BanditSpec(name="b", arms=["a", "b"]))
    >>> arms = []
    >>> for now[0] in (10.0, 11.0, 70.0):
    ...     arms.append(engine.decide("b").arm)
    >>> fold = TrafficFold(); fold.update(engine, "b")
    3
    >>> fold.series(["a", "b"], now=70.0, buckets=2)["totals"]["decisions"] == [
    ...     arms.count("a"), arms.count("b")]
    True
    """

    RESOLUTIONS = (1, 60, 3600, 86400)

    def __init__(self, *, max_bins: int = 100_000, page: int = 5000) -> None:
        self.max_bins, self.page = int(max_bins), int(page)
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, head: str | None) -> None:
        self.head = head        # cursor of the log's oldest event when the fold began
        self.cursor: str | None = None
        self.resolution = 1
        self.bins: dict[tuple[float, int, str], list[float]] = {}
        self.first = math.inf
        self.last = -math.inf
        self.events = 0

    def update(self, store: EventReader, name: str) -> int:
        """Fold the events appended since the last update (read from ``store``: the engine,
        or a store); return how many were folded."""
        with self._lock:
            head = store.read_events(name, limit=1).cursor
            if head != self.head:
                self._reset(head)
            folded = 0
            while True:
                page = store.read_events(name, after=self.cursor, limit=self.page)
                self._fold(page.events)
                folded += len(page.events)
                self.cursor = page.cursor
                if len(page.events) < self.page:
                    return folded

    def _fold(self, events: Iterable[Mapping[str, Any]]) -> None:
        res, bins = self.resolution, self.bins
        for t, kind, arm, r in _parse(events):
            self.events += 1
            self.first, self.last = min(self.first, t), max(self.last, t)
            key = (math.floor(t / res) * res, kind, arm)
            cell = bins.get(key)
            if cell is None:
                bins[key] = [1, r]
            else:
                cell[0] += 1
                cell[1] += r
        while len(self.bins) > self.max_bins and self.resolution < self.RESOLUTIONS[-1]:
            self._coarsen()

    def _coarsen(self) -> None:
        res = self.RESOLUTIONS[self.RESOLUTIONS.index(self.resolution) + 1]
        merged: dict[tuple[float, int, str], list[float]] = {}
        for (t, kind, arm), (count, r) in self.bins.items():
            cell = merged.setdefault((math.floor(t / res) * res, kind, arm), [0, 0.0])
            cell[0] += count
            cell[1] += r
        self.bins, self.resolution = merged, res

    def series(self, arms: Sequence[str], *, now: float, buckets: int = 60,
               window: float | None = None) -> dict[str, Any]:
        """:func:`traffic_series` of the folded events. With ``window``, a bin is counted
        when any of it lies inside the window (the window's start is exact to the bin width,
        1 s unless the log is long)."""
        with self._lock:
            since = None if window is None else now - float(window)
            res = self.resolution
            rows = [(t, kind, arm, int(count), r) for (t, kind, arm), (count, r)
                    in self.bins.items() if since is None or t + res > since]
            empty = self.events == 0
            return _series(rows, arms, now=now, buckets=buckets, since=since,
                           first=now if empty else self.first,
                           last=now if empty else self.last, resolution=res)
