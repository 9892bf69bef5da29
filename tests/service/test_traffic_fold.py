"""The dashboard's incremental fold of the event log (service/traffic.py TrafficFold): the
same series as a full scan, whatever the page size and however updates interleave with
appends; exact counts after bins merge; a fresh start when the log's head changes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit.service.traffic import TrafficFold, traffic_series
from tsbandit.stores import MemoryStore, SQLiteStore

ARMS = ["a", "b"]
KINDS = ["decision", "reward", "expired", "other"]
event_st = st.tuples(st.sampled_from(KINDS), st.floats(0, 1e5, allow_nan=False),
                     st.sampled_from(["a", "b", "old"]), st.sampled_from([0.0, 1.0, 0.5]))


def _event(kind: str, t: float, arm: str, r: float) -> dict[str, Any]:
    return {"type": kind, "timestamp": t, "arm": arm, "reward": r}


def _store() -> MemoryStore:
    store = MemoryStore()
    store.create_bandit("b", {}, {})
    return store


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(event_st, max_size=25), min_size=1, max_size=5),
       st.integers(1, 7), st.integers(1, 40))
def test_fold_equals_a_full_scan(chunks, page, buckets):
    """Appends in chunks, an update after each, pages of any size: the same series as
    ``traffic_series`` over the whole log, bucket for bucket."""
    store, fold = _store(), TrafficFold(page=page)
    events: list[dict[str, Any]] = []
    now = 1e5
    for chunk in chunks:
        for row in chunk:
            store.append_event("b", _event(*row))
            events.append(_event(*row))
        fold.update(store, "b")
        assert fold.series(ARMS, now=now, buckets=buckets) == traffic_series(
            events, ARMS, now=now, buckets=buckets)
    assert fold.update(store, "b") == 0  # nothing new: nothing read


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=60), st.integers(1, 40), st.floats(1, 2e5))
def test_fold_window_counts_the_bins_that_overlap_it(rows, buckets, window):
    store, fold = _store(), TrafficFold()
    for row in rows:
        store.append_event("b", _event(*row))
    fold.update(store, "b")
    now = 1e5
    since = now - window
    got = fold.series(ARMS, now=now, buckets=buckets, window=window)
    full = traffic_series([_event(*r) for r in rows], ARMS, now=now, buckets=buckets,
                          window=window)
    # the same buckets; an event counts when its 1 s bin reaches into the window
    assert (got["start"], got["bucket_seconds"], got["times"]) == (
        full["start"], full["bucket_seconds"], full["times"])
    for kind, key in (("decision", "decisions"), ("reward", "rewards"), ("expired", "expired")):
        want = Counter(a for k, t, a, _ in rows if k == kind and int(t) + 1 > since)
        have = {a: sum(row[i] for row in got[key]) for i, a in enumerate(got["arms"])}
        assert {a: n for a, n in have.items() if n} == dict(want)


def test_merged_bins_stay_exact():
    """Past ``max_bins`` the bins merge (1 s -> 1 min -> 1 h); the buckets are then multiples
    of the bin width and every count and reward sum is exact for that width."""
    store, fold = _store(), TrafficFold(max_bins=50)
    events = []
    for i in range(400):
        e = _event(KINDS[i % 3], 1000.0 + 37.3 * i, ARMS[i % 2], float(i % 2))
        events.append(e)
        store.append_event("b", e)
    fold.update(store, "b")
    assert fold.resolution == 3600 and len(fold.bins) <= 50
    now = 1000.0 + 37.3 * 400
    out = fold.series(ARMS, now=now, buckets=500)
    w, start = out["bucket_seconds"], out["start"]
    assert w % 3600 == 0
    for key, kind in (("decisions", "decision"), ("rewards", "reward"), ("expired", "expired")):
        want = [[0, 0] for _ in out["times"]]
        for e in events:
            if e["type"] == kind:
                want[int((e["timestamp"] - start) // w)][ARMS.index(e["arm"])] += 1
        assert out[key] == want
    sums = [[0.0, 0.0] for _ in out["times"]]
    for e in events:
        if e["type"] == "reward":
            sums[int((e["timestamp"] - start) // w)][ARMS.index(e["arm"])] += e["reward"]
    assert out["reward_sums"] == sums
    assert sum(out["totals"]["decisions"]) == sum(e["type"] == "decision" for e in events)


def test_a_recreated_bandit_starts_over(tmp_path):
    store = SQLiteStore(tmp_path / "t.db")
    store.create_bandit("b", {}, {})
    fold = TrafficFold()
    store.append_event("b", _event("decision", 10.0, "a", 0.0))
    fold.update(store, "b")
    store.delete_bandit("b")
    store.create_bandit("b", {}, {})
    store.append_event("b", _event("decision", 20.0, "b", 0.0))
    fold.update(store, "b")
    out = fold.series(ARMS, now=30.0)
    assert out["totals"]["decisions"] == [0, 1]
    store.close()


def test_a_trimmed_log_starts_over():
    store = MemoryStore(events_maxlen=5)
    store.create_bandit("b", {}, {})
    fold = TrafficFold()
    for i in range(5):
        store.append_event("b", _event("decision", float(i), "a", 0.0))
    fold.update(store, "b")
    for i in range(5, 8):
        store.append_event("b", _event("decision", float(i), "b", 0.0))
    fold.update(store, "b")  # the oldest 3 were trimmed: the series is what the log holds
    assert fold.series(ARMS, now=10.0)["totals"]["decisions"] == [2, 3]


def test_traffic_endpoint_folds_new_events(client, monkeypatch):
    from tsbandit.service import dashboard

    # no reuse of a computed series: every request updates the fold
    monkeypatch.setattr(dashboard._cache, "min_seconds", 0.0)
    monkeypatch.setattr(dashboard._cache, "cost_factor", 0.0)
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b", "c"]})
    for _ in range(5):
        client.post("/v1/bandits/ads/decisions", json={})
    first = client.get("/v1/bandits/ads/traffic").json()
    assert sum(first["totals"]["decisions"]) == 5
    for _ in range(7):
        client.post("/v1/bandits/ads/decisions", json={})
    again = client.get("/v1/bandits/ads/traffic").json()
    assert sum(again["totals"]["decisions"]) == 12


@pytest.mark.parametrize("bad", [{"buckets": 0}, {"window": -1},
                                 {"window": 1.7976931348623157e308}, {"window": 1.00001e10}])
def test_traffic_endpoint_bad_query(client, bad):
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]})
    r = client.get("/v1/bandits/ads/traffic", params=bad)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_traffic_endpoint_longest_window(client):
    """The largest window (1e10 s) reaches back before the epoch: every event counts."""
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]})
    for _ in range(3):
        client.post("/v1/bandits/ads/decisions", json={})
    r = client.get("/v1/bandits/ads/traffic", params={"window": 1e10, "buckets": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(body["totals"]["decisions"]) == 3 and len(body["times"]) <= 5 + 1
