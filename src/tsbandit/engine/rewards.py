"""The engine's reward path, one reward or a batch: one store round trip per reward batch.

:meth:`Engine.record_rewards <tsbandit.engine.Engine.record_rewards>` takes ``(decision_id,
reward, slot)`` items and answers each with its :class:`~tsbandit.decision.RewardResult` or the
error it would raise, in order; :meth:`Engine.record_reward
<tsbandit.engine.Engine.record_reward>` is its one-item case. For a bandit with one metric and
no ranking model (the plain case) a batch of one bandit costs

1. the decisions' payloads: from the engine's :class:`~tsbandit.engine.payloads.PayloadCache`
   when this engine made them (no round trip), else one
   :meth:`~tsbandit.stores.base.Store.get_pending_many` for the misses;
2. one :meth:`~tsbandit.stores.base.Store.apply_reward_many` (each reward's consumption,
   deltas, event and outcome atomic on its own: the store answers applied, duplicate, expired
   or not found, fenced by the configuration version).

A reward whose deltas were computed against an arm layout that changed meanwhile
(``VersionConflictError``) is rebuilt on a fresh read and sent again, up to three times, as
before. A batch of one uses the single-item store calls (``get_pending``, ``apply_reward``);
a batch of more than 1,000 is sent 1,000 at a time (a Redis script blocks its node while it
runs).
Rewards of bandits with several metrics or a ranking model go one by one
(:mod:`~tsbandit.engine.metric_records`, :mod:`~tsbandit.engine.slot_records`), also using the
payload cache for the decision's own record where its status is not needed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..decision import RewardResult, RewardStatus, split_decision_id
from ..errors import (
    BanditNotFoundError,
    DecisionNotFoundError,
    InvalidSlotError,
    StoreUnavailableError,
    TsbanditError,
    VersionConflictError,
)
from ..events import RewardEvent
from ..policies.ranking import RankingModel
from ..stores.base import RewardItem
from ..stores.records import RewardResult as StoreResult
from .metric_records import record_metric_rewards
from .slot_records import record_slot_rewards

if TYPE_CHECKING:
    from .engine import Engine
    from .state import BanditState

__all__ = ["RewardAnswer", "record_rewards"]

#: One reward's answer: its result, or the error recording it would raise.
RewardAnswer = RewardResult | TsbanditError
_ATTEMPTS = 3
#: most rewards (or reads) in one store call
_CHUNK = 1000


def _parse(item: Sequence[Any]) -> tuple[str, Any, int | None]:
    if len(item) == 2:
        return item[0], item[1], None
    did, reward, slot = item
    return did, reward, slot


def record_rewards(engine: Engine, items: Sequence[Sequence[Any]]) -> list[RewardAnswer]:
    """:meth:`Engine.record_rewards` (see the module): answers in the order of ``items``."""
    out: list[RewardAnswer | None] = [None] * len(items)
    groups: dict[str, list[int]] = {}
    parsed = [_parse(item) for item in items]
    for pos, (did, _, _) in enumerate(parsed):
        try:
            bandit, _ = split_decision_id(did)
        except TsbanditError as exc:
            out[pos] = exc
            continue
        groups.setdefault(bandit, []).append(pos)
    for bandit, positions in groups.items():
        try:
            _record_bandit(engine, bandit, positions, parsed, out)
        except BanditNotFoundError:  # unknown, or deleted meanwhile: its ids are unknown
            engine._forget(bandit)
            for pos in positions:
                if out[pos] is None:
                    out[pos] = DecisionNotFoundError(f"unknown decision id {parsed[pos][0]!r}")
        except StoreUnavailableError as exc:  # answered to every reward not answered yet
            for pos in positions:
                if out[pos] is None:
                    out[pos] = exc
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]


def _reward_state(engine: Engine, bandit: str) -> BanditState:
    cached = engine._cache.trusted(bandit)
    if cached is not None and cached.spec.model.additive:
        # An additive model's delta needs only the configuration, and the write is guarded
        # by its version: a cached state saves the read (a changed arm layout raises
        # VersionConflictError, and the reward is recomputed on a fresh read). Only one
        # read lately (see UNREAD_TRUST_SECONDS): a bandit created at configuration version
        # 0 and one created anew under its name at 0 pass the same fence, and the old arm
        # layout would put the new one's rewards on the wrong arms.
        return cached
    return engine._state(bandit)


def _record_bandit(engine: Engine, bandit: str, positions: list[int],
                   parsed: list[tuple[str, Any, int | None]],
                   out: list[RewardAnswer | None]) -> None:
    state = _reward_state(engine, bandit)
    spec = state.spec
    plain: list[tuple[int, str, float]] = []
    for pos in positions:
        did, reward, slot = parsed[pos]
        try:
            if isinstance(spec.model, RankingModel):
                out[pos] = record_slot_rewards(engine, state, bandit, did, reward, slot)
            elif slot not in (None, 0):
                raise InvalidSlotError(
                    f"bandit {bandit!r} learns from the first slot of a ranking only (slot "
                    f"0); a ranking model (position_based, cascade) learns from every slot")
            elif spec.metrics is not None:
                out[pos] = record_metric_rewards(engine, state, bandit, did, reward)
            else:
                plain.append((pos, did, spec.model.check_reward(reward)))
        except (BanditNotFoundError, StoreUnavailableError):
            raise
        except TsbanditError as exc:
            out[pos] = exc
    if plain:
        _record_plain(engine, state, bandit, plain, out)


def _payloads(engine: Engine, bandit: str, ids: list[str]
              ) -> dict[str, Mapping[str, Any] | TsbanditError]:
    """Each decision's payload (from the cache, else one read for all misses) or its error."""
    found: dict[str, Mapping[str, Any] | TsbanditError] = {}
    misses: list[str] = []
    for did in ids:
        hit = engine._payloads.get(did)
        if hit is not None and hit.bandit == bandit:
            found[did] = hit.payload
        elif did not in found and did not in misses:
            misses.append(did)
    if len(misses) == 1:
        try:
            found[misses[0]] = engine.store.get_pending(bandit, misses[0]).payload
        except DecisionNotFoundError as exc:
            found[misses[0]] = exc
    elif misses:
        for start in range(0, len(misses), _CHUNK):
            chunk = misses[start:start + _CHUNK]
            for did, rec in zip(chunk, engine.store.get_pending_many(bandit, chunk),
                                strict=True):
                found[did] = rec if isinstance(rec, TsbanditError) else rec.payload
    return found


def _apply(engine: Engine, bandit: str, items: list[RewardItem]
           ) -> list[StoreResult | TsbanditError]:
    if len(items) > 1:  # one script / transaction per chunk: Redis runs nothing else meanwhile
        return [a for start in range(0, len(items), _CHUNK)
                for a in engine.store.apply_reward_many(bandit, items[start:start + _CHUNK])]
    it = items[0]
    try:
        return [engine.store.apply_reward(bandit, it.decision_id, it.deltas, it.event, it.now,
                                          config_version=it.config_version,
                                          outcome=it.outcome)]
    except (BanditNotFoundError, StoreUnavailableError):
        raise
    except TsbanditError as exc:
        return [exc]


#: what to make of a pending record on a state: its deltas (None: the arm no longer learns)
#: and its event (whose timestamp is the reward's ``now``)
Build = Callable[["BanditState"], tuple[dict[str, np.ndarray] | None, RewardEvent]]


def apply_records(engine: Engine, state: BanditState,
                  jobs: Sequence[tuple[str, Build, float | None]]
                  ) -> tuple[BanditState, list[tuple[RewardStatus, int] | TsbanditError]]:
    """Consume pending records exactly once, each ``(record id, build, outcome)`` with what
    ``build(state)`` makes of it, in one store call (one item: the single-item call). A record
    whose deltas met a changed arm layout (``VersionConflictError``) is built again on a fresh
    read, up to three times. Returns the last state used and, per job, ``(status, version)``
    (``"arm_retired"`` for a consumed record that taught nothing) or the store's error."""
    bandit = state.spec.name
    out: list[tuple[RewardStatus, int] | TsbanditError | None] = [None] * len(jobs)
    todo = list(range(len(jobs)))
    for _attempt in range(_ATTEMPTS):
        if not todo:
            break
        built = [jobs[i][1](state) for i in todo]
        engine._maybe_decay(state.spec)
        cver = state.snapshot.config_version
        answers = _apply(engine, bandit, [
            RewardItem(jobs[i][0], deltas or {}, event.to_dict(), event.timestamp, cver,
                       jobs[i][2])
            for i, (deltas, event) in zip(todo, built, strict=True)])
        retry = []
        for i, (deltas, _event), a in zip(todo, built, answers, strict=True):
            if isinstance(a, VersionConflictError):
                retry.append(i)  # arms changed since our read: rebuild
            elif isinstance(a, TsbanditError):
                out[i] = a
            else:
                status: RewardStatus = a.status
                if deltas is None and status == "applied":
                    status = "arm_retired"  # consumed, not learned
                out[i] = (status, a.version)
                engine._cache.moved(bandit, a.version)
        todo = retry
        if todo:
            state = engine._state(bandit, fresh=True)
    for i in todo:
        out[i] = VersionConflictError(f"bandit {bandit!r} kept changing; retry the reward")
    return state, out  # type: ignore[return-value]


def _build(engine: Engine, bandit: str, did: str, r: float, payload: Mapping[str, Any],
           state: BanditState) -> tuple[dict[str, np.ndarray] | None, RewardEvent]:
    spec = state.spec
    arm, context = payload["arm"], payload.get("context")
    deltas = (spec.deltas(state.stats, arm, r, context)
              if spec.learns(arm, payload.get("config_version")) else None)
    return deltas, RewardEvent(did, engine.clock(), bandit, arm, r, context,
                               payload.get("propensity"), arm_retired=deltas is None)


def _record_plain(engine: Engine, state: BanditState, bandit: str,
                  plain: list[tuple[int, str, float]], out: list[RewardAnswer | None]) -> None:
    payloads = _payloads(engine, bandit, [did for _, did, _ in plain])
    jobs: list[tuple[str, Build, float | None]] = []
    where: list[tuple[int, str, Mapping[str, Any]]] = []
    for pos, did, r in plain:
        p = payloads[did]
        if isinstance(p, TsbanditError):
            out[pos] = p
            continue
        jobs.append((did, functools.partial(_build, engine, bandit, did, r, p), None))
        where.append((pos, did, p))
    if not jobs:
        return
    _, answers = apply_records(engine, state, jobs)
    for (pos, did, p), a in zip(where, answers, strict=True):
        if isinstance(a, TsbanditError):
            if isinstance(a, DecisionNotFoundError):
                engine._payloads.discard(did)  # purged, or of a deleted bandit
            out[pos] = a
        else:
            out[pos] = RewardResult(did, bandit, p["arm"], *a)
