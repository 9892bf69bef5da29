"""The OpenAPI document, made to tell the truth for the running app.

FastAPI derives the document from the routes and models, which are declared at import; the
limits of a service are settings (``max_arms``, ``max_features``, ``max_batch``), read when the
app is built. :func:`install_openapi` writes those limits into the generated document once
(``maxItems`` / ``maximum`` on the request fields they bound), so a generated client and a
fuzzer see the limits this app enforces. The app still enforces them itself, with the same
answer as before (400 ``invalid_configuration``, see docs/service.md).

It also gives ``/v1/bandits/{name}/events`` the schema of one line of its JSON Lines.

>>> from tsbandit.service import Settings, create_app
>>> doc = create_app(Settings(store="memory://", max_arms=7, log_format="none")).openapi()
>>> doc["components"]["schemas"]["BanditCreate"]["properties"]["arms"]["maxItems"]
7
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from ..errors import SchemaError
from .settings import Settings

__all__ = ["apply_limits", "install_openapi"]

_KEY_TYPE = {"maxItems": "array", "maximum": "integer"}


def _bound(prop: dict[str, Any], key: str, value: int, note: str) -> None:
    """Set ``key`` (``maxItems`` or ``maximum``) on the non-null branches of ``prop``."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    typed = [b for b in branches if b.get("type") == _KEY_TYPE[key]]
    if not typed:  # a model changed shape: fail loudly (tests build the document)
        raise SchemaError(f"no {_KEY_TYPE[key]} in {prop!r} to bound with {key}")
    for branch in typed:
        branch[key] = min(value, branch.get(key, value))
    text = prop.get("description", "")
    prop["description"] = f"{text} {note}".strip()


def _schema(schemas: dict[str, Any], name: str) -> dict[str, Any]:
    """A request model's component (``Name-Input`` when FastAPI split it in two)."""
    found: dict[str, Any] = schemas.get(f"{name}-Input", schemas.get(name))  # type: ignore[assignment]
    if found is None:
        raise SchemaError(f"no schema {name!r} in the OpenAPI document")
    return found


def apply_limits(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the limits of ``settings`` into the OpenAPI document ``doc`` (in place)."""
    schemas = doc["components"]["schemas"]
    arms = f"At most {settings.max_arms} (TSBANDIT_MAX_ARMS)."
    features = f"At most {settings.max_features} (TSBANDIT_MAX_FEATURES)."
    batch = f"At most {settings.max_batch} (TSBANDIT_MAX_BATCH)."
    create = _schema(schemas, "BanditCreate")["properties"]
    _bound(create["arms"], "maxItems", settings.max_arms, arms)
    _bound(create["n_features"], "maximum", settings.max_features, features)
    for model in ("LinearModel", "LogisticModel"):
        _bound(_schema(schemas, model)["properties"]["n_features"], "maximum",
               settings.max_features, features)
    many = _schema(schemas, "BatchDecisionRequest")["properties"]
    _bound(many["n"], "maximum", settings.max_batch, batch)
    _bound(many["contexts"], "maxItems", settings.max_batch, batch)
    _bound(many["user_ids"], "maxItems", settings.max_batch, batch)
    return doc


def _event_lines(doc: dict[str, Any]) -> None:
    """``/events``' 200: JSON Lines, a string whose lines are each an ``EventLine``.

    The body is text, so its ``schema`` is a string (generated clients read it as such; an
    object schema there makes them parse the whole body as one object); the schema of one
    line is ``x-itemSchema``, after OpenAPI 3.2's ``itemSchema`` for sequential media types
    (an extension here: the document is OpenAPI 3.1).
    """
    ok = doc["paths"]["/v1/bandits/{name}/events"]["get"]["responses"]["200"]
    ok["content"] = {"application/x-ndjson": {
        "schema": {"type": "string", "description": "JSON Lines: one EventLine per line."},
        "x-itemSchema": {"$ref": "#/components/schemas/EventLine"}}}


def _client_friendly(doc: dict[str, Any]) -> None:
    """Names and media types that generated clients read right.

    * A model used in requests and answers has two components, ``Name-Input`` and
      ``Name-Output`` (every field required in answers), both titled ``Name``; generators
      that name classes by title (openapi-python-client) refuse the duplicate, so the output
      one is titled ``NameOut``.
    * FastAPI gives an operation's error answers the media type of its success answer
      (``text/plain`` on ``/metrics``, JSON Lines on ``/events``); errors are always JSON.
    """
    for name, schema in doc["components"]["schemas"].items():
        if name.endswith("-Output"):
            schema["title"] = name.removesuffix("-Output") + "Out"
    for path in doc["paths"].values():
        for op in path.values():
            for status, answer in op.get("responses", {}).items():
                content = answer.get("content")
                if status.startswith("2") or not content or "application/json" in content:
                    continue
                answer["content"] = {"application/json": next(iter(content.values()))}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) carry the limits of ``settings``."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()  # FastAPI's document, cached in app.openapi_schema
            apply_limits(doc, settings)
            _event_lines(doc)
            _client_friendly(doc)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
