"""The SQLite store's file: its tables, their migrations, its connections and transactions.

Tables (schema version 4, kept in ``PRAGMA user_version``):

* ``bandits`` -- name, configuration JSON, ``version``, ``config_version``, ``decayed_at``;
* ``stats`` -- one raw little-endian float64 BLOB per statistic, its shape as text (``"5,11,11"``)
  and its position;
* ``decisions`` -- the pending-decision log: payload JSON, ``deadline``, one-letter ``status``,
  the claim ``token``; ``due`` is the deadline, or the lease end while claimed, NULL once
  consumed; ``consumed_deadline`` is NULL until the decision is consumed (rewarded or expired),
  then its deadline: purge deletes the rows whose ``consumed_deadline`` is before
  ``now - retention`` (the retention in effect when it runs); ``outcome`` is the value a
  reward stored with the decision (NULL unless it was rewarded with one);
* ``events`` -- JSON text, the autoincrement id is the append order and the cursor;
* ``assignments`` -- sticky assignments: per bandit and ``assign_key`` (a user id) the payload
  JSON, its ``"id"`` as JSON text (``item``, compared by ``assign(..., replace=)``) and
  ``expires_at``; purge deletes the rows with ``expires_at <= now``.

Migrations run once, in one ``BEGIN IMMEDIATE`` transaction, by the first connection that finds
an older ``user_version`` (other processes wait for the write lock, then see the new version):

* 1 -> 2: ``decisions.purge_at`` is renamed ``consumed_deadline`` (it always held the deadline;
  the purge cut-off is computed at purge time), with its index;
* 2 -> 3: ``decisions.outcome`` (REAL, nullable) is added; decisions rewarded before have none;
* 3 -> 4: the ``assignments`` table and its expiry index are added (empty).

A file written by a newer version than this code knows is refused, not rewritten.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigurationError, StoreUnavailableError

__all__ = ["SCHEMA_VERSION", "Connections", "connect", "parse_sqlite_url", "unavailable"]

SCHEMA_VERSION = 4

_TABLES = (
    """CREATE TABLE IF NOT EXISTS bandits (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        version INTEGER NOT NULL,
        config_version INTEGER NOT NULL,
        decayed_at REAL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stats (
        bandit TEXT NOT NULL,
        name TEXT NOT NULL,
        pos INTEGER NOT NULL,
        shape TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (bandit, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS decisions (
        bandit TEXT NOT NULL,
        id TEXT NOT NULL,
        payload TEXT NOT NULL,
        deadline REAL NOT NULL,
        status TEXT NOT NULL,
        token TEXT,
        due REAL,
        consumed_deadline REAL,
        outcome REAL,
        PRIMARY KEY (bandit, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS decisions_due ON decisions (bandit, due) WHERE due IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bandit TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_bandit ON events (bandit, id)",
)
_ASSIGNMENTS = (
    """CREATE TABLE IF NOT EXISTS assignments (
        bandit TEXT NOT NULL,
        assign_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        item TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (bandit, assign_key)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS assignments_expiry ON assignments (bandit, expires_at)",
)
_CONSUMED_INDEX = (
    "CREATE INDEX IF NOT EXISTS decisions_consumed ON decisions (bandit, consumed_deadline)"
    " WHERE consumed_deadline IS NOT NULL"
)
#: statements that take a file from schema version ``v`` to ``v + 1``
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "DROP INDEX IF EXISTS decisions_purge",
        "ALTER TABLE decisions RENAME COLUMN purge_at TO consumed_deadline",
        _CONSUMED_INDEX,
    ),
    2: ("ALTER TABLE decisions ADD COLUMN outcome REAL",),
    3: _ASSIGNMENTS,
}

# OperationalError messages that mean "cannot use the database now", not a bug
_UNAVAILABLE = ("locked", "busy", "i/o", "unable to open", "readonly", "full", "disk")


def unavailable(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error means "cannot use the database now" rather than a bug."""
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


def connect(path: str | os.PathLike[str], busy_timeout: float,
            synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, the file at
    :data:`SCHEMA_VERSION` (created or migrated). ``StoreUnavailableError`` when the file
    cannot be opened or read."""
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite store {str(path)!r}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _switch_to_wal(conn, busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        if _user_version(conn) != SCHEMA_VERSION:
            _upgrade(conn, path)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailableError(
                f"cannot open SQLite store {str(path)!r}: {exc}") from exc
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Put the file in WAL mode, waiting up to ``busy_timeout`` seconds for other connections.

    The switch upgrades the statement's shared lock to an exclusive one; when another
    connection is doing the same (several processes opening an old rollback-journal file at
    once), SQLite refuses one of them at once, without its busy handler, to avoid a deadlock.
    So the switch is retried here, re-reading the mode each time: the other one may have made
    it already."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if not unavailable(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.05)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _upgrade(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> None:
    """Create the tables of a new file, or migrate an older one, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)  # again, under the write lock: another may have done it
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"SQLite store {str(path)!r} has schema version {version}, written by a newer "
                f"tsbandit (this one knows up to {SCHEMA_VERSION})")
        if version == 0:
            statements: tuple[str, ...] = (*_TABLES, _CONSUMED_INDEX, *_ASSIGNMENTS)
        else:
            statements = tuple(s for v in range(version, SCHEMA_VERSION) for s in _MIGRATIONS[v])
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Connections:
    """Each thread's (and each forked process's) own connection to one file, and the
    transactions the store runs on them."""

    def __init__(self, path: str, busy_timeout: float, synchronous: str) -> None:
        self.path, self.busy_timeout, self.synchronous = path, busy_timeout, synchronous
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened, and the file created or migrated, on first use)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if self._closed:
            raise StoreUnavailableError("the SQLite store was closed")
        conn = connect(self.path, self.busy_timeout, self.synchronous)
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    @contextmanager
    def tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: ``BEGIN IMMEDIATE`` for writes (takes the write lock up front, so
        no deadlock-prone lock upgrade), a plain ``BEGIN`` (a consistent snapshot) for reads."""
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            if unavailable(exc):
                raise StoreUnavailableError(f"SQLite store busy or unavailable: {exc}") from exc
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and unavailable(exc):
                raise StoreUnavailableError(f"SQLite store error: {exc}") from exc
            raise

    def close(self) -> None:
        """Close every connection; later use raises ``StoreUnavailableError``."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass
        self._local = threading.local()
