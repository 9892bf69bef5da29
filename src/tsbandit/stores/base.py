"""The :class:`Store` protocol: where a bandit's statistics live between requests.

A store knows nothing about Bayes. Per bandit it keeps

* a JSON **configuration** (a ``dict``; the engine decides what is in it) and its
  ``config_version``, bumped by :meth:`Store.replace` only;
* a set of named float64 **arrays** (the statistics; the arm axis first, all arrays with the same
  number of arms) and a ``version``, bumped by every change of the arrays;
* the **pending-decision log**: one JSON payload per decision id, with a deadline, consumed exactly
  once, either by a reward (:meth:`Store.apply_reward`) or by the expiry sweep
  (:meth:`Store.claim_expired` + :meth:`Store.settle_expired`);
* an append-only **event log** of JSON objects (decisions and rewards), in append order,
  optionally bounded to the newest ``events_maxlen`` events (see :meth:`Store.purge`).

Every method is atomic: it either fully happens or raises and changes nothing. A read returns a
consistent :class:`Snapshot` in one round trip.

Decision lifecycle (``now`` is always passed in by the caller, as float epoch seconds)::

    put_pending ──► pending ──apply_reward(now <= deadline)──► rewarded  (repeat: "duplicate")
                       │
                       └─claim_expired(now > deadline)──► claimed ──settle_expired──► expired
                              ▲                              │ (lease lapses: claimable again)
                              └──────────────────────────────┘

``apply_reward`` raises :class:`~tsbandit.errors.DecisionNotFoundError` for an unknown id and
:class:`~tsbandit.errors.DecisionExpiredError` once the deadline has passed or the decision was
settled by the sweep. Consumed decisions are remembered (so repeats answer "duplicate") until
``deadline + retention``; after that :meth:`Store.purge` deletes them and a reward for them is
"not found" (``DecisionNotFoundError``). Unconsumed decisions are never purged: the sweep settles
them first. ``purge`` also trims the event log to ``events_maxlen``, so a store that is swept
and purged regularly stays the same size under a steady load.

Expiry with several workers sweeping at once stays Bayes-free and exactly-once: a sweeper
*claims* a batch of expired decisions (each claim has a random token and a lease), computes the
default-reward deltas from each payload itself, then *settles* each claim; settling is a
compare-and-set on the token, so a claim taken over after its lease lapsed can only be settled by
the new holder, and a decision is settled at most once. :meth:`Store.sweep_expired` packages the
loop.

Arm management changes array shapes: :meth:`Store.replace` swaps configuration and arrays at once,
guarded by ``expected_config_version``; :meth:`Store.add`, :meth:`Store.apply_reward` and
:meth:`Store.settle_expired` accept ``config_version`` so deltas computed against an older arm
layout are refused (:class:`VersionConflictError`) instead of landing on the wrong arm.

Examples
--------
>>> import numpy as np
>>> from tsbandit.stores import MemoryStore
>>> store = MemoryStore()
>>> _ = store.create_bandit("ads", {"arms": ["a", "b"]}, {"s": np.zeros(2), "f": np.zeros(2)})
>>> store.put_pending("ads", "d1", {"arm": 1}, deadline=100.0)
>>> store.apply_reward("ads", "d1", {"s": np.array([0.0, 1.0])}, {"reward": 1}, now=50.0).status
'applied'
>>> store.apply_reward("ads", "d1", {"s": np.array([0.0, 1.0])}, {"reward": 1}, now=51.0).status
'duplicate'
>>> store.read("ads").arrays["s"].tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

# DecisionExistsError and VersionConflictError live in tsbandit.errors; re-exported here.
from ..errors import (
    ConfigurationError,
    DecisionExistsError,
    InvalidRewardError,
    SerializationError,
    VersionConflictError,
)

__all__ = [
    "DEFAULT_RETENTION",
    "ClaimedDecision",
    "DecisionExistsError",
    "DeltasFn",
    "EventPage",
    "NewDecision",
    "PendingDecision",
    "PurgeResult",
    "RewardResult",
    "Snapshot",
    "Store",
    "StoreMixin",
    "VersionConflictError",
]

#: Seconds a consumed decision is remembered after its deadline (repeats answer "duplicate").
DEFAULT_RETENTION = 7 * 24 * 3600.0

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]{0,127}$")
_STAT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# ---------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------
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
class PendingDecision:
    """A logged decision, as :meth:`Store.get_pending` returns it."""

    decision_id: str
    payload: dict[str, Any]
    deadline: float
    status: Literal["pending", "claimed", "rewarded", "expired"]


class NewDecision(NamedTuple):
    """One decision for :meth:`Store.put_pending_many` (the arguments of :meth:`Store.put_pending`).

    >>> NewDecision("d1", {"arm": 0}, 100.0, {"type": "decision"}).deadline
    100.0
    """

    decision_id: str
    payload: Mapping[str, Any]
    deadline: float
    event: Mapping[str, Any] | None = None


class EventPage(NamedTuple):
    """One page of a bandit's event log, oldest first, and where the next page starts.

    ``cursor`` is opaque (a row id, a stream id): pass it back as ``after`` to read only what
    was appended since. It is the position of the last event returned, or the ``after`` given
    when there was nothing new (``None`` for an empty log read from the start).
    """

    events: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True)
class ClaimedDecision:
    """An expired decision claimed by one sweeper; settle it with :meth:`Store.settle_expired`."""

    decision_id: str
    payload: dict[str, Any]
    deadline: float
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


class PurgeResult(NamedTuple):
    """What :meth:`Store.purge` deleted: consumed decisions past their retention, and events
    trimmed from the event log (beyond ``events_maxlen``)."""

    decisions: int
    events: int


#: ``deltas_fn(claim) -> (deltas or None, event or None)`` used by :meth:`Store.sweep_expired`.
DeltasFn = Callable[
    [ClaimedDecision], "tuple[Mapping[str, np.ndarray] | None, Mapping[str, Any] | None]"
]


# ---------------------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class Store(Protocol):
    """Where bandit state lives. Implementations: Memory, SQLite, Redis (standalone, Cluster).

    Every method raises :class:`~tsbandit.errors.BanditNotFoundError` for an unknown bandit and
    :class:`~tsbandit.errors.StoreUnavailableError` when the backend cannot be reached (in which
    case nothing was written, except that a write whose *reply* was lost may have been applied
    in full, and that a Redis store with ``min_replicas`` raises it for a write applied on the
    primary but not known to have reached the replicas; :meth:`apply_reward` is safe to retry,
    a plain :meth:`add` is not).
    """

    url: str

    # -- bandits ------------------------------------------------------------------------------
    def create_bandit(
        self, name: str, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> Snapshot:
        """Create a bandit (version 0, config_version 0); ``BanditExistsError`` if present."""
        ...

    def exists(self, name: str) -> bool:
        """True when the bandit exists."""
        ...

    def list_bandits(self) -> list[str]:
        """Sorted names of all bandits."""
        ...

    def delete_bandit(self, name: str) -> None:
        """Delete a bandit with its statistics, pending decisions and events."""
        ...

    def read(self, name: str) -> Snapshot:
        """Configuration, arrays and versions, consistent, in one round trip."""
        ...

    def replace(
        self,
        name: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        expected_config_version: int | None = None,
    ) -> Snapshot:
        """Atomically replace the configuration and (if given) all arrays.

        Raises :class:`VersionConflictError` when ``expected_config_version`` is given and
        differs from the stored one. Bumps ``config_version`` and ``version``.
        """
        ...

    # -- statistics ---------------------------------------------------------------------------
    def add(
        self,
        name: str,
        deltas: Mapping[str, np.ndarray],
        *,
        config_version: int | None = None,
    ) -> int:
        """Add ``deltas`` element-wise, atomically; return the new version.

        ``deltas`` may name a subset of the statistics; each must have the stored shape
        (``SerializationError`` otherwise). With ``config_version``, raise
        :class:`VersionConflictError` if the configuration changed.
        """
        ...

    def scale(self, name: str, gamma: float) -> int:
        """Multiply every array by ``gamma`` (>= 0), atomically; return the new version."""
        ...

    def decay(self, name: str, half_life: float, now: float) -> float:
        """Exponential time decay; return the factor applied.

        Multiplies the arrays by ``0.5 ** ((now - decayed_at) / half_life)`` and sets
        ``decayed_at = now`` in one atomic step (factor 1 on the first call, or when ``now`` is
        not after ``decayed_at``). Any number of workers may call it: the total decay over a
        period equals the decay of its length.
        """
        ...

    # -- pending decisions --------------------------------------------------------------------
    def put_pending(
        self,
        name: str,
        decision_id: str,
        payload: Mapping[str, Any],
        deadline: float,
        *,
        event: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a decision awaiting its reward until ``deadline``; optionally log ``event``.

        Raises :class:`DecisionExistsError` when the id is already known.
        """
        ...

    def put_pending_many(self, name: str, items: Sequence[NewDecision]) -> None:
        """Record many decisions at once: :meth:`put_pending` for each item, all or nothing.

        One round trip (one transaction, one script) however many items; the events are
        appended in the order of ``items``. Raises :class:`DecisionExistsError` and writes
        nothing when any id is already known or appears twice in ``items``; an invalid item
        (bad id, payload, deadline or event) also writes nothing. An empty ``items`` does
        nothing.
        """
        ...

    def get_pending(self, name: str, decision_id: str) -> PendingDecision:
        """The stored decision (any status); ``DecisionNotFoundError`` when unknown."""
        ...

    def apply_reward(
        self,
        name: str,
        decision_id: str,
        deltas: Mapping[str, np.ndarray],
        event: Mapping[str, Any] | None,
        now: float,
        *,
        config_version: int | None = None,
    ) -> RewardResult:
        """Consume the decision, add ``deltas`` and append ``event``, all or nothing.

        Unknown -> ``DecisionNotFoundError``; already rewarded -> ``RewardResult("duplicate")``
        and nothing changes; ``now > deadline`` or settled by the sweep ->
        ``DecisionExpiredError``.
        """
        ...

    def claim_expired(
        self, name: str, now: float, *, limit: int = 100, lease: float = 30.0
    ) -> list[ClaimedDecision]:
        """Claim up to ``limit`` unconsumed decisions whose deadline is before ``now``.

        Claims last ``lease`` seconds; an unsettled claim whose lease lapsed can be claimed
        again (with a new token). Purging is :meth:`purge`'s job.
        """
        ...

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> PurgeResult:
        """Delete up to ``limit`` consumed (rewarded or expired) decisions whose retention
        ended (``deadline + retention < now``, with the store's ``retention`` when purge runs;
        oldest first) and trim the event log to the newest ``events_maxlen`` events (when set).

        Pending and claimed decisions are never purged. A reward for a purged decision raises
        :class:`~tsbandit.errors.DecisionNotFoundError`. Safe with several callers at once.
        """
        ...

    def settle_expired(
        self,
        name: str,
        claim: ClaimedDecision,
        deltas: Mapping[str, np.ndarray] | None,
        event: Mapping[str, Any] | None,
        *,
        config_version: int | None = None,
    ) -> bool:
        """Mark a claimed decision expired, add ``deltas`` and append ``event``, all or nothing.

        Returns False (and changes nothing) when the claim is no longer held by this token
        (taken over, or the decision was rewarded meanwhile).
        """
        ...

    def sweep_expired(
        self,
        name: str,
        now: float,
        deltas_fn: DeltasFn,
        *,
        limit: int = 1000,
        lease: float = 30.0,
        config_version: int | None = None,
    ) -> int:
        """Claim expired decisions and settle each with ``deltas_fn(claim)``; return the count."""
        ...

    # -- event log ----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        """Append one JSON object to the bandit's event log."""
        ...

    def iter_events(self, name: str, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        """The bandit's events in append order (read lazily in batches)."""
        ...

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        """At most ``limit`` events appended after the cursor ``after`` (from the start when
        None), oldest first, and the cursor to continue from: an incremental reader folds only
        what is new instead of rescanning the log. Cursors of one store only ever grow, also
        across a delete and re-create of the bandit. A cursor whose events were trimmed
        (``events_maxlen``) continues with the oldest event still kept."""
        ...

    def export_events(self, name: str, fp: IO[str]) -> int:
        """Write the events as JSON Lines to ``fp``; return the number written."""
        ...

    # -- lifecycle ----------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the backend answers."""
        ...

    def health(self) -> dict[str, Any]:
        """Whether the store can serve now: ``{"ok": bool, ...}`` with backend details (a Redis
        Cluster adds its ``cluster_state`` and slots served). Raises ``StoreUnavailableError``
        when the backend cannot be reached at all."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------
class StoreMixin:
    """Methods every store derives from the primitive ones."""

    def health(self) -> dict[str, Any]:
        """``{"ok": True}`` when :meth:`ping` answers (a store with more to say overrides it)."""
        self.ping()  # type: ignore[attr-defined]
        return {"ok": True}

    def sweep_expired(
        self,
        name: str,
        now: float,
        deltas_fn: DeltasFn,
        *,
        limit: int = 1000,
        lease: float = 30.0,
        config_version: int | None = None,
    ) -> int:
        settled = 0
        for claim in self.claim_expired(name, now, limit=limit, lease=lease):  # type: ignore[attr-defined]
            deltas, event = deltas_fn(claim)
            if self.settle_expired(  # type: ignore[attr-defined]
                name, claim, deltas, event, config_version=config_version
            ):
                settled += 1
        return settled

    def iter_events(self, name: str, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        # the first page is read now, so an unknown bandit raises here, not at iteration
        size = max(int(batch_size), 1)
        first = self.read_events(name, limit=size)  # type: ignore[attr-defined]
        return self._pages(name, first, size)

    def _pages(self, name: str, page: EventPage, size: int) -> Iterator[dict[str, Any]]:
        while True:
            yield from page.events
            if len(page.events) < size:
                return
            page = self.read_events(name, after=page.cursor, limit=size)  # type: ignore[attr-defined]

    def export_events(self, name: str, fp: IO[str]) -> int:
        n = 0
        for event in self.iter_events(name):
            fp.write(json.dumps(event, separators=(",", ":"), allow_nan=False))
            fp.write("\n")
            n += 1
        return n

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


def check_limit(limit: int) -> int:
    """Validate a page size (an int >= 1)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit == {limit!r}, must be an int >= 1")
    return limit


def check_int_cursor(after: str | None) -> int:
    """A cursor that is a row number (SQLite, memory): 0 for None; ConfigurationError else."""
    if after is None:
        return 0
    if not isinstance(after, str) or not after.isdigit():
        raise ConfigurationError(f"cursor {after!r} is not a cursor of this store")
    return int(after)


def check_name(name: str) -> str:
    """Validate a bandit name (letters, digits and ``_.:@+=-``, at most 128 characters)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigurationError(
            f"bandit name == {name!r}, must be 1-128 characters from letters, digits and "
            "'_.:@+=-', not starting with punctuation"
        )
    return name


def check_decision_id(decision_id: str) -> str:
    """Validate a decision id: a non-empty string of at most 256 printable characters."""
    if (
        not isinstance(decision_id, str)
        or not 0 < len(decision_id) <= 256
        or not decision_id.isprintable()
    ):
        raise ConfigurationError(
            f"decision_id == {decision_id!r}, must be 1-256 printable characters"
        )
    return decision_id


def encode_new_decisions(
    items: Sequence[NewDecision],
) -> list[tuple[str, str, float, str | None]]:
    """Validate and encode a batch for ``put_pending_many``: ``(id, payload JSON, deadline,
    event JSON or None)`` per item. Ids repeated within the batch raise
    :class:`DecisionExistsError`; anything invalid raises before a store writes."""
    out: list[tuple[str, str, float, str | None]] = []
    seen: set[str] = set()
    for item in items:
        decision_id, payload, deadline, event = NewDecision(*item)
        check_decision_id(decision_id)
        if decision_id in seen:
            raise DecisionExistsError(f"decision {decision_id!r} appears twice in the batch")
        seen.add(decision_id)
        out.append((
            decision_id,
            dumps(payload, "payload"),
            check_time("deadline", deadline),
            None if event is None else dumps(event, "event"),
        ))
    return out


def check_time(label: str, value: float) -> float:
    """A finite float (epoch seconds, deadlines, leases)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{label} == {value!r}, must be a number") from None
    if not math.isfinite(v):
        raise ConfigurationError(f"{label} == {value!r}, must be finite")
    return v


def check_arrays(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate the arrays of a bandit: float64, arm axis first, one common number of arms."""
    out: dict[str, np.ndarray] = {}
    n_arms: int | None = None
    for key, value in arrays.items():
        if not isinstance(key, str) or not _STAT_RE.match(key):
            raise SerializationError(
                f"statistic name == {key!r}, must be an identifier of at most 64 characters"
            )
        arr = np.asarray(value, dtype="<f8")
        if arr.ndim < 1:
            raise SerializationError(
                f"statistic {key!r} has shape {arr.shape}, needs an arm axis first"
            )
        if n_arms is None:
            n_arms = arr.shape[0]
        elif arr.shape[0] != n_arms:
            raise SerializationError(
                f"statistic {key!r} has {arr.shape[0]} arms, the others have {n_arms}"
            )
        out[key] = np.ascontiguousarray(arr)
    return out


def check_deltas(deltas: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Deltas as contiguous little-endian float64 arrays; non-finite values are refused."""
    if deltas is None:
        return {}
    out: dict[str, np.ndarray] = {}
    for key, value in deltas.items():
        arr = np.asarray(value, dtype="<f8")
        if arr.ndim < 1:
            raise SerializationError(f"delta {key!r} has shape {arr.shape}, needs an arm axis")
        if not np.isfinite(arr).all():
            raise SerializationError(f"delta {key!r} contains NaN or infinite values")
        out[str(key)] = np.ascontiguousarray(arr)
    return out


def check_retention(retention: float) -> float:
    """Seconds a consumed decision is remembered after its deadline: finite and >= 0."""
    r = check_time("retention", retention)
    if r < 0:
        raise ConfigurationError(f"retention == {retention!r}, must be >= 0")
    return r


def check_events_maxlen(events_maxlen: int | None) -> int | None:
    """Most events kept per bandit: None (keep all) or an int >= 1."""
    if events_maxlen is None:
        return None
    if (isinstance(events_maxlen, bool) or not isinstance(events_maxlen, (int, np.integer))
            or events_maxlen < 1):
        raise ConfigurationError(f"events_maxlen == {events_maxlen!r}, must be an int >= 1")
    return int(events_maxlen)


def finite_sums(stored: Mapping[str, np.ndarray], deltas: Mapping[str, np.ndarray]
                ) -> dict[str, np.ndarray]:
    """``stored[key] + delta`` for every delta, or :class:`~tsbandit.errors.InvalidRewardError`
    when a total would not be finite (a float64 overflow).

    Stores call it inside their atomic write, before writing anything: a finite delta that
    overflows the stored totals is refused, nothing is written, and a decision it rewarded
    stays pending. Shapes must have been checked.
    """
    out = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for key, d in deltas.items():
            total = stored[key] + d
            # one reduction screens the common case (a finite sum means every entry is
            # finite); only a non-finite sum pays for the element-wise check
            if not math.isfinite(float(total.sum())) and not np.isfinite(total).all():
                raise overflow_error(key)
            out[key] = total
    return out


def overflow_error(key: str) -> InvalidRewardError:
    """The error every store raises when a delta would make statistic ``key`` non-finite."""
    return InvalidRewardError(
        f"adding this observation would make the stored statistic {key!r} non-finite "
        "(float64 overflow); nothing was written"
    )


def check_gamma(gamma: float) -> float:
    """A finite, non-negative scale factor."""
    g = check_time("gamma", gamma)
    if g < 0:
        raise ConfigurationError(f"gamma == {gamma!r}, must be >= 0")
    return g


def check_half_life(half_life: float) -> float:
    """A finite, positive half-life in seconds."""
    h = check_time("half_life", half_life)
    if h <= 0:
        raise ConfigurationError(f"half_life == {half_life!r}, must be > 0")
    return h


def decay_factor(decayed_at: float | None, half_life: float, now: float) -> float:
    """``0.5 ** ((now - decayed_at) / half_life)``; 1 when not started or not later."""
    if decayed_at is None or now <= decayed_at:
        return 1.0
    return float(0.5 ** ((now - decayed_at) / half_life))


def dumps(obj: Mapping[str, Any], what: str) -> str:
    """Compact JSON; NaN, infinities and non-JSON types raise ``SerializationError``."""
    if not isinstance(obj, Mapping):
        raise SerializationError(f"{what} must be a JSON object (a dict), got {type(obj).__name__}")
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} is not JSON-safe: {exc}") from exc


def readonly(arr: np.ndarray) -> np.ndarray:
    """Mark an array read-only (snapshots never alias mutable store state)."""
    arr.setflags(write=False)
    return arr
