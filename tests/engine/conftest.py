"""Engine fixtures: the engine suite runs on every store -- Memory, SQLite (a real file), the
Redis at 127.0.0.1:6379 and a real 3-node Redis Cluster (see :mod:`stores.backends`).

Outside CI a missing Redis skips the Redis variants with a visible reason; under ``CI=true`` it
fails them.
"""

from __future__ import annotations

import pytest

from stores.backends import Backend
from tsbandit.stores import Store

# ``clock``, ``backend`` (every store kind) and ``shared_backend`` come from tests/conftest.py.


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
