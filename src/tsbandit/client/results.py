"""Typed answers of the decision service: small frozen dataclasses built from its JSON.

A decision, a reward's result and an arm's summary are the library's own types (here
``Decision`` is :class:`~tsbandit.decision.RecordedDecision`, ``RewardResult``
:class:`~tsbandit.decision.RewardResult`, ``ArmStats`` :class:`~tsbandit.decision.ArmSummary`),
read with their ``from_dict``; the other classes mirror the service's answers with
``from_json``. Unknown fields are ignored, so a newer service with more fields still parses.

>>> d = Decision.from_dict({"decision_id": "offers~" + "0" * 32, "bandit": "offers",
...                         "arm": "b", "ranking": ["b"], "propensity": 0.5,
...                         "position_propensities": [0.5], "model_version": 3,
...                         "timestamp": 0.0, "deadline": 86400.0})
>>> d.arm, d.ranking, d.replayed
('b', ('b',), False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..decision import ArmSummary, RecordedDecision, RewardResult
from ..errors import UnknownArmError

__all__ = [
    "ArmStats",
    "BanditInfo",
    "Decision",
    "DecisionStatus",
    "Health",
    "Report",
    "ReportArm",
    "ReportDecision",
    "ReportLift",
    "ReportSRM",
    "Reward",
    "RewardOutcome",
    "RewardResult",
    "Stats",
]

Json = Mapping[str, Any]
#: A reward as the batch methods take it: a number, or ``{metric: value}`` for a bandit with
#: several metrics.
Reward = float | Mapping[str, float]


def split_reward(reward: Reward) -> tuple[float | None, Mapping[str, float] | None]:
    """``(reward, metrics)`` of a batch item's reward: a number, or ``{metric: value}``."""
    if isinstance(reward, Mapping):
        return None, reward
    return reward, None


#: A decision the service recorded (the client never sees any other kind).
Decision = RecordedDecision

#: An arm's posterior summary in ``GET /v1/bandits/{name}/stats`` (``alpha``/``beta`` for Beta
#: models, else None).
ArmStats = ArmSummary


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_dict(value: Any) -> dict[str, Any] | None:
    return None if value is None else dict(value)


@dataclass(frozen=True, slots=True)
class BanditInfo:
    """A bandit's stored configuration (``POST /v1/bandits``, ``GET /v1/bandits/{name}``).

    A bandit with several metrics also has ``metrics`` (``{name: {"model", "given"}}``),
    ``objective``, ``constraints``, ``costs`` (by arm), ``baseline``, ``metric_windows`` and
    ``metric_defaults``; for the others they are None.
    """

    name: str
    arms: tuple[str, ...]
    model: dict[str, Any]
    rule: dict[str, Any]
    reward_window: float
    default_reward: float | None
    half_life: float | None
    propensity_draws: int
    metrics: dict[str, Any] | None = None
    objective: dict[str, float] | None = None
    constraints: tuple[dict[str, Any], ...] | None = None
    costs: dict[str, float] | None = None
    baseline: str | None = None
    metric_windows: dict[str, float] | None = None
    metric_defaults: dict[str, float | None] | None = None
    shards: int = 1

    @classmethod
    def from_json(cls, data: Json) -> BanditInfo:
        """Parse the service's JSON."""
        cons = data.get("constraints")
        return cls(str(data["name"]), tuple(data["arms"]), dict(data["model"]),
                   dict(data["rule"]), float(data["reward_window"]),
                   _opt_float(data.get("default_reward")), _opt_float(data.get("half_life")),
                   int(data["propensity_draws"]), _opt_dict(data.get("metrics")),
                   _opt_dict(data.get("objective")),
                   None if cons is None else tuple(dict(c) for c in cons),
                   _opt_dict(data.get("costs")), data.get("baseline"),
                   _opt_dict(data.get("metric_windows")),
                   _opt_dict(data.get("metric_defaults")), int(data.get("shards", 1)))


@dataclass(frozen=True, slots=True)
class DecisionStatus:
    """A logged decision and where it stands (``GET /v1/decisions/{id}``)."""

    decision_id: str
    status: Literal["pending", "claimed", "rewarded", "expired"]
    arm: str
    ranking: tuple[str, ...]
    propensity: float
    timestamp: float
    deadline: float
    context: tuple[float, ...] | None
    user_id: str | None

    @classmethod
    def from_json(cls, data: Json) -> DecisionStatus:
        """Parse the service's JSON."""
        ctx = data.get("context")
        return cls(str(data["decision_id"]), data["status"], str(data["arm"]),
                   tuple(data["ranking"]), float(data["propensity"]), float(data["timestamp"]),
                   float(data["deadline"]), None if ctx is None else tuple(map(float, ctx)),
                   data.get("user_id"))


@dataclass(frozen=True, slots=True)
class RewardOutcome:
    """One reward of a batch (:meth:`Client.reward_many`, a reward buffer's flush).

    Exactly one of ``result`` (the service's answer) and ``error`` (the exception the single
    call would have raised, e.g. :class:`~tsbandit.errors.DecisionExpiredError`) is set.
    """

    decision_id: str
    reward: Reward
    result: RewardResult | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """The reward is recorded (applied now or before)."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Stats:
    """Posterior summary of every arm (``GET /v1/bandits/{name}/stats``); ``stats["a"]``
    is arm ``a``'s row.

    A bandit with several metrics: ``arms`` summarizes the objective, ``metrics`` is ``{metric:
    {arm: {"mean", "low", "high", "n"}}}``, ``objective`` ``{arm: {"mean", "low", "high",
    "probability_best"}}`` and ``constraints`` ``[{"metric", "max" | "min", "probability":
    {arm: p}}]`` (None for other bandits).
    """

    bandit: str
    model_version: int
    level: float
    arms: tuple[ArmStats, ...]
    metrics: dict[str, dict[str, dict[str, float]]] | None = None
    objective: dict[str, dict[str, float]] | None = None
    constraints: tuple[dict[str, Any], ...] | None = None

    def __getitem__(self, arm: str) -> ArmStats:
        for row in self.arms:
            if row.arm == arm:
                return row
        raise UnknownArmError(f"no arm {arm!r} in these stats")

    @classmethod
    def from_json(cls, data: Json) -> Stats:
        """Parse the service's JSON."""
        cons = data.get("constraints")
        return cls(str(data["bandit"]), int(data["model_version"]), float(data["level"]),
                   tuple(ArmStats.from_dict(row) for row in data["arms"]),
                   _opt_dict(data.get("metrics")), _opt_dict(data.get("objective")),
                   None if cons is None else tuple(dict(c) for c in cons))


@dataclass(frozen=True, slots=True)
class ReportArm:
    """One arm of the experiment report."""

    name: str
    n: float
    mean: float | None
    interval: tuple[float | None, float | None]
    prob_best: float
    expected_loss: float | None

    @classmethod
    def from_json(cls, data: Json) -> ReportArm:
        """Parse the service's JSON."""
        low, high = data["interval"]
        return cls(str(data["name"]), float(data["n"]), _opt_float(data.get("mean")),
                   (_opt_float(low), _opt_float(high)), float(data["prob_best"]),
                   _opt_float(data.get("expected_loss")))


@dataclass(frozen=True, slots=True)
class ReportDecision:
    """The stopping rule's verdict: ``winner`` is None unless ``stop``."""

    stop: bool
    winner: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ReportLift:
    """Credible interval of the lift of ``treatment`` over ``control`` (two arms only)."""

    control: str
    treatment: str
    level: float
    low: float | None
    median: float | None
    high: float | None
    prob_positive: float | None
    relative: bool


@dataclass(frozen=True, slots=True)
class ReportSRM:
    """Sample-ratio-mismatch status (``"ok"``, ``"mismatch"`` or ``"not_checked"``)."""

    status: Literal["ok", "mismatch", "not_checked"]
    method: str | None
    reason: str
    threshold: float
    p_value: float | None = None
    decisions: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    """A bandit read as a Bayesian A/B/n experiment (``GET /v1/bandits/{name}/report``).

    ``raw`` keeps the whole JSON answer (the rule, the SRM counts...).
    """

    bandit: str
    model_version: int
    metric: str
    level: float
    method: str
    arms: tuple[ReportArm, ...]
    decision: ReportDecision
    lift: ReportLift | None
    srm: ReportSRM
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> Report:
        """Parse the service's JSON."""
        d, lift, srm = data["decision"], data.get("lift"), data["srm"]
        return cls(
            str(data["bandit"]), int(data["model_version"]), str(data["metric"]),
            float(data["level"]), str(data["method"]),
            tuple(ReportArm.from_json(a) for a in data["arms"]),
            ReportDecision(bool(d["stop"]), d.get("winner"), str(d["reason"])),
            None if lift is None else ReportLift(
                lift["control"], lift["treatment"], float(lift["level"]),
                _opt_float(lift.get("low")), _opt_float(lift.get("median")),
                _opt_float(lift.get("high")), _opt_float(lift.get("prob_positive")),
                bool(lift["relative"])),
            ReportSRM(srm["status"], srm.get("method"), str(srm["reason"]),
                      float(srm["threshold"]), _opt_float(srm.get("p_value")),
                      int(srm.get("decisions", 0)), int(srm.get("skipped", 0))),
            dict(data))


@dataclass(frozen=True, slots=True)
class Health:
    """``GET /healthz``: the store backend and whether it answers."""

    status: str
    store: str
    reachable: bool

    @classmethod
    def from_json(cls, data: Json) -> Health:
        """Parse the service's JSON."""
        return cls(str(data["status"]), str(data["store"]), bool(data["reachable"]))
