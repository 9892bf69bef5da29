"""Store fixtures: one contract suite over Memory, SQLite (a real file), Redis and a real 3-node
Redis Cluster (the server fixtures live in :mod:`stores.backends`, shared through the root
conftest). Under ``CI=true`` a missing Redis fails the Redis tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tsbandit.stores import Store

from .backends import ALL_KINDS, SHARED_KINDS, Backend, make_backend

__all__ = ["ALL_KINDS", "SHARED_KINDS", "make_backend"]

# ``backend`` and ``shared_backend`` (the store kinds above) come from tests/conftest.py.


@pytest.fixture(params=SHARED_KINDS[1:])
def shared_redis_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Redis and Redis Cluster backends."""
    b = make_backend(request.param, request, tmp_path)
    yield b
    b.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
