"""The tutorial's endpoints (Part 9) on the default bandit of five credit-card offers.

``GET /recommend/{customer_id}`` makes a real decision (recorded as pending, with the customer as
``user_id``) and remembers it as the customer's latest. ``POST /reward`` with ``customer_id``,
``arm`` and ``reward`` joins that decision and applies the reward **exactly once**: a repeat
answers ``"duplicate"``; a reward for another arm than the one recommended is refused (409
``arm_mismatch``, nothing applied); a customer with no recommendation gets 404. A client that
keeps the ``decision_id`` from ``/recommend`` may send it along and needs no join at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Path, Request
from fastapi.responses import JSONResponse

from ..engine import Engine, split_decision_id
from ..errors import ArmMismatchError, BanditNotFoundError, DecisionNotFoundError
from .deps import EngineDep, RouteTable, RuntimeDep
from .errors import ERROR_RESPONSES, ErrorResponse
from .fastpath import NO, FastAnswer, FastRequest, FastRoutes, json_answer, number, short_str
from .routes import IDEMPOTENCY_KEY
from .runtime import JoinEntry, Runtime
from .schemas import (
    IdempotencyKey,
    RecommendOut,
    TutorialArmStats,
    TutorialRewardOut,
    TutorialRewardRequest,
)

__all__ = ["fast", "table"]

T = TypeVar("T")

table = RouteTable(responses=ERROR_RESPONSES, tags=["tutorial"])
#: on an answer an Idempotency-Key found recorded already
_REPLAYED = {"Idempotent-Replayed": "true"}
_404 = {404: {"model": ErrorResponse, "description": "No such customer decision or bandit"}}


def _on_default(runtime: Runtime, call: Callable[[], T]) -> T:
    """Run ``call``; if the default bandit is missing (store was down at start-up, or it was
    deleted) and the settings want it, create it and run ``call`` again."""
    try:
        return call()
    except BanditNotFoundError:
        if not runtime.settings.default_bandit:
            raise
        runtime.ensure_default_bandit()
        return call()


@table.route("GET", "/recommend/{customer_id}", "write", operation_id="recommend",
             response_model=RecommendOut,
             responses={**_404, 409: {"model": ErrorResponse,
                                      "description": "Idempotency key reused"}})
async def recommend(
    customer_id: Annotated[str, Path(min_length=1, max_length=256)],
    engine: EngineDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Select the best offer for this customer via Thompson sampling (records a decision).

    ``Idempotency-Key`` makes a retry answer the same recommendation (same decision)."""
    runtime: Runtime = request.app.state.runtime  # not via RuntimeDep: one resolution less
    content, headers = await _recommend(runtime, engine, customer_id, idempotency_key)
    return JSONResponse(content, headers=headers)


async def _recommend(runtime: Runtime, engine: Engine, customer_id: str, idempotency_key:
                     str | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    """What :func:`recommend` (and its fast path) answers: the content and headers."""
    # Concurrent recommends share a batch, as POST .../decisions do (service/coalesce.py): the
    # customer is the decision's user_id (sticky bandits keep their assignment per customer).
    name = runtime.settings.default_bandit_name
    decisions = runtime.decisions
    try:
        d = await decisions.decide(engine, name, user_id=customer_id,
                                   idempotency_key=idempotency_key)
    except BanditNotFoundError:
        if not runtime.settings.default_bandit:
            raise
        await decisions.call(runtime.ensure_default_bandit)
        d = await decisions.decide(engine, name, user_id=customer_id,
                                   idempotency_key=idempotency_key)
    runtime.join.remember(name, customer_id, JoinEntry(d.decision_id, d.arm))
    # exactly RecommendOut's fields and JSON types: serialized directly, without FastAPI
    # validating the answer against the response model a second time
    return ({"customer_id": customer_id, "offer": d.arm, "decision_id": d.decision_id},
            _REPLAYED if d.replayed else None)


fast = FastRoutes()


@fast.route("GET", "/recommend/{customer_id}", "write")
async def recommend_fast(req: FastRequest) -> FastAnswer | None:
    """:func:`recommend` on the fast path (service/fastpath.py): the same answers; a customer
    id or ``Idempotency-Key`` the route would refuse goes to the route."""
    customer_id = short_str(req.params["customer_id"], 1, 256)
    key = req.header_matching(b"idempotency-key", IDEMPOTENCY_KEY)
    if customer_id is NO or key is NO:
        return None
    runtime: Runtime = req.runtime
    content, headers = await _recommend(runtime, runtime.engine, customer_id, key)
    return json_answer(content, headers)


def _joined(engine: Engine, runtime: Runtime, customer_id: str,
            decision_id: str | None) -> JoinEntry:
    name = runtime.settings.default_bandit_name
    if decision_id is not None:
        if split_decision_id(decision_id)[0] != name:
            raise DecisionNotFoundError(f"unknown decision id {decision_id!r}")
        pending = engine.pending(decision_id)
        if pending.get("user_id") != customer_id:
            raise DecisionNotFoundError(
                f"decision {decision_id!r} was not made for customer {customer_id!r}")
        return JoinEntry(decision_id, pending["arm"])
    entry = runtime.join.lookup(name, customer_id)
    if entry is None:
        raise DecisionNotFoundError(
            f"no recommendation known for customer {customer_id!r}; call "
            "/recommend first, or send the decision_id it returned")
    return entry


@table.route("POST", "/reward", "write", operation_id="reward_offer",
             response_model=TutorialRewardOut, responses={
                 **_404,
                 409: {"model": ErrorResponse, "description": "Arm differs from the one shown"},
                 410: {"model": ErrorResponse, "description": "Past the reward window"}})
async def reward(body: TutorialRewardRequest, engine: EngineDep, request: Request) -> Any:
    """Record the customer's response to the offered card, exactly once."""
    runtime: Runtime = request.app.state.runtime  # not via RuntimeDep: one resolution less
    return JSONResponse(await _reward(runtime, engine, body.customer_id, body.arm, body.reward,
                                      body.decision_id))


async def _reward(runtime: Runtime, engine: Engine, customer_id: str, arm: str, value: float,
                  decision_id: str | None) -> dict[str, Any]:
    """What :func:`reward` (and its fast path) answers: the JSON content."""
    rewards = runtime.rewards
    # the join from memory when the customer's last recommendation is known here; a given
    # decision_id is read (its customer checked) where the engine runs
    entry = (runtime.join.lookup(runtime.settings.default_bandit_name, customer_id)
             if decision_id is None else None)
    if entry is None:
        entry = await rewards.call(functools.partial(_joined, engine, runtime, customer_id,
                                                     decision_id))
    if entry.arm != arm:
        raise ArmMismatchError(f"customer {customer_id!r} was recommended {entry.arm!r}, "
                               f"not {arm!r}; nothing applied")
    # concurrent rewards share one record_rewards (service/reward_coalesce.py)
    out = await rewards.record(engine, entry.decision_id, value)
    status = {"duplicate": "duplicate", "arm_retired": "arm_retired"}.get(out.status, "updated")
    # exactly TutorialRewardOut's fields and JSON types, serialized directly
    return {"status": status, "customer_id": customer_id, "arm": out.arm,
            "decision_id": out.decision_id}


_REWARD_FIELDS = frozenset(TutorialRewardRequest.model_fields)


@fast.route("POST", "/reward", "write", body=True)
async def reward_fast(req: FastRequest) -> FastAnswer | None:
    """:func:`reward` on the fast path (service/fastpath.py): a body of the exact types and
    ranges :class:`TutorialRewardRequest` takes is served here, anything else by
    :func:`reward`."""
    body = req.json_object(_REWARD_FIELDS)
    if body is None:
        return None
    customer_id = short_str(body.get("customer_id"), 1, 256)
    arm = short_str(body.get("arm"), 1, 128)
    value = number(body.get("reward"))
    decision_id = body.get("decision_id")
    if customer_id is NO or arm is NO or value is NO or (
            decision_id is not None and short_str(decision_id, 1, 300) is NO):
        return None
    runtime: Runtime = req.runtime
    return json_answer(await _reward(runtime, runtime.engine, customer_id, arm, value,
                                     decision_id))


@table.route("GET", "/stats", "read", operation_id="get_offer_stats",
             response_model=dict[str, TutorialArmStats],
             responses=_404)
def stats(engine: EngineDep, runtime: RuntimeDep) -> Any:
    """Monitoring: per offer alpha, beta, posterior mean, pulls, 95% interval, P(best)."""
    name = runtime.settings.default_bandit_name
    summary = _on_default(runtime, lambda: engine.stats(name))
    return {
        row["arm"]: {"alpha": row.get("alpha"), "beta": row.get("beta"), "mean": row["mean"],
                     "total_pulls": round(row["pulls"]), "lower": row["lower"],
                     "upper": row["upper"], "prob_best": row["prob_best"]}
        for row in summary["arms"]
    }
