"""The client without a server (httpx.MockTransport): retries, backoff, error mapping, buffers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

import tsbandit.errors as errors_module
from tsbandit.client import (
    AsyncClient,
    Client,
    InvalidRequestError,
    Retry,
    RewardFlushError,
    ServiceConnectionError,
    ServiceError,
    error_class,
)
from tsbandit.client import _async as async_module
from tsbandit.client import _sync as sync_module
from tsbandit.errors import (
    BanditNotFoundError,
    DecisionExpiredError,
    StoreUnavailableError,
    TsbanditError,
)

DID = "offers~" + "a" * 32


def decision_json(did: str = DID) -> dict:
    return {"decision_id": did, "bandit": "offers", "arm": "b", "ranking": ["b"],
            "propensity": 0.5, "position_propensities": [0.5], "model_version": 1,
            "timestamp": 0.0, "deadline": 86400.0}


def reward_json(did: str = DID, status: str = "applied") -> dict:
    return {"decision_id": did, "bandit": "offers", "arm": "b", "status": status,
            "duplicate": status == "duplicate", "model_version": 2}


def error(status: int, code: str, detail: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "detail": detail}})


class Script:
    """A MockTransport handler answering from a list of responses/exceptions, recording the
    requests it saw."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The waits between attempts, recorded instead of slept (sync and async clients)."""
    waited: list[float] = []
    monkeypatch.setattr(sync_module, "_sleep", waited.append)

    async def asleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(async_module, "_sleep", asleep)
    return waited


def client_for(script: Callable[[httpx.Request], httpx.Response], **kwargs) -> Client:
    kwargs.setdefault("retry", Retry(attempts=3, backoff=0.1, jitter=False))
    return Client("http://svc", transport=httpx.MockTransport(script), **kwargs)


def conn_error() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


def test_the_client_imports_neither_fastapi_nor_pydantic():
    code = ("import sys, tsbandit.client; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'fastapi', 'pydantic', 'starlette', 'uvicorn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# ----- decisions: retried under one Idempotency-Key -------------------------------------------
def test_decision_retried_after_503_with_the_same_idempotency_key(sleeps):
    script = Script(error(503, "store_unavailable"), httpx.Response(200, json=decision_json()))
    d = client_for(script).decide("offers", user_id="u1")
    assert d.decision_id == DID and d.arm == "b" and d.ranking == ("b",)
    keys = [r.headers["Idempotency-Key"] for r in script.requests]
    assert len(keys) == 2 and keys[0] == keys[1] == d.idempotency_key
    assert len(keys[0]) == 32
    assert [json.loads(r.content) for r in script.requests] == [{"user_id": "u1"}] * 2
    assert sleeps == [0.1]


def test_decision_retried_after_a_connection_error_and_a_given_key_is_used(sleeps):
    script = Script(conn_error(), httpx.Response(
        200, json=decision_json(), headers={"Idempotent-Replayed": "true"}))
    d = client_for(script).decide("offers", idempotency_key="my-key")
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["my-key", "my-key"]
    assert d.replayed and d.idempotency_key == "my-key"


def test_every_decide_call_gets_a_fresh_key(sleeps):
    script = Script(*(httpx.Response(200, json=decision_json()) for _ in range(2)))
    client = client_for(script)
    client.decide("offers")
    client.decide("offers")
    a, b = (r.headers["Idempotency-Key"] for r in script.requests)
    assert a != b


def test_batch_retried_with_one_key(sleeps):
    body = {"decisions": [decision_json("offers~" + c * 32) for c in "ab"]}
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(200, json=body))
    out = client_for(script).decide_batch("offers", 2, user_ids=["x", "y"])
    assert [d.decision_id for d in out] == ["offers~" + "a" * 32, "offers~" + "b" * 32]
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 2 and len(keys) == 1
    assert json.loads(script.requests[0].content) == {"n": 2, "user_ids": ["x", "y"]}


# ----- rewards: retried, the duplicate reported honestly ---------------------------------------
def test_reward_retried_after_a_lost_answer_reports_a_retried_duplicate(sleeps):
    script = Script(httpx.ReadTimeout("answer lost"),
                    httpx.Response(200, json=reward_json(status="duplicate")))
    out = client_for(script).reward(DID, 1)
    assert out.status == "duplicate" and out.duplicate and out.retried and out.attempts == 2
    assert script.requests[0].url.path == "/v1/bandits/offers/rewards"
    assert json.loads(script.requests[1].content) == {"decision_id": DID, "reward": 1}


def test_reward_first_time_is_applied_once():
    out = client_for(Script(httpx.Response(200, json=reward_json()))).reward(DID, 0.0)
    assert out.status == "applied" and not out.duplicate and not out.retried


def test_malformed_decision_id_is_refused_before_sending():
    script = Script()
    with pytest.raises(errors_module.DecisionNotFoundError):
        client_for(script).reward("no-bandit-in-this-id", 1)
    assert script.requests == []


# ----- what is not retried; attempts and backoff -----------------------------------------------
def test_unsafe_write_is_not_retried_after_503_or_a_read_error(sleeps):
    script = Script(error(503, "store_unavailable"))
    with pytest.raises(StoreUnavailableError):
        client_for(script).create("offers", ["a", "b"])
    assert len(script.requests) == 1
    script = Script(httpx.ReadError("reset"))
    with pytest.raises(ServiceConnectionError):
        client_for(script).add_arm("offers", "c")
    assert len(script.requests) == 1
    assert sleeps == []


def test_unsafe_write_is_retried_when_it_was_never_sent(sleeps):
    info = {"name": "offers", "arms": ["a", "b"], "model": {"kind": "beta"},
            "rule": {"kind": "thompson"}, "reward_window": 60.0, "default_reward": None,
            "half_life": None, "propensity_draws": 1000}
    script = Script(conn_error(), httpx.Response(201, json=info))
    out = client_for(script).create("offers", ["a", "b"], reward_window=60)
    assert out.arms == ("a", "b") and out.reward_window == 60.0
    assert len(script.requests) == 2


def test_attempts_are_bounded_and_backoff_doubles(sleeps):
    script = Script(*(error(503, "store_unavailable") for _ in range(4)))
    with pytest.raises(StoreUnavailableError):
        client_for(script, retry=Retry(attempts=4, backoff=0.1, max_backoff=0.3,
                                       jitter=False)).stats("offers")
    assert len(script.requests) == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.3])  # doubled, capped at max_backoff


def test_connection_errors_exhausted_raise_the_library_error(sleeps):
    script = Script(*(conn_error() for _ in range(3)))
    with pytest.raises(ServiceConnectionError, match="after 3 attempts") as info:
        client_for(script).get("offers")
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, TsbanditError)
    assert len(script.requests) == 3


def test_jitter_draws_within_the_cap():
    retry = Retry(attempts=5, backoff=0.2, max_backoff=1.0)
    import random

    rng = random.Random(0)
    for attempt, cap in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        waits = [retry.delay(attempt, rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= cap
        assert max(waits) > 0.8 * cap  # spread over the whole range, not a constant


def test_retry_after_is_honoured_and_capped(sleeps):
    slow = httpx.Response(503, json={"error": {"code": "store_unavailable", "detail": "x"}},
                          headers={"Retry-After": "1"})
    slower = httpx.Response(503, json={"error": {"code": "store_unavailable", "detail": "x"}},
                            headers={"Retry-After": "60"})
    script = Script(slow, slower, httpx.Response(200, json={"bandits": []}))
    assert client_for(script, retry=Retry(attempts=3, max_backoff=5.0)).list_bandits() == []
    assert sleeps == [1.0, 5.0]


def test_retry_validates_its_parameters():
    with pytest.raises(errors_module.ConfigurationError, match="attempts"):
        Retry(attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        Retry(backoff=-1)


# ----- errors: the service's codes back to the library's classes -------------------------------
LIBRARY_CODES = sorted(
    (cls.code, cls) for cls in vars(errors_module).values()
    if isinstance(cls, type) and issubclass(cls, TsbanditError) and "code" in vars(cls)
    and cls is not TsbanditError and not issubclass(cls, errors_module.ClientError))


@pytest.mark.parametrize(("code", "cls"), LIBRARY_CODES, ids=[c for c, _ in LIBRARY_CODES])
def test_every_library_code_maps_back_to_its_class(code, cls, sleeps):
    assert error_class(code) is cls
    script = Script(*(error(cls.http_status, code, f"a {code}") for _ in range(3)))
    with pytest.raises(cls, match=f"a {code}") as info:
        client_for(script).get("offers")
    assert type(info.value) is cls


def test_codes_of_the_service_itself():
    with pytest.raises(InvalidRequestError) as info:
        client_for(Script(error(422, "invalid_request", "k: too small"))).decide("o", k=0)
    assert isinstance(info.value, ValueError)
    assert info.value.code == "invalid_request" and info.value.http_status == 422
    with pytest.raises(ServiceError) as info:
        client_for(Script(error(500, "internal_error", "bug"))).get("offers")
    assert info.value.code == "internal_error" and info.value.http_status == 500


def test_a_non_json_error_is_a_service_error(sleeps):
    bad = [httpx.Response(502, text="<html>bad gateway</html>") for _ in range(3)]
    with pytest.raises(ServiceError, match="HTTP 502") as info:
        client_for(Script(*bad)).get("offers")
    assert info.value.code == "http_error"


# ----- the async client: the same calls ------------------------------------------------------
def test_async_client_retries_the_same_way(sleeps):
    script = Script(error(503, "store_unavailable"), conn_error(),
                    httpx.Response(200, json=decision_json()))

    async def main():
        async with AsyncClient("http://svc", transport=httpx.MockTransport(script),
                               retry=Retry(attempts=3, backoff=0.1, jitter=False)) as client:
            d = await client.decide("offers")
            with pytest.raises(BanditNotFoundError):
                script.answers.append(error(404, "bandit_not_found"))
                await client.stats("nope")
            return d

    d = asyncio.run(main())
    keys = {r.headers["Idempotency-Key"] for r in script.requests[:3]}
    assert keys == {d.idempotency_key} and sleeps == [0.1, 0.2]


# ----- reward buffers ----------------------------------------------------------------------------
class RewardServer:
    """A MockTransport handler that answers rewards (410 for ids listed in ``expired``)."""

    def __init__(self, expired: tuple[str, ...] = ()) -> None:
        self.expired = expired
        self.received: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        did = json.loads(request.content)["decision_id"]
        self.received.append(did)
        if did in self.expired:
            return error(410, "decision_expired", f"{did} expired")
        return httpx.Response(200, json=reward_json(did))


def ids(n: int) -> list[str]:
    return [f"offers~{i:032x}" for i in range(n)]


def test_buffer_flushes_on_size_and_on_close():
    server = RewardServer()
    client = client_for(server)
    with client.reward_buffer(max_size=2, max_wait=None) as buffer:
        for did in ids(5):
            buffer.add(did, 1)
        assert sorted(server.received) == ids(4) and buffer.pending == 1
    assert sorted(server.received) == ids(5) and buffer.pending == 0


def test_buffer_flushes_on_time():
    server = RewardServer()
    buffer = client_for(server).reward_buffer(max_size=100, max_wait=0.05)
    buffer.add(ids(1)[0], 0)
    deadline = time.monotonic() + 5
    while not server.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.received == ids(1)
    assert buffer.close() == []


def test_buffer_reports_failed_rewards():
    server = RewardServer(expired=(ids(3)[1],))
    buffer = client_for(server).reward_buffer(max_size=10, max_wait=None)
    for did in ids(3):
        buffer.add(did, 1)
    with pytest.raises(RewardFlushError, match="1 buffered reward") as info:
        buffer.close()
    (failed,) = info.value.failures
    assert failed.decision_id == ids(3)[1] and isinstance(failed.error, DecisionExpiredError)
    assert buffer.failures == [failed]


def test_buffer_with_on_error_does_not_raise():
    seen = []
    buffer = client_for(RewardServer(expired=tuple(ids(2)))).reward_buffer(
        max_size=10, max_wait=None, on_error=seen.append)
    buffer.add(ids(2)[0], 1)
    buffer.add(ids(2)[1], 1)
    outcomes = buffer.close()
    assert [o.ok for o in outcomes] == [False, False] and len(seen) == 2
    with pytest.raises(ValueError, match="closed"):
        buffer.add(ids(1)[0], 1)


def test_reward_many_keeps_each_outcome():
    client = client_for(RewardServer(expired=(ids(3)[2],)))
    out = client.reward_many([(did, 1) for did in ids(3)] + [("bad id", 1)])
    assert [o.ok for o in out] == [True, True, False, False]
    assert out[0].result is not None and out[0].result.status == "applied"
    assert isinstance(out[2].error, DecisionExpiredError)
    assert isinstance(out[3].error, errors_module.DecisionNotFoundError)


def test_an_answer_that_is_not_the_services_json_is_a_service_error():
    with pytest.raises(ServiceError, match="unexpected answer") as info:
        client_for(Script(httpx.Response(200, text="<html>portal</html>"))).reward(DID, 1)
    assert info.value.code == "invalid_response"

    def handler(request: httpx.Request) -> httpx.Response:
        did = json.loads(request.content)["decision_id"]
        return (httpx.Response(200, json={"unexpected": True}) if did == ids(2)[1]
                else httpx.Response(200, json=reward_json(did)))

    out = client_for(handler).reward_many([(did, 1) for did in ids(2)])
    assert out[0].ok and isinstance(out[1].error, ServiceError)


def test_buffer_validates_its_parameters():
    client = client_for(RewardServer())
    with pytest.raises(ValueError, match="max_size"):
        client.reward_buffer(max_size=0)
    with pytest.raises(ValueError, match="max_wait"):
        client.reward_buffer(max_wait=0)


def test_async_buffer_flushes_on_size_time_and_close():
    server = RewardServer(expired=(ids(6)[5],))

    async def main():
        async with AsyncClient("http://svc", transport=httpx.MockTransport(server)) as client:
            buffer = client.reward_buffer(max_size=2, max_wait=0.05)
            for did in ids(3):
                await buffer.add(did, 1)
            assert len(server.received) == 2  # on size
            for _ in range(500):
                if len(server.received) == 3:
                    break
                await asyncio.sleep(0.01)
            assert len(server.received) == 3  # on time
            await buffer.add(ids(6)[5], 1)
            with pytest.raises(RewardFlushError):
                await buffer.close()
            return buffer

    buffer = asyncio.run(main())
    assert sorted(server.received) == sorted([*ids(3), ids(6)[5]])
    assert [f.decision_id for f in buffer.failures] == [ids(6)[5]]
