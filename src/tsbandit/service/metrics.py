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

Decisions and rewards are counted where they become durable: :class:`InstrumentedStore` wraps
the engine's store, so a count moves only when the store committed the write, whatever route
(``/v1``, the tutorial's ``/recommend``, batches) made it. The same wrapper writes the JSON log
line of each decision and reward, with its ``decision_id``.

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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import DecisionExpiredError, StoreUnavailableError, TsbanditError
from ..stores.base import NewDecision
from .logs import access_log, emit, event_log
from .runtime import Runtime

if TYPE_CHECKING:
    from ..engine import Engine
    from ..stores.base import ClaimedDecision, DeltasFn, RewardResult, Store
    from .settings import Settings

__all__ = ["InstrumentedStore", "MetricsMiddleware", "ObservedRuntime", "ServiceMetrics",
           "install_metrics", "multiprocess_dir"]

T = TypeVar("T")

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
class MetricsMiddleware:
    """Pure-ASGI: time every request into the histogram and write its access-log line.

    The ``route`` label is the matched route's template (``/v1/bandits/{name}/decisions``), never
    the raw path, so the label set stays bounded; unmatched paths count as ``<unmatched>``.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope["method"]
            self.metrics.child(self.metrics.http, method, template, str(status)).observe(elapsed)
            if self.log_requests and access_log.isEnabledFor(20):
                emit(access_log, "request", {
                    "event": "request", "method": method, "path": scope["path"],
                    "route": template, "status": status,
                    "duration_ms": round(elapsed * 1000, 3)})


# ----- the store -------------------------------------------------------------------------------
class InstrumentedStore:
    """A :class:`~tsbandit.stores.base.Store` that times every call and counts (and logs)
    the decisions, rewards and expiries that the wrapped store committed.

    Everything else is delegated unchanged; errors propagate as they were raised.
    """

    def __init__(self, inner: Store, metrics: ServiceMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name.startswith("_") or not callable(value):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, value, *args, **kwargs)

        timed.__name__ = name
        return timed

    def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        m = self.metrics
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except StoreUnavailableError:
            m.child(m.store_errors, op, "unavailable").inc()
            raise
        except TsbanditError:
            raise  # an answer (not found, expired, conflict...), not a failure of the store
        except Exception as exc:
            m.child(m.store_errors, op, type(exc).__name__).inc()
            raise
        finally:
            m.child(m.store, op).observe(time.perf_counter() - start)

    # the calls that are counted as well as timed
    def read(self, name: str) -> Any:
        return self._call("read", self.inner.read, name)

    def put_pending(self, name: str, decision_id: str, payload: Mapping[str, Any],
                    deadline: float, *, event: Mapping[str, Any] | None = None) -> None:
        self._call("put_pending", self.inner.put_pending, name, decision_id, payload, deadline,
                   event=event)
        self._decided(name, decision_id, payload, event)

    def put_pending_many(self, name: str, items: Sequence[NewDecision]) -> None:
        self._call("put_pending_many", self.inner.put_pending_many, name, items)
        for item in items:
            d = NewDecision(*item)
            self._decided(name, d.decision_id, d.payload, d.event)

    def _decided(self, name: str, decision_id: str, payload: Mapping[str, Any],
                 event: Mapping[str, Any] | None) -> None:
        arm = str(payload.get("arm"))
        self.metrics.child(self.metrics.decisions, name, arm).inc()
        if event_log.isEnabledFor(20):
            fields: dict[str, Any] = {"event": "decision", "bandit": name,
                                      "decision_id": decision_id, "arm": arm,
                                      "propensity": payload.get("propensity")}
            ranking = payload.get("ranking")
            if ranking is not None and len(ranking) > 1:
                fields["ranking"] = ranking
            if event is not None and "model_version" in event:
                fields["model_version"] = event["model_version"]
            emit(event_log, "decision", fields)

    def apply_reward(self, name: str, decision_id: str, deltas: Mapping[str, Any],
                     event: Mapping[str, Any] | None, now: float, *,
                     config_version: int | None = None) -> RewardResult:
        try:
            res = self._call("apply_reward", self.inner.apply_reward, name, decision_id, deltas,
                             event, now, config_version=config_version)
        except DecisionExpiredError:
            self.metrics.child(self.metrics.refused, name, "expired").inc()
            event_log.info("reward refused", extra={"fields": {
                "event": "reward_refused", "reason": "expired", "bandit": name,
                "decision_id": decision_id}})
            raise
        ev = event or {}
        arm = str(ev.get("arm"))
        status = "arm_retired" if res.status == "applied" and ev.get("arm_retired") else res.status
        self.metrics.child(self.metrics.rewards, name, arm, status).inc()
        if event_log.isEnabledFor(20):
            emit(event_log, "reward", {
                "event": "reward", "bandit": name, "decision_id": decision_id, "arm": arm,
                "reward": ev.get("reward"), "status": status,
                "model_version": res.version})
        return res

    def settle_expired(self, name: str, claim: ClaimedDecision, deltas: Any, event: Any, *,
                       config_version: int | None = None) -> bool:
        done = self._call("settle_expired", self.inner.settle_expired, name, claim, deltas,
                          event, config_version=config_version)
        if done:
            arm = str(claim.payload.get("arm"))
            self.metrics.child(self.metrics.expired, name, arm).inc()
            event_log.info("expired", extra={"fields": {
                "event": "expired", "bandit": name, "decision_id": claim.decision_id,
                "arm": arm, "reward": None if event is None else event.get("reward")}})
        return bool(done)

    def sweep_expired(self, name: str, now: float, deltas_fn: DeltasFn, *, limit: int = 1000,
                      lease: float = 30.0, config_version: int | None = None) -> int:
        # the loop of StoreMixin.sweep_expired, through this wrapper so each expiry is counted
        settled = 0
        for claim in self._call("claim_expired", self.inner.claim_expired, name, now,
                                limit=limit, lease=lease):
            deltas, event = deltas_fn(claim)
            if self.settle_expired(name, claim, deltas, event, config_version=config_version):
                settled += 1
        return settled

    def iter_events(self, name: str, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        return self._call("iter_events", self.inner.iter_events, name, batch_size=batch_size)


class ObservedRuntime(Runtime):
    """A :class:`Runtime` whose engine's store is an :class:`InstrumentedStore`.

    The store is wrapped when the engine is first used -- also the store of an engine given to
    ``create_app`` (that engine's ``store`` attribute is replaced by the wrapper; an engine
    shared by two apps is counted by the first one that used it).
    """

    def __init__(self, settings: Settings, engine: Engine | None, metrics: ServiceMetrics
                 ) -> None:
        super().__init__(settings, engine)
        self.metrics = metrics
        self._wrap_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        engine = super().engine
        if not isinstance(engine.store, InstrumentedStore):
            with self._wrap_lock:
                if not isinstance(engine.store, InstrumentedStore):
                    engine.store = InstrumentedStore(engine.store, self.metrics)
        return engine


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
