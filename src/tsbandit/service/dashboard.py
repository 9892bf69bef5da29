"""``GET /dashboard``: a live page of the bandits, served by the service itself.

The page is static HTML, CSS and JavaScript from ``service/static/`` (no CDN, no third-party
library: the charts are inline SVG drawn by ``dashboard.js``, so the page works on a machine
without internet access). It reads the public API in the browser and redraws itself every
``dashboard_refresh_seconds``:

* ``GET /v1/bandits`` -- the list of bandits;
* ``GET /v1/bandits/{name}`` and ``/stats`` -- per arm the posterior density (the exact Beta
  density for Beta-Bernoulli arms; a normal approximation from the mean and the 95% interval
  for the other models, and the page says so), the reward rate with its credible interval, the
  probability of being best;
* ``GET /v1/bandits/{name}/traffic`` (here) -- decisions per arm over time, from the event
  log, so the same for every worker;
* ``GET /v1/bandits/{name}/report`` -- the A/B report and its SRM check, shown when the
  endpoint answers 200 and hidden otherwise;
* for a bandit with several metrics (``dashboard_metrics.js``): every metric's posterior per
  arm, each constraint's probability of holding per arm, and the Pareto front of the arms'
  posterior means (the objective against the first constraint's metric) as a plot.

When reads need the API key (``open_reads=false``) the page asks for it once and keeps it in the
browser tab's ``sessionStorage``.

>>> from fastapi.testclient import TestClient
>>> from tsbandit.service import Settings, create_app
>>> app = create_app(Settings(store="memory://", seed=0, log_format="none"))
>>> with TestClient(app) as client:
...     page = client.get("/dashboard")
...     series = client.get("/v1/bandits/credit_card_offers/traffic").json()
>>> page.status_code, "dashboard.js" in page.text, series["bandit"]
(200, True, 'credit_card_offers')
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from .deps import EngineDep, RouteTable
from .errors import ERROR_RESPONSES, ErrorResponse
from .settings import Settings
from .traffic import TrafficFold

__all__ = ["TrafficOut", "install_dashboard", "table"]

_STATIC = {"dashboard.js": "text/javascript; charset=utf-8",
           "dashboard_metrics.js": "text/javascript; charset=utf-8",
           "dashboard.css": "text/css; charset=utf-8"}
_CACHE_SECONDS = 1.0


def _asset(name: str) -> bytes:
    return resources.files("tsbandit.service").joinpath("static").joinpath(name).read_bytes()


class TrafficOut(BaseModel):
    """Decisions and rewards per arm in equal time buckets (lists of shape
    ``(n_buckets, n_arms)``), from the bandit's event log."""

    bandit: str
    computed_at: float = Field(description="When the series was read (epoch seconds); a "
                               "worker reuses it for a second.")
    arms: list[str]
    start: float = Field(description="Epoch seconds at the start of the first bucket.")
    bucket_seconds: float
    times: list[float] = Field(description="Start of each bucket (epoch seconds).")
    decisions: list[list[int]]
    rewards: list[list[int]]
    expired: list[list[int]]
    reward_sums: list[list[float]]
    totals: dict[str, list[int]]


class _SeriesCache:
    """Per-worker cache of traffic series: one log scan at a time per key, and reused for
    ``max(min_seconds, cost_factor x the scan's duration)`` -- so however many dashboards are
    open, scanning a long log takes at most about 1/cost_factor of one thread."""

    def __init__(self, min_seconds: float = 1.0, cost_factor: float = 20.0,
                 max_seconds: float = 300.0) -> None:
        self.min_seconds, self.cost_factor, self.max_seconds = (min_seconds, cost_factor,
                                                                max_seconds)
        self._items: dict[tuple[Any, ...], tuple[float, float, dict[str, Any]]] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: tuple[Any, ...],
                       compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # concurrent requests for the same series wait for one scan
            hit = self._items.get(key)
            if hit is not None and time.monotonic() < hit[0] + hit[1]:
                return hit[2]
            start = time.monotonic()
            value = compute()
            cost = time.monotonic() - start
            ttl = min(max(self.min_seconds, self.cost_factor * cost), self.max_seconds)
            with self._lock:
                if len(self._items) > 256:
                    self._items.clear()
                self._items[key] = (start, ttl, value)
            return value


table = RouteTable(prefix="/v1", responses=ERROR_RESPONSES, tags=["dashboard"])
_cache = _SeriesCache(min_seconds=_CACHE_SECONDS)
# per engine (weakly: an engine's folds go with it, and a new engine never sees them)
_folds: weakref.WeakKeyDictionary[Any, dict[str, TrafficFold]] = weakref.WeakKeyDictionary()
_folds_lock = threading.Lock()


def _fold(engine: Any, name: str) -> TrafficFold:
    """This worker's fold of the bandit's event log (one per engine and bandit)."""
    with _folds_lock:
        folds = _folds.setdefault(engine, {})
        fold = folds.get(name)
        if fold is None:
            if len(folds) > 256:
                folds.clear()
            fold = folds[name] = TrafficFold()
        return fold


#: largest ``window`` of the traffic route, seconds (~317 years: ``now - window`` and the bucket
#: arithmetic stay ordinary floats; 1.8e308 answered 500)
MAX_WINDOW = 1e10


@table.route("GET", "/bandits/{name}/traffic", "read", operation_id="get_traffic",
             response_model=TrafficOut,
             responses={404: {"model": ErrorResponse, "description": "Unknown bandit"}})
def traffic(
    name: Annotated[str, Path(description="Bandit name")],
    engine: EngineDep,
    buckets: Annotated[int, Query(ge=1, le=1000, description="At most this many buckets.")] = 60,
    window: Annotated[float | None, Query(gt=0, le=MAX_WINDOW, allow_inf_nan=False,
                                          description="Only the last this many seconds "
                                                      "(at most 1e10, ~317 years).")] = None,
) -> Any:
    """Traffic over time: decisions and rewards per arm, bucketed, from the event log (the
    same answer from every worker). Each worker folds the log incrementally (only the events
    appended since its last read) and reuses a series for a second (``computed_at`` says
    when)."""
    def compute() -> dict[str, Any]:
        spec = engine.get_bandit(name)
        now = engine.clock()
        fold = _fold(engine, name)
        fold.update(engine, name)
        series = fold.series(spec.arms, now=now, buckets=buckets, window=window)
        return {"bandit": name, "computed_at": now, **series}

    return _cache.get_or_compute((id(engine), name, buckets, window), compute)


def _page(settings: Settings) -> str:
    template = _asset("dashboard.html").decode("utf-8")
    return (template.replace("{{REFRESH}}", f"{settings.dashboard_refresh_seconds:g}")
            .replace("{{DEFAULT_BANDIT}}", html.escape(settings.default_bandit_name, quote=True)))


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    """``/dashboard`` and its assets (open: they hold no data), and the traffic endpoint."""
    page = _page(settings)
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'")}

    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    async def asset(name: str) -> Response:
        media = _STATIC.get(name)
        if media is None:
            raise HTTPException(404, f"no dashboard asset {name!r}")
        return Response(_asset(name), media_type=media,
                        headers={"Cache-Control": "public, max-age=300"})

    app.add_api_route("/dashboard", dashboard, methods=["GET"], tags=["dashboard"],
                      summary="The dashboard (HTML)", response_class=HTMLResponse,
                      operation_id="get_dashboard")
    app.add_api_route("/dashboard/static/{name}", asset, methods=["GET"],
                      include_in_schema=False)
    table.install(app, settings)
