"""Several metrics per decision in the engine: one pending record per metric, each consumed once.

A decision of a bandit with several metrics is logged as one pending record per metric: the
decision's own id for its *first* metric (``MetricSet.order[0]``, a metric given no other; that
record carries the decision's payload and its decision event) and ``<id>/<metric>`` for every
other metric, each with its own deadline (the metric's window, from the decision). So each
metric of a decision is applied exactly once, whenever it arrives -- the application today, the
revenue in a month -- by the store's own exactly-once :meth:`~tsbandit.stores.base.Store.
apply_reward`, and a repeat of a metric answers ``"duplicate"`` while a new metric of the same
decision is applied.

A metric ``given`` another (``revenue`` given ``apply``) is observed only for decisions where
that metric was 1. The store keeps the value each record was rewarded with (its ``outcome``),
so a reward for ``revenue`` is refused with :class:`~tsbandit.errors.GivenNotMetError` when
``apply`` was 0, and with :class:`~tsbandit.errors.GivenNotObservedError` while ``apply`` has
not arrived (send it first, or in the same request: a request's metrics are applied given
metrics first). Every check that can refuse a request runs before any of its metrics is
applied; should the store still refuse one midway (a race with the sweep), the metrics applied
before it stay applied, and a retry answers them ``"duplicate"``.

The expiry sweep settles each record on its own: the metric's default (``metric_defaults``)
is learned if it has one -- for a ``given`` metric only when its ``given`` metric was 1 -- and
an ``expired`` event names the metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..decision import RewardResult, RewardStatus, combined_status
from ..errors import (
    DecisionExpiredError,
    DecisionNotFoundError,
    GivenNotMetError,
    GivenNotObservedError,
    InvalidRewardError,
)
from ..events import ExpiredEvent, RewardEvent
from ..policies.metrics import MetricSet
from ..policies.stats import Stats
from ..stores.base import ClaimedDecision, NewDecision, PendingDecision, Store
from .payloads import first_record
from .spec import BanditSpec

if TYPE_CHECKING:
    from .engine import Engine
    from .state import BanditState

__all__ = ["expired_metric", "metric_records", "record_id", "record_metric_rewards",
           "split_record_id"]

#: separates a decision id from a metric's name in the id of that metric's pending record
RECORD_SEP = "/"


def record_id(ms: MetricSet, decision_id: str, metric: int) -> str:
    """The id of the pending record of metric ``metric`` (an index) of a decision.

    >>> ms = MetricSet({"apply": "beta", "risk": {"model": "beta", "given": "apply"}})
    >>> record_id(ms, "b~1", 0), record_id(ms, "b~1", 1)
    ('b~1', 'b~1/risk')
    """
    return decision_id if metric == ms.order[0] else f"{decision_id}{RECORD_SEP}{ms.names[metric]}"


def split_record_id(ms: MetricSet, rid: str) -> tuple[str, int]:
    """``(decision id, metric index)`` of a pending record's id (inverse of
    :func:`record_id`)."""
    did, sep, name = rid.rpartition(RECORD_SEP)
    if not sep:
        return rid, ms.order[0]
    return did, ms.index(name)


def metric_records(spec: BanditSpec, item: NewDecision, now: float) -> list[NewDecision]:
    """A decision's pending records: ``item`` (the first metric's, carrying the payload and
    the event), then one per other metric."""
    ms = spec.metrics
    assert ms is not None
    p = item.payload
    first = ms.order[0]
    out = [item]
    # what settling or rewarding the record needs, without the primary's bulk
    small = {"arm": p["arm"], "context": p.get("context"), "propensity": p.get("propensity"),
             "timestamp": now, "config_version": p.get("config_version")}
    for i in range(len(ms.names)):
        if i != first:
            out.append(NewDecision(record_id(ms, item.decision_id, i),
                                   {**small, "metric": ms.names[i]},
                                   now + spec.metric_window(ms.names[i])))
    return out


def _checked(ms: MetricSet, rewards: Any) -> dict[int, float]:
    if not isinstance(rewards, Mapping):
        raise InvalidRewardError(
            f"bandit with several metrics {list(ms.names)}: a reward is {{metric: value}}, "
            f"got {rewards!r}")
    return ms.check_metric_rewards(rewards)


def given_value(spec: BanditSpec, ms: MetricSet, record: PendingDecision, g: int,
                metric: int) -> float:
    """The value metric ``g`` took for a decision, from its pending ``record``: what it was
    rewarded with, or its default if the sweep settled it; else
    :class:`GivenNotObservedError` (pending) or :class:`GivenNotMetError` (0, or expired
    without a default)."""
    name, given = ms.names[metric], ms.names[g]
    if record.status == "rewarded" and record.outcome is not None:
        value = float(record.outcome)
    elif record.status == "expired":
        default = spec.metric_defaults.get(given)
        if default is None:
            raise GivenNotMetError(f"metric {name!r} is observed only when {given!r} is 1; "
                                   f"this decision's {given!r} expired without a value")
        value = float(default)
    else:
        raise GivenNotObservedError(
            f"metric {name!r} is observed only when {given!r} is 1, and this decision's "
            f"{given!r} has not been observed yet: send {given!r} first, or in the same request")
    if value != 1.0:
        raise GivenNotMetError(f"metric {name!r} is observed only when {given!r} is 1; this "
                               f"decision's {given!r} is {value:g}")
    return value


def _record(store: Store, bandit: str, ms: MetricSet, decision_id: str, first: PendingDecision,
            metric: int) -> PendingDecision:
    if metric == ms.order[0]:
        return first
    return store.get_pending(bandit, record_id(ms, decision_id, metric))


def _prechecks(engine: Engine, spec: BanditSpec, ms: MetricSet, bandit: str, decision_id: str,
               checked: dict[int, float], first: PendingDecision, now: float) -> None:
    """Refuse the request before anything is applied: an expired metric, a ``given`` metric
    that is 0 or not observed (in the store, or in this request)."""
    made = float(first.payload.get("timestamp", first.deadline - spec.reward_window))
    for i in checked:
        name = ms.names[i]
        deadline = first.deadline if i == ms.order[0] else made + spec.metric_window(name)
        if now > deadline:
            raise DecisionExpiredError(f"decision {decision_id!r}: the window of metric "
                                       f"{name!r} closed at {deadline} (now {now})")
        g = ms.given[i]
        if g is None:
            continue
        rec = _record(engine.store, bandit, ms, decision_id, first, g)
        if g in checked and rec.status == "pending":
            continue  # given in this request (a 0 there was refused already), applied first
        given_value(spec, ms, rec, g, i)


def record_metric_rewards(engine: Engine, state: BanditState, bandit: str, decision_id: str,
                          rewards: Any) -> RewardResult:
    """:meth:`Engine.record_reward` for a bandit with several metrics (see the module)."""
    spec = state.spec
    ms = spec.metrics
    assert ms is not None
    checked = _checked(ms, rewards)
    # the decision's own record: its status matters only to a metric given the first one
    first = first_record(engine, bandit, decision_id,
                         status=any(ms.given[i] == ms.order[0] for i in checked))
    payload = first.payload
    arm, context, made_at = payload["arm"], payload.get("context"), payload.get(
        "config_version")
    now = engine.clock()
    _prechecks(engine, spec, ms, bandit, decision_id, checked, first, now)
    statuses: dict[str, RewardStatus] = {}
    version = state.snapshot.version
    for i in sorted(checked, key=ms.order.index):
        r = checked[i]

        def build(state: BanditState, i: int = i, r: float = r
                  ) -> tuple[dict[str, np.ndarray] | None, RewardEvent]:
            learns = state.spec.learns(arm, made_at)
            deltas = (state.spec.metric_deltas(state.stats, arm, i, r, context) if learns
                      else None)
            return deltas, RewardEvent(decision_id, now, bandit, arm, r, context,
                                       payload.get("propensity"), arm_retired=not learns,
                                       metric=ms.names[i])

        state, statuses[ms.names[i]], version = engine._apply_record(
            state, record_id(ms, decision_id, i), build, outcome=r)
    return RewardResult(decision_id, bandit, arm, combined_status(statuses.values()), version,
                        metrics=statuses)


def expired_metric(spec: BanditSpec, stats: Stats, store: Store, claim: ClaimedDecision,
                   now: float) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """The sweep's deltas and event for one expired metric record: the metric's default, if
    it has one and (for a ``given`` metric) the decision's ``given`` metric was 1."""
    ms = spec.metrics
    assert ms is not None
    did, i = split_record_id(ms, claim.decision_id)
    name = ms.names[i]
    p = claim.payload
    arm, context = p["arm"], p.get("context")
    learns = spec.learns(arm, p.get("config_version"))
    default = spec.metric_defaults.get(name)
    deltas = None
    if learns and default is not None:
        g = ms.given[i]
        try:
            if g is not None:
                rec = store.get_pending(spec.name, record_id(ms, did, g))
                given_value(spec, ms, rec, g, i)
            deltas = spec.metric_deltas(stats, arm, i, default, context)
        except (GivenNotMetError, GivenNotObservedError, DecisionNotFoundError):
            default = None  # not observed for this decision: nothing to default
    event = ExpiredEvent(did, now, spec.name, arm, default if deltas is not None else None,
                         context, p.get("propensity"), arm_retired=not learns, metric=name)
    return deltas, event.to_dict()
