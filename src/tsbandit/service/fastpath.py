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

and installed by the app factory (``install_fast_routes(app, settings, *tables)``, after the
routes and the other middleware). The
:class:`FastPathMiddleware` sits innermost, just outside the routes' exception handlers: the
body-size limit, the metrics middleware (timing, access-log line, deferred event lines) and
the 500 handler wrap it as they wrap the routes. For a request whose method and path match a
fast route (the route's own compiled path regex and convertors) it checks the API key when
the route needs one, reads the body (``body=True``) and calls the handler.

**The contract of a handler.** It validates the request by hand and answers only what it is
sure the FastAPI route would accept: anything else -- a body that is not a JSON object, an
unknown field, a value of another type or outside its range, an odd content type, a missing
or differently written API key, a duplicated header -- makes it return ``None`` *before any
side effect*, and the request goes to the FastAPI route unchanged (its body replayed). So
every validation error is the declared route's own answer, by construction. After validating,
a handler calls the same code as the route (the coalescer, the engine); a
:class:`~tsbandit.errors.TsbanditError` it raises is answered by the app's error mapping
(:func:`~tsbandit.service.errors.domain_error`: the same status, JSON and headers), and any
other exception reaches the same 500 handler. Its success answer is rendered as
``JSONResponse`` renders (:func:`json_answer`: byte for byte). Tests that override a
dependency (``app.dependency_overrides``) turn the fast path off for that app.

What it saves per request (measured, docs/service.md): routing over every route, dependency
resolution, pydantic validation of the body and header, the endpoint wrapper and the
``Response`` object.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TsbanditError
from .deps import Access, needs_key, strict_json
from .errors import domain_error

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

    from .runtime import Runtime
    from .settings import Settings

__all__ = ["NO", "FastAnswer", "FastPathCounts", "FastPathMiddleware", "FastRequest", "FastRoutes",
           "install_fast_routes", "json_answer", "short_str", "str_list", "vector"]

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
(b'content-length', b'20'), (b'content-type', b'application/json')])
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


def vector(value: Any, hi: int) -> Any:
    """A list of 1-``hi`` finite numbers as floats (what a strict ``list[float]`` makes of
    it), else :data:`NO`. The JSON parser already refused NaN and infinities."""
    if type(value) is not list or not 1 <= len(value) <= hi:
        return NO
    out = []
    for v in value:
        t = type(v)
        if t is float:
            out.append(v)
        elif t is int and -_EXACT_INT <= v <= _EXACT_INT:
            out.append(float(v))
        else:  # bool, a huge int, anything else: the route decides
            return NO
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



def install_fast_routes(app: FastAPI, settings: Settings, *tables: FastRoutes) -> None:
    """Put the fast routes of ``tables`` on ``app`` (their routes declared already) as one
    middleware; call it after every ``add_middleware``, so that it is the innermost."""
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
    if installed:
        from starlette.middleware import Middleware

        app.state.fast_path = counts = FastPathCounts()
        # innermost of the app's middleware (add_middleware would make it the outermost)
        app.user_middleware.append(Middleware(FastPathMiddleware, fastapi_app=app,
                                              routes=installed, counts=counts))


class FastPathMiddleware:
    """Pure ASGI: serve the requests a fast route takes, hand on everything else.

    The matched route is put in ``scope["route"]`` as the router would (the metrics label the
    request with its template)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI,
                 routes: dict[str, list[_Installed]], counts: FastPathCounts | None = None
                 ) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.routes = routes
        self.counts = FastPathCounts() if counts is None else counts

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
        if fr.key is not None and not _key_ok(scope, fr.key):
            self.counts.fell_back += 1
            await self.app(scope, receive, send)  # the route answers 401 (or takes it)
            return
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
            self.counts.served += 1
            await domain_error(exc)(scope, receive, send)
            return
        if answer is None:  # not sure: the declared route answers, the body replayed
            self.counts.fell_back += 1
            await self.app(scope, _replay(body, receive) if fr.body else receive, send)
            return
        self.counts.served += 1
        status, content, headers = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


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
