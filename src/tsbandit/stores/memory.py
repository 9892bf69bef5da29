"""In-process store: dicts behind one lock. For tests, notebooks and single-process use.

JSON documents are kept as JSON text, so the memory store refuses exactly what the persistent
stores refuse and never aliases a caller's objects.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    BanditExistsError,
    BanditNotFoundError,
    DecisionExpiredError,
    DecisionNotFoundError,
    SerializationError,
)
from .base import (
    DEFAULT_RETENTION,
    ClaimedDecision,
    DecisionExistsError,
    EventPage,
    NewDecision,
    PendingDecision,
    PurgeResult,
    RewardResult,
    Snapshot,
    StoreMixin,
    VersionConflictError,
    check_arrays,
    check_decision_id,
    check_deltas,
    check_events_maxlen,
    check_gamma,
    check_half_life,
    check_int_cursor,
    check_limit,
    check_name,
    check_retention,
    check_time,
    decay_factor,
    dumps,
    encode_new_decisions,
    readonly,
)

__all__ = ["MemoryStore"]

_STATUS = {"p": "pending", "c": "claimed", "r": "rewarded", "x": "expired"}


@dataclass
class _Decision:
    payload: str
    deadline: float
    status: str = "p"  # p pending, c claimed, r rewarded, x expired
    token: str = ""
    lease_until: float = 0.0


@dataclass
class _Bandit:
    config: str
    arrays: dict[str, np.ndarray]
    version: int = 0
    config_version: int = 0
    decayed_at: float | None = None
    pending: dict[str, _Decision] = field(default_factory=dict)
    events: deque[tuple[int, str]] = field(default_factory=deque)  # (sequence, JSON)


class MemoryStore(StoreMixin):
    """Thread-safe in-process :class:`~tsbandit.stores.base.Store`.

    Parameters
    ----------
    retention
        Seconds a consumed decision is remembered after its deadline.
    events_maxlen
        Keep at most this many events per bandit (oldest dropped at each append); ``None``
        keeps all.
    """

    def __init__(
        self, *, retention: float = DEFAULT_RETENTION, events_maxlen: int | None = None
    ) -> None:
        self.url = "memory://"
        self.retention = check_retention(retention)
        self.events_maxlen = check_events_maxlen(events_maxlen)
        self._lock = threading.Lock()
        self._bandits: dict[str, _Bandit] = {}
        #: event sequence numbers, store-wide: cursors grow across delete and re-create
        self._event_seq = itertools.count(1)

    def __repr__(self) -> str:
        return f"MemoryStore(bandits={len(self._bandits)})"

    # -- helpers ----------------------------------------------------------------------------
    def _get(self, name: str) -> _Bandit:
        try:
            return self._bandits[name]
        except KeyError:
            raise BanditNotFoundError(f"no bandit named {name!r}") from None

    def _snapshot(self, name: str, b: _Bandit) -> Snapshot:
        return Snapshot(
            name=name,
            config=json.loads(b.config),
            arrays={k: readonly(v.copy()) for k, v in b.arrays.items()},
            version=b.version,
            config_version=b.config_version,
            decayed_at=b.decayed_at,
        )

    @staticmethod
    def _check_version(b: _Bandit, config_version: int | None) -> None:
        if config_version is not None and config_version != b.config_version:
            raise VersionConflictError(
                f"config_version {config_version} is stale, the bandit is at {b.config_version}"
            )

    @staticmethod
    def _check_shapes(b: _Bandit, deltas: Mapping[str, np.ndarray]) -> None:
        for key, d in deltas.items():
            if key not in b.arrays:
                raise SerializationError(f"unknown statistic {key!r}; known: {sorted(b.arrays)}")
            if d.shape != b.arrays[key].shape:
                raise SerializationError(
                    f"delta {key!r} has shape {d.shape}, stored {b.arrays[key].shape}"
                )

    def _apply(self, b: _Bandit, deltas: Mapping[str, np.ndarray]) -> None:
        for key, d in deltas.items():
            b.arrays[key] += d
        b.version += 1

    def _append(self, b: _Bandit, event_json: str | None) -> None:
        if event_json is None:
            return
        b.events.append((next(self._event_seq), event_json))
        if self.events_maxlen is not None:
            while len(b.events) > self.events_maxlen:
                b.events.popleft()

    # -- bandits ----------------------------------------------------------------------------
    def create_bandit(
        self, name: str, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> Snapshot:
        check_name(name)
        cfg = dumps(config, "config")
        arrs = {k: v.copy() for k, v in check_arrays(arrays).items()}
        with self._lock:
            if name in self._bandits:
                raise BanditExistsError(f"a bandit named {name!r} already exists")
            b = self._bandits[name] = _Bandit(cfg, arrs)
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

    def read(self, name: str) -> Snapshot:
        with self._lock:
            return self._snapshot(name, self._get(name))

    def replace(
        self,
        name: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        expected_config_version: int | None = None,
    ) -> Snapshot:
        cfg = dumps(config, "config")
        arrs = None if arrays is None else {k: v.copy() for k, v in check_arrays(arrays).items()}
        with self._lock:
            b = self._get(name)
            self._check_version(b, expected_config_version)
            b.config = cfg
            if arrs is not None:
                b.arrays = arrs
            b.config_version += 1
            b.version += 1
            return self._snapshot(name, b)

    # -- statistics -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        deltas: Mapping[str, np.ndarray],
        *,
        config_version: int | None = None,
    ) -> int:
        ds = check_deltas(deltas)
        with self._lock:
            b = self._get(name)
            self._check_version(b, config_version)
            self._check_shapes(b, ds)
            self._apply(b, ds)
            return b.version

    def scale(self, name: str, gamma: float) -> int:
        g = check_gamma(gamma)
        with self._lock:
            b = self._get(name)
            for v in b.arrays.values():
                v *= g
            b.version += 1
            return b.version

    def decay(self, name: str, half_life: float, now: float) -> float:
        h = check_half_life(half_life)
        t = check_time("now", now)
        with self._lock:
            b = self._get(name)
            g = decay_factor(b.decayed_at, h, t)
            if b.decayed_at is None or t > b.decayed_at:
                b.decayed_at = t
            if g != 1.0:
                for v in b.arrays.values():
                    v *= g
                b.version += 1
            return g

    # -- pending decisions ------------------------------------------------------------------
    def put_pending(
        self,
        name: str,
        decision_id: str,
        payload: Mapping[str, Any],
        deadline: float,
        *,
        event: Mapping[str, Any] | None = None,
    ) -> None:
        check_decision_id(decision_id)
        p = dumps(payload, "payload")
        e = None if event is None else dumps(event, "event")
        dl = check_time("deadline", deadline)
        with self._lock:
            b = self._get(name)
            if decision_id in b.pending:
                raise DecisionExistsError(f"decision {decision_id!r} already exists")
            b.pending[decision_id] = _Decision(p, dl)
            self._append(b, e)

    def put_pending_many(self, name: str, items: Sequence[NewDecision]) -> None:
        rows = encode_new_decisions(items)
        if not rows:
            return
        with self._lock:
            b = self._get(name)
            for decision_id, _, _, _ in rows:
                if decision_id in b.pending:
                    raise DecisionExistsError(f"decision {decision_id!r} already exists")
            for decision_id, p, dl, e in rows:
                b.pending[decision_id] = _Decision(p, dl)
                self._append(b, e)

    def get_pending(self, name: str, decision_id: str) -> PendingDecision:
        with self._lock:
            d = self._get(name).pending.get(decision_id)
            if d is None:
                raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
            return PendingDecision(
                decision_id,
                json.loads(d.payload),
                d.deadline,
                _STATUS[d.status],  # type: ignore[arg-type]
            )

    def apply_reward(
        self,
        name: str,
        decision_id: str,
        deltas: Mapping[str, np.ndarray],
        event: Mapping[str, Any] | None,
        now: float,
        *,
        config_version: int | None = None,
    ) -> RewardResult:
        ds = check_deltas(deltas)
        e = None if event is None else dumps(event, "event")
        t = check_time("now", now)
        with self._lock:
            b = self._get(name)
            d = b.pending.get(decision_id)
            if d is None:
                raise DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")
            if d.status == "r":
                return RewardResult("duplicate", b.version)
            if d.status == "x" or t > d.deadline:
                raise DecisionExpiredError(
                    f"decision {decision_id!r} expired at {d.deadline} (now {t})"
                )
            self._check_version(b, config_version)
            self._check_shapes(b, ds)
            self._apply(b, ds)
            d.status = "r"
            d.token = ""
            self._append(b, e)
            return RewardResult("applied", b.version)

    def claim_expired(
        self, name: str, now: float, *, limit: int = 100, lease: float = 30.0
    ) -> list[ClaimedDecision]:
        t = check_time("now", now)
        lease_until = t + check_time("lease", lease)
        token = uuid.uuid4().hex
        out: list[ClaimedDecision] = []
        with self._lock:
            b = self._get(name)
            due = [
                (d.lease_until if d.status == "c" else d.deadline, k)
                for k, d in b.pending.items()
                if (d.status == "p" and d.deadline < t) or (d.status == "c" and d.lease_until < t)
            ]
            due.sort()
            for _, k in due[: max(int(limit), 0)]:
                d = b.pending[k]
                d.status, d.token, d.lease_until = "c", token, lease_until
                out.append(ClaimedDecision(k, json.loads(d.payload), d.deadline, token))
        return out

    def settle_expired(
        self,
        name: str,
        claim: ClaimedDecision,
        deltas: Mapping[str, np.ndarray] | None,
        event: Mapping[str, Any] | None,
        *,
        config_version: int | None = None,
    ) -> bool:
        ds = check_deltas(deltas)
        e = None if event is None else dumps(event, "event")
        with self._lock:
            b = self._get(name)
            d = b.pending.get(claim.decision_id)
            if d is None or d.status != "c" or d.token != claim.token:
                return False
            self._check_version(b, config_version)
            self._check_shapes(b, ds)
            if ds:
                self._apply(b, ds)
            d.status = "x"
            d.token = ""
            self._append(b, e)
            return True

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> PurgeResult:
        t = check_time("now", now)
        limit = check_limit(limit)
        with self._lock:
            b = self._get(name)
            old = sorted(
                (d.deadline, k)
                for k, d in b.pending.items()
                if d.status in "rx" and d.deadline + self.retention < t
            )[:limit]
            for _, k in old:
                del b.pending[k]
            trimmed = 0
            if self.events_maxlen is not None:
                while len(b.events) > self.events_maxlen:
                    b.events.popleft()
                    trimmed += 1
            return PurgeResult(len(old), trimmed)

    # -- events -----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        e = dumps(event, "event")
        with self._lock:
            self._append(self._get(name), e)

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        start, limit = check_int_cursor(after), check_limit(limit)
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
        if not page:
            return EventPage([], after)
        return EventPage([json.loads(e) for _, e in page], str(page[-1][0]))

    # -- lifecycle --------------------------------------------------------------------------
    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
