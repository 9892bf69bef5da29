"""State stores: where bandit statistics, pending decisions and events live between requests.

:class:`Store` is the protocol (see :mod:`tsbandit.stores.protocol` for the semantics);
:class:`MemoryStore`, :class:`SQLiteStore` and :class:`RedisStore` (standalone and Cluster)
implement it. :func:`open_store` builds one from a URL. ``RedisStore`` imports ``redis`` only when
first used, so ``import tsbandit.stores`` works without the ``[redis]`` extra.

URLs::

    memory://                                   in-process (tests, notebooks)
    sqlite:///relative/path.db                  SQLite file (note: three slashes, then the path)
    sqlite:////absolute/path.db                 ?busy_timeout=5&synchronous=NORMAL&retention=...
    redis://[[user]:pass@]host:port/db          Redis (?prefix=tsbandit:&socket_timeout=0.5...)
    rediss://...                                Redis over TLS
    redis+cluster://h1:p1[,h2:p2...]            Redis Cluster (or rediss+cluster://, or
    redis://h1:p1?cluster=true                  the cluster=true query flag)

>>> store = open_store("memory://")
>>> store.list_bandits()
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .base import (
    DEFAULT_RETENTION,
    Assignment,
    ClaimedDecision,
    DecisionExistsError,
    NewDecision,
    PendingDecision,
    RewardItem,
    RewardResult,
    Snapshot,
    Store,
    VersionConflictError,
)
from .memory import MemoryStore
from .sharded import ShardedStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis_store import RedisStore

__all__ = [
    "DEFAULT_RETENTION",
    "Assignment",
    "ClaimedDecision",
    "DecisionExistsError",
    "MemoryStore",
    "NewDecision",
    "PendingDecision",
    "RedisStore",
    "RewardItem",
    "RewardResult",
    "SQLiteStore",
    "ShardedStore",
    "Snapshot",
    "Store",
    "VersionConflictError",
    "open_store",
]

_REDIS_SCHEMES = {"redis", "rediss", "redis+cluster", "rediss+cluster"}


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from .redis_store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str, **options: Any) -> Store:
    """Build a store from a URL (see the module docstring); ``options`` go to the constructor.

    Raises
    ------
    ConfigurationError
        Unknown scheme, or a malformed URL.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.db")
    >>> store = open_store("sqlite:///" + path + "?busy_timeout=2")
    >>> store.busy_timeout
    2.0
    >>> store.close()
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        return SQLiteStore(url, **options)
    if scheme in _REDIS_SCHEMES:
        try:
            from .redis_store import RedisStore
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "Redis stores need the redis package: pip install 'tsbandit[redis]'"
            ) from exc
        return RedisStore(url, **options)
    raise ConfigurationError(
        f"unknown store URL scheme {parts.scheme!r}; use memory://, sqlite:///path.db, "
        "redis://, rediss:// or redis+cluster://"
    )
