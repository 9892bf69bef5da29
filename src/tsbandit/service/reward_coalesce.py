"""Coalescing of concurrent rewards into one ``Engine.record_rewards`` (as decisions are).

Under load many ``POST /v1/bandits/{name}/rewards`` (and the tutorial's ``POST /reward``) for
the same bandit are in flight at once. Alone, each costs a store write (and a read when this
worker did not make the decision). The coalescer groups the rewards of one ``(engine,
bandit)`` that arrive **while a batch of that group is being served** and serves them, as soon
as that batch is done, with one :meth:`Engine.record_rewards
<tsbandit.engine.Engine.record_rewards>`: at most one read of the payloads the engine does not
keep (``Store.get_pending_many``) and one atomic write of all
(``Store.apply_reward_many``), each reward consumed exactly once by the store.

No request waits for a timer: offloaded (the default), a reward whose group is idle goes
straight to the engine and followers join while it runs; on the loop (``offload=False``) a
reward whose group is idle yields one turn of the loop so that the requests already parsed
join it. Each request gets its own answer -- its :class:`~tsbandit.decision.RewardResult` or
its own error (unknown, expired, invalid reward, wrong slot...) -- exactly as alone: one bad
reward never fails the others, and the same decision rewarded twice in one batch is applied by
the first and answered ``duplicate`` to the second. An error of the batch as a whole (a bug)
goes to every member; the store down is each member's own 503.

>>> import asyncio
>>> from tsbandit.engine import BanditSpec, Engine
>>> engine = Engine.open("memory://", seed=0)
>>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
>>> ids = [d.decision_id for d in engine.decide_batch("ads", n=3)]
>>> async def many():
...     c = RewardCoalescer(offload=True, max_batch=100)
...     return await asyncio.gather(*(c.record(engine, i, 1) for i in ids + ids[:1]))
>>> [r.status for r in asyncio.run(many())]
['applied', 'applied', 'applied', 'duplicate']
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..decision import DECISION_ID_SEP, RewardResult
from ..engine import Engine
from ..errors import ConfigurationError

__all__ = ["RewardCoalescer"]

T = TypeVar("T")
_Key = tuple[Engine, str]


@dataclass(slots=True)
class _Waiter:
    decision_id: str
    reward: Any
    slot: int | None
    future: asyncio.Future[RewardResult]


class RewardCoalescer:
    """Record single rewards, coalescing the concurrent ones of one bandit into a batch.

    Lives on one event loop (the worker's); not thread-safe, and needs no lock.

    Parameters
    ----------
    offload
        Run engine calls in the loop's executor (the service's ``offload`` setting) or on the
        loop.
    max_batch
        Most rewards served by one ``record_rewards``; more waiting requests form the next.
    enabled
        False: every reward goes straight to ``Engine.record_reward``.
    """

    def __init__(self, *, offload: bool = True, max_batch: int = 1000,
                 enabled: bool = True) -> None:
        if max_batch < 1:
            raise ConfigurationError(f"max_batch == {max_batch!r}, must be >= 1")
        self.offload = offload
        self.max_batch = int(max_batch)
        self.enabled = enabled
        #: group -> rewards waiting for the batch after the one being served (a group is a
        #: key here exactly while one of its batches is being served)
        self._waiting: dict[_Key, list[_Waiter]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: coalesced batches served and the rewards in them
        self.batches = 0
        self.batched = 0

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` where this coalescer runs engine calls: in the executor, or on the loop."""
        if self.offload:
            return await asyncio.get_running_loop().run_in_executor(None, fn)
        return fn()

    async def record(self, engine: Engine, decision_id: str, reward: Any,
                     slot: int | None = None) -> RewardResult:
        """One reward, as ``engine.record_reward(decision_id, reward, slot=slot)`` (its
        result, or its own error raised)."""
        alone = functools.partial(engine.record_reward, decision_id, reward, slot=slot)
        bandit = decision_id.rpartition(DECISION_ID_SEP)[0] if isinstance(decision_id, str) else ""
        if not self.enabled or not bandit:
            return await self.call(alone)  # not an id: record_reward gives its error
        key: _Key = (engine, bandit)
        waiting = self._waiting.get(key)
        if waiting is None:  # the group is idle: open it for followers
            self._waiting[key] = []
            if not self.offload:
                return await self._lead_on_loop(key, _Waiter(
                    decision_id, reward, slot, asyncio.get_running_loop().create_future()))
            try:  # offloaded: straight to the executor; followers join while it runs
                return await self.call(alone)
            finally:
                self._next(key)
        future: asyncio.Future[RewardResult] = asyncio.get_running_loop().create_future()
        waiting.append(_Waiter(decision_id, reward, slot, future))
        return await future

    async def _lead_on_loop(self, key: _Key, me: _Waiter) -> RewardResult:
        """Lead a group served on the loop: yield one turn, then serve itself and whoever
        joined in one ``record_rewards``."""
        try:
            await asyncio.sleep(0)
        except BaseException:
            self._next(key)  # cancelled: hand the group to who joined
            raise
        followers = self._waiting[key]
        batch = [me, *followers[: self.max_batch - 1]]
        del followers[: self.max_batch - 1]
        await self._serve(key, batch)  # settles every future, then hands the group on
        return me.future.result()

    def _next(self, key: _Key) -> None:
        """The group's batch is done: start the next one with who is waiting, or close it."""
        waiting = self._waiting[key]
        if not waiting:
            del self._waiting[key]
            return
        batch = waiting[: self.max_batch]
        del waiting[: self.max_batch]
        task = asyncio.get_running_loop().create_task(self._serve(key, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, key: _Key, batch: list[_Waiter]) -> None:
        self.batches += 1
        self.batched += len(batch)
        try:
            engine = key[0]
            fn = functools.partial(engine.record_rewards,
                                   [(w.decision_id, w.reward, w.slot) for w in batch])
            try:
                results = await self.call(fn)
            except asyncio.CancelledError:
                for w in batch:
                    w.future.cancel()
                raise
            except BaseException as exc:  # the batch as a whole failed: every member hears it
                for w in batch:
                    if not w.future.done():
                        w.future.set_exception(exc)
                return
            for w, r in zip(batch, results, strict=True):
                if w.future.done():  # the client went away; its reward is recorded anyway
                    continue
                if isinstance(r, BaseException):
                    w.future.set_exception(r)
                else:
                    w.future.set_result(r)
        finally:
            self._next(key)
