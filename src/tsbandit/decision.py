"""What a decision and a reward return, the same in process, in the engine and over the wire.

:class:`Decision` is the one decision type: :meth:`Bandit.select <tsbandit.Bandit.select>`
returns one (the arm, its index, the ranking and, when asked for, the propensities);
:meth:`Engine.decide <tsbandit.engine.Engine.decide>` and the client's
:meth:`Client.decide <tsbandit.client.Client.decide>` return its :class:`RecordedDecision`,
which also has its id, bandit, model version, timestamp and deadline.
:class:`RewardResult` is what recording a reward did; :class:`ArmSummary` one arm's posterior
summary; :class:`BatchDecision` the vectorized decisions of ``Bandit.select_batch``.

Decision ids are ``<bandit>~<32 hex digits>`` (:func:`split_decision_id`): a reward needs only
the id to find its bandit.

This module imports nothing but the standard library (the client uses it without numpy).

>>> d = RecordedDecision.from_dict({"decision_id": "offers~" + "0" * 32, "bandit": "offers",
...                         "arm": "b", "ranking": ["b"], "propensity": 0.5,
...                         "position_propensities": [0.5], "model_version": 3,
...                         "timestamp": 0.0, "deadline": 86400.0})
>>> d.arm, d.ranking, d.replayed, split_decision_id(d.decision_id)[0]
('b', ('b',), False, 'offers')
>>> RecordedDecision.from_dict(d.to_dict()) == d
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import DecisionNotFoundError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DECISION_ID_SEP", "ArmSummary", "BatchDecision", "Decision", "RecordedDecision",
           "RewardResult", "RewardStatus", "combined_status", "split_decision_id"]

#: Separates the bandit name from the token in a decision id.
DECISION_ID_SEP = "~"

RewardStatus = Literal["applied", "duplicate", "arm_retired"]


def combined_status(statuses: Iterable[RewardStatus]) -> RewardStatus:
    """A request's status from its parts' (metrics, slots): ``"applied"`` when any part was,
    else ``"arm_retired"`` when any was, else ``"duplicate"``.

    >>> combined_status(["duplicate", "applied"]), combined_status(["duplicate"])
    ('applied', 'duplicate')
    """
    seen = set(statuses)
    return ("applied" if "applied" in seen else
            "arm_retired" if "arm_retired" in seen else "duplicate")


def split_decision_id(decision_id: str) -> tuple[str, str]:
    """``(bandit, token)`` of a decision id, or :class:`DecisionNotFoundError`.

    >>> split_decision_id("ads~" + "f" * 32)[0]
    'ads'
    """
    if not isinstance(decision_id, str):
        raise DecisionNotFoundError(f"decision id {decision_id!r} is not a string")
    bandit, sep, token = decision_id.rpartition(DECISION_ID_SEP)
    if not sep or not bandit or len(token) != 32:
        raise DecisionNotFoundError(f"unknown decision id {decision_id!r}")
    return bandit, token


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, which
# would cost the one-at-a-time decision path (Bandit.select) about 1.5 us per decision.
@dataclass(slots=True)
class Decision:
    """One decision: the chosen arm, the ranking (best first) and propensities.

    ``propensity`` is the probability that the rule chose ``arm`` first given what it knew
    (``None`` unless asked for, in process); ``position_propensities[j]`` is that of
    ``ranking[j]`` at position ``j``. ``index`` is the arm's index in the bandit (``None`` for a
    decision read back from JSON). A decision the engine recorded is a
    :class:`RecordedDecision`, which also has its id.

    >>> Decision("b", 1, ("b", "a")).to_dict()
    {'arm': 'b', 'ranking': ['b', 'a']}
    """

    arm: str
    index: int | None
    ranking: tuple[str, ...]
    propensity: float | None = None
    position_propensities: tuple[float, ...] | None = None
    #: what a constrained rule applied: ``"constrained"`` (the argmax among arms whose drawn
    #: constraints pass), ``"baseline"`` or ``"most_likely"`` (none passed); None otherwise
    applied: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``arm``, ``ranking`` and, when known, the propensities."""
        out: dict[str, Any] = {"arm": self.arm, "ranking": list(self.ranking)}
        if self.propensity is not None:
            out["propensity"] = self.propensity
            out["position_propensities"] = list(self.position_propensities or ())
        if self.applied is not None:
            out["applied"] = self.applied
        return out


@dataclass(slots=True, kw_only=True)
class RecordedDecision(Decision):
    """A decision recorded as pending (:meth:`Engine.decide
    <tsbandit.engine.Engine.decide>`, the service, the client): reward it with its
    ``decision_id``.

    Besides the :class:`Decision`'s fields: the ``bandit``, the ``model_version`` the choice
    was drawn from, ``timestamp`` and ``deadline`` (epoch seconds after which a reward is
    refused). ``replayed`` is true when an idempotency key found the decision recorded already
    (a retry); ``idempotency_key`` is the key the request carried. Neither is part of
    :meth:`to_dict` (the service's decision answer).
    """

    decision_id: str
    bandit: str
    model_version: int
    timestamp: float
    deadline: float
    replayed: bool = field(default=False, compare=False)
    idempotency_key: str | None = field(default=None, compare=False)
    #: a sticky user's decision: the id of the decision whose draw it shows
    sticky_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the service's decision answer."""
        return {"decision_id": self.decision_id, "bandit": self.bandit, "arm": self.arm,
                "ranking": list(self.ranking), "propensity": self.propensity,
                "position_propensities": list(self.position_propensities or ()),
                "model_version": self.model_version, "timestamp": self.timestamp,
                "deadline": self.deadline,
                **({} if self.applied is None else {"applied": self.applied}),
                **({} if self.sticky_of is None else {"sticky_of": self.sticky_of})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, replayed: bool = False,
                  idempotency_key: str | None = None) -> RecordedDecision:
        """Inverse of :meth:`to_dict` (the service's JSON); unknown fields are ignored."""
        return cls(
            str(data["arm"]), None, tuple(str(a) for a in data["ranking"]),
            float(data["propensity"]),
            tuple(float(v) for v in data["position_propensities"]),
            decision_id=str(data["decision_id"]), bandit=str(data["bandit"]),
            model_version=int(data["model_version"]), timestamp=float(data["timestamp"]),
            applied=data.get("applied"), deadline=float(data["deadline"]), replayed=replayed,
            idempotency_key=idempotency_key, sticky_of=data.get("sticky_of"))


@dataclass(frozen=True, slots=True)
class RewardResult:
    """What recording a reward did, applied exactly once whatever the number of attempts.

    ``status``: ``"applied"`` (learned now), ``"duplicate"`` (consumed before; nothing
    changed) or ``"arm_retired"`` (the decision's arm was retired after the decision --
    perhaps re-added since: the reward is consumed, learned by no arm). ``model_version`` is
    the bandit's version after the call. ``attempts`` counts the requests the client sent
    (1 in process); ``status == "duplicate"`` with ``retried`` true means an earlier attempt of
    the same call most likely applied it (its answer was lost), or an earlier call did.

    With several metrics, ``metrics`` is each metric's status in the request (each metric of
    a decision is applied exactly once, whenever it arrives); ``status`` is ``"applied"``
    when any was applied, else ``"arm_retired"`` or ``"duplicate"`` as for one reward.

    >>> r = RewardResult.from_dict({"decision_id": "a~" + "0" * 32, "bandit": "a", "arm": "x",
    ...                             "status": "duplicate", "model_version": 2})
    >>> r.duplicate, r.retried, r.to_dict()["duplicate"]
    (True, False, True)
    """

    decision_id: str
    bandit: str
    arm: str
    status: RewardStatus
    model_version: int
    attempts: int = 1
    metrics: Mapping[str, RewardStatus] | None = None
    #: per-slot rewards of a ranking: each slot's status
    slots: Mapping[int, RewardStatus] | None = None

    @property
    def duplicate(self) -> bool:
        """True when the decision had already been rewarded (nothing changed)."""
        return self.status == "duplicate"

    @property
    def retried(self) -> bool:
        """More than one attempt was sent (after a 503 or a lost connection)."""
        return self.attempts > 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the service's reward answer."""
        out = {"decision_id": self.decision_id, "bandit": self.bandit, "arm": self.arm,
               "status": self.status, "duplicate": self.duplicate,
               "model_version": self.model_version}
        if self.metrics is not None:
            out["metrics"] = {m: {"status": s, "duplicate": s == "duplicate"}
                              for m, s in self.metrics.items()}
        if self.slots is not None:
            out["slots"] = [{"slot": j, "status": s, "duplicate": s == "duplicate"}
                            for j, s in sorted(self.slots.items())]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, attempts: int = 1) -> RewardResult:
        """Inverse of :meth:`to_dict`; unknown fields are ignored."""
        metrics, slots = data.get("metrics"), data.get("slots")
        return cls(str(data["decision_id"]), str(data["bandit"]), str(data["arm"]),
                   data["status"], int(data["model_version"]), attempts,
                   None if metrics is None else
                   {str(m): v["status"] for m, v in metrics.items()},
                   None if slots is None else {int(v["slot"]): v["status"] for v in slots})


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Posterior summary of one arm: mean, equal-tailed credible interval, pulls, total reward,
    probability of being best, and for Beta models the posterior ``alpha`` and ``beta``."""

    arm: str
    mean: float
    lower: float
    upper: float
    pulls: float
    rewards: float
    prob_best: float
    alpha: float | None = None
    beta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-safe); ``alpha`` and ``beta`` only when set."""
        out = {"arm": self.arm, "mean": self.mean, "lower": self.lower, "upper": self.upper,
               "pulls": self.pulls, "rewards": self.rewards, "prob_best": self.prob_best}
        if self.alpha is not None:
            out["alpha"] = self.alpha
            out["beta"] = self.beta
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmSummary:
        """Inverse of :meth:`to_dict`; unknown fields are ignored."""
        alpha, beta = data.get("alpha"), data.get("beta")
        return cls(str(data["arm"]), float(data["mean"]), float(data["lower"]),
                   float(data["upper"]), float(data["pulls"]), float(data["rewards"]),
                   float(data["prob_best"]), None if alpha is None else float(alpha),
                   None if beta is None else float(beta))


@dataclass(frozen=True)
class BatchDecision:
    """Decisions for many users at once: ``indices`` ``(n, k)``, ``propensities`` ``(n, k)``."""

    indices: np.ndarray
    arm_names: tuple[str, ...]
    propensities: np.ndarray | None = None

    @property
    def arms(self) -> list[str]:
        """The first-choice arm name of each user."""
        return [self.arm_names[i] for i in self.indices[:, 0]]

    @property
    def rankings(self) -> list[list[str]]:
        """Each user's ranking as arm names."""
        return [[self.arm_names[i] for i in row] for row in self.indices]
