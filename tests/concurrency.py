"""Run a test's workers in threads, so that none of their failures is lost.

An exception raised in a plain ``threading.Thread`` is printed and dropped: a test that only
counts what its workers left behind can pass with a worker dead. :func:`in_threads` returns
every worker's result in order and raises the first worker's error (with the others attached
as notes), and fails when a worker is still running after ``timeout`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_threads(work: Callable[[int], T], n: int, *, together: bool = True,
               timeout: float = 120.0) -> list[T]:
    """``[work(0), ..., work(n - 1)]``, each run in its own thread.

    ``together``: the workers wait at a barrier and start at the same moment (the point of most
    races); otherwise each starts as soon as its thread does.

    >>> in_threads(lambda i: i * i, 4)
    [0, 1, 4, 9]
    """
    barrier = threading.Barrier(n) if together else None
    results: list[T | None] = [None] * n
    errors: list[tuple[int, BaseException]] = []

    def run(i: int) -> None:
        try:
            if barrier is not None:
                barrier.wait(timeout)
            results[i] = work(i)
        except BaseException as exc:  # raised in the test's thread below
            errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = [i for i, t in enumerate(threads) if t.is_alive()]
    if stuck:
        raise AssertionError(f"workers {stuck} still running after {timeout} s")
    if errors:
        first = min(errors, key=lambda e: e[0])[1]
        for i, exc in sorted(errors, key=lambda e: e[0]):
            first.add_note(f"worker {i} of {n} failed: {exc!r}")
        raise first
    return results  # type: ignore[return-value]  # every slot was set (no worker failed)
