"""Engine fixtures: the engine suite runs on every store -- Memory, SQLite (a real file), the
Redis at 127.0.0.1:6379 and a real 3-node Redis Cluster (see :mod:`stores.backends`).

Outside CI a missing Redis skips the Redis variants with a visible reason; under ``CI=true`` it
fails them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.backends import ALL_KINDS, SHARED_KINDS, Backend, make_backend
from tsbandit.stores import Store


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=ALL_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = make_backend(request.param, request, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=SHARED_KINDS)
def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Stores several clients and processes share (SQLite, Redis, Cluster)."""
    b = make_backend(request.param, request, tmp_path)
    yield b
    b.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
