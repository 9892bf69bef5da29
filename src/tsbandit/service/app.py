"""The application factory.

>>> from fastapi.testclient import TestClient
>>> from tsbandit.service import Settings, create_app
>>> app = create_app(Settings(store="memory://", seed=0, log_format="none"))
>>> with TestClient(app) as client:
...     offer = client.get("/recommend/cust_1").json()["offer"]
...     client.post("/reward", json={"customer_id": "cust_1", "arm": offer, "reward": 1}).json()[
...         "status"]
'updated'

Nothing happens at import: :func:`create_app` builds an app from explicit settings, and
:func:`app_from_env` (uvicorn's ``factory=True`` target) reads them from ``TSBANDIT_*``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import compile_path

from .. import __version__
from ..engine import Engine, kernels_status, load_kernels
from ..errors import StoreUnavailableError
from . import report, routes, tutorial
from .deps import EngineDep, offloaded
from .errors import error_json, install_error_handlers
from .fastpath import FastPathApp, install_fast_routes
from .logs import install_logging
from .middleware import BodyLimitMiddleware
from .openapi import install_openapi
from .runtime import Runtime
from .schemas import HealthOut, HealthUnavailableOut
from .settings import Settings
from .threads import limit_blas_threads

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("tsbandit.service")

_DESCRIPTION = """Thompson-sampling decision service.

Every error is `{"error": {"code": "...", "detail": "..."}}` with a stable code.
When `TSBANDIT_API_KEY` is set, mutating endpoints and reads of personal data (decisions,
events) need `Authorization: Bearer <key>`.
"""


def _backend(url: str) -> str:
    return url.split(":", 1)[0] if ":" in url else url


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings
        Service settings (default: read from ``TSBANDIT_*`` environment variables).
    engine
        An engine to use instead of opening ``settings.store`` (tests: a fake clock, a
        MemoryStore). The app does not close a store it was given. With metrics on, the app
        uses the engine's observed twin (``engine.observed(...)``): calls made through
        ``engine`` itself are not counted.
    """
    settings = Settings() if settings is None else settings
    install_logging(settings.log_format, settings.log_level)
    metrics = None
    observer = None
    if settings.metrics:  # the engine's store is observed: counts decisions, rewards, timings
        from .metrics import MetricsObserver, ServiceMetrics

        metrics = ServiceMetrics()
        observer = MetricsObserver(metrics)
    runtime = Runtime(settings, engine, observer=observer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # engine calls run in the loop's executor (see deps.offloaded): size it here
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="tsbandit")
        loop.set_default_executor(executor)
        blas = limit_blas_threads(settings.blas_threads)  # see service/threads.py

        frozen = settings.gc_freeze

        def kernels_ready() -> None:
            log.info("compiled kernels: %s", kernels_status())
            if frozen:
                gc.freeze()  # the kernels' long-lived objects too (see below)

        def start() -> None:
            # The optional compiled kernels (tsbandit[fast]) load, or compile, in a background
            # thread (0.2-1 s from the disk cache, ~3 s or more the first time): the port opens
            # without waiting, decisions run on the NumPy path meanwhile (the same draws and
            # choices) and take the kernels once they are ready.
            load_kernels(on_ready=kernels_ready)
            try:
                runtime.engine  # noqa: B018 -- open the store now, not on the first request
                if settings.default_bandit:
                    runtime.ensure_default_bandit()
            except StoreUnavailableError as exc:  # serve anyway: 503 until the store is back
                log.warning("store unavailable at start-up (%s); will retry on use", exc)

        await loop.run_in_executor(None, start)
        sweeper = None
        if settings.sweep_interval > 0:  # settle expired decisions, purge, trim (sweeper.py)
            from .sweeper import Sweeper

            sweeper = Sweeper(lambda: runtime.engine, settings.sweep_interval,
                              limit=settings.sweep_limit, purge=settings.sweep_purge)
            sweeper.start()
        app.state.sweeper = sweeper
        if frozen:
            # Everything alive now (modules, the app, the store's client) lives as long as the
            # worker: move it out of the cyclic collector's reach, so that the collections the
            # request garbage triggers stop rescanning it. Measured (one worker, Redis, wrk
            # c=16): decide p99 80-118 ms -> 11-12 ms, 1,230-1,500 -> 2,150-2,240 req/s.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if frozen:
                gc.unfreeze()  # back to the collector (an app built and stopped in a process
                # that goes on -- tests -- leaves nothing pinned)
            if sweeper is not None:
                sweeper.stop()
            runtime.close()
            executor.shutdown(wait=False, cancel_futures=True)
            if blas is not None:
                blas.restore_original_limits()

    app = FastPathApp(
        title="tsbandit",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc with local assets: service/docs.py
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_url_bytes=settings.max_url_bytes)
    routes.table.install(app, settings)
    report.table.install(app, settings)
    tutorial.table.install(app, settings)
    install_openapi(app, settings)  # the settings' limits in the document (service/openapi.py)
    served: dict[str, set[str]] = {"/healthz": {"GET"}}
    if settings.docs:
        from .docs import install_docs

        served.update((p, {"GET"}) for p in install_docs(app, "/openapi.json", "tsbandit"))
    tables = [routes.table, report.table, tutorial.table]
    if metrics is not None:  # /metrics and the timing middleware (outermost)
        from .metrics import install_metrics

        install_metrics(app, settings, metrics)
        served["/metrics"] = {"GET"}
    if settings.dashboard:
        from . import dashboard

        dashboard.install_dashboard(app, settings)
        served["/dashboard"] = {"GET"}
        served["/dashboard/static/{name}"] = {"GET"}
        tables.append(dashboard.table)
    for table in tables:
        for path, methods in table.methods().items():
            served.setdefault(path, set()).update(methods)
    app.state.allowed = [(compile_path(p)[0], m) for p, m in served.items()]
    # the hottest routes' fast doors (service/fastpath.py), in front of the middleware stack
    if settings.fast_path:
        timer = None
        if metrics is not None:
            from .metrics import RequestTimer

            timer = RequestTimer(metrics, settings.log_requests)
        install_fast_routes(app, settings, routes.fast, tutorial.fast, timer=timer)

    @app.get("/healthz", response_model=HealthOut, response_model_exclude_none=True,
             tags=["health"], operation_id="get_health",
             responses={503: {"model": HealthUnavailableOut,
                              "description": "Store unreachable, or a Redis Cluster not ok"}})
    @offloaded
    def healthz(engine: EngineDep) -> Any:
        """Liveness and store health: 200 when the store can serve, 503 otherwise (on a Redis
        Cluster: every node that answers reports ``cluster_state:ok`` and 16384 slots served,
        and every primary answers; the cluster's state is in the body either way)."""
        try:
            health = engine.health()
        except StoreUnavailableError as exc:
            return error_json(503, exc.code, str(exc), {"Retry-After": "1"})
        cluster = ({k: v for k, v in health.items() if k != "ok"}
                   if "cluster_state" in health else None)
        if not health.get("ok", False):
            detail = "the store answers but cannot serve every request"
            if cluster is not None:
                detail = (f"Redis Cluster not ok: cluster_state:{cluster['cluster_state']}, "
                          f"{cluster['cluster_slots_ok']} of 16384 slots served, "
                          f"{cluster['primaries_unreachable']} primaries unreachable")
            return JSONResponse({"error": {"code": StoreUnavailableError.code, "detail": detail},
                                 "cluster": cluster}, status_code=503,
                                headers={"Retry-After": "1"})
        return {"status": "ok", "store": _backend(settings.store), "reachable": True,
                "cluster": cluster}
    return app


def app_from_env() -> FastAPI:
    """The app with settings from the environment (``uvicorn --factory`` target)."""
    return create_app(Settings())

