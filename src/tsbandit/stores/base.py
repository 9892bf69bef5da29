"""The store lifecycle, written once: :class:`BaseStore` validates and encodes every input, then
calls a few primitives that each backend supplies (the shape of httpx's
``BaseTransport.handle_request``).

The semantics of a store are :class:`~tsbandit.stores.protocol.Store`'s (see
:mod:`tsbandit.stores.protocol`); the values it takes and returns are in
:mod:`tsbandit.stores.records`, the checks in :mod:`tsbandit.stores.validation`. Every name that
used to be importable from here still is.

A backend (``MemoryStore``, ``SQLiteStore``, ``RedisStore``) subclasses :class:`BaseStore` and
writes only what must happen inside its atomic step (a lock, a transaction, a Lua script):

==================================  ===========================================================
primitive                           gets (already validated and encoded)
==================================  ===========================================================
``_create(name, config, arrays,    config JSON, checked float64 arrays, the starting
cver)``                             ``config_version``
``_replace(name, config, arrays,    arrays or None, the expected ``config_version`` or None
expected)``
``_add(name, deltas, cver)``        checked deltas
``_scale(name, gamma)``             a finite gamma >= 0
``_decay(name, half_life, now)``    finite floats
``_put_pending(name, rows, if_at)``  :class:`EncodedDecision` rows (one for ``put_pending``),
                                    ``(version, config_version)`` ints or None
``_apply_reward(name, id, deltas,   event JSON or None, a finite ``now``, the outcome (a finite
event, now, cver, outcome)``        float or None)
``_apply_reward_many(name, rows)``  :class:`EncodedReward` rows (optional: the default calls
                                    ``_apply_reward`` per row; override for one round trip)
``_get_pending_many(name, ids)``    the ids as text (optional, likewise)
``_claim_expired(name, now,         a lease end, a limit >= 1, a fresh token
lease_until, limit, token)``
``_settle_expired(name, claim,      checked deltas (maybe empty), event JSON or None
deltas, event, cver)``
``_purge(name, cutoff, limit,       ``cutoff = now - retention``, a limit >= 1, a finite ``now``
now)``                              (assignments with ``expires_at <= now`` go)
``_append_event(name, event)``      event JSON
``_read_events(name, start,         the backend's position (``_cursor(after)``: a row number
limit)``                            unless the backend says otherwise), a limit >= 1
``_get_assignment(name, key, now)`` a valid key, a finite ``now``
``_assign(name, a)``                an :class:`EncodedAssignment` (payload JSON, its id and
                                    ``replace`` as JSON text, ``expires_at > now``)
==================================  ===========================================================

plus the methods that need no validation: ``read``, ``exists``, ``list_bandits``,
``delete_bandit``, ``get_pending``, ``ping`` and ``close``. The rules a primitive applies inside
its atomic step (is this reward a repeat? is this claim still mine?) are in
:mod:`tsbandit.stores.lifecycle`.

>>> from tsbandit.stores import MemoryStore
>>> isinstance(MemoryStore(), BaseStore)
True
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import numpy as np

# DecisionExistsError and VersionConflictError live in tsbandit.errors; re-exported here.
from ..errors import (
    BanditNotFoundError,
    DecisionExistsError,
    DecisionNotFoundError,
    StoreUnavailableError,
    TsbanditError,
    VersionConflictError,
)
from .lifecycle import bandit_not_found
from .protocol import Store
from .records import (
    DEFAULT_RETENTION,
    Assignment,
    ClaimedDecision,
    DeltasFn,
    EncodedAssignment,
    EncodedDecision,
    EncodedReward,
    EventPage,
    NewDecision,
    PendingDecision,
    PurgeResult,
    RewardItem,
    RewardResult,
    Snapshot,
)
from .validation import (
    check_arrays,
    check_assignment_key,
    check_decision_id,
    check_deltas,
    check_events_maxlen,
    check_gamma,
    check_half_life,
    check_if_at,
    check_int_cursor,
    check_limit,
    check_name,
    check_outcome,
    check_retention,
    check_start_config_version,
    check_time,
    dumps,
    dumps_event,
    encode_assignment,
    encode_new_decisions,
)

__all__ = [  # the records and the protocol are re-exported: they used to live here
    "DEFAULT_RETENTION", "Assignment", "BaseStore", "ClaimedDecision", "DecisionExistsError",
    "DeltasFn", "EventPage", "NewDecision", "PendingDecision", "PurgeResult", "RewardItem",
    "RewardResult",
    "Snapshot", "Store", "StoreMixin", "VersionConflictError",
]


# ---------------------------------------------------------------------------------------------
# Methods derived from the public protocol (a decorator of a Store may reuse them too)
# ---------------------------------------------------------------------------------------------
class StoreMixin:
    """Methods every store derives from the protocol's other methods."""

    def health(self) -> dict[str, Any]:
        """``{"ok": True}`` when :meth:`ping` answers (a store with more to say overrides it)."""
        self.ping()  # type: ignore[attr-defined]
        return {"ok": True}

    def sweep_expired(self, name: str, now: float, deltas_fn: DeltasFn, *, limit: int = 1000,
                      lease: float = 30.0, config_version: int | None = None) -> int:
        """Claim expired decisions and settle each with ``deltas_fn(claim)``; the count."""
        settled = 0
        for claim in self.claim_expired(name, now, limit=limit, lease=lease):  # type: ignore[attr-defined]
            deltas, event = deltas_fn(claim)
            if self.settle_expired(  # type: ignore[attr-defined]
                name, claim, deltas, event, config_version=config_version
            ):
                settled += 1
        return settled

    def iter_events(self, name: str, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        """The bandit's events in append order, read ``batch_size`` at a time."""
        # the first page is read now, so an unknown bandit raises here, not at iteration
        size = max(int(batch_size), 1)
        first = self.read_events(name, limit=size)  # type: ignore[attr-defined]
        return self._pages(name, first, size)

    def _pages(self, name: str, page: EventPage, size: int) -> Iterator[dict[str, Any]]:
        while True:
            yield from page.events
            if len(page.events) < size:
                return
            page = self.read_events(name, after=page.cursor, limit=size)  # type: ignore[attr-defined]

    def export_events(self, name: str, fp: IO[str]) -> int:
        """Write the events as JSON Lines to ``fp``; return the number written."""
        n = 0
        for event in self.iter_events(name):
            fp.write(json.dumps(event, separators=(",", ":"), allow_nan=False))
            fp.write("\n")
            n += 1
        return n

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# The lifecycle: validate and encode once, then call the backend's primitives
# ---------------------------------------------------------------------------------------------
class BaseStore(StoreMixin, ABC):
    """The public :class:`~tsbandit.stores.protocol.Store` methods, written once.

    Parameters
    ----------
    retention
        Seconds a consumed decision is remembered after its deadline.
    events_maxlen
        Most events kept per bandit (``None`` keeps all; each backend says when it trims).
    """

    url: str

    def __init__(self, *, retention: float = DEFAULT_RETENTION,
                 events_maxlen: int | None = None) -> None:
        self.retention = check_retention(retention)
        self.events_maxlen = check_events_maxlen(events_maxlen)

    # -- bandits ----------------------------------------------------------------------------
    def create_bandit(self, name: str, config: Mapping[str, Any],
                      arrays: Mapping[str, np.ndarray], *, config_version: int = 0) -> Snapshot:
        return self._create(check_name(name), dumps(config, "config"), check_arrays(arrays),
                            check_start_config_version(config_version))

    def replace(self, name: str, config: Mapping[str, Any],
                arrays: Mapping[str, np.ndarray] | None = None, *,
                expected_config_version: int | None = None) -> Snapshot:
        cfg = dumps(config, "config")
        arrs = None if arrays is None else check_arrays(arrays)
        return self._replace(name, cfg, arrs, expected_config_version)

    # -- statistics -------------------------------------------------------------------------
    def add(self, name: str, deltas: Mapping[str, np.ndarray], *,
            config_version: int | None = None) -> int:
        return self._add(name, check_deltas(deltas), config_version)

    def scale(self, name: str, gamma: float) -> int:
        return self._scale(name, check_gamma(gamma))

    def decay(self, name: str, half_life: float, now: float) -> float:
        return self._decay(name, check_half_life(half_life), check_time("now", now))

    # -- pending decisions ------------------------------------------------------------------
    def put_pending(self, name: str, decision_id: str, payload: Mapping[str, Any],
                    deadline: float, *, event: Mapping[str, Any] | None = None) -> None:
        row = EncodedDecision(check_decision_id(decision_id), dumps(payload, "payload"),
                              check_time("deadline", deadline), dumps_event(event))
        self._put_pending(name, [row])

    def put_pending_many(self, name: str, items: Sequence[NewDecision], *,
                         if_at: tuple[int, int] | None = None) -> Snapshot | None:
        rows = encode_new_decisions(items)
        at = None if if_at is None else check_if_at(if_at)
        return self._put_pending(name, rows, at) if rows else None

    def apply_reward(self, name: str, decision_id: str, deltas: Mapping[str, np.ndarray],
                     event: Mapping[str, Any] | None, now: float, *,
                     config_version: int | None = None,
                     outcome: float | None = None) -> RewardResult:
        ds, e, o = check_deltas(deltas), dumps_event(event), check_outcome(outcome)
        return self._apply_reward(name, decision_id, ds, e, check_time("now", now),
                                  config_version, o)

    def get_pending_many(self, name: str, decision_ids: Sequence[str]
                         ) -> list[PendingDecision | DecisionNotFoundError]:
        ids = [str(i) for i in decision_ids]
        if not ids:
            if not self.exists(name):
                raise bandit_not_found(name)
            return []
        return self._get_pending_many(name, ids)

    def apply_reward_many(self, name: str, items: Sequence[RewardItem]
                          ) -> list[RewardResult | TsbanditError]:
        out: list[RewardResult | TsbanditError | None] = [None] * len(items)
        rows: list[EncodedReward] = []
        at: list[int] = []
        for i, item in enumerate(items):
            it = RewardItem(*item)
            try:  # an item refused here fails alone
                rows.append(EncodedReward(
                    str(it.decision_id), check_deltas(it.deltas), dumps_event(it.event),
                    check_time("now", it.now), it.config_version, check_outcome(it.outcome)))
            except TsbanditError as exc:
                out[i] = exc
                continue
            at.append(i)
        if rows:
            for i, res in zip(at, self._apply_reward_many(name, rows), strict=True):
                out[i] = res
        elif not self.exists(name):
            raise bandit_not_found(name)
        return [r for r in out if r is not None]

    def claim_expired(self, name: str, now: float, *, limit: int = 100,
                      lease: float = 30.0) -> list[ClaimedDecision]:
        t = check_time("now", now)
        lease_until = t + check_time("lease", lease)
        if int(limit) <= 0:
            if not self.exists(name):
                raise bandit_not_found(name)
            return []
        return self._claim_expired(name, t, lease_until, int(limit), uuid.uuid4().hex)

    def settle_expired(self, name: str, claim: ClaimedDecision,
                       deltas: Mapping[str, np.ndarray] | None,
                       event: Mapping[str, Any] | None, *,
                       config_version: int | None = None) -> bool:
        return self._settle_expired(name, claim, check_deltas(deltas), dumps_event(event),
                                    config_version)

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> PurgeResult:
        t = check_time("now", now)
        return self._purge(name, t - self.retention, check_limit(limit), t)

    # -- sticky assignments -----------------------------------------------------------------
    def get_assignment(self, name: str, key: str, now: float) -> Assignment | None:
        return self._get_assignment(name, check_assignment_key(key), check_time("now", now))

    def assign(self, name: str, key: str, payload: Mapping[str, Any], expires_at: float,
               now: float, *, replace: str | None = None) -> Assignment:
        return self._assign(name, encode_assignment(key, payload, expires_at, now, replace))

    # -- events -----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        self._append_event(name, dumps(event, "event"))

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        start = self._cursor(after)
        rows = self._read_events(name, start, check_limit(limit))
        if not rows:
            return EventPage([], after)
        last = rows[-1][0]
        cursor = last.decode() if isinstance(last, bytes) else str(last)
        return EventPage([json.loads(e) for _, e in rows], cursor)

    # -- the primitives ---------------------------------------------------------------------
    @abstractmethod
    def read(self, name: str) -> Snapshot: ...

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def list_bandits(self) -> list[str]: ...

    @abstractmethod
    def delete_bandit(self, name: str) -> None: ...

    @abstractmethod
    def get_pending(self, name: str, decision_id: str) -> PendingDecision: ...

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _create(self, name: str, config: str, arrays: dict[str, np.ndarray],
                cver: int) -> Snapshot:
        """Create the bandit at version 0, configuration version ``cver``
        (``BanditExistsError`` when present) and read it back."""

    @abstractmethod
    def _replace(self, name: str, config: str, arrays: dict[str, np.ndarray] | None,
                 expected: int | None) -> Snapshot:
        """Swap the configuration (and arrays), bump both versions, read it back."""

    @abstractmethod
    def _add(self, name: str, deltas: dict[str, np.ndarray], cver: int | None) -> int:
        """Check ``cver`` and the shapes, add the finite sums; the new version."""

    @abstractmethod
    def _scale(self, name: str, gamma: float) -> int:
        """Multiply every array by ``gamma``; the new version."""

    @abstractmethod
    def _decay(self, name: str, half_life: float, now: float) -> float:
        """Scale by :func:`~tsbandit.stores.validation.decay_factor`, move ``decayed_at``."""

    @abstractmethod
    def _put_pending(self, name: str, rows: list[EncodedDecision],
                     if_at: tuple[int, int] | None = None) -> Snapshot | None:
        """Store every row as pending and append its event, all or nothing
        (``DecisionExistsError`` for a known id); with ``if_at``, only if the bandit is at
        that ``(version, config_version)``, else nothing and its snapshot."""

    @abstractmethod
    def _apply_reward(self, name: str, decision_id: str, deltas: dict[str, np.ndarray],
                      event: str | None, now: float, cver: int | None,
                      outcome: float | None) -> RewardResult:
        """:func:`~tsbandit.stores.lifecycle.reward_verdict`, then add, mark rewarded with
        ``outcome`` and append, all or nothing (a duplicate keeps the first outcome)."""

    def _get_pending_many(self, name: str, ids: list[str]
                          ) -> list[PendingDecision | DecisionNotFoundError]:
        """:meth:`get_pending` of each id (a backend overrides it with one round trip)."""
        out: list[PendingDecision | DecisionNotFoundError] = []
        for i in ids:
            try:
                out.append(self.get_pending(name, i))
            except DecisionNotFoundError as exc:
                out.append(exc)
        return out

    def _apply_reward_many(self, name: str, rows: list[EncodedReward]
                           ) -> list[RewardResult | TsbanditError]:
        """:meth:`_apply_reward` of each row, each one's error returned (a backend overrides
        it with one round trip); an unknown bandit or an outage raises."""
        out: list[RewardResult | TsbanditError] = []
        for r in rows:
            try:
                out.append(self._apply_reward(name, r.decision_id, r.deltas, r.event, r.now,
                                              r.cver, r.outcome))
            except (BanditNotFoundError, StoreUnavailableError):
                raise
            except TsbanditError as exc:
                out.append(exc)
        return out

    @abstractmethod
    def _claim_expired(self, name: str, now: float, lease_until: float, limit: int,
                       token: str) -> list[ClaimedDecision]:
        """Claim up to ``limit`` decisions due before ``now`` (deadline, or lease end)."""

    @abstractmethod
    def _settle_expired(self, name: str, claim: ClaimedDecision,
                        deltas: dict[str, np.ndarray], event: str | None,
                        cver: int | None) -> bool:
        """:func:`~tsbandit.stores.lifecycle.holds_claim`, then add, mark expired and append,
        all or nothing."""

    @abstractmethod
    def _purge(self, name: str, cutoff: float, limit: int, now: float) -> PurgeResult:
        """Delete up to ``limit`` consumed decisions with ``deadline < cutoff`` and up to
        ``limit`` assignments with ``expires_at <= now`` (oldest first); trim to
        ``events_maxlen``."""

    @abstractmethod
    def _get_assignment(self, name: str, key: str, now: float) -> Assignment | None:
        """The assignment of ``key`` if it is live (``expires_at > now``), created False."""

    @abstractmethod
    def _assign(self, name: str, a: EncodedAssignment) -> Assignment:
        """:func:`~tsbandit.stores.lifecycle.keeps_assignment` on the stored assignment of
        ``a.key``: keep and return it (created False), or store ``a`` (created True)."""

    @abstractmethod
    def _append_event(self, name: str, event: str) -> None:
        """Append one event (JSON text)."""

    def _cursor(self, after: str | None) -> Any:
        """The backend's position for a cursor (``ConfigurationError`` for a foreign one): a
        row number by default."""
        return check_int_cursor(after)

    @abstractmethod
    def _read_events(self, name: str, start: Any, limit: int
                     ) -> Sequence[tuple[Any, str | bytes]]:
        """Up to ``limit`` events after ``start``, oldest first: ``(cursor, JSON text)``."""
