"""Traffic over time, derived from a bandit's event log.

The event log lives in the shared store, so every worker computes the same series: decisions
and rewards per arm in equal time buckets. (Per-process counters would show one worker's
traffic only.) The whole log is read, so the cost grows with its length: about 10 us per
event on SQLite, 1 s per 100,000 events (``benchmarks/bench_observability.py``). The endpoint
(``service/dashboard.py``) therefore reuses a series for 20 times as long as reading it took.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["nice_bucket", "traffic_series"]

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
    index = {a: i for i, a in enumerate(arms)}
    names = list(arms)
    rows: list[tuple[float, int, int, float]] = []  # (t, kind, arm, reward)
    kinds = {"decision": 0, "reward": 1, "expired": 2}
    for e in events:
        kind = kinds.get(e.get("type", ""))
        t = e.get("timestamp")
        if kind is None or not isinstance(t, (int, float)):
            continue
        if since is not None and t < since:
            continue
        arm = str(e.get("arm"))
        i = index.get(arm)
        if i is None:
            i = index[arm] = len(names)
            names.append(arm)
        r = e.get("reward")
        rows.append((float(t), kind, i, float(r) if isinstance(r, (int, float)) else 0.0))
    first = min((r[0] for r in rows), default=now) if since is None else since
    end = max(now, max((r[0] for r in rows), default=now))
    width = nice_bucket(max(end - first, 1.0), buckets)
    start = math.floor(first / width) * width
    n = int((end - start) // width) + 1
    k = len(names)
    grids = [[[0] * k for _ in range(n)] for _ in range(3)]
    sums = [[0.0] * k for _ in range(n)]
    for t, kind, i, r in rows:
        b = min(int((t - start) // width), n - 1)
        grids[kind][b][i] += 1
        if kind == 1:
            sums[b][i] += r
    return {"arms": names, "start": start, "bucket_seconds": width,
            "times": [start + j * width for j in range(n)],
            "decisions": grids[0], "rewards": grids[1], "expired": grids[2],
            "reward_sums": sums,
            "totals": {"decisions": [sum(row[i] for row in grids[0]) for i in range(k)],
                       "rewards": [sum(row[i] for row in grids[1]) for i in range(k)]}}
