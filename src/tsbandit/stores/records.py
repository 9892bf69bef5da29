"""The values a :class:`~tsbandit.stores.protocol.Store` takes and returns.

Plain frozen records, no behaviour: what a snapshot, a logged decision, a claim, a reward's
outcome, a purge's count, a page of events and a sticky assignment look like, plus the
one-letter codes of a decision's status that every backend stores.

>>> RewardResult("duplicate", 3).duplicate
True
>>> STATUS_NAMES[REWARDED]
'rewarded'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "CLAIMED",
    "DEFAULT_RETENTION",
    "EXPIRED",
    "PENDING",
    "REWARDED",
    "STATUS_NAMES",
    "Assignment",
    "ClaimedDecision",
    "DeltasFn",
    "EncodedAssignment",
    "EncodedDecision",
    "EncodedReward",
    "EventPage",
    "NewDecision",
    "PendingDecision",
    "PurgeResult",
    "RewardItem",
    "RewardResult",
    "Snapshot",
]

#: Seconds a consumed decision is remembered after its deadline (repeats answer "duplicate").
DEFAULT_RETENTION = 7 * 24 * 3600.0

#: The one-letter status codes every backend stores (the Lua scripts use the same letters).
PENDING, CLAIMED, REWARDED, EXPIRED = "p", "c", "r", "x"
StatusName = Literal["pending", "claimed", "rewarded", "expired"]
STATUS_NAMES: dict[str, StatusName] = {
    PENDING: "pending", CLAIMED: "claimed", REWARDED: "rewarded", EXPIRED: "expired",
}


@dataclass(frozen=True)
class Snapshot:
    """A consistent view of one bandit, read in one round trip.

    Attributes
    ----------
    name
        Bandit name.
    config
        The JSON configuration (a fresh ``dict``; changing it changes nothing in the store).
    arrays
        Statistic name -> read-only float64 array of shape ``(n_arms, *event_shape)``.
    version
        Bumped by every change of the arrays (add, scale, decay, reward, settle, replace).
    config_version
        Bumped by :meth:`Store.replace` only.
    decayed_at
        Time of the last :meth:`Store.decay` (``None`` before the first one).
    """

    name: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    version: int
    config_version: int
    decayed_at: float | None = None


@dataclass(frozen=True)
class _LoggedDecision:
    decision_id: str
    payload: dict[str, Any]
    deadline: float


@dataclass(frozen=True)
class PendingDecision(_LoggedDecision):
    """A logged decision, as :meth:`Store.get_pending` returns it (``status`` one of
    ``"pending"``, ``"claimed"``, ``"rewarded"``, ``"expired"``).

    ``outcome`` is the value the decision was rewarded with (the ``outcome`` given to the
    :meth:`Store.apply_reward` that consumed it, a float); None while pending or claimed, once
    expired, or when the reward gave none.

    >>> PendingDecision("d1", {"arm": 0}, 100.0, "rewarded", 1.0).outcome
    1.0
    """

    status: StatusName
    outcome: float | None = None


class NewDecision(NamedTuple):
    """One decision for :meth:`Store.put_pending_many` (the arguments of :meth:`Store.put_pending`).

    >>> NewDecision("d1", {"arm": 0}, 100.0, {"type": "decision"}).deadline
    100.0
    """

    decision_id: str
    payload: Mapping[str, Any]
    deadline: float
    event: Mapping[str, Any] | None = None


class EncodedDecision(NamedTuple):
    """A :class:`NewDecision` validated and encoded once, as the backends store it."""

    decision_id: str
    payload: str  # JSON
    deadline: float
    event: str | None  # JSON


class EventPage(NamedTuple):
    """One page of a bandit's event log, oldest first, and where the next page starts.

    ``cursor`` is opaque (a row id, a stream id): pass it back as ``after`` to read only what
    was appended since. It is the position of the last event returned, or the ``after`` given
    when there was nothing new (``None`` for an empty log read from the start).
    """

    events: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True)
class ClaimedDecision(_LoggedDecision):
    """An expired decision claimed by one sweeper; settle it with :meth:`Store.settle_expired`
    (``token`` proves the claim)."""

    token: str


@dataclass(frozen=True)
class RewardResult:
    """Outcome of :meth:`Store.apply_reward`: ``"applied"`` or ``"duplicate"`` (nothing changed).

    ``version`` is the bandit's version after the call.
    """

    status: Literal["applied", "duplicate"]
    version: int

    @property
    def duplicate(self) -> bool:
        """True when the decision had already been rewarded."""
        return self.status == "duplicate"


class RewardItem(NamedTuple):
    """One reward for :meth:`Store.apply_reward_many` (the arguments of
    :meth:`Store.apply_reward`).

    >>> RewardItem("d1", {}, None, 50.0, outcome=1.0).outcome
    1.0
    """

    decision_id: str
    deltas: Mapping[str, np.ndarray]
    event: Mapping[str, Any] | None
    now: float
    config_version: int | None = None
    outcome: float | None = None


class EncodedReward(NamedTuple):
    """A :class:`RewardItem` validated and encoded once, as the backends apply it."""

    decision_id: str
    deltas: dict[str, np.ndarray]
    event: str | None  # JSON
    now: float
    cver: int | None
    outcome: float | None


class PurgeResult(NamedTuple):
    """What :meth:`Store.purge` deleted: consumed decisions past their retention, events
    trimmed from the event log (beyond ``events_maxlen``) and expired sticky assignments.

    >>> PurgeResult(2, 0)
    PurgeResult(decisions=2, events=0, assignments=0)
    """

    decisions: int
    events: int
    assignments: int = 0


class Assignment(NamedTuple):
    """A sticky assignment, as :meth:`Store.get_assignment` and :meth:`Store.assign` return it.

    ``key`` names who is assigned (a user id), ``payload`` is what they keep (a fresh ``dict``
    read back from its JSON, with its string ``"id"``), until ``expires_at`` (epoch seconds,
    exclusive: live while ``expires_at > now``). ``created`` is True only for the
    :meth:`Store.assign` call that stored this payload; an assignment found live is returned
    with ``created`` False.

    >>> Assignment("u1", {"id": "d1", "arm": 2}, 3600.0, True).payload["arm"]
    2
    """

    key: str
    payload: dict[str, Any]
    expires_at: float
    created: bool


class EncodedAssignment(NamedTuple):
    """An :meth:`Store.assign` call's arguments, validated and encoded once, as the backends
    store and compare them: ``item`` is the payload's ``"id"`` as JSON text (so backends
    compare it byte for byte, never parsing the payload), ``replace`` likewise or None."""

    key: str
    payload: str  # JSON
    item: str  # JSON text of payload["id"]
    expires_at: float
    now: float
    replace: str | None  # JSON text of the id to replace


#: ``deltas_fn(claim) -> (deltas or None, event or None)`` used by :meth:`Store.sweep_expired`.
DeltasFn = Callable[
    [ClaimedDecision], "tuple[Mapping[str, np.ndarray] | None, Mapping[str, Any] | None]"
]
