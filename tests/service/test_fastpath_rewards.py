"""The reward routes on the fast path (service/fastpath.py): ``POST /v1/bandits/{name}/rewards``
and the tutorial's ``POST /reward`` answer exactly as their declared FastAPI routes do, for
generated bodies -- rewards of real decisions, duplicates, unknown ids, ids of another bandit,
expired decisions, rewards outside the model's domain, the wrong field for the bandit, and the
shapes the fast path leaves to the route (``metrics``, ``slot_rewards``, odd types) -- and
concurrent duplicate rewards through the fast path are each applied exactly once.

The twin apps of tests/service/test_fastpath.py (same engine state, seed and fake clock, one with
the fast path and one without) get the same requests; decisions are made with an
``Idempotency-Key`` so their ids (derived from the key) are the same in both.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsbandit.engine.keys import keyed_tokens

from .test_fastpath import ARMS, counts, run_both, twin_apps

#: bandits made for these tests (both apps): a short reward window, several metrics, a ranking
BANDITS = [
    {"name": "short", "arms": ARMS, "reward_window": 1.0},
    {"name": "gauss", "arms": ARMS, "model": "gaussian"},
    {"name": "multi", "arms": ARMS, "metrics": {"apply": "beta",
                                                "revenue": {"model": "gaussian"}},
     "objective": {"revenue": 1.0}},
    {"name": "rank", "arms": ARMS, "model": {"kind": "position_based", "n_positions": 2,
                                             "examination": [1, 0.5]}},
]
NAMES = ["ads", "short", "gauss", "multi", "rank"]


def prepared() -> tuple[Any, Any]:
    fast, slow, _ = twin_apps()
    made = run_both(fast, slow, [("POST", "/v1/bandits", {"json": b}) for b in BANDITS])
    assert [a[0] for a, _ in made] == [201] * len(BANDITS)
    return fast, slow


def derived_id(name: str, key: str) -> str:
    return f"{name}~{keyed_tokens(key, 1)[0]}"


# ----- generated sessions -----------------------------------------------------------------------
_reward = (st.sampled_from([0, 1, 0.0, 1.0, 2, -1, 0.5, 182.5, 1e308, 2 ** 60, True, None, "1"])
           | st.floats(allow_nan=False, allow_infinity=False, width=32))
_slot = st.sampled_from([None, 0, 1, 2, -1, 10_001, True, 1.0])
_extra = st.sampled_from([{}, {}, {}, {"metrics": {"apply": 1}}, {"metrics": {"revenue": 3.5}},
                          {"slot_rewards": [1, None]}, {"other": 1}, {"metrics": {}}])
#: which decision a reward names: one made in this session (index), or an id made up here
_which = st.integers(0, 7) | st.sampled_from(["ads~nope", "ctx~" + "0" * 32, "no-separator",
                                               "", "x" * 301, 5, None])
_decide = st.tuples(st.just("decide"), st.sampled_from(NAMES), st.integers(1, 2))
_rew = st.tuples(st.just("reward"), _which, _reward, _slot, _extra,
                 st.sampled_from(["decision_id", "reward", "slot", None]))  # field left out
_tick = st.tuples(st.just("tick"), st.floats(0.5, 3))
_tut = st.tuples(st.just("tutorial"), st.integers(0, 2), st.sampled_from([*ARMS, "zz", ""]),
                 _reward, st.booleans())
_op = st.one_of(_decide, _rew, _rew, _tick, _tut)
_keys = itertools.count()


def _reward_request(op: tuple[Any, ...], made: list[str]) -> tuple[str, str, dict[str, Any]]:
    _, which, value, slot, extra, drop = op
    did = made[which % len(made)] if isinstance(which, int) and made else which
    if isinstance(which, int) and not made:
        did = "ads~nothing-yet"
    name = did.rpartition("~")[0] if isinstance(did, str) and "~" in did else "ads"
    body = {"decision_id": did, "reward": value, **extra}
    if slot is not None:
        body["slot"] = slot
    body.pop(drop, None)
    return "POST", f"/v1/bandits/{name or 'ads'}/rewards", {
        "content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


def test_generated_rewards_get_the_same_answer_from_both_paths():
    fast, slow = prepared()
    clocks = [a.state.runtime.engine.clock for a in (fast, slow)]

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops=st.lists(_op, min_size=1, max_size=8))
    def check(ops: list[tuple[Any, ...]]) -> None:
        made: list[str] = []
        for op in ops:
            if op[0] == "tick":  # time passes alike for both (decisions expire alike)
                for c in clocks:
                    c.now += op[1]
                continue
            if op[0] == "decide":
                key = f"h{next(_keys)}"
                body = {"k": op[2]} if op[1] == "rank" else {}
                calls = [("POST", f"/v1/bandits/{op[1]}/decisions",
                          {"json": body, "headers": {"Idempotency-Key": key}})]
            elif op[0] == "tutorial":
                customer, arm, value, with_id = op[1:]
                key = f"t{next(_keys)}"
                recs = run_both(fast, slow, [("GET", f"/recommend/c{customer}", {
                    "headers": {"Idempotency-Key": key}})], lifespan=False)
                assert recs[0][0] == recs[0][1]
                body = {"customer_id": f"c{customer}", "arm": arm, "reward": value}
                if with_id:
                    body["decision_id"] = derived_id("offers", key)
                calls = [("POST", "/reward", {"content": json.dumps(body).encode(),
                                              "headers": {"content-type": "application/json"}})]
            else:
                calls = [_reward_request(op, made)]
            [(a, b)] = run_both(fast, slow, calls, lifespan=False)
            assert a == b, calls
            if op[0] == "decide" and a[0] == 200:
                made.append(derived_id(op[1], key))

    check()
    # both kinds were generated: requests served fast, and requests handed to the route
    assert counts(fast).served > 100 and counts(fast).fell_back > 50, counts(fast)


def test_the_shapes_each_answer_gets_from_both_paths():
    """Hand-picked: every kind of answer the fast path serves is the route's, byte for byte
    (through the twin apps), and the fallbacks are the route's own."""
    fast, slow = prepared()
    clocks = [a.state.runtime.engine.clock for a in (fast, slow)]

    def decide(name: str, key: str, k: int = 1) -> tuple[str, str, dict[str, Any]]:
        return ("POST", f"/v1/bandits/{name}/decisions",
                {"json": {"k": k} if k > 1 else {}, "headers": {"Idempotency-Key": key}})

    def rew(name: str, key: str, **body: Any) -> tuple[str, str, dict[str, Any]]:
        return ("POST", f"/v1/bandits/{name}/rewards",
                {"json": {"decision_id": derived_id(name, key), **body}})

    served = [decide("ads", "d1"), decide("gauss", "g1"), decide("multi", "m1"),
              decide("rank", "r1", 2), decide("short", "s1"),
              rew("ads", "d1", reward=2), rew("ads", "d1", reward=1), rew("ads", "d1", reward=0),
              rew("ads", "d1", reward=1, slot=1), rew("gauss", "g1", reward=182.5),
              rew("multi", "m1", reward=1), rew("rank", "r1", reward=1, slot=1),
              rew("rank", "r1", reward=1, slot=1), rew("rank", "r1", reward=0, slot=5),
              rew("ads", "nope", reward=1), rew("gauss", "d1", reward=1)]
    fell_back = [rew("multi", "m1", metrics={"apply": 1}), rew("ads", "d1", metrics={"a": 1}),
                 rew("rank", "r1", slot_rewards=[1, 0]), rew("ads", "d1"),
                 rew("ads", "d1", reward=True), rew("ads", "d1", reward=None, slot=0)]
    pairs = run_both(fast, slow, served + fell_back)
    for call, (a, b) in zip(served + fell_back, pairs, strict=True):
        assert a == b, call
    got = [(a[0], a[1].get("status") or a[1]["error"]["code"]) for a, _ in pairs[5:]]
    assert got == [(422, "invalid_reward"), (200, "applied"), (200, "duplicate"),
                   (422, "invalid_reward"), (200, "applied"),
                   (422, "invalid_reward"),  # "reward" to a bandit with several metrics
                   (200, "applied"), (200, "duplicate"), (422, "invalid_reward"),
                   (404, "decision_not_found"), (404, "decision_not_found"),
                   (200, "applied"), (422, "invalid_reward"), (200, "applied"),
                   (422, "invalid_request"), (422, "invalid_request"),
                   (422, "invalid_request")]
    assert "send \\\"metrics\\\"" in json.dumps(pairs[10][0][1])
    assert counts(fast).served == len(served) and counts(fast).fell_back == len(fell_back)
    for c in clocks:  # past the short bandit's window: 410 on both
        c.now += 5
    [(a, b)] = run_both(fast, slow, [rew("short", "s1", reward=1)])
    assert a == b and a[0] == 410 and a[1]["error"]["code"] == "decision_expired"
    # the tutorial's reward: joined, duplicate, wrong arm, unknown customer, given id
    rec = run_both(fast, slow, [("GET", "/recommend/cu", {"headers": {"Idempotency-Key": "t"}})])
    arm, did = rec[0][0][1]["offer"], derived_id("offers", "t")
    calls = [("POST", "/reward", {"json": {"customer_id": "cu", "arm": "zz", "reward": 1}}),
             ("POST", "/reward", {"json": {"customer_id": "cu", "arm": arm, "reward": 1}}),
             ("POST", "/reward", {"json": {"customer_id": "cu", "arm": arm, "reward": 1,
                                           "decision_id": did}}),
             ("POST", "/reward", {"json": {"customer_id": "nobody", "arm": arm, "reward": 1}}),
             ("POST", "/reward", {"json": {"customer_id": "other", "arm": arm, "reward": 0,
                                           "decision_id": did}}),
             ("POST", "/reward", {"json": {"customer_id": "cu", "arm": arm, "reward": 2}}),
             ("POST", "/reward", {"json": {"customer_id": "cu", "arm": arm}}),
             ("POST", "/reward", {"json": {"customer_id": "cu", "arm": arm, "reward": "1"}})]
    before = counts(fast).served
    pairs = run_both(fast, slow, calls)
    for call, (a, b) in zip(calls, pairs, strict=True):
        assert a == b, call
    assert [(a[0], a[1].get("status") or a[1]["error"]["code"]) for a, _ in pairs] == [
        (409, "arm_mismatch"), (200, "updated"), (200, "duplicate"), (404, "decision_not_found"),
        (404, "decision_not_found"), (422, "invalid_reward"), (422, "invalid_request"),
        (422, "invalid_request")]
    assert counts(fast).served == before + 6


def test_concurrent_duplicates_through_the_fast_path_each_once():
    """In process: 60 decisions each rewarded three times at once, all on the fast path."""
    fast, _ = prepared()
    n = 60

    async def go() -> tuple[list[httpx.Response], dict[str, Any]]:
        async with fast.router.lifespan_context(fast), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=fast), base_url="http://t") as c:
            ds = (await c.post("/v1/bandits/ads/decisions/batch", json={"n": n})).json()
            ids = [d["decision_id"] for d in ds["decisions"]]
            rs = await asyncio.gather(*(
                c.post("/v1/bandits/ads/rewards", json={"decision_id": i, "reward": r})
                for r in (1, 0, 1) for i in ids))
            return list(rs), {d["decision_id"]: d["arm"] for d in ds["decisions"]}

    before = counts(fast).served
    rs, arm_of = asyncio.run(go())
    assert counts(fast).served == before + 3 * n
    per = Counter((r.json()["decision_id"], r.json()["status"]) for r in rs)
    assert per == Counter({(i, s): k for i in arm_of for s, k in (("applied", 1),
                                                                  ("duplicate", 2))})
    stats = fast.state.runtime.engine.stats("ads")
    assert sum(a["alpha"] + a["beta"] - 2 for a in stats["arms"]) == n
    assert fast.state.runtime.rewards.batches > 0  # they were coalesced, too


# ----- real HTTP --------------------------------------------------------------------------------
def test_real_http_tutorial_rewards_concurrent_duplicates_once_on_redis(serve, redis_url, unique):
    """The tutorial's /reward through the fast path on Redis: every customer's reward sent by
    two threads at once (with different values) is applied once (``updated`` to one,
    ``duplicate`` to the other) and the posterior counts exactly the applied ones."""
    name = f"tut_{unique}"
    server = serve({"TSBANDIT_STORE": redis_url, "TSBANDIT_FAST_PATH": "true",
                    "TSBANDIT_DEFAULT_BANDIT_NAME": name})
    n_threads, per_thread = 16, 6
    half = n_threads // 2
    with httpx.Client(base_url=server.url, timeout=10) as c:
        recs = [c.get(f"/recommend/cu{i}").json() for i in range(half * per_thread)]
    start = Barrier(n_threads)

    def reward(t: int) -> list[tuple[str, int, int, str]]:
        mine = recs[(t % half) * per_thread:(t % half + 1) * per_thread]
        r = int(t < half)
        out = []
        with httpx.Client(base_url=server.url, timeout=10) as c:
            start.wait()
            for rec in mine:
                got = c.post("/reward", json={"customer_id": rec["customer_id"],
                                              "arm": rec["offer"], "reward": r})
                out.append((rec["customer_id"], r, got.status_code, got.json().get("status")))
        return out

    try:
        with ThreadPoolExecutor(n_threads) as pool:
            answers = [a for chunk in pool.map(reward, range(n_threads)) for a in chunk]
        with httpx.Client(base_url=server.url, timeout=10) as c:
            stats = c.get("/stats").json()
    finally:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            c.delete(f"/v1/bandits/{name}")
    assert {a[2] for a in answers} == {200}
    per: dict[str, list[str]] = {}
    applied: dict[str, int] = {}
    for customer, r, _, status in answers:
        per.setdefault(customer, []).append(status)
        if status == "updated":
            applied[customer] = r
    assert len(per) == half * per_thread
    assert all(sorted(s) == ["duplicate", "updated"] for s in per.values())
    offer = {rec["customer_id"]: rec["offer"] for rec in recs}
    for arm, row in stats.items():
        wins = sum(r for cu, r in applied.items() if offer[cu] == arm)
        losses = sum(1 - r for cu, r in applied.items() if offer[cu] == arm)
        assert (row["alpha"], row["beta"]) == (1 + wins, 1 + losses), arm
