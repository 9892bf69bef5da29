"""In-process store: dicts behind one lock. For tests, notebooks and single-process use.

JSON documents are kept as JSON text, so the memory store refuses exactly what the persistent
stores refuse and never aliases a caller's objects. Only the primitives are here; validation,
encoding and the public methods are :class:`~tsbandit.stores.base.BaseStore`'s.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import BanditExistsError, DecisionExistsError, DecisionNotFoundError, TsbanditError
from . import lifecycle, records
from .base import BaseStore
from .records import CLAIMED, EXPIRED, PENDING, REWARDED
from .validation import (
    check_config_version,
    check_shapes,
    decay_factor,
    finite_sums,
    readonly,
)

__all__ = ["MemoryStore"]


@dataclass
class _Decision:
    payload: str
    deadline: float
    status: str = PENDING
    token: str = ""
    lease_until: float = 0.0
    outcome: float | None = None  # what its reward stored (rewarded decisions only)


@dataclass
class _Assignments:
    """A bandit's sticky assignments: key -> (payload JSON, id JSON, expires_at)."""

    rows: dict[str, tuple[str, str, float]] = field(default_factory=dict)

    def live(self, key: str, now: float) -> records.Assignment | None:
        row = self.rows.get(key)
        if row is None or not row[2] > now:
            return None
        return lifecycle.assignment_record(key, row[0], row[2], False)

    def assign(self, a: records.EncodedAssignment) -> records.Assignment:
        old = self.rows.get(a.key)
        if old is not None and lifecycle.keeps_assignment((old[1], old[2]), a):
            return lifecycle.assignment_record(a.key, old[0], old[2], False)
        self.rows[a.key] = (a.payload, a.item, a.expires_at)
        return lifecycle.assignment_record(a.key, a.payload, a.expires_at, True)

    def purge(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` expired assignments, oldest first; how many."""
        gone = sorted((row[2], k) for k, row in self.rows.items() if row[2] <= now)[:limit]
        for _, k in gone:
            del self.rows[k]
        return len(gone)


@dataclass
class _Bandit:
    config: str
    arrays: dict[str, np.ndarray]
    version: int = 0
    config_version: int = 0
    decayed_at: float | None = None
    pending: dict[str, _Decision] = field(default_factory=dict)
    assignments: _Assignments = field(default_factory=_Assignments)
    events: deque[tuple[int, str]] = field(default_factory=deque)  # (sequence, JSON)


class MemoryStore(BaseStore):
    """Thread-safe in-process :class:`~tsbandit.stores.protocol.Store`.

    Parameters
    ----------
    retention
        Seconds a consumed decision is remembered after its deadline.
    events_maxlen
        Keep at most this many events per bandit (oldest dropped at each append); ``None``
        keeps all.
    """

    def __init__(
        self, *, retention: float = records.DEFAULT_RETENTION, events_maxlen: int | None = None
    ) -> None:
        super().__init__(retention=retention, events_maxlen=events_maxlen)
        self.url = "memory://"
        self._lock = threading.Lock()
        self._bandits: dict[str, _Bandit] = {}
        #: event sequence numbers, store-wide: cursors grow across delete and re-create
        self._event_seq = itertools.count(1)

    def __repr__(self) -> str:
        return f"MemoryStore(bandits={len(self._bandits)})"

    # -- helpers (called with the lock held) --------------------------------------------------
    def _get(self, name: str) -> _Bandit:
        try:
            return self._bandits[name]
        except KeyError:
            raise lifecycle.bandit_not_found(name) from None

    @staticmethod
    def _snapshot(name: str, b: _Bandit) -> records.Snapshot:
        return records.Snapshot(
            name=name,
            config=json.loads(b.config),
            arrays={k: readonly(v.copy()) for k, v in b.arrays.items()},
            version=b.version,
            config_version=b.config_version,
            decayed_at=b.decayed_at,
        )

    @staticmethod
    def _add_to(b: _Bandit, deltas: dict[str, np.ndarray], cver: int | None) -> None:
        """Check the version and shapes, then add (every total checked before any is kept)."""
        check_config_version(b.config_version, cver)
        check_shapes(b.arrays, deltas)
        b.arrays.update(finite_sums(b.arrays, deltas))
        b.version += 1

    @staticmethod
    def _scale_all(b: _Bandit, g: float) -> None:
        for v in b.arrays.values():
            v *= g
        b.version += 1

    def _consume(self, b: _Bandit, d: _Decision, status: str, event: str | None) -> None:
        d.status, d.token = status, ""
        self._append(b, event)

    def _append(self, b: _Bandit, event: str | None) -> None:
        if event is None:
            return
        b.events.append((next(self._event_seq), event))
        if self.events_maxlen is not None:
            self._trim(b.events, self.events_maxlen)

    @staticmethod
    def _trim(events: deque[tuple[int, str]], maxlen: int) -> int:
        n = 0
        while len(events) > maxlen:
            events.popleft()
            n += 1
        return n

    # -- bandits ----------------------------------------------------------------------------
    def _create(self, name: str, config: str, arrays: dict[str, np.ndarray],
                cver: int) -> records.Snapshot:
        arrs = {k: v.copy() for k, v in arrays.items()}
        with self._lock:
            if name in self._bandits:
                raise BanditExistsError(f"a bandit named {name!r} already exists")
            b = self._bandits[name] = _Bandit(config, arrs, config_version=cver)
            return self._snapshot(name, b)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._bandits

    def list_bandits(self) -> list[str]:
        with self._lock:
            return sorted(self._bandits)

    def delete_bandit(self, name: str) -> None:
        with self._lock:
            self._get(name)
            del self._bandits[name]

    def read(self, name: str) -> records.Snapshot:
        with self._lock:
            return self._snapshot(name, self._get(name))

    def _replace(self, name: str, config: str, arrays: dict[str, np.ndarray] | None,
                 expected: int | None) -> records.Snapshot:
        arrs = None if arrays is None else {k: v.copy() for k, v in arrays.items()}
        with self._lock:
            b = self._get(name)
            check_config_version(b.config_version, expected)
            b.config = config
            if arrs is not None:
                b.arrays = arrs
            b.config_version += 1
            b.version += 1
            return self._snapshot(name, b)

    # -- statistics -------------------------------------------------------------------------
    def _add(self, name: str, deltas: dict[str, np.ndarray], cver: int | None) -> int:
        with self._lock:
            b = self._get(name)
            self._add_to(b, deltas, cver)
            return b.version

    def _scale(self, name: str, gamma: float) -> int:
        with self._lock:
            b = self._get(name)
            self._scale_all(b, gamma)
            return b.version

    def _decay(self, name: str, half_life: float, now: float) -> float:
        with self._lock:
            b = self._get(name)
            g = decay_factor(b.decayed_at, half_life, now)
            if b.decayed_at is None or now > b.decayed_at:
                b.decayed_at = now
            if g != 1.0:
                self._scale_all(b, g)
            return g

    # -- pending decisions ------------------------------------------------------------------
    def _put_pending(self, name: str, rows: list[records.EncodedDecision],
                     if_at: tuple[int, int] | None = None) -> records.Snapshot | None:
        with self._lock:
            b = self._get(name)
            if if_at is not None and if_at != (b.version, b.config_version):
                return self._snapshot(name, b)
            for row in rows:
                if row.decision_id in b.pending:
                    raise DecisionExistsError(f"decision {row.decision_id!r} already exists")
            for row in rows:
                b.pending[row.decision_id] = _Decision(row.payload, row.deadline)
                self._append(b, row.event)
        return None

    def get_pending(self, name: str, decision_id: str) -> records.PendingDecision:
        with self._lock:
            d = self._get(name).pending.get(decision_id)
            if d is None:
                raise lifecycle.not_found(name, decision_id)
            return lifecycle.pending_record(decision_id, d.payload, d.deadline, d.status,
                                            d.outcome)

    def _reward(self, name: str, b: _Bandit, r: records.EncodedReward) -> records.RewardResult:
        d = b.pending.get(r.decision_id)
        found = None if d is None else (d.status, d.deadline)
        if not lifecycle.reward_verdict(name, r.decision_id, found, r.now) or d is None:
            return records.RewardResult("duplicate", b.version)
        self._add_to(b, r.deltas, r.cver)
        self._consume(b, d, REWARDED, r.event)
        d.outcome = r.outcome
        return records.RewardResult("applied", b.version)

    def _apply_reward(self, name: str, decision_id: str, deltas: dict[str, np.ndarray],
                      event: str | None, now: float, cver: int | None,
                      outcome: float | None) -> records.RewardResult:
        with self._lock:
            return self._reward(name, self._get(name), records.EncodedReward(
                decision_id, deltas, event, now, cver, outcome))

    def _apply_reward_many(self, name: str, rows: list[records.EncodedReward]
                           ) -> list[records.RewardResult | TsbanditError]:
        out: list[records.RewardResult | TsbanditError] = []
        with self._lock:
            b = self._get(name)
            for r in rows:
                try:
                    out.append(self._reward(name, b, r))
                except TsbanditError as exc:  # checked before anything of it was written
                    out.append(exc)
        return out

    def _get_pending_many(self, name: str, ids: list[str]
                          ) -> list[records.PendingDecision | DecisionNotFoundError]:
        with self._lock:
            pending = self._get(name).pending
            found = [(i, pending.get(i)) for i in ids]
            return [lifecycle.not_found(name, i) if d is None else
                    lifecycle.pending_record(i, d.payload, d.deadline, d.status, d.outcome)
                    for i, d in found]

    def _claim_expired(self, name: str, now: float, lease_until: float, limit: int,
                       token: str) -> list[records.ClaimedDecision]:
        with self._lock:
            b = self._get(name)
            due = sorted(
                (d.lease_until if d.status == CLAIMED else d.deadline, k)
                for k, d in b.pending.items()
                if (d.status == PENDING and d.deadline < now)
                or (d.status == CLAIMED and d.lease_until < now)
            )
            out = []
            for _, k in due[:limit]:
                d = b.pending[k]
                d.status, d.token, d.lease_until = CLAIMED, token, lease_until
                out.append(lifecycle.claim_record(k, d.payload, d.deadline, token))
            return out

    def _settle_expired(self, name: str, claim: records.ClaimedDecision,
                        deltas: dict[str, np.ndarray], event: str | None,
                        cver: int | None) -> bool:
        with self._lock:
            b = self._get(name)
            d = b.pending.get(claim.decision_id)
            if d is None or not lifecycle.holds_claim((d.status, d.token), claim):
                return False
            if deltas:
                self._add_to(b, deltas, cver)
            else:
                check_config_version(b.config_version, cver)
            self._consume(b, d, EXPIRED, event)
            return True

    def _purge(self, name: str, cutoff: float, limit: int, now: float) -> records.PurgeResult:
        with self._lock:
            b = self._get(name)
            old = sorted(
                (d.deadline, k) for k, d in b.pending.items()
                if d.status in (REWARDED, EXPIRED) and d.deadline < cutoff
            )[:limit]
            for _, k in old:
                del b.pending[k]
            trimmed = 0 if self.events_maxlen is None else self._trim(b.events,
                                                                      self.events_maxlen)
            return records.PurgeResult(len(old), trimmed, b.assignments.purge(now, limit))

    # -- sticky assignments -----------------------------------------------------------------
    def _get_assignment(self, name: str, key: str, now: float) -> records.Assignment | None:
        with self._lock:
            return self._get(name).assignments.live(key, now)

    def _assign(self, name: str, a: records.EncodedAssignment) -> records.Assignment:
        with self._lock:
            return self._get(name).assignments.assign(a)

    # -- events -----------------------------------------------------------------------------
    def _append_event(self, name: str, event: str) -> None:
        with self._lock:
            self._append(self._get(name), event)

    def _read_events(self, name: str, start: int, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            events = self._get(name).events
            if not events or events[0][0] > start:  # all of it is new: from the left
                page = list(itertools.islice(events, limit))
            else:  # an incremental reader: the new events are the last few
                new: list[tuple[int, str]] = []
                for item in reversed(events):
                    if item[0] <= start:
                        break
                    new.append(item)
                page = new[::-1][:limit]
        return page

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
