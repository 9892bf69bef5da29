"""What :class:`Client` and :class:`AsyncClient` share: requests, retries, parsing, errors.

Every endpoint is a :class:`Call` built here (method, path, body, headers, how to parse the
answer, whether a retry is safe); the two clients only send it (sync or async) and sleep
between attempts. :class:`Attempts` decides, attempt by attempt, whether to retry and how long
to wait, and turns the final answer into a result or an exception of the library's tree.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from ..decision import split_decision_id
from ..errors import (
    ClientError,
    ConfigurationError,
    InvalidRequestError,
    RewardFlushError,
    ServiceConnectionError,
    ServiceError,
    ServiceTimeoutError,
    TsbanditError,
)
from .results import (
    BanditInfo,
    Decision,
    DecisionStatus,
    Health,
    Report,
    Reward,
    RewardOutcome,
    RewardResult,
    Stats,
)

__all__ = [
    "Call",
    "InvalidRequestError",
    "Retry",
    "RewardFlushError",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceTimeoutError",
    "error_class",
]

T = TypeVar("T")


# ----- errors -------------------------------------------------------------------------------
# the client's own errors live in the one tree, tsbandit/errors.py (the ClientError branch)


def _codes() -> dict[str, type[TsbanditError]]:
    """``code -> class`` for every class of the library's tree (tsbandit/errors.py): the
    classes carry their own code, so this is the service's mapping read backwards."""
    out: dict[str, type[TsbanditError]] = {}
    todo: list[type[TsbanditError]] = [TsbanditError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if (cls is not TsbanditError and cls.__module__ == "tsbandit.errors"
                and "code" in vars(cls) and not issubclass(cls, ClientError)):
            out[cls.code] = cls
    return out


_CODES = _codes()
#: codes of the service itself (a malformed request), not of a library class
_REQUEST_CODES = frozenset({"invalid_request", "malformed_json", "malformed_request",
                            "uri_too_long"})


def error_class(code: str) -> type[TsbanditError] | None:
    """The library's exception class for a service error ``code`` (None if it has none).

    >>> error_class("bandit_not_found").__name__
    'BanditNotFoundError'
    """
    return _CODES.get(code)


def error_from_response(response: httpx.Response) -> TsbanditError:
    """The exception for an error answer ``{"error": {"code": ..., "detail": ...}}``."""
    try:
        body = response.json()["error"]
        code, detail = str(body["code"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        code = "http_error"
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
    cls = _CODES.get(code)
    if cls is not None:
        return cls(detail)
    if code in _REQUEST_CODES:
        return InvalidRequestError(detail, status=response.status_code, code=code)
    return ServiceError(detail, status=response.status_code, code=code)


def transport_error(exc: httpx.TransportError, attempts: int) -> ServiceConnectionError:
    """The library's exception for a request that got no answer."""
    what = f"{exc.request.method} {exc.request.url}" if _has_request(exc) else "request"
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    cls = ServiceTimeoutError if isinstance(exc, httpx.TimeoutException) else \
        ServiceConnectionError
    return cls(f"{what} failed{tries}: {type(exc).__name__}: {exc}")


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True


# ----- retries ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retry:
    """When and how the client retries.

    Parameters
    ----------
    attempts
        Attempts in all (1: never retry).
    backoff
        Wait before the second attempt, in seconds; doubled on each further attempt, capped
        at ``max_backoff``. With ``jitter`` the wait is drawn uniformly in ``[0, that]``
        ("full jitter"), so clients that failed together do not retry together.
    statuses
        Answers that are retried (the service answers 503 when its store is unavailable;
        proxies 502/504). A ``Retry-After`` header is honoured, capped at ``max_backoff``.

    Only safe requests are retried after the request may have reached the service: reads,
    rewards (idempotent by decision id) and decisions (idempotent by their
    ``Idempotency-Key``, which the client sends with every decision). Other writes (create a
    bandit, add or retire an arm, delete) are retried only when the connection could not be
    opened, i.e. the request was never sent.

    >>> Retry(attempts=4, backoff=0.1, jitter=False).delay(3)
    0.4
    """

    attempts: int = 3
    backoff: float = 0.1
    max_backoff: float = 2.0
    jitter: bool = True
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({502, 503, 504}))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"attempts == {self.attempts}, must be >= 1")
        if not self.backoff >= 0 or not self.max_backoff >= 0:
            raise ConfigurationError(f"backoff == {self.backoff} and max_backoff == "
                                     f"{self.max_backoff}, both must be >= 0")

    def delay(self, attempt: int, rng: random.Random | None = None,
              retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        cap = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return (rng or random.Random()).uniform(0.0, cap) if self.jitter else cap


#: errors raised before the request left the client: retrying never repeats a write
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One endpoint call: the request, how to parse a success, whether a retry is safe."""

    method: str
    path: str
    parse: Callable[[httpx.Response, int], T]
    json: Any = None
    params: Any = None
    headers: dict[str, str] | None = None
    safe: bool = False
    ok: tuple[int, ...] = (200,)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request (built again for every attempt)."""
        return http.build_request(self.method, self.path, json=self.json, params=self.params,
                                  headers=self.headers)


class Attempts(Generic[T]):
    """The retry loop's decisions for one :class:`Call`, free of I/O (the client sends and
    sleeps): after each attempt it says how long to wait before the next, or ends the call
    with its result or exception."""

    def __init__(self, call: Call[T], retry: Retry, rng: random.Random) -> None:
        self.call, self.retry, self.rng = call, retry, rng
        self.attempt = 0

    def start(self) -> None:
        """Count an attempt (call before sending)."""
        self.attempt += 1

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying, or raise the library's error."""
        safe = self.call.safe or isinstance(exc, _NOT_SENT)
        if not safe or self.attempt >= self.retry.attempts:
            raise transport_error(exc, self.attempt) from exc
        return self.retry.delay(self.attempt, self.rng)

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying, or None when ``response`` is final."""
        if (response.status_code in self.retry.statuses and self.call.safe
                and self.attempt < self.retry.attempts):
            return self.retry.delay(self.attempt, self.rng, _retry_after(response))
        return None

    def result(self, response: httpx.Response) -> T:
        """The parsed result of a final ``response``, or raise its error."""
        if response.status_code not in self.call.ok:
            raise error_from_response(response)
        try:
            return self.call.parse(response, self.attempt)
        except (ValueError, KeyError, TypeError) as exc:  # not the service's JSON (a proxy?)
            raise ServiceError(
                f"unexpected answer to {self.call.method} {self.call.path} "
                f"(HTTP {response.status_code}): {type(exc).__name__}: {exc}",
                status=response.status_code, code="invalid_response") from exc


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


# ----- the endpoints --------------------------------------------------------------------------
def _json(cls: Any) -> Callable[[httpx.Response, int], Any]:
    return lambda r, _: cls.from_json(r.json())


def _nothing(response: httpx.Response, attempts: int) -> None:
    return None


def _decision(key: str) -> Callable[[httpx.Response, int], Decision]:
    def parse(r: httpx.Response, _: int) -> Decision:
        return Decision.from_dict(r.json(), replayed=_replayed(r), idempotency_key=key)
    return parse


def _decisions(key: str) -> Callable[[httpx.Response, int], list[Decision]]:
    def parse(r: httpx.Response, _: int) -> list[Decision]:
        replayed = _replayed(r)
        return [Decision.from_dict(d, replayed=replayed, idempotency_key=key)
                for d in r.json()["decisions"]]
    return parse


def _replayed(response: httpx.Response) -> bool:
    return response.headers.get("Idempotent-Replayed", "").lower() == "true"


def _reward_result(r: httpx.Response, attempts: int) -> RewardResult:
    return RewardResult.from_dict(r.json(), attempts=attempts)


def _q(segment: str) -> str:
    """A path segment, percent-encoded (an arm named ``a/b`` or ``50%`` stays one segment)."""
    return quote(str(segment), safe="")


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _seq(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else [float(v) for v in values]


def metric_options(metrics: Mapping[str, Any] | None, objective: Mapping[str, float] | None,
                   constraints: Sequence[Mapping[str, Any]] | None,
                   costs: Mapping[str, float] | None, baseline: str | None,
                   metric_windows: Mapping[str, float] | None,
                   metric_defaults: Mapping[str, float | None] | None) -> dict[str, Any]:
    """The several-metric fields of ``POST /v1/bandits`` that are given (JSON-ready)."""
    maps = {"metrics": metrics, "objective": objective, "costs": costs,
            "metric_windows": metric_windows, "metric_defaults": metric_defaults}
    out: dict[str, Any] = {k: dict(v) for k, v in maps.items() if v is not None}
    if constraints is not None:
        out["constraints"] = [dict(c) for c in constraints]
    if baseline is not None:
        out["baseline"] = baseline
    return out


def bandit_of(decision: Decision | str) -> tuple[str, str]:
    """``(bandit, decision_id)`` of a decision or decision id (the id names its bandit)."""
    if isinstance(decision, Decision):
        return decision.bandit, decision.decision_id
    return split_decision_id(decision)[0], decision


class Calls:
    """Builds the :class:`Call` of every endpoint (the clients' methods forward here)."""

    @staticmethod
    def health() -> Call[Health]:
        return Call("GET", "/healthz", _json(Health), safe=True)

    @staticmethod
    def create(name: str, arms: Sequence[str], model: str | dict[str, Any] | None,
               rule: str | dict[str, Any] | None, n_features: int | None,
               reward_window: float | None, default_reward: float | None,
               half_life: float | None, propensity_draws: int | None,
               metric_options: Mapping[str, Any] | None = None,
               stickiness: float | None = None,
               shards: int | None = None) -> Call[BanditInfo]:
        body = {"name": name, "arms": list(arms),
                **_drop_none(model=model, rule=rule, n_features=n_features,
                             reward_window=reward_window, default_reward=default_reward,
                             half_life=half_life, propensity_draws=propensity_draws,
                             stickiness=stickiness, shards=shards, **(metric_options or {}))}
        return Call("POST", "/v1/bandits", _json(BanditInfo), json=body, ok=(201,))

    @staticmethod
    def get(name: str) -> Call[BanditInfo]:
        return Call("GET", f"/v1/bandits/{_q(name)}", _json(BanditInfo), safe=True)

    @staticmethod
    def list_bandits() -> Call[list[str]]:
        return Call("GET", "/v1/bandits", lambda r, _: list(r.json()["bandits"]), safe=True)

    @staticmethod
    def delete(name: str) -> Call[None]:
        return Call("DELETE", f"/v1/bandits/{_q(name)}", _nothing, ok=(204,))

    @staticmethod
    def add_arm(name: str, arm: str) -> Call[BanditInfo]:
        return Call("POST", f"/v1/bandits/{_q(name)}/arms", _json(BanditInfo), json={"arm": arm},
                    ok=(201,))

    @staticmethod
    def retire_arm(name: str, arm: str) -> Call[BanditInfo]:
        return Call("DELETE", f"/v1/bandits/{_q(name)}/arms/{_q(arm)}", _json(BanditInfo))

    @staticmethod
    def decide(name: str, context: Iterable[float] | None, eligible_arms: Sequence[str] | None,
               k: int, user_id: str | None, idempotency_key: str | None) -> Call[Decision]:
        key = idempotency_key or uuid.uuid4().hex
        body = _drop_none(context=_seq(context), user_id=user_id,
                          eligible_arms=None if eligible_arms is None else list(eligible_arms))
        if k != 1:
            body["k"] = k
        return Call("POST", f"/v1/bandits/{_q(name)}/decisions", _decision(key), json=body,
                    headers={"Idempotency-Key": key}, safe=True)

    @staticmethod
    def decide_batch(name: str, n: int | None, contexts: Iterable[Iterable[float]] | None,
                     eligible_arms: Sequence[str] | None, k: int,
                     user_ids: Sequence[str | None] | None,
                     idempotency_key: str | None) -> Call[list[Decision]]:
        key = idempotency_key or uuid.uuid4().hex
        body = _drop_none(n=n, contexts=None if contexts is None else [_seq(c) for c in contexts],
                          eligible_arms=None if eligible_arms is None else list(eligible_arms),
                          user_ids=None if user_ids is None else list(user_ids))
        if k != 1:
            body["k"] = k
        return Call("POST", f"/v1/bandits/{_q(name)}/decisions/batch", _decisions(key), json=body,
                    headers={"Idempotency-Key": key}, safe=True)

    @staticmethod
    def decision(decision_id: str) -> Call[DecisionStatus]:
        return Call("GET", f"/v1/decisions/{_q(decision_id)}", _json(DecisionStatus), safe=True)

    @staticmethod
    def reward(decision: Decision | str, reward: Reward | None = None,
               metrics: Mapping[str, float] | None = None, slot: int | None = None,
               slot_rewards: Sequence[float | None] | None = None) -> Call[RewardResult]:
        bandit, did = bandit_of(decision)
        if isinstance(reward, Mapping) and metrics is None:
            reward, metrics = None, reward  # {metric: value}: a bandit with several metrics
        if sum(v is not None for v in (reward, metrics, slot_rewards)) != 1:
            raise ConfigurationError(
                "give exactly one of reward (a number), metrics ({metric: value}, for a "
                "bandit with several metrics) or slot_rewards (one per slot, ranking models)")
        if slot is not None and reward is None:
            raise ConfigurationError("slot goes with reward (the reward of that slot)")
        body: dict[str, Any] = {"decision_id": did}
        if metrics is not None:
            body["metrics"] = dict(metrics)
        elif slot_rewards is not None:
            body["slot_rewards"] = list(slot_rewards)
        else:
            body["reward"] = reward
            if slot is not None:
                body["slot"] = int(slot)
        # safe: a reward is applied once per decision id (each metric once); a repeat
        # answers "duplicate"
        return Call("POST", f"/v1/bandits/{_q(bandit)}/rewards", _reward_result, json=body,
                    safe=True)

    @staticmethod
    def stats(name: str, context: Iterable[float] | None, level: float) -> Call[Stats]:
        params: list[tuple[str, Any]] = [("level", level)]
        params += [("context", v) for v in _seq(context) or []]
        return Call("GET", f"/v1/bandits/{_q(name)}/stats", _json(Stats), params=params, safe=True)

    @staticmethod
    def report(name: str, options: dict[str, Any]) -> Call[Report]:
        params = {k: (str(v).lower() if isinstance(v, bool) else v)
                  for k, v in options.items() if v is not None}
        return Call("GET", f"/v1/bandits/{_q(name)}/report", _json(Report), params=params,
                    safe=True)

    @staticmethod
    def events(name: str) -> Call[None]:
        return Call("GET", f"/v1/bandits/{_q(name)}/events", _nothing, safe=True)


def event_lines(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The events of an NDJSON body, one dict per non-empty line."""
    for line in lines:
        if line.strip():
            yield json.loads(line)


def decision_id_of(decision: Decision | str) -> str:
    """The id of a decision or decision id."""
    return decision.decision_id if isinstance(decision, Decision) else str(decision)


# ----- reward buffers ----------------------------------------------------------------------------
class BufferState:
    """The bookkeeping of a reward buffer, shared by the sync and async buffers: what is
    waiting, when the oldest arrived, and the failures reported so far (the buffers add only
    the sending and the waiting)."""

    def __init__(self, max_size: int, max_wait: float | None,
                 on_error: Callable[[RewardOutcome], None] | None,
                 clock: Callable[[], float]) -> None:
        if max_size < 1:
            raise ConfigurationError(f"max_size == {max_size}, must be >= 1")
        if max_wait is not None and not max_wait > 0:
            raise ConfigurationError(f"max_wait == {max_wait}, must be > 0 (or None)")
        self.max_size, self.max_wait, self.on_error, self.clock = (
            max_size, max_wait, on_error, clock)
        self.items: list[tuple[Decision | str, Reward]] = []
        self.first_at = 0.0
        self.failures: list[RewardOutcome] = []
        self.sent = 0
        self.closed = False

    def push(self, decision: Decision | str, reward: Reward) -> list[tuple[Decision | str, Reward]]:
        """Buffer one reward; the batch to send now when the buffer is full, else []."""
        if self.closed:
            raise ConfigurationError("the reward buffer is closed")
        if not self.items:
            self.first_at = self.clock()
        self.items.append((decision, reward))
        return self.take() if len(self.items) >= self.max_size else []

    def take(self) -> list[tuple[Decision | str, Reward]]:
        """Everything waiting (the buffer is then empty)."""
        batch, self.items = self.items, []
        return batch

    def due_in(self) -> float | None:
        """Seconds until the oldest waiting reward is due (None: nothing waits or no timer)."""
        if not self.items or self.max_wait is None:
            return None
        return self.first_at + self.max_wait - self.clock()

    def record(self, outcomes: list[RewardOutcome]) -> list[RewardOutcome]:
        """Keep (and report through ``on_error``) the failed ones; returns ``outcomes``."""
        self.sent += len(outcomes)
        for o in outcomes:
            if not o.ok:
                self.failures.append(o)
                if self.on_error is not None:
                    self.on_error(o)
        return outcomes

    def check(self) -> None:
        """Raise :class:`RewardFlushError` for failures nobody was told about."""
        if self.failures and self.on_error is None:
            raise RewardFlushError(self.failures)
