"""What the engine records for a decision: the pending payload, the event, the answer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..decision import DECISION_ID_SEP, RecordedDecision
from ..errors import DecisionNotFoundError, IdempotencyConflictError
from ..events import DecisionEvent
from ..policies.ranking import RankingModel
from ..stores.base import NewDecision, Store
from .metric_records import metric_records
from .slot_records import slot_records
from .state import BanditState

__all__ = ["new_decisions", "replay"]


def new_decisions(state: BanditState, chosen: np.ndarray, probs: np.ndarray,
                  allocation: dict[str, float] | None, x: np.ndarray | None,
                  user_ids: Sequence[str | None] | None, now: float, key: str | None,
                  tokens: list[str], keyed: dict[str, Any],
                  applied: Sequence[str] | None = None,
                  sticky_of: Sequence[str | None] | None = None
                  ) -> tuple[list[NewDecision], list[RecordedDecision]]:
    """The store items (pending payload + decision event) and the answers of ``n`` choices
    ``chosen`` ``(n, k)`` with their propensities ``probs`` ``(n, k)``.

    ``tokens`` are the ids' tokens derived from the idempotency ``key`` (empty: random ids);
    ``keyed`` what a replay needs (the request's hash and the model version), stored in the
    payload when a key is given; ``applied`` what a constrained rule applied per decision;
    ``sticky_of`` the decision whose draw each shows (sticky users).
    """
    spec, snapshot = state.spec, state.snapshot
    bandit, arms = spec.name, spec.arms
    version, config_version = snapshot.version, snapshot.config_version
    ms = spec.metrics
    per_slot = isinstance(spec.model, RankingModel)
    deadline = now + (spec.reward_window if ms is None else
                      spec.metric_window(ms.names[ms.order[0]]))
    items = []
    out = []
    for i in range(chosen.shape[0]):
        row = chosen[i]
        ranking = tuple(arms[j] for j in row)
        did = f"{bandit}{DECISION_ID_SEP}{tokens[i] if tokens else uuid.uuid4().hex}"
        ctx = None if x is None else [float(v) for v in x[i]]
        pp = tuple(float(p) for p in probs[i])
        user_id = None if user_ids is None else user_ids[i]
        payload = {"arm": ranking[0], "ranking": list(ranking), "context": ctx,
                   "propensity": pp[0], "timestamp": now, "user_id": user_id,
                   "config_version": config_version}
        how = None if applied is None else applied[i]
        held = None if sticky_of is None else sticky_of[i]
        if per_slot and len(ranking) > 1:  # each slot's reward event logs its propensity
            payload["position_propensities"] = list(pp)
        if keyed:  # what a replay needs to answer the same decision, and the request's hash
            payload.update(keyed, position_propensities=list(pp))
        if how is not None:
            payload["applied"] = how
        if held is not None:  # GET /v1/decisions/{id} shows whose draw a sticky visit shows
            payload["sticky_of"] = held
        event = DecisionEvent(did, now, bandit, ranking[0], ctx, ranking, pp[0], pp, user_id,
                              version, allocation, how, held)
        item = NewDecision(did, payload, deadline, event.to_dict())
        if ms is not None:  # one pending record per metric, each consumed once
            items.extend(metric_records(spec, item, now))
        elif per_slot and len(ranking) > 1:  # one per slot of a ranking model's ranking
            items.extend(slot_records(item, ranking, pp))
        else:
            items.append(item)
        out.append(RecordedDecision(
            ranking[0], int(row[0]), ranking, pp[0], pp, how, decision_id=did, bandit=bandit,
            model_version=version, timestamp=now, deadline=deadline, idempotency_key=key,
            sticky_of=held))
    return items, out


def replay(store: Store, arms: Sequence[str], bandit: str, key: str, ids: list[str],
           request: str) -> list[RecordedDecision]:
    """The decisions an idempotency key recorded, if they were made for ``request``."""
    out = []
    for did in ids:
        try:
            p = store.get_pending(bandit, did)
        except DecisionNotFoundError:
            raise IdempotencyConflictError(
                f"idempotency key {key!r}: some of its decisions on {bandit!r} are no "
                "longer kept; use a new key") from None
        pl = p.payload
        if pl.get("request") != request:
            raise IdempotencyConflictError(
                f"idempotency key {key!r} was used on {bandit!r} for another request "
                "(context, eligible arms, k, user ids or count differ); use a new key")
        arm = pl["arm"]
        out.append(RecordedDecision(
            arm, arms.index(arm) if arm in arms else None, tuple(pl["ranking"]),
            float(pl["propensity"]), tuple(float(v) for v in pl["position_propensities"]),
            pl.get("applied"), decision_id=did, bandit=bandit,
            model_version=int(pl["model_version"]),
            timestamp=float(pl["timestamp"]), deadline=p.deadline, replayed=True,
            idempotency_key=key, sticky_of=pl.get("sticky_of")))
    return out
