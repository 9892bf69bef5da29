"""Shared test configuration: hypothesis profiles (deterministic in CI), the fake clock, and the
store backends (Memory, SQLite, Redis, Cluster) the stores and engine suites run on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Redis fixtures (the standalone server at 127.0.0.1:6379, a session-wide 3-node Redis Cluster,
# private servers to kill), shared by the stores, engine and service tests.
from fakes import FakeClock  # noqa: E402
from stores.backends import (  # noqa: E402, F401
    ALL_KINDS,
    SHARED_KINDS,
    Backend,
    make_backend,
    redis_cluster,
    redis_ha_cluster,
    redis_ha_session,
    redis_server,
    redis_url,
)


@pytest.fixture
def trusted_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine's cached bandit state stays trusted unread however slow the machine, for the
    tests that count store calls (the one-second re-read, ``UNREAD_TRUST_SECONDS``, is tested
    on its own)."""
    from tsbandit.engine import state

    monkeypatch.setattr(state, "UNREAD_TRUST_SECONDS", 3600.0)


@pytest.fixture
def fresh_jit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The compiled kernels decide anew (``TSBANDIT_JIT`` unset) and are reset afterwards, so a
    test that switched them leaves the default, enabled state behind."""
    from tsbandit.policies import _jit

    monkeypatch.delenv("TSBANDIT_JIT", raising=False)
    _jit.reset()
    yield
    _jit.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=ALL_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every store kind: Memory, SQLite (a real file), Redis, the 3-node Cluster."""
    b = make_backend(request.param, request, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=SHARED_KINDS)
def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Stores several clients and processes share (SQLite, Redis, Cluster)."""
    b = make_backend(request.param, request, tmp_path)
    yield b
    b.close()
