"""The asyncio client (:class:`AsyncClient`) and its reward buffer; the same calls, retries,
parsing and errors as :class:`~tsbandit.client.Client` (``_core.py``), awaited."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
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

__all__ = ["AsyncClient", "AsyncRewardBuffer"]

T = TypeVar("T")
_sleep = asyncio.sleep  # between attempts (tests replace it)


class AsyncClient:
    """The asyncio twin of :class:`~tsbandit.client.Client`: same parameters, same methods
    (awaited), same results and exceptions.

    >>> async def main() -> None:                                     # doctest: +SKIP
    ...     async with AsyncClient("http://127.0.0.1:8000") as client:
    ...         d = await client.decide("offers")
    ...         await client.reward(d, 1)
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float | httpx.Timeout = 10.0, retry: Retry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 headers: dict[str, str] | None = None) -> None:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retry = retry if retry is not None else Retry()
        self._rng = random.Random()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                       headers={**(headers or {}), **auth})

    # ----- plumbing -------------------------------------------------------------------------
    async def _send(self, call: Call[T], *,
                    stream: bool = False) -> tuple[Attempts[T], httpx.Response]:
        plan = Attempts(call, self.retry, self._rng)
        while True:
            plan.start()
            try:
                response = await self._http.send(call.request(self._http), stream=stream)
            except httpx.TransportError as exc:
                await _sleep(plan.after_error(exc))
                continue
            if stream and response.status_code not in call.ok:
                await response.aread()
            wait = plan.after_response(response)
            if wait is None:
                return plan, response
            await response.aclose()
            await _sleep(wait)

    async def _run(self, call: Call[T]) -> T:
        plan, response = await self._send(call)
        return plan.result(response)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ----- endpoints (documented on Client) ----------------------------------------------------
    async def health(self) -> Health:
        """See :meth:`Client.health`."""
        return await self._run(Calls.health())

    async def create(self, name: str, arms: Sequence[str], *,
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
        """See :meth:`Client.create`."""
        return await self._run(Calls.create(
            name, arms, model, rule, n_features, reward_window, default_reward, half_life,
            propensity_draws, metric_options(metrics, objective, constraints, costs, baseline,
                                             metric_windows, metric_defaults),
            stickiness, shards))

    async def get(self, name: str) -> BanditInfo:
        """See :meth:`Client.get`."""
        return await self._run(Calls.get(name))

    async def list_bandits(self) -> list[str]:
        """See :meth:`Client.list_bandits`."""
        return await self._run(Calls.list_bandits())

    async def delete(self, name: str) -> None:
        """See :meth:`Client.delete`."""
        await self._run(Calls.delete(name))

    async def add_arm(self, name: str, arm: str) -> BanditInfo:
        """See :meth:`Client.add_arm`."""
        return await self._run(Calls.add_arm(name, arm))

    async def retire_arm(self, name: str, arm: str) -> BanditInfo:
        """See :meth:`Client.retire_arm`."""
        return await self._run(Calls.retire_arm(name, arm))

    async def decide(self, name: str, context: Iterable[float] | None = None, *,
                     eligible_arms: Sequence[str] | None = None, k: int = 1,
                     user_id: str | None = None, idempotency_key: str | None = None) -> Decision:
        """See :meth:`Client.decide`."""
        return await self._run(Calls.decide(name, context, eligible_arms, k, user_id,
                                            idempotency_key))

    async def decide_batch(self, name: str, n: int | None = None, *,
                           contexts: Iterable[Iterable[float]] | None = None,
                           eligible_arms: Sequence[str] | None = None, k: int = 1,
                           user_ids: Sequence[str | None] | None = None,
                           idempotency_key: str | None = None) -> list[Decision]:
        """See :meth:`Client.decide_batch`."""
        return await self._run(Calls.decide_batch(name, n, contexts, eligible_arms, k,
                                                  user_ids, idempotency_key))

    async def decision(self, decision_id: str) -> DecisionStatus:
        """See :meth:`Client.decision`."""
        return await self._run(Calls.decision(decision_id))

    async def reward(self, decision: Decision | str, reward: float | None = None, *,
                     metrics: Mapping[str, float] | None = None, slot: int | None = None,
                     slot_rewards: Sequence[float | None] | None = None) -> RewardResult:
        """See :meth:`Client.reward`."""
        return await self._run(Calls.reward(decision, reward, metrics, slot, slot_rewards))

    async def _reward_item(self, decision: Decision | str, reward: Reward) -> RewardResult:
        value, metrics = split_reward(reward)
        return await self.reward(decision, value, metrics=metrics)

    async def reward_many(self, rewards: Iterable[tuple[Decision | str, Reward]], *,
                          concurrency: int = 8) -> list[RewardOutcome]:
        """See :meth:`Client.reward_many` (tasks, ``concurrency`` in flight at a time)."""
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(decision: Decision | str, reward: Reward) -> RewardOutcome:
            async with gate:
                try:
                    return RewardOutcome(decision_id_of(decision), reward,
                                         result=await self._reward_item(decision, reward))
                except Exception as exc:  # one reward's failure is its outcome, never lost
                    return RewardOutcome(decision_id_of(decision), reward, error=exc)

        return list(await asyncio.gather(*(one(d, r) for d, r in rewards)))

    def reward_buffer(self, *, max_size: int = 100, max_wait: float | None = 1.0,
                      concurrency: int = 8,
                      on_error: Callable[[RewardOutcome], None] | None = None
                      ) -> AsyncRewardBuffer:
        """An :class:`AsyncRewardBuffer` sending through this client."""
        return AsyncRewardBuffer(self, max_size=max_size, max_wait=max_wait,
                                 concurrency=concurrency, on_error=on_error)

    async def stats(self, name: str, context: Iterable[float] | None = None, *,
                    level: float = 0.95) -> Stats:
        """See :meth:`Client.stats`."""
        return await self._run(Calls.stats(name, context, level))

    async def report(self, name: str, *, prob_best: float | None = None,
                     expected_loss: float | None = None, min_samples: int | None = None,
                     level: float | None = None, split: str | None = None,
                     srm: bool | None = None, srm_threshold: float | None = None,
                     draws: int | None = None, seed: int | None = None) -> Report:
        """See :meth:`Client.report`."""
        return await self._run(Calls.report(name, dict(
            prob_best=prob_best, expected_loss=expected_loss, min_samples=min_samples,
            level=level, split=split, srm=srm, srm_threshold=srm_threshold, draws=draws,
            seed=seed)))

    async def events(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """See :meth:`Client.events` (``async for event in client.events(name)``)."""
        plan, response = await self._send(Calls.events(name), stream=True)
        try:
            plan.result(response)
            async for event in _alines(response):
                yield event
        finally:
            await response.aclose()


async def _alines(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        for event in event_lines(iter([line])):
            yield event


class AsyncRewardBuffer:
    """The asyncio twin of :class:`~tsbandit.client.RewardBuffer` (``await add``, ``await
    flush``, ``async with``); the timer is a task of the running loop."""

    def __init__(self, client: AsyncClient, *, max_size: int = 100,
                 max_wait: float | None = 1.0, concurrency: int = 8,
                 on_error: Callable[[RewardOutcome], None] | None = None) -> None:
        self.client, self.concurrency = client, concurrency
        self._state = BufferState(max_size, max_wait, on_error, time.monotonic)
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def failures(self) -> list[RewardOutcome]:
        """See :attr:`RewardBuffer.failures`."""
        return list(self._state.failures)

    @property
    def pending(self) -> int:
        """Rewards waiting to be sent."""
        return len(self._state.items)

    async def add(self, decision: Decision | str, reward: Reward) -> None:
        """Buffer a reward; a full buffer is sent now."""
        batch = self._state.push(decision, reward)
        if self._state.max_wait is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._wait_loop())
        self._wake.set()
        if batch:
            await self._send(batch)

    async def flush(self) -> list[RewardOutcome]:
        """Send what waits now; the outcome of each reward sent."""
        return await self._send(self._state.take())

    async def close(self) -> list[RewardOutcome]:
        """See :meth:`RewardBuffer.close`."""
        self._state.closed = True
        self._wake.set()
        if self._timer is not None:
            await self._timer
        out = await self.flush()
        self._state.check()
        return out

    async def _send(self, batch: list[tuple[Decision | str, Reward]]) -> list[RewardOutcome]:
        if not batch:
            return []
        return self._state.record(await self.client.reward_many(
            batch, concurrency=self.concurrency))

    async def _wait_loop(self) -> None:
        while not self._state.closed:
            due = self._state.due_in()
            if due is not None and due <= 0:
                await self._send(self._state.take())
                continue
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), due)

    async def __aenter__(self) -> AsyncRewardBuffer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is None:
            await self.close()
            return
        with contextlib.suppress(TsbanditError):
            await self.close()
