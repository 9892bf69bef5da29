"""The fast path (service/fastpath.py): ``POST /v1/bandits/{name}/decisions``, ``POST
/v1/bandits/{name}/rewards``, ``GET /recommend/{customer_id}`` and ``POST /reward`` answer
exactly as their declared FastAPI routes do (the rewards' generated sessions:
tests/service/test_fastpath_rewards.py).

Two apps over two engines in the same state (same seed, same fake clock, the same requests in
the same order) -- one with the fast path, one without -- get the same requests; status, JSON
body and headers must be equal, for valid requests (which the fast path serves: its counters
say so) and invalid ones (which it hands to the declared route). In process over ASGI, and
over real HTTP against two uvicorn servers.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.parse
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsbandit.engine import BanditSpec, Engine
from tsbandit.engine.keys import keyed_tokens
from tsbandit.errors import StoreUnavailableError
from tsbandit.policies import LinearGaussian
from tsbandit.service import Settings, create_app
from tsbandit.service.deps import get_engine
from tsbandit.service.fastpath import FastPathCounts, json_answer, matches
from tsbandit.service.logs import JsonFormatter, _json_line
from tsbandit.stores.base import Snapshot
from tsbandit.stores.memory import MemoryStore

ARMS = ["a", "b", "c"]
KEY = "s3cret-key"
#: the id of the decision that VALID makes with Idempotency-Key k1 (derived from the key)
K1 = "ads~" + keyed_tokens("k1", 1)[0]
_RW = "/v1/bandits/ads/rewards"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


class DownStore(MemoryStore):
    """A MemoryStore that can be switched off (every read then raises)."""

    down = False

    def read(self, name: str) -> Snapshot:
        if self.down:
            raise StoreUnavailableError("store down (test)")
        return super().read(name)


def twin_apps(**options: Any) -> tuple[Any, Any, list[DownStore]]:
    """The same service with and without the fast path, over engines in the same state."""
    apps, stores = [], []
    for fast in (True, False):
        store = DownStore()
        engine = Engine(store, seed=7, clock=Clock())
        engine.create_bandit(BanditSpec(name="ads", arms=ARMS))
        engine.create_bandit(BanditSpec(name="ctx", arms=ARMS, model=LinearGaussian(n_features=2)))
        s = Settings(store="memory://", default_bandit_name="offers", sweep_interval=0,
                     log_format="none", gc_freeze=False, fast_path=fast, **options)
        apps.append(create_app(s, engine=engine))
        stores.append(store)
    return apps[0], apps[1], stores


def comparable(r: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """Status, JSON (decision ids without their random part) and the headers that matter."""
    try:
        body = r.json()
    except json.JSONDecodeError:
        body = r.text
    if isinstance(body, dict) and "decision_id" in body and "~" in body["decision_id"]:
        # random ids (uuid4) differ between the apps; derived ones (Idempotency-Key) do not
        body = {**body, "decision_id": body["decision_id"].split("~")[0]}
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "server")}
    return r.status_code, body, headers


async def both(fast: Any, slow: Any, calls: list[tuple[str, str, dict[str, Any]]]
               ) -> list[tuple[Any, Any]]:
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fast),
                                 base_url="http://t") as a, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=slow),
                              base_url="http://t") as b:
        for method, path, kw in calls:
            ra = await a.request(method, path, **kw)
            rb = await b.request(method, path, **kw)
            out.append((comparable(ra), comparable(rb)))
    return out


def run_both(fast: Any, slow: Any, calls: list[tuple[str, str, dict[str, Any]]], *,
             lifespan: bool = True) -> list[tuple[Any, Any]]:
    async def go() -> list[tuple[Any, Any]]:
        if not lifespan:  # the engines are given: nothing to open (generated examples)
            return await both(fast, slow, calls)
        async with fast.router.lifespan_context(fast), slow.router.lifespan_context(slow):
            return await both(fast, slow, calls)

    return asyncio.run(go())


def counts(app: Any) -> FastPathCounts:
    return app.state.fast_path


# ----- hand-picked requests -------------------------------------------------------------------
VALID = [
    ("POST", "/v1/bandits/ads/decisions", {"json": {}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"user_id": "u1", "k": 2}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"eligible_arms": ["b", "c"]}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"user_id": "é" * 256, "k": 3,
                                                    "context": None}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": [1, 0.5]}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {}, "headers": {"Idempotency-Key": "k1"}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {}, "headers": {"Idempotency-Key": "k1"}}),
    ("GET", "/recommend/cust_1", {}),
    ("GET", "/recommend/cust_1", {"headers": {"Idempotency-Key": "r1"}}),
    ("GET", "/recommend/cust_1", {"headers": {"Idempotency-Key": "r1"}}),
    ("GET", "/recommend/" + "x" * 256, {}),
    # domain errors after validation: the engine's, answered by the app's error mapping
    ("POST", "/v1/bandits/nope/decisions", {"json": {}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"eligible_arms": ["zz"]}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": 4}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"context": [1.0]}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": [1.0]}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": 2},
                                           "headers": {"Idempotency-Key": "k1"}}),  # 409
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 2}}),  # 422 invalid_reward
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 1}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 0.0, "slot": None}}),  # duplicate
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 1, "slot": 2}}),  # 422 (not ranking)
    ("POST", _RW, {"json": {"decision_id": "ads~nope", "reward": 1}}),
    ("POST", "/v1/bandits/ctx/rewards", {"json": {"decision_id": K1, "reward": 1}}),  # 404
    ("POST", "/reward", {"json": {"customer_id": "cust_1", "arm": "zz", "reward": 1}}),  # 409
    ("POST", "/reward", {"json": {"customer_id": "nobody", "arm": "a", "reward": 1}}),
    ("POST", "/reward", {"json": {"customer_id": "cust_1", "arm": "a", "reward": 1,
                                  "decision_id": "offers~x"}}),
]
INVALID = [
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": 0}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": 1.0}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": True}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": None}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"k": 10_001}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"user_id": ""}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"user_id": "x" * 257}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"user_id": 5}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"eligible_arms": []}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"eligible_arms": ["a" * 129]}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"eligible_arms": "a"}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": []}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": [True, 1]}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": [10 ** 400, 1]}}),
    ("POST", "/v1/bandits/ctx/decisions", {"json": {"context": ["1", 1]}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {"extra": 1}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": []}),
    ("POST", "/v1/bandits/ads/decisions", {"json": "x"}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b""}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b"{", "headers": {
        "content-type": "application/json"}}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b'{"k": NaN}', "headers": {
        "content-type": "application/json"}}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b'{"user_id": "\\ud800"}', "headers": {
        "content-type": "application/json"}}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b"\xff", "headers": {
        "content-type": "application/json"}}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b"{}"}),  # no content type
    ("POST", "/v1/bandits/ads/decisions", {"content": b"{}", "headers": {
        "content-type": "text/plain"}}),
    ("POST", "/v1/bandits/ads/decisions", {"content": b"{}", "headers": {
        "content-type": "application/vnd.api+json"}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {}, "headers": {"Idempotency-Key": ""}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {}, "headers": {"Idempotency-Key": "a b"}}),
    ("POST", "/v1/bandits/ads/decisions", {"json": {}, "headers": {
        "Idempotency-Key": "x" * 256}}),
    ("GET", "/recommend/" + "x" * 257, {}),
    ("GET", "/recommend/c", {"headers": {"Idempotency-Key": "é".encode("latin-1")}}),
    ("POST", _RW, {"json": {"decision_id": K1}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": True}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": "1"}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 2 ** 60}}),
    ("POST", _RW, {"json": {"decision_id": "", "reward": 1}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 1, "slot": -1}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 1, "slot": True}}),
    ("POST", _RW, {"json": {"decision_id": K1, "reward": 1, "metrics": {"m": 1}}}),
    ("POST", _RW, {"json": {"decision_id": K1, "metrics": {"m": 1}}}),
    ("POST", _RW, {"json": {"decision_id": K1, "slot_rewards": [1]}}),
    ("POST", "/reward", {"json": {"customer_id": "c", "arm": "a"}}),
    ("POST", "/reward", {"json": {"customer_id": "", "arm": "a", "reward": 1}}),
    ("POST", "/reward", {"json": {"customer_id": "c", "arm": "a" * 129, "reward": 1}}),
    ("POST", "/reward", {"json": {"customer_id": "c", "arm": "a", "reward": 1,
                                  "decision_id": 5}}),
    # over the limits: the middleware's 413 and 414
    ("POST", "/v1/bandits/ads/decisions", {"content": b'{"user_id": "' + b"x" * (1 << 20)
                                           + b'"}', "headers": {
        "content-type": "application/json"}}),
    ("GET", "/recommend/" + "x" * 9000, {}),
    ("PUT", "/v1/bandits/ads/decisions", {"json": {}}),
    ("POST", "/v1/bandits/ads/decisions/", {"json": {}}),
]


def test_valid_requests_are_served_fast_and_answered_like_the_route():
    fast, slow, _ = twin_apps()
    pairs = run_both(fast, slow, VALID)
    for (method, path, kw), (a, b) in zip(VALID, pairs, strict=True):
        assert a == b, (method, path, kw)
    assert {a[0] for a, _ in pairs} == {200, 404, 409, 422}
    assert counts(fast) == FastPathCounts(served=len(VALID), fell_back=0)
    assert not hasattr(slow.state, "fast_path")


def test_invalid_requests_fall_back_and_get_the_routes_own_errors():
    fast, slow, _ = twin_apps()
    pairs = run_both(fast, slow, INVALID)
    for (method, path, kw), (a, b) in zip(INVALID, pairs, strict=True):
        assert a == b, (method, path, kw)
        assert a[0] in (307, 400, 404, 405, 413, 414, 422) or "+json" in str(kw), (a, kw)
    # every one the fast path matched went to the route (405 and the trailing slash: no match)
    assert counts(fast) == FastPathCounts(served=0, fell_back=len(INVALID) - 2)


def test_store_down_is_503_with_retry_after_on_both():
    fast, slow, stores = twin_apps()
    calls = [("POST", "/v1/bandits/ads/decisions", {"json": {}}), ("GET", "/recommend/c", {})]
    for s in stores:
        s.down = True
    pairs = run_both(fast, slow, calls)
    for a, b in pairs:
        assert a == b and a[0] == 503 and a[2]["retry-after"] == "1"
    assert a[1]["error"]["code"] == "store_unavailable"
    assert counts(fast).served == 2


def test_a_bug_is_the_same_500_on_both(caplog):
    fast, slow, _ = twin_apps()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    for app in (fast, slow):
        app.state.runtime.decisions.decide = broken
    calls = [("POST", "/v1/bandits/ads/decisions", {"json": {}}), ("GET", "/recommend/c", {})]
    with caplog.at_level(logging.ERROR, logger="tsbandit.service"):
        pairs = run_both(fast, slow, calls)
    for a, b in pairs:
        assert a == b and a[0] == 500 and a[1]["error"]["code"] == "internal_error"
    assert counts(fast).served == 2
    assert sum("unexpected error on" in r.getMessage() for r in caplog.records) == 4


def test_api_key_only_the_exact_bearer_is_served_fast():
    fast, slow, _ = twin_apps(api_key=KEY)
    path = "/v1/bandits/ads/decisions"
    calls = [("POST", path, {"json": {}, "headers": {"Authorization": f"Bearer {KEY}"}}),
             ("GET", "/recommend/c", {"headers": {"Authorization": f"Bearer {KEY}"}}),
             ("POST", path, {"json": {}}),
             ("POST", path, {"json": {}, "headers": {"Authorization": "Bearer wrong"}}),
             ("POST", path, {"json": {}, "headers": {"Authorization": f"bearer {KEY}"}}),
             ("GET", "/recommend/c", {})]
    pairs = run_both(fast, slow, calls)
    assert [a[0] for a, _ in pairs] == [200, 200, 401, 401, 200, 401]
    for a, b in pairs:
        assert a == b
    assert pairs[2][0][2]["www-authenticate"] == "Bearer"
    assert counts(fast) == FastPathCounts(served=2, fell_back=4)


def test_dependency_overrides_turn_the_fast_path_off():
    fast, _, _ = twin_apps()
    other = Engine(MemoryStore(), seed=0)
    other.create_bandit(BanditSpec(name="only_here", arms=ARMS))
    fast.dependency_overrides[get_engine] = lambda: other

    async def go() -> tuple[int, int]:
        async with fast.router.lifespan_context(fast), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=fast), base_url="http://t") as c:
            r1 = await c.post("/v1/bandits/only_here/decisions", json={})
            r2 = await c.post("/v1/bandits/ads/decisions", json={})
            return r1.status_code, r2.status_code

    assert asyncio.run(go()) == (200, 404)  # the override's engine answered
    assert counts(fast) == FastPathCounts()


def test_fast_requests_are_timed_logged_and_counted_under_their_route(capsys):
    store = MemoryStore()
    engine = Engine(store, seed=0)
    engine.create_bandit(BanditSpec(name="ads", arms=ARMS))
    app = create_app(Settings(store="memory://", sweep_interval=0, log_format="json"),
                     engine=engine)

    async def go() -> str:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            assert (await c.post("/v1/bandits/ads/decisions", json={})).status_code == 200
            assert (await c.get("/recommend/c9")).status_code == 200
            return (await c.get("/metrics")).text

    text = asyncio.run(go())
    assert counts(app).served == 2
    assert ('tsbandit_http_request_duration_seconds_count{method="POST",'
            'route="/v1/bandits/{name}/decisions",status="200"} 1.0') in text
    assert ('tsbandit_http_request_duration_seconds_count{method="GET",'
            'route="/recommend/{customer_id}",status="200"} 1.0') in text
    assert 'tsbandit_decisions_total{arm=' in text
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    access = [x for x in lines if x["logger"] == "tsbandit.access"]
    assert [(x["route"], x["status"]) for x in access][:2] == [
        ("/v1/bandits/{name}/decisions", 200), ("/recommend/{customer_id}", 200)]
    decided = [x for x in lines if x.get("event") == "decision"]
    assert len(decided) == 2 and all(x["decision_id"].count("~") == 1 for x in decided)


def test_the_fast_routes_are_the_routes_the_router_would_pick():
    fast, _, _ = twin_apps()
    for method, path in [("POST", "/v1/bandits/ads/decisions"), ("GET", "/recommend/x"),
                         ("POST", "/v1/bandits/a%2Fb/decisions"), ("POST", "/reward"),
                         ("POST", "/v1/bandits/ads/rewards")]:
        route = matches(fast, method, path)
        assert route is not None and route.path in (
            "/v1/bandits/{name}/decisions", "/recommend/{customer_id}", "/reward",
            "/v1/bandits/{name}/rewards")


def test_json_answer_is_jsonresponse_byte_for_byte():
    from fastapi.responses import JSONResponse

    content = {"a": "é\u2028", "b": [0.1, 1e-7, 1e16, 3], "c": None, "d": True}
    for headers in (None, {"Idempotent-Replayed": "true"}):
        status, body, raw = json_answer(content, headers)
        ref = JSONResponse(content, headers=headers)
        assert (status, body, raw) == (ref.status_code, ref.body, ref.raw_headers)


# ----- generated requests ---------------------------------------------------------------------
_text = st.text(max_size=6) | st.sampled_from(["", "a", "b", "x" * 129, "é", "\ud800"])
_number = (st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False, width=32)
           | st.booleans() | st.none() | st.just(2 ** 60) | _text)
_value = st.one_of(
    _number,
    st.lists(_number, max_size=3),
    st.lists(_text, max_size=3),
    st.integers(-1, 10_002),
)
_field = st.sampled_from(["context", "eligible_arms", "k", "user_id", "other"])
_body = st.dictionaries(_field, _value, max_size=3)
_key = st.none() | st.sampled_from(["k-1", "k-2", "", "a b", "x" * 255, "x" * 256])


def test_generated_bodies_get_the_same_answer_from_both_paths():
    fast, slow, _ = twin_apps()  # one pair for every example: their states stay in step

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(calls=st.lists(st.tuples(st.sampled_from(["ads", "ctx", "gone"]), _body, _key),
                          min_size=1, max_size=4))
    def check(calls: list[tuple[str, dict[str, Any], str | None]]) -> None:
        before = counts(fast).served + counts(fast).fell_back
        requests = []
        for name, body, key in calls:
            kw: dict[str, Any] = {"content": json.dumps(body).encode(),
                                  "headers": {"content-type": "application/json"}}
            if key is not None:
                kw["headers"]["Idempotency-Key"] = key
            requests.append(("POST", f"/v1/bandits/{name}/decisions", kw))
        pairs = run_both(fast, slow, requests, lifespan=False)
        for (_, path, kw), (a, b) in zip(requests, pairs, strict=True):
            assert a == b, (path, kw)
        assert counts(fast).served + counts(fast).fell_back == before + len(calls)

    check()
    # both kinds were generated: requests served fast, and requests handed to the route
    assert counts(fast).served > 20 and counts(fast).fell_back > 20, counts(fast)


def test_generated_customers_get_the_same_recommendation_from_both_paths():
    fast, slow, _ = twin_apps()

    @settings(max_examples=60, deadline=None)
    @given(customer=st.text(min_size=1, max_size=300), key=_key)
    def check(customer: str, key: str | None) -> None:
        kw: dict[str, Any] = {} if key is None else {"headers": {"Idempotency-Key": key}}
        # the customer id as a client sends it: percent-encoded ("/" too: %2F)
        path = "/recommend/" + urllib.parse.quote(customer, safe="")
        [(a, b)] = run_both(fast, slow, [("GET", path, kw)], lifespan=False)
        assert a == b

    check()
    assert counts(fast).served > 10 and counts(fast).fell_back > 5, counts(fast)


@settings(max_examples=80, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=5).filter(
    lambda k: k not in ("ts", "level", "logger", "msg")),
    st.none() | st.integers() | st.floats() | st.text() | st.lists(st.integers()),
    max_size=4),
    created=st.floats(0, 4e9))
def test_direct_log_lines_are_the_formatters_lines(fields, created):
    record = logging.LogRecord("tsbandit.events", logging.INFO, "tsbandit", 0, "decision", (),
                               None)
    record.created = created
    record.fields = fields
    assert _json_line("tsbandit.events", "decision", logging.INFO, fields, created) == (
        JsonFormatter().format(record) + "\n")


def test_direct_log_lines_go_where_the_handler_writes():
    from tsbandit.service.logs import emit, event_log, install_logging

    stream = io.StringIO()
    install_logging("json", "info", stream=stream)
    try:
        emit(event_log, "decision", {"arm": "a", "msg": "kept"}, created=1.5)  # reserved key
        emit(event_log, "decision", {"arm": "b"}, created=2.5)
    finally:
        install_logging("none")
    a, b = (json.loads(x) for x in stream.getvalue().splitlines())
    assert a["msg"] == "kept" and b == {"ts": "1970-01-01T00:00:02.500Z", "level": "info",
                                        "logger": "tsbandit.events", "msg": "decision",
                                        "arm": "b"}


# ----- over real HTTP ---------------------------------------------------------------------------
@pytest.mark.parametrize("store", ["redis"])  # the store of the benchmark (sqlite: the same)
def test_real_http_both_paths_answer_alike(serve, tmp_path, unique, store, request):
    servers = []
    for fast in ("true", "false"):
        url = (f"sqlite:///{tmp_path / f'{fast}.db'}" if store == "sqlite"
               else request.getfixturevalue("redis_url"))
        servers.append(serve({"TSBANDIT_STORE": url, "TSBANDIT_SEED": "3",
                              "TSBANDIT_FAST_PATH": fast,
                              "TSBANDIT_DEFAULT_BANDIT_NAME": f"offers_{fast}_{unique}"}))
    try:
        answers = []
        for server in servers:
            name = f"b_{unique}_{server.port}"
            with httpx.Client(base_url=server.url, timeout=10) as c:
                assert c.post("/v1/bandits", json={"name": name, "arms": ARMS}
                              ).status_code == 201
                got = []
                for method, path, kw in VALID[:3] + INVALID[:24]:
                    r = c.request(method, path.replace("/ads/", f"/{name}/"), **kw)
                    status, body, headers = comparable(r)
                    if isinstance(body, dict):  # names differ between the two servers
                        body = json.loads(json.dumps(body).replace(name, "B"))
                    got.append((status, {k: v for k, v in body.items()
                                         if k not in ("arm", "ranking", "propensity",
                                                      "position_propensities", "timestamp",
                                                      "deadline", "model_version")}
                                if status == 200 else body, headers.get("content-type")))
                rec = c.get("/recommend/cust_1")
                assert rec.status_code == 200 and rec.json()["customer_id"] == "cust_1"
                got.append(rec.status_code)
                answers.append(got)
        assert answers[0] == answers[1]
        assert [g[0] for g in answers[0][:3]] == [200, 200, 200]
    finally:
        if store == "redis":
            from tsbandit.service.runtime import open_store

            s = open_store(request.getfixturevalue("redis_url"))
            try:
                for name in s.list_bandits():
                    if unique in name:
                        s.delete_bandit(name)
            finally:
                s.close()


def test_held_lines_and_the_access_line_are_written_together_in_order():
    from tsbandit.service.logs import DeferredLines, access_log, event_log, install_logging

    stream = io.StringIO()
    writes = []
    write = stream.write
    stream.write = lambda text: writes.append(text) or write(text)  # type: ignore[method-assign]
    install_logging("json", "info", stream=stream)
    try:
        lines = DeferredLines(event_log)
        lines.begin()
        lines.line("decision", {"arm": "a"})
        lines.line("decision", {"arm": "b"})
        assert stream.getvalue() == ""
        lines.end((access_log, "request", {"status": 200}))
    finally:
        install_logging("none")
    got = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [(x["logger"], x["msg"], x.get("arm"), x.get("status")) for x in got] == [
        ("tsbandit.events", "decision", "a", None), ("tsbandit.events", "decision", "b", None),
        ("tsbandit.access", "request", None, 200)]
    assert len(writes) == 1  # one write for the three


def test_a_middleware_the_fast_path_does_not_know_turns_it_off(caplog):
    fast, _, _ = twin_apps()
    seen = []

    class Tag:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope.get("path"))
            await self.app(scope, receive, send)

    fast.add_middleware(Tag)
    with caplog.at_level(logging.WARNING, logger="tsbandit.service"):
        pairs = run_both(fast, fast, [("POST", "/v1/bandits/ads/decisions", {"json": {}})])
    assert pairs[0][0][0] == 200 and seen.count("/v1/bandits/ads/decisions") == 2
    assert counts(fast) == FastPathCounts()  # every request went through the stack
    assert any("fast path off" in r.getMessage() for r in caplog.records)
