"""The engine's cache of its own recent decisions' payloads, so a reward skips a read.

A reward needs what its decision recorded (the arm, the context, the configuration version
it was made under, the propensity...): the pending record's *payload*, which the store writes
once and never changes. The worker that made a decision already has it, so
:meth:`Engine.decide_batch <tsbandit.engine.Engine.decide_batch>` keeps each decision's payload
and deadline here, and a reward for it goes straight to the store's atomic
:meth:`~tsbandit.stores.base.Store.apply_reward` -- one round trip -- which alone decides
whether it is applied, a duplicate, expired or unknown (statuses are never cached), fenced by
the configuration version as ever. A miss (another worker decided, a restart, an entry evicted)
reads the record as before.

What is cached and what is not:

* only decisions with random ids (``uuid4``): an idempotency key's decision ids are derived
  from the key, so a bandit deleted and re-created under the same name (by any worker) could
  give the same id to another decision; a random id is never reused, so a stale entry can only
  answer for a decision the store no longer has (the store says "not found");
* entries of a bandit are dropped when this engine deletes it or meets it unknown, and all of
  them when the engine's store is replaced;
* bounded by count (least recently used first out); ``size=0`` turns the cache off;
* kept as their JSON text (what the store holds, so :meth:`PayloadCache.get` decodes the very
  payload a read would give, ~2 us): a string is no container, and an entry -- a plain tuple of
  strings and a float -- leaves the garbage collector's care at its first collection. Kept as
  dicts and lists, a full cache was ~180,000 containers that every full collection walked
  (~30 ms of a worker's time, every few seconds under load: the tail of the service's
  latencies), each entry's promotion to the oldest generation bringing the next one closer.

>>> cache = PayloadCache(2)
>>> cache.put_many("ads", [("ads~1", {"arm": "a"}, 10.0), ("ads~2", {"arm": "b"}, 10.0)])
>>> cache.get("ads~1").payload["arm"]
'a'
>>> cache.put_many("ads", [("ads~3", {"arm": "a"}, 10.0)])  # evicts ads~2, the least recent
>>> cache.get("ads~2") is None, len(cache)
(True, 2)
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ConfigurationError
from ..stores.base import PendingDecision

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["DEFAULT_PAYLOAD_CACHE", "CachedPayload", "PayloadCache", "first_record"]

#: Decisions whose payloads an engine keeps by default (a few hundred bytes each).
DEFAULT_PAYLOAD_CACHE = 65_536


class CachedPayload(NamedTuple):
    """A decision's pending payload and deadline as this engine recorded them."""

    bandit: str
    payload: dict[str, Any]  # a fresh copy for each get
    deadline: float


class PayloadCache:
    """A bounded, thread-safe LRU of decision id -> :class:`CachedPayload` (see the module).

    Parameters
    ----------
    size
        Most decisions kept (0: keep none).
    """

    def __init__(self, size: int = DEFAULT_PAYLOAD_CACHE) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigurationError(f"payload_cache == {size!r}, must be an int >= 0")
        self.size = size
        #: id -> (bandit, payload JSON, deadline): a plain tuple of atoms, which the collector
        #: stops tracking (a NamedTuple it never does)
        self._items: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, decision_id: str) -> CachedPayload | None:
        """The decision's payload if this engine recorded it and still keeps it."""
        with self._lock:
            hit = self._items.get(decision_id)
            if hit is not None:
                self._items.move_to_end(decision_id)
        return None if hit is None else CachedPayload(hit[0], json.loads(hit[1]), hit[2])

    def put_many(self, bandit: str,
                 entries: Iterable[tuple[str, Mapping[str, Any], float]]) -> None:
        """Keep ``(decision id, payload, deadline)`` of decisions just recorded in the store."""
        if not self.size:
            return
        with self._lock:
            items = self._items
            for did, payload, deadline in entries:
                items[did] = (bandit, _dumps(payload), deadline)
            while len(items) > self.size:
                items.popitem(last=False)

    def discard(self, decision_id: str) -> None:
        """Forget one decision (the store no longer knows it)."""
        with self._lock:
            self._items.pop(decision_id, None)

    def drop_bandit(self, bandit: str) -> None:
        """Forget every decision of ``bandit`` (deleted, or found unknown)."""
        with self._lock:
            for did in [d for d, e in self._items.items() if e[0] == bandit]:
                del self._items[did]

    def clear(self) -> None:
        """Forget everything (the engine's store was replaced)."""
        with self._lock:
            self._items.clear()


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def first_record(engine: Engine, bandit: str, decision_id: str, *,
                 status: bool = False) -> PendingDecision:
    """The decision's own pending record for a metric or slot reward: from the payload cache
    when this engine made it and the caller needs no ``status`` (the record then says
    "pending", a placeholder nobody reads), else from the store."""
    hit = None if status else engine._payloads.get(decision_id)
    if hit is not None and hit.bandit == bandit:
        return PendingDecision(decision_id, hit.payload, hit.deadline, "pending")
    return engine.store.get_pending(bandit, decision_id)
