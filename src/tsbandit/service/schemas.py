"""Request and response bodies of the API (pydantic v2, strict: no silent coercion).

Every request model refuses unknown fields, NaN and infinities, and strings where numbers are
expected (``"1"`` is not a reward). Ranges that protect the service (list lengths, ``k``) are
checked here; everything about the bandit itself (arm names, reward domains, context
dimension) is checked by the engine, so the message names the bandit's own rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Header
from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from ..engine import IDEMPOTENCY_KEY_PATTERN
from .configs import (
    ArmName,
    BanditCreate,
    BanditOut,
    MetricName,
    _In,
    _Out,
    drop_absent,
)
from .errors import ErrorBody

__all__ = [
    "AddArmRequest",
    "ArmStats",
    "BanditCreate",
    "BanditList",
    "BanditOut",
    "BatchDecisionRequest",
    "BatchDecisionResponse",
    "ClusterHealth",
    "DecisionOut",
    "DecisionRequest",
    "EventLine",
    "HealthOut",
    "HealthUnavailableOut",
    "MetricRewardStatus",
    "PendingOut",
    "RecommendOut",
    "RewardOut",
    "RewardRequest",
    "StatsOut",
    "TutorialArmStats",
    "TutorialRewardOut",
    "TutorialRewardRequest",
]

Vector = Annotated[list[float], Field(min_length=1, max_length=4096)]
UserId = Annotated[str, Field(min_length=1, max_length=256)]
DecisionId = Annotated[str, Field(min_length=1, max_length=300)]
#: The ``Idempotency-Key`` header of the decision endpoints (see docs/service.md).
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN, max_length=255,
    description="Makes a retry safe: the same key and request answer the decision(s) the "
    "first recorded (header Idempotent-Replayed: true) instead of new ones; the same key "
    "with another request is 409 idempotency_conflict. 1-255 printable ASCII characters, no "
    "spaces; kept as long as its decisions (reward window + retention), per bandit.")]




class BanditList(_Out):
    """Names of all bandits."""

    bandits: list[str]


class AddArmRequest(_In):
    """An arm to add (it starts from the prior)."""

    arm: ArmName


# ----- decisions ------------------------------------------------------------------------------
class DecisionRequest(_In):
    """One decision: the best arm (``k == 1``) or a ranking of ``k`` arms."""

    context: Vector | None = Field(None, description="Context vector (contextual models only).")
    eligible_arms: Annotated[list[ArmName], Field(min_length=1, max_length=10_000)] | None = None
    k: int = Field(1, ge=1, le=10_000)
    user_id: UserId | None = None


class BatchDecisionRequest(_In):
    """Many decisions in one request: ``contexts`` (contextual models) or ``n`` users."""

    contexts: Annotated[list[Vector], Field(min_length=1)] | None = None
    n: int | None = Field(None, ge=1, description="Number of decisions (context-free models).")
    eligible_arms: Annotated[list[ArmName], Field(min_length=1, max_length=10_000)] | None = None
    k: int = Field(1, ge=1, le=10_000)
    user_ids: Annotated[list[UserId | None], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _count(self) -> BatchDecisionRequest:
        if self.contexts is not None and self.n is not None and self.n != len(self.contexts):
            raise ValueError(f"n == {self.n} but {len(self.contexts)} contexts were given")
        if (self.contexts is not None and self.user_ids is not None
                and len(self.user_ids) != len(self.contexts)):
            raise ValueError(f"{len(self.user_ids)} user_ids for {len(self.contexts)} contexts")
        if (self.n is not None and self.user_ids is not None
                and len(self.user_ids) != self.n):
            raise ValueError(f"{len(self.user_ids)} user_ids for n == {self.n}")
        return self

    def count(self) -> int:
        """How many decisions the request asks for."""
        if self.contexts is not None:
            return len(self.contexts)
        if self.n is not None:
            return self.n
        return 1 if self.user_ids is None else len(self.user_ids)


class DecisionOut(_Out):
    """A recorded decision; reward it with its ``decision_id``."""

    decision_id: str
    bandit: str
    arm: str
    ranking: list[str]
    propensity: float = Field(description="Probability the policy chose this arm (first slot).")
    position_propensities: list[float]
    model_version: int
    timestamp: float
    deadline: float = Field(description="Epoch seconds after which a reward is refused (410).")
    applied: Literal["constrained", "baseline", "most_likely"] | None = Field(
        None, description="A bandit with constraints: what its rule applied -- the best arm "
        "among those whose drawn constraints pass, or (none passed) the baseline arm or the "
        "arm most likely to pass. Absent for other bandits.")
    sticky_of: str | None = Field(
        None, description="A bandit with ``stickiness``, a decision with a ``user_id``: the id "
        "of the decision whose draw (arm or ranking, propensities) this one shows -- its own id "
        "when it drew anew. Absent otherwise.")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("applied", "sticky_of"))


class BatchDecisionResponse(_Out):
    """Decisions in request order."""

    decisions: list[DecisionOut]


class PendingOut(_Out):
    """A logged decision and its status."""

    decision_id: str
    status: Literal["pending", "claimed", "rewarded", "expired"]
    deadline: float
    arm: str
    ranking: list[str]
    context: list[float] | None
    propensity: float
    timestamp: float
    user_id: str | None


class EventLine(_Out):
    """One line of ``GET /v1/bandits/{name}/events`` (JSON Lines: one such object per line):
    a decision, its reward, or its expiry past the reward window. Fields a type does not
    carry are absent; later versions may add fields."""

    model_config = ConfigDict(allow_inf_nan=False, extra="allow")

    type: Literal["decision", "reward", "expired"]
    decision_id: str
    timestamp: float = Field(description="Epoch seconds.")
    bandit: str
    arm: str = Field(description="The arm chosen (first slot of the ranking).")
    context: list[float] | None = None
    propensity: float | None = Field(None, description="Probability the policy chose the arm.")
    ranking: list[str] | None = Field(None, description="decision: the arms shown, in order.")
    position_propensities: list[float] | None = Field(None, description="decision.")
    user_id: str | None = Field(None, description="decision.")
    model_version: int | None = Field(None, description="decision.")
    arm_probabilities: dict[str, float] | None = Field(
        None, description="decision (context-free, one arm, up to 64 arms): every arm's "
        "probability of being chosen.")
    reward: float | None = Field(None, description="reward; expired: the default reward "
                                 "(null: none).")
    arm_retired: bool | None = Field(None, description="reward, expired: the arm was retired "
                                     "after the decision (consumed, not learned).")
    metric: str | None = Field(None, description="reward, expired (a bandit with several "
                               "metrics): the metric this event is about.")


# ----- rewards --------------------------------------------------------------------------------
class RewardRequest(_In):
    """A reward for a decision: ``reward`` (0 or 1 for binary models; any finite number for
    Gaussian) or, for a bandit with several metrics, ``metrics`` (``{metric: value}``, any of
    its metrics; each is applied once per decision, whenever it arrives). Exactly one."""

    decision_id: DecisionId
    reward: float | None = Field(None, description="The reward (a bandit with one reward per "
                                 "decision).")
    metrics: Annotated[dict[MetricName, float], Field(min_length=1, max_length=32)] | None = (
        Field(None, description="``{metric: value}`` (a bandit with several metrics), e.g. "
              "``{\"apply\": 1}`` today and ``{\"revenue\": 182.5}`` later."))
    slot: int | None = Field(None, ge=0, le=10_000, description=(
        "The ranking's slot ``reward`` is for (default 0). A ranking model (position_based, "
        "cascade) learns from every slot, each applied once; other models from slot 0 only."))
    slot_rewards: Annotated[list[float | None], Field(min_length=1, max_length=10_000)
                            ] | None = Field(None, description=(
        "One reward per slot of the ranking (null: not known yet), instead of ``reward`` "
        "(ranking models)."))

    @model_validator(mode="after")
    def _one(self) -> RewardRequest:
        given = [f for f in ("reward", "metrics", "slot_rewards") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of reward (a number), metrics ({metric: value}, "
                             "for a bandit with several metrics) or slot_rewards (one per "
                             "slot, for a ranking model)")
        if self.slot is not None and self.reward is None:
            raise ValueError("slot goes with reward (the reward of that slot)")
        return self


class MetricRewardStatus(_Out):
    """What a reward did to one metric of the decision."""

    status: Literal["applied", "duplicate", "arm_retired"]
    duplicate: bool


class SlotRewardStatus(_Out):
    """What a reward did to one slot of the ranking."""

    slot: int
    status: Literal["applied", "duplicate", "arm_retired"]
    duplicate: bool


class RewardOut(_Out):
    """``applied`` the first time; a repeat answers ``duplicate`` and changes nothing;
    ``arm_retired``: the decision's arm was retired after the decision (perhaps added again
    since), so the reward is consumed once and learned by no arm. With ``metrics``: each
    metric's own status, and ``status`` is ``applied`` when any metric was."""

    decision_id: str
    bandit: str
    arm: str
    status: Literal["applied", "duplicate", "arm_retired"]
    duplicate: bool
    model_version: int
    metrics: dict[str, MetricRewardStatus] | None = Field(
        None, description="Per metric of the request (present only when it gave metrics).")
    slots: list[SlotRewardStatus] | None = Field(
        None, description="Per slot of the request (a ranking model's rewards).")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("metrics", "slots"))


# ----- stats ----------------------------------------------------------------------------------
class ArmStats(_Out):
    """Posterior summary of one arm."""

    arm: str
    mean: float
    lower: float = Field(description="Lower end of the credible interval.")
    upper: float = Field(description="Upper end of the credible interval.")
    pulls: float
    rewards: float
    prob_best: float = Field(description="Posterior probability that this arm is the best.")
    alpha: float | None = Field(None, description="Beta posterior alpha (beta models).")
    beta: float | None = Field(None, description="Beta posterior beta (beta models).")


class MetricArmStats(_Out):
    """One metric's posterior for one arm: the mean of ``E[metric | given]`` (of the metric
    for decisions where its ``given`` metric was 1), its credible interval, observations."""

    mean: float
    low: float
    high: float
    n: float


class ObjectiveArmStats(_Out):
    """The objective's posterior for one arm (``sum_m w_m value_m - cost``)."""

    mean: float
    low: float
    high: float
    probability_best: float


class ConstraintStats(_Out):
    """A constraint and, per arm, the posterior probability that it holds."""

    metric: str
    max: float | None = None
    min: float | None = None
    relative_to: str | None = None
    probability: dict[str, float]

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("max", "min", "relative_to"))


class StatsOut(_Out):
    """Posterior summary of every arm. A bandit with several metrics: ``arms`` summarizes the
    objective, and ``metrics``, ``objective`` and ``constraints`` are added."""

    bandit: str
    model_version: int
    level: float
    arms: list[ArmStats]
    metrics: dict[str, dict[str, MetricArmStats]] | None = Field(
        None, description="Several metrics: per metric, per arm, the posterior of "
        "E[metric | given].")
    objective: dict[str, ObjectiveArmStats] | None = Field(
        None, description="Several metrics: per arm, the objective's posterior.")
    constraints: list[ConstraintStats] | None = Field(
        None, description="Several metrics: each constraint and, per arm, the probability "
        "that it holds.")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("metrics", "objective", "constraints"))


class ClusterHealth(_Out):
    """A Redis Cluster's state as its nodes report it (``CLUSTER INFO``)."""

    cluster_state: Literal["ok", "fail"] = Field(
        description="ok when every node that answers says cluster_state:ok.")
    cluster_slots_ok: int = Field(description="Slots served (16384 when all are); the least "
                                              "any node reports.")
    nodes_answered: int
    primaries_unreachable: int = Field(
        description="Primaries the service routes to that do not answer (after one topology "
                    "refresh).")


class HealthOut(_Out):
    """Liveness and store reachability (503 with the error shape when the store is down)."""

    status: Literal["ok"]
    store: str = Field(description="Store backend (sqlite, redis, memory...).")
    reachable: bool
    cluster: ClusterHealth | None = Field(
        default=None, description="On a Redis Cluster: its state (200 only when it is ok).")


class HealthUnavailableOut(_Out):
    """``/healthz``'s 503: the error shape, plus the cluster's state when the store is a
    Redis Cluster that answers but cannot serve every slot."""

    error: ErrorBody
    cluster: ClusterHealth | None = None


# ----- the tutorial's endpoints ----------------------------------------------------------------
class RecommendOut(_Out):
    """The tutorial's ``/recommend`` answer, plus the decision id."""

    customer_id: str
    offer: str
    decision_id: str


class TutorialRewardRequest(_In):
    """The tutorial's ``RewardEvent``; ``decision_id`` is optional (see the service docs)."""

    customer_id: UserId
    arm: ArmName
    reward: float = Field(description="1 = applied, 0 = ignored.")
    decision_id: DecisionId | None = None


class TutorialRewardOut(_Out):
    """``updated`` the first time, ``duplicate`` for a repeat, ``arm_retired`` when the offer
    was retired after it was shown (consumed, not learned)."""

    status: Literal["updated", "duplicate", "arm_retired"]
    customer_id: str
    arm: str
    decision_id: str


class TutorialArmStats(_Out):
    """The tutorial's per-arm monitoring numbers, plus interval and P(best)."""

    alpha: float | None = Field(description="Beta posterior alpha (None for other models).")
    beta: float | None = Field(description="Beta posterior beta (None for other models).")
    mean: float
    total_pulls: int
    lower: float
    upper: float
    prob_best: float
