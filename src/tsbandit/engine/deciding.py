"""One batch of decisions drawn from a state of the bandit and recorded: the body of
:meth:`Engine.decide_batch <tsbandit.engine.Engine.decide_batch>`.

The engine draws a batch from the state it has cached -- a read would only confirm it, most of
the time -- or from a read when it has none, and records the decisions with
``put_pending_many(..., if_at=(version, config_version))``: the store writes them only if the
bandit is still at that version, in the same atomic step, so a decision is drawn from the
posterior current when it is recorded (at ``max_staleness_ms=0``), in one round trip instead of
two. When the bandit has moved, the store writes nothing and answers its snapshot, and the
batch is drawn again from it; should it have moved again meanwhile, the next draw is recorded
unconditionally -- at most one round trip stale, as every decision was before the check
(:func:`decide`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..decision import DECISION_ID_SEP, RecordedDecision
from ..errors import (
    ArmError,
    BanditNotFoundError,
    ConfigurationError,
    DecisionExistsError,
    InvalidContextError,
)
from ..stores.base import Snapshot
from ..stores.shard_routing import shard_tokens
from .keys import keyed_tokens, request_hash
from .records import new_decisions, replay
from .state import BanditState
from .sticky import claim_assignments, held_assignments

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["decide", "decide_on"]

#: verified writes of one batch before the next is unconditional: a hot bandit's version can
#: move between every answer and the next write (another worker's reward), and each attempt
#: costs a draw and a round trip -- after two, the batch drawn from the snapshot just answered
#: is recorded as a read-then-write always recorded it (at most one round trip stale), so a
#: decision never costs more than three round trips
_VERIFIED_ATTEMPTS = 2


def decide(engine: Engine, bandit: str, contexts: Any, eligible: Iterable[str] | None, k: int,
           user_ids: Sequence[str | None] | None, n: int | None,
           idempotency_key: str | None) -> list[RecordedDecision]:
    """``Engine.decide_batch``: draw from the cached state (or a read), record if still current.

    A state the caller allows as is (read within ``max_staleness``) is recorded unconditionally;
    so are decisions the version check cannot cover (idempotent, sticky, sharded), after a read.
    Otherwise the write carries ``if_at``; a moved bandit's answered snapshot is the next state
    to draw from, twice, and then the batch drawn from the last one is recorded unconditionally
    (``_VERIFIED_ATTEMPTS``). A request refused by a cached configuration nobody re-read (an arm
    another worker has just added) is tried again on a read; refused by a read one, the refusal
    stands.
    """
    args = (bandit, contexts, eligible, k, user_ids, n, idempotency_key)
    cache = engine._cache
    state = cache.unverified(bandit)
    unread = state is not None  # a cached state nobody has re-read
    if state is None:
        state = engine._state(bandit)
        if cache.recent(state):  # within the staleness the caller allows: as it is
            return _recorded(decide_on(engine, state, None, *args))
    spec = state.spec
    if (idempotency_key is not None or spec.shards > 1
            or (spec.stickiness is not None and user_ids is not None)):
        return _recorded(decide_on(engine, engine._state(bandit) if unread else state,
                                   None, *args))
    for _attempt in range(_VERIFIED_ATTEMPTS):
        at = (state.snapshot.version, state.snapshot.config_version)
        try:
            out = decide_on(engine, state, at, *args)
        except (ArmError, InvalidContextError, ConfigurationError):
            if not unread:
                raise
            state, unread = engine._state(bandit), False  # the cache's refusal? read and see
            continue
        except BanditNotFoundError:
            engine._forget(bandit)
            raise
        if not isinstance(out, Snapshot):
            cache.verified(state)
            return out
        state, unread = cache.install(bandit, out), False
    return _recorded(decide_on(engine, state, None, *args))


def _recorded(out: list[RecordedDecision] | Snapshot) -> list[RecordedDecision]:
    assert not isinstance(out, Snapshot)  # an unconditional write records or raises
    return out


def decide_on(engine: Engine, state: BanditState, if_at: tuple[int, int] | None,
              bandit: str, contexts: Any, eligible: Iterable[str] | None, k: int,
              user_ids: Sequence[str | None] | None, n: int | None,
              idempotency_key: str | None) -> list[RecordedDecision] | Snapshot:
    """Draw the batch from ``state`` and record it (arguments as ``Engine.decide_batch``).

    With ``if_at`` the decisions are recorded only if the bandit is still at that
    ``(version, config_version)``; otherwise nothing is recorded and the store's current
    snapshot is returned. Called without the engine lock (it takes it to draw).
    """
    core = state.spec.core
    model = core.model
    if model.contextual:
        x = model.check_contexts(contexts)
        assert x is not None
        count = x.shape[0]
    else:
        if contexts is not None and any(c is not None for c in contexts):
            raise InvalidContextError(f"bandit {bandit!r} takes no context")
        x = None
        count = 1 if n is None else int(n)
        if count < 1:
            raise ConfigurationError(f"n == {n!r}, must be >= 1")
    if user_ids is not None and len(user_ids) != count:
        raise ConfigurationError(f"got {len(user_ids)} user ids for {count} decisions")
    mask = core.eligible(eligible, k)
    now = engine.clock()
    spec = state.spec
    sticky = (spec.stickiness is not None and user_ids is not None
              and any(u is not None for u in user_ids))
    if sticky:
        assert user_ids is not None
        held, fresh = held_assignments(engine.store, spec, user_ids, k, mask, now)
    post, stats = state.posterior, state.stats
    applied = None
    with engine._lock:
        if core.explains:  # a constrained rule: what it applied is logged and answered
            chosen, applied = core.choose_explained(post, stats, engine._rng, x, mask, k,
                                                    None if x is not None else count)
        elif count == 1 and k == 1 and mask is None:
            # one user, every arm: the rule's single-decision path (the same choice from
            # the same random numbers; compiled kernels when tsbandit[fast] is installed)
            one = core.rule.choose_one(model, post, stats, engine._rng,
                                       None if x is None else x[0])
            chosen = np.array([[one]])
        else:
            chosen = core.choose(post, stats, engine._rng, x, mask, k,
                                 None if x is not None else count)
        allocation = None
        if x is None and k == 1:
            first, allocation = state.first_slot(engine._side_rng, mask)
            probs = first[chosen]
        else:
            probs = core.propensities(post, stats, chosen, engine._side_rng, x, mask)
    keyed: dict[str, Any] = {}
    tokens: list[str] = []
    if idempotency_key is not None:
        tokens = keyed_tokens(idempotency_key, count)
        keyed["request"] = request_hash(
            count, x, k, None if mask is None
            else [a for a, m in zip(core.arms, mask, strict=True) if m], user_ids)
        keyed["model_version"] = state.snapshot.version
    if spec.shards > 1:  # the batch's ids on one shard: one atomic write, one slot
        tokens = shard_tokens(tokens or [uuid.uuid4().hex for _ in range(count)],
                              spec.shards)
    sticky_of = None
    if sticky:
        assert user_ids is not None
        tokens = tokens or [uuid.uuid4().hex for _ in range(count)]
        probs = np.array(probs, dtype=float)
        ids = [f"{bandit}{DECISION_ID_SEP}{t}" for t in tokens]
        sticky_of = claim_assignments(engine.store, spec, user_ids, held, fresh, chosen,
                                      probs, ids, state.snapshot.config_version, now, k,
                                      mask)
        if any(s not in (None, d) for s, d in zip(sticky_of, ids, strict=True)):
            allocation = None  # some rows show an earlier draw, not today's allocation
    items, out = new_decisions(state, chosen, probs, allocation, x, user_ids, now,
                               idempotency_key, tokens, keyed, applied, sticky_of)
    # one round trip for the whole batch, all or nothing (with if_at: only if still current)
    try:
        moved = (engine.store.put_pending_many(bandit, items) if if_at is None
                 else engine.store.put_pending_many(bandit, items, if_at=if_at))
    except DecisionExistsError:
        if idempotency_key is None:
            raise
        # the key's decisions are recorded already (a retry, or a concurrent twin that
        # won the insert): answer those
        return replay(engine.store, core.arms, bandit, idempotency_key,
                      [d.decision_id for d in out], keyed["request"])
    if moved is not None:
        return moved
    if idempotency_key is None:  # random ids only (see engine.payloads)
        engine._keep_payloads(bandit, items, out)
    return out
