"""Sticky assignment: a returning user keeps the arm (or ranking) the bandit chose for them.

A bandit with ``stickiness`` (seconds) remembers, per user id, the ranking it chose at the
user's first decision -- in the store (:meth:`~tsbandit.stores.base.Store.assign`), so every
worker answers a returning user alike -- until the period ends or an arm of the ranking is
retired (or the request's eligible arms or ``k`` no longer fit it; such a request gets a fresh
draw and leaves the assignment as it is). Each visit is still its own decision with its own
id (rewards attach to visits), made with the assigned ranking and logged with the
propensities of the original draw and ``sticky_of`` (the id of the decision that drew it), so
off-policy evaluation weighs it by the probability the policy actually had of assigning it.

Two workers assigning the same new user at once: the store keeps the first, and the second
answers the first's ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stores.base import Store
from .spec import BanditSpec

if TYPE_CHECKING:
    from ..stores.records import Assignment

__all__ = ["claim_assignments", "held_assignments"]


def _ranking(spec: BanditSpec, payload: dict[str, Any], k: int,
             mask: np.ndarray | None) -> list[int] | None:
    """The arm indices of an assignment if it still fits (arms not retired since, eligible,
    ``k`` long), else None."""
    ranking = payload.get("ranking")
    if not isinstance(ranking, list) or len(ranking) != k:
        return None
    made_at = payload.get("config_version")
    out = []
    for arm in ranking:
        if not spec.learns(arm, made_at):
            return None
        i = spec.arms.index(arm)
        if mask is not None and not mask[i]:
            return None
        out.append(i)
    return out


def held_assignments(store: Store, spec: BanditSpec, user_ids: Sequence[str | None], k: int,
                     mask: np.ndarray | None, now: float
                     ) -> tuple[dict[int, Assignment], dict[int, str | None]]:
    """Which rows a live assignment answers (``held``), and the rows of users to assign
    (``fresh``: row -> the id of a stale assignment to replace, or None)."""
    held: dict[int, Assignment] = {}
    fresh: dict[int, str | None] = {}
    for row, user in enumerate(user_ids):
        if user is None:
            continue
        found = store.get_assignment(spec.name, user, now)
        if found is None:
            fresh[row] = None
        elif _ranking(spec, found.payload, k, mask) is not None:
            held[row] = found
        elif found.payload.get("ranking") is not None and _stale(spec, found.payload):
            fresh[row] = str(found.payload["id"])  # an arm was retired: assign anew
        # else: it does not fit this request (eligible arms, k): a fresh draw, kept unassigned
    return held, fresh


def _stale(spec: BanditSpec, payload: dict[str, Any]) -> bool:
    made_at = payload.get("config_version")
    return any(not spec.learns(a, made_at) for a in payload["ranking"])


def claim_assignments(store: Store, spec: BanditSpec, user_ids: Sequence[str | None],
                      held: dict[int, Assignment], fresh: dict[int, str | None],
                      chosen: np.ndarray, probs: np.ndarray, ids: Sequence[str],
                      config_version: int, now: float, k: int, mask: np.ndarray | None
                      ) -> list[str | None]:
    """Answer the held rows from their assignments and assign the fresh rows their new
    draws (a row whose user another worker assigned meanwhile takes that assignment);
    ``chosen`` and ``probs`` ``(n, k)`` are updated in place. Returns each row's
    ``sticky_of``: the id of the decision whose draw it shows (its own id for a new
    assignment, None for a row not assigned)."""
    assert spec.stickiness is not None
    sticky_of: list[str | None] = [None] * chosen.shape[0]
    for row, user in enumerate(user_ids):
        if row in held:
            got = held[row]
        elif row in fresh and user is not None:
            pp = [float(p) for p in probs[row]]
            payload = {"id": ids[row], "ranking": [spec.arms[i] for i in chosen[row]],
                       "position_propensities": pp, "config_version": config_version}
            got = store.assign(spec.name, user, payload, now + spec.stickiness, now,
                               replace=fresh[row])
            if got.created:
                sticky_of[row] = ids[row]
                continue
        else:
            continue
        idx = _ranking(spec, got.payload, k, mask)
        if idx is None:  # another worker's assignment does not fit this request
            continue
        chosen[row] = idx
        probs[row] = got.payload["position_propensities"]
        sticky_of[row] = str(got.payload["id"])
    return sticky_of
