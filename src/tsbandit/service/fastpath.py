"""The fast path: the hottest routes answered without FastAPI's per-request machinery.

A fast route is a second door to a route that stays declared with FastAPI (so ``/docs``, the
OpenAPI document and every request the fast door does not take are unchanged). It is declared
next to that route, for the same method and path template::

    fast = FastRoutes()

    @fast.route("POST", "/v1/bandits/{name}/decisions", "write", body=True)
    async def decide_fast(req: FastRequest) -> FastAnswer | None:
        body = req.json_object({"k", "user_id"})
        if body is None:
            return None                      # not sure: the FastAPI route answers it
        ...
        return json_answer({"arm": ...})

and installed by the app factory (``install_fast_routes(app, settings, *tables, timer=...)``
on a :class:`FastPathApp`, after the routes). The :class:`FastPathMiddleware` stands in front
of the app's middleware stack. For a request whose method and path match a fast route (the
route's own compiled path regex and convertors) it checks the API key when the route needs
one, reads the body (``body=True``) and calls the handler; for the requests it serves it does
what the skipped middleware would (limits, timing, access and event lines, the 500), and a
request over the body or URL limits, with a chunked body or without the exact key goes to the
stack as it is.

**The contract of a handler.** It validates the request by hand and answers only what it is
sure the FastAPI route would accept: anything else -- a body that is not a JSON object, an
unknown field, a value of another type or outside its range, an odd content type, a missing
or differently written API key, a duplicated header -- makes it return ``None`` *before any
side effect*, and the request goes to the FastAPI route unchanged (its body replayed). So
every validation error is the declared route's own answer, by construction. After validating,
a handler calls the same code as the route (the coalescer, the engine); a
:class:`~tsbandit.errors.TsbanditError` it raises is answered by the app's error mapping
(:func:`~tsbandit.service.errors.domain_error`: the same status, JSON and headers), and any
other exception gets the same logged 500. Its success answer is rendered as
``JSONResponse`` renders (:func:`json_answer`: byte for byte). Tests that override a
dependency (``app.dependency_overrides``) turn the fast path off for that app.

What it saves per request (measured, docs/service.md): the middleware layers, routing over
every route, dependency resolution, pydantic validation of the body and header, the endpoint
wrapper and the ``Response`` object (at c=64 on Redis: 1.7-2.1x the requests per second).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TsbanditError
from .deps import Access, needs_key, strict_json
from .errors import domain_error, unexpected_error

if TYPE_CHECKING:
    from fastapi.routing import APIRoute

    from .metrics import RequestTimer
    from .runtime import Runtime
    from .settings import Settings

log = logging.getLogger("tsbandit.service")

__all__ = ["NO", "FastAnswer", "FastPathApp", "FastPathCounts", "FastPathMiddleware",
           "FastRequest", "FastRoutes", "install_fast_routes", "json_answer", "number",
           "short_str", "str_list", "vector"]

#: status, body, headers (as ``Response.raw_headers``)
FastAnswer = tuple[int, bytes, list[tuple[bytes, bytes]]]
Handler = Callable[["FastRequest"], Awaitable["FastAnswer | None"]]

#: what a validator returns for a value it is not sure of (the request then falls back)
NO: Any = object()

# JSONResponse.render's options, one encoder built once (json.dumps builds one per call)
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode
_JSON_TYPE = (b"content-type", b"application/json")


def json_answer(content: Any, headers: dict[str, str] | None = None,
                status: int = 200) -> FastAnswer:
    """``content`` answered exactly as ``JSONResponse(content, status, headers)`` would be
    (body and header list byte for byte).

    >>> json_answer({"a": "é", "b": 0.5}, {"Idempotent-Replayed": "true"})
    (200, b'{"a":"\\xc3\\xa9","b":0.5}', [(b'idempotent-replayed', b'true'), \
(b'content-length', b'18'), (b'content-type', b'application/json')])
    """
    body = _encode(content).encode("utf-8")
    raw = [] if headers is None else [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                      for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode("latin-1")))
    raw.append(_JSON_TYPE)
    return status, body, raw


# ----- validators: the value as the route's model would take it, or NO -------------------------
def short_str(value: Any, lo: int, hi: int) -> Any:
    """``value`` if it is a ``str`` of ``lo``-``hi`` characters that pydantic takes (no lone
    surrogates), else :data:`NO`."""
    if type(value) is not str or not lo <= len(value) <= hi:
        return NO
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\\ud800"): pydantic refuses it
            return NO
    return value


def str_list(value: Any, lo: int, hi: int, item_lo: int, item_hi: int) -> Any:
    """A list of ``lo``-``hi`` strings, each :func:`short_str` (``item_lo``-``item_hi``)."""
    if type(value) is not list or not lo <= len(value) <= hi:
        return NO
    for v in value:
        if short_str(v, item_lo, item_hi) is NO:
            return NO
    return value


_EXACT_INT = 2 ** 53


def number(value: Any) -> Any:
    """``value`` as the float a strict ``float`` field makes of it (a float, or an int within
    +-2**53), else :data:`NO` (a bool, a huge int, anything else: the route decides). The JSON
    parser already refused NaN and infinities.

    >>> number(1), number(0.5), number(True) is NO, number(2 ** 60) is NO
    (1.0, 0.5, True, True)
    """
    t = type(value)
    if t is float:
        return value
    if t is int and -_EXACT_INT <= value <= _EXACT_INT:
        return float(value)
    return NO


def vector(value: Any, hi: int) -> Any:
    """A list of 1-``hi`` finite numbers as floats (what a strict ``list[float]`` makes of
    it), else :data:`NO`."""
    if type(value) is not list or not 1 <= len(value) <= hi:
        return NO
    out = []
    for v in value:
        if (f := number(v)) is NO:
            return NO
        out.append(f)
    return out


# ----- the request a handler sees --------------------------------------------------------------
class FastRequest:
    """What a fast handler gets: the ASGI ``scope``, the path ``params`` (converted), the
    ``body`` (``b""`` for a route without one) and the app's :class:`Runtime`."""

    __slots__ = ("body", "params", "runtime", "scope")

    def __init__(self, scope: Scope, params: dict[str, Any], body: bytes,
                 runtime: Runtime) -> None:
        self.scope = scope
        self.params = params
        self.body = body
        self.runtime = runtime

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lower case); None when absent; :data:`NO` when it is
        sent more than once."""
        found = None
        for k, v in self.scope["headers"]:
            if k == name:
                if found is not None:
                    return NO
                found = v
        return found

    def header_matching(self, name: bytes, pattern: re.Pattern[str]) -> Any:
        """The header decoded as Starlette does (latin-1) if it ``fullmatch``-es ``pattern``;
        None when absent; :data:`NO` when repeated or not matching."""
        raw = self.header(name)
        if raw is None or raw is NO:
            return raw
        text = raw.decode("latin-1")
        return text if pattern.fullmatch(text) else NO

    def json_object(self, fields: AbstractSet[str]) -> dict[str, Any] | None:
        """The body as FastAPI's strict JSON parser reads it, if it is sent as
        ``application/json``, is a JSON object and has only ``fields``; else None."""
        if self.header(b"content-type") not in _JSON_TYPES or not self.body:
            return None
        try:
            value = strict_json(self.body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError: the route answers 400
            return None
        if type(value) is not dict or not value.keys() <= fields:
            return None
        return value


_JSON_TYPES = {b"application/json"}


# ----- the registry ------------------------------------------------------------------------------
@dataclass
class FastPathCounts:
    """Requests a fast route matched: ``served`` on the fast path, handed to the declared
    route (``fell_back``). ``app.state.fast_path`` of an app with fast routes."""

    served: int = 0
    fell_back: int = 0


@dataclass(frozen=True)
class _Spec:
    method: str
    path: str
    access: Access
    body: bool
    handler: Handler


@dataclass(frozen=True)
class _Installed:
    route: APIRoute
    regex: re.Pattern[str]
    convertors: dict[str, Any]
    key: bytes | None  # the API key, when the route needs it
    body: bool
    handler: Handler


class FastRoutes:
    """Fast doors to declared routes, declared at import (no I/O) and installed per app.

    >>> fast = FastRoutes()
    >>> @fast.route("GET", "/ping/{who}", "read")
    ... async def ping(req: FastRequest) -> FastAnswer | None:
    ...     return json_answer({"pong": req.params["who"]})
    >>> [(s.method, s.path) for s in fast.specs]
    [('GET', '/ping/{who}')]
    """

    def __init__(self) -> None:
        self.specs: list[_Spec] = []

    def route(self, method: str, path: str, access: Access, *,
              body: bool = False) -> Callable[[Handler], Handler]:
        """Declare a fast handler for the route declared for ``method`` and the full ``path``
        template; ``access`` is the declared route's (the API key check), ``body`` whether
        the handler reads a request body."""
        def deco(handler: Handler) -> Handler:
            self.specs.append(_Spec(method, path, access, body, handler))
            return handler

        return deco



class FastPathApp(FastAPI):
    """A FastAPI app whose middleware stack gets the fast path in front of it
    (:func:`install_fast_routes` sets :attr:`fast_path`)."""

    fast_path: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.fast_path is None else self.fast_path(stack)


#: the middleware the fast path stands in for (it times, logs, limits and answers errors as
#: they do); with any other middleware on the app the fast path stays off
KNOWN_MIDDLEWARE = frozenset({"MetricsMiddleware", "BodyLimitMiddleware",
                              "UnhandledErrorMiddleware"})


def install_fast_routes(app: FastPathApp, settings: Settings, *tables: FastRoutes,
                        timer: RequestTimer | None = None) -> None:
    """Put the fast routes of ``tables`` in front of ``app``'s middleware stack (their routes
    declared already); ``timer`` times and logs a request as the app's metrics middleware
    does (None without metrics)."""
    from fastapi.routing import APIRoute

    found = {(m, r.path): r for r in app.router.routes if isinstance(r, APIRoute)
             for m in r.methods or ()}
    installed: dict[str, list[_Installed]] = {}
    for spec in (s for t in tables for s in t.specs):
        route = found.get((spec.method, spec.path))
        if route is None:
            raise LookupError(f"no declared route {spec.method} {spec.path} for the fast path")
        key = None
        if needs_key(settings, spec.access):
            assert settings.api_key is not None
            key = settings.api_key.get_secret_value().encode()
        installed.setdefault(spec.method, []).append(_Installed(
            route, route.path_regex, route.param_convertors, key, spec.body, spec.handler))
    if not installed:
        return
    app.state.fast_path = counts = FastPathCounts()

    def front(stack: ASGIApp) -> ASGIApp:
        others = {getattr(m.cls, "__name__", "?") for m in app.user_middleware} - KNOWN_MIDDLEWARE
        if others:  # a middleware the fast path would skip: every request through the stack
            log.warning("fast path off: middleware %s", sorted(others))
            return stack
        return FastPathMiddleware(stack, fastapi_app=app, routes=installed, counts=counts,
                                  timer=timer, max_body_bytes=settings.max_body_bytes,
                                  max_url_bytes=settings.max_url_bytes)

    app.fast_path = front


class FastPathMiddleware:
    """Pure ASGI, in front of the app's middleware stack: serve the requests a fast route
    takes, hand everything else to the stack.

    For a request it serves, it does what the stack's middleware would: refuses nothing
    itself (a body or URL over the limits, a chunked body, goes to the stack, which answers
    413/414 or reads it), times the request into the metrics and writes its access line and
    the event lines held meanwhile (``timer``), puts the matched route in ``scope["route"]``
    (the metrics label it with its template), and answers an unexpected exception with the
    same 500 ``internal_error`` (logged) as
    :class:`~tsbandit.service.errors.UnhandledErrorMiddleware`.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI,
                 routes: dict[str, list[_Installed]], counts: FastPathCounts | None = None,
                 timer: RequestTimer | None = None, max_body_bytes: int = 1 << 20,
                 max_url_bytes: int | None = None) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.routes = routes
        self.counts = FastPathCounts() if counts is None else counts
        self.timer = timer
        self.max_body = max_body_bytes
        self.max_url = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        candidates = self.routes.get(scope["method"])
        if candidates is None or scope.get("root_path") or self.fastapi_app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for fr in candidates:
            m = fr.regex.match(path)
            if m is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        if not self._within_limits(scope, fr.body) or (fr.key is not None
                                                       and not _key_ok(scope, fr.key)):
            self.counts.fell_back += 1
            await self.app(scope, receive, send)  # the stack answers 401/413/414 or takes it
            return
        timer = self.timer
        start = 0.0 if timer is None else timer.begin()
        status = 500
        timed = True
        try:
            body = b""
            if fr.body:
                more = True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
            params = {k: fr.convertors[k].convert(v) for k, v in m.groupdict().items()}
            scope["route"] = fr.route
            runtime = self.fastapi_app.state.runtime
            try:
                answer = await fr.handler(FastRequest(scope, params, body, runtime))
            except TsbanditError as exc:
                answer = _rendered(domain_error(exc))
            except Exception as exc:  # a bug: what UnhandledErrorMiddleware answers
                answer = _rendered(unexpected_error(Request(scope), exc))
            if answer is None:  # not sure: the declared route answers, the body replayed
                timed = False
                if timer is not None:
                    timer.cancel()  # the stack times it from here
                self.counts.fell_back += 1
                await self.app(scope, _replay(body, receive) if fr.body else receive, send)
                return
            self.counts.served += 1
            status, content, headers = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        finally:
            if timed and timer is not None:
                timer.done(scope, status, start)

    def _within_limits(self, scope: Scope, with_body: bool) -> bool:
        """Whether :class:`~tsbandit.service.middleware.BodyLimitMiddleware` would hand the
        request on untouched, with its body's length declared (else the stack takes it)."""
        if self.max_url is not None:
            query = scope.get("query_string", b"")
            target = len(scope.get("raw_path") or scope["path"].encode())
            if target + (len(query) + 1 if query else 0) > self.max_url:
                return False
        length = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                if length is not None:
                    return False
                length = v
            elif k == b"transfer-encoding":
                return False
        if length is None:
            return not with_body
        return length.isdigit() and int(length) <= self.max_body


def _rendered(response: Response) -> FastAnswer:
    return response.status_code, bytes(response.body), response.raw_headers


def _key_ok(scope: Scope, expected: bytes) -> bool:
    """Whether the request sends ``Authorization: Bearer <expected>`` (once). Anything else
    -- no header (not compared here: the route compares and answers 401), another spelling,
    a wrong key -- goes to the route."""
    given = None
    for k, v in scope["headers"]:
        if k == b"authorization":
            if given is not None:
                return False
            given = v
    if given is None or not given.startswith(b"Bearer "):
        return False
    return hmac.compare_digest(given[7:], expected)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def matches(app: FastAPI, method: str, path: str) -> Any:
    """The first declared route that the router would pick for ``method path`` (tests check
    that a fast route is that route for the paths it takes)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None
