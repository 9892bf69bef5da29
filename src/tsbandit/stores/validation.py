"""Validation and encoding of a store's inputs, done once, before any backend sees them.

Every function raises a class of :mod:`tsbandit.errors` (``ConfigurationError`` for bad
arguments, ``SerializationError`` for data that cannot be stored, ``InvalidRewardError`` for a
sum that would overflow) with a message that names the offending value, and returns the value in
the form the backends store: JSON text, finite floats, contiguous little-endian float64 arrays.

>>> check_time("now", "12.5")
12.5
>>> dumps({"arm": 1}, "payload")
'{"arm":1}'
>>> check_name("has space")
Traceback (most recent call last):
...
tsbandit.errors.ConfigurationError: bandit name == 'has space', must be 1-128 characters ...
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    ConfigurationError,
    DecisionExistsError,
    InvalidRewardError,
    SerializationError,
    VersionConflictError,
)
from .records import EncodedAssignment, EncodedDecision, NewDecision

__all__ = [
    "SHARD_SEP",
    "check_arrays",
    "check_assignment_key",
    "check_config_version",
    "check_decision_id",
    "check_deltas",
    "check_events_maxlen",
    "check_gamma",
    "check_half_life",
    "check_if_at",
    "check_int_cursor",
    "check_limit",
    "check_name",
    "check_outcome",
    "check_retention",
    "check_shapes",
    "check_start_config_version",
    "check_time",
    "decay_factor",
    "dumps",
    "dumps_event",
    "encode_assignment",
    "encode_new_decisions",
    "finite_sums",
    "overflow_error",
    "readonly",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]{0,127}(#[0-9]{1,4})?$")
#: What a public bandit name may not contain: it separates a sharded bandit's name from the
#: number of one of its shards (``ads#2``; see :mod:`tsbandit.stores.sharded`).
SHARD_SEP = "#"
_STAT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# -- names, ids, numbers ----------------------------------------------------------------------
def check_name(name: str) -> str:
    """Validate a bandit name (letters, digits and ``_.:@+=-``, at most 128 characters),
    optionally followed by a shard number (``#1``-``#9999``: the name of one shard of a
    sharded bandit, which :class:`~tsbandit.stores.sharded.ShardedStore` refuses as a public
    name)."""
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


def check_assignment_key(key: str) -> str:
    """Validate the key of a sticky assignment (a user id): 1-256 printable characters, like
    a decision id."""
    if not isinstance(key, str) or not 0 < len(key) <= 256 or not key.isprintable():
        raise ConfigurationError(f"assignment key == {key!r:.80}, must be 1-256 printable "
                                 "characters")
    return key


def check_time(label: str, value: float) -> float:
    """A finite float (epoch seconds, deadlines, leases)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{label} == {value!r}, must be a number") from None
    if not math.isfinite(v):
        raise ConfigurationError(f"{label} == {value!r}, must be finite")
    return v


def check_outcome(outcome: float | None) -> float | None:
    """The outcome a reward stores with its decision: None, or a finite real number as a float
    (a bool counts as 0 or 1, -0.0 as 0.0); anything else raises ``SerializationError`` (like
    a non-finite delta, it is data the record cannot hold).

    >>> check_outcome(True), check_outcome(3), check_outcome(None)
    (1.0, 3.0, None)
    >>> check_outcome(float("nan"))
    Traceback (most recent call last):
    ...
    tsbandit.errors.SerializationError: outcome == nan, must be None or a finite number
    """
    if outcome is None:
        return None
    if type(outcome) is float:  # the common case, without the ABC check below
        if math.isfinite(outcome):
            return outcome + 0.0
    elif isinstance(outcome, (bool, np.bool_, numbers.Real)):
        try:
            v = float(outcome)
        except OverflowError:  # an int beyond float64
            v = math.inf
        if math.isfinite(v):
            return v + 0.0  # -0.0 is 0.0 (SQLite keeps no sign of zero: every store alike)
    raise SerializationError(f"outcome == {outcome!r:.80}, must be None or a finite number")


def check_limit(limit: int) -> int:
    """Validate a page size (an int >= 1)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit == {limit!r}, must be an int >= 1")
    return limit


def check_start_config_version(value: Any) -> int:
    """``create_bandit``'s starting ``config_version``: an int in ``[0, 2**53)`` (exact in a
    Lua number and in JSON).

    >>> check_start_config_version(7)
    7
    >>> check_start_config_version(-1)
    Traceback (most recent call last):
    ...
    tsbandit.errors.ConfigurationError: config_version == -1, must be an int in [0, 2**53)
    """
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53):
        raise ConfigurationError(f"config_version == {value!r}, must be an int in [0, 2**53)")
    return value


def check_if_at(if_at: Any) -> tuple[int, int]:
    """``put_pending_many``'s ``if_at``: ``(version, config_version)``, two ints >= 0.

    >>> check_if_at((3, 1))
    (3, 1)
    >>> check_if_at((3,))
    Traceback (most recent call last):
    ...
    tsbandit.errors.ConfigurationError: if_at == (3,), must be (version, config_version)
    """
    try:
        version, cver = if_at
    except (TypeError, ValueError):
        version = cver = None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for v in (version, cver)):
        raise ConfigurationError(f"if_at == {if_at!r}, must be (version, config_version)")
    return int(version), int(cver)


def check_int_cursor(after: str | None) -> int:
    """A cursor that is a row number (SQLite, memory): 0 for None; ConfigurationError else."""
    if after is None:
        return 0
    if not isinstance(after, str) or not after.isdigit():
        raise ConfigurationError(f"cursor {after!r} is not a cursor of this store")
    return int(after)


def _finite_at_least(label: str, value: float, low: float, strict: bool = False) -> float:
    """A finite float ``>= low`` (``> low`` when ``strict``), its message naming ``label``."""
    v = check_time(label, value)
    if v < low or (strict and v == low):
        raise ConfigurationError(f"{label} == {value!r}, must be {'>' if strict else '>='} {low:g}")
    return v


def check_retention(retention: float) -> float:
    """Seconds a consumed decision is remembered after its deadline: finite and >= 0."""
    return _finite_at_least("retention", retention, 0.0)


def check_events_maxlen(events_maxlen: int | None) -> int | None:
    """Most events kept per bandit: None (keep all) or an int >= 1."""
    if events_maxlen is None:
        return None
    if (isinstance(events_maxlen, bool) or not isinstance(events_maxlen, (int, np.integer))
            or events_maxlen < 1):
        raise ConfigurationError(f"events_maxlen == {events_maxlen!r}, must be an int >= 1")
    return int(events_maxlen)


def check_gamma(gamma: float) -> float:
    """A finite, non-negative scale factor."""
    return _finite_at_least("gamma", gamma, 0.0)


def check_half_life(half_life: float) -> float:
    """A finite, positive half-life in seconds."""
    return _finite_at_least("half_life", half_life, 0.0, strict=True)


def decay_factor(decayed_at: float | None, half_life: float, now: float) -> float:
    """``0.5 ** ((now - decayed_at) / half_life)``; 1 when not started or not later.

    >>> decay_factor(0.0, 10.0, 20.0)
    0.25
    """
    if decayed_at is None or now <= decayed_at:
        return 1.0
    return float(0.5 ** ((now - decayed_at) / half_life))


def check_config_version(stored: int, expected: int | None) -> None:
    """:class:`~tsbandit.errors.VersionConflictError` unless ``expected`` is None or equal."""
    if expected is not None and expected != stored:
        raise VersionConflictError(
            f"config_version {expected} is stale, the bandit is at {stored}"
        )


# -- JSON ---------------------------------------------------------------------------------------
def dumps(obj: Mapping[str, Any], what: str) -> str:
    """Compact JSON; NaN, infinities and non-JSON types raise ``SerializationError``."""
    if not isinstance(obj, Mapping):
        raise SerializationError(f"{what} must be a JSON object (a dict), got {type(obj).__name__}")
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} is not JSON-safe: {exc}") from exc


def dumps_event(event: Mapping[str, Any] | None) -> str | None:
    """An optional event as JSON text (``None`` stays ``None``)."""
    return None if event is None else dumps(event, "event")


def encode_new_decisions(items: Sequence[NewDecision]) -> list[EncodedDecision]:
    """Validate and encode a batch for ``put_pending_many``. Ids repeated within the batch
    raise :class:`~tsbandit.errors.DecisionExistsError`; anything invalid raises before a
    store writes.

    >>> encode_new_decisions([NewDecision("d1", {"arm": 0}, 9)])
    [EncodedDecision(decision_id='d1', payload='{"arm":0}', deadline=9.0, event=None)]
    """
    out: list[EncodedDecision] = []
    seen: set[str] = set()
    for item in items:
        decision_id, payload, deadline, event = NewDecision(*item)
        check_decision_id(decision_id)
        if decision_id in seen:
            raise DecisionExistsError(f"decision {decision_id!r} appears twice in the batch")
        seen.add(decision_id)
        out.append(EncodedDecision(
            decision_id, dumps(payload, "payload"), check_time("deadline", deadline),
            dumps_event(event),
        ))
    return out


def encode_assignment(key: str, payload: Mapping[str, Any], expires_at: float, now: float,
                      replace: str | None) -> EncodedAssignment:
    """Validate and encode the arguments of :meth:`Store.assign`: the key, a JSON object
    payload with a string ``"id"`` (``SerializationError`` otherwise, like any payload that
    cannot be stored), ``now`` and ``expires_at`` finite with ``expires_at > now``, and
    ``replace`` None or a string (``ConfigurationError`` otherwise). The id and ``replace``
    are kept as JSON text, which every backend compares byte for byte.

    >>> encode_assignment("u1", {"id": "d1", "arm": 0}, 10, 5, None)
    EncodedAssignment(key='u1', payload='{"id":"d1","arm":0}', item='"d1"', expires_at=10.0, \
now=5.0, replace=None)
    >>> encode_assignment("u1", {"arm": 0}, 10, 5, None)
    Traceback (most recent call last):
    ...
    tsbandit.errors.SerializationError: assignment payload needs a string "id", got None
    """
    check_assignment_key(key)
    text = dumps(payload, "payload")
    item = payload.get("id")
    if not isinstance(item, str):
        raise SerializationError(f'assignment payload needs a string "id", got {item!r:.80}')
    t_now = check_time("now", now)
    t_exp = check_time("expires_at", expires_at)
    if not t_exp > t_now:
        raise ConfigurationError(f"expires_at == {expires_at!r}, must be after now ({t_now!r})")
    if replace is not None and not isinstance(replace, str):
        raise ConfigurationError(f"replace == {replace!r:.80}, must be None or an id (a str)")
    return EncodedAssignment(key, text, json.dumps(item), t_exp, t_now,
                             None if replace is None else json.dumps(replace))


# -- arrays -------------------------------------------------------------------------------------
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


def check_shapes(stored: Mapping[str, np.ndarray], deltas: Mapping[str, np.ndarray]) -> None:
    """``SerializationError`` unless every delta names a stored statistic of its shape."""
    for key, d in deltas.items():
        if key not in stored:
            raise SerializationError(f"unknown statistic {key!r}; known: {sorted(stored)}")
        if d.shape != stored[key].shape:
            raise SerializationError(
                f"delta {key!r} has shape {d.shape}, stored {stored[key].shape}"
            )


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


def readonly(arr: np.ndarray) -> np.ndarray:
    """Mark an array read-only (snapshots never alias mutable store state)."""
    arr.setflags(write=False)
    return arr
