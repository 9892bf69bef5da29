"""API v1: bandits, arms, decisions, rewards, stats. Each route calls the engine and returns."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from ..engine import IDEMPOTENCY_KEY_PATTERN, BanditSpec, Engine, bandit_spec, split_decision_id
from ..errors import (
    BanditNotFoundError,
    ConfigurationError,
    DecisionNotFoundError,
    InvalidRewardError,
    TsbanditError,
)
from .coalesce import DecisionCoalescer
from .deps import EngineDep, RouteTable, RuntimeDep, SettingsDep
from .errors import ERROR_RESPONSES, ErrorResponse
from .fastpath import (
    NO,
    FastAnswer,
    FastRequest,
    FastRoutes,
    json_answer,
    number,
    short_str,
    str_list,
    vector,
)
from .reward_coalesce import RewardCoalescer
from .runtime import Runtime
from .schemas import (
    AddArmRequest,
    BanditCreate,
    BanditList,
    BanditOut,
    BatchDecisionRequest,
    BatchDecisionResponse,
    DecisionOut,
    DecisionRequest,
    IdempotencyKey,
    PendingOut,
    RewardOut,
    RewardRequest,
    StatsOut,
)

__all__ = ["fast", "table"]


def _err(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {404: "Unknown bandit, arm or decision",
            409: "Conflict (exists, last arm, idempotency key reused...)",
            410: "Decision past its reward window"}
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


table = RouteTable(prefix="/v1", responses=ERROR_RESPONSES)
Name = Annotated[str, Path(description="Bandit name", examples=["credit_card_offers"])]


def _bandit_out(spec: BanditSpec) -> dict[str, Any]:
    """The stored configuration as :class:`BanditOut` has it: a bandit with several metrics
    shows them as creating one takes them (arms by name, not index)."""
    cfg = spec.to_config()
    if spec.metrics is None:
        return cfg
    arms = list(spec.arms)
    model, rule = cfg["model"], dict(cfg["rule"])
    constraints = rule.pop("constraints", None) or []
    baseline = rule.pop("baseline", None)
    return {
        **cfg, "model": {"kind": "metrics"}, "rule": rule,
        "metrics": {name: {"model": m["model"], "given": m.get("given")}
                    for name, m in model["metrics"].items()},
        "objective": model["objective"],
        "constraints": [{**c, "relative_to": arms[c["relative_to"]]}
                        if c.get("relative_to") is not None else c for c in constraints],
        "costs": dict(zip(arms, model.get("costs") or (), strict=False)),
        "baseline": None if baseline is None else arms[baseline],
        "metric_windows": cfg.get("metric_windows", {}),
        "metric_defaults": cfg.get("metric_defaults", {}),
    }


# ----- bandits --------------------------------------------------------------------------------
@table.route("POST", "/bandits", "write", operation_id="create_bandit",
             status_code=status.HTTP_201_CREATED, response_model=BanditOut, responses=_err(409),
             tags=["bandits"])
def create_bandit(body: BanditCreate, engine: EngineDep, settings: SettingsDep) -> Any:
    """Create a bandit (409 ``bandit_exists`` if the name is taken).

    With ``metrics`` instead of ``model``, a bandit learns several metrics per decision (an
    application today, revenue in a month): an ``objective`` over them, ``constraints``,
    per-arm ``costs``, a ``baseline`` arm, per-metric windows and defaults.
    """
    if len(body.arms) > settings.max_arms:
        raise ConfigurationError(f"{len(body.arms)} arms, at most {settings.max_arms} allowed")
    spec = bandit_spec(body.name, body.arms, max_features=settings.max_features,
                       **body.spec_options())
    return _bandit_out(engine.create_bandit(spec))


@table.route("GET", "/bandits", "read", operation_id="list_bandits",
             response_model=BanditList, tags=["bandits"])
def list_bandits(engine: EngineDep) -> Any:
    """Names of all bandits."""
    return {"bandits": engine.list_bandits()}


@table.route("GET", "/bandits/{name}", "read", operation_id="get_bandit",
             response_model=BanditOut, responses=_err(404), tags=["bandits"])
def get_bandit(name: Name, engine: EngineDep) -> Any:
    """A bandit's configuration."""
    return _bandit_out(engine.get_bandit(name))


@table.route("DELETE", "/bandits/{name}", "write", operation_id="delete_bandit",
             status_code=status.HTTP_204_NO_CONTENT, responses=_err(404), tags=["bandits"])
def delete_bandit(name: Name, engine: EngineDep, runtime: RuntimeDep) -> Response:
    """Delete a bandit with its statistics, pending decisions and events."""
    engine.delete_bandit(name)
    runtime.join.forget(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ----- arms -----------------------------------------------------------------------------------
@table.route("POST", "/bandits/{name}/arms", "write", operation_id="add_arm",
             status_code=status.HTTP_201_CREATED, response_model=BanditOut,
             responses=_err(404, 409), tags=["arms"])
def add_arm(name: Name, body: AddArmRequest, engine: EngineDep, settings: SettingsDep) -> Any:
    """Add an arm; it starts from the prior (409 ``duplicate_arm`` if present)."""
    if len(engine.get_bandit(name).arms) >= settings.max_arms:
        raise ConfigurationError(f"bandit {name!r} has {settings.max_arms} arms, the most allowed")
    return _bandit_out(engine.add_arm(name, body.arm))


@table.route("DELETE", "/bandits/{name}/arms/{arm:path}", "write", operation_id="retire_arm",
             response_model=BanditOut, responses=_err(404, 409), tags=["arms"])
def retire_arm(name: Name, arm: str, engine: EngineDep) -> Any:
    """Retire an arm; its pending decisions are consumed, not learned: a later reward for one
    answers ``arm_retired``, also once an arm of that name is added again (409 ``last_arm``).
    The arm is the rest of the path, so names with ``/`` can be retired (``a/b`` or
    ``a%2Fb``)."""
    return _bandit_out(engine.retire_arm(name, arm))


# ----- decisions ------------------------------------------------------------------------------
#: on an answer an Idempotency-Key found recorded already (as Stripe's API does)
_REPLAYED = {"Idempotent-Replayed": "true"}


@table.route("POST", "/bandits/{name}/decisions", "write", operation_id="decide",
             response_model=DecisionOut, responses=_err(404, 409), tags=["decisions"])
async def decide(name: Name, body: DecisionRequest, engine: EngineDep, request: Request,
                 idempotency_key: IdempotencyKey = None) -> Any:
    """Choose an arm (or rank ``k`` arms) for one user and record the pending decision.

    With an ``Idempotency-Key`` header a retry answers the decision the first request
    recorded (``Idempotent-Replayed: true``); the same key with another request is 409
    ``idempotency_conflict``.
    """
    # Concurrent requests of one bandit share a batch (service/coalesce.py), which runs the
    # engine in the executor unless offload is off. The coalescer is the app's (taken from the
    # request: one dependency resolution less on the hottest route); the engine is injected.
    decisions: DecisionCoalescer = request.app.state.runtime.decisions
    d = await decisions.decide(engine, name, body.context, body.eligible_arms, body.k,
                               body.user_id, idempotency_key=idempotency_key)
    # EngineDecision.to_dict() has exactly DecisionOut's fields and JSON types: serialized
    # directly, without FastAPI validating it against the response model a second time
    # (tests/service/test_fuzz.py checks every response against the schema)
    return JSONResponse(d.to_dict(), headers=_REPLAYED if d.replayed else None)


fast = FastRoutes()
_DECIDE_FIELDS = frozenset(DecisionRequest.model_fields)
#: the Idempotency-Key header as IdempotencyKey declares it (1-255 printable ASCII)
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@fast.route("POST", "/v1/bandits/{name}/decisions", "write", body=True)
async def decide_fast(req: FastRequest) -> FastAnswer | None:
    """:func:`decide` on the fast path (service/fastpath.py): a request whose body and header
    are of the exact types and ranges :class:`DecisionRequest` and ``IdempotencyKey`` take is
    served here, anything else by :func:`decide`."""
    body = req.json_object(_DECIDE_FIELDS)
    if body is None:
        return None
    context = body.get("context")
    if context is not None and (context := vector(context, 4096)) is NO:
        return None
    eligible = body.get("eligible_arms")
    if eligible is not None and str_list(eligible, 1, 10_000, 1, 128) is NO:
        return None
    k = body.get("k", 1)
    if type(k) is not int or not 1 <= k <= 10_000:
        return None
    user_id = body.get("user_id")
    if user_id is not None and short_str(user_id, 1, 256) is NO:
        return None
    key = req.header_matching(b"idempotency-key", IDEMPOTENCY_KEY)
    if key is NO:
        return None
    runtime: Runtime = req.runtime
    d = await runtime.decisions.decide(runtime.engine, req.params["name"], context, eligible,
                                       k, user_id, idempotency_key=key)
    return json_answer(d.to_dict(), _REPLAYED if d.replayed else None)


@table.route("POST", "/bandits/{name}/decisions/batch", "write", operation_id="decide_batch",
             response_model=BatchDecisionResponse, responses=_err(404, 409),
             tags=["decisions"])
def decide_batch(name: Name, body: BatchDecisionRequest, engine: EngineDep,
                 settings: SettingsDep, response: Response,
                 idempotency_key: IdempotencyKey = None) -> Any:
    """Decisions for many users in one request (one store read, vectorized choice).

    ``Idempotency-Key`` works as for a single decision: a retry answers the whole batch the
    first request recorded.
    """
    n = body.count()
    if n > settings.max_batch:
        raise ConfigurationError(f"{n} decisions in one batch, at most {settings.max_batch}")
    out = engine.decide_batch(name, body.contexts, body.eligible_arms, body.k, body.user_ids,
                              n=None if body.contexts is not None else n,
                              idempotency_key=idempotency_key)
    if out and out[0].replayed:
        response.headers.update(_REPLAYED)
    return {"decisions": [d.to_dict() for d in out]}


@table.route("GET", "/decisions/{decision_id}", "private", operation_id="get_decision",
             response_model=PendingOut, responses=_err(404), tags=["decisions"])
def get_decision(decision_id: str, engine: EngineDep) -> Any:
    """A logged decision and its status (pending, rewarded, expired...); the id names its
    bandit. It holds the user id and the context, so it needs the API key whenever one is
    configured (like ``/events``)."""
    try:
        return engine.pending(decision_id)
    except BanditNotFoundError:
        raise DecisionNotFoundError(f"unknown decision id {decision_id!r}") from None


def _same_bandit(name: str, decision_id: str) -> None:
    if split_decision_id(decision_id)[0] != name:
        raise DecisionNotFoundError(f"decision {decision_id!r} is not a decision of {name!r}")


# ----- rewards --------------------------------------------------------------------------------
@table.route("POST", "/bandits/{name}/rewards", "write", operation_id="record_reward",
             response_model=RewardOut, responses=_err(404, 409, 410), tags=["rewards"])
async def reward(name: Name, body: RewardRequest, engine: EngineDep, request: Request) -> Any:
    """Apply a reward exactly once: a repeat answers 200 with ``duplicate: true``.

    A bandit with several metrics takes ``metrics`` (``{metric: value}``): each metric of a
    decision is applied once, whenever it arrives (``metrics`` in the answer: each one's
    status); a metric ``given`` another is refused while that one is unknown (409
    ``given_not_observed``) or was 0 (422 ``given_not_met``); an undeclared metric is 422
    ``unknown_metric``.

    A ranking model (position_based, cascade) learns from every slot: ``slot`` with
    ``reward``, or ``slot_rewards`` (one per slot, null for not yet); each slot is applied
    once (``slots`` in the answer). Other models learn from slot 0 only (another slot: 422
    ``invalid_reward``).

    Unknown decision 404 ``decision_not_found``; past its window 410 ``decision_expired``;
    outside the model's domain 422 ``invalid_reward`` (nothing applied).
    """
    given, value = (("metrics", body.metrics) if body.metrics is not None
                    else ("slot_rewards", body.slot_rewards) if body.slot_rewards is not None
                    else ("reward", body.reward))
    out = await _record(request.app.state.runtime, engine, name, body.decision_id, value,
                        body.slot, given)
    # RewardResult.to_dict() has exactly RewardOut's fields and JSON types: serialized
    # directly, as decisions are (tests/service/test_fuzz.py checks answers against the schema)
    return JSONResponse(out)


async def _record(runtime: Runtime, engine: Engine, name: str, decision_id: str, value: Any,
                  slot: int | None, given: str) -> dict[str, Any]:
    """What :func:`reward` (and its fast path) answers: the reward's result as JSON content;
    ``given`` names the field ``value`` came in (``reward``, ``metrics``, ``slot_rewards``)."""
    _same_bandit(name, decision_id)
    # Concurrent rewards of one bandit share one record_rewards (service/reward_coalesce.py):
    # one atomic store write for the batch, each request its own answer.
    rewards: RewardCoalescer = runtime.rewards
    try:
        out = await rewards.record(engine, decision_id, value, slot)
    except InvalidRewardError as exc:
        if type(exc) is InvalidRewardError:  # perhaps the wrong field for this bandit
            await rewards.call(functools.partial(_wrong_field, engine, name, given))
        raise
    return out.to_dict()


_REWARD_FIELDS = frozenset({"decision_id", "reward", "slot"})


@fast.route("POST", "/v1/bandits/{name}/rewards", "write", body=True)
async def reward_fast(req: FastRequest) -> FastAnswer | None:
    """:func:`reward` on the fast path (service/fastpath.py): ``{"decision_id": str, "reward":
    number}`` (and ``slot``: an int or null) of the exact types and ranges
    :class:`RewardRequest` takes is served here; anything else (``metrics``, ``slot_rewards``,
    another type, a missing field...) by :func:`reward`."""
    body = req.json_object(_REWARD_FIELDS)
    if body is None:
        return None
    decision_id = short_str(body.get("decision_id"), 1, 300)
    value = number(body.get("reward"))
    slot = body.get("slot")
    if decision_id is NO or value is NO or (slot is not None and (
            type(slot) is not int or not 0 <= slot <= 10_000)):
        return None
    runtime: Runtime = req.runtime
    return json_answer(await _record(runtime, runtime.engine, req.params["name"], decision_id,
                                     value, slot, "reward"))


def _wrong_field(engine: Any, name: str, given: str) -> None:
    """Raise the 422 that names the field a bandit takes when the request used the other
    (read only after the engine refused the reward, so the accepted path pays nothing)."""
    try:
        metrics = engine.get_bandit(name).metrics
    except TsbanditError:
        return
    if given == "metrics" and metrics is None:
        raise InvalidRewardError(
            f"bandit {name!r} learns one reward per decision: send \"reward\": <number>, "
            "not \"metrics\"") from None
    if given == "reward" and metrics is not None:
        raise InvalidRewardError(
            f"bandit {name!r} has several metrics {list(metrics.names)}: send \"metrics\": "
            "{metric: value}, not \"reward\"") from None


# ----- stats ----------------------------------------------------------------------------------
@table.route("GET", "/bandits/{name}/stats", "read", operation_id="get_stats",
             response_model=StatsOut, responses=_err(404), tags=["stats"])
def stats(
    name: Name,
    engine: EngineDep,
    context: Annotated[list[float] | None, Query(
        description="Context vector for contextual models (repeat the parameter).",
        max_length=4096)] = None,
    level: Annotated[float, Query(gt=0, lt=1, allow_inf_nan=False,
                                  description="Credible level.")] = 0.95,
) -> Any:
    """Per arm: posterior mean, credible interval, pulls, rewards, probability of being best.

    A bandit with several metrics: ``arms`` is the objective's summary, and ``metrics`` (every
    metric's posterior per arm), ``objective`` and ``constraints`` (each one's probability of
    holding per arm) are added.
    """
    return engine.stats(name, context, level=level)
