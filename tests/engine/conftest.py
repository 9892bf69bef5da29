"""Engine fixtures: the same engine suite runs on every store available here."""

from __future__ import annotations

import importlib

import pytest


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


def _memory(tmp_path, request):
    from tsbandit.stores.memory import MemoryStore

    return MemoryStore()


def _sqlite(tmp_path, request):
    mod = importlib.import_module("tsbandit.stores.sqlite")
    return mod.SQLiteStore(f"sqlite:///{tmp_path / 'engine.db'}")


STORE_FACTORIES = {"memory": _memory, "sqlite": _sqlite}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request, tmp_path):
    try:
        s = STORE_FACTORIES[request.param](tmp_path, request)
    except ModuleNotFoundError as exc:  # a store still being written
        pytest.skip(f"store {request.param!r} not available: {exc}")
    yield s
    s.close()
