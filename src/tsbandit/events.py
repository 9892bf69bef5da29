"""The event log's schema: the one place that knows the fields of every logged event.

The engine appends one event per decision, per reward and per decision settled by the expiry
sweep; the store keeps them as JSON objects (``Engine.export_events``, ``GET
/v1/bandits/{name}/events``), and off-policy evaluation, the report and the dashboard read them
back. Writers build a record and call ``to_dict()``; readers call :func:`parse_event` (one
object) or :func:`iter_events` (JSON Lines, dicts or records) and read attributes.

``decision``
    ``decision_id``, ``timestamp`` (epoch seconds), ``bandit``, ``context`` (list of numbers or
    null), ``arm`` (the first of the ranking), ``ranking``, ``propensity`` (of ``arm`` first),
    ``position_propensities``, ``user_id``, ``model_version`` and, for a context-free ``k = 1``
    decision of a bandit of at most 64 arms, ``arm_probabilities`` (every arm's probability of
    being chosen, unfloored), and for a bandit with constraints ``applied`` (what its rule
    applied: ``constrained``, ``baseline`` or ``most_likely``); for a sticky bandit's decision of
    a known user ``sticky_of``, the id of the decision whose draw (and propensities) it shows.
``reward``
    ``decision_id``, ``timestamp``, ``bandit``, ``arm``, ``reward``, ``context``,
    ``propensity`` (copied from the decision), ``metric`` (for a bandit with several metrics:
    one event per metric of a decision, each logged when that metric is applied) and
    ``arm_retired: true`` when the decision's arm was retired since (the reward is consumed,
    not learned).
``expired``
    As ``reward``, for a decision whose reward window passed: ``reward`` is the bandit's
    default reward (null: none, nothing learned); with several metrics, one per metric, the
    metric's own default.

Versioning: every event logged so far is format 1, which writes no ``format`` field (the log
stays what it always was); a later format writes ``"format": n`` and :func:`parse_event`
refuses a format it does not know. Unknown fields are ignored and unknown event types skipped
(``parse_event`` returns None), so a newer writer's log still reads. Readers get values as
logged: a field that is absent is None (external logs may carry ISO 8601 timestamps, see
:func:`tsbandit.evaluation.jsonl.parse_timestamp`); only a reward's or an expiry's
``reward`` is required (null is "no reward"; absent is malformed). A reader that joins events
checks that they have a ``decision_id`` (the engine always writes one; a reader that only
counts needs none).

>>> ev = DecisionEvent("ads~" + "0" * 32, 10.0, "ads", "a", ranking=("a",), propensity=0.5)
>>> parse_event(ev.to_dict()) == ev
True
>>> [type(e).__name__ for e in iter_events(['{"type": "reward", "decision_id": "d", '
...                                         '"reward": 1}', '', '{"type": "heartbeat"}'])]
['RewardEvent']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import SerializationError

__all__ = ["EVENT_FORMAT", "DecisionEvent", "Event", "ExpiredEvent", "RewardEvent",
           "iter_events", "numbered_events", "parse_event"]

#: The event format this version writes (format 1 writes no ``format`` field).
EVENT_FORMAT = 1


@dataclass(slots=True)
class _Event:
    """What every event has: the decision it is about, when, in which bandit, for which arm."""

    decision_id: str | None
    timestamp: Any
    bandit: str | None
    arm: str | None


@dataclass(slots=True)
class DecisionEvent(_Event):
    """A decision was made and recorded as pending."""

    type: ClassVar[str] = "decision"

    context: list[float] | None = None
    ranking: tuple[str, ...] | None = None
    propensity: Any = None
    position_propensities: tuple[float, ...] | None = None
    user_id: str | None = None
    model_version: int | None = None
    arm_probabilities: dict[str, float] | None = None
    #: what a constrained rule applied (``"constrained"``, ``"baseline"``, ``"most_likely"``)
    applied: str | None = None
    #: a sticky user's decision: the id of the decision whose draw it shows
    sticky_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, as logged."""
        out = {"type": "decision", "decision_id": self.decision_id, "timestamp": self.timestamp,
               "bandit": self.bandit, "context": self.context, "arm": self.arm,
               "ranking": None if self.ranking is None else list(self.ranking),
               "propensity": self.propensity,
               "position_propensities": None if self.position_propensities is None
               else list(self.position_propensities),
               "user_id": self.user_id, "model_version": self.model_version}
        if self.arm_probabilities is not None:
            out["arm_probabilities"] = self.arm_probabilities
        if self.applied is not None:
            out["applied"] = self.applied
        if self.sticky_of is not None:
            out["sticky_of"] = self.sticky_of
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionEvent:
        """Inverse of :meth:`to_dict` (see the module docstring for what is required)."""
        ranking, pp = data.get("ranking"), data.get("position_propensities")
        return cls(data.get("decision_id"), data.get("timestamp"), data.get("bandit"),
                   data.get("arm"), data.get("context"),
                   None if ranking is None else tuple(ranking), data.get("propensity"),
                   None if pp is None else tuple(pp), data.get("user_id"),
                   data.get("model_version"), data.get("arm_probabilities"),
                   data.get("applied"), data.get("sticky_of"))


@dataclass(slots=True)
class RewardEvent(_Event):
    """A reward was applied to a pending decision (exactly once)."""

    type: ClassVar[str] = "reward"

    reward: Any
    context: list[float] | None = None
    propensity: Any = None
    arm_retired: bool = False
    #: the metric this reward is for (bandits with several metrics log one event per metric;
    #: absent for a single-metric bandit)
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, as logged."""
        out = {"type": self.type, "decision_id": self.decision_id, "timestamp": self.timestamp,
               "bandit": self.bandit, "arm": self.arm, "reward": self.reward,
               "context": self.context, "propensity": self.propensity}
        if self.metric is not None:
            out["metric"] = self.metric
        if self.arm_retired:
            out["arm_retired"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardEvent:
        """Inverse of :meth:`to_dict` (see the module docstring for what is required)."""
        return cls(data.get("decision_id"), data.get("timestamp"), data.get("bandit"),
                   data.get("arm"), _required(data, "reward"), data.get("context"),
                   data.get("propensity"), bool(data.get("arm_retired", False)),
                   data.get("metric"))


@dataclass(slots=True)
class ExpiredEvent(RewardEvent):
    """A pending decision's reward window passed: settled with the default reward (``reward``,
    None when the bandit has none) by the expiry sweep."""

    type: ClassVar[str] = "expired"


Event = DecisionEvent | RewardEvent | ExpiredEvent

_TYPES: dict[Any, type[DecisionEvent] | type[RewardEvent]] = {
    "decision": DecisionEvent, "reward": RewardEvent, "expired": ExpiredEvent}


def _required(data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise SerializationError(f"{data.get('type')} event without {name!r}")
    return data[name]


def parse_event(data: Mapping[str, Any]) -> Event | None:
    """The record of one logged event, or None for a type this schema does not know.

    :class:`~tsbandit.errors.SerializationError` when a required field is missing or the
    event's ``format`` is newer than this version reads.
    """
    cls = _TYPES.get(data.get("type"))
    if cls is None:
        return None
    fmt = data.get("format", 1)
    if fmt != EVENT_FORMAT:
        raise SerializationError(f"event format {fmt!r} is not supported (this version reads "
                                 f"format {EVENT_FORMAT})")
    return cls.from_dict(data)


def iter_events(source: Iterable[str | bytes | Mapping[str, Any]], *,
                skip_malformed: bool = False) -> Iterator[Event]:
    """The known events of a log: JSON Lines (blank lines skipped) or dicts (what
    ``Store.iter_events`` yields), in order; unknown types are skipped.

    :class:`~tsbandit.errors.SerializationError` names the line (1-based) of a line that is
    not a JSON object or an event that is malformed -- or, with ``skip_malformed`` (a
    dashboard that must go on), such lines are skipped.
    """
    for _, event in numbered_events(source, skip_malformed=skip_malformed):
        yield event


def numbered_events(source: Iterable[str | bytes | Mapping[str, Any]], *,
                    skip_malformed: bool = False) -> Iterator[tuple[int, Event]]:
    """:func:`iter_events` with the line number (1-based) of each event."""
    for lineno, item in enumerate(source, start=1):
        try:
            event = _parse_line(item)
        except SerializationError as exc:
            if skip_malformed:
                continue
            raise SerializationError(f"line {lineno}: {exc}") from None
        if event is not None:
            yield lineno, event


def _parse_line(item: str | bytes | Mapping[str, Any]) -> Event | None:
    if isinstance(item, (str, bytes)):
        if not item.strip():
            return None
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise SerializationError("expected a JSON object")
    return parse_event(item)
