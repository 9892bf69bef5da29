"""How :class:`~tsbandit.stores.redis_store.RedisStore` talks to a standalone Redis: the URL's
settings, the client, outage classification, the script runner and the ``min_replicas`` fence.

:class:`RedisConnection` is the standalone connection; :class:`~tsbandit.stores.redis_cluster.
ClusterConnection` overrides the few steps that differ on a Cluster (building the client,
routing a script, ``WAIT`` on the slot's node, health). The store above them only encodes
arguments and decodes replies.

Failures: a refused or timed-out connection raises
:class:`~tsbandit.errors.StoreUnavailableError` quickly (defaults: 0.25 s to connect, 0.5 s per
reply, no automatic retry). Commands are never retried by the client: a script whose reply was
lost may have run (fully), so a blind retry could double a plain ``add``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from ..errors import ConfigurationError, StoreUnavailableError
from . import _lua
from .records import DEFAULT_RETENTION
from .validation import check_events_maxlen, check_retention

__all__ = ["RedisConnection", "RedisSettings", "is_outage", "parse_redis_url", "redact"]

T = TypeVar("T")

#: scripts that never write (no WAIT after them)
_READ_ONLY_SCRIPTS = frozenset({"get_pending", "get_pending_many", "get_assignment"})
#: answers of a write script that wrote nothing but acknowledge an earlier write (a repeated
#: reward, an assignment found live): fenced so that what they acknowledge is durable too
_FENCED_ANSWERS = frozenset({"duplicate", "live"})
#: Errors that mean the store cannot take the command *now* (an outage, a failover under way,
#: a full memory, a loading or read-only node), not a bug or a bad request: they become
#: ``StoreUnavailableError`` (503). Matched by class, because redis-py strips the code of the
#: replies it knows from the message (``-OOM command not allowed...`` arrives as
#: ``OutOfMemoryError("command not allowed...")``, ``-CLUSTERDOWN`` as ``ClusterDownError``),
#: also when the error comes from a command inside a Lua script. ``ConnectionError`` covers
#: ``BusyLoadingError`` (LOADING), ``ClusterError`` covers ``ClusterDownError`` and
#: ``MasterDownError``.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    AskError,  # and MovedError: a slot moving still after a topology refresh
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
    RedisClusterException,
    OSError,
)
#: Reply codes of the same kind that redis-py has no class for: such a reply keeps its code as
#: the first word of the message (and redis-py >= 8 also puts it in ``status_code``).
_UNAVAILABLE_CODES = frozenset(
    {"OOM", "BUSY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY",
     "NOREPLICAS", "MISCONF"}
)
_WRAPPED_CODE = re.compile(r"@user_script:[\s\d:@a-z_]*-([A-Z]+) ")
_SCHEMES = {"redis", "rediss", "redis+cluster", "rediss+cluster"}


def is_outage(exc: BaseException) -> bool:
    """Whether a redis-py error means "unavailable now" rather than a bug (see above)."""
    if isinstance(exc, _UNAVAILABLE_ERRORS):
        return True
    if isinstance(exc, ResponseError):
        code = getattr(exc, "status_code", None)
        if code is None:
            words = str(exc).split(maxsplit=1)
            code = words[0] if words else None
        if code in _UNAVAILABLE_CODES:
            return True
        # Redis < 7 wraps the error of a command inside a script: "ERR Error running script
        # (call to f_...): @user_script:137: -OOM command not allowed..."
        wrapped = _WRAPPED_CODE.search(str(exc))
        return wrapped is not None and wrapped.group(1) in _UNAVAILABLE_CODES
    return isinstance(exc, RedisError)  # InvalidResponse, DataError...: the link is suspect


def redact(url: str) -> str:
    """The URL without its password.

    >>> redact("redis://u:secret@h:6379/0")
    'redis://u:***@h:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class RedisSettings:
    """What a Redis URL and the store's arguments say, checked (see :func:`parse_redis_url`)."""

    url: str  # redacted
    client_url: str  # the first node, without the store's own query options
    extra_nodes: list[str]
    prefix: str
    cluster: bool
    retention: float
    events_maxlen: int | None
    min_replicas: int
    wait_timeout_ms: int
    options: dict[str, Any] = field(default_factory=dict)  # for redis-py


def parse_redis_url(url: str, *, prefix: str | None, cluster: bool | None,
                    retention: float | None, events_maxlen: int | None, min_replicas: int,
                    wait_timeout_ms: int, options: dict[str, Any]) -> RedisSettings:
    """Read the store's options from ``url``'s query (they win over the arguments) and check
    them all; ``ConfigurationError`` names the first that is wrong.

    >>> s = parse_redis_url("redis+cluster://h1:7000,h2:7001?prefix=p:", prefix=None,
    ...     cluster=None, retention=None, events_maxlen=None, min_replicas=0,
    ...     wait_timeout_ms=200, options={"socket_timeout": 0.5})
    >>> s.cluster, s.extra_nodes, s.client_url, s.prefix
    (True, ['h2:7001'], 'redis://h1:7000', 'p:')
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"not a Redis URL: {redact(url)!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = query.pop("prefix", prefix if prefix is not None else "tsbandit:")
    flag = query.pop("cluster", None)
    if cluster is None:
        cluster = scheme.endswith("+cluster") or (
            flag is not None and flag.lower() in {"1", "true", "yes", "on"}
        )
    try:
        retention = float(query.pop("retention", DEFAULT_RETENTION if retention is None
                                    else retention))
        maxlen_q = query.pop("events_maxlen", None)
        if maxlen_q is not None:
            events_maxlen = int(maxlen_q)
        min_replicas = int(query.pop("min_replicas", min_replicas))
        wait_timeout_ms = int(query.pop("wait_timeout_ms", wait_timeout_ms))
    except ValueError:
        raise ConfigurationError(
            f"bad retention, events_maxlen, min_replicas or wait_timeout_ms in Redis URL "
            f"{redact(url)!r}") from None
    socket_timeout = float(options["socket_timeout"])
    if min_replicas < 0:
        raise ConfigurationError(f"min_replicas == {min_replicas!r}, must be >= 0")
    if wait_timeout_ms < 1 or wait_timeout_ms / 1000 >= socket_timeout:
        raise ConfigurationError(
            f"wait_timeout_ms == {wait_timeout_ms!r}, must be >= 1 and below "
            f"socket_timeout ({socket_timeout} s)")
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError(f"prefix == {prefix!r}, must not contain braces")
    retention = check_retention(retention)
    events_maxlen = check_events_maxlen(events_maxlen)
    hosts = parts.netloc.rsplit("@", 1)
    userinfo, hostlist = (hosts[0] + "@", hosts[1]) if len(hosts) == 2 else ("", hosts[0])
    nodes = [h for h in hostlist.split(",") if h]
    if not nodes:
        raise ConfigurationError(f"no host in Redis URL {redact(url)!r}")
    if len(nodes) > 1 and not cluster:
        raise ConfigurationError("several hosts are only allowed for a Redis Cluster URL")
    if cluster and parts.path not in ("", "/", "/0"):
        raise ConfigurationError("a Redis Cluster has only database 0")
    client_url = urlunsplit(
        (scheme.split("+")[0], userinfo + nodes[0], parts.path, urlencode(query), "")
    )
    return RedisSettings(redact(url), client_url, nodes[1:], prefix, bool(cluster), retention,
                         events_maxlen, min_replicas, wait_timeout_ms, options)


def reply_status(reply: list[Any]) -> str:
    """The first element of a script's reply (its status), as text."""
    s = reply[0]
    return s.decode() if isinstance(s, bytes) else str(s)


class RedisConnection:
    """The client of a standalone Redis, built lazily, shared by the store's threads."""

    def __init__(self, settings: RedisSettings) -> None:
        self.url = settings.url
        self.client_url = settings.client_url
        self.extra_nodes = settings.extra_nodes
        self.options = settings.options
        self.min_replicas = settings.min_replicas
        self.wait_timeout_ms = settings.wait_timeout_ms
        self._lock = threading.Lock()
        self._client_obj: Any = None
        #: each thread's own connection for the standalone command path (see ``send``)
        self._local = threading.local()
        self._texts = {k: _lua.PRELUDE + v for k, v in _lua.SCRIPTS.items()}
        self._shas = {k: hashlib.sha1(v.encode()).hexdigest() for k, v in self._texts.items()}

    # -- the client ---------------------------------------------------------------------------
    def _build(self, retry: Retry) -> Any:
        return redis.Redis.from_url(self.client_url, retry=retry, **self.options)

    def client(self) -> Any:
        """The redis-py client (built on first use; ``StoreUnavailableError`` if it cannot)."""
        client = self._client_obj
        if client is not None:
            return client
        with self._lock:
            if self._client_obj is not None:
                return self._client_obj
            try:
                client = self._build(Retry(NoBackoff(), 0))
            except (RedisError, OSError) as exc:
                raise StoreUnavailableError(f"cannot reach Redis at {self.url}: {exc}") from exc
            self._client_obj = client
            return client

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        why = getattr(exc, "status_code", None) or type(exc).__name__
        return StoreUnavailableError(f"Redis at {self.url} unavailable ({why}): {exc}")

    def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)``, mapping connection failures to ``StoreUnavailableError``."""
        try:
            return fn(self.client())
        except (RedisError, RedisClusterException, OSError) as exc:
            if is_outage(exc):
                raise self.unavailable(exc) from exc
            raise  # a reply that is an answer (a script error: a bug), not an outage

    def send(self, client: Any, args: tuple[Any, ...]) -> Any:
        """One command on this thread's own connection of ``client``'s pool (standalone).

        ``client.execute_command`` checks a connection out of the pool and back in, records
        metrics and looks up response callbacks on every call: measured here, 63 µs of CPU per
        ``GET`` against 31 µs for the same command sent on a held connection -- two commands
        per decision. The connection stays this thread's (a new one after a fork or when the
        client is rebuilt); the pool still owns it, so ``close`` disconnects it. Replies are raw
        (``HGETALL`` a flat list); error replies raise as they do through the client, and a
        broken or timed-out connection is disconnected by redis-py and reconnects next time.
        """
        conn = self._held(client)
        conn.send_packed_command(conn.pack_command(*args), check_health=False)
        return conn.read_response()

    def _held(self, client: Any) -> Any:
        held = getattr(self._local, "held", None)
        if held is None or held[0] is not client or held[1] != os.getpid():
            held = (client, os.getpid(), client.connection_pool.get_connection())
            self._local.held = held
        return held[2]

    def hgetall(self, key: str) -> Mapping[bytes, bytes]:
        """One hash, in one round trip."""
        reply = self.run(lambda c: self.send(c, ("HGETALL", key)))
        # a map under RESP3 (redis-py's default), a flat list under RESP2
        return reply if isinstance(reply, dict) else dict(zip(reply[0::2], reply[1::2],
                                                               strict=True))

    def hgetall_many(self, keys: list[str]) -> list[Mapping[bytes, bytes]]:
        """Several hashes in one pipelined round trip (on this thread's held connection)."""
        def fetch(client: Any) -> list[Any]:
            conn = self._held(client)
            conn.send_packed_command(conn.pack_commands([("HGETALL", k) for k in keys]),
                                     check_health=False)
            return [conn.read_response() for _ in keys]

        return [r if isinstance(r, dict) else dict(zip(r[0::2], r[1::2], strict=True))
                for r in self.run(fetch)]

    def _evalsha(self, client: Any, command: tuple[Any, ...]) -> Any:
        return self.send(client, command)

    def _load_script(self, client: Any, text: str) -> None:
        # on the held connection too: through the pool, every thread meeting a restarted
        # server at once would check out a connection more, and keep it in the pool
        self.send(client, ("SCRIPT", "LOAD", text))

    # -- scripts and durability (min_replicas) -------------------------------------------------
    def script(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """Run script ``name`` of :mod:`tsbandit.stores._lua` (loading it on a server that
        does not have it); with ``min_replicas``, a write that did not reach that many
        replicas raises ``StoreUnavailableError``, and a "duplicate" (or an assignment found
        "live") is fenced first."""
        command = ("EVALSHA", self._shas[name], len(keys), *keys, *args)
        durable = self.min_replicas > 0 and name not in _READ_ONLY_SCRIPTS
        acked = [self.min_replicas]

        def evalsha(client: Any) -> Any:
            if durable:
                reply, acked[0] = self._with_wait(client, keys[0], command)
                return reply
            return self._evalsha(client, command)

        def call(client: Any) -> Any:
            try:
                return evalsha(client)
            except NoScriptError:
                # a restarted or new server: load once and run (the script did not run)
                self._load_script(client, self._texts[name])
                return evalsha(client)

        reply = list(self.run(call))
        if durable:
            status = reply_status(reply)
            if status == "ok" and acked[0] < self.min_replicas:
                raise self._not_durable(acked[0])
            if status in _FENCED_ANSWERS:  # acknowledged before: is it durable now?
                self.fence(keys[0])
        return reply

    def _with_wait(self, client: Any, key: str, args: tuple[Any, ...]) -> tuple[Any, int]:
        """Send ``args`` then ``WAIT min_replicas wait_timeout_ms`` on one connection to the
        node of ``key`` (WAIT counts the replicas that have this connection's writes); the
        command's reply (an error reply raised) and the number of replicas that have it."""
        conn = self._held(client)
        conn.send_packed_command(conn.pack_commands([args, self._wait_command()]),
                                 check_health=False)
        replies: list[Any] = []
        for _ in range(2):  # read both replies, even after an error reply
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return self._waited(replies)

    def _wait_command(self) -> tuple[Any, ...]:
        return ("WAIT", self.min_replicas, self.wait_timeout_ms)

    @staticmethod
    def _waited(replies: list[Any]) -> tuple[Any, int]:
        if isinstance(replies[0], Exception):
            raise replies[0]
        if isinstance(replies[1], Exception):
            raise replies[1]
        return replies[0], int(replies[1])

    def _not_durable(self, acked: int) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"Redis at {self.url}: the write reached {acked} of min_replicas="
            f"{self.min_replicas} replicas within {self.wait_timeout_ms} ms, so it is not known "
            "to be durable (a failover may lose it); retry with the same decision id")

    def fence(self, key: str) -> None:
        """Make sure earlier writes to ``key``'s node have reached ``min_replicas`` (a retried
        reward answered "duplicate" wrote nothing, and WAIT covers only this connection's own
        writes: one small expiring write to the bandit's slot, then WAIT, covers them all)."""
        fence = ("SET", key + ":fence", "1", "PX", "60000")
        _, acked = self.run(lambda c: self._with_wait(c, key, fence))
        if acked < self.min_replicas:
            raise self._not_durable(acked)

    # -- health and shutdown ------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"ok": True}`` when the server answers a PING."""
        self.run(lambda c: c.ping())
        return {"ok": True}

    def close(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()
