"""Load the decision service's event log (JSON Lines) as :class:`~.data.LoggedData`.

Format: one JSON object per line, as ``Engine.export_events`` writes it and a running service
streams it (``GET /v1/bandits/{name}/events``), read through the event schema
(:mod:`tsbandit.events`). Blank lines are ignored. Fields read (others, such as ``user_id`` or
``model_version``, are ignored):

``type``
    ``"decision"``, ``"reward"`` or ``"expired"`` (an expired decision settled with the bandit's
    default reward; ``reward`` is ``null`` when there is none). Other types are skipped.
``decision_id``
    Joins a decision with its reward (string, unique per decision).
``timestamp``
    Seconds since the Unix epoch (number) or an ISO 8601 string. The decision's timestamp
    orders the rounds.
``bandit``
    Bandit name; a log with several bandits needs ``bandit=`` to pick one.
``context``
    List of numbers, or ``null`` (context-free bandit); decision events.
``arm``
    Name of the chosen arm (for a ranking: the first arm, the one rewards are credited to).
``ranking``
    Optional list of arm names (a top-k decision); its arms join the action set.
``propensity``
    Probability, in (0, 1], that the logging policy chose ``arm`` (first) in this decision.
``reward``
    Number; reward and expired events.

A round is a decision joined with its reward (by ``decision_id``). A reward event may repeat the
decision's ``arm``; a different arm is an error. Two rewards for one decision are an error (the
engine applies rewards exactly once). A decision without a reward is dropped by default
(``missing_reward="drop"``) or given a fixed reward (``missing_reward=0.0``); rewards whose
decision is absent from the file (exported before it) are ignored and counted.

A bandit with several metrics logs one reward per metric (``"metric": name``):
:func:`~.metric_log.load_metric_log` reads such a log (this loader reads single-metric logs).

Example lines::

    {"type": "decision", "decision_id": "offers:1f3a", "timestamp": 1732761600.5,
     "bandit": "offers", "context": null, "arm": "travel", "propensity": 0.41}
    {"type": "reward", "decision_id": "offers:1f3a", "timestamp": 1732761688.0,
     "bandit": "offers", "arm": "travel", "reward": 1}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np

from ..errors import SerializationError
from ..events import DecisionEvent, RewardEvent, numbered_events
from .data import InvalidLogError, LoggedData

__all__ = ["JsonlLoadReport", "load_event_log", "parse_timestamp"]


@dataclass(frozen=True)
class JsonlLoadReport:
    """What :func:`load_event_log` joined and what it left out."""

    n_decisions: int
    n_rounds: int
    missing_rewards: int
    orphan_rewards: int
    bandit: str | None


def parse_timestamp(value: Any) -> float:
    """Seconds since the epoch from a number or an ISO 8601 string (naive means UTC).

    >>> parse_timestamp("2019-11-24 00:00:34.5+00:00")
    1574553634.5
    >>> parse_timestamp(12.0)
    12.0
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        t = float(value)
        if math.isfinite(t):
            return t
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return dt.timestamp()
    raise InvalidLogError(f"timestamp {value!r} is neither a number nor an ISO 8601 string")


def _events(source: str | Path | IO[str] | Iterable[str]
            ) -> Iterator[tuple[int, DecisionEvent | RewardEvent]]:
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8") as fp:
            yield from _events(list(fp))
        return
    try:
        yield from numbered_events(source)
    except SerializationError as exc:
        raise InvalidLogError(str(exc)) from None


def _required(value: Any, kind: str, name: str, lineno: int) -> Any:
    if value is None:
        raise InvalidLogError(f"line {lineno}: {kind} event without {name!r}")
    return value


@overload
def load_event_log(source: str | Path | IO[str] | Iterable[str], *, bandit: str | None = ...,
                   arms: Sequence[str] | None = ..., missing_reward: str | float = ...,
                   return_report: Literal[False] = ...) -> LoggedData: ...


@overload
def load_event_log(source: str | Path | IO[str] | Iterable[str], *, bandit: str | None = ...,
                   arms: Sequence[str] | None = ..., missing_reward: str | float = ...,
                   return_report: Literal[True]) -> tuple[LoggedData, JsonlLoadReport]: ...


def load_event_log(
    source: str | Path | IO[str] | Iterable[str],
    *,
    bandit: str | None = None,
    arms: Sequence[str] | None = None,
    missing_reward: str | float = "drop",
    return_report: bool = False,
) -> LoggedData | tuple[LoggedData, JsonlLoadReport]:
    """Join decisions and rewards of an event log into logged feedback.

    Parameters
    ----------
    source
        Path, open text file or iterable of lines.
    bandit
        Keep this bandit's events (required when the log holds several).
    arms
        The action set, in index order (default: the sorted arms seen in the decisions).
    missing_reward
        ``"drop"`` decisions without a reward, or the reward to give them.
    return_report
        Also return a :class:`JsonlLoadReport`.
    """
    if not (missing_reward == "drop" or isinstance(missing_reward, (int, float))):
        raise InvalidLogError(f"missing_reward == {missing_reward!r}, must be 'drop' or a number")
    decisions: dict[str, tuple[int, DecisionEvent]] = {}
    rewards: dict[str, float] = {}
    bandits: set[str] = set()
    orphans = 0
    for lineno, event in _events(source):
        name = event.bandit
        if name is not None:
            bandits.add(str(name))
        if bandit is not None and name is not None and str(name) != bandit:
            continue
        did = str(_required(event.decision_id, type(event).type, "decision_id", lineno))
        if isinstance(event, DecisionEvent):
            if did in decisions:
                raise InvalidLogError(f"line {lineno}: decision {did!r} logged twice")
            decisions[did] = (lineno, event)
            continue
        value = event.reward
        if value is None:
            continue  # expired without a default reward
        if did not in decisions:
            orphans += 1
            continue
        if did in rewards:
            raise InvalidLogError(f"line {lineno}: decision {did!r} has a second reward")
        chose = decisions[did][1].arm
        if event.arm is not None and event.arm != chose:
            raise InvalidLogError(
                f"line {lineno}: reward for arm {event.arm!r} but decision {did!r} chose "
                f"{chose!r}"
            )
        try:
            rewards[did] = float(value)
        except (TypeError, ValueError):
            raise InvalidLogError(f"line {lineno}: reward {value!r} is not a number") from None
    if bandit is None and len(bandits) > 1:
        raise InvalidLogError(f"the log holds bandits {sorted(bandits)}; pick one with bandit=")
    data = _build(decisions, rewards, arms, missing_reward)
    if not return_report:
        return data
    missing = sum(did not in rewards for did in decisions)
    report = JsonlLoadReport(len(decisions), data.n_rounds, missing, orphans,
                             bandit or (next(iter(bandits)) if bandits else None))
    return data, report


def _build(decisions: dict[str, tuple[int, DecisionEvent]], rewards: dict[str, float],
           arms: Sequence[str] | None, missing_reward: str | float) -> LoggedData:
    rows = []
    for did, (lineno, event) in decisions.items():
        if did in rewards:
            r = rewards[did]
        elif missing_reward == "drop":
            continue
        else:
            r = float(missing_reward)
        arm = _required(event.arm, "decision", "arm", lineno)
        p = _required(event.propensity, "decision", "propensity", lineno)
        if not isinstance(p, (int, float)) or isinstance(p, bool):
            raise InvalidLogError(f"line {lineno}: propensity {p!r} is not a number")
        ts = parse_timestamp(_required(event.timestamp, "decision", "timestamp", lineno))
        rows.append((ts, lineno, str(arm), float(p), r, event.context,
                     [str(a) for a in event.ranking or ()]))
    if not rows:
        raise InvalidLogError("no decision in the log has a reward (nothing to evaluate)")
    rows.sort(key=lambda row: (row[0], row[1]))
    if arms is None:
        seen = {row[2] for row in rows} | {a for row in rows for a in row[6]}
        names = sorted(seen)
    else:
        names = [str(a) for a in arms]
    index = {a: i for i, a in enumerate(names)}
    unknown = sorted({row[2] for row in rows} - set(index))
    if unknown:
        raise InvalidLogError(f"logged arms {unknown[:5]} are not in arms={names[:10]}")
    ctx = [row[5] for row in rows]
    has_ctx = [c is not None for c in ctx]
    if any(has_ctx) and not all(has_ctx):
        raise InvalidLogError("some decisions have a context and others do not")
    contexts = None
    if all(has_ctx):
        try:
            contexts = np.array(ctx, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidLogError("contexts must be lists of numbers of one length") from None
    return LoggedData(
        actions=np.array([index[row[2]] for row in rows], dtype=np.intp),
        rewards=np.array([row[4] for row in rows]),
        propensities=np.array([row[3] for row in rows]),
        n_actions=len(names),
        contexts=contexts,
        timestamps=np.array([row[0] for row in rows]),
        action_names=tuple(names),
    )
