"""The one place where exceptions become HTTP responses.

Every error answer is ``{"error": {"code": "...", "detail": "..."}}``:

=============================================  ======  ===========================
cause                                          status  code
=============================================  ======  ===========================
a :class:`~tsbandit.errors.TsbanditError`      its own  its ``code`` (see errors.py)
body that is not JSON (or has NaN / Infinity)  400     ``malformed_json``
body of the wrong shape or types               422     ``invalid_request``
missing or wrong API key                       401     ``unauthorized``
body over ``max_body_bytes``                   413     ``payload_too_large``
URL (path and query) over ``max_url_bytes``    414     ``uri_too_long``
reward for another arm than recommended        409     ``arm_mismatch``
unknown route / method                         404/405 ``not_found`` / ``method_not_allowed``
anything unexpected (a bug)                    500     ``internal_error``
=============================================  ======  ===========================

A 503 ``store_unavailable`` carries ``Retry-After: 1``. No exception escapes to the server: a
bug answers its 500 like any other error, and the keep-alive connection stays open (uvicorn
closes the connection of a request whose exception reaches it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    ArmMismatchError,
    AuthenticationError,
    ConfigurationError,
    PayloadTooLargeError,
    TsbanditError,
)

__all__ = [
    "ERROR_RESPONSES",
    "ArmMismatchError",
    "AuthenticationError",
    "ErrorBody",
    "ErrorResponse",
    "PayloadTooLargeError",
    "UnhandledErrorMiddleware",
    "domain_error",
    "error_json",
    "install_error_handlers",
    "unexpected_error",
]

log = logging.getLogger("tsbandit.service")


class ErrorBody(BaseModel):
    """What went wrong: a stable machine-readable ``code`` and a message for people."""

    code: str
    detail: str


class ErrorResponse(BaseModel):
    """Every error answer of the service."""

    error: ErrorBody


_COMMON = {
    400: "Malformed JSON or invalid configuration",
    413: "Request body too large",
    414: "Request target (path and query) too long",
    422: "Request of the wrong shape, or values outside their domain",
    503: "State store unavailable",
}
#: OpenAPI ``responses=`` for every route (specific routes add 404/409/410).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _COMMON.items()
}


def error_json(status: int, code: str, detail: str,
               headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error response."""
    return JSONResponse({"error": {"code": code, "detail": detail}}, status_code=status,
                        headers=headers)


#: extra headers of domain errors by status: how to authenticate; when to try again (a store
#: outage or failover lasts seconds)
_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "1"}}


def domain_error(exc: TsbanditError) -> JSONResponse:
    """The answer to a domain error: its status and code, and the headers of its status."""
    return error_json(exc.http_status, exc.code, str(exc), _HEADERS.get(exc.http_status))


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TsbanditError)
    return domain_error(exc)


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "invalid JSON")
            return error_json(400, "malformed_json", f"request body is not valid JSON: {why}")
    shown = "; ".join(f"{_loc(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return error_json(422, "invalid_request", shown + more)


_HTTP_CODES = {
    400: "malformed_request",
    401: AuthenticationError.code,
    404: "not_found",
    405: "method_not_allowed",
    413: PayloadTooLargeError.code,
}


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (starlette names only the first route's).

    ``app.state.allowed`` holds ``(path regex, methods)`` pairs, set by the app factory.
    """
    path = request.url.path
    methods: set[str] = set()
    for regex, route_methods in getattr(request.app.state, "allowed", ()):
        if regex.match(path):
            methods |= route_methods
    return ", ".join(sorted(methods))


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_json(exc.status_code, code, str(exc.detail), headers or None)


def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an exception no handler took (a bug), logged with its traceback."""
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal_error", "internal error; see the service log")


class UnhandledErrorMiddleware:
    """Answer any exception no handler took with the 500 ``internal_error`` JSON, and keep the
    connection.

    Starlette's handler for ``Exception`` (in its outermost middleware) sends the 500 and then
    re-raises, so that the server logs it; uvicorn then closes the keep-alive connection
    without a ``Connection: close``, and a client that reuses it fails its next request. This
    middleware sits just outside the routes' exception handlers: it logs and answers instead.
    An exception after the response started still reaches the server (nothing else can be
    done then).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            await _unexpected(Request(scope), exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the JSON error shape, in this one place (call it before adding
    other middleware, so that :class:`UnhandledErrorMiddleware` is the innermost)."""
    app.add_exception_handler(TsbanditError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(UnhandledErrorMiddleware)


def bad_request(detail: str) -> ConfigurationError:
    """A 400 for a request whose parts contradict each other."""
    return ConfigurationError(detail)
