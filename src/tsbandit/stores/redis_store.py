"""Redis store: standalone or Redis Cluster, shared by any number of workers and machines.

Every mutation is one server-side Lua script (see :mod:`tsbandit.stores._lua`), so concurrent
workers never lose or double an update and a reward is consumed, added and logged at once. A read
is one ``HGETALL``. All keys of a bandit share the hash tag ``{bandit}``, so on a Cluster a bandit
lives in one slot and every script runs on one node. Statistics are raw little-endian float64
bytes; nothing is pickled.

URLs (see :func:`tsbandit.stores.open_store`)::

    redis://[[user]:password@]host[:port][/db][?prefix=...&socket_timeout=...]
    rediss://...                                   TLS
    redis+cluster://host:port[,host:port...][?...] Redis Cluster (also rediss+cluster://,
    redis://host:port?cluster=true)                or the ``cluster=true`` query flag

Durability: Redis replicates asynchronously, so by default a write is acknowledged when the
primary has it, and a failover right after can lose it (the replica that takes over may not
have it yet). ``?min_replicas=N`` makes every write that acknowledges something (a decision, a
reward, an arm change...) wait (``WAIT N wait_timeout_ms``, on the same connection, on the node
of the bandit's slot) until N replicas have it; fewer within ``wait_timeout_ms`` (default 200)
raise :class:`~tsbandit.errors.StoreUnavailableError` ("not known to be durable"): the write
may or may not survive a failover, and retrying a reward with the same decision id is safe.

Failures: a refused or timed-out connection raises
:class:`~tsbandit.errors.StoreUnavailableError` quickly (defaults: 0.25 s to connect, 0.5 s per
reply, no automatic retry, so an unreachable server fails well within 1 s). Commands are never
retried by the client: a script whose reply was lost may have run (fully), so a blind retry could
double a plain :meth:`RedisStore.add`; :meth:`RedisStore.apply_reward` is safe to retry (the
repeat answers "duplicate").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterError,
    MovedError,
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

from ..errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    SerializationError,
    StoreUnavailableError,
)
from . import _lua
from .base import (
    DEFAULT_RETENTION,
    ClaimedDecision,
    DecisionExistsError,
    EventPage,
    NewDecision,
    PendingDecision,
    PurgeResult,
    RewardResult,
    Snapshot,
    StoreMixin,
    VersionConflictError,
    check_arrays,
    check_decision_id,
    check_deltas,
    check_events_maxlen,
    check_gamma,
    check_half_life,
    check_limit,
    check_name,
    check_retention,
    check_time,
    dumps,
    encode_new_decisions,
    overflow_error,
)

__all__ = ["RedisStore"]

_STREAM_ID = re.compile(r"\A\d+-\d+\Z")
#: scripts that never write (no WAIT after them)
_READ_ONLY_SCRIPTS = frozenset({"get_pending"})
_STATUS = {"p": "pending", "c": "claimed", "r": "rewarded", "x": "expired"}
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
    {
        "OOM",
        "BUSY",
        "LOADING",
        "MASTERDOWN",
        "CLUSTERDOWN",
        "TRYAGAIN",
        "READONLY",
        "NOREPLICAS",
        "MISCONF",
    }
)

_WRAPPED_CODE = re.compile(r"@user_script:[\s\d:@a-z_]*-([A-Z]+) ")


def _is_outage(exc: BaseException) -> bool:
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


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in shape)


def _parse_shape(text: bytes) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(b","))


def _fstr(x: float) -> str:
    """Exact text of a float (Lua's ``tonumber`` and Redis' ``strtod`` read it back exactly)."""
    return repr(float(x))


def _delta_args(deltas: Mapping[str, np.ndarray]) -> list[Any]:
    """Encode deltas as ``n, (name, shape, n_rows, (arm, row-bytes)...)...``: only the arms
    whose delta row is not all zeros travel. ``deltas`` come from ``check_deltas``."""
    args: list[Any] = [len(deltas)]
    for key, d in deltas.items():
        if d.ndim == 1:
            arms = d.nonzero()[0].tolist()
            args += [key, str(d.shape[0]), len(arms)]
            for a in arms:
                args += [a, d[a : a + 1].tobytes()]
            continue
        flat = d.reshape(d.shape[0], -1)
        arms = flat.any(axis=1).nonzero()[0].tolist() if flat.shape[1] else []
        args += [key, _shape_text(d.shape), len(arms)]
        for a in arms:
            args += [a, flat[a].tobytes()]
    return args


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore(StoreMixin):
    """:class:`~tsbandit.stores.base.Store` on Redis or a Redis Cluster.

    Parameters
    ----------
    url
        ``redis://``, ``rediss://``, ``redis+cluster://`` or ``rediss+cluster://`` URL; redis-py
        connection options may be given as query parameters (``socket_timeout``,
        ``max_connections``, ``ssl_cert_reqs``...). ``prefix``, ``retention``,
        ``events_maxlen``, ``cluster``, ``min_replicas`` and ``wait_timeout_ms`` in the query
        set the arguments below.
    prefix
        Prefix of every key (isolates deployments and tests). Must not contain braces.
    cluster
        Use the Cluster protocol (implied by a ``+cluster`` scheme).
    retention
        Seconds a consumed decision is remembered after its deadline.
    events_maxlen
        Trim each event stream to about this many entries (``XADD MAXLEN ~`` at each append,
        exactly this many after each :meth:`purge`); None keeps all.
    socket_timeout, socket_connect_timeout
        Seconds to wait for a reply / a connection before ``StoreUnavailableError``.
    min_replicas
        After every write that acknowledges something, wait until this many replicas have it
        (``WAIT``); 0 (default) does not wait, and an acknowledged write can be lost if the
        primary fails before it replicated.
    wait_timeout_ms
        How long a write waits for ``min_replicas`` (must be below ``socket_timeout``); fewer
        replicas by then raise ``StoreUnavailableError`` ("not known to be durable").
    **redis_options
        Passed to ``redis.Redis`` / ``redis.cluster.RedisCluster``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        cluster: bool | None = None,
        retention: float | None = None,
        events_maxlen: int | None = None,
        socket_timeout: float = 0.5,
        socket_connect_timeout: float = 0.25,
        min_replicas: int = 0,
        wait_timeout_ms: int = 200,
        **redis_options: Any,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in {"redis", "rediss", "redis+cluster", "rediss+cluster"}:
            raise ConfigurationError(f"not a Redis URL: {_redact(url)!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        prefix = query.pop("prefix", prefix if prefix is not None else "tsbandit:")
        flag = query.pop("cluster", None)
        if cluster is None:
            cluster = scheme.endswith("+cluster") or (
                flag is not None and flag.lower() in {"1", "true", "yes", "on"}
            )
        if retention is None:
            retention = DEFAULT_RETENTION
        try:
            retention = float(query.pop("retention", retention))
            maxlen_q = query.pop("events_maxlen", None)
            if maxlen_q is not None:
                events_maxlen = int(maxlen_q)
            min_replicas = int(query.pop("min_replicas", min_replicas))
            wait_timeout_ms = int(query.pop("wait_timeout_ms", wait_timeout_ms))
        except ValueError:
            raise ConfigurationError(
                f"bad retention, events_maxlen, min_replicas or wait_timeout_ms in Redis URL "
                f"{_redact(url)!r}") from None
        if min_replicas < 0:
            raise ConfigurationError(f"min_replicas == {min_replicas!r}, must be >= 0")
        if wait_timeout_ms < 1 or wait_timeout_ms / 1000 >= float(socket_timeout):
            raise ConfigurationError(
                f"wait_timeout_ms == {wait_timeout_ms!r}, must be >= 1 and below "
                f"socket_timeout ({float(socket_timeout)} s)")
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix == {prefix!r}, must not contain braces")
        retention = check_retention(retention)
        events_maxlen = check_events_maxlen(events_maxlen)
        self.url = _redact(url)
        self.prefix = prefix
        self.cluster = bool(cluster)
        self.retention = retention
        self.events_maxlen = events_maxlen
        self.min_replicas = min_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._maxlen_arg = "" if events_maxlen is None else str(int(events_maxlen))
        base_scheme = scheme.split("+")[0]
        hosts = parts.netloc.rsplit("@", 1)
        userinfo, hostlist = (hosts[0] + "@", hosts[1]) if len(hosts) == 2 else ("", hosts[0])
        nodes = [h for h in hostlist.split(",") if h]
        if not nodes:
            raise ConfigurationError(f"no host in Redis URL {self.url!r}")
        if len(nodes) > 1 and not self.cluster:
            raise ConfigurationError("several hosts are only allowed for a Redis Cluster URL")
        self._client_url = urlunsplit(
            (base_scheme, userinfo + nodes[0], parts.path, urlencode(query), "")
        )
        self._extra_nodes = nodes[1:]
        self._options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            **redis_options,
        }
        self._lock = threading.Lock()
        self._client_obj: Any = None
        #: each thread's own connection for the standalone command path (see ``_send``)
        self._local = threading.local()
        self._texts = {k: _lua.PRELUDE + v for k, v in _lua.SCRIPTS.items()}
        self._shas = {k: hashlib.sha1(v.encode()).hexdigest() for k, v in self._texts.items()}
        if self.cluster:
            if parts.path not in ("", "/", "/0"):
                raise ConfigurationError("a Redis Cluster has only database 0")
        else:
            self._client()  # standalone clients connect lazily; this only builds the pool

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "standalone"
        return f"RedisStore({self.url!r}, prefix={self.prefix!r}, {kind})"

    # -- connection ---------------------------------------------------------------------------
    def _client(self) -> Any:
        client = self._client_obj
        if client is not None:
            return client
        with self._lock:
            if self._client_obj is not None:
                return self._client_obj
            no_retry = Retry(NoBackoff(), 0)
            try:
                if self.cluster:
                    from redis.cluster import ClusterNode, RedisCluster

                    startup = []
                    for node in self._extra_nodes:
                        host, _, port = node.rpartition(":")
                        startup.append(ClusterNode(host or node, int(port or 6379)))
                    client = RedisCluster(
                        url=self._client_url,
                        startup_nodes=startup,
                        retry=no_retry,
                        **self._options,
                    )
                else:
                    client = redis.Redis.from_url(self._client_url, retry=no_retry, **self._options)
            except (RedisError, OSError) as exc:
                raise StoreUnavailableError(f"cannot reach Redis at {self.url}: {exc}") from exc
            self._client_obj = client
            return client

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        why = getattr(exc, "status_code", None) or type(exc).__name__
        return StoreUnavailableError(f"Redis at {self.url} unavailable ({why}): {exc}")

    def _run(self, fn: Any) -> Any:
        """Run ``fn(client)``, mapping connection failures to ``StoreUnavailableError``."""
        try:
            return fn(self._client())
        except (RedisError, RedisClusterException, OSError) as exc:
            if _is_outage(exc):
                raise self._unavailable(exc) from exc
            raise  # a reply that is an answer (a script error: a bug), not an outage

    def _send(self, client: Any, args: tuple[Any, ...]) -> Any:
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

    # -- durability (min_replicas) ------------------------------------------------------------
    def _with_wait(self, client: Any, key: str, args: tuple[Any, ...]) -> tuple[Any, int]:
        """Send ``args`` then ``WAIT min_replicas wait_timeout_ms`` on one connection to the
        node of ``key`` (WAIT counts the replicas that have this connection's writes); the
        command's reply (an error reply raised) and the number of replicas that have it."""
        wait = ("WAIT", self.min_replicas, self.wait_timeout_ms)
        if not self.cluster:
            conn = self._held(client)
            conn.send_packed_command(conn.pack_commands([args, wait]), check_health=False)
            replies: list[Any] = []
            for _ in range(2):  # read both replies, even after an error reply
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        else:
            for attempt in range(2):
                try:
                    node = client.get_node_from_key(key)
                    pipe = client.get_redis_connection(node).pipeline(transaction=False)
                    pipe.execute_command(*args)
                    pipe.execute_command(*wait)
                    replies = pipe.execute(raise_on_error=False)
                except (RedisConnectionError, RedisTimeoutError, RedisClusterException):
                    self._refresh_topology(client)  # a failover: find the new primary
                    raise
                if not isinstance(replies[0], MovedError) or attempt:
                    break
                self._refresh_topology(client)  # the command did not run: once more
        if isinstance(replies[0], Exception):
            raise replies[0]
        if isinstance(replies[1], Exception):
            raise replies[1]
        return replies[0], int(replies[1])

    @staticmethod
    def _refresh_topology(client: Any) -> bool:
        """Ask the cluster for its slots again (after a failover); False when nothing
        answers (the next command fails, and refreshes, again)."""
        try:
            client.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError):
            return False
        return True

    def _not_durable(self, acked: int) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"Redis at {self.url}: the write reached {acked} of min_replicas="
            f"{self.min_replicas} replicas within {self.wait_timeout_ms} ms, so it is not known "
            "to be durable (a failover may lose it); retry with the same decision id")

    def _fence(self, key: str) -> None:
        """Make sure earlier writes to ``key``'s node have reached ``min_replicas`` (a retried
        reward answered "duplicate" wrote nothing, and WAIT covers only this connection's own
        writes: one small expiring write to the bandit's slot, then WAIT, covers them all)."""
        fence = ("SET", key + ":fence", "1", "PX", "60000")
        _, acked = self._run(lambda c: self._with_wait(c, key, fence))
        if acked < self.min_replicas:
            raise self._not_durable(acked)

    def _script(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        sha = self._shas[name]

        durable = self.min_replicas > 0 and name not in _READ_ONLY_SCRIPTS
        acked = [self.min_replicas]

        def evalsha(client: Any) -> Any:
            if durable:
                reply, acked[0] = self._with_wait(
                    client, keys[0], ("EVALSHA", sha, len(keys), *keys, *args))
                return reply
            if self.cluster:  # routed by the keys' slot
                return client.evalsha(sha, len(keys), *keys, *args)
            return self._send(client, ("EVALSHA", sha, len(keys), *keys, *args))

        def call(client: Any) -> Any:
            try:
                return evalsha(client)
            except NoScriptError:
                # a restarted or new server: load once and run (the script did not run)
                client.script_load(self._texts[name])
                return evalsha(client)

        reply = list(self._run(call))
        if durable:
            status = self._status(reply)
            if status == "ok" and acked[0] < self.min_replicas:
                raise self._not_durable(acked[0])
            if status == "duplicate":  # acknowledged before: is it durable now?
                self._fence(keys[0])
        return reply

    # -- keys -------------------------------------------------------------------------------
    def _keys(self, name: str) -> list[str]:
        state = f"{self.prefix}{{{name}}}"
        return [
            state,
            state + ":dec",
            state + ":ds",
            state + ":due",
            state + ":purge",
            state + ":events",
        ]

    @property
    def _registry(self) -> str:
        return self.prefix + "bandits"

    # -- replies ----------------------------------------------------------------------------
    @staticmethod
    def _status(reply: list[Any]) -> str:
        s = reply[0]
        return s.decode() if isinstance(s, bytes) else str(s)

    def _raise_common(self, name: str, reply: list[Any]) -> None:
        status = self._status(reply)
        if status == "notfound":
            raise BanditNotFoundError(f"no bandit named {name!r}")
        if status == "conflict":
            raise VersionConflictError(f"config_version is stale, the bandit is at {int(reply[1])}")
        if status == "shape":
            raise SerializationError(reply[1].decode())
        if status == "overflow":
            raise overflow_error(reply[1].decode())
        if status != "ok":  # pragma: no cover - a script answering something unexpected
            raise RuntimeError(f"unexpected reply from the store: {reply!r}")

    @staticmethod
    def _snapshot(name: str, fields: Mapping[bytes, bytes]) -> Snapshot:
        names = fields[b"names"].decode()
        arrays = {}
        for k in names.split(",") if names else []:
            arrays[k] = np.frombuffer(fields[b"s:" + k.encode()], dtype="<f8").reshape(
                _parse_shape(fields[b"h:" + k.encode()])
            )
        decayed = fields.get(b"decayed_at")
        return Snapshot(
            name=name,
            config=json.loads(fields[b"config"]),
            arrays=arrays,
            version=int(fields[b"version"]),
            config_version=int(fields[b"cver"]),
            decayed_at=None if decayed is None else float(decayed),
        )

    @staticmethod
    def _pairs(flat: list[Any]) -> dict[Any, Any]:
        return dict(zip(flat[0::2], flat[1::2], strict=True))

    def _snapshot_from_list(self, name: str, flat: list[Any]) -> Snapshot:
        return self._snapshot(name, self._pairs(flat))

    @staticmethod
    def _array_args(arrays: Mapping[str, np.ndarray]) -> list[Any]:
        args: list[Any] = [",".join(arrays)]
        for v in arrays.values():
            args += [_shape_text(v.shape), v.tobytes()]
        return args

    # -- bandits ----------------------------------------------------------------------------
    def create_bandit(
        self, name: str, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> Snapshot:
        check_name(name)
        cfg = dumps(config, "config")
        arrs = check_arrays(arrays)
        keys = self._keys(name)
        reply = self._script("create", keys[:1], [cfg, *self._array_args(arrs)])
        # The registry set lives in another slot, so it is updated after the script. A crash in
        # between leaves a bandit that read() sees but list_bandits() misses until the next
        # create_bandit() of that name re-registers it (and reports it exists).
        exists = self._status(reply) == "exists"
        if not exists:
            self._raise_common(name, reply)
        self._run(lambda c: c.sadd(self._registry, name))
        if exists:
            raise BanditExistsError(f"a bandit named {name!r} already exists")
        return self._snapshot_from_list(name, reply[1:])

    def exists(self, name: str) -> bool:
        return bool(self._run(lambda c: c.exists(self._keys(name)[0])))

    def list_bandits(self) -> list[str]:
        names = sorted(m.decode() for m in self._run(lambda c: c.smembers(self._registry)))
        if not names:
            return []

        def check(c: Any) -> list[Any]:
            pipe = c.pipeline(transaction=False)
            for n in names:
                pipe.exists(self._keys(n)[0])
            return pipe.execute()

        alive = self._run(check)
        return [n for n, ok in zip(names, alive, strict=True) if ok]

    def delete_bandit(self, name: str) -> None:
        reply = self._script("delete", self._keys(name), [])
        self._raise_common(name, reply)
        self._run(lambda c: c.srem(self._registry, name))

    def read(self, name: str) -> Snapshot:
        key = self._keys(name)[0]
        if self.cluster:
            fields = self._run(lambda c: c.hgetall(key))
        else:
            reply = self._run(lambda c: self._send(c, ("HGETALL", key)))
            # a map under RESP3 (redis-py's default), a flat list under RESP2
            fields = reply if isinstance(reply, dict) else self._pairs(reply)
        if not fields:
            raise BanditNotFoundError(f"no bandit named {name!r}")
        return self._snapshot(name, fields)

    def replace(
        self,
        name: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        expected_config_version: int | None = None,
    ) -> Snapshot:
        cfg = dumps(config, "config")
        expected = "" if expected_config_version is None else str(int(expected_config_version))
        args: list[Any] = [expected, cfg]
        if arrays is None:
            args.append("0")
        else:
            args += ["1", *self._array_args(check_arrays(arrays))]
        reply = self._script("replace", self._keys(name)[:1], args)
        self._raise_common(name, reply)
        return self._snapshot_from_list(name, reply[1:])

    # -- statistics -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        deltas: Mapping[str, np.ndarray],
        *,
        config_version: int | None = None,
    ) -> int:
        args = _delta_args(check_deltas(deltas))
        expected = "" if config_version is None else str(int(config_version))
        reply = self._script("add", self._keys(name)[:1], [expected, *args])
        self._raise_common(name, reply)
        return int(reply[1])

    def scale(self, name: str, gamma: float) -> int:
        g = check_gamma(gamma)
        reply = self._script("scale", self._keys(name)[:1], [_fstr(g)])
        self._raise_common(name, reply)
        return int(reply[1])

    def decay(self, name: str, half_life: float, now: float) -> float:
        h = check_half_life(half_life)
        t = check_time("now", now)
        reply = self._script("decay", self._keys(name)[:1], [_fstr(h), _fstr(t)])
        self._raise_common(name, reply)
        return float(reply[1])

    # -- pending decisions ------------------------------------------------------------------
    def put_pending(
        self,
        name: str,
        decision_id: str,
        payload: Mapping[str, Any],
        deadline: float,
        *,
        event: Mapping[str, Any] | None = None,
    ) -> None:
        check_decision_id(decision_id)
        p = dumps(payload, "payload")
        e = "" if event is None else dumps(event, "event")
        dl = _fstr(check_time("deadline", deadline))
        k = self._keys(name)
        reply = self._script(
            "put_pending",
            [k[0], k[1], k[2], k[3], k[5]],
            [decision_id, p, dl, e, self._maxlen_arg],
        )
        if self._status(reply) == "exists":
            raise DecisionExistsError(f"decision {decision_id!r} already exists")
        self._raise_common(name, reply)

    def put_pending_many(self, name: str, items: Sequence[NewDecision]) -> None:
        rows = encode_new_decisions(items)
        if not rows:
            return
        args: list[Any] = [self._maxlen_arg]
        for did, p, dl, e in rows:
            args += [did, p, _fstr(dl), "" if e is None else e]
        k = self._keys(name)
        reply = self._script("put_pending_many", [k[0], k[1], k[2], k[3], k[5]], args)
        if self._status(reply) == "exists":
            raise DecisionExistsError(f"decision {reply[1].decode()!r} already exists")
        self._raise_common(name, reply)

    def get_pending(self, name: str, decision_id: str) -> PendingDecision:
        reply = self._script("get_pending", self._keys(name)[:3], [decision_id])
        if self._status(reply) == "nodecision":
            raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
        self._raise_common(name, reply)
        st = reply[2].decode().split("|")
        return PendingDecision(
            decision_id,
            json.loads(reply[1]),
            float(st[1]),
            _STATUS[st[0]],  # type: ignore[arg-type]
        )

    def apply_reward(
        self,
        name: str,
        decision_id: str,
        deltas: Mapping[str, np.ndarray],
        event: Mapping[str, Any] | None,
        now: float,
        *,
        config_version: int | None = None,
    ) -> RewardResult:
        args = _delta_args(check_deltas(deltas))
        e = "" if event is None else dumps(event, "event")
        t = check_time("now", now)
        expected = "" if config_version is None else str(int(config_version))
        reply = self._script(
            "apply_reward",
            self._keys(name),
            [decision_id, _fstr(t), "0", expected, e, self._maxlen_arg, *args],
        )
        status = self._status(reply)
        if status == "nodecision":
            raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
        if status == "duplicate":
            return RewardResult("duplicate", int(reply[1]))
        if status == "expired":
            raise DecisionExpiredError(
                f"decision {decision_id!r} expired at {float(reply[1])} (now {t})"
            )
        self._raise_common(name, reply)
        return RewardResult("applied", int(reply[1]))

    def claim_expired(
        self, name: str, now: float, *, limit: int = 100, lease: float = 30.0
    ) -> list[ClaimedDecision]:
        t = check_time("now", now)
        lease_until = t + check_time("lease", lease)
        token = uuid.uuid4().hex
        if int(limit) <= 0:
            if not self.exists(name):
                raise BanditNotFoundError(f"no bandit named {name!r}")
            return []
        reply = self._script(
            "claim_expired",
            self._keys(name)[:5],
            [_fstr(t), int(limit), _fstr(lease_until), token],
        )
        self._raise_common(name, reply)
        return [
            ClaimedDecision(i.decode(), json.loads(p), float(dl), token)
            for i, dl, p in zip(reply[1::3], reply[2::3], reply[3::3], strict=True)
        ]

    def settle_expired(
        self,
        name: str,
        claim: ClaimedDecision,
        deltas: Mapping[str, np.ndarray] | None,
        event: Mapping[str, Any] | None,
        *,
        config_version: int | None = None,
    ) -> bool:
        args = _delta_args(check_deltas(deltas))
        e = "" if event is None else dumps(event, "event")
        expected = "" if config_version is None else str(int(config_version))
        reply = self._script(
            "settle_expired",
            self._keys(name),
            [
                claim.decision_id,
                claim.token,
                "0",  # the purge zset scores the deadline; purge() subtracts the retention
                expected,
                e,
                self._maxlen_arg,
                *args,
            ],
        )
        if self._status(reply) == "lost":
            return False
        self._raise_common(name, reply)
        return True

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> PurgeResult:
        t = check_time("now", now)
        limit = check_limit(limit)
        k = self._keys(name)
        # the :purge zset scores each consumed decision with its deadline (the scripts that
        # consume add a retention of "0"): the retention in effect now decides
        reply = self._script("purge", [k[0], k[1], k[2], k[4], k[5]],
                             [_fstr(t - self.retention), limit, self._maxlen_arg])
        self._raise_common(name, reply)
        return PurgeResult(int(reply[1]), int(reply[2]))

    # -- events -----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        e = dumps(event, "event")
        k = self._keys(name)
        reply = self._script("append_event", [k[0], k[5]], [e, self._maxlen_arg])
        self._raise_common(name, reply)

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        limit = check_limit(limit)
        if after is not None and not _STREAM_ID.match(str(after)):
            raise ConfigurationError(f"cursor {after!r} is not a cursor of this store")
        key = self._keys(name)[5]
        start = "-" if after is None else "(" + after
        entries = self._run(lambda c: c.xrange(key, start, "+", count=limit))
        if not entries:  # nothing new -- or no such bandit: only then one more round trip
            if not self.exists(name):
                raise BanditNotFoundError(f"no bandit named {name!r}")
            return EventPage([], after)
        return EventPage([json.loads(fields[b"e"]) for _, fields in entries],
                         entries[-1][0].decode())

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        self._run(lambda c: c.ping())

    def health(self) -> dict[str, Any]:
        """``{"ok": True}`` when Redis answers; on a Cluster, the cluster's own view.

        Every node the client knows is asked for ``CLUSTER INFO``; the cluster is ok when every
        node that answers says ``cluster_state:ok`` with all 16384 slots served, and every
        primary the client routes to answers. A primary that does not answer triggers one
        topology refresh first (after a failover the replica that took over is the primary).
        Details: ``cluster_state``, ``cluster_slots_ok`` (the least any node reports),
        ``nodes_answered`` and ``primaries_unreachable``.
        """
        if not self.cluster:
            self.ping()
            return {"ok": True}
        client = self._run(lambda c: c)
        report = self._cluster_report(client)
        if report["primaries_unreachable"] and self._refresh_topology(client):
            report = self._cluster_report(client)  # (no refresh: report what was seen)
        if not report["nodes_answered"]:
            raise StoreUnavailableError(f"no node of the Redis Cluster at {self.url} answers")
        return report

    @staticmethod
    def _cluster_report(client: Any) -> dict[str, Any]:
        states: list[str] = []
        slots: list[int] = []
        unreachable = 0
        for node in client.get_nodes():
            try:
                info = client.get_redis_connection(node).execute_command("CLUSTER INFO")
            except (RedisError, RedisClusterException, OSError):
                unreachable += node.server_type == "primary"
                continue
            if isinstance(info, bytes | str):  # without redis-py's parser: "key:value" lines
                text = info.decode() if isinstance(info, bytes) else info
                info = dict(line.split(":", 1) for line in text.split() if ":" in line)
            states.append(str(info.get("cluster_state", "")))
            slots.append(int(info.get("cluster_slots_ok", 0)))
        state = "ok" if states and all(x == "ok" for x in states) else "fail"
        slots_ok = min(slots) if slots else 0
        return {
            "ok": state == "ok" and slots_ok == 16384 and not unreachable,
            "cluster_state": state,
            "cluster_slots_ok": slots_ok,
            "nodes_answered": len(states),
            "primaries_unreachable": unreachable,
        }

    def close(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()
