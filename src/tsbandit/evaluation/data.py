"""Logged bandit feedback: the one structure every off-policy estimator reads.

A log is ``n`` rounds. In round ``i`` the logging (behaviour) policy saw context ``x_i``, showed
action ``a_i`` (at slot ``k_i`` when it fills a slate of ``n_positions`` slots), with probability
``p_i = pi_b(a_i | x_i)`` (for slates: the probability of that action *at that slot*, as the Open
Bandit Dataset's ``propensity_score``), and observed reward ``r_i``.

Examples
--------
>>> import numpy as np
>>> log = LoggedData(actions=np.array([0, 1, 1]), rewards=np.array([1.0, 0.0, 1.0]),
...                  propensities=np.full(3, 0.5), n_actions=2)
>>> log.n_rounds, log.action_names
(3, ('0', '1'))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import InvalidContextError, InvalidLogError, InvalidRewardError

__all__ = ["InvalidLogError", "LoggedData"]


def _vector(name: str, value: Any, n: int | None, dtype: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise InvalidLogError(f"{name} must be an array of numbers") from None
    if arr.ndim != 1:
        raise InvalidLogError(f"{name} has shape {arr.shape}, expected (n_rounds,)")
    if n is not None and arr.shape[0] != n:
        raise InvalidLogError(f"{name} has {arr.shape[0]} entries, expected {n} (one per round)")
    return arr


def _index_vector(name: str, value: Any, n: int, upper: int, what: str) -> np.ndarray:
    raw = _vector(name, value, n, np.float64)
    if not np.isfinite(raw).all():
        raise InvalidLogError(f"{name} contains NaN or infinite values")
    if (raw != np.round(raw)).any():
        raise InvalidLogError(f"{name} must hold integer indices")
    idx = raw.astype(np.intp)
    if n and (idx.min() < 0 or idx.max() >= upper):
        bad = idx[(idx < 0) | (idx >= upper)][0]
        raise InvalidLogError(f"{name} holds {bad}, outside 0..{upper - 1} ({upper} {what})")
    return idx


@dataclass(frozen=True)
class LoggedData:
    """Logged bandit feedback, validated on construction.

    Parameters
    ----------
    actions
        ``(n,)`` integer index of the logged action, in ``0..n_actions-1``.
    rewards
        ``(n,)`` observed rewards (finite).
    propensities
        ``(n,)`` logging probability of the logged action (at the logged position), in (0, 1].
    n_actions
        Number of actions ``K``.
    contexts
        ``(n, d)`` context features, or ``None``.
    positions
        ``(n,)`` 0-based slot of the logged action in a slate, or ``None`` (one action per round).
    n_positions
        Number of slots ``L`` (1 when ``positions`` is ``None``).
    timestamps
        ``(n,)`` seconds since the Unix epoch (UTC), or ``None``. Rounds are assumed to be in
        time order (target policies that learn replay them in that order).
    action_names
        Names of the ``K`` actions (default ``"0".."K-1"``).
    action_context
        ``(K, d_a)`` action features, or ``None``.

    Raises
    ------
    InvalidLogError
        Unequal lengths, out-of-range actions or positions, propensities outside (0, 1].
    InvalidRewardError, InvalidContextError
        NaN or infinite rewards or contexts.
    """

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    n_actions: int
    contexts: np.ndarray | None = None
    positions: np.ndarray | None = None
    n_positions: int = 1
    timestamps: np.ndarray | None = None
    action_names: tuple[str, ...] = field(default=())
    action_context: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        k = self.n_actions
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise InvalidLogError(f"n_actions == {k!r}, must be an integer >= 1")
        set_(self, "n_actions", int(k))
        rewards = _vector("rewards", self.rewards, None, np.float64)
        n = rewards.shape[0]
        if not np.isfinite(rewards).all():
            bad = np.flatnonzero(~np.isfinite(rewards))[0]
            raise InvalidRewardError(f"reward of round {bad} is {rewards[bad]!r}; must be finite")
        set_(self, "rewards", rewards)
        set_(self, "actions", _index_vector("actions", self.actions, n, k, "actions"))
        p = _vector("propensities", self.propensities, n, np.float64)
        bad_p = ~((p > 0.0) & (p <= 1.0))  # also catches NaN
        if bad_p.any():
            i = np.flatnonzero(bad_p)[0]
            raise InvalidLogError(
                f"propensity of round {i} is {p[i]!r}; propensities must be in (0, 1]"
            )
        set_(self, "propensities", p)
        self._check_positions(n)
        self._check_contexts(n)
        if self.timestamps is not None:
            ts = _vector("timestamps", self.timestamps, n, np.float64)
            if not np.isfinite(ts).all():
                raise InvalidLogError("timestamps contain NaN or infinite values")
            set_(self, "timestamps", ts)
        names = tuple(str(s) for s in self.action_names) or tuple(str(i) for i in range(k))
        if len(names) != k:
            raise InvalidLogError(f"{len(names)} action names for n_actions == {k}")
        if len(set(names)) != k:
            raise InvalidLogError("action names must be distinct")
        set_(self, "action_names", names)
        if self.action_context is not None:
            ac = np.asarray(self.action_context, dtype=np.float64)
            if ac.ndim != 2 or ac.shape[0] != k:
                raise InvalidLogError(f"action_context has shape {ac.shape}, expected ({k}, d_a)")
            set_(self, "action_context", ac)

    def _check_positions(self, n: int) -> None:
        if self.positions is None:
            if self.n_positions != 1:
                raise InvalidLogError("n_positions > 1 needs positions")
            return
        n_pos = self.n_positions
        if not isinstance(n_pos, (int, np.integer)) or n_pos < 1:
            raise InvalidLogError(f"n_positions == {n_pos!r}, must be an integer >= 1")
        object.__setattr__(self, "n_positions", int(n_pos))
        pos = _index_vector("positions", self.positions, n, int(n_pos), "positions")
        object.__setattr__(self, "positions", pos)

    def _check_contexts(self, n: int) -> None:
        if self.contexts is None:
            return
        try:
            x = np.asarray(self.contexts, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidContextError("contexts must be an (n, d) array of numbers") from None
        if x.ndim != 2 or x.shape[0] != n:
            raise InvalidContextError(f"contexts have shape {x.shape}, expected ({n}, d)")
        if not np.isfinite(x).all():
            i = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise InvalidContextError(f"context of round {i} contains NaN or infinite values")
        object.__setattr__(self, "contexts", x)

    # ------------------------------------------------------------------------------------
    @property
    def n_rounds(self) -> int:
        """Number of logged rounds ``n``."""
        return int(self.rewards.shape[0])

    @property
    def position_index(self) -> np.ndarray:
        """``(n,)`` positions, zeros when the log has none."""
        if self.positions is None:
            return np.zeros(self.n_rounds, dtype=np.intp)
        return self.positions

    def subset(self, rows: np.ndarray | slice) -> LoggedData:
        """The rounds ``rows`` (a boolean mask, index array or slice) as a new log."""

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return replace(
            self,
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            propensities=self.propensities[rows],
            contexts=take(self.contexts),
            positions=take(self.positions),
            timestamps=take(self.timestamps),
        )

    def action_index(self, names: Sequence[str]) -> np.ndarray:
        """Indices of action ``names`` in this log (``UnknownArmError`` for a missing one)."""
        from ..errors import UnknownArmError

        lookup = {name: i for i, name in enumerate(self.action_names)}
        try:
            return np.array([lookup[str(name)] for name in names], dtype=np.intp)
        except KeyError as exc:
            raise UnknownArmError(
                f"unknown action {exc.args[0]!r}; the log has {list(self.action_names)[:10]}"
            ) from None

    def describe(self) -> dict[str, Any]:
        """A JSON-safe summary: rounds, actions, positions, reward mean, propensity range."""
        return {
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "n_positions": self.n_positions,
            "n_features": None if self.contexts is None else int(self.contexts.shape[1]),
            "reward_mean": float(self.rewards.mean()) if self.n_rounds else float("nan"),
            "reward_sum": float(self.rewards.sum()),
            "propensity_min": float(self.propensities.min()) if self.n_rounds else float("nan"),
            "propensity_max": float(self.propensities.max()) if self.n_rounds else float("nan"),
        }
