"""The rules of a decision's lifecycle, written once for the backends that run them in Python.

::

    put_pending ──► pending ──apply_reward(now <= deadline)──► rewarded  (repeat: "duplicate")
                       │
                       └─claim_expired(now > deadline)──► claimed ──settle_expired──► expired

:func:`reward_verdict` and :func:`holds_claim` decide, inside a backend's atomic step, whether a
reward or a settlement applies; the errors they raise and the records built from stored rows are
here too, so every backend words them alike. :func:`keeps_assignment` is the one rule of a
sticky assignment. The Redis scripts (:mod:`tsbandit.stores._lua`)
state the same rules in Lua, because there they must run inside the script.
"""

from __future__ import annotations

import json

from ..errors import BanditNotFoundError, DecisionExpiredError, DecisionNotFoundError
from .records import (
    CLAIMED,
    EXPIRED,
    REWARDED,
    STATUS_NAMES,
    Assignment,
    ClaimedDecision,
    EncodedAssignment,
    PendingDecision,
)

__all__ = [
    "assignment_record",
    "bandit_not_found",
    "claim_record",
    "holds_claim",
    "keeps_assignment",
    "not_found",
    "pending_record",
    "reward_verdict",
]


def not_found(name: str, decision_id: str) -> DecisionNotFoundError:
    """The error for a decision id the bandit does not know (never issued, or purged)."""
    return DecisionNotFoundError(f"no decision {decision_id!r} in bandit {name!r}")


def bandit_not_found(name: str) -> BanditNotFoundError:
    """The error for an unknown bandit."""
    return BanditNotFoundError(f"no bandit named {name!r}")


def reward_verdict(name: str, decision_id: str, found: tuple[str, float] | None,
                   now: float) -> bool:
    """Whether a reward applies to a decision found as ``(status, deadline)``: True to apply
    it, False for a repeat ("duplicate", nothing changes). An unknown decision raises
    :class:`~tsbandit.errors.DecisionNotFoundError`; one settled by the sweep or past its
    deadline :class:`~tsbandit.errors.DecisionExpiredError`.

    >>> reward_verdict("b", "d1", ("p", 10.0), now=5.0), reward_verdict("b", "d1", ("r", 10.0), 5.0)
    (True, False)
    """
    if found is None:
        raise not_found(name, decision_id)
    status, deadline = found
    if status == REWARDED:
        return False
    if status == EXPIRED or now > deadline:
        raise DecisionExpiredError(f"decision {decision_id!r} expired at {deadline} (now {now})")
    return True


def pending_record(decision_id: str, payload: str | bytes, deadline: float,
                   status: str, outcome: float | None = None) -> PendingDecision:
    """A :class:`PendingDecision` from what a backend stores (payload JSON, status code, the
    outcome its reward stored, if any)."""
    return PendingDecision(decision_id, json.loads(payload), float(deadline),
                           STATUS_NAMES[status], None if outcome is None else float(outcome))


def claim_record(decision_id: str, payload: str | bytes, deadline: float,
                 token: str) -> ClaimedDecision:
    """A :class:`ClaimedDecision` from what a backend stores (payload JSON)."""
    return ClaimedDecision(decision_id, json.loads(payload), float(deadline), token)


def holds_claim(found: tuple[str, str | None] | None, claim: ClaimedDecision) -> bool:
    """Whether a decision found as ``(status, token)`` is still claimed by ``claim``'s token
    (not taken over after its lease lapsed, not rewarded meanwhile)."""
    return found is not None and found[0] == CLAIMED and found[1] == claim.token


def keeps_assignment(found: tuple[str, float] | None, a: EncodedAssignment) -> bool:
    """Whether :meth:`Store.assign` keeps the stored assignment of ``a.key``, found as
    ``(id JSON, expires_at)``: True when it is live (``expires_at > a.now``) and is not the one
    ``a.replace`` names (then it is returned, created False); False to store ``a``.

    >>> a = EncodedAssignment("u1", '{"id":"d2"}', '"d2"', 20.0, 10.0, None)
    >>> keeps_assignment(('"d1"', 15.0), a), keeps_assignment(('"d1"', 10.0), a)
    (True, False)
    >>> keeps_assignment(('"d1"', 15.0), a._replace(replace='"d1"'))
    False
    """
    if found is None or not found[1] > a.now:
        return False
    return a.replace is None or found[0] != a.replace


def assignment_record(key: str, payload: str | bytes, expires_at: float,
                      created: bool) -> Assignment:
    """An :class:`Assignment` from what a backend stores (payload JSON)."""
    return Assignment(key, json.loads(payload), float(expires_at), created)
