"""Embedded store on one SQLite file: the default (``sqlite:///tsbandit.db``).

WAL journal (readers never block the writer), a busy timeout, and every mutation in its own
``BEGIN IMMEDIATE`` transaction, so several processes on one machine can share the file: a
reward is applied fully or not at all even if its process is killed mid-write, and the state
survives restarts. Arrays are stored as raw little-endian float64 BLOBs (never pickle) with their
shape as text (``"5,11,11"``). Each thread (and each forked process) uses its own connection.

Tables: ``bandits`` (config, versions), ``stats`` (one BLOB per statistic), ``decisions`` (the
pending-decision log; ``due`` is the deadline, or the lease end while claimed, NULL once consumed;
``purge_at`` is set to the deadline when consumed, and :meth:`SQLiteStore.purge` deletes the rows
with ``purge_at + retention < now``, the retention in effect when it runs) and ``events`` (JSON
text, autoincrement id = append order; ``purge`` keeps the newest ``events_maxlen``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExpiredError,
    DecisionNotFoundError,
    SerializationError,
    StoreUnavailableError,
)
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
    check_int_cursor,
    check_limit,
    check_name,
    check_retention,
    check_time,
    decay_factor,
    dumps,
    encode_new_decisions,
)

__all__ = ["SQLiteStore", "parse_sqlite_url"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bandits (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    version INTEGER NOT NULL,
    config_version INTEGER NOT NULL,
    decayed_at REAL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats (
    bandit TEXT NOT NULL,
    name TEXT NOT NULL,
    pos INTEGER NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (bandit, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    bandit TEXT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    deadline REAL NOT NULL,
    status TEXT NOT NULL,
    token TEXT,
    due REAL,
    purge_at REAL,
    PRIMARY KEY (bandit, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decisions_due ON decisions (bandit, due) WHERE due IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_purge ON decisions (bandit, purge_at)
    WHERE purge_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bandit TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_bandit ON events (bandit, id);
"""
_SCHEMA_VERSION = 1
_STATUS = {"p": "pending", "c": "claimed", "r": "rewarded", "x": "expired"}
# OperationalError messages that mean "cannot use the database now", not a bug
_UNAVAILABLE = ("locked", "busy", "i/o", "unable to open", "readonly", "full", "disk")


def _unavailable(exc: sqlite3.Error) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(w in msg for w in _UNAVAILABLE)


def parse_sqlite_url(url: str) -> tuple[str, dict[str, Any]]:
    """``sqlite:///rel.db`` -> ``"rel.db"``, ``sqlite:////abs.db`` -> ``"/abs.db"`` (the
    SQLAlchemy convention), with the query options ``busy_timeout``, ``synchronous``,
    ``retention``, ``events_maxlen``.

    >>> parse_sqlite_url("sqlite:////tmp/x.db?busy_timeout=2")
    ('/tmp/x.db', {'busy_timeout': 2.0})
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc:
        raise ConfigurationError(
            f"SQLite URL {url!r} must look like sqlite:///relative.db or sqlite:////abs.db"
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} has no path")
    query = dict(parse_qsl(parts.query))
    options: dict[str, Any] = {}
    for key, conv in (("busy_timeout", float), ("retention", float), ("synchronous", str),
                      ("events_maxlen", int)):
        if key in query:
            try:
                options[key] = conv(query.pop(key))
            except ValueError:
                raise ConfigurationError(f"bad {key} in SQLite URL {url!r}") from None
    if query:
        raise ConfigurationError(f"unknown SQLite URL options: {sorted(query)}")
    return path, options


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in shape)


def _parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


class SQLiteStore(StoreMixin):
    """:class:`~tsbandit.stores.base.Store` on one SQLite file, shared by processes and threads.

    Parameters
    ----------
    path
        Database file (created with its tables if missing), or a ``sqlite:///`` URL whose
        query may set the options below (``?busy_timeout=2&synchronous=FULL``).
    busy_timeout
        Seconds a writer waits for the write lock before :class:`StoreUnavailableError`.
    synchronous
        SQLite ``synchronous`` pragma: ``"NORMAL"`` (default; in WAL mode a commit survives a
        process crash, the last commits may be lost on power failure) or ``"FULL"``.
    retention
        Seconds a consumed decision is remembered after its deadline.
    events_maxlen
        Keep about this many events per bandit: :meth:`purge` (run by every sweep) deletes the
        older ones; ``None`` keeps all. Between purges the log may grow past it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        retention: float = DEFAULT_RETENTION,
        events_maxlen: int | None = None,
    ) -> None:
        if str(path).startswith("sqlite:"):
            path, query = parse_sqlite_url(str(path))
            busy_timeout = query.get("busy_timeout", busy_timeout)
            synchronous = query.get("synchronous", synchronous)
            retention = query.get("retention", retention)
            events_maxlen = query.get("events_maxlen", events_maxlen)
        self.path = str(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ConfigurationError("an SQLite store needs a file path; use memory:// instead")
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(f"synchronous == {synchronous!r}, must be NORMAL or FULL")
        self.synchronous = synchronous.upper()
        self.busy_timeout = check_time("busy_timeout", busy_timeout)
        self.retention = check_retention(retention)
        self.events_maxlen = check_events_maxlen(events_maxlen)
        self.url = "sqlite:///" + self.path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        if not Path(self.path).parent.exists():
            raise ConfigurationError(f"directory of {self.path!r} does not exist")
        self._conn()  # fail fast, create the schema

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- connections and transactions -------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if self._closed:
            raise StoreUnavailableError("the SQLite store was closed")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                # executescript commits any open transaction first, so the script holds its own
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {_SCHEMA_VERSION};COMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: ``BEGIN IMMEDIATE`` for writes (takes the write lock up front, so
        no deadlock-prone lock upgrade), a plain ``BEGIN`` (a consistent snapshot) for reads."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            if _unavailable(exc):
                raise StoreUnavailableError(f"SQLite store busy or unavailable: {exc}") from exc
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and _unavailable(exc):
                raise StoreUnavailableError(f"SQLite store error: {exc}") from exc
            raise

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _bandit_row(c: sqlite3.Connection, name: str) -> tuple[Any, ...]:
        row = c.execute(
            "SELECT config, version, config_version, decayed_at FROM bandits WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise BanditNotFoundError(f"no bandit named {name!r}")
        return row

    @staticmethod
    def _arrays(c: sqlite3.Connection, name: str) -> dict[str, np.ndarray]:
        rows = c.execute(
            "SELECT name, shape, data FROM stats WHERE bandit = ? ORDER BY pos", (name,)
        ).fetchall()
        return {
            k: np.frombuffer(data, dtype="<f8").reshape(_parse_shape(shape))
            for k, shape, data in rows
        }

    @staticmethod
    def _check_version(stored: int, config_version: int | None) -> None:
        if config_version is not None and config_version != stored:
            raise VersionConflictError(
                f"config_version {config_version} is stale, the bandit is at {stored}"
            )

    def _add(self, c: sqlite3.Connection, name: str, deltas: Mapping[str, np.ndarray]) -> None:
        """Add deltas (validated first, then written) and bump the version."""
        if deltas:
            arrays = self._arrays(c, name)
            for key, d in deltas.items():
                if key not in arrays:
                    raise SerializationError(f"unknown statistic {key!r}; known: {sorted(arrays)}")
                if d.shape != arrays[key].shape:
                    raise SerializationError(
                        f"delta {key!r} has shape {d.shape}, stored {arrays[key].shape}"
                    )
            c.executemany(
                "UPDATE stats SET data = ? WHERE bandit = ? AND name = ?",
                [((arrays[k] + d).tobytes(), name, k) for k, d in deltas.items()],
            )
        c.execute("UPDATE bandits SET version = version + 1 WHERE name = ?", (name,))

    @staticmethod
    def _write_arrays(c: sqlite3.Connection, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        c.execute("DELETE FROM stats WHERE bandit = ?", (name,))
        c.executemany(
            "INSERT INTO stats (bandit, name, pos, shape, data) VALUES (?, ?, ?, ?, ?)",
            [
                (name, k, i, _shape_text(v.shape), v.tobytes())
                for i, (k, v) in enumerate(arrays.items())
            ],
        )

    def _scale(self, c: sqlite3.Connection, name: str, g: float) -> None:
        arrays = self._arrays(c, name)
        c.executemany(
            "UPDATE stats SET data = ? WHERE bandit = ? AND name = ?",
            [((v * g).tobytes(), name, k) for k, v in arrays.items()],
        )
        c.execute("UPDATE bandits SET version = version + 1 WHERE name = ?", (name,))

    @staticmethod
    def _event(c: sqlite3.Connection, name: str, event_json: str | None) -> None:
        if event_json is not None:
            c.execute("INSERT INTO events (bandit, data) VALUES (?, ?)", (name, event_json))

    def _read(self, c: sqlite3.Connection, name: str) -> Snapshot:
        config, version, cver, decayed_at = self._bandit_row(c, name)
        return Snapshot(name, json.loads(config), self._arrays(c, name), version, cver, decayed_at)

    # -- bandits ----------------------------------------------------------------------------
    def create_bandit(
        self, name: str, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> Snapshot:
        check_name(name)
        cfg = dumps(config, "config")
        arrs = check_arrays(arrays)
        with self._tx(write=True) as c:
            if c.execute("SELECT 1 FROM bandits WHERE name = ?", (name,)).fetchone():
                raise BanditExistsError(f"a bandit named {name!r} already exists")
            c.execute(
                "INSERT INTO bandits (name, config, version, config_version, decayed_at,"
                " created_at) VALUES (?, ?, 0, 0, NULL, ?)",
                (name, cfg, time.time()),
            )
            self._write_arrays(c, name, arrs)
            return self._read(c, name)

    def exists(self, name: str) -> bool:
        with self._tx(write=False) as c:
            return c.execute("SELECT 1 FROM bandits WHERE name = ?", (name,)).fetchone() is not None

    def list_bandits(self) -> list[str]:
        with self._tx(write=False) as c:
            return [r[0] for r in c.execute("SELECT name FROM bandits ORDER BY name")]

    def delete_bandit(self, name: str) -> None:
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            for table, col in (
                ("bandits", "name"),
                ("stats", "bandit"),
                ("decisions", "bandit"),
                ("events", "bandit"),
            ):
                c.execute(f"DELETE FROM {table} WHERE {col} = ?", (name,))

    def read(self, name: str) -> Snapshot:
        with self._tx(write=False) as c:
            return self._read(c, name)

    def replace(
        self,
        name: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        expected_config_version: int | None = None,
    ) -> Snapshot:
        cfg = dumps(config, "config")
        arrs = None if arrays is None else check_arrays(arrays)
        with self._tx(write=True) as c:
            _, _, cver, _ = self._bandit_row(c, name)
            self._check_version(cver, expected_config_version)
            c.execute(
                "UPDATE bandits SET config = ?, config_version = config_version + 1,"
                " version = version + 1 WHERE name = ?",
                (cfg, name),
            )
            if arrs is not None:
                self._write_arrays(c, name, arrs)
            return self._read(c, name)

    # -- statistics -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        deltas: Mapping[str, np.ndarray],
        *,
        config_version: int | None = None,
    ) -> int:
        ds = check_deltas(deltas)
        with self._tx(write=True) as c:
            _, version, cver, _ = self._bandit_row(c, name)
            self._check_version(cver, config_version)
            self._add(c, name, ds)
            return int(version) + 1

    def scale(self, name: str, gamma: float) -> int:
        g = check_gamma(gamma)
        with self._tx(write=True) as c:
            _, version, _, _ = self._bandit_row(c, name)
            self._scale(c, name, g)
            return int(version) + 1

    def decay(self, name: str, half_life: float, now: float) -> float:
        h = check_half_life(half_life)
        t = check_time("now", now)
        with self._tx(write=True) as c:
            _, _, _, decayed_at = self._bandit_row(c, name)
            g = decay_factor(decayed_at, h, t)
            if decayed_at is None or t > decayed_at:
                c.execute("UPDATE bandits SET decayed_at = ? WHERE name = ?", (t, name))
            if g != 1.0:
                self._scale(c, name, g)
            return g

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
        e = None if event is None else dumps(event, "event")
        dl = check_time("deadline", deadline)
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            try:
                c.execute(
                    "INSERT INTO decisions (bandit, id, payload, deadline, status, due)"
                    " VALUES (?, ?, ?, ?, 'p', ?)",
                    (name, decision_id, p, dl, dl),
                )
            except sqlite3.IntegrityError:
                raise DecisionExistsError(f"decision {decision_id!r} already exists") from None
            self._event(c, name, e)

    def put_pending_many(self, name: str, items: Sequence[NewDecision]) -> None:
        rows = encode_new_decisions(items)
        if not rows:
            return
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            for did, p, dl, _ in rows:
                try:
                    c.execute(
                        "INSERT INTO decisions (bandit, id, payload, deadline, status, due)"
                        " VALUES (?, ?, ?, ?, 'p', ?)",
                        (name, did, p, dl, dl),
                    )
                except sqlite3.IntegrityError:  # the transaction rolls back: nothing written
                    raise DecisionExistsError(f"decision {did!r} already exists") from None
            events = [(name, e) for _, _, _, e in rows if e is not None]
            if events:
                c.executemany("INSERT INTO events (bandit, data) VALUES (?, ?)", events)

    def get_pending(self, name: str, decision_id: str) -> PendingDecision:
        with self._tx(write=False) as c:
            self._bandit_row(c, name)
            row = c.execute(
                "SELECT payload, deadline, status FROM decisions WHERE bandit = ? AND id = ?",
                (name, decision_id),
            ).fetchone()
        if row is None:
            raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
        return PendingDecision(decision_id, json.loads(row[0]), row[1], _STATUS[row[2]])  # type: ignore[arg-type]

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
        ds = check_deltas(deltas)
        e = None if event is None else dumps(event, "event")
        t = check_time("now", now)
        with self._tx(write=True) as c:
            _, version, cver, _ = self._bandit_row(c, name)
            row = c.execute(
                "SELECT deadline, status FROM decisions WHERE bandit = ? AND id = ?",
                (name, decision_id),
            ).fetchone()
            if row is None:
                raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
            deadline, status = row
            if status == "r":
                return RewardResult("duplicate", int(version))
            if status == "x" or t > deadline:
                raise DecisionExpiredError(
                    f"decision {decision_id!r} expired at {deadline} (now {t})"
                )
            self._check_version(cver, config_version)
            self._add(c, name, ds)
            c.execute(
                "UPDATE decisions SET status = 'r', token = NULL, due = NULL, purge_at = ?"
                " WHERE bandit = ? AND id = ?",
                (deadline, name, decision_id),
            )
            self._event(c, name, e)
            return RewardResult("applied", int(version) + 1)

    def claim_expired(
        self, name: str, now: float, *, limit: int = 100, lease: float = 30.0
    ) -> list[ClaimedDecision]:
        t = check_time("now", now)
        lease_until = t + check_time("lease", lease)
        token = uuid.uuid4().hex
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            rows = c.execute(
                "SELECT id, payload, deadline FROM decisions WHERE bandit = ? AND due IS NOT NULL"
                " AND due < ? ORDER BY due LIMIT ?",
                (name, t, max(int(limit), 0)),
            ).fetchall()
            c.executemany(
                "UPDATE decisions SET status = 'c', token = ?, due = ? WHERE bandit = ? AND id = ?",
                [(token, lease_until, name, r[0]) for r in rows],
            )
        return [ClaimedDecision(i, json.loads(p), dl, token) for i, p, dl in rows]

    def settle_expired(
        self,
        name: str,
        claim: ClaimedDecision,
        deltas: Mapping[str, np.ndarray] | None,
        event: Mapping[str, Any] | None,
        *,
        config_version: int | None = None,
    ) -> bool:
        ds = check_deltas(deltas)
        e = None if event is None else dumps(event, "event")
        with self._tx(write=True) as c:
            _, _, cver, _ = self._bandit_row(c, name)
            row = c.execute(
                "SELECT deadline, status, token FROM decisions WHERE bandit = ? AND id = ?",
                (name, claim.decision_id),
            ).fetchone()
            if row is None or row[1] != "c" or row[2] != claim.token:
                return False
            self._check_version(cver, config_version)
            if ds:
                self._add(c, name, ds)
            c.execute(
                "UPDATE decisions SET status = 'x', token = NULL, due = NULL, purge_at = ?"
                " WHERE bandit = ? AND id = ?",
                (row[0], name, claim.decision_id),
            )
            self._event(c, name, e)
            return True

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> PurgeResult:
        t = check_time("now", now)
        limit = check_limit(limit)
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            decisions = c.execute(
                "DELETE FROM decisions WHERE bandit = ? AND id IN (SELECT id FROM decisions"
                " WHERE bandit = ? AND purge_at IS NOT NULL AND purge_at < ?"
                " ORDER BY purge_at LIMIT ?)",
                (name, name, t - self.retention, limit),
            ).rowcount
            events = 0
            if self.events_maxlen is not None:
                # everything up to the newest event beyond the newest events_maxlen
                events = c.execute(
                    "DELETE FROM events WHERE bandit = ? AND id <= (SELECT id FROM events"
                    " WHERE bandit = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (name, name, self.events_maxlen),
                ).rowcount
        return PurgeResult(max(decisions, 0), max(events, 0))

    # -- events -----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        e = dumps(event, "event")
        with self._tx(write=True) as c:
            self._bandit_row(c, name)
            self._event(c, name, e)

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        start, limit = check_int_cursor(after), check_limit(limit)
        with self._tx(write=False) as c:
            self._bandit_row(c, name)
            rows = c.execute(
                "SELECT id, data FROM events WHERE bandit = ? AND id > ? ORDER BY id LIMIT ?",
                (name, start, limit),
            ).fetchall()
        if not rows:
            return EventPage([], after)
        return EventPage([json.loads(data) for _, data in rows], str(rows[-1][0]))

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        with self._tx(write=False) as c:
            c.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass
        self._local = threading.local()
