"""The HTTP decision service (FastAPI): ``create_app(settings)``, ``serve(...)``.

Needs the ``server`` extra. Importing this package is light; FastAPI is imported when one of
the names below is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Settings", "app_from_env", "create_app", "serve"]

if TYPE_CHECKING:
    from .app import app_from_env, create_app
    from .server import serve
    from .settings import Settings

_WHERE = {"Settings": "settings", "create_app": "app", "app_from_env": "app", "serve": "server"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
