"""Per-slot rewards of rankings in the engine: one pending record per slot, each consumed once.

A ranking model (:class:`~tsbandit.policies.ranking.RankingModel`: the position-based model,
the cascade model) learns from every slot of a ranking -- a carousel's second and third clicks
too. A ranking decision (``k > 1``) of such a bandit is logged as one pending record per slot:
the decision's own id for slot 0 (it carries the payload and the decision event) and
``<id>/<slot>`` for the others, all with the decision's deadline. A reward names its slot
(``record_reward(id, 1, slot=2)``) or gives every slot at once (``record_reward(id, [0, 1,
None])``, None for a slot not known yet); each slot is applied exactly once, whenever it
arrives, as the model's :meth:`~tsbandit.policies.ranking.RankingModel.slot_delta` (whose
deltas, in any order, sum to the whole ranking's). The expiry sweep settles each slot with the
bandit's ``default_reward`` (0 is what the cascade model expects of an unclicked slot).

Bandits with other models learn from the first slot only, as before: a reward for another
slot is refused (:class:`~tsbandit.errors.InvalidSlotError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..decision import RewardResult, RewardStatus, combined_status
from ..errors import InvalidSlotError
from ..events import ExpiredEvent, RewardEvent
from ..policies.ranking import RankingModel
from ..policies.stats import Stats
from ..stores.base import ClaimedDecision, NewDecision
from .payloads import first_record
from .spec import BanditSpec

if TYPE_CHECKING:
    from .engine import Engine
    from .state import BanditState

__all__ = ["expired_slot", "record_slot_rewards", "slot_record_id", "slot_records"]

SLOT_SEP = "/"


def slot_record_id(decision_id: str, slot: int) -> str:
    """The id of slot ``slot``'s pending record.

    >>> slot_record_id("b~1", 0), slot_record_id("b~1", 2)
    ('b~1', 'b~1/2')
    """
    return decision_id if slot == 0 else f"{decision_id}{SLOT_SEP}{slot}"


def slot_records(item: NewDecision, ranking: Sequence[str], position_propensities:
                 Sequence[float]) -> list[NewDecision]:
    """A ranking decision's records: ``item`` (slot 0), then one per other slot."""
    p = item.payload
    out = [item]
    for j in range(1, len(ranking)):
        out.append(NewDecision(slot_record_id(item.decision_id, j), {
            "arm": ranking[j], "ranking": list(ranking), "slot": j,
            "context": p.get("context"), "propensity": float(position_propensities[j]),
            "timestamp": p.get("timestamp"), "config_version": p.get("config_version")},
            item.deadline))
    return out


def _indices(spec: BanditSpec, ranking: list[str], made_at: Any) -> list[int] | None:
    """The ranking's arm indices, or None when an arm of it was retired since."""
    if not all(spec.learns(a, made_at) for a in ranking):
        return None
    return [spec.arms.index(a) for a in ranking]


def record_slot_rewards(engine: Engine, state: BanditState, bandit: str, decision_id: str,
                        reward: Any, slot: int | None) -> RewardResult:
    """:meth:`Engine.record_reward` for a ranking model (see the module)."""
    spec = state.spec
    model = spec.model
    assert isinstance(model, RankingModel)
    first = first_record(engine, bandit, decision_id)  # its status is not needed
    payload = first.payload
    ranking = list(payload.get("ranking") or [payload["arm"]])
    k = len(ranking)
    if isinstance(reward, (list, tuple, np.ndarray)):
        if slot is not None:
            raise InvalidSlotError("give a slot and one reward, or one reward per slot")
        values = model.check_slot_rewards(reward, k)
        todo = {j: float(v) for j, v in enumerate(values) if not np.isnan(v)}
        if not todo:
            raise InvalidSlotError("every slot's reward is None: nothing to record")
    else:
        j = model.check_slot(0 if slot is None else slot, k)
        todo = {j: model.check_reward(reward)}
    pp = payload.get("position_propensities")
    now = engine.clock()
    statuses: dict[int, RewardStatus] = {}
    version = state.snapshot.version
    for j, r in sorted(todo.items()):

        def build(state: BanditState, j: int = j, r: float = r
                  ) -> tuple[dict[str, np.ndarray] | None, RewardEvent]:
            spec = state.spec
            idx = _indices(spec, ranking, payload.get("config_version"))
            deltas = None if idx is None else dict(
                model.slot_delta(len(spec.arms), idx, j, r))
            return deltas, RewardEvent(
                decision_id, now, bandit, ranking[j], r, payload.get("context"),
                payload.get("propensity") if j == 0 or pp is None else pp[j],
                arm_retired=idx is None, slot=j)

        state, statuses[j], version = engine._apply_record(
            state, slot_record_id(decision_id, j), build, outcome=r)
    return RewardResult(decision_id, bandit, ranking[min(todo)],
                        combined_status(statuses.values()), version, slots=statuses)


def expired_slot(spec: BanditSpec, stats: Stats, claim: ClaimedDecision, now: float
                 ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """The sweep's deltas and event for one expired slot record (the bandit's default)."""
    model = spec.model
    assert isinstance(model, RankingModel)
    did, sep, tail = claim.decision_id.rpartition(SLOT_SEP)
    j = int(tail) if sep and tail.isdigit() else 0
    did = did if sep and tail.isdigit() else claim.decision_id
    p = claim.payload
    ranking = list(p.get("ranking") or [p["arm"]])
    idx = _indices(spec, ranking, p.get("config_version"))
    default = spec.default_reward
    deltas = None
    if idx is not None and default is not None:
        deltas = dict(model.slot_delta(len(spec.arms), idx, j, default))
    pp = p.get("position_propensities")
    prop = p.get("propensity") if j == 0 or pp is None else pp[j]
    event = ExpiredEvent(did, now, spec.name, ranking[j], default, p.get("context"), prop,
                         arm_retired=idx is None, slot=j)
    return deltas, event.to_dict()
