"""/metrics (counters move by exactly the right amounts), JSON-lines logs, the traffic series."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from concurrency import in_threads
from tsbandit.engine import Engine
from tsbandit.errors import StoreUnavailableError
from tsbandit.service.traffic import nice_bucket, traffic_series
from tsbandit.stores.memory import MemoryStore


def samples(client) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(snap, name, **labels) -> float:
    return snap.get((name, frozenset(labels.items())), 0.0)


def create(client, name="ads", arms=("a", "b", "c"), **extra):
    r = client.post("/v1/bandits", json={"name": name, "arms": list(arms), **extra})
    assert r.status_code == 201, r.text


# ----- counters -------------------------------------------------------------------------------
def test_decisions_and_rewards_are_counted_per_bandit_and_arm(client):
    create(client, reward_window=10)
    before = samples(client)
    arms: Counter[str] = Counter()
    ids = []
    for _ in range(7):
        d = client.post("/v1/bandits/ads/decisions", json={}).json()
        arms[d["arm"]] += 1
        ids.append((d["decision_id"], d["arm"]))
    batch = client.post("/v1/bandits/ads/decisions/batch", json={"n": 5}).json()["decisions"]
    for d in batch:
        arms[d["arm"]] += 1
        ids.append((d["decision_id"], d["arm"]))
    applied: Counter[str] = Counter()
    duplicate: Counter[str] = Counter()
    for i, (did, arm) in enumerate(ids[:6]):
        body = {"decision_id": did, "reward": i % 2}
        assert client.post("/v1/bandits/ads/rewards", json=body).json()["status"] == "applied"
        applied[arm] += 1
        if i < 4:  # a repeat changes nothing but is counted as a duplicate
            assert client.post("/v1/bandits/ads/rewards", json=body).json()["duplicate"]
            duplicate[arm] += 1
    after = samples(client)
    for arm in ("a", "b", "c"):
        delta = (value(after, "tsbandit_decisions_total", bandit="ads", arm=arm)
                 - value(before, "tsbandit_decisions_total", bandit="ads", arm=arm))
        assert delta == arms[arm]
        for status, expected in (("applied", applied), ("duplicate", duplicate)):
            got = value(after, "tsbandit_rewards_total", bandit="ads", arm=arm, status=status)
            assert got == expected[arm], (arm, status)
    assert sum(arms.values()) == 12
    # the store timings saw one write per decision request (the batch's 5 decisions in one
    # put_pending_many) and one apply_reward per reward call
    assert (value(after, "tsbandit_store_operation_duration_seconds_count",
                  operation="put_pending_many")
            - value(before, "tsbandit_store_operation_duration_seconds_count",
                    operation="put_pending_many")) == 8
    assert (value(after, "tsbandit_store_operation_duration_seconds_count",
                  operation="apply_reward")
            - value(before, "tsbandit_store_operation_duration_seconds_count",
                    operation="apply_reward")) == 10


def test_tutorial_endpoints_are_counted_on_the_default_bandit(client):
    name = "credit_card_offers"
    offers = Counter(client.get(f"/recommend/c{i}").json()["offer"] for i in range(4))
    client.post("/reward", json={"customer_id": "c0", "arm": client.get("/recommend/c0").json()[
        "offer"], "reward": 1})
    snap = samples(client)
    total = sum(v for (n, labels), v in snap.items()
                if n == "tsbandit_decisions_total" and ("bandit", name) in labels)
    assert total == sum(offers.values()) + 1
    assert sum(v for (n, labels), v in snap.items()
               if n == "tsbandit_rewards_total" and ("status", "applied") in labels) == 1


def test_expired_rewards_and_swept_decisions(client, engine, clock):
    create(client, reward_window=10, default_reward=0)
    late = client.post("/v1/bandits/ads/decisions", json={}).json()
    swept = [client.post("/v1/bandits/ads/decisions", json={}).json() for _ in range(3)]
    clock.advance(11)
    r = client.post("/v1/bandits/ads/rewards",
                    json={"decision_id": late["decision_id"], "reward": 1})
    assert r.status_code == 410
    snap = samples(client)
    assert value(snap, "tsbandit_rewards_refused_total", bandit="ads", reason="expired") == 1
    assert value(snap, "tsbandit_rewards_total", bandit="ads", arm=late["arm"],
                 status="applied") == 0
    # the sweep settles the 3 silent ones (and the late one: its reward was refused); it runs
    # through the app's engine, the observed twin of ``engine`` (what the sweeper uses), so the
    # observed store counts each settlement; ``engine`` itself stays unobserved
    app_engine = client.app.state.runtime.engine
    assert app_engine is not engine and app_engine.store.inner is engine.store
    assert app_engine.sweep_expired("ads") == 4
    snap = samples(client)
    expected = Counter(d["arm"] for d in [*swept, late])
    for arm in ("a", "b", "c"):
        assert value(snap, "tsbandit_decisions_expired_total", bandit="ads",
                     arm=arm) == expected[arm]


def test_request_latency_histogram_uses_route_templates(client):
    create(client)
    before = samples(client)
    for _ in range(3):
        client.post("/v1/bandits/ads/decisions", json={})
    client.post("/v1/bandits/nope/decisions", json={})  # 404, same template
    client.get("/no/such/path/123")
    after = samples(client)

    def count(route, status, method="POST"):
        key = dict(method=method, route=route, status=status)
        return (value(after, "tsbandit_http_request_duration_seconds_count", **key)
                - value(before, "tsbandit_http_request_duration_seconds_count", **key))

    assert count("/v1/bandits/{name}/decisions", "200") == 3
    assert count("/v1/bandits/{name}/decisions", "404") == 1
    assert count("<unmatched>", "404", "GET") == 1
    # the +Inf bucket holds every observation; the sum is positive
    inf = value(after, "tsbandit_http_request_duration_seconds_bucket", method="POST",
                route="/v1/bandits/{name}/decisions", status="200", le="+Inf")
    assert inf == value(after, "tsbandit_http_request_duration_seconds_count", method="POST",
                        route="/v1/bandits/{name}/decisions", status="200")
    assert not any("/no/such" in str(labels) for _, labels in after)


class FlakyStore(MemoryStore):
    """A MemoryStore whose reads fail while ``down`` is set."""

    down = False

    def read(self, name):
        if self.down:
            raise StoreUnavailableError("backend down (test)")
        return super().read(name)


def test_store_errors_are_counted(make_client, clock):
    store = FlakyStore()
    client = make_client(Engine(store, seed=0, clock=clock))
    create(client)
    store.down = True
    for _ in range(2):
        assert client.post("/v1/bandits/ads/decisions", json={}).status_code == 503
    store.down = False
    assert client.post("/v1/bandits/ads/decisions", json={}).status_code == 200
    snap = samples(client)
    assert value(snap, "tsbandit_store_errors_total", operation="read", error="unavailable") == 2
    # domain answers (unknown bandit) are not store errors
    client.post("/v1/bandits/nope/decisions", json={})
    snap = samples(client)
    assert sum(v for (n, _), v in snap.items() if n == "tsbandit_store_errors_total") == 2


def test_metrics_can_be_off_and_follow_read_auth(make_client):
    assert make_client(metrics=False).get("/metrics").status_code == 404
    locked = make_client(api_key="k", open_reads=False)
    r = locked.get("/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert locked.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 200
    assert make_client(api_key="k").get("/metrics").status_code == 200  # reads open


# ----- logs -----------------------------------------------------------------------------------
def log_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_log_line_for_every_decision_and_reward(client, capsys):
    create(client)
    capsys.readouterr()
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    batch = client.post("/v1/bandits/ads/decisions/batch", json={"n": 2}).json()["decisions"]
    client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    lines = log_lines(capsys.readouterr().out)
    decisions = [x for x in lines if x.get("event") == "decision"]
    assert {x["decision_id"] for x in decisions} == {d["decision_id"],
                                                     *(b["decision_id"] for b in batch)}
    first = next(x for x in decisions if x["decision_id"] == d["decision_id"])
    assert first["arm"] == d["arm"] and first["bandit"] == "ads"
    assert first["propensity"] == pytest.approx(d["propensity"])
    assert first["logger"] == "tsbandit.events" and first["level"] == "info"
    assert first["ts"].endswith("Z")
    rewards = [x for x in lines if x.get("event") == "reward"]
    assert [(x["decision_id"], x["status"], x["reward"]) for x in rewards] == [
        (d["decision_id"], "applied", 1.0), (d["decision_id"], "duplicate", 1.0)]
    requests = [x for x in lines if x.get("event") == "request"]
    assert [x["route"] for x in requests] == ["/v1/bandits/{name}/decisions",
                                              "/v1/bandits/{name}/decisions/batch",
                                              "/v1/bandits/{name}/rewards",
                                              "/v1/bandits/{name}/rewards"]
    assert all(x["status"] == 200 and x["duration_ms"] > 0 for x in requests)


def test_expired_reward_is_logged_with_its_id(client, clock, capsys):
    create(client, reward_window=5)
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    clock.advance(6)
    capsys.readouterr()
    client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 0})
    lines = log_lines(capsys.readouterr().out)
    assert [(x["event"], x["decision_id"]) for x in lines if x.get("event") != "request"] == [
        ("reward_refused", d["decision_id"])]


def test_log_format_text_and_none(make_client, capsys):
    client = make_client(log_format="text", log_requests=False)
    create(client)
    capsys.readouterr()
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    out = capsys.readouterr().out
    assert f"decision_id={d['decision_id']}" in out and not out.lstrip().startswith("{")
    client = make_client(log_format="none")
    create(client, "quiet")
    capsys.readouterr()
    client.post("/v1/bandits/quiet/decisions", json={})
    assert capsys.readouterr().out == ""


# ----- traffic --------------------------------------------------------------------------------
def test_traffic_endpoint_counts_decisions_per_arm(client, clock):
    create(client)
    arms: Counter[str] = Counter()
    for step in range(30):
        arms[client.post("/v1/bandits/ads/decisions", json={}).json()["arm"]] += 1
        clock.advance(10 if step % 3 == 0 else 1)
    t = client.get("/v1/bandits/ads/traffic", params={"buckets": 10}).json()
    assert t["arms"] == ["a", "b", "c"]
    assert len(t["times"]) == len(t["decisions"]) <= 11
    assert dict(zip(t["arms"], t["totals"]["decisions"], strict=True)) == {
        a: arms[a] for a in ("a", "b", "c")}
    assert [sum(col) for col in zip(*t["decisions"], strict=True)] == t["totals"]["decisions"]
    assert client.get("/v1/bandits/nope/traffic").status_code == 404
    assert client.get("/v1/bandits/ads/traffic", params={"buckets": 0}).status_code == 422


events_st = st.lists(st.tuples(st.sampled_from(["decision", "reward", "expired", "other"]),
                               st.floats(0, 1e5), st.sampled_from(["a", "b", "old"]),
                               st.sampled_from([0.0, 1.0])), max_size=60)


@settings(max_examples=60, deadline=None)
@given(events_st, st.integers(1, 50), st.one_of(st.none(), st.floats(1, 2e5)))
def test_traffic_series_conserves_every_event(rows, buckets, window):
    now = 1e5
    events = [{"type": k, "timestamp": t, "arm": a, "reward": r} for k, t, a, r in rows]
    out = traffic_series(events, ["a", "b"], now=now, buckets=buckets, window=window)
    since = -1.0 if window is None else now - window
    kept = [e for e in events if e["timestamp"] >= since]
    for kind, key in (("decision", "decisions"), ("reward", "rewards"), ("expired", "expired")):
        want = Counter(e["arm"] for e in kept if e["type"] == kind)
        got = {a: sum(row[i] for row in out[key]) for i, a in enumerate(out["arms"])}
        assert all(got.get(a, 0) == n for a, n in want.items()) and sum(got.values()) == sum(
            want.values())
    assert out["arms"][:2] == ["a", "b"]
    n = len(out["times"])
    assert n <= buckets + 2
    w = out["bucket_seconds"]
    counted = [e["timestamp"] for e in kept if e["type"] != "other"]
    first = min(counted, default=now) if window is None else since
    assert out["start"] <= first < out["start"] + w  # the series starts at the first event
    assert out["times"][-1] <= max([*counted, now]) < out["times"][-1] + w  # ends at now
    assert w == nice_bucket(max(max([*counted, now]) - first, 1.0), buckets)
    for e in kept:  # every event falls in the bucket whose interval holds its time
        if e["type"] in ("decision", "reward", "expired"):
            b = min(int((e["timestamp"] - out["start"]) // w), n - 1)
            assert out["times"][b] <= e["timestamp"] < out["times"][b] + w


def test_nice_bucket():
    assert nice_bucket(60, 60) == 1 and nice_bucket(61, 60) == 2 and nice_bucket(3600, 60) == 60
    assert nice_bucket(10 * 86400, 10) == 86400 and nice_bucket(1e9, 10) % 604800 == 0


# ----- several workers ------------------------------------------------------------------------
def test_two_workers_report_summed_metrics(serve, tmp_path, unique):
    """Under serve(workers=2) every scrape, whichever worker answers it, reports the decisions
    of both workers (prometheus multiprocess mode)."""
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'm.db'}",
                    "TSBANDIT_DEFAULT_BANDIT": "false", "TSBANDIT_LOG_FORMAT": "none"},
                   workers=2, via_serve=True)
    name = f"m{unique}"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/v1/bandits", json={"name": name, "arms": ["a", "b"]}
                         ).status_code == 201
        n = 40
        for _ in range(n):  # fresh connections spread over both workers
            assert httpx.post(server.url + f"/v1/bandits/{name}/decisions", json={},
                              timeout=10).status_code == 200
        for _ in range(6):
            fams = text_string_to_metric_families(httpx.get(server.url + "/metrics").text)
            total = sum(s.value for f in fams for s in f.samples
                        if s.name == "tsbandit_decisions_total" and s.labels["bandit"] == name)
            assert total == n


def test_series_cache_scans_once_and_longer_for_slow_scans():
    import time as _time

    from tsbandit.service.dashboard import _SeriesCache

    calls = []

    def slow() -> dict:
        calls.append(1)
        _time.sleep(0.05)
        return {"n": len(calls)}

    cache = _SeriesCache(min_seconds=0.01, cost_factor=20.0)
    assert in_threads(lambda _: cache.get_or_compute(("k",), slow), 8) == [{"n": 1}] * 8
    assert len(calls) == 1  # eight concurrent readers, one scan
    _time.sleep(0.2)  # past min_seconds, within 20 x 0.05 s = 1 s
    assert cache.get_or_compute(("k",), slow) == {"n": 1} and len(calls) == 1
    fast = _SeriesCache(min_seconds=0.01, cost_factor=20.0)
    fast.get_or_compute(("k",), lambda: {"v": 1})
    _time.sleep(0.3)  # past min_seconds, and past 20 x the scan's cost unless it took 15 ms
    assert fast.get_or_compute(("k",), lambda: {"v": 2}) == {"v": 2}  # cheap scans: fresh


def test_log_timestamps_match_strftime_across_seconds():
    # the formatter caches the text of the current second: it must never mix two seconds
    import random

    from tsbandit.service.logs import _timestamp

    rng = random.Random(0)
    times = sorted(1_700_000_000 + rng.uniform(0, 5) for _ in range(500))
    times += [1_700_000_000.0, 1_700_000_000.9999, 1_700_000_001.0, 1_699_999_999.5]
    for t in times:
        want = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                + f".{int(t % 1 * 1000):03d}Z")
        assert _timestamp(t) == want, t
