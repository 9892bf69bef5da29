"""Sharded bandits: one hot bandit's statistics, decisions and events spread over S bandits.

:class:`ShardedStore` wraps any :class:`~tsbandit.stores.protocol.Store` and is one itself.
A bandit whose configuration has ``"shards": S`` (S > 1) is S bandits of the wrapped store
(``name``, then ``name#j`` for S-1 numbers ``j``; on Redis S hash tags, placed evenly around
a Cluster's slots so that it spreads them over its primaries); every other bandit passes
through untouched. The rules of where each piece
lives are in :mod:`tsbandit.stores.shard_routing`. Statistics are additive, so:

* :meth:`~ShardedStore.read` sums the shards' arrays (priors are configuration, never in the
  arrays, so nothing is counted twice), in one pipelined round trip per node when the wrapped
  store has ``read_many`` (Redis); ``version`` is the sum of the shards' versions (it grows with
  every change of any shard), ``config_version`` and ``decayed_at`` are shard 0's;
* a decision record, its reward and its settlement run on the one shard its id names (one
  single-slot script); :meth:`~ShardedStore.add` takes the shards in turn;
* configuration changes (:meth:`~ShardedStore.replace`) are fenced by ``config_version`` on
  shard 0, then applied to every other shard (fenced by the version it had): the given arrays
  go to shard 0 and the others restart from zero, so the sum is what was given. Every shard
  thus keeps the same ``config_version``, and a reward computed against an old arm layout is
  refused on whichever shard it lands. A change interrupted half-way is completed by the next
  :meth:`~ShardedStore.read` (a lagging shard takes shard 0's configuration; its arrays are kept
  when their shapes still fit, else zeroed);
* ``scale``, ``decay``, ``claim_expired``, ``purge`` and ``delete_bandit`` run on every shard;
* the event log is one per shard; :meth:`~ShardedStore.read_events` fills a page from the
  shards in turn (a rotating first shard, so none starves) and its cursor holds every
  shard's, so an incremental reader sees each event exactly once. Within a shard events keep
  their order (a decision's reward always follows it); across shards there is no global order;
* ``put_pending_many`` is atomic for a batch on one shard (the engine's batches are, see
  :func:`~tsbandit.stores.shard_routing.shard_tokens`); a batch of foreign ids spanning shards
  is written shard by shard. ``events_maxlen`` bounds each shard's log. A write returns the
  version of the shard it changed.

The shard count is immutable and cached per bandit: a worker learns a re-created bandit's new
count at its next read.

>>> import numpy as np
>>> from tsbandit.stores import MemoryStore
>>> store = ShardedStore(MemoryStore())
>>> _ = store.create_bandit("ads", {"shards": 3}, {"s": np.zeros(2)})
>>> for i in range(6):
...     store.put_pending("ads", f"d{i}", {"arm": 1}, 100.0)
...     _ = store.apply_reward("ads", f"d{i}", {"s": np.array([0.0, 1.0])}, None, now=1.0)
>>> store.read("ads").arrays["s"].tolist(), store.list_bandits()
([0.0, 6.0], ['ads'])
>>> sorted(store.inner.list_bandits())
['ads', 'ads#5305', 'ads#5919']
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    BanditExistsError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionNotFoundError,
    TsbanditError,
    VersionConflictError,
)
from . import records
from .base import Store, StoreMixin
from .shard_routing import (
    join_cursor,
    shard_count,
    shard_names,
    shard_of_id,
    shard_of_key,
    split_cursor,
)
from .validation import SHARD_SEP, check_limit, check_name, readonly

__all__ = ["ShardedStore", "sharding_store"]


def sharding_store(store: Any) -> ShardedStore | None:
    """The :class:`ShardedStore` in a chain of store decorators (``.inner``), or None."""
    while store is not None:
        if isinstance(store, ShardedStore):
            return store
        store = getattr(store, "inner", None)
    return None


def _zeros(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.zeros(np.shape(v)) for k, v in arrays.items()}


def _same_shapes(a: records.Snapshot, b: records.Snapshot) -> bool:
    return (list(a.arrays) == list(b.arrays)
            and all(a.arrays[k].shape == b.arrays[k].shape for k in a.arrays))


class ShardedStore(StoreMixin):
    """A :class:`~tsbandit.stores.protocol.Store` that spreads each bandit configured with
    ``"shards": S`` over S bandits of ``inner`` (see the module docstring).

    Parameters
    ----------
    inner
        The wrapped store.
    default_shards
        The shard count of a bandit whose configuration names none (1: such bandits pass
        through unchanged).
    """

    def __init__(self, inner: Store, *, default_shards: int = 1) -> None:
        self.inner = inner
        self.url = inner.url
        self.default_shards = shard_count({}, default_shards)
        self._counts: dict[str, int] = {}
        self._turn = itertools.count()

    def __getattr__(self, attr: str) -> Any:
        """The wrapped store's plain attributes (``events_maxlen``, ``prefix``...); never its
        methods: one that is not routed here would miss the shards, so it is missing."""
        if attr.startswith("__") or attr == "inner":
            raise AttributeError(attr)
        value = getattr(self.inner, attr)
        if callable(value):
            raise AttributeError(f"ShardedStore does not route {attr!r} to the shards")
        return value

    @property
    def retention(self) -> float:
        """The wrapped store's retention (settable)."""
        return float(self.inner.retention)  # type: ignore[attr-defined]

    @retention.setter
    def retention(self, value: float) -> None:
        self.inner.retention = value  # type: ignore[attr-defined]

    # -- shards -------------------------------------------------------------------------------
    def shards(self, name: str) -> int:
        """The shard count of bandit ``name`` (``BanditNotFoundError`` when unknown)."""
        n = self._counts.get(name)
        if n is None:
            n = self._learn(name, self.inner.read(name).config)
        return n

    def _learn(self, name: str, config: Mapping[str, Any]) -> int:
        n = shard_count(config, self.default_shards)
        self._counts[name] = n
        return n

    def _at(self, name: str, decision_id: str) -> str:
        n = self.shards(name)
        return shard_names(name, n)[shard_of_id(decision_id, n)]

    # -- bandits ------------------------------------------------------------------------------
    def create_bandit(self, name: str, config: Mapping[str, Any],
                      arrays: Mapping[str, np.ndarray], *,
                      config_version: int = 0) -> records.Snapshot:
        if isinstance(name, str) and SHARD_SEP in name:
            raise ConfigurationError(f"bandit name == {name!r} must not contain "
                                     f"{SHARD_SEP!r} (it names a bandit's shards)")
        n = shard_count(config, self.default_shards)
        cver = config_version  # every shard at the same one: changes are fenced by it
        snap = self.inner.create_bandit(check_name(name), config, arrays, config_version=cver)
        for shard in shard_names(name, n)[1:]:
            try:
                self.inner.create_bandit(shard, config, _zeros(arrays), config_version=cver)
            except BanditExistsError:  # left by an interrupted delete: start it afresh
                self.inner.delete_bandit(shard)
                self.inner.create_bandit(shard, config, _zeros(arrays), config_version=cver)
        self._counts[name] = n
        return snap if n == 1 else self.read(name)

    def exists(self, name: str) -> bool:
        return isinstance(name, str) and SHARD_SEP not in name and self.inner.exists(name)

    def list_bandits(self) -> list[str]:
        return [n for n in self.inner.list_bandits() if SHARD_SEP not in n]

    def delete_bandit(self, name: str) -> None:
        for shard in self._all(name)[:0:-1]:  # shard 0 last: it exists until all are gone
            try:
                self.inner.delete_bandit(shard)
            except BanditNotFoundError:
                pass
        self._counts.pop(name, None)
        self.inner.delete_bandit(name)

    def read(self, name: str) -> records.Snapshot:
        try:
            return self._read(name)
        except BanditNotFoundError:
            self._counts.pop(name, None)
            raise

    def _read(self, name: str) -> records.Snapshot:
        n = self._counts.get(name, 1)
        if n == 1:
            snap = self.inner.read(name)
            if self._learn(name, snap.config) == 1:
                return snap
            n = self._counts[name]
        for _ in range(3):
            snaps = _read_all(self.inner, shard_names(name, n))
            if self._learn(name, snaps[0].config) != n:  # re-created with another count
                return self._read(name)
            lagging = [i for i, s in enumerate(snaps)
                       if s.config_version != snaps[0].config_version or not _same_shapes(
                           s, snaps[0])]
            if not lagging:
                return _sum(name, snaps)
            for i in lagging:
                if i:
                    _heal(self.inner, shard_names(name, n)[i], snaps[0], snaps[i])
        raise VersionConflictError(f"the shards of bandit {name!r} kept changing; retry")

    def replace(self, name: str, config: Mapping[str, Any],
                arrays: Mapping[str, np.ndarray] | None = None, *,
                expected_config_version: int | None = None) -> records.Snapshot:
        n = self.shards(name)
        if shard_count(config, self.default_shards) != n:
            raise ConfigurationError(f"bandit {name!r} has {n} shard(s); the shard count is "
                                     "fixed at creation")
        head = self.inner.replace(name, config, arrays,
                                  expected_config_version=expected_config_version)
        rest = None if arrays is None else _zeros(arrays)
        for shard in shard_names(name, n)[1:]:
            try:
                self.inner.replace(shard, config, rest,
                                   expected_config_version=head.config_version - 1)
            except VersionConflictError:
                pass  # moved on by another change meanwhile; a read completes it
        return head if n == 1 else self.read(name)

    # -- statistics ---------------------------------------------------------------------------
    def add(self, name: str, deltas: Mapping[str, np.ndarray], *,
            config_version: int | None = None) -> int:
        shards = self._all(name)
        return self.inner.add(shards[next(self._turn) % len(shards)], deltas,
                              config_version=config_version)

    def scale(self, name: str, gamma: float) -> int:
        return sum(self.inner.scale(s, gamma) for s in self._all(name))

    def decay(self, name: str, half_life: float, now: float) -> float:
        factors = [self.inner.decay(s, half_life, now) for s in self._all(name)]
        return factors[0]

    def _all(self, name: str) -> tuple[str, ...]:
        return shard_names(name, self.shards(name))

    # -- pending decisions --------------------------------------------------------------------
    def put_pending(self, name: str, decision_id: str, payload: Mapping[str, Any],
                    deadline: float, *, event: Mapping[str, Any] | None = None) -> None:
        self.inner.put_pending(self._at(name, decision_id), decision_id, payload, deadline,
                               event=event)

    def put_pending_many(self, name: str, items: Sequence[records.NewDecision], *,
                         if_at: tuple[int, int] | None = None) -> records.Snapshot | None:
        n = self.shards(name)
        if n == 1:
            return self.inner.put_pending_many(
                name, items, **({} if if_at is None else {"if_at": if_at}))
        if if_at is not None:  # each shard has its own version: no one check covers them
            raise ConfigurationError(f"bandit {name!r} has {n} shards: put_pending_many "
                                     "cannot check if_at across them")
        groups: dict[int, list[records.NewDecision]] = {}
        for item in items:
            d = records.NewDecision(*item)
            key = shard_of_id(d.decision_id, n) if isinstance(d.decision_id, str) else 0
            groups.setdefault(key, []).append(d)
        for i, group in groups.items():
            self.inner.put_pending_many(shard_names(name, n)[i], group)
        return None

    def get_pending(self, name: str, decision_id: str) -> records.PendingDecision:
        return self.inner.get_pending(self._at(name, decision_id), decision_id)

    def apply_reward(self, name: str, decision_id: str, deltas: Mapping[str, np.ndarray],
                     event: Mapping[str, Any] | None, now: float, *,
                     config_version: int | None = None,
                     outcome: float | None = None) -> records.RewardResult:
        return self.inner.apply_reward(self._at(name, decision_id), decision_id, deltas, event,
                                       now, config_version=config_version, outcome=outcome)

    def get_pending_many(self, name: str, decision_ids: Sequence[str]
                         ) -> list[records.PendingDecision | DecisionNotFoundError]:
        return _per_shard(self, name, [str(i) for i in decision_ids], list(decision_ids),
                          self.inner.get_pending_many)

    def apply_reward_many(self, name: str, items: Sequence[records.RewardItem]
                          ) -> list[records.RewardResult | TsbanditError]:
        its = [records.RewardItem(*it) for it in items]
        return _per_shard(self, name, [str(it.decision_id) for it in its], its,
                          self.inner.apply_reward_many)

    def claim_expired(self, name: str, now: float, *, limit: int = 100,
                      lease: float = 30.0) -> list[records.ClaimedDecision]:
        out: list[records.ClaimedDecision] = []
        for s in self._all(name):
            out += self.inner.claim_expired(s, now, limit=int(limit) - len(out), lease=lease)
            if len(out) >= int(limit):
                break
        return out

    def settle_expired(self, name: str, claim: records.ClaimedDecision,
                       deltas: Mapping[str, np.ndarray] | None,
                       event: Mapping[str, Any] | None, *,
                       config_version: int | None = None) -> bool:
        return self.inner.settle_expired(self._at(name, claim.decision_id), claim, deltas,
                                         event, config_version=config_version)

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> records.PurgeResult:
        left = check_limit(limit)
        done = [0, 0, 0]
        for s in self._all(name):
            res = self.inner.purge(s, now, limit=left)
            done = [a + b for a, b in zip(done, res, strict=True)]
            left = check_limit(limit) - max(done[0], done[2])
            if left <= 0:
                break
        return records.PurgeResult(*done)

    # -- sticky assignments -------------------------------------------------------------------
    def get_assignment(self, name: str, key: str, now: float) -> records.Assignment | None:
        return self.inner.get_assignment(self._of_key(name, key), key, now)

    def assign(self, name: str, key: str, payload: Mapping[str, Any], expires_at: float,
               now: float, *, replace: str | None = None) -> records.Assignment:
        return self.inner.assign(self._of_key(name, key), key, payload, expires_at, now,
                                 replace=replace)

    def _of_key(self, name: str, key: str) -> str:
        shards = self._all(name)
        return shards[shard_of_key(key, len(shards)) if isinstance(key, str) else 0]

    # -- events -------------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        self.inner.append_event(name, event)  # shard 0: a bandit's own events keep their order

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> records.EventPage:
        n = self.shards(name)
        if n == 1:
            return self.inner.read_events(name, after=after, limit=limit)
        return _merged_page(self.inner, shard_names(name, n), after, check_limit(limit))

    # -- lifecycle ----------------------------------------------------------------------------
    def ping(self) -> None:
        self.inner.ping()

    def health(self) -> dict[str, Any]:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()


def _per_shard(store: ShardedStore, name: str, ids: Sequence[str], items: Sequence[Any],
               call: Callable[[str, list[Any]], list[Any]]) -> list[Any]:
    """``call(shard, its items)`` once per shard the ids fall on, the answers put back in the
    order of ``items`` (the order within a shard is kept, so of two items with one id the first
    is applied and the second answers ``duplicate``). An unknown bandit or an outage raises."""
    if not ids:
        return call(name, [])
    groups: dict[str, list[int]] = {}
    for i, decision_id in enumerate(ids):
        groups.setdefault(store._at(name, decision_id), []).append(i)
    out: list[Any] = [None] * len(ids)
    for shard, at in groups.items():
        for i, res in zip(at, call(shard, [items[i] for i in at]), strict=True):
            out[i] = res
    return out


def _read_all(inner: Store, names: Sequence[str]) -> list[records.Snapshot]:
    """Every shard's snapshot, in one round trip per node when ``inner`` has ``read_many``."""
    many = getattr(inner, "read_many", None)
    try:
        if many is not None:
            return list(many(names))
        return [inner.read(s) for s in names]
    except BanditNotFoundError:
        first = inner.read(names[0])  # shard 0 gone: the bandit is
        out = [first]
        for s in names[1:]:  # a shard an interrupted create left out: create it now
            try:
                out.append(inner.read(s))
            except BanditNotFoundError:
                out.append(inner.create_bandit(s, first.config, _zeros(first.arrays),
                                               config_version=first.config_version))
        return out

def _heal(inner: Store, name: str, head: records.Snapshot, shard: records.Snapshot) -> None:
    """Bring shard ``name`` to shard 0's configuration (a change interrupted half-way)."""
    if shard.config_version > head.config_version:
        return  # a change is under way; the next read sees it done
    arrays = None if _same_shapes(shard, head) else _zeros(head.arrays)
    cver = shard.config_version
    while cver < head.config_version:
        try:
            cver = inner.replace(name, head.config, arrays,
                                 expected_config_version=cver).config_version
        except VersionConflictError:
            return

def _sum(name: str, snaps: Sequence[records.Snapshot]) -> records.Snapshot:
    """The snapshot of a sharded bandit: its shards' arrays and versions summed."""
    head = snaps[0]
    arrays = {}
    for key, first in head.arrays.items():
        total = np.array(first, dtype=np.float64)
        for s in snaps[1:]:
            if s.arrays[key].any():  # adding zeros would turn -0.0 into 0.0
                total += s.arrays[key]
        arrays[key] = readonly(total)
    return records.Snapshot(name, head.config, arrays, sum(s.version for s in snaps),
                            head.config_version, head.decayed_at)



def _merged_page(inner: Store, names: Sequence[str], after: str | None,
                 size: int) -> records.EventPage:
    """Up to ``size`` events of the shards ``names`` after the sharded cursor ``after``,
    filled from the shards in turn (the first one rotating from page to page)."""
    n = len(names)
    start, cursors = split_cursor(after, n)
    events: list[dict[str, Any]] = []
    for i in ((start + j) % n for j in range(n)):
        page = inner.read_events(names[i], after=cursors[i], limit=size - len(events))
        events += page.events
        cursors[i] = page.cursor
        if len(events) >= size:
            break
    if not events:
        return records.EventPage([], after)
    return records.EventPage(events, join_cursor((start + 1) % n, cursors))
