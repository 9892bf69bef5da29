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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..decision import DECISION_ID_SEP, RewardResult
from ..engine import Engine
from .batching import BatchCoalescer

__all__ = ["RewardCoalescer"]

_Key = tuple[Engine, str]


@dataclass(slots=True)
class _Waiter:
    decision_id: str
    reward: Any
    slot: int | None
    future: asyncio.Future[RewardResult]


class RewardCoalescer(BatchCoalescer[_Waiter]):
    """Record single rewards, coalescing the concurrent ones of one bandit into a batch.

    Lives on one event loop (the worker's); not thread-safe, and needs no lock. Parameters:
    :class:`~tsbandit.service.batching.BatchCoalescer`'s (``max_batch``: most rewards served by
    one ``record_rewards``; ``enabled=False``: every reward goes straight to
    ``Engine.record_reward``).
    """

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
            if not self.offload:  # on the loop: yield one turn, then serve whoever joined
                me = _Waiter(decision_id, reward, slot,
                             asyncio.get_running_loop().create_future())
                await self._yield_to_followers(key)
                result: RewardResult = await self._serve_with(key, me)
                return result
            return await self._alone_leading(key, alone)
        future: asyncio.Future[RewardResult] = asyncio.get_running_loop().create_future()
        waiting.append(_Waiter(decision_id, reward, slot, future))
        return await future

    def _batch_call(self, key: _Key, batch: list[_Waiter]) -> Callable[[], Sequence[Any]]:
        return functools.partial(key[0].record_rewards,
                                 [(w.decision_id, w.reward, w.slot) for w in batch])
