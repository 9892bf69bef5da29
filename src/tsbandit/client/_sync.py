"""The blocking client (:class:`Client`) and its reward buffer (:class:`RewardBuffer`)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..errors import TsbanditError
from ._core import (
    Attempts,
    BufferState,
    Call,
    Calls,
    Retry,
    decision_id_of,
    event_lines,
    metric_options,
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
    split_reward,
)

__all__ = ["Client", "RewardBuffer"]

T = TypeVar("T")
_sleep = time.sleep  # between attempts (tests replace it)


class Client:
    """A blocking client of the tsbandit decision service (``tsbandit serve``).

    Parameters
    ----------
    base_url
        Where the service listens.
    api_key
        Sent as ``Authorization: Bearer <key>`` (the service's ``TSBANDIT_API_KEY``).
    timeout
        Seconds per attempt (or an ``httpx.Timeout``).
    retry
        When and how to retry (:class:`Retry`; ``Retry(attempts=1)`` never retries).
    transport
        An ``httpx`` transport (e.g. ``httpx.MockTransport`` in tests).

    Every method raises the library's exceptions (:mod:`tsbandit.errors`): an unknown bandit
    is :class:`~tsbandit.errors.BanditNotFoundError`, a reward outside the model's domain
    :class:`~tsbandit.errors.InvalidRewardError`, an unreachable service
    :class:`ServiceConnectionError` (:class:`ServiceTimeoutError` on a timeout).

    Examples
    --------
    >>> from tsbandit.client import Client
    >>> with Client("http://127.0.0.1:8000") as client:              # doctest: +SKIP
    ...     client.create("offers", ["a", "b", "c"])
    ...     d = client.decide("offers")
    ...     client.reward(d, 1).status
    'applied'
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float | httpx.Timeout = 10.0, retry: Retry | None = None,
                 transport: httpx.BaseTransport | None = None,
                 headers: dict[str, str] | None = None) -> None:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retry = retry if retry is not None else Retry()
        self._rng = random.Random()  # jitter only; never shared
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={**(headers or {}), **auth})

    # ----- plumbing -------------------------------------------------------------------------
    def _send(self, call: Call[T], *, stream: bool = False) -> tuple[Attempts[T], httpx.Response]:
        plan = Attempts(call, self.retry, self._rng)
        while True:
            plan.start()
            try:
                response = self._http.send(call.request(self._http), stream=stream)
            except httpx.TransportError as exc:
                _sleep(plan.after_error(exc))
                continue
            if stream and response.status_code not in call.ok:
                response.read()
            wait = plan.after_response(response)
            if wait is None:
                return plan, response
            response.close()
            _sleep(wait)

    def _run(self, call: Call[T]) -> T:
        plan, response = self._send(call)
        return plan.result(response)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ----- endpoints --------------------------------------------------------------------------
    def health(self) -> Health:
        """``GET /healthz``; a down store raises :class:`~tsbandit.errors.StoreUnavailableError`."""
        return self._run(Calls.health())

    def create(self, name: str, arms: Sequence[str], *,
               model: str | dict[str, Any] | None = None,
               rule: str | dict[str, Any] | None = None, n_features: int | None = None,
               reward_window: float | None = None, default_reward: float | None = None,
               half_life: float | None = None, propensity_draws: int | None = None,
               metrics: Mapping[str, Any] | None = None,
               objective: Mapping[str, float] | None = None,
               constraints: Sequence[Mapping[str, Any]] | None = None,
               costs: Mapping[str, float] | None = None, baseline: str | None = None,
               metric_windows: Mapping[str, float] | None = None,
               metric_defaults: Mapping[str, float | None] | None = None,
               stickiness: float | None = None,
               shards: int | None = None) -> BanditInfo:
        """Create a bandit (``BanditExistsError`` if the name is taken); None: the default
        (``model`` Beta-Bernoulli, ``rule`` Thompson sampling).

        Several metrics per decision instead of one reward: ``metrics`` (``{"apply": "beta",
        "revenue": {"model": "gaussian", "given": "apply"}}``), and optionally ``objective``,
        ``constraints``, ``costs`` (by arm), ``baseline``, ``metric_windows`` and
        ``metric_defaults``, as ``POST /v1/bandits`` takes them (never with ``model``).
        ``shards`` spreads one hot bandit over that many store shards (see docs/scaling.md).

        >>> client.create("cards", ["A", "B"], metrics={  # doctest: +SKIP
        ...     "apply": "beta", "risk": {"model": "beta", "given": "apply"}},
        ...     constraints=[{"metric": "risk", "max": 0.05}]).rule["kind"]
        'constrained'
        """
        return self._run(Calls.create(
            name, arms, model, rule, n_features, reward_window, default_reward, half_life,
            propensity_draws, metric_options(metrics, objective, constraints, costs, baseline,
                                             metric_windows, metric_defaults),
            stickiness, shards))

    def get(self, name: str) -> BanditInfo:
        """A bandit's configuration."""
        return self._run(Calls.get(name))

    def list_bandits(self) -> list[str]:
        """Names of all bandits."""
        return self._run(Calls.list_bandits())

    def delete(self, name: str) -> None:
        """Delete a bandit with its statistics, pending decisions and events."""
        self._run(Calls.delete(name))

    def add_arm(self, name: str, arm: str) -> BanditInfo:
        """Add an arm (it starts from the prior)."""
        return self._run(Calls.add_arm(name, arm))

    def retire_arm(self, name: str, arm: str) -> BanditInfo:
        """Retire an arm; its pending decisions are consumed, not learned."""
        return self._run(Calls.retire_arm(name, arm))

    def decide(self, name: str, context: Iterable[float] | None = None, *,
               eligible_arms: Sequence[str] | None = None, k: int = 1,
               user_id: str | None = None, idempotency_key: str | None = None) -> Decision:
        """One decision (``k > 1``: a ranking of ``k`` arms).

        The request carries an ``Idempotency-Key`` (``idempotency_key``, or a fresh uuid4 hex)
        and every retry reuses it, so a retry answers the decision already recorded instead of
        recording a second one.
        """
        return self._run(Calls.decide(name, context, eligible_arms, k, user_id,
                                      idempotency_key))

    def decide_batch(self, name: str, n: int | None = None, *,
                     contexts: Iterable[Iterable[float]] | None = None,
                     eligible_arms: Sequence[str] | None = None, k: int = 1,
                     user_ids: Sequence[str | None] | None = None,
                     idempotency_key: str | None = None) -> list[Decision]:
        """Decisions for many users in one request (``n`` users, or one per context)."""
        return self._run(Calls.decide_batch(name, n, contexts, eligible_arms, k, user_ids,
                                            idempotency_key))

    def decision(self, decision_id: str) -> DecisionStatus:
        """A logged decision and its status (``pending``, ``rewarded``, ``expired``...)."""
        return self._run(Calls.decision(decision_id))

    def reward(self, decision: Decision | str, reward: float | None = None, *,
               metrics: Mapping[str, float] | None = None, slot: int | None = None,
               slot_rewards: Sequence[float | None] | None = None) -> RewardResult:
        """Reward a decision (a :class:`Decision` or its id) exactly once: ``reward`` (a
        number) or, for a bandit with several metrics, ``metrics`` (``{metric: value}``; each
        metric of a decision is applied once, whenever it arrives, and the result's
        ``metrics`` says each one's status). Exactly one of them. A ranking model learns
        from every slot: ``reward`` with its ``slot``, or ``slot_rewards`` (one per slot, None
        for one not known yet); the result's ``slots`` says each slot's status.

        Retried on 503 and lost connections: safe, as the service applies a decision's reward
        once and answers a repeat ``"duplicate"`` (see :class:`RewardResult`).
        """
        return self._run(Calls.reward(decision, reward, metrics, slot, slot_rewards))

    def _reward_item(self, decision: Decision | str, reward: Reward) -> RewardResult:
        value, metrics = split_reward(reward)
        return self.reward(decision, value, metrics=metrics)

    def reward_many(self, rewards: Iterable[tuple[Decision | str, Reward]], *,
                    concurrency: int = 8) -> list[RewardOutcome]:
        """Send many rewards concurrently (``concurrency`` at a time, on the connection pool).

        The service has no batch reward endpoint: this is one request per reward. Errors do
        not stop the others: each :class:`RewardOutcome` holds its result or its error. A
        reward is a number, or ``{metric: value}`` for a bandit with several metrics.
        """
        items = list(rewards)
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items)))) as pool:
            return list(pool.map(lambda item: self._outcome(*item), items))

    def _outcome(self, decision: Decision | str, reward: Reward) -> RewardOutcome:
        try:
            return RewardOutcome(decision_id_of(decision), reward,
                                 result=self._reward_item(decision, reward))
        except Exception as exc:  # one reward's failure is its outcome, never lost
            return RewardOutcome(decision_id_of(decision), reward, error=exc)

    def reward_buffer(self, *, max_size: int = 100, max_wait: float | None = 1.0,
                      concurrency: int = 8,
                      on_error: Callable[[RewardOutcome], None] | None = None) -> RewardBuffer:
        """A :class:`RewardBuffer` sending through this client."""
        return RewardBuffer(self, max_size=max_size, max_wait=max_wait,
                            concurrency=concurrency, on_error=on_error)

    def stats(self, name: str, context: Iterable[float] | None = None, *,
              level: float = 0.95) -> Stats:
        """Per arm: posterior mean, credible interval, pulls, rewards, P(best)."""
        return self._run(Calls.stats(name, context, level))

    def report(self, name: str, *, prob_best: float | None = None,
               expected_loss: float | None = None, min_samples: int | None = None,
               level: float | None = None, split: str | None = None, srm: bool | None = None,
               srm_threshold: float | None = None, draws: int | None = None,
               seed: int | None = None) -> Report:
        """The bandit as a Bayesian A/B/n experiment (None: the service's default)."""
        return self._run(Calls.report(name, dict(
            prob_best=prob_best, expected_loss=expected_loss, min_samples=min_samples,
            level=level, split=split, srm=srm, srm_threshold=srm_threshold, draws=draws,
            seed=seed)))

    def events(self, name: str) -> Iterator[dict[str, Any]]:
        """The bandit's event log, one dict per event, read as the service streams it.

        The stream is opened on the first ``next`` (errors such as an unknown bandit are raised
        then); close the generator to stop early.
        """
        plan, response = self._send(Calls.events(name), stream=True)
        try:
            plan.result(response)
            yield from event_lines(response.iter_lines())
        finally:
            response.close()


class RewardBuffer:
    """Rewards collected and sent in batches: when ``max_size`` wait, when the oldest has
    waited ``max_wait`` seconds (a background thread), on :meth:`flush` and on :meth:`close`
    (or the end of a ``with`` block).

    Each batch goes out concurrently (:meth:`Client.reward_many`; the service has no batch
    reward endpoint). A reward the service refuses, or that never reaches it after the
    retries, is not lost: it is passed to ``on_error`` and kept in :attr:`failures`; without
    ``on_error``, :meth:`close` raises :class:`RewardFlushError` listing them.

    >>> with client.reward_buffer(max_size=50, max_wait=0.5) as rewards:  # doctest: +SKIP
    ...     for d in client.decide_batch("offers", 200):
    ...         rewards.add(d, 1.0 if d.arm == "b" else 0.0)
    """

    def __init__(self, client: Client, *, max_size: int = 100, max_wait: float | None = 1.0,
                 concurrency: int = 8,
                 on_error: Callable[[RewardOutcome], None] | None = None) -> None:
        self.client, self.concurrency = client, concurrency
        self._state = BufferState(max_size, max_wait, on_error, time.monotonic)
        self._cond = threading.Condition()
        self._timer: threading.Thread | None = None

    @property
    def failures(self) -> list[RewardOutcome]:
        """Rewards not recorded so far (refused by the service, or never delivered)."""
        return list(self._state.failures)

    @property
    def pending(self) -> int:
        """Rewards waiting to be sent."""
        with self._cond:
            return len(self._state.items)

    def add(self, decision: Decision | str, reward: Reward) -> None:
        """Buffer a reward; a full buffer is sent now, in this thread."""
        with self._cond:
            batch = self._state.push(decision, reward)
            if self._state.max_wait is not None and self._timer is None:
                self._timer = threading.Thread(target=self._wait_loop, daemon=True,
                                               name="tsbandit-reward-buffer")
                self._timer.start()
            self._cond.notify_all()
        if batch:
            self._send(batch)

    def flush(self) -> list[RewardOutcome]:
        """Send what waits now; the outcome of each reward sent."""
        with self._cond:
            batch = self._state.take()
        return self._send(batch)

    def close(self) -> list[RewardOutcome]:
        """Send what waits and stop the timer; raises :class:`RewardFlushError` for failed
        rewards when there is no ``on_error``."""
        with self._cond:
            self._state.closed = True
            self._cond.notify_all()
        if self._timer is not None:
            self._timer.join()
        out = self.flush()
        self._state.check()
        return out

    def _send(self, batch: list[tuple[Decision | str, Reward]]) -> list[RewardOutcome]:
        outcomes = self.client.reward_many(batch, concurrency=self.concurrency)
        with self._cond:
            return self._state.record(outcomes)

    def _wait_loop(self) -> None:
        while True:
            with self._cond:
                due = self._state.due_in()
                while not self._state.closed and (due is None or due > 0):
                    self._cond.wait(due)
                    due = self._state.due_in()
                if self._state.closed:
                    return
                batch = self._state.take()
            self._send(batch)

    def __enter__(self) -> RewardBuffer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        try:  # do not hide the exception in flight behind a flush error
            self.close()
        except TsbanditError:
            pass
