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
* **sticky assignments**: per key (a user id) one JSON payload with a string ``"id"`` and an
  ``expires_at``, so every worker gives a returning user what the bandit chose for them
  (:meth:`Store.assign`, :meth:`Store.get_assignment`; expired ones go with :meth:`Store.purge`).

Every method is atomic: it either fully happens or raises and changes nothing. A read returns a
consistent :class:`Snapshot` in one round trip.

Decision lifecycle (``now`` is always passed in by the caller, as float epoch seconds)::

    put_pending ──► pending ──apply_reward(now <= deadline)──► rewarded  (repeat: "duplicate")
                       │
                       └─claim_expired(now > deadline)──► claimed ──settle_expired──► expired
                              ▲                              │ (lease lapses: claimable again)
                              └──────────────────────────────┘

A reward may carry an ``outcome`` (the value it was rewarded with, a finite float): the record
keeps it with its status, and :meth:`Store.get_pending` returns it, so a later reward that
depends on this one (a metric declared *given* another) can read what the first was. A repeat
keeps the first outcome.

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

Sticky assignment is one compare-and-set, so workers that see the same user at once agree::

    assign(key, payload, expires_at, now, replace=None)
        live assignment (expires_at > now) whose id is not ``replace`` ──► kept, created False
        none, expired, or the live one's id == replace              ──► stored, created True

Every caller gets the same payload, and exactly one of them ``created=True`` (the one whose
draw is now the user's: it logs the decision). ``replace`` takes over an assignment the caller
found unusable (its arm retired), and only that one: if another worker replaced it first, its
replacement is returned. A caller whose ``assign`` reply was lost may retry: the retry answers
``created=False`` with the payload the first call stored, which the caller recognises by its id.

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
>>> store.apply_reward("ads", "d1", {"s": np.array([0.0, 1.0])}, {"reward": 1}, now=50.0,
...                    outcome=1.0).status
'applied'
>>> store.apply_reward("ads", "d1", {"s": np.array([0.0, 1.0])}, {"reward": 0}, now=51.0,
...                    outcome=0.0).status
'duplicate'
>>> store.get_pending("ads", "d1").outcome
1.0
>>> store.read("ads").arrays["s"].tolist()
[0.0, 1.0]
>>> store.assign("ads", "user-7", {"id": "d1", "arm": 1}, expires_at=3600.0, now=50.0).created
True
>>> store.assign("ads", "user-7", {"id": "d2", "arm": 0}, expires_at=3700.0, now=60.0)
Assignment(key='user-7', payload={'id': 'd1', 'arm': 1}, expires_at=3600.0, created=False)
>>> store.get_assignment("ads", "user-7", now=3600.0) is None  # expired at 3600
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import DecisionNotFoundError, TsbanditError
from . import records

__all__ = ["Store"]


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
        self, name: str, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *,
        config_version: int = 0,
    ) -> records.Snapshot:
        """Create a bandit at version 0 and ``config_version`` (``BanditExistsError`` if
        present). A caller that may delete a bandit and create another under its name starts
        each at a value of its own (the engine draws one at random), so that no write guarded
        by the old one's configuration version lands on the new one."""
        ...

    def exists(self, name: str) -> bool:
        """True when the bandit exists."""
        ...

    def list_bandits(self) -> list[str]:
        """Sorted names of all bandits."""
        ...

    def delete_bandit(self, name: str) -> None:
        """Delete a bandit with its statistics, pending decisions, events and assignments."""
        ...

    def read(self, name: str) -> records.Snapshot:
        """Configuration, arrays and versions, consistent, in one round trip."""
        ...

    def replace(
        self,
        name: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        expected_config_version: int | None = None,
    ) -> records.Snapshot:
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

    def put_pending_many(self, name: str, items: Sequence[records.NewDecision], *,
                         if_at: tuple[int, int] | None = None) -> records.Snapshot | None:
        """Record many decisions at once: :meth:`put_pending` for each item, all or nothing.

        One round trip (one transaction, one script) however many items; the events are
        appended in the order of ``items``. Raises :class:`DecisionExistsError` and writes
        nothing when any id is already known or appears twice in ``items``; an invalid item
        (bad id, payload, deadline or event) also writes nothing. An empty ``items`` does
        nothing.

        ``if_at=(version, config_version)``: record them only if the bandit is still at that
        version and configuration version, checked in the same atomic step. Returns None when
        written; when the bandit has moved, writes nothing and returns its current snapshot
        (what :meth:`read` would return) -- the decisions drawn from a cached snapshot are
        recorded only if it was still current, in one round trip, and otherwise drawn again
        from the snapshot returned. A store holding a bandit in several shards refuses it
        (``ConfigurationError``).
        """
        ...

    def get_pending(self, name: str, decision_id: str) -> records.PendingDecision:
        """The stored decision (any status); ``DecisionNotFoundError`` when unknown.

        Its ``outcome`` is the one stored by the reward that consumed it (None while pending
        or claimed, once expired, or when that reward gave none).
        """
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
        outcome: float | None = None,
    ) -> records.RewardResult:
        """Consume the decision, add ``deltas``, store ``outcome`` with the decision and
        append ``event``, all or nothing.

        Unknown -> ``DecisionNotFoundError``; already rewarded -> ``RewardResult("duplicate")``
        and nothing changes (the first reward's outcome stays); ``now > deadline`` or settled
        by the sweep -> ``DecisionExpiredError``. ``outcome`` is None or a finite real number
        (a bool is 0 or 1), kept as a float and read back by :meth:`get_pending`; anything
        else raises ``SerializationError`` before anything is written.
        """
        ...

    def get_pending_many(
        self, name: str, decision_ids: Sequence[str]
    ) -> list[records.PendingDecision | DecisionNotFoundError]:
        """:meth:`get_pending` of each id, in one round trip: per id, in order, its
        :class:`PendingDecision` or the :class:`DecisionNotFoundError` it would raise
        (returned, not raised). An unknown bandit raises ``BanditNotFoundError`` for the
        call; an empty ``decision_ids`` answers ``[]``."""
        ...

    def apply_reward_many(
        self, name: str, items: Sequence[records.RewardItem]
    ) -> list[records.RewardResult | TsbanditError]:
        """:meth:`apply_reward` of each item, in order, in one round trip (one script, one
        transaction): per item its :class:`RewardResult` or the error it would raise
        (``DecisionNotFoundError``, ``DecisionExpiredError``, ``VersionConflictError``,
        ``SerializationError``...), returned, not raised. Each item is atomic on its own
        and one refused item changes nothing of it and never fails the others; an id given
        twice is applied by its first item and answers "duplicate" to the next. An unknown
        bandit raises ``BanditNotFoundError`` and an unreachable backend
        ``StoreUnavailableError`` for the whole call (as :meth:`apply_reward`, safe to
        retry: what was applied answers "duplicate"). An empty ``items`` answers ``[]``.
        """
        ...

    def claim_expired(
        self, name: str, now: float, *, limit: int = 100, lease: float = 30.0
    ) -> list[records.ClaimedDecision]:
        """Claim up to ``limit`` unconsumed decisions whose deadline is before ``now``.

        Claims last ``lease`` seconds; an unsettled claim whose lease lapsed can be claimed
        again (with a new token). Purging is :meth:`purge`'s job.
        """
        ...

    def purge(self, name: str, now: float, *, limit: int = 10_000) -> records.PurgeResult:
        """Delete up to ``limit`` consumed (rewarded or expired) decisions whose retention
        ended (``deadline + retention < now``, with the store's ``retention`` when purge runs;
        oldest first) and trim the event log to the newest ``events_maxlen`` events (when set).

        Also deletes up to ``limit`` expired sticky assignments (``expires_at <= now``, oldest
        first); live ones are never purged. The result counts the three.

        Pending and claimed decisions are never purged. A reward for a purged decision raises
        :class:`~tsbandit.errors.DecisionNotFoundError`. Safe with several callers at once.
        """
        ...

    def settle_expired(
        self,
        name: str,
        claim: records.ClaimedDecision,
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
        deltas_fn: records.DeltasFn,
        *,
        limit: int = 1000,
        lease: float = 30.0,
        config_version: int | None = None,
    ) -> int:
        """Claim expired decisions and settle each with ``deltas_fn(claim)``; return the count."""
        ...

    # -- sticky assignments ---------------------------------------------------------------------
    def get_assignment(self, name: str, key: str, now: float) -> records.Assignment | None:
        """The assignment of ``key`` if one is live (``expires_at > now``), with ``created``
        False; None otherwise (never assigned, expired, purged). One round trip.

        ``key`` is 1-256 printable characters and ``now`` finite (``ConfigurationError``
        otherwise).
        """
        ...

    def assign(
        self,
        name: str,
        key: str,
        payload: Mapping[str, Any],
        expires_at: float,
        now: float,
        *,
        replace: str | None = None,
    ) -> records.Assignment:
        """Give ``key`` the assignment ``payload`` until ``expires_at``, unless it has one.

        Atomically: when a live assignment of ``key`` exists (``expires_at > now``) and
        ``replace`` is None or differs from its payload's ``"id"``, return it (``created``
        False) and change nothing; otherwise store ``payload`` with ``expires_at`` (over an
        expired assignment, or the one whose id is ``replace``) and return it (``created``
        True). One round trip; of several callers racing on one key, exactly one creates and
        all get the same payload.

        ``payload`` is a JSON object with a string ``"id"`` (``SerializationError``
        otherwise); ``key`` 1-256 printable characters, ``now`` and ``expires_at`` finite with
        ``expires_at > now``, ``replace`` None or a string (``ConfigurationError`` otherwise).
        Nothing is written when an argument is refused.
        """
        ...

    # -- event log ----------------------------------------------------------------------------
    def append_event(self, name: str, event: Mapping[str, Any]) -> None:
        """Append one JSON object to the bandit's event log."""
        ...

    def iter_events(self, name: str, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        """The bandit's events in append order (read lazily in batches)."""
        ...

    def read_events(self, name: str, *, after: str | None = None,
                    limit: int = 1000) -> records.EventPage:
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
