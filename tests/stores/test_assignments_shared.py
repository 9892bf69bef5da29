"""Sticky assignments shared through the store (issue 17): processes racing on the same users,
a store that is down, locked or loses a reply, ``min_replicas``, and SQLite files of schema
version 3 migrated to 4.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
import uuid

import pytest

from concurrency import in_threads
from tsbandit.errors import BanditExistsError, StoreUnavailableError
from tsbandit.stores import Assignment, SQLiteStore, open_store
from tsbandit.stores.records import PurgeResult
from tsbandit.stores.sqlite_file import SCHEMA_VERSION

from . import workers
from .redis_servers import RedisServer
from .workers import layout, reward_delta


# ---------------------------------------------------------------------------------------------
# Processes racing on the same users: one creates, all get the same payload
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx() -> mp.context.BaseContext:
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(["numpy", "tsbandit.stores", "redis", "stores.workers"])
    return c


def test_processes_racing_on_the_same_users_agree(shared_backend, ctx) -> None:
    store = shared_backend.open()
    store.create_bandit("race", {}, layout())
    keys = [f"user-{i}" for i in range(40)]
    n_racers = 4
    barrier, queue = ctx.Barrier(n_racers), ctx.Queue()
    procs = [ctx.Process(target=workers.assign_worker,
                         args=(shared_backend.url, "race", keys, barrier, queue, racer))
             for racer in range(n_racers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * n_racers
    for key in keys:
        answers = [r[key] for r in results]
        assert sum(created for created, _, _ in answers) == 1, key
        winner = next(payload for created, payload, _ in answers if created)
        assert winner["id"] == f"r{winner['racer']}-{key}"
        assert all(payload == winner and exp == 1e12 for _, payload, exp in answers)
        assert store.get_assignment("race", key, 2.0) == Assignment(key, winner, 1e12, False)


# ---------------------------------------------------------------------------------------------
# SQLite: locked, and migrated from schema 3
# ---------------------------------------------------------------------------------------------
def test_sqlite_locked_assign_is_unavailable_and_writes_nothing(tmp_path) -> None:
    path = tmp_path / "l.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    store.create_bandit("b", {}, layout())
    store.assign("b", "u1", {"id": "d1"}, 10.0, 0.0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailableError):
            store.assign("b", "u2", {"id": "d2"}, 10.0, 0.0)
        with pytest.raises(StoreUnavailableError):
            store.purge("b", 100.0)
        # readers are not blocked (WAL)
        assert store.get_assignment("b", "u1", 0.0) == Assignment("u1", {"id": "d1"}, 10.0,
                                                                  False)
        assert store.get_assignment("b", "u2", 0.0) is None
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.assign("b", "u2", {"id": "d3"}, 10.0, 0.0).created
    store.close()


# The tables as schema version 3 created them (copied from ``sqlite_master`` of a file that
# version's code wrote; one long line wrapped), and a bandit with one decision of each status
# and two events.
_SCHEMA_V3 = """
CREATE TABLE bandits (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        version INTEGER NOT NULL,
        config_version INTEGER NOT NULL,
        decayed_at REAL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
CREATE TABLE stats (
        bandit TEXT NOT NULL,
        name TEXT NOT NULL,
        pos INTEGER NOT NULL,
        shape TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (bandit, name)
    ) WITHOUT ROWID;
CREATE TABLE decisions (
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
    ) WITHOUT ROWID;
CREATE INDEX decisions_due ON decisions (bandit, due) WHERE due IS NOT NULL;
CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bandit TEXT NOT NULL,
        data TEXT NOT NULL
    );
CREATE INDEX events_bandit ON events (bandit, id);
CREATE INDEX decisions_consumed ON decisions (bandit, consumed_deadline)
    WHERE consumed_deadline IS NOT NULL;
PRAGMA user_version = 3;
"""


def _write_v3_file(path) -> None:
    raw = sqlite3.connect(path)
    raw.executescript(_SCHEMA_V3)
    raw.execute("INSERT INTO bandits VALUES ('b', '{\"arms\":4}', 1, 0, NULL, 0.0)")
    for pos, (key, arr) in enumerate(layout().items()):
        if key == "n":
            arr[1] = 1.0
        shape = ",".join(map(str, arr.shape))
        raw.execute("INSERT INTO stats VALUES ('b', ?, ?, ?, ?)", (key, pos, shape, arr.tobytes()))
    raw.executemany(  # bandit, id, payload, deadline, status, token, due, consumed, outcome
        "INSERT INTO decisions VALUES ('b', ?, ?, ?, ?, ?, ?, ?, ?)",
        [("r1", '{"arm":1}', 100.0, "r", None, None, 100.0, 0.25),
         ("x1", '{"arm":1}', 200.0, "x", None, None, 200.0, None),
         ("c1", '{"arm":2}', 300.0, "c", "tok", 330.0, None, None),
         ("p1", '{"arm":0}', 1e12, "p", None, 1e12, None, None)],
    )
    raw.executemany("INSERT INTO events (bandit, data) VALUES ('b', ?)",
                    [('{"t":"decision"}',), ('{"t":"reward"}',)])
    raw.commit()
    raw.close()


def _schema(path) -> dict[str, list]:
    """Every table's columns (name, type, not null, default, pk) and every index's columns."""
    raw = sqlite3.connect(path)
    try:
        out: dict[str, list] = {}
        for kind, name in raw.execute(
                "SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"):
            pragma = "table_info" if kind == "table" else "index_info"
            out[f"{kind}:{name}"] = [r[1:] for r in raw.execute(f"PRAGMA {pragma}({name})")]
        return out
    finally:
        raw.close()


def test_sqlite_file_of_schema_version_3_gets_assignments_and_keeps_everything(
        tmp_path) -> None:
    path = tmp_path / "v3.db"
    _write_v3_file(path)
    store = SQLiteStore(path, retention=10.0)
    snap = store.read("b")
    assert (snap.config, snap.version, snap.arrays["n"].tolist()) == (
        {"arms": 4}, 1, [0.0, 1.0, 0.0, 0.0])
    got = {d: store.get_pending("b", d) for d in ("r1", "x1", "c1", "p1")}
    assert {d: (p.status, p.outcome) for d, p in got.items()} == {
        "r1": ("rewarded", 0.25), "x1": ("expired", None), "c1": ("claimed", None),
        "p1": ("pending", None)}
    assert store.apply_reward("b", "r1", reward_delta(1, 1), None, 50.0).duplicate
    assert store.apply_reward("b", "p1", reward_delta(0, 1), {"t": "reward"}, 1.0,
                              outcome=1.0).status == "applied"
    assert [e["t"] for e in store.iter_events("b")] == ["decision", "reward", "reward"]
    # the new table works on the old file, and purge counts all three
    assert store.get_assignment("b", "u1", 0.0) is None
    assert store.assign("b", "u1", {"id": "p1", "arm": 0}, 150.0, 0.0).created
    assert store.assign("b", "u1", {"id": "p2"}, 150.0, 1.0).payload == {"id": "p1", "arm": 0}
    assert store.purge("b", 205.0) == PurgeResult(1, 0, 1)  # r1 (100 + 10 < 205), u1
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    raw.close()
    # the migrated file has the schema of a file created at version 4
    fresh = tmp_path / "fresh.db"
    SQLiteStore(fresh).close()
    assert _schema(path) == _schema(fresh)
    assert "table:assignments" in _schema(path) and "index:assignments_expiry" in _schema(path)
    again = SQLiteStore(path)  # a migrated file opens as it is
    assert again.get_pending("b", "p1").outcome == 1.0
    assert again.assign("b", "u1", {"id": "p3"}, 300.0, 250.0).created
    again.close()


def test_sqlite_version_3_file_opened_by_many_threads_at_once_migrates_once(tmp_path) -> None:
    path = tmp_path / "v3.db"
    _write_v3_file(path)
    n = 6
    stores = in_threads(lambda _: SQLiteStore(path), n)
    assert stores[0].assign("b", "u1", {"id": "d1"}, 10.0, 0.0).created
    assert [s.get_assignment("b", "u1", 0.0) for s in stores] == [
        Assignment("u1", {"id": "d1"}, 10.0, False)] * n
    for s in stores:
        s.close()


# ---------------------------------------------------------------------------------------------
# Redis: down, a lost reply, min_replicas
# ---------------------------------------------------------------------------------------------
def _prefix() -> str:
    return f"tsbt-asg-{uuid.uuid4().hex[:12]}:"


@pytest.mark.redis
def test_redis_down_is_unavailable(redis_server: RedisServer) -> None:
    store = open_store(f"{redis_server.url}?prefix={_prefix()}")
    store.create_bandit("b", {}, layout())
    store.assign("b", "u1", {"id": "d1"}, 1e12, 0.0)
    redis_server.kill()
    for call in (lambda: store.get_assignment("b", "u1", 0.0),
                 lambda: store.assign("b", "u1", {"id": "d2"}, 1e12, 0.0),
                 lambda: store.assign("b", "u1", {"id": "d2"}, 1e12, 0.0, replace="d1"),
                 lambda: store.purge("b", 0.0)):
        with pytest.raises(StoreUnavailableError):
            call()
    store.close()


@pytest.mark.redis
def test_redis_assign_whose_reply_was_lost_is_recognised_on_retry(
        redis_server: RedisServer) -> None:
    store = open_store(f"{redis_server.url}?prefix={_prefix()}")
    store.create_bandit("b", {}, layout())
    mine = {"id": "d1", "arm": 3}
    # the server stops answering for longer than the client's socket timeout
    redis_server.cli("client", "pause", "1500", "all")
    with pytest.raises(StoreUnavailableError):
        store.assign("b", "u1", mine, 1e12, 1.0)
    redis_server.wait_unpaused()
    # whatever happened to the lost call happened entirely or not at all, and the retry
    # tells which by the id: created now, or found live with this caller's own payload
    before = store.get_assignment("b", "u1", 2.0)
    assert before in (None, Assignment("u1", mine, 1e12, False))
    again = store.assign("b", "u1", mine, 1e12, 2.0)
    assert again == Assignment("u1", mine, 1e12, before is None)
    store.close()


@pytest.mark.redis
def test_min_replicas_an_assignment_is_acknowledged_once_a_replica_has_it(
        redis_server: RedisServer, tmp_path) -> None:
    """With the replica stopped, a new assignment and one found live both answer "not known
    to be durable" (the primary has it; the fence waits for the replica); a read does not
    wait; once the replica is back the retry answers the stored one."""
    replica = RedisServer(tmp_path / "replica")
    try:
        redis_server.cli("config", "set", "repl-diskless-sync-delay", "0")
        replica.cli("replicaof", "127.0.0.1", str(redis_server.port))
        store = open_store(f"{redis_server.url}?prefix={_prefix()}&min_replicas=1"
                           "&wait_timeout_ms=100")
        deadline = time.monotonic() + 10
        while True:
            try:
                store.create_bandit("b", {}, layout())
                break
            except BanditExistsError:
                break  # an earlier attempt was applied on the primary, its fence timed out
            except StoreUnavailableError:  # the replica is still syncing
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        while True:  # a first write waits for the replica's sync; a retry finds it live
            try:
                store.assign("b", "u0", {"id": "d0"}, 1e12, 0.0)
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "the replica did not acknowledge"
                time.sleep(0.05)
        assert store.get_assignment("b", "u0", 0.0) == Assignment("u0", {"id": "d0"}, 1e12,
                                                                  False)
        assert replica.proc is not None
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.assign("b", "u1", {"id": "d1"}, 1e12, 0.0)
            with pytest.raises(StoreUnavailableError, match="not known to be durable"):
                store.assign("b", "u1", {"id": "d2"}, 1e12, 0.0)  # found live: fenced
            assert store.get_assignment("b", "u1", 0.0) == Assignment(
                "u1", {"id": "d1"}, 1e12, False)
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while True:  # the resumed replica catches up; then the retry is acknowledged
            try:
                again = store.assign("b", "u1", {"id": "d2"}, 1e12, 0.0)
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "the replica did not catch up"
                time.sleep(0.05)
        assert again == Assignment("u1", {"id": "d1"}, 1e12, False)
        store.close()
    finally:
        replica.stop()
