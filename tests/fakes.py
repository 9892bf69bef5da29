"""Test doubles shared by the engine, stores and service suites."""

from __future__ import annotations


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
