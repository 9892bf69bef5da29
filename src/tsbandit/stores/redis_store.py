"""Redis store: standalone or Redis Cluster, shared by any number of workers and machines.

Every mutation is one server-side Lua script (see :mod:`tsbandit.stores._lua`), so concurrent
workers never lose or double an update and a reward is consumed, added and logged at once. A read
is one ``HGETALL``. All keys of a bandit share the hash tag ``{bandit}``, so on a Cluster a bandit
lives in one slot and every script runs on one node. Statistics are raw little-endian float64
bytes; nothing is pickled. This module encodes the scripts' arguments and decodes their replies;
the connection is :mod:`tsbandit.stores.redis_conn` (standalone) or
:mod:`tsbandit.stores.redis_cluster`, validation and the public methods are
:class:`~tsbandit.stores.base.BaseStore`'s.

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

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExistsError,
    DecisionExpiredError,
    DecisionNotFoundError,
    SerializationError,
    StoreUnavailableError,
    TsbanditError,
    VersionConflictError,
)
from . import records
from .base import BaseStore
from .lifecycle import (
    assignment_record,
    bandit_not_found,
    claim_record,
    not_found,
    pending_record,
)
from .redis_cluster import ClusterConnection
from .redis_conn import RedisConnection, parse_redis_url, reply_status
from .validation import overflow_error

__all__ = ["RedisStore"]

_STREAM_ID = re.compile(r"\A\d+-\d+\Z")


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in shape)


def _parse_shape(text: bytes) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(b","))


def _fstr(x: float) -> str:
    """Exact text of a float (Lua's ``tonumber`` and Redis' ``strtod`` read it back exactly)."""
    return repr(float(x))


def _cver_arg(config_version: int | None) -> str:
    return "" if config_version is None else str(int(config_version))


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


def _array_args(arrays: Mapping[str, np.ndarray]) -> list[Any]:
    args: list[Any] = [",".join(arrays)]
    for v in arrays.values():
        args += [_shape_text(v.shape), v.tobytes()]
    return args


def _snapshot(name: str, fields: Mapping[bytes, bytes]) -> records.Snapshot:
    names = fields[b"names"].decode()
    arrays = {}
    for k in names.split(",") if names else []:
        arrays[k] = np.frombuffer(fields[b"s:" + k.encode()], dtype="<f8").reshape(
            _parse_shape(fields[b"h:" + k.encode()])
        )
    decayed = fields.get(b"decayed_at")
    return records.Snapshot(
        name=name,
        config=json.loads(fields[b"config"]),
        arrays=arrays,
        version=int(fields[b"version"]),
        config_version=int(fields[b"cver"]),
        decayed_at=None if decayed is None else float(decayed),
    )


def _snapshot_from_list(name: str, flat: list[Any]) -> records.Snapshot:
    return _snapshot(name, dict(zip(flat[0::2], flat[1::2], strict=True)))


def _assign_args(a: records.EncodedAssignment) -> list[Any]:
    """ARGV of the ``assign`` script: key, entry (the id's JSON, a line feed, the payload's
    JSON), expires_at, now, the id to replace as JSON or ''."""
    return [a.key, a.item + "\n" + a.payload, _fstr(a.expires_at), _fstr(a.now),
            a.replace or ""]


def _assignment(key: str, reply: list[Any]) -> records.Assignment:
    """The live assignment a script found: ``{status, entry, expires_at}``, created False."""
    payload = reply[1].split(b"\n", 1)[1]
    return assignment_record(key, payload, float(reply[2]), False)


def _error(name: str, status: str, reply: list[Any]) -> Exception:
    """The error for a script's status that is not the caller's to read."""
    if status == "notfound":
        return bandit_not_found(name)
    if status == "conflict":
        return VersionConflictError(f"config_version is stale, the bandit is at {int(reply[1])}")
    if status == "shape":
        return SerializationError(reply[1].decode())
    if status == "overflow":
        return overflow_error(reply[1].decode())
    # a script answering something this code does not know (another version's script?)
    return StoreUnavailableError(f"unexpected reply from the Redis store: {reply!r}")


def _pending(name: str, decision_id: str, payload: bytes,
             entry: bytes) -> records.PendingDecision:
    """A stored decision from its payload and its status entry: "<status>|<deadline>", then
    the token of a claim or the outcome of a reward."""
    status_code, deadline, *rest = entry.decode().split("|")
    outcome = float(rest[0]) if status_code == records.REWARDED and rest else None
    return pending_record(decision_id, payload, float(deadline), status_code, outcome)


def _reward_answer(name: str, decision_id: str, now: float, status: str,
                   reply: list[Any]) -> records.RewardResult | TsbanditError:
    """A reward script's answer for one reward: its result, or the error it stands for."""
    if status == "ok":
        return records.RewardResult("applied", int(reply[1]))
    if status == "duplicate":
        return records.RewardResult("duplicate", int(reply[1]))
    if status == "nodecision":
        return not_found(name, decision_id)
    if status == "expired":
        return DecisionExpiredError(
            f"decision {decision_id!r} expired at {float(reply[1])} (now {now})")
    error = _error(name, status, reply)
    if isinstance(error, TsbanditError) and not isinstance(
            error, BanditNotFoundError | StoreUnavailableError):
        return error
    raise error


class RedisStore(BaseStore):
    """:class:`~tsbandit.stores.protocol.Store` on Redis or a Redis Cluster.

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
        options = {"socket_timeout": socket_timeout,
                   "socket_connect_timeout": socket_connect_timeout, **redis_options}
        s = parse_redis_url(url, prefix=prefix, cluster=cluster, retention=retention,
                            events_maxlen=events_maxlen, min_replicas=min_replicas,
                            wait_timeout_ms=wait_timeout_ms, options=options)
        super().__init__(retention=s.retention, events_maxlen=s.events_maxlen)
        self.url, self.prefix, self.cluster = s.url, s.prefix, s.cluster
        self.min_replicas, self.wait_timeout_ms = s.min_replicas, s.wait_timeout_ms
        self._maxlen_arg = "" if s.events_maxlen is None else str(s.events_maxlen)
        self._redis = ClusterConnection(s) if s.cluster else RedisConnection(s)
        if not s.cluster:
            self._redis.client()  # standalone clients connect lazily; this only builds the pool

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "standalone"
        return f"RedisStore({self.url!r}, prefix={self.prefix!r}, {kind})"

    # -- keys and replies ---------------------------------------------------------------------
    def _keys(self, name: str) -> list[str]:
        """state, dec, ds, due, purge, events, asg, asgx (the layout of
        :mod:`tsbandit.stores._lua`)."""
        state = f"{self.prefix}{{{name}}}"
        return [state, *(state + s for s in (":dec", ":ds", ":due", ":purge", ":events",
                                             ":asg", ":asgx"))]

    @property
    def _registry(self) -> str:
        return self.prefix + "bandits"

    def _script(self, script: str, name: str, keys: list[str], args: list[Any],
                answers: tuple[str, ...] = ()) -> tuple[str, list[Any]]:
        """Run a script; its status and reply. Statuses in ``answers`` are the caller's to
        read; the common ones (no bandit, stale version, bad shape, overflow) raise."""
        reply = self._redis.script(script, keys, args)
        status = reply_status(reply)
        if status == "ok" or status in answers:
            return status, reply
        raise _error(name, status, reply)

    def _consume_keys(self, name: str) -> list[str]:
        """The keys of the scripts that add a decision or an event: state, dec, ds, due,
        events."""
        k = self._keys(name)
        return [k[0], k[1], k[2], k[3], k[5]]

    # -- bandits ----------------------------------------------------------------------------
    def _create(self, name: str, config: str, arrays: dict[str, np.ndarray],
                cver: int) -> records.Snapshot:
        status, reply = self._script("create", name, self._keys(name)[:1],
                                     [config, cver, *_array_args(arrays)], answers=("exists",))
        # The registry set lives in another slot, so it is updated after the script. A crash in
        # between leaves a bandit that read() sees but list_bandits() misses until the next
        # create_bandit() of that name re-registers it (and reports it exists).
        self._redis.run(lambda c: c.sadd(self._registry, name))
        if status == "exists":
            raise BanditExistsError(f"a bandit named {name!r} already exists")
        return _snapshot_from_list(name, reply[1:])

    def exists(self, name: str) -> bool:
        return bool(self._redis.run(lambda c: c.exists(self._keys(name)[0])))

    def list_bandits(self) -> list[str]:
        names = sorted(m.decode() for m in self._redis.run(lambda c: c.smembers(self._registry)))
        if not names:
            return []

        def check(c: Any) -> list[Any]:
            pipe = c.pipeline(transaction=False)
            for n in names:
                pipe.exists(self._keys(n)[0])
            return pipe.execute()

        alive = self._redis.run(check)
        return [n for n, ok in zip(names, alive, strict=True) if ok]

    def delete_bandit(self, name: str) -> None:
        self._script("delete", name, self._keys(name), [])
        self._redis.run(lambda c: c.srem(self._registry, name))

    def read(self, name: str) -> records.Snapshot:
        fields = self._redis.hgetall(self._keys(name)[0])
        if not fields:
            raise bandit_not_found(name)
        return _snapshot(name, fields)

    def read_many(self, names: Sequence[str]) -> list[records.Snapshot]:
        """:meth:`read` of several bandits in one pipelined round trip (on a Cluster, one per
        node holding some of them): each snapshot is consistent, not all of them together.
        A sharded bandit's snapshot is read so (:mod:`tsbandit.stores.sharded`)."""
        keys = [self._keys(n)[0] for n in names]
        out = []
        for n, fields in zip(names, self._redis.hgetall_many(keys), strict=True):
            if not fields:
                raise bandit_not_found(n)
            out.append(_snapshot(n, fields))
        return out

    def _replace(self, name: str, config: str, arrays: dict[str, np.ndarray] | None,
                 expected: int | None) -> records.Snapshot:
        args: list[Any] = [_cver_arg(expected), config]
        args += ["0"] if arrays is None else ["1", *_array_args(arrays)]
        _, reply = self._script("replace", name, self._keys(name)[:1], args)
        return _snapshot_from_list(name, reply[1:])

    # -- statistics -------------------------------------------------------------------------
    def _add(self, name: str, deltas: dict[str, np.ndarray], cver: int | None) -> int:
        _, reply = self._script("add", name, self._keys(name)[:1],
                                [_cver_arg(cver), *_delta_args(deltas)])
        return int(reply[1])

    def _scale(self, name: str, gamma: float) -> int:
        _, reply = self._script("scale", name, self._keys(name)[:1], [_fstr(gamma)])
        return int(reply[1])

    def _decay(self, name: str, half_life: float, now: float) -> float:
        _, reply = self._script("decay", name, self._keys(name)[:1],
                                [_fstr(half_life), _fstr(now)])
        return float(reply[1])

    # -- pending decisions ------------------------------------------------------------------
    def _put_pending(self, name: str, rows: list[records.EncodedDecision],
                     if_at: tuple[int, int] | None = None) -> records.Snapshot | None:
        args: list[Any] = [self._maxlen_arg, *(("", "") if if_at is None else map(str, if_at))]
        for did, payload, deadline, event in rows:
            args += [did, payload, _fstr(deadline), "" if event is None else event]
        status, reply = self._script("put_pending", name, self._consume_keys(name), args,
                                     answers=("exists", "moved"))
        if status == "exists":
            raise DecisionExistsError(f"decision {reply[1].decode()!r} already exists")
        return _snapshot_from_list(name, reply[1]) if status == "moved" else None

    def get_pending(self, name: str, decision_id: str) -> records.PendingDecision:
        status, reply = self._script("get_pending", name, self._keys(name)[:3], [decision_id],
                                     answers=("nodecision",))
        if status == "nodecision":
            raise not_found(name, decision_id)
        return _pending(name, decision_id, reply[1], reply[2])

    def _apply_reward(self, name: str, decision_id: str, deltas: dict[str, np.ndarray],
                      event: str | None, now: float, cver: int | None,
                      outcome: float | None) -> records.RewardResult:
        status, reply = self._script(
            "apply_reward", name, self._keys(name)[:6],
            [decision_id, _fstr(now), _cver_arg(cver), event or "", self._maxlen_arg,
             "" if outcome is None else _fstr(outcome), *_delta_args(deltas)],
            answers=("nodecision", "duplicate", "expired"),
        )
        res = _reward_answer(name, decision_id, now, status, reply)
        if isinstance(res, Exception):
            raise res
        return res

    def _apply_reward_many(self, name: str, rows: list[records.EncodedReward]
                           ) -> list[records.RewardResult | TsbanditError]:
        args: list[Any] = [self._maxlen_arg]
        for r in rows:
            item = [r.decision_id, _fstr(r.now), _cver_arg(r.cver), r.event or "",
                    "" if r.outcome is None else _fstr(r.outcome), *_delta_args(r.deltas)]
            args += [len(item), *item]
        keys = self._keys(name)[:6]
        _, reply = self._script("apply_reward_many", name, keys, args)
        out = [_reward_answer(name, r.decision_id, r.now, reply_status(a), a)
               for r, a in zip(rows, reply[1:], strict=True)]
        if self.min_replicas and any(isinstance(o, records.RewardResult) and o.duplicate
                                     for o in out):
            self._redis.fence(keys[0])  # what a duplicate acknowledges is durable too
        return out

    def _get_pending_many(self, name: str, ids: list[str]
                          ) -> list[records.PendingDecision | DecisionNotFoundError]:
        _, reply = self._script("get_pending_many", name, self._keys(name)[:3], ids)
        return [_pending(name, i, *a) if a else not_found(name, i)
                for i, a in zip(ids, reply[1:], strict=True)]

    def _claim_expired(self, name: str, now: float, lease_until: float, limit: int,
                       token: str) -> list[records.ClaimedDecision]:
        _, reply = self._script("claim_expired", name, self._keys(name)[:5],
                                [_fstr(now), limit, _fstr(lease_until), token])
        return [
            claim_record(i.decode(), p, float(dl), token)
            for i, dl, p in zip(reply[1::3], reply[2::3], reply[3::3], strict=True)
        ]

    def _settle_expired(self, name: str, claim: records.ClaimedDecision,
                        deltas: dict[str, np.ndarray], event: str | None,
                        cver: int | None) -> bool:
        status, _ = self._script(
            "settle_expired", name, self._keys(name)[:6],
            [claim.decision_id, claim.token, _cver_arg(cver), event or "", self._maxlen_arg,
             *_delta_args(deltas)],
            answers=("lost",),
        )
        return status == "ok"

    def _purge(self, name: str, cutoff: float, limit: int, now: float) -> records.PurgeResult:
        k = self._keys(name)
        # the :purge zset scores each consumed decision with its deadline: the retention in
        # effect now decides
        _, reply = self._script("purge", name, [k[0], k[1], k[2], k[4], k[5], k[6], k[7]],
                                [_fstr(cutoff), limit, self._maxlen_arg, _fstr(now)])
        return records.PurgeResult(int(reply[1]), int(reply[2]), int(reply[3]))

    # -- sticky assignments -----------------------------------------------------------------
    def _get_assignment(self, name: str, key: str, now: float) -> records.Assignment | None:
        k = self._keys(name)
        status, reply = self._script("get_assignment", name, [k[0], k[6], k[7]],
                                     [key, _fstr(now)], answers=("none",))
        return None if status == "none" else _assignment(key, reply)

    def _assign(self, name: str, a: records.EncodedAssignment) -> records.Assignment:
        k = self._keys(name)
        status, reply = self._script("assign", name, [k[0], k[6], k[7]], _assign_args(a),
                                     answers=("live",))
        if status == "live":
            return _assignment(a.key, reply)
        return assignment_record(a.key, a.payload, a.expires_at, True)

    # -- events -----------------------------------------------------------------------------
    def _append_event(self, name: str, event: str) -> None:
        k = self._keys(name)
        self._script("append_event", name, [k[0], k[5]], [event, self._maxlen_arg])

    def _cursor(self, after: str | None) -> str:
        if after is not None and not _STREAM_ID.match(str(after)):
            raise ConfigurationError(f"cursor {after!r} is not a cursor of this store")
        return "-" if after is None else "(" + after

    def _read_events(self, name: str, start: str, limit: int) -> list[tuple[bytes, bytes]]:
        key = self._keys(name)[5]
        entries = self._redis.run(lambda c: c.xrange(key, start, "+", count=limit))
        if not entries:  # nothing new -- or no such bandit: only then one more round trip
            if not self.exists(name):
                raise bandit_not_found(name)
        return [(i, fields[b"e"]) for i, fields in entries]

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        self._redis.run(lambda c: c.ping())

    def health(self) -> dict[str, Any]:
        """``{"ok": True}`` when Redis answers; on a Cluster, the cluster's own view (see
        :meth:`ClusterConnection.health <tsbandit.stores.redis_cluster.ClusterConnection.health>`).
        """
        return self._redis.health()

    def close(self) -> None:
        self._redis.close()
