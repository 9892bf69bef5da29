"""Shared test configuration: hypothesis profiles (deterministic in CI)."""

from __future__ import annotations

import os

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
from stores.backends import redis_cluster, redis_server, redis_url  # noqa: E402, F401
