"""A store decorator that reports every call to an observer: observability without a patch.

:class:`ObservedStore` wraps any :class:`~tsbandit.stores.base.Store` and is one itself: each
call of the protocol is delegated unchanged and timed, failures of the backend are counted,
and the writes that make a decision, a reward or an expiry durable are reported *after* the
wrapped store committed them. What happens with those reports is the observer's business (the
service's :mod:`tsbandit.service.metrics` turns them into Prometheus counters and JSON log
lines); this module knows nothing of either.

The engine is built over the decorator when observability is wanted (``Engine.open(url,
observer=...)``, or ``engine.observed(observer)`` for an engine built elsewhere), so every
store call the engine makes -- the sweep's claims and settlements included -- goes through it.

>>> from tsbandit.stores.memory import MemoryStore
>>> class Calls(StoreObserver):
...     def __init__(self): self.ops = []
...     def timed(self, operation, seconds): self.ops.append(operation)
>>> calls = Calls()
>>> store = ObservedStore(MemoryStore(), calls)
>>> _ = store.create_bandit("b", {}, {}); store.exists("b")
True
>>> calls.ops
['create_bandit', 'exists']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import DecisionExpiredError, StoreUnavailableError, TsbanditError
from .base import (
    ClaimedDecision,
    NewDecision,
    RewardItem,
    RewardResult,
    Snapshot,
    Store,
    StoreMixin,
)

__all__ = ["ObservedStore", "StoreObserver"]

T = TypeVar("T")


class StoreObserver:
    """What an :class:`ObservedStore` reports; every method does nothing here -- subclass and
    override what you need. Called in the thread of the store call, so keep them cheap."""

    def timed(self, operation: str, seconds: float) -> None:
        """One call of the store protocol (``read``, ``put_pending_many``...) took ``seconds``
        (successful or not)."""

    def failed(self, operation: str, error: str) -> None:
        """A call failed in the backend: ``error`` is ``"unavailable"`` for
        :class:`~tsbandit.errors.StoreUnavailableError`, else the exception's class name.
        Domain answers (unknown bandit, expired decision, conflicts) are not failures."""

    def decided(self, bandit: str, decision_id: str, payload: Mapping[str, Any],
                event: Mapping[str, Any] | None) -> None:
        """A decision was recorded (``payload``: the pending decision as stored, with its
        ``arm``, ``ranking`` and ``propensity``; ``event``: its event-log entry, if any)."""

    def rewarded(self, bandit: str, decision_id: str, arm: str, status: str,
                 reward: Any, model_version: int) -> None:
        """A reward was consumed: ``status`` is ``applied``, ``duplicate`` (nothing changed) or
        ``arm_retired`` (consumed, not learned)."""

    def refused(self, bandit: str, decision_id: str, reason: str) -> None:
        """A reward was refused; ``reason`` is ``expired`` (after the decision's window)."""

    def settled(self, bandit: str, decision_id: str, arm: str, reward: Any) -> None:
        """The sweep settled a decision whose window passed (``reward``: the default reward
        applied, or None)."""


def _timed(op: str) -> Callable[..., Any]:
    """A protocol method that delegates ``op`` to the wrapped store, timed."""
    def method(self: ObservedStore, *args: Any, **kwargs: Any) -> Any:
        return self._call(op, getattr(self.inner, op), *args, **kwargs)

    method.__name__ = op
    method.__doc__ = f"``{op}`` of the wrapped store, timed."
    return method


class ObservedStore(StoreMixin):
    """A :class:`~tsbandit.stores.base.Store` that reports every call of the wrapped ``inner``
    store to ``observer`` (a :class:`StoreObserver`).

    Calls are delegated unchanged and errors propagate as raised. The wrapped store's methods
    are looked up on every call (an instance attribute replaced on ``inner`` is honoured).
    :meth:`sweep_expired` is the protocol's own loop (:class:`StoreMixin`) run over this
    decorator, so each claim and each settlement is observed.
    """

    def __init__(self, inner: Store, observer: StoreObserver) -> None:
        self.inner = inner
        self.observer = observer
        #: the wrapped store's URL
        self.url = inner.url

    def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except StoreUnavailableError:
            self.observer.failed(op, "unavailable")
            raise
        except TsbanditError:
            raise  # an answer (not found, expired, conflict...), not a failure of the store
        except Exception as exc:
            self.observer.failed(op, type(exc).__name__)
            raise
        finally:
            self.observer.timed(op, time.perf_counter() - start)

    # -- delegated and timed -----------------------------------------------------------------
    create_bandit = _timed("create_bandit")
    exists = _timed("exists")
    list_bandits = _timed("list_bandits")
    delete_bandit = _timed("delete_bandit")
    read = _timed("read")
    replace = _timed("replace")
    add = _timed("add")
    scale = _timed("scale")
    decay = _timed("decay")
    get_pending = _timed("get_pending")
    get_pending_many = _timed("get_pending_many")
    claim_expired = _timed("claim_expired")
    purge = _timed("purge")
    get_assignment = _timed("get_assignment")
    assign = _timed("assign")
    append_event = _timed("append_event")
    iter_events = _timed("iter_events")
    read_events = _timed("read_events")
    export_events = _timed("export_events")
    ping = _timed("ping")
    health = _timed("health")
    close = _timed("close")

    # -- the writes that are reported as well as timed ---------------------------------------
    def put_pending(self, name: str, decision_id: str, payload: Mapping[str, Any],
                    deadline: float, *, event: Mapping[str, Any] | None = None) -> None:
        """``put_pending`` of the wrapped store; the decision is reported once recorded."""
        self._call("put_pending", self.inner.put_pending, name, decision_id, payload, deadline,
                   event=event)
        self.observer.decided(name, decision_id, payload, event)

    def put_pending_many(self, name: str, items: Sequence[NewDecision], *,
                         if_at: tuple[int, int] | None = None) -> Snapshot | None:
        """``put_pending_many`` of the wrapped store; each decision is reported once all are
        recorded (none when the bandit had moved from ``if_at``)."""
        # (if_at passed only when given: a wrapped store of the older signature still works)
        moved = self._call("put_pending_many", self.inner.put_pending_many, name, items,
                           **({} if if_at is None else {"if_at": if_at}))
        if moved is not None:
            return moved
        decided = self.observer.decided
        for item in items:
            d = NewDecision(*item)
            decided(name, d.decision_id, d.payload, d.event)
        return None

    def apply_reward(self, name: str, decision_id: str, deltas: Mapping[str, Any],
                     event: Mapping[str, Any] | None, now: float, *,
                     config_version: int | None = None,
                     outcome: float | None = None) -> RewardResult:
        """``apply_reward`` of the wrapped store (``outcome`` passed on as given); the result
        (or the refusal of a late reward) is reported."""
        try:
            res = self._call("apply_reward", self.inner.apply_reward, name, decision_id, deltas,
                             event, now, config_version=config_version, outcome=outcome)
        except DecisionExpiredError:
            self.observer.refused(name, decision_id, "expired")
            raise
        self._rewarded(name, decision_id, event, res)
        return res

    def apply_reward_many(self, name: str, items: Sequence[RewardItem]
                          ) -> list[RewardResult | TsbanditError]:
        """``apply_reward_many`` of the wrapped store; each item is reported as
        :meth:`apply_reward` reports it (a result, or the refusal of a late reward)."""
        out = self._call("apply_reward_many", self.inner.apply_reward_many, name, items)
        for item, res in zip(items, out, strict=True):
            it = RewardItem(*item)
            if isinstance(res, DecisionExpiredError):
                self.observer.refused(name, it.decision_id, "expired")
            elif isinstance(res, RewardResult):
                self._rewarded(name, it.decision_id, it.event, res)
        return out

    def _rewarded(self, name: str, decision_id: str, event: Mapping[str, Any] | None,
                  res: RewardResult) -> None:
        ev = event or {}
        status = "arm_retired" if res.status == "applied" and ev.get("arm_retired") else res.status
        self.observer.rewarded(name, decision_id, str(ev.get("arm")), status, ev.get("reward"),
                               res.version)

    def settle_expired(self, name: str, claim: ClaimedDecision,
                       deltas: Mapping[str, Any] | None, event: Mapping[str, Any] | None, *,
                       config_version: int | None = None) -> bool:
        """``settle_expired`` of the wrapped store; a settled decision is reported."""
        done = self._call("settle_expired", self.inner.settle_expired, name, claim, deltas,
                          event, config_version=config_version)
        if done:
            self.observer.settled(name, claim.decision_id, str(claim.payload.get("arm")),
                                  None if event is None else event.get("reward"))
        return bool(done)
