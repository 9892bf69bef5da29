"""Coalescing of concurrent single decisions into one ``Engine.decide_batch`` (DataLoader-style).

Under load many ``POST /v1/bandits/{name}/decisions`` for the same bandit are in flight at once.
Each alone costs a store read, a posterior draw and a store write. The coalescer groups the
requests with the same ``(engine, bandit, eligible arms, k, with or without context)`` that
arrive **while a batch of that group is being served** and serves them, as soon as that batch
is done, with one ``decide_batch``: one store read, one vectorized draw -- an independent
posterior draw per user, exactly what separate decisions on the same snapshot would draw -- and
one write of all the pending decisions (``Store.put_pending_many``). Contexts of a contextual
bandit stack into ``(n, d)``.

No request waits for a timer: with the engine offloaded to the executor (the default), a request
whose group is idle goes straight to the engine, and a batch starts the moment the one before it
ends. With the engine on the loop (``offload=False``) nothing can arrive while a batch is being
served, so a request whose group is idle leads it: it yields one turn of the loop, which lets
the requests already parsed join, and is served with them.
Every member draws from a snapshot read after it arrived, so coalescing adds no staleness.

One bad request cannot fail the others: a request joins a batch only if it is valid for the
engine's cached configuration of the bandit (:meth:`Engine.fits_cached`); one that is not is
served alone, and fails alone. Should the configuration change between that check and the
batch (an arm retired by another worker), the batch is retried member by member, each with its
own answer. An error of the batch as a whole -- the store down (503), the bandit deleted (404)
-- goes to every member.

>>> import asyncio
>>> from tsbandit.engine import BanditSpec, Engine
>>> engine = Engine.open("memory://", seed=0)
>>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
>>> async def many():
...     c = DecisionCoalescer(offload=True, max_batch=100)
...     return await asyncio.gather(*(c.decide(engine, "ads") for _ in range(10)))
>>> len({d.decision_id for d in asyncio.run(many())})
10
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import Engine, EngineDecision
from ..errors import BanditNotFoundError, StoreUnavailableError, TsbanditError
from .batching import BatchCoalescer

__all__ = ["DecisionCoalescer"]

_Key = tuple[Engine, str, "tuple[str, ...] | None", int, bool]


@dataclass(slots=True)
class _Waiter:
    context: Any
    user_id: str | None
    future: asyncio.Future[EngineDecision]


class DecisionCoalescer(BatchCoalescer[_Waiter]):
    """Serve single decisions, coalescing the concurrent ones of one group into a batch.

    Lives on one event loop (the worker's); not thread-safe, and needs no lock. Parameters:
    :class:`~tsbandit.service.batching.BatchCoalescer`'s (``max_batch``: most decisions served
    by one ``decide_batch``; ``enabled=False``: every request goes straight to
    ``Engine.decide``, ``TSBANDIT_COALESCE=false``).
    """

    async def decide(self, engine: Engine, bandit: str, context: Any = None,
                     eligible: Sequence[str] | None = None, k: int = 1,
                     user_id: str | None = None, *,
                     idempotency_key: str | None = None) -> EngineDecision:
        """One decision, as ``engine.decide(bandit, context, eligible, k, user_id,
        idempotency_key=...)``. A request with an idempotency key is never coalesced: its
        decision id comes from the key, and it may be a replay (served alone, as is)."""
        if idempotency_key is not None:
            return await self.call(functools.partial(
                engine.decide, bandit, context, eligible, k, user_id,
                idempotency_key=idempotency_key))
        alone = functools.partial(engine.decide, bandit, context, eligible, k, user_id)
        if not self.enabled:
            return await self.call(alone)
        key: _Key = (engine, bandit, None if eligible is None else tuple(eligible), k,
                     context is not None)
        waiting = self._waiting.get(key)
        if waiting is None:  # the group is idle: open it for followers
            self._waiting[key] = []
            if not self.offload:
                return await self._lead_on_loop(key, alone, engine, bandit, context, eligible,
                                                k, user_id)
            return await self._alone_leading(key, alone)
        if not engine.fits_cached(bandit, context, eligible, k):
            return await self.call(alone)  # cannot join (invalid, or nothing cached): alone
        future: asyncio.Future[EngineDecision] = asyncio.get_running_loop().create_future()
        waiting.append(_Waiter(context, user_id, future))
        return await future

    async def _lead_on_loop(self, key: _Key, alone: Callable[[], EngineDecision],
                            engine: Engine, bandit: str, context: Any,
                            eligible: Sequence[str] | None, k: int,
                            user_id: str | None) -> EngineDecision:
        """Lead a group served on the loop: wait one turn of the loop, then serve everyone.

        On the loop nothing else runs while the engine does, so no request could join a batch
        that is being served; instead the leader yields once, so the requests the server has
        already parsed reach :meth:`decide` and join it, and then serves itself and them in
        one ``decide_batch``. A leader with no followers is served alone, as offloaded ones are.
        """
        followers = await self._yield_to_followers(key)
        if not followers or not engine.fits_cached(bandit, context, eligible, k):
            try:
                return alone()
            finally:
                self._next(key)
        me = _Waiter(context, user_id, asyncio.get_running_loop().create_future())
        result: EngineDecision = await self._serve_with(key, me)
        return result

    def _batch_call(self, key: _Key, batch: list[_Waiter]
                    ) -> Callable[[], Sequence[Any]]:
        engine, bandit, eligible, k, _ = key
        return functools.partial(_decide_batch, engine, bandit,
                                 None if eligible is None else list(eligible), k, batch)


def _decide_batch(engine: Engine, bandit: str, eligible: list[str] | None, k: int,
                  batch: list[_Waiter]) -> list[EngineDecision | TsbanditError]:
    """One ``decide_batch`` for the group (runs in the executor, or on the loop)."""
    contextual = batch[0].context is not None
    user_ids = [w.user_id for w in batch]
    try:
        return list(engine.decide_batch(
            bandit, [w.context for w in batch] if contextual else None, eligible, k,
            None if all(u is None for u in user_ids) else user_ids,
            n=None if contextual else len(batch)))
    except (StoreUnavailableError, BanditNotFoundError):
        raise  # the store or the bandit: the same for every member
    except TsbanditError:
        if len(batch) == 1:
            raise
    # a member no longer fits (the configuration changed after it was admitted): each alone,
    # each with its own answer
    out: list[EngineDecision | TsbanditError] = []
    for w in batch:
        try:
            out.append(engine.decide(bandit, w.context, eligible, k, w.user_id))
        except TsbanditError as exc:  # the store too: who got a decision keeps it
            out.append(exc)
    return out
