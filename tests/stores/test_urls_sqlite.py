"""``open_store`` URLs, and SQLite specifics (file format, WAL, locking, restart)."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from concurrency import in_threads
from tsbandit.errors import ConfigurationError, StoreUnavailableError
from tsbandit.stores import ClaimedDecision, MemoryStore, SQLiteStore, Store, open_store
from tsbandit.stores.sqlite_file import SCHEMA_VERSION

from .backends import redis_module
from .workers import layout, reward_delta


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------
def test_memory_and_protocol() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore) and isinstance(store, Store)


def test_sqlite_relative_and_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_store("sqlite:///rel.db?busy_timeout=1.5&synchronous=full&retention=60")
    assert isinstance(rel, SQLiteStore) and rel.path == "rel.db"
    assert (rel.busy_timeout, rel.synchronous, rel.retention) == (1.5, "FULL", 60.0)
    assert (tmp_path / "rel.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    assert absolute.path == str(tmp_path / "abs.db")
    assert isinstance(absolute, SQLiteStore) and isinstance(absolute, Store)
    rel.close()
    absolute.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:///x.db?cache=shared",
        "sqlite:///:memory:",
        "sqlite:///x.db?busy_timeout=soon",
        "sqlite:////no/such/dir/x.db",
        "postgres://localhost/db",
        "redis://h1:1,h2:2",
        "redis://h?prefix=a{b}",
        "redis+cluster://h:1/3",
    ],
)
def test_bad_urls(url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    if url.startswith("redis"):
        redis_module()
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_redis_url_parsing() -> None:
    redis_module()
    from tsbandit.stores import RedisStore

    s = open_store("redis://user:s3cret@127.0.0.1:6390/2?prefix=p:&events_maxlen=5&retention=9")
    assert isinstance(s, RedisStore) and isinstance(s, Store)
    assert not s.cluster and s.prefix == "p:" and s.events_maxlen == 5 and s.retention == 9.0
    assert "s3cret" not in s.url and "s3cret" not in repr(s)
    pool = s._redis.client().connection_pool
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    tls = open_store("rediss://127.0.0.1:6390")
    assert "SSL" in tls._redis.client().connection_pool.connection_class.__name__
    c = open_store("redis+cluster://10.0.0.1:7000,10.0.0.2:7001?prefix=q:")
    assert c.cluster and c._redis.extra_nodes == ["10.0.0.2:7001"]
    assert c._redis.client_url.startswith("redis://10.0.0.1:7000")
    assert open_store("redis://127.0.0.1:7000?cluster=true").cluster
    assert open_store("rediss+cluster://127.0.0.1:7000").cluster


def test_import_without_redis_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, tsbandit.stores; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------
def test_sqlite_file_format(tmp_path) -> None:
    path = tmp_path / "f.db"
    store = SQLiteStore(path)
    store.create_bandit("b", {"k": 1}, layout())
    store.add("b", reward_delta(1, 2))
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = dict(raw.execute("SELECT name, data FROM stats WHERE bandit = 'b'").fetchall())
    want = store.read("b").arrays
    for k, v in want.items():
        assert rows[k] == v.astype("<f8").tobytes()  # raw little-endian float64, no pickle
    raw.close()
    store.close()


def test_sqlite_restart_keeps_everything(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    a = open_store(url)
    a.create_bandit("b", {"arms": [1, 2, 3, 4]}, layout())
    a.add("b", reward_delta(3, 4))
    a.put_pending("b", "d1", {"arm": 1}, 1e12, event={"t": "decision"})
    a.apply_reward("b", "d1", reward_delta(1, 1), {"t": "reward"}, 1.0)
    a.put_pending("b", "d2", {"arm": 0}, 1e12)
    a.decay("b", 60.0, 1000.0)
    before = a.read("b")
    a.close()
    with pytest.raises(StoreUnavailableError):
        a.read("b")
    b = open_store(url)
    after = b.read("b")
    assert (after.config, after.version, after.decayed_at) == (before.config, 2, 1000.0)
    for k, v in before.arrays.items():
        np.testing.assert_array_equal(after.arrays[k], v)
    assert b.apply_reward("b", "d1", reward_delta(1, 1), None, 1.0).duplicate
    assert b.apply_reward("b", "d2", reward_delta(0, 1), None, 1.0).status == "applied"
    assert list(b.iter_events("b")) == [{"t": "decision"}, {"t": "reward"}]
    b.close()


def test_sqlite_locked_database_is_unavailable_and_unchanged(tmp_path) -> None:
    path = tmp_path / "l.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    store.create_bandit("b", {}, layout())
    store.put_pending("b", "d1", {}, 1e12)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailableError):
            store.apply_reward("b", "d1", reward_delta(0, 0), {"x": 1}, 1.0)
        assert store.read("b").version == 0  # readers are not blocked (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.get_pending("b", "d1").status == "pending"
    assert store.apply_reward("b", "d1", reward_delta(0, 0), {"x": 1}, 1.0).status == "applied"
    store.close()


def test_sqlite_unreadable_file_is_unavailable(tmp_path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError):
        SQLiteStore(path)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_store_object_survives_fork(kind: str, request, tmp_path) -> None:
    """A store opened before ``fork`` (as servers that fork workers do) works in the child:
    each process opens its own connections."""
    import os

    from .conftest import make_backend

    backend = make_backend(kind, request, tmp_path)
    try:
        store = backend.open()
        store.create_bandit("f", {}, layout())
        store.add("f", reward_delta(0, 1))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                store.add("f", reward_delta(1, 1))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        store.add("f", reward_delta(2, 1))
        assert store.read("f").arrays["n"].tolist() == [1.0, 1.0, 1.0, 0.0]
    finally:
        backend.close()


# A file as tsbandit wrote it at schema version 1 (before ``purge_at`` became
# ``consumed_deadline``): the tables, and the rows of a bandit with one rewarded, one expired
# and one pending decision and two events, written the way version 1 wrote them.
_SCHEMA_V1 = """
CREATE TABLE bandits (name TEXT PRIMARY KEY, config TEXT NOT NULL, version INTEGER NOT NULL,
    config_version INTEGER NOT NULL, decayed_at REAL, created_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE stats (bandit TEXT NOT NULL, name TEXT NOT NULL, pos INTEGER NOT NULL,
    shape TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (bandit, name)) WITHOUT ROWID;
CREATE TABLE decisions (bandit TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL,
    deadline REAL NOT NULL, status TEXT NOT NULL, token TEXT, due REAL, purge_at REAL,
    PRIMARY KEY (bandit, id)) WITHOUT ROWID;
CREATE INDEX decisions_due ON decisions (bandit, due) WHERE due IS NOT NULL;
CREATE INDEX decisions_purge ON decisions (bandit, purge_at) WHERE purge_at IS NOT NULL;
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, bandit TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX events_bandit ON events (bandit, id);
PRAGMA user_version = 1;
"""


def _write_v1_file(path) -> None:
    raw = sqlite3.connect(path)
    raw.executescript(_SCHEMA_V1)
    n = np.array([0.0, 2.0, 0.0, 0.0])
    raw.execute("INSERT INTO bandits VALUES ('b', '{\"arms\":4}', 2, 0, NULL, 0.0)")
    for pos, (key, arr) in enumerate({"n": n, "s": n, "A": np.zeros((4, 2, 2))}.items()):
        shape = ",".join(map(str, arr.shape))
        raw.execute("INSERT INTO stats VALUES ('b', ?, ?, ?, ?)", (key, pos, shape, arr.tobytes()))
    raw.executemany(
        "INSERT INTO decisions VALUES ('b', ?, ?, ?, ?, NULL, ?, ?)",
        [("r1", '{"arm":1}', 100.0, "r", None, 100.0),
         ("x1", '{"arm":1}', 200.0, "x", None, 200.0),
         ("p1", '{"arm":0}', 1e12, "p", 1e12, None)],
    )
    raw.executemany("INSERT INTO events (bandit, data) VALUES ('b', ?)",
                    [('{"t":"decision"}',), ('{"t":"reward"}',)])
    raw.commit()
    raw.close()


def test_sqlite_file_of_schema_version_1_is_migrated_and_keeps_everything(tmp_path) -> None:
    path = tmp_path / "v1.db"
    _write_v1_file(path)
    store = SQLiteStore(path, retention=10.0)
    snap = store.read("b")
    assert (snap.config, snap.version) == ({"arms": 4}, 2)
    assert snap.arrays["n"].tolist() == [0.0, 2.0, 0.0, 0.0]
    assert store.get_pending("b", "r1").status == "rewarded"
    assert store.get_pending("b", "x1").status == "expired"
    assert store.apply_reward("b", "r1", reward_delta(1, 1), None, 50.0).duplicate
    assert store.get_pending("b", "r1").outcome is None  # rewarded before outcomes existed
    assert list(store.iter_events("b")) == [{"t": "decision"}, {"t": "reward"}]
    # the consumed decisions' deadlines moved to consumed_deadline: purge still finds them
    assert store.purge("b", 205.0).decisions == 1  # r1 (100 + 10 < 205), not x1 (200 + 10)
    assert store.purge("b", 215.0).decisions == 1
    assert store.apply_reward("b", "p1", reward_delta(0, 1), None, 1.0).status == "applied"
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    columns = [r[1] for r in raw.execute("PRAGMA table_info(decisions)")]
    assert "consumed_deadline" in columns and "purge_at" not in columns
    assert "outcome" in columns  # 1 -> 2 -> 3 -> 4 in one go
    assert raw.execute("SELECT count(*) FROM assignments").fetchone() == (0,)
    indexes = {r[1] for r in raw.execute("PRAGMA index_list(decisions)")}
    assert "decisions_consumed" in indexes and "decisions_purge" not in indexes
    raw.close()
    again = SQLiteStore(path)  # a migrated file opens as it is
    assert again.get_pending("b", "p1").status == "rewarded"
    again.close()


# A file as tsbandit wrote it at schema version 2 (before ``decisions.outcome``): the DDL is
# what that version's code created (copied from ``sqlite_master`` of a file it wrote), with a
# bandit holding one decision of each status and two events.
_SCHEMA_V2 = """
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
PRAGMA user_version = 2;
"""


def _write_v2_file(path) -> None:
    raw = sqlite3.connect(path)
    raw.executescript(_SCHEMA_V2)
    n = np.array([0.0, 1.0, 0.0, 0.0])
    raw.execute("INSERT INTO bandits VALUES ('b', '{\"arms\":4}', 1, 0, NULL, 0.0)")
    for pos, (key, arr) in enumerate({"n": n, "s": n, "A": np.zeros((4, 2, 2))}.items()):
        shape = ",".join(map(str, arr.shape))
        raw.execute("INSERT INTO stats VALUES ('b', ?, ?, ?, ?)", (key, pos, shape, arr.tobytes()))
    raw.executemany(  # bandit, id, payload, deadline, status, token, due, consumed_deadline
        "INSERT INTO decisions VALUES ('b', ?, ?, ?, ?, ?, ?, ?)",
        [("r1", '{"arm":1}', 100.0, "r", None, None, 100.0),
         ("x1", '{"arm":1}', 200.0, "x", None, None, 200.0),
         ("c1", '{"arm":2}', 300.0, "c", "tok", 330.0, None),
         ("p1", '{"arm":0}', 1e12, "p", None, 1e12, None)],
    )
    raw.executemany("INSERT INTO events (bandit, data) VALUES ('b', ?)",
                    [('{"t":"decision"}',), ('{"t":"reward"}',)])
    raw.commit()
    raw.close()


def _schema(path) -> tuple[list, list]:
    """The decisions table's columns (name, type, not null, default, pk) and every index."""
    raw = sqlite3.connect(path)
    try:
        columns = [r[1:] for r in raw.execute("PRAGMA table_info(decisions)")]
        indexes = sorted(r[0] for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
        return columns, indexes
    finally:
        raw.close()


def test_sqlite_file_of_schema_version_2_gets_outcomes_and_keeps_everything(tmp_path) -> None:
    path = tmp_path / "v2.db"
    _write_v2_file(path)
    store = SQLiteStore(path, retention=10.0)
    snap = store.read("b")
    assert (snap.config, snap.version, snap.arrays["n"].tolist()) == (
        {"arms": 4}, 1, [0.0, 1.0, 0.0, 0.0])
    got = {d: store.get_pending("b", d) for d in ("r1", "x1", "c1", "p1")}
    assert {d: (p.status, p.outcome) for d, p in got.items()} == {
        "r1": ("rewarded", None), "x1": ("expired", None), "c1": ("claimed", None),
        "p1": ("pending", None)}
    # the old rewarded decision is still a duplicate (and keeps no outcome)
    assert store.apply_reward("b", "r1", reward_delta(1, 1), None, 50.0, outcome=1.0).duplicate
    assert store.get_pending("b", "r1").outcome is None
    # the claim written by version 2 settles with its token; the pending one takes an outcome
    claim = ClaimedDecision("c1", {"arm": 2}, 300.0, "tok")
    assert store.settle_expired("b", claim, None, {"t": "expired"})
    assert store.apply_reward("b", "p1", reward_delta(0, 1), {"t": "reward"}, 1.0,
                              outcome=0.5).status == "applied"
    assert store.apply_reward("b", "p1", reward_delta(0, 1), None, 1.0, outcome=0.0).duplicate
    assert (store.get_pending("b", "p1").outcome, store.get_pending("b", "c1").outcome) == (
        0.5, None)
    assert store.read("b").version == 2
    assert [e["t"] for e in store.iter_events("b")] == ["decision", "reward", "expired", "reward"]
    assert store.purge("b", 205.0).decisions == 1  # r1 (100 + 10 < 205)
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("SELECT outcome FROM decisions WHERE id = 'p1'").fetchone() == (0.5,)
    raw.close()
    # the migrated file has the decisions table of a new file
    fresh = tmp_path / "fresh.db"
    SQLiteStore(fresh).close()
    assert _schema(path) == _schema(fresh)
    again = SQLiteStore(path)  # a migrated file opens as it is
    assert again.get_pending("b", "p1").outcome == 0.5
    again.close()


@pytest.mark.parametrize("round_", range(20))
def test_sqlite_version_2_file_opened_by_many_threads_at_once_migrates_once(
        tmp_path, round_: int) -> None:
    """Each thread opens its own store on the old (rollback-journal) file at the same moment:
    the first to take the write lock migrates, the others then see the new version (adding the
    column twice fails). Switching the file to WAL races too: SQLite refuses one of two
    connections upgrading their shared locks at once without waiting, and the store must wait
    for it rather than fail -- that race lost about one round in twenty before, hence rounds."""
    path = tmp_path / "v2.db"
    _write_v2_file(path)
    n = 6
    stores = in_threads(lambda _: SQLiteStore(path), n)
    assert stores[0].apply_reward("b", "p1", reward_delta(0, 1), None, 1.0,
                                  outcome=1.0).status == "applied"
    assert [s.get_pending("b", "p1").outcome for s in stores] == [1.0] * n
    for s in stores:
        s.close()


def test_sqlite_old_file_opened_while_another_writes_waits_for_the_wal_switch(tmp_path) -> None:
    """A rollback-journal file whose write lock another connection holds: the switch to WAL is
    refused at once by SQLite (its busy handler is not asked while a read is open), so the
    store retries it until ``busy_timeout`` -- it opens once the writer commits, and fails with
    ``StoreUnavailableError`` only when the lock outlives the timeout."""
    path = tmp_path / "v2.db"
    _write_v2_file(path)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailableError, match="database is locked"):
        SQLiteStore(path, busy_timeout=0.1)
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        store = SQLiteStore(path, busy_timeout=5.0)
    finally:
        release.join()
        writer.close()
    assert store.read("b").version == 1
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_file_of_a_newer_schema_is_refused_unchanged(tmp_path) -> None:
    path = tmp_path / "new.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE future (x)")
    raw.execute("PRAGMA user_version = 99")
    raw.commit()
    raw.close()
    with pytest.raises(ConfigurationError, match="schema version 99"):
        SQLiteStore(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 99
    raw.close()
