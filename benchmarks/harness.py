"""What every benchmark shares: the machine's state, clocks, repetitions, statistics, tables
and JSON output. Standard library only (the start-up benchmark imports it too).

Conventions, the same in every script:

* every timed function is called once untimed first (``warmup``): imports, caches, compiled
  kernels;
* cases compared side by side run in the same process, their repetitions alternating
  (:func:`alternate`), so a neighbour's load on the shared machine falls on all of them alike;
* a figure is the median of the repetitions; with ``cpu=True`` it is the process CPU time and
  the best (smallest) repetition instead (:func:`pick`), which is what a loaded machine still
  measures well;
* the load average is printed before and after (:func:`load_average`);
* percentiles interpolate linearly between order statistics (NumPy's default).

Run as ``python benchmarks/NAME.py``: the script's folder is on ``sys.path``, so
``import harness`` finds this module.

>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5
>>> table = Table(Col("case", 6, align="<"), Col("us", 6, ".1f"), Col("ratio", 6))
>>> table.row("beta", 2.25, ratio(3, 2))
'beta      2.2  1.50x'
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ----- the machine ----------------------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``"0.12 0.34 0.56"``."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def limit_blas(threads: int = 1, *, load_scipy: bool = False) -> bool:
    """Limit BLAS to ``threads`` threads, as a service worker runs (and no oversubscription on a
    small machine); False when threadpoolctl is not installed. ``load_scipy`` imports SciPy's
    BLAS first, so that the limit reaches it too."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    if load_scipy:
        import scipy.linalg  # noqa: F401
    threadpool_limits(limits=threads, user_api="blas" if load_scipy else None)
    return True


@contextlib.contextmanager
def pinned(core: int) -> Iterator[bool]:
    """Run the block on one core (when this process may use it); the affinity is restored."""
    affinity = os.sched_getaffinity(0)
    if core in affinity:
        os.sched_setaffinity(0, {core})
    try:
        yield core in affinity
    finally:
        os.sched_setaffinity(0, affinity)


# ----- clocks and repetitions -----------------------------------------------------------------


def clock(cpu: bool = False) -> Callable[[], float]:
    """Seconds: the process CPU time with ``cpu``, else the wall clock."""
    return time.process_time if cpu else time.perf_counter


class Stopwatch:
    """Wall and process CPU seconds of a ``with`` block (``.wall``, ``.cpu``).

    >>> with Stopwatch() as sw:
    ...     pass
    >>> sw.wall >= 0 and sw.cpu >= 0
    True
    """

    wall: float
    cpu: float

    def __enter__(self) -> Stopwatch:
        self.wall = self.cpu = 0.0
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0


def alternate(fns: Sequence[Callable[[], Any]], repeats: int, *, warmup: int = 1,
              cpu: bool = False, per_op: bool = False,
              before: Callable[[int], object] | None = None) -> list[list[float]]:
    """Time each of ``fns`` ``repeats`` times, the repetitions alternating between them.

    Returns one list of samples per function: seconds per call, or with ``per_op``
    microseconds per operation (the function returns how many operations it ran). Each
    function first runs ``warmup`` times untimed; ``before(i)`` runs untimed before every call
    of function ``i`` (e.g. to switch a code path on).
    """
    tick = clock(cpu)
    samples: list[list[float]] = [[] for _ in fns]
    for i, fn in enumerate(fns):
        for _ in range(warmup):
            if before is not None:
                before(i)
            fn()
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if before is not None:
                before(i)
            t0 = tick()
            ops = fn()
            elapsed = tick() - t0
            samples[i].append(elapsed / ops * 1e6 if per_op else elapsed)
    return samples


def measure(fn: Callable[[], Any], repeats: int, *, warmup: int = 1, cpu: bool = False,
            per_op: bool = False) -> list[float]:
    """:func:`alternate` of one function: its samples."""
    return alternate([fn], repeats, warmup=warmup, cpu=cpu, per_op=per_op)[0]


def per_call(n: int, call: Callable[[int], object], *, warmup: int = 0,
             setup: Callable[[int], object] | None = None) -> tuple[list[float], float]:
    """Seconds of each of ``n`` calls ``call(i)`` (after ``warmup`` untimed calls), and the wall
    seconds of the timed ones in all. ``setup(i)`` runs untimed before each call and is
    excluded from that wall time too."""
    for i in range(warmup):
        if setup is not None:
            setup(i)
        call(i)
    times: list[float] = []
    start = time.perf_counter()
    for i in range(warmup, warmup + n):
        if setup is not None:
            setup(i)
        t0 = time.perf_counter_ns()
        call(i)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    wall = time.perf_counter() - start
    return times, sum(times) if setup is not None else wall


# ----- statistics -----------------------------------------------------------------------------


def pick(samples: Iterable[float], cpu: bool = False) -> float:
    """The figure of a set of repetitions: the median, or with ``cpu`` the best (minimum)."""
    values = list(samples)
    return min(values) if cpu else statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between order statistics (``numpy.percentile``)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency(seconds: Sequence[float], wall: float | None = None) -> dict[str, float]:
    """p50, p90, p99 and mean in microseconds of per-call seconds, and calls per second of
    ``wall`` (the sum of the calls when not given).

    >>> latency([1e-6, 2e-6, 3e-6])["p50_us"]
    2.0
    """
    us = [s * 1e6 for s in seconds]
    total = wall if wall is not None else sum(seconds)
    return {"per_s": len(us) / total if total > 0 else float("nan"),
            "p50_us": percentile(us, 50), "p90_us": percentile(us, 90),
            "p99_us": percentile(us, 99), "mean_us": statistics.fmean(us)}


# ----- tables and output ----------------------------------------------------------------------


def ratio(a: float, b: float, digits: int = 2, *, prefix: bool = False) -> str:
    """``a / b`` as ``"1.23x"`` (``prefix``: ``"x1.23"``); ``"-"`` when ``b`` is 0 or missing."""
    if not b or b != b:
        return "-"
    text = f"{a / b:.{digits}f}"
    return f"x{text}" if prefix else f"{text}x"


@dataclass(frozen=True)
class Col:
    """A column: title, width (0: no padding), number format and alignment."""

    title: str
    width: int = 0
    fmt: str = ""
    align: str = ">"


class Table:
    """Fixed-width rows: numbers formatted by their column's ``fmt``, strings as given,
    ``None`` as ``-``; columns joined by ``sep``."""

    def __init__(self, *cols: Col, sep: str = " ") -> None:
        self.cols = cols
        self.sep = sep

    def _cell(self, col: Col, value: object) -> str:
        if value is None:
            text = "-"
        elif isinstance(value, str):
            text = value
        else:
            text = format(value, col.fmt)
        return f"{text:{col.align}{col.width}}" if col.width else text

    def header(self) -> str:
        return self.sep.join(self._cell(c, c.title) for c in self.cols)

    def row(self, *values: object) -> str:
        return self.sep.join(self._cell(c, v) for c, v in zip(self.cols, values, strict=True))

    def rule(self, char: str = "-", extra: int = 0) -> str:
        """A line under the header: as wide as it, plus ``extra``."""
        return char * (len(self.header()) + extra)


def markdown_header(*titles: str, align: Sequence[str] = ()) -> str:
    """A Markdown table's header and separator lines; ``align`` per column (``"---"``,
    ``"---:"``), ``"---"`` by default."""
    marks = [*align, *(["---"] * (len(titles) - len(align)))]
    return "| " + " | ".join(titles) + " |\n|" + "|".join(marks) + "|"


def markdown_row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_json(path: str | Path | None, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON to ``path`` (nothing when ``path`` is None)."""
    if path is not None:
        Path(path).write_text(json.dumps(data, indent=indent))


def redis_servers() -> Any:
    """The test suite's ``tests/stores/redis_servers.py`` (it starts ``redis-server``
    processes and Redis Clusters on free ports), loaded by path: the benchmarks run beside the
    tests without making them a package."""
    path = Path(__file__).resolve().parents[1] / "tests" / "stores" / "redis_servers.py"
    spec = importlib.util.spec_from_file_location("redis_servers", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
