"""The suite's thread runner loses no worker's failure."""

from __future__ import annotations

import threading

import pytest

from concurrency import in_threads


def test_results_come_back_in_worker_order() -> None:
    assert in_threads(lambda i: i * i, 5) == [0, 1, 4, 9, 16]
    assert in_threads(lambda i: -i, 3, together=False) == [0, -1, -2]


def test_a_failing_worker_fails_the_test_and_names_every_failure() -> None:
    def work(i: int) -> int:
        if i in (1, 3):
            raise KeyError(f"worker {i}")
        return i

    with pytest.raises(KeyError, match="worker 1") as info:
        in_threads(work, 4)
    assert info.value.__notes__ == ["worker 1 of 4 failed: KeyError('worker 1')",
                                    "worker 3 of 4 failed: KeyError('worker 3')"]


def test_a_worker_still_running_after_the_timeout_fails_the_test() -> None:
    release = threading.Event()
    try:
        with pytest.raises(AssertionError, match=r"workers \[0\] still running"):
            in_threads(lambda i: release.wait(30) if i == 0 else None, 2,
                       together=False, timeout=0.2)
    finally:
        release.set()
