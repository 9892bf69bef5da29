"""The grouping machinery shared by the service's coalescers (decisions and rewards).

A coalescer serves single requests, grouping the concurrent ones of one *group* (a hashable
key) that arrive **while a batch of that group is being served** into the next batch, served
by one engine call as soon as the one before it ends. :class:`BatchCoalescer` keeps the
groups, hands a finished group to who is waiting, runs a batch and settles each member's
future with its own result or error; a subclass says how a request enters (:meth:`decide`,
:meth:`record`...) and what one batch is (:meth:`BatchCoalescer._batch_call`).

It lives on one event loop (the worker's); it is not thread-safe and needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from ..errors import ConfigurationError

__all__ = ["BatchCoalescer"]

T = TypeVar("T")


class Waiter(Protocol):
    """A request waiting in a group: what the batch needs of it, and its future."""

    future: asyncio.Future[Any]


W = TypeVar("W", bound=Waiter)


class BatchCoalescer(Generic[W]):
    """Groups, batches and futures; subclasses define the entry points and the batch call.

    Parameters
    ----------
    offload
        Run engine calls in the loop's executor (the service's ``offload`` setting) or on the
        loop.
    max_batch
        Most requests served by one batch; more waiting requests form the next one.
    enabled
        False: every request goes straight to the engine (``TSBANDIT_COALESCE=false``).
    """

    def __init__(self, *, offload: bool = True, max_batch: int = 1000,
                 enabled: bool = True) -> None:
        if max_batch < 1:
            raise ConfigurationError(f"max_batch == {max_batch!r}, must be >= 1")
        self.offload = offload
        self.max_batch = int(max_batch)
        self.enabled = enabled
        #: group -> requests waiting for the batch after the one being served (a group is a
        #: key here exactly while one of its batches is being served)
        self._waiting: dict[Hashable, list[W]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: coalesced batches served (failed ones too) and the requests in them
        self.batches = 0
        self.batched = 0

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` where this coalescer runs engine calls: in the executor, or on the loop."""
        if self.offload:
            return await asyncio.get_running_loop().run_in_executor(None, fn)
        return fn()

    def _batch_call(self, key: Any, batch: list[W]) -> Callable[[], Sequence[Any]]:
        """The engine call serving ``batch`` of group ``key``: one result or error per member,
        in order (raising fails every member)."""
        raise NotImplementedError

    async def _alone_leading(self, key: Hashable, alone: Callable[[], T]) -> T:
        """Serve an idle group's first request alone (offloaded: followers join while it
        runs), then hand the group to them."""
        try:
            return await self.call(alone)
        finally:
            self._next(key)

    async def _yield_to_followers(self, key: Hashable) -> list[W]:
        """On the loop, a leader yields one turn so that the requests the server has already
        parsed join its group; returns who joined (cancelled: the group goes to them)."""
        try:
            await asyncio.sleep(0)
        except BaseException:
            self._next(key)
            raise
        return self._waiting[key]

    async def _serve_with(self, key: Hashable, me: W) -> Any:
        """Serve ``me`` with up to ``max_batch - 1`` of its group's followers in one batch."""
        followers = self._waiting[key]
        batch = [me, *followers[: self.max_batch - 1]]
        del followers[: self.max_batch - 1]
        await self._serve(key, batch)  # settles every future, then hands the group on
        return me.future.result()

    def _next(self, key: Hashable) -> None:
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

    async def _serve(self, key: Hashable, batch: list[W]) -> None:
        self.batches += 1
        self.batched += len(batch)
        try:
            try:
                results = await self.call(self._batch_call(key, batch))
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
                if w.future.done():  # the client went away; what it asked for is done anyway
                    continue
                if isinstance(r, BaseException):
                    w.future.set_exception(r)
                else:
                    w.future.set_result(r)
        finally:
            self._next(key)
