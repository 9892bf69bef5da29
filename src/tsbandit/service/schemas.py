"""Request and response bodies of the API (pydantic v2, strict: no silent coercion).

Every request model refuses unknown fields, NaN and infinities, and strings where numbers are
expected (``"1"`` is not a reward). Ranges that protect the service (list lengths, ``k``) are
checked here; everything about the bandit itself (arm names, reward domains, context
dimension) is checked by the engine, so the message names the bandit's own rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engine import IDEMPOTENCY_KEY_PATTERN
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
    "PendingOut",
    "RecommendOut",
    "RewardOut",
    "RewardRequest",
    "StatsOut",
    "TutorialArmStats",
    "TutorialRewardOut",
    "TutorialRewardRequest",
]

_BANDIT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]{0,127}$"

ArmName = Annotated[str, Field(min_length=1, max_length=128)]
Positive = Annotated[float, Field(gt=0)]
Finite = float  # NaN and infinities are refused by every model's config
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


class _In(BaseModel):
    # json_schema_serialization_defaults_required: a model also used in answers (the bandit
    # configuration) gets an output schema with every field required (it is always sent)
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              json_schema_serialization_defaults_required=True)


class _Out(BaseModel):
    # A float field of an answer is never NaN or infinite (those would reach the wire as
    # null, which the schema's ``number`` does not allow): fields that can be undefined are
    # ``float | None`` and declared ``anyOf: [number, null]``.
    model_config = ConfigDict(allow_inf_nan=False)


# ----- bandit configuration -------------------------------------------------------------------
class BetaModel(_In):
    """Beta-Bernoulli (binary rewards): prior Beta(alpha0, beta0) per arm."""

    kind: Literal["beta"] = "beta"
    alpha0: Positive = 1.0
    beta0: Positive = 1.0


class GaussianModel(_In):
    """Normal rewards with unknown variance (Normal-Inverse-Gamma prior)."""

    kind: Literal["gaussian"]
    mu0: Finite = 0.0
    kappa0: Positive = 1.0
    alpha0: Positive = 1.0
    beta0: Positive = 1.0


class LinearModel(_In):
    """Bayesian linear regression per arm on a context of ``n_features`` numbers."""

    kind: Literal["linear"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    prior_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 1.0
    noise_variance: Positive = 0.1
    unknown_noise: bool = False
    noise_a0: Positive = 2.0
    noise_b0: Positive | None = None
    refresh_every: int = Field(1000, ge=1, le=2**31 - 1, description=(
        "Online rank-1 updates between two full refactorizations of the posterior."))


class LogisticModel(_In):
    """Bayesian logistic regression per arm (Laplace approximation), binary rewards."""

    kind: Literal["logistic"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    prior_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 1.0
    max_newton_steps: int = Field(25, ge=1, le=1000,
                                  description="Most Newton steps of one Laplace refit.")
    tol: Positive = Field(1e-8, description="A refit stops when no coefficient moves more.")


ModelConfig = Annotated[
    BetaModel | GaussianModel | LinearModel | LogisticModel, Field(discriminator="kind")
]
ModelKind = Literal["beta", "gaussian", "linear", "logistic"]


class ThompsonRule(_In):
    """Thompson sampling: one posterior draw per arm, best draw wins.

    ``scale`` multiplies the posterior spread of the draws (1 is plain Thompson sampling; the
    lab's default contextual sampler uses 0.25).
    """

    kind: Literal["thompson"] = "thompson"
    scale: Positive = Field(1.0, description="Posterior standard-deviation multiplier (> 0).")


class UCB1Rule(_In):
    """Upper confidence bound on the posterior mean."""

    kind: Literal["ucb1"]
    c: Annotated[float, Field(ge=0)] = 1.0


class LinUCBRule(_In):
    """LinUCB for linear models."""

    kind: Literal["linucb"]
    alpha: Annotated[float, Field(ge=0)] = 1.0


class EpsilonGreedyRule(_In):
    """Best posterior mean, a uniformly random arm with probability epsilon."""

    kind: Literal["epsilon_greedy"]
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.1


class GreedyRule(_In):
    """Best posterior mean (no exploration)."""

    kind: Literal["greedy"]


class SoftmaxRule(_In):
    """Boltzmann exploration over posterior means."""

    kind: Literal["softmax"]
    temperature: Positive = 0.1


class RandomRule(_In):
    """Uniformly random arm (a baseline)."""

    kind: Literal["random"]


RuleConfig = Annotated[
    ThompsonRule | UCB1Rule | LinUCBRule | EpsilonGreedyRule | GreedyRule | SoftmaxRule
    | RandomRule,
    Field(discriminator="kind"),
]
RuleKind = Literal["thompson", "ucb1", "linucb", "epsilon_greedy", "greedy", "softmax", "random"]


class BanditCreate(_In):
    """A new bandit. ``model`` and ``rule`` take a kind name or an object with priors."""

    name: Annotated[str, Field(pattern=_BANDIT_NAME)]
    arms: Annotated[list[ArmName], Field(min_length=1)]
    model: ModelKind | ModelConfig = "beta"
    rule: RuleKind | RuleConfig = "thompson"
    n_features: int | None = Field(None, ge=1, description="Context dimension (linear, logistic).")
    reward_window: Positive = Field(86_400.0, description="Seconds a decision awaits its reward.")
    default_reward: Finite | None = Field(
        None, description="Reward applied when the window passes without one (None: nothing).")
    half_life: Positive | None = Field(None, description="Decay half-life in seconds.")
    propensity_draws: int = Field(1000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _features(self) -> BanditCreate:
        inner = getattr(self.model, "n_features", None)
        if inner is not None and self.n_features is not None and inner != self.n_features:
            raise ValueError(f"n_features == {self.n_features} but model.n_features == {inner}")
        kind = self.model if isinstance(self.model, str) else self.model.kind
        if kind in ("linear", "logistic") and inner is None and self.n_features is None:
            raise ValueError(f"a {kind} model needs n_features (the context dimension)")
        if kind not in ("linear", "logistic") and self.n_features is not None:
            raise ValueError(f"a {kind} model takes no context; n_features must be omitted")
        return self

    def model_config_dict(self) -> dict[str, Any]:
        """``{"kind": ..., ...}``: the ``model`` of :func:`tsbandit.engine.bandit_spec`."""
        cfg: dict[str, Any] = ({"kind": self.model} if isinstance(self.model, str)
                               else self.model.model_dump(exclude_none=True))
        if self.n_features is not None:
            cfg["n_features"] = self.n_features
        return cfg

    def rule_config_dict(self) -> dict[str, Any]:
        """``{"kind": ..., ...}``: the ``rule`` of :func:`tsbandit.engine.bandit_spec`."""
        return {"kind": self.rule} if isinstance(self.rule, str) else self.rule.model_dump()


class BanditOut(_Out):
    """A bandit's stored configuration: ``model`` and ``rule`` in the objects creating one
    takes, every parameter given (defaults filled in)."""

    name: str
    arms: list[str]
    model: ModelConfig
    rule: RuleConfig
    reward_window: float
    default_reward: float | None
    half_life: float | None
    propensity_draws: int


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


# ----- rewards --------------------------------------------------------------------------------
class RewardRequest(_In):
    """A reward for a decision (0 or 1 for binary models; any finite number for Gaussian)."""

    decision_id: DecisionId
    reward: float


class RewardOut(_Out):
    """``applied`` the first time; a repeat answers ``duplicate`` and changes nothing;
    ``arm_retired``: the decision's arm was retired after the decision (perhaps added again
    since), so the reward is consumed once and learned by no arm."""

    decision_id: str
    bandit: str
    arm: str
    status: Literal["applied", "duplicate", "arm_retired"]
    duplicate: bool
    model_version: int


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


class StatsOut(_Out):
    """Posterior summary of every arm."""

    bandit: str
    model_version: int
    level: float
    arms: list[ArmStats]


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
