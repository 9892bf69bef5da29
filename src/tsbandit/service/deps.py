"""Dependencies the routes declare with ``Annotated[..., Depends(...)]``.

Tests override them through ``app.dependency_overrides`` (e.g. ``get_engine`` to inject an
engine with a fake clock).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import inspect
import json
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..engine import Engine
from ..errors import AuthenticationError
from .errors import ErrorResponse
from .runtime import Runtime
from .settings import Settings

T = TypeVar("T")

__all__ = [
    "EngineDep",
    "RouteTable",
    "RuntimeDep",
    "SettingsDep",
    "StrictJSONRoute",
    "get_engine",
    "get_runtime",
    "get_settings",
    "require_read",
    "require_write",
    "strict_json",
]


# Dependencies are ``async def`` on purpose: they do no I/O, and FastAPI would run a plain
# ``def`` dependency in the thread pool -- one thread hop each, per request.
async def get_runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime` (settings, engine, tutorial join)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    """The app's settings."""
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_engine(request: Request) -> Engine:
    """This worker's engine (opens the store on first use)."""
    runtime: Runtime = request.app.state.runtime  # not via RuntimeDep: one resolution less
    return runtime.engine


EngineDep = Annotated[Engine, Depends(get_engine)]

_bearer = HTTPBearer(
    auto_error=False,
    description="Needed on mutating endpoints and on reads of personal data (user ids, "
    "contexts) when TSBANDIT_API_KEY is set (and on every read when TSBANDIT_OPEN_READS=false).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check(settings: Settings, cred: HTTPAuthorizationCredentials | None) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = b"" if cred is None else cred.credentials.encode("utf-8", "surrogateescape")
    # compare_digest even when the header is missing: no early exit on the key's contents
    ok = hmac.compare_digest(given, expected)
    if cred is None or not ok:
        raise AuthenticationError("missing or wrong API key; send 'Authorization: Bearer <key>'")


async def require_write(settings: SettingsDep, cred: Credentials) -> None:
    """Mutating endpoints: the API key when one is configured."""
    _check(settings, cred)


async def require_read(settings: SettingsDep, cred: Credentials) -> None:
    """Read-only endpoints: open unless ``open_reads`` is off."""
    if not settings.open_reads:
        _check(settings, cred)


#: ``read``: open unless ``open_reads`` is off; ``write``: mutates, needs the key; ``private``:
#: a read that returns personal data (user ids, contexts), which needs the key like a write.
Access = Literal["read", "write", "private"]


def needs_key(settings: Settings, access: Access) -> bool:
    """Whether an endpoint of this kind needs the API key under these settings."""
    return settings.api_key is not None and (access != "read" or not settings.open_reads)


def auth(settings: Settings, access: Access) -> dict[str, Any]:
    """``add_api_route`` keywords for an endpoint: the key check (and its 401 in the OpenAPI
    document) only where a key is needed, so the spec says exactly what the service does."""
    if not needs_key(settings, access):
        return {"dependencies": []}
    dep = require_read if access == "read" else require_write
    return {"dependencies": [Depends(dep)],
            "responses": {401: {"model": ErrorResponse, "description": "Missing or wrong API key"}}}


def offloaded(func: Callable[..., T], offload: bool = True
              ) -> Callable[..., Coroutine[Any, Any, T]]:
    """``func`` (blocking: it calls the engine, which talks to the store) as a coroutine.

    With ``offload`` it runs in the event loop's executor -- one thread hop per request. A plain
    ``def`` endpoint would cost FastAPI two (the endpoint, then the response validation).
    Without, it runs on the event loop itself: no hop (about 170 us of CPU less per request
    on the 2-core benchmark machine), but a slow store then stalls every request of the worker
    -- right only for a store that answers in microseconds or fails at once. The signature is
    kept (``functools.wraps``), so FastAPI sees the same parameters.
    """
    if inspect.iscoroutinefunction(func):
        return func

    if offload:
        @functools.wraps(func)
        async def endpoint(*args: Any, **kwargs: Any) -> T:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))
    else:
        @functools.wraps(func)
        async def endpoint(*args: Any, **kwargs: Any) -> T:
            return func(*args, **kwargs)

    return endpoint


class RouteTable:
    """Routes declared at import (no I/O), added to a router built for given settings.

    >>> table = RouteTable()
    >>> @table.route("GET", "/ping", "read")
    ... def ping() -> dict[str, str]:
    ...     return {"pong": "yes"}
    >>> app = FastAPI()
    >>> table.install(app, Settings(store="memory://"))
    >>> [r.path for r in app.routes][-1]
    '/ping'
    """

    def __init__(self, **router_kwargs: Any) -> None:
        self.router_kwargs = router_kwargs
        self.specs: list[tuple[str, str, Callable[..., Any], Access, dict[str, Any]]] = []

    def route(self, method: str, path: str, access: Access,
              **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare an endpoint; ``access`` says whether it reads or writes."""
        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            self.specs.append((method, path, func, access, kwargs))
            return func

        return deco

    def methods(self) -> dict[str, set[str]]:
        """Full path template -> the methods served there."""
        prefix = self.router_kwargs.get("prefix", "")
        out: dict[str, set[str]] = {}
        for method, path, *_ in self.specs:
            out.setdefault(prefix + path, set()).add(method)
        return out

    def install(self, app: FastAPI, settings: Settings) -> None:
        """Add every declared endpoint to ``app`` with the auth these settings call for.

        Routes go straight onto the app's router (not through ``include_router``): one level
        of route matching per request instead of two. They honour the app's
        ``dependency_overrides`` (tests replace ``get_engine`` there).
        """
        prefix = self.router_kwargs.get("prefix", "")
        common = self.router_kwargs.get("responses", {})
        tags = self.router_kwargs.get("tags", [])
        for method, path, func, access, kwargs in self.specs:
            extra = auth(settings, access)
            responses = {**common, **kwargs.get("responses", {}), **extra.get("responses", {})}
            options = {**kwargs, "responses": responses,
                       "tags": kwargs.get("tags", tags)}
            app.router.routes.append(StrictJSONRoute(
                prefix + path, offloaded(func, settings.offload), methods=[method],
                dependencies=extra["dependencies"], dependency_overrides_provider=app,
                **options))


# ----- strict JSON ------------------------------------------------------------------------------
def _no_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise json.JSONDecodeError(f"number {text} is out of range", text, 0)
    return value


def strict_json(body: bytes) -> Any:
    """``body`` parsed as RFC 8259 JSON: ``NaN``, ``Infinity`` and numbers out of the float
    range are refused (``json.JSONDecodeError``), as is a body that is not UTF-8."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("body is not UTF-8", "", exc.start) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON bodies refuse ``NaN``, ``Infinity`` and out-of-range numbers.

    Python's ``json`` accepts those literals although RFC 8259 does not; they become a 400
    ``malformed_json`` here, before any validation.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler
