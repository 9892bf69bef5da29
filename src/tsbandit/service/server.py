"""``serve()``: run the service under uvicorn (what ``tsbandit serve`` calls)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["serve"]

APP_FACTORY = "tsbandit.service.app:app_from_env"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    store_url: str | None = None,
    *,
    api_key: str | None = None,
    open_reads: bool | None = None,
    max_staleness_ms: float | None = None,
    default_bandit: bool | None = None,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve the API with uvicorn until interrupted.

    Arguments left at ``None`` come from ``TSBANDIT_*`` environment variables (or the defaults
    of :class:`~tsbandit.service.settings.Settings`: store ``sqlite:///tsbandit.db``). The
    given ones are put into the environment, which is how they reach every worker process:
    each worker builds its app with ``app_from_env()`` (uvicorn's ``factory=True``).

    Parameters
    ----------
    host, port
        Where to listen.
    workers
        Worker processes (each its own engine over the shared store; use SQLite or Redis with
        more than one -- ``memory://`` is per process).
    store_url
        ``sqlite:///path.db``, ``redis://host:6379/0``, a Redis Cluster URL or ``memory://``.
    api_key
        Require ``Authorization: Bearer <api_key>`` on mutating endpoints.
    open_reads
        With an API key: whether read-only endpoints stay open (default True).
    max_staleness_ms
        Let a worker reuse a snapshot this many milliseconds old (default 0).
    default_bandit
        Create the tutorial's bandit at start-up (default True).
    log_level, access_log
        uvicorn's log level and access log (off by default: structured request logs are the
        service's job).
    """
    import uvicorn

    from ..errors import ConfigurationError
    from .settings import Settings
    from .threads import blas_env

    overrides = {"store": store_url, "api_key": api_key, "open_reads": open_reads,
                 "max_staleness_ms": max_staleness_ms, "default_bandit": default_bandit}
    for field, value in overrides.items():
        if value is not None:
            os.environ[f"TSBANDIT_{field.upper()}"] = str(value)
    settings = Settings()  # fail here, once, on a bad setting rather than in every worker
    blas_env(settings.blas_threads)  # worker processes start with that many BLAS threads
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(f"workers == {workers!r}, must be an integer >= 1")
    from .protocol import protocol_options

    with _multiprocess_metrics(workers):
        # uvicorn's protocol, but what it refuses before the app (a 100,000-byte URL) is
        # answered in the service's JSON error shape too (service/protocol.py)
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=access_log, lifespan="on",
                    **protocol_options())


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """With several workers, prometheus-client's multiprocess mode (see service/metrics.py):
    ``PROMETHEUS_MULTIPROC_DIR`` is a fresh temporary directory (removed at exit) unless it is
    set, in which case the samples of a previous run are deleted from it first."""
    if workers < 2:
        yield
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    with tempfile.TemporaryDirectory(prefix="tsbandit-metrics-") as tmp:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        try:
            yield
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
