"""Prometheus metrics (``GET /metrics``) and the structured event/access logs.

=====================================================  =========  ===============================
metric                                                 type       labels
=====================================================  =========  ===============================
``tsbandit_decisions_total``                           counter    bandit, arm (first slot)
``tsbandit_rewards_total``                             counter    bandit, arm, status
                                                                  (``applied`` / ``duplicate``
                                                                  / ``arm_retired``)
``tsbandit_rewards_refused_total``                     counter    bandit, reason (``expired``:
                                                                  arrived after the window)
``tsbandit_decisions_expired_total``                   counter    bandit, arm (settled by the
                                                                  sweep, default reward or none)
``tsbandit_http_request_duration_seconds``             histogram  method, route (template),
                                                                  status
``tsbandit_store_operation_duration_seconds``          histogram  operation (read, put_pending,
                                                                  apply_reward...)
``tsbandit_store_errors_total``                        counter    operation, error
=====================================================  =========  ===============================

Decisions and rewards are counted where they become durable: the engine is built over an
observed store (:mod:`tsbandit.stores.observed`, ``Engine.open(url, observer=...)``) that
reports to a :class:`MetricsObserver`, so a count moves only when the store committed the
write, whatever route (``/v1``, the tutorial's ``/recommend``, batches) or the sweeper made it.
The same observer writes the JSON log line of each decision and reward, with its
``decision_id``.

Several workers (``tsbandit serve --workers N``) are separate processes, each with its own
counters. ``serve()`` then turns on prometheus-client's multiprocess mode (it sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory unless it is set): every worker writes its
samples to memory-mapped files there and ``/metrics``, whichever worker answers, reports the sum
over all workers. Run uvicorn or gunicorn yourself with several workers? Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before they start. Without it each worker
reports only its own counts, and a scrape sees whichever worker answered.

>>> from fastapi.testclient import TestClient
>>> from tsbandit.service import Settings, create_app
>>> app = create_app(Settings(store="memory://", seed=0, log_format="none"))
>>> with TestClient(app) as client:
...     _ = client.get("/recommend/c1")
...     text = client.get("/metrics").text
>>> 'tsbandit_decisions_total{arm=' in text
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine import StoreObserver
from .logs import DeferredLines, access_log, event_log

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["MetricsMiddleware", "MetricsObserver", "RequestTimer", "ServiceMetrics",
           "install_metrics", "multiprocess_dir"]

#: Request latencies: 250 us to 10 s (an in-process decision is ~0.5-1 ms).
HTTP_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 10.0)
#: Store round trips: 50 us to 5 s.
STORE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                 0.1, 0.25, 1.0, 5.0)


def multiprocess_dir() -> str | None:
    """The prometheus-client multiprocess directory, when multiprocess mode is on."""
    return (os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            or os.environ.get("prometheus_multiproc_dir") or None)


class ServiceMetrics:
    """The service's metrics, in a registry of their own (one per app: no import-time state).

    Label children are cached, so counting a decision is a dict lookup and an increment.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter("tsbandit_decisions_total", "Decisions recorded (first-slot "
                                 "arm).", ["bandit", "arm"], registry=r)
        self.rewards = Counter("tsbandit_rewards_total", "Rewards received: applied, or a "
                               "duplicate that changed nothing.", ["bandit", "arm", "status"],
                               registry=r)
        self.refused = Counter("tsbandit_rewards_refused_total", "Rewards refused; "
                               "reason=expired: after the decision's reward window.",
                               ["bandit", "reason"], registry=r)
        self.expired = Counter("tsbandit_decisions_expired_total", "Decisions whose window "
                               "passed without a reward, settled by the sweep.",
                               ["bandit", "arm"], registry=r)
        self.http = Histogram("tsbandit_http_request_duration_seconds", "HTTP request "
                              "latency, by route template.", ["method", "route", "status"],
                              buckets=HTTP_BUCKETS, registry=r)
        self.store = Histogram("tsbandit_store_operation_duration_seconds", "Store call "
                               "latency (one round trip for most operations).", ["operation"],
                               buckets=STORE_BUCKETS, registry=r)
        self.store_errors = Counter("tsbandit_store_errors_total", "Store calls that failed "
                                    "(unavailable backend, or an unexpected exception).",
                                    ["operation", "error"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}
        #: decision and reward lines, written after the response of the request they came in
        self.lines = DeferredLines(event_log)
        if multiprocess_dir() is None:
            from prometheus_client import PlatformCollector, ProcessCollector

            ProcessCollector(registry=r)
            PlatformCollector(registry=r)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached."""
        key = (id(metric), *labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format (summed over workers in multiprocess mode)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if multiprocess_dir() is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# ----- HTTP ------------------------------------------------------------------------------------
class RequestTimer:
    """Times a request into the histogram, writes its access-log line and the event lines
    held while it was in flight (shared by :class:`MetricsMiddleware` and the fast path)."""

    def __init__(self, metrics: ServiceMetrics, log_requests: bool = True) -> None:
        self.metrics = metrics
        self.log_requests = log_requests

    def begin(self) -> float:
        """A request starts: its start time (``perf_counter``)."""
        self.metrics.lines.begin()
        return time.perf_counter()

    def done(self, scope: Scope, status: int, start: float) -> None:
        """The request begun at ``start`` was answered with ``status``."""
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope["method"]
        self.metrics.child(self.metrics.http, method, template, str(status)).observe(elapsed)
        access = None
        if self.log_requests and access_log.isEnabledFor(20):
            access = (access_log, "request", {
                "event": "request", "method": method, "path": scope["path"],
                "route": template, "status": status,
                "duration_ms": round(elapsed * 1000, 3)})
        # the decision and reward lines held meanwhile, now the answer is out, then this one
        self.metrics.lines.end(access)

    def cancel(self) -> None:
        """A request begun is handed on to be timed elsewhere (the fast path's fallback)."""
        self.metrics.lines.end()


class MetricsMiddleware:
    """Pure-ASGI: time every request into the histogram and write its access-log line.

    The ``route`` label is the matched route's template (``/v1/bandits/{name}/decisions``), never
    the raw path, so the label set stays bounded; unmatched paths count as ``<unmatched>``.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, log_requests: bool = True) -> None:
        self.app = app
        self.timer = RequestTimer(metrics, log_requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = self.timer.begin()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.timer.done(scope, status, start)


# ----- the store -------------------------------------------------------------------------------
class MetricsObserver(StoreObserver):
    """The service's side of the observed store: store timings and errors into the histograms
    and counters, each decision, reward, refusal and expiry counted and logged (JSON line with
    its ``decision_id``) once the store committed it."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def timed(self, operation: str, seconds: float) -> None:
        m = self.metrics
        m.child(m.store, operation).observe(seconds)

    def failed(self, operation: str, error: str) -> None:
        m = self.metrics
        m.child(m.store_errors, operation, error).inc()

    def decided(self, bandit: str, decision_id: str, payload: Mapping[str, Any],
                event: Mapping[str, Any] | None) -> None:
        arm = str(payload.get("arm"))
        m = self.metrics
        m.child(m.decisions, bandit, arm).inc()
        if m.lines.enabled():
            fields: dict[str, Any] = {"event": "decision", "bandit": bandit,
                                      "decision_id": decision_id, "arm": arm,
                                      "propensity": payload.get("propensity")}
            ranking = payload.get("ranking")
            if ranking is not None and len(ranking) > 1:
                fields["ranking"] = ranking
            if event is not None and "model_version" in event:
                fields["model_version"] = event["model_version"]
            m.lines.line("decision", fields)

    def rewarded(self, bandit: str, decision_id: str, arm: str, status: str, reward: Any,
                 model_version: int) -> None:
        m = self.metrics
        m.child(m.rewards, bandit, arm, status).inc()
        if m.lines.enabled():
            m.lines.line("reward", {
                "event": "reward", "bandit": bandit, "decision_id": decision_id, "arm": arm,
                "reward": reward, "status": status, "model_version": model_version})

    def refused(self, bandit: str, decision_id: str, reason: str) -> None:
        m = self.metrics
        m.child(m.refused, bandit, reason).inc()
        event_log.info("reward refused", extra={"fields": {
            "event": "reward_refused", "reason": reason, "bandit": bandit,
            "decision_id": decision_id}})

    def settled(self, bandit: str, decision_id: str, arm: str, reward: Any) -> None:
        m = self.metrics
        m.child(m.expired, bandit, arm).inc()
        event_log.info("expired", extra={"fields": {
            "event": "expired", "bandit": bandit, "decision_id": decision_id, "arm": arm,
            "reward": reward}})


def install_metrics(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """``GET /metrics`` (a read endpoint: open unless ``open_reads`` is off with a key) and the
    timing middleware."""
    from .deps import auth

    def endpoint() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    options = auth(settings, "read")
    responses = {200: {"description": "The Prometheus text exposition format.",
                       "content": {"text/plain": {"schema": {"type": "string"}}}},
                 **options.pop("responses", {})}
    app.add_api_route("/metrics", endpoint, methods=["GET"], tags=["observability"],
                      summary="Prometheus metrics", operation_id="get_metrics",
                      response_class=PlainTextResponse, responses=responses, **options)
    app.add_middleware(MetricsMiddleware, metrics=metrics, log_requests=settings.log_requests)
