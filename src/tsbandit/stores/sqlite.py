"""Embedded store on one SQLite file: the default (``sqlite:///tsbandit.db``).

WAL journal (readers never block the writer), a busy timeout, and every mutation in its own
``BEGIN IMMEDIATE`` transaction, so several processes on one machine can share the file: a
reward is applied fully or not at all even if its process is killed mid-write, and the state
survives restarts. Arrays are stored as raw little-endian float64 BLOBs (never pickle) with their
shape as text (``"5,11,11"``). Each thread (and each forked process) uses its own connection.

The tables, their migrations and the connections are in :mod:`tsbandit.stores.sqlite_file`;
validation, encoding and the public methods are :class:`~tsbandit.stores.base.BaseStore`'s.
Here are only the primitives, each one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    BanditExistsError,
    ConfigurationError,
    DecisionExistsError,
    DecisionNotFoundError,
    TsbanditError,
)
from . import lifecycle, records
from .base import BaseStore
from .records import CLAIMED, EXPIRED, PENDING, REWARDED
from .sqlite_file import Connections, parse_sqlite_url
from .validation import (
    check_config_version,
    check_shapes,
    check_time,
    decay_factor,
    finite_sums,
)

__all__ = ["SQLiteStore", "parse_sqlite_url"]

_INSERT_EVENT = "INSERT INTO events (bandit, data) VALUES (?, ?)"
_UPDATE_STAT = "UPDATE stats SET data = ? WHERE bandit = ? AND name = ?"
_BUMP_VERSION = "UPDATE bandits SET version = version + 1 WHERE name = ?"


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in shape)


def _parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


# ---------------------------------------------------------------------------------------------
# Helpers, called inside a transaction
# ---------------------------------------------------------------------------------------------
def _bandit_row(c: sqlite3.Connection, name: str) -> tuple[Any, ...]:
    row = c.execute(
        "SELECT config, version, config_version, decayed_at FROM bandits WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        raise lifecycle.bandit_not_found(name)
    return row


def _arrays(c: sqlite3.Connection, name: str) -> dict[str, np.ndarray]:
    rows = c.execute(
        "SELECT name, shape, data FROM stats WHERE bandit = ? ORDER BY pos", (name,)
    ).fetchall()
    return {
        k: np.frombuffer(data, dtype="<f8").reshape(_parse_shape(shape))
        for k, shape, data in rows
    }


def _read(c: sqlite3.Connection, name: str) -> records.Snapshot:
    config, version, cver, decayed_at = _bandit_row(c, name)
    return records.Snapshot(name, json.loads(config), _arrays(c, name), version, cver, decayed_at)


def _add_to(c: sqlite3.Connection, name: str, stored_cver: int,
            deltas: dict[str, np.ndarray], cver: int | None) -> None:
    """Check the version and shapes, add the sums (all checked before the first write)
    and bump the version."""
    check_config_version(stored_cver, cver)
    if deltas:
        arrays = _arrays(c, name)
        check_shapes(arrays, deltas)
        totals = finite_sums(arrays, deltas)
        c.executemany(_UPDATE_STAT, [(v.tobytes(), name, k) for k, v in totals.items()])
    c.execute(_BUMP_VERSION, (name,))


def _write_arrays(c: sqlite3.Connection, name: str, arrays: dict[str, np.ndarray]) -> None:
    c.execute("DELETE FROM stats WHERE bandit = ?", (name,))
    c.executemany(
        "INSERT INTO stats (bandit, name, pos, shape, data) VALUES (?, ?, ?, ?, ?)",
        [
            (name, k, i, _shape_text(v.shape), v.tobytes())
            for i, (k, v) in enumerate(arrays.items())
        ],
    )


def _scale_all(c: sqlite3.Connection, name: str, g: float) -> None:
    arrays = _arrays(c, name)
    c.executemany(_UPDATE_STAT, [((v * g).tobytes(), name, k) for k, v in arrays.items()])
    c.execute(_BUMP_VERSION, (name,))


def _consume(c: sqlite3.Connection, name: str, decision_id: str, status: str,
             deadline: float, event: str | None, outcome: float | None = None) -> None:
    """Mark a decision rewarded (with its outcome) or expired (due for purge after its
    retention) and log."""
    c.execute(
        "UPDATE decisions SET status = ?, token = NULL, due = NULL, consumed_deadline = ?,"
        " outcome = ? WHERE bandit = ? AND id = ?",
        (status, deadline, outcome, name, decision_id),
    )
    if event is not None:
        c.execute(_INSERT_EVENT, (name, event))


def _reward(c: sqlite3.Connection, name: str,
            r: records.EncodedReward) -> records.RewardResult:
    """Inside a write transaction: the verdict, then add, consume and log (every check made
    before the first write)."""
    _, version, stored_cver, _ = _bandit_row(c, name)
    found = c.execute(
        "SELECT status, deadline FROM decisions WHERE bandit = ? AND id = ?",
        (name, r.decision_id),
    ).fetchone()
    if not lifecycle.reward_verdict(name, r.decision_id, found, r.now):
        return records.RewardResult("duplicate", int(version))
    _add_to(c, name, stored_cver, r.deltas, r.cver)
    _consume(c, name, r.decision_id, REWARDED, found[1], r.event, r.outcome)
    return records.RewardResult("applied", int(version) + 1)


def _live_assignment(c: sqlite3.Connection, name: str, key: str,
                     now: float) -> records.Assignment | None:
    row = c.execute(
        "SELECT payload, expires_at FROM assignments WHERE bandit = ? AND assign_key = ?"
        " AND expires_at > ?",
        (name, key, now),
    ).fetchone()
    return None if row is None else lifecycle.assignment_record(key, row[0], row[1], False)


def _assign(c: sqlite3.Connection, name: str, a: records.EncodedAssignment) -> records.Assignment:
    """Keep the stored assignment of ``a.key`` (:func:`~tsbandit.stores.lifecycle.
    keeps_assignment`) or store ``a`` over it."""
    old = c.execute(
        "SELECT payload, item, expires_at FROM assignments WHERE bandit = ? AND assign_key = ?",
        (name, a.key),
    ).fetchone()
    if old is not None and lifecycle.keeps_assignment((old[1], old[2]), a):
        return lifecycle.assignment_record(a.key, old[0], old[2], False)
    c.execute(
        "INSERT OR REPLACE INTO assignments (bandit, assign_key, payload, item, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, a.key, a.payload, a.item, a.expires_at),
    )
    return lifecycle.assignment_record(a.key, a.payload, a.expires_at, True)


def _purge_assignments(c: sqlite3.Connection, name: str, now: float, limit: int) -> int:
    """Delete up to ``limit`` expired assignments, oldest first; how many."""
    n = c.execute(
        "DELETE FROM assignments WHERE bandit = ? AND assign_key IN (SELECT assign_key"
        " FROM assignments WHERE bandit = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?)",
        (name, name, now, limit),
    ).rowcount
    return max(n, 0)


class SQLiteStore(BaseStore):
    """:class:`~tsbandit.stores.protocol.Store` on one SQLite file, shared by processes and
    threads.

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
        retention: float = records.DEFAULT_RETENTION,
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
        super().__init__(retention=retention, events_maxlen=events_maxlen)
        self.url = "sqlite:///" + self.path
        if not Path(self.path).parent.exists():
            raise ConfigurationError(f"directory of {self.path!r} does not exist")
        self._db = Connections(self.path, self.busy_timeout, self.synchronous)
        self._db.conn()  # fail fast, create or migrate the schema

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- bandits ----------------------------------------------------------------------------
    def _create(self, name: str, config: str, arrays: dict[str, np.ndarray],
                cver: int) -> records.Snapshot:
        with self._db.tx(write=True) as c:
            if c.execute("SELECT 1 FROM bandits WHERE name = ?", (name,)).fetchone():
                raise BanditExistsError(f"a bandit named {name!r} already exists")
            c.execute(
                "INSERT INTO bandits (name, config, version, config_version, decayed_at,"
                " created_at) VALUES (?, ?, 0, ?, NULL, ?)",
                (name, config, cver, time.time()),
            )
            _write_arrays(c, name, arrays)
            return _read(c, name)

    def exists(self, name: str) -> bool:
        with self._db.tx(write=False) as c:
            return c.execute("SELECT 1 FROM bandits WHERE name = ?", (name,)).fetchone() is not None

    def list_bandits(self) -> list[str]:
        with self._db.tx(write=False) as c:
            return [r[0] for r in c.execute("SELECT name FROM bandits ORDER BY name")]

    def delete_bandit(self, name: str) -> None:
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            for table, col in (
                ("bandits", "name"),
                ("stats", "bandit"),
                ("decisions", "bandit"),
                ("events", "bandit"),
                ("assignments", "bandit"),
            ):
                c.execute(f"DELETE FROM {table} WHERE {col} = ?", (name,))

    def read(self, name: str) -> records.Snapshot:
        with self._db.tx(write=False) as c:
            return _read(c, name)

    def _replace(self, name: str, config: str, arrays: dict[str, np.ndarray] | None,
                 expected: int | None) -> records.Snapshot:
        with self._db.tx(write=True) as c:
            check_config_version(_bandit_row(c, name)[2], expected)
            c.execute(
                "UPDATE bandits SET config = ?, config_version = config_version + 1,"
                " version = version + 1 WHERE name = ?",
                (config, name),
            )
            if arrays is not None:
                _write_arrays(c, name, arrays)
            return _read(c, name)

    # -- statistics -------------------------------------------------------------------------
    def _add(self, name: str, deltas: dict[str, np.ndarray], cver: int | None) -> int:
        with self._db.tx(write=True) as c:
            _, version, stored_cver, _ = _bandit_row(c, name)
            _add_to(c, name, stored_cver, deltas, cver)
            return int(version) + 1

    def _scale(self, name: str, gamma: float) -> int:
        with self._db.tx(write=True) as c:
            version = _bandit_row(c, name)[1]
            _scale_all(c, name, gamma)
            return int(version) + 1

    def _decay(self, name: str, half_life: float, now: float) -> float:
        with self._db.tx(write=True) as c:
            decayed_at = _bandit_row(c, name)[3]
            g = decay_factor(decayed_at, half_life, now)
            if decayed_at is None or now > decayed_at:
                c.execute("UPDATE bandits SET decayed_at = ? WHERE name = ?", (now, name))
            if g != 1.0:
                _scale_all(c, name, g)
            return g

    # -- pending decisions ------------------------------------------------------------------
    def _put_pending(self, name: str, rows: list[records.EncodedDecision],
                     if_at: tuple[int, int] | None = None) -> records.Snapshot | None:
        with self._db.tx(write=True) as c:
            _, version, cver, _ = _bandit_row(c, name)
            if if_at is not None and if_at != (version, cver):
                return _read(c, name)
            for row in rows:
                try:
                    c.execute(
                        "INSERT INTO decisions (bandit, id, payload, deadline, status, due)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (name, row.decision_id, row.payload, row.deadline, PENDING,
                         row.deadline),
                    )
                except sqlite3.IntegrityError:  # the transaction rolls back: nothing written
                    raise DecisionExistsError(
                        f"decision {row.decision_id!r} already exists") from None
            events = [(name, row.event) for row in rows if row.event is not None]
            if events:
                c.executemany(_INSERT_EVENT, events)
        return None

    def get_pending(self, name: str, decision_id: str) -> records.PendingDecision:
        with self._db.tx(write=False) as c:
            _bandit_row(c, name)
            row = c.execute(
                "SELECT payload, deadline, status, outcome FROM decisions"
                " WHERE bandit = ? AND id = ?",
                (name, decision_id),
            ).fetchone()
        if row is None:
            raise lifecycle.not_found(name, decision_id)
        return lifecycle.pending_record(decision_id, *row)

    def _apply_reward(self, name: str, decision_id: str, deltas: dict[str, np.ndarray],
                      event: str | None, now: float, cver: int | None,
                      outcome: float | None) -> records.RewardResult:
        with self._db.tx(write=True) as c:
            return _reward(c, name, records.EncodedReward(decision_id, deltas, event, now,
                                                          cver, outcome))

    def _apply_reward_many(self, name: str, rows: list[records.EncodedReward]
                           ) -> list[records.RewardResult | TsbanditError]:
        """One transaction; each row inside its own savepoint, so a refused row is rolled
        back alone and the others commit."""
        out: list[records.RewardResult | TsbanditError] = []
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            for r in rows:
                c.execute("SAVEPOINT reward")
                try:
                    out.append(_reward(c, name, r))
                except TsbanditError as exc:
                    c.execute("ROLLBACK TO reward")
                    out.append(exc)
                c.execute("RELEASE reward")
        return out

    def _get_pending_many(self, name: str, ids: list[str]
                          ) -> list[records.PendingDecision | DecisionNotFoundError]:
        found: dict[str, tuple[Any, ...]] = {}
        with self._db.tx(write=False) as c:
            _bandit_row(c, name)
            for start in range(0, len(ids), 500):  # well inside SQLite's variable limit
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for row in c.execute(
                    "SELECT id, payload, deadline, status, outcome FROM decisions"
                    f" WHERE bandit = ? AND id IN ({marks})", (name, *chunk)
                ):
                    found[row[0]] = row[1:]
        return [lifecycle.pending_record(i, *found[i]) if i in found
                else lifecycle.not_found(name, i) for i in ids]

    def _claim_expired(self, name: str, now: float, lease_until: float, limit: int,
                       token: str) -> list[records.ClaimedDecision]:
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            rows = c.execute(
                "SELECT id, payload, deadline FROM decisions WHERE bandit = ? AND due IS NOT NULL"
                " AND due < ? ORDER BY due LIMIT ?",
                (name, now, limit),
            ).fetchall()
            c.executemany(
                "UPDATE decisions SET status = ?, token = ?, due = ? WHERE bandit = ? AND id = ?",
                [(CLAIMED, token, lease_until, name, r[0]) for r in rows],
            )
        return [lifecycle.claim_record(i, p, dl, token) for i, p, dl in rows]

    def _settle_expired(self, name: str, claim: records.ClaimedDecision,
                        deltas: dict[str, np.ndarray], event: str | None,
                        cver: int | None) -> bool:
        with self._db.tx(write=True) as c:
            stored_cver = _bandit_row(c, name)[2]
            row = c.execute(
                "SELECT status, token, deadline FROM decisions WHERE bandit = ? AND id = ?",
                (name, claim.decision_id),
            ).fetchone()
            if not lifecycle.holds_claim(row and row[:2], claim):
                return False
            if deltas:
                _add_to(c, name, stored_cver, deltas, cver)
            else:
                check_config_version(stored_cver, cver)
            _consume(c, name, claim.decision_id, EXPIRED, row[2], event)
            return True

    def _purge(self, name: str, cutoff: float, limit: int, now: float) -> records.PurgeResult:
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            decisions = c.execute(
                "DELETE FROM decisions WHERE bandit = ? AND id IN (SELECT id FROM decisions"
                " WHERE bandit = ? AND consumed_deadline IS NOT NULL AND consumed_deadline < ?"
                " ORDER BY consumed_deadline LIMIT ?)",
                (name, name, cutoff, limit),
            ).rowcount
            events = 0
            if self.events_maxlen is not None:
                # everything up to the newest event beyond the newest events_maxlen
                events = c.execute(
                    "DELETE FROM events WHERE bandit = ? AND id <= (SELECT id FROM events"
                    " WHERE bandit = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (name, name, self.events_maxlen),
                ).rowcount
            assignments = _purge_assignments(c, name, now, limit)
        return records.PurgeResult(max(decisions, 0), max(events, 0), assignments)

    # -- sticky assignments -----------------------------------------------------------------
    def _get_assignment(self, name: str, key: str, now: float) -> records.Assignment | None:
        with self._db.tx(write=False) as c:
            _bandit_row(c, name)
            return _live_assignment(c, name, key, now)

    def _assign(self, name: str, a: records.EncodedAssignment) -> records.Assignment:
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            return _assign(c, name, a)

    # -- events -----------------------------------------------------------------------------
    def _append_event(self, name: str, event: str) -> None:
        with self._db.tx(write=True) as c:
            _bandit_row(c, name)
            c.execute(_INSERT_EVENT, (name, event))

    def _read_events(self, name: str, start: int, limit: int) -> list[tuple[int, str]]:
        with self._db.tx(write=False) as c:
            _bandit_row(c, name)
            return c.execute(
                "SELECT id, data FROM events WHERE bandit = ? AND id > ? ORDER BY id LIMIT ?",
                (name, start, limit),
            ).fetchall()

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        with self._db.tx(write=False) as c:
            c.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()
