"""The client against a live ``tsbandit serve`` (one server with an API key for the module)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.conftest import Server
from tsbandit.client import (
    AsyncClient,
    Client,
    InvalidRequestError,
    Retry,
    ServiceConnectionError,
    ServiceTimeoutError,
)
from tsbandit.client import _sync as sync_module
from tsbandit.errors import (
    AuthenticationError,
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionNotFoundError,
    DuplicateArmError,
    GivenNotMetError,
    GivenNotObservedError,
    IdempotencyConflictError,
    InvalidContextError,
    InvalidRewardError,
    UnknownArmError,
    UnknownMetricError,
)

KEY = "client-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    srv = Server({"TSBANDIT_STORE": "memory://", "TSBANDIT_API_KEY": KEY,
                  "TSBANDIT_SEED": "5", "TSBANDIT_LOG_REQUESTS": "false"},
                 log=log, via_serve=True)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, api_key=KEY, timeout=10.0) as c:
        yield c


@pytest.fixture
def name(client: Client) -> Iterator[str]:
    bandit = f"offers_{uuid.uuid4().hex[:8]}"
    client.create(bandit, ["a", "b", "c"])
    yield bandit
    client.delete(bandit)


def test_create_decide_reward_stats(client: Client):
    bandit = f"b_{uuid.uuid4().hex[:8]}"
    info = client.create(bandit, ["a", "b"], model={"kind": "beta", "alpha0": 2, "beta0": 3},
                         reward_window=600)
    assert info.name == bandit and info.arms == ("a", "b") and info.reward_window == 600.0
    assert info.model["alpha0"] == 2 and info.rule["kind"] == "thompson"
    assert bandit in client.list_bandits() and client.get(bandit) == info

    d = client.decide(bandit, user_id="u1")
    assert d.bandit == bandit and d.arm in ("a", "b") and d.ranking == (d.arm,)
    assert 0 < d.propensity <= 1 and d.deadline == pytest.approx(d.timestamp + 600)
    assert d.idempotency_key is not None and not d.replayed
    assert client.decision(d.decision_id).status == "pending"

    first = client.reward(d, 1)
    assert (first.status, first.arm, first.attempts) == ("applied", d.arm, 1)
    again = client.reward(d.decision_id, 1)  # by id: the id names the bandit
    assert again.status == "duplicate" and not again.retried
    assert client.decision(d.decision_id).status == "rewarded"

    stats = client.stats(bandit)
    row = stats[d.arm]
    assert stats.bandit == bandit and stats.level == 0.95
    assert (row.pulls, row.rewards, row.alpha, row.beta) == (1.0, 1.0, 3.0, 3.0)
    assert row.lower < row.mean < row.upper
    assert sum(r.prob_best for r in stats.arms) == pytest.approx(1.0, abs=1e-9)
    client.delete(bandit)
    with pytest.raises(BanditNotFoundError):
        client.get(bandit)


def test_rankings_batches_and_arms(client: Client, name: str):
    ranked = client.decide(name, k=3, eligible_arms=["a", "b", "c"])
    assert sorted(ranked.ranking) == ["a", "b", "c"] and len(ranked.position_propensities) == 3
    batch = client.decide_batch(name, 4, user_ids=["u1", "u2", "u3", "u4"])
    assert len(batch) == 4 and len({d.decision_id for d in batch}) == 4
    assert {d.idempotency_key for d in batch} == {batch[0].idempotency_key}
    assert client.add_arm(name, "d").arms == ("a", "b", "c", "d")
    assert client.retire_arm(name, "a").arms == ("b", "c", "d")
    with pytest.raises(DuplicateArmError):
        client.add_arm(name, "b")
    with pytest.raises(UnknownArmError):
        client.retire_arm(name, "zzz")


def test_arm_names_are_one_path_segment_and_retired_arms_answer_so(client: Client, name: str):
    odd = ("a/b", "50% off", "x?y#z", "%41")
    for arm in odd:
        assert client.add_arm(name, arm).arms[-1] == arm
    d = client.decide(name, eligible_arms=["50% off"])
    assert d.arm == "50% off"
    for i, arm in enumerate(odd):
        assert client.retire_arm(name, arm).arms == ("a", "b", "c", *odd[i + 1:])
    out = client.reward(d, 1)  # its arm is gone: consumed, learned by no arm
    assert out.status == "arm_retired" and not out.duplicate


def test_contextual_bandit(client: Client):
    bandit = f"lin_{uuid.uuid4().hex[:8]}"
    client.create(bandit, ["x", "y"], model="linear", n_features=2)
    d = client.decide(bandit, [0.5, -1.0])
    batch = client.decide_batch(bandit, contexts=[[1.0, 0.0], [0.0, 1.0]])
    assert len(batch) == 2
    assert client.reward(d, 2.5).status == "applied"
    assert client.stats(bandit, [0.5, -1.0]).arms[0].arm == "x"
    with pytest.raises(InvalidContextError):
        client.decide(bandit, [1.0, 2.0, 3.0])
    client.delete(bandit)


def test_report_and_events(client: Client, name: str):
    decisions = client.decide_batch(name, 30)
    for d in decisions[:10]:
        client.reward(d, 1 if d.arm == "a" else 0)
    report = client.report(name, min_samples=1, seed=1, draws=2000)
    assert report.bandit == name and report.metric == "binary"
    assert [a.name for a in report.arms] == ["a", "b", "c"]
    assert sum(a.prob_best for a in report.arms) == pytest.approx(1.0, abs=1e-6)
    assert report.srm.status in ("ok", "mismatch", "not_checked")
    assert report.raw["format"] == 1 and report.decision.stop in (True, False)
    assert client.report(name, srm=False).srm.status == "not_checked"

    events = list(client.events(name))
    kinds = [e["type"] for e in events]
    assert kinds.count("decision") == 30 and kinds.count("reward") == 10
    assert [e["decision_id"] for e in events if e["type"] == "decision"] == [
        d.decision_id for d in decisions]
    stream = client.events(name)
    assert next(stream)["type"] == "decision"
    stream.close()  # stops early, the connection goes back to the pool
    with pytest.raises(BanditNotFoundError):
        list(client.events("no_such_bandit"))


def test_errors_are_the_library_exceptions(client: Client, server: Server, name: str):
    with pytest.raises(BanditNotFoundError) as info:
        client.decide("no_such_bandit")
    assert isinstance(info.value, KeyError) and "no_such_bandit" in str(info.value)
    d = client.decide(name)
    with pytest.raises(InvalidRewardError):
        client.reward(d, 2)  # a Beta model takes 0 or 1
    assert client.decision(d.decision_id).status == "pending"  # nothing applied
    with pytest.raises(DecisionNotFoundError):
        client.reward(f"{name}~{'0' * 32}", 1)
    with pytest.raises(BanditExistsError):
        client.create(name, ["a"])
    with pytest.raises(InvalidRequestError, match="k"):
        client.decide(name, k=0)
    with Client(server.url) as anonymous:
        assert anonymous.stats(name).bandit == name  # reads are open
        with pytest.raises(AuthenticationError):
            anonymous.decide(name)
    with Client(server.url, api_key="wrong") as wrong, pytest.raises(PermissionError):
        wrong.reward(d, 1)


def test_reward_buffer_applies_every_reward_once(client: Client, name: str):
    decisions = client.decide_batch(name, 45)
    with client.reward_buffer(max_size=20, max_wait=5.0, concurrency=4) as buffer:
        for i, d in enumerate(decisions):
            buffer.add(d, i % 2)
        assert buffer.pending == 5  # 40 sent on size, 5 wait for close
    assert buffer.failures == []
    stats = client.stats(name)
    assert sum(r.pulls for r in stats.arms) == 45
    assert sum(r.rewards for r in stats.arms) == 22


def test_async_client(server: Server, client: Client, name: str):
    async def main():
        async with AsyncClient(server.url, api_key=KEY) as aclient:
            assert (await aclient.health()).reachable
            assert (await aclient.get(name)).arms == ("a", "b", "c")
            d = await aclient.decide(name, user_id="async")
            batch = await aclient.decide_batch(name, 3)
            rewarded = await aclient.reward(d, 1)
            async with aclient.reward_buffer(max_size=2) as buffer:
                for b in batch:
                    await buffer.add(b, 0)
            events = [e async for e in aclient.events(name)]
            stats = await aclient.stats(name)
            with pytest.raises(BanditNotFoundError):
                await aclient.report("no_such_bandit")
            return d, rewarded, events, stats

    d, rewarded, events, stats = asyncio.run(main())
    assert rewarded.status == "applied" and rewarded.decision_id == d.decision_id
    assert [e["type"] for e in events].count("reward") == 4
    assert sum(r.pulls for r in stats.arms) == 4 and sum(r.rewards for r in stats.arms) == 1
    assert client.decision(d.decision_id).status == "rewarded"


class LossyTransport(httpx.BaseTransport):
    """A real transport whose first answer is lost after the server handled the request."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.real.handle_request(request)
        self.keys.append(request.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            response.read()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_reward_whose_answer_was_lost_is_retried_and_counted_once(server: Server,
                                                                    client: Client, name: str,
                                                                    monkeypatch):
    monkeypatch.setattr(sync_module, "_sleep", lambda seconds: None)
    d = client.decide(name)
    lossy = LossyTransport()
    with Client(server.url, api_key=KEY, transport=lossy, retry=Retry(attempts=3)) as c:
        out = c.reward(d, 1)
    # the first attempt applied it; the retry is told so, and the result says it was a retry
    assert (out.status, out.attempts, out.retried) == ("duplicate", 2, True)
    row = client.stats(name)[d.arm]
    assert (row.pulls, row.rewards) == (1.0, 1.0)


def test_a_decision_whose_answer_was_lost_is_replayed(server: Server, client: Client,
                                                      name: str, monkeypatch):
    """The service records one decision per Idempotency-Key; the client reuses it on retries."""
    monkeypatch.setattr(sync_module, "_sleep", lambda seconds: None)
    lossy = LossyTransport()
    with Client(server.url, api_key=KEY, transport=lossy, retry=Retry(attempts=3)) as c:
        d = c.decide(name)
        assert d.replayed and lossy.keys == [d.idempotency_key] * 2
        again = c.decide_batch(name, 2, idempotency_key="batch-" + d.decision_id[-8:])
        replayed = c.decide_batch(name, 2, idempotency_key=again[0].idempotency_key)
        assert replayed == [dataclasses.replace(x, replayed=True) for x in again]
    decided = [e for e in client.events(name) if e["type"] == "decision"]
    assert len(decided) == 3  # one decision for two attempts, one batch of two for two calls
    with pytest.raises(IdempotencyConflictError):  # the key of another request
        client.decide(name, k=2, idempotency_key=d.idempotency_key)


# ----- several metrics per decision --------------------------------------------------------------
CARD_METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
                "risk": {"model": "beta", "given": "apply"}}


def test_several_metrics_round_trip(client: Client):
    bandit = f"cards_{uuid.uuid4().hex[:8]}"
    info = client.create(bandit, ["A", "B", "C"], metrics=CARD_METRICS,
                         objective={"revenue": 1.0},
                         constraints=[{"metric": "risk", "max": 0.05}], costs={"A": 0.0},
                         metric_windows={"revenue": 3600.0}, metric_defaults={"risk": 0})
    assert info.model == {"kind": "metrics"} and info.rule["kind"] == "constrained"
    assert info.metrics is not None and info.metrics["revenue"]["given"] == "apply"
    assert (info.objective, info.constraints) == ({"revenue": 1.0},
                                                  ({"metric": "risk", "max": 0.05},))
    assert info.costs == {"A": 0.0, "B": 0.0, "C": 0.0} and info.baseline is None
    assert (info.metric_windows, info.metric_defaults) == ({"revenue": 3600.0}, {"risk": 0.0})
    assert client.get(bandit) == info

    d = client.decide(bandit)
    first = client.reward(d, metrics={"apply": 1})
    assert (first.status, first.metrics) == ("applied", {"apply": "applied"})
    with pytest.raises(GivenNotMetError):  # nothing of it is applied
        client.reward(client.decide(bandit), metrics={"apply": 0, "revenue": 5.0})
    later = client.reward(d.decision_id, metrics={"revenue": 182.5, "risk": 0})
    assert later.metrics == {"revenue": "applied", "risk": "applied"}
    again = client.reward(d, metrics={"revenue": 182.5})
    assert again.duplicate and again.metrics == {"revenue": "duplicate"}
    with pytest.raises(GivenNotObservedError):
        client.reward(client.decide(bandit), metrics={"risk": 0})
    with pytest.raises(UnknownMetricError):
        client.reward(d, metrics={"clicks": 1})
    with pytest.raises(InvalidRewardError, match="metrics"):
        client.reward(d, 1)  # a bare reward for a bandit with several metrics
    with pytest.raises(ConfigurationError):
        client.reward(d, 1, metrics={"apply": 1})  # refused before sending

    # batches: {metric: value} items next to plain ones
    ds = client.decide_batch(bandit, 3)
    outcomes = client.reward_many([(x, {"apply": 1}) for x in ds])
    assert [o.result.metrics for o in outcomes if o.result] == [{"apply": "applied"}] * 3
    stats = client.stats(bandit)
    assert stats.metrics is not None and stats.objective is not None
    assert sum(row["n"] for row in stats.metrics["apply"].values()) == 4  # d and the batch
    assert sum(row["n"] for row in stats.metrics["revenue"].values()) == 1
    assert stats.constraints is not None and stats.constraints[0]["metric"] == "risk"
    plain = client.stats("credit_card_offers") if "credit_card_offers" in \
        client.list_bandits() else None
    assert plain is None or plain.metrics is None
    client.delete(bandit)


def test_several_metrics_async(server: Server):
    bandit = f"cards_{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, ...]:
        async with AsyncClient(server.url, api_key=KEY, timeout=10.0) as c:
            info = await c.create(bandit, ["A", "B"], metrics=CARD_METRICS,
                                  objective={"revenue": 1.0}, baseline="A",
                                  constraints=[{"metric": "risk", "max": 0.05}])
            d = await c.decide(bandit)
            first = await c.reward(d, metrics={"apply": 1, "revenue": 10.0})
            dup = await c.reward(d.decision_id, metrics={"apply": 1})
            many = await c.reward_many([(await c.decide(bandit), {"apply": 0})])
            await c.delete(bandit)
            return info, first, dup, many

    info, first, dup, many = asyncio.run(main())
    assert info.baseline == "A" and info.metrics is not None
    assert first.metrics == {"apply": "applied", "revenue": "applied"}
    assert dup.duplicate and dup.metrics == {"apply": "duplicate"}
    assert many[0].ok and many[0].result.metrics == {"apply": "applied"}


# ----- timeouts and unreachable services --------------------------------------------------------
@pytest.fixture
def silent_url() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_timeouts(silent_url: str):
    retry = Retry(attempts=2, backoff=0.0)
    with Client(silent_url, timeout=0.2, retry=retry) as client:
        start = time.monotonic()
        with pytest.raises(ServiceTimeoutError, match="after 2 attempts") as info:
            client.decide("offers")  # safe (Idempotency-Key): retried
        assert isinstance(info.value, TimeoutError)
        assert 0.35 < time.monotonic() - start < 5
        with pytest.raises(ServiceTimeoutError) as info:
            client.create("offers", ["a"])  # may have been applied: not retried
        assert "attempts" not in str(info.value)


def test_unreachable_service():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with Client(f"http://127.0.0.1:{port}", retry=Retry(attempts=2, backoff=0.0)) as c, \
                pytest.raises(ServiceConnectionError, match="after 2 attempts"):
            c.stats("offers")


def test_slots_and_sticky_users_round_trip(client: Client):
    carousel = f"carousel_{uuid.uuid4().hex[:8]}"
    client.create(carousel, ["a", "b", "c", "d"], model={"kind": "cascade"})
    d = client.decide(carousel, k=3)
    one = client.reward(d, 1, slot=1)
    assert one.slots == {1: "applied"} and one.arm == d.ranking[1]
    rest = client.reward(d.decision_id, slot_rewards=[0, 1, None])
    assert rest.slots == {0: "applied", 1: "duplicate"}
    with pytest.raises(ConfigurationError):
        client.reward(d, 1, slot_rewards=[1, 0, 0])
    sticky = f"sticky_{uuid.uuid4().hex[:8]}"
    client.create(sticky, ["a", "b", "c"], stickiness=600)
    first = client.decide(sticky, user_id="u1")
    again = client.decide(sticky, user_id="u1")
    assert again.arm == first.arm and again.sticky_of == first.decision_id
    client.delete(carousel)
    client.delete(sticky)


def test_sharded_bandit_round_trip(client: Client):
    """A bandit of 3 shards over real HTTP: created and answered with its shards; decisions
    in a batch and one by one, each rewarded once; the books add up over the shards."""
    name = f"hot_{uuid.uuid4().hex[:8]}"
    info = client.create(name, ["a", "b", "c"], shards=3)
    assert info.shards == 3 and client.get(name).shards == 3
    made = [client.decide(name) for _ in range(12)]
    results = [client.reward(d, i % 2) for i, d in enumerate(made)]
    assert [r.status for r in results] == ["applied"] * 12
    assert client.reward(made[0], 1).status == "duplicate"
    stats = client.stats(name)
    assert sum(a.pulls for a in stats.arms) == 12 and sum(a.rewards for a in stats.arms) == 6
    plain = f"plain_{uuid.uuid4().hex[:8]}"
    assert client.create(plain, ["a"]).shards == 1
    with pytest.raises(InvalidRequestError, match="shards"):
        client.create(f"bad_{uuid.uuid4().hex[:8]}", ["a", "b"], shards=65)
    client.delete(name)
    client.delete(plain)
