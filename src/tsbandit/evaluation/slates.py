"""Off-policy evaluation of rankings (slates): per-position IPS and the pseudo-inverse estimator.

A slate shows ``L`` items in slots ``0..L-1`` and each slot has its own reward (a click). The
estimand is a target ranking policy's expected **clicks per slate**, ``sum_j E[r_j]``. A
target is given by its slot marginals ``q[j, a]`` -- the probability that it shows item ``a``
in slot ``j`` -- ``(L, m)`` for every round or ``(n, L, m)`` per round (each ``q[..., j, :]``
sums to 1). Both estimators assume the reward of slot ``j`` depends only on the slot and the
item in it (and the context) -- the position-based model's assumption -- not on the other
items of the slate.

* **Per-position IPS** (:func:`per_position_ips`; "independent IPS" in the Open Bandit
  Pipeline): each slot's click reweighted by that slot's propensity ratio,
  ``sum_j r_ij q[j, a_ij] / p_ij``. Needs per-slot rewards and the logging policy's per-slot
  marginal propensities ``p_ij``; unbiased under the assumption above.
* **Pseudo-inverse** (:func:`pseudo_inverse`; Swaminathan et al., 2017, *Off-policy
  evaluation for slate recommendation*): uses only the slate's total reward ``R_i = sum_j
  r_ij`` and weights it by ``q^T Gamma^+ 1_{s_i}``, where ``1_s`` is the slate's indicator
  vector over (slot, item) pairs and ``Gamma = E_mu[1_s 1_s^T]`` the logging policy's
  pairwise marginals; unbiased for additive slate rewards. ``Gamma`` is exact for a logging
  policy that shows ``L`` distinct items uniformly at random (``logging="uniform"``); for
  ``logging="independent"`` the slots are treated as drawn independently from the logged
  marginals (the PI's closed form ``sum_j q/p - L + 1``; exact for product logging policies,
  an approximation for rankings without repeats).

Logs whose rows are single (slot, item, click) impressions, without the rest of their slate --
the Open Bandit Dataset sample is one -- are handled by :func:`per_position_ips_rows` (per-slot
strata) and :func:`pseudo_inverse_rows` (the PI's expectation given each row's slot and item,
the other slots averaged out under the logging policy: exact for uniform logging). Both
return an :class:`~.intervals.Estimate` with a normal interval from the per-slate (per-row)
influence terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._scipy import ndtri
from ..errors import ConfigurationError, InvalidLogError
from .data import LoggedData
from .intervals import (
    Estimate,
    check_level,
    clip_to_range,
    effective_sample_size,
    normal_interval,
)

__all__ = [
    "SlateLog",
    "per_position_ips",
    "per_position_ips_rows",
    "pseudo_inverse",
    "pseudo_inverse_rows",
    "slate_marginals",
    "uniform_gram",
]

LOGGING = ("uniform", "independent")


@dataclass(frozen=True)
class SlateLog:
    """Logged slates: row ``i`` showed ``slates[i, j]`` in slot ``j`` and got ``clicks[i, j]``.

    Attributes
    ----------
    slates
        ``(n, L)`` item indices in ``[0, n_items)``.
    clicks
        ``(n, L)`` per-slot rewards.
    propensities
        ``(n, L)`` logging policy's probability of the shown item in that slot (> 0).
    n_items
        Number of items ``m``.
    logging
        ``"uniform"`` (``L`` distinct items uniformly at random) or ``"independent"``.
    """

    slates: np.ndarray
    clicks: np.ndarray
    propensities: np.ndarray
    n_items: int
    logging: str = "independent"

    def __post_init__(self) -> None:
        s = np.asarray(self.slates)
        if s.ndim != 2 or s.dtype.kind not in "iu":
            raise InvalidLogError(f"slates must be an (n, L) integer array, got {s.shape}")
        c = np.asarray(self.clicks, dtype=float)
        p = np.asarray(self.propensities, dtype=float)
        if c.shape != s.shape or p.shape != s.shape:
            raise InvalidLogError(f"clicks {c.shape} and propensities {p.shape} must have the "
                                  f"slates' shape {s.shape}")
        if s.size and ((s < 0).any() or (s >= self.n_items).any()):
            raise InvalidLogError(f"slates name items outside 0..{self.n_items - 1}")
        if not np.isfinite(c).all() or not ((p > 0) & (p <= 1)).all():
            raise InvalidLogError("clicks must be finite and propensities in (0, 1]")
        if self.logging not in LOGGING:
            raise ConfigurationError(f"logging == {self.logging!r}, must be one of {LOGGING}")
        object.__setattr__(self, "slates", s.astype(np.intp))
        object.__setattr__(self, "clicks", c)
        object.__setattr__(self, "propensities", p)

    @property
    def n_slates(self) -> int:
        """Number of logged slates ``n``."""
        return int(self.slates.shape[0])

    @property
    def n_slots(self) -> int:
        """Slots per slate ``L``."""
        return int(self.slates.shape[1])


def _check_marginals(q: np.ndarray, n: int, n_slots: int, n_items: int) -> np.ndarray:
    """Target slot marginals as ``(n, L, m)`` (a broadcast view for ``(L, m)``)."""
    q = np.asarray(q, dtype=float)
    if q.shape == (n_slots, n_items):
        q = np.broadcast_to(q, (n, n_slots, n_items))
    elif q.shape != (n, n_slots, n_items):
        raise ConfigurationError(f"target slot marginals have shape {q.shape}; expected "
                                 f"({n_slots}, {n_items}) or ({n}, {n_slots}, {n_items})")
    if not np.isfinite(q).all() or (q < 0).any():
        raise ConfigurationError("target slot marginals must be finite and >= 0")
    sums = q.sum(axis=-1)
    if sums.size and np.abs(sums - 1.0).max() > 1e-6:
        raise ConfigurationError("target slot marginals must sum to 1 over items in each slot")
    return q


def _range(rewards: np.ndarray, n_slots: int) -> tuple[float, float] | None:
    """Clicks per slate of 0/1 rewards lie in ``[0, L]``: the interval is cut to it."""
    r = np.asarray(rewards)
    return (0.0, float(n_slots)) if r.size and ((r == 0) | (r == 1)).all() else None


def _estimate(name: str, terms: np.ndarray, weights: np.ndarray, n_events: int,
              level: float, bounds: tuple[float, float] | None) -> Estimate:
    check_level(level)
    v = float(terms.mean())
    low, high, se = normal_interval(v, terms, level)
    clipped = False
    if bounds is not None:
        low, high, clipped = clip_to_range(v, low, high, bounds)
    return Estimate(name, v, low, high, se, effective_sample_size(np.abs(weights.ravel())),
                    int(terms.shape[0]), "normal", float(level), float(np.max(weights)),
                    n_events, clipped)


def slate_marginals(slates: np.ndarray, n_items: int) -> np.ndarray:
    """Slot marginals ``(L, m)`` of a sample of slates ``(draws, L)`` (a Monte-Carlo target).

    >>> slate_marginals(np.array([[0, 1], [1, 0]]), 3).tolist()
    [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]
    """
    s = np.asarray(slates, dtype=np.intp)
    out = np.zeros((s.shape[1], n_items))
    for j in range(s.shape[1]):
        out[j] = np.bincount(s[:, j], minlength=n_items) / s.shape[0]
    return out


def per_position_ips(log: SlateLog, q: np.ndarray, level: float = 0.95) -> Estimate:
    """Per-position IPS of the target's clicks per slate: ``mean_i sum_j r_ij q / p``.

    >>> log = SlateLog(np.array([[0, 1], [1, 0]]), np.array([[1.0, 0.0], [0.0, 1.0]]),
    ...                np.full((2, 2), 0.5), 2)
    >>> per_position_ips(log, np.array([[1.0, 0.0], [0.0, 1.0]])).value
    1.0
    """
    q = _check_marginals(q, log.n_slates, log.n_slots, log.n_items)
    rows, slots = np.indices(log.slates.shape)
    w = q[rows, slots, log.slates] / log.propensities
    return _estimate("per_position_ips", (w * log.clicks).sum(axis=1), w,
                     int(np.count_nonzero(w * log.clicks)), level, _range(log.clicks, log.n_slots))


def uniform_gram(n_items: int, n_slots: int) -> np.ndarray:
    """``Gamma = E[1_s 1_s^T]`` ``(L m, L m)`` of ``L`` distinct items drawn uniformly at
    random (index ``j * m + a`` for item ``a`` in slot ``j``).

    >>> g = uniform_gram(3, 2)
    >>> g.shape, float(g[0, 0]), float(g[0, 4])
    ((6, 6), 0.3333333333333333, 0.16666666666666666)
    """
    m, L = int(n_items), int(n_slots)
    if L > m:
        raise ConfigurationError(f"{L} slots need at least {L} items, got {m}")
    same_slot = np.kron(np.eye(L), np.eye(m)) / m
    other = np.kron(1.0 - np.eye(L), 1.0 - np.eye(m)) / (m * (m - 1)) if m > 1 else 0.0
    return same_slot + other


def _pi_item_weights(q: np.ndarray, n_items: int, n_slots: int) -> np.ndarray:
    """``g = Gamma^+ q`` per round, ``(n, L, m)``, for uniform logging (one pseudo-inverse)."""
    gram_pinv = np.linalg.pinv(uniform_gram(n_items, n_slots), hermitian=True)
    flat = q.reshape(q.shape[0], -1)
    if q.shape[0] > 1 and q.strides[0] == 0:  # one target for every round: one product
        return np.broadcast_to((gram_pinv @ flat[0]).reshape(n_slots, n_items), q.shape)
    return (flat @ gram_pinv).reshape(q.shape)


def pseudo_inverse(log: SlateLog, q: np.ndarray, level: float = 0.95) -> Estimate:
    """The pseudo-inverse estimate of the target's clicks per slate from slate totals only.

    >>> rng = np.random.default_rng(0)
    >>> s = np.argsort(rng.random((4000, 4)), axis=1)[:, :2]   # uniform, 2 of 4 items
    >>> c = (rng.random((4000, 2)) < np.where(s == 0, 0.5, 0.1)).astype(float)
    >>> log = SlateLog(s, c, np.full((4000, 2), 0.25), 4, logging="uniform")
    >>> target = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])   # item 0 then item 1: 0.6
    >>> est = pseudo_inverse(log, target)
    >>> est.low < 0.6 < est.high
    True
    """
    q = _check_marginals(q, log.n_slates, log.n_slots, log.n_items)
    rows, slots = np.indices(log.slates.shape)
    if log.logging == "uniform":
        g = _pi_item_weights(q, log.n_items, log.n_slots)
        w = g[rows, slots, log.slates].sum(axis=1)
    else:
        w = (q[rows, slots, log.slates] / log.propensities).sum(axis=1) - log.n_slots + 1
    total = log.clicks.sum(axis=1)
    return _estimate("pseudo_inverse", w * total, w, int(np.count_nonzero(w * total)), level,
                     _range(log.clicks, log.n_slots))


# ----- logs of single impressions (no slates) --------------------------------------------------
def _rows(data: LoggedData, q: np.ndarray, full: bool = False
          ) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions, and the target's probability of each row's item at its slot ``(n,)`` (or
    the slot marginals ``(L, m)`` with ``full``)."""
    if data.positions is None or data.n_positions < 1:
        raise ConfigurationError("a slate evaluation needs a log with positions")
    L, m, n = data.n_positions, data.n_actions, data.n_rounds
    q = np.asarray(q, dtype=float)
    pos = data.position_index
    if q.shape == (L, m):
        _check_marginals(q, 1, L, m)
        return pos, (q if full else q[pos, data.actions]), L
    if q.shape == (n,) and not full:
        if not np.isfinite(q).all() or (q < 0).any() or (q > 1).any():
            raise ConfigurationError("target probabilities of the logged items must be in [0, 1]")
        return pos, q, L
    want = f"({L}, {m})" if full else f"({L}, {m}) or ({n},)"
    raise ConfigurationError(f"target has shape {q.shape}; expected {want} for this log")


def _stratified(name: str, data: LoggedData, terms: np.ndarray, weights: np.ndarray,
                level: float) -> Estimate:
    """Sum over slots of each slot's mean term; its variance is the sum of the slots'
    (``var_j / n_j``, the rows of a slot being independent draws)."""
    pos = data.position_index
    value, var = 0.0, 0.0
    for j in range(data.n_positions):
        t = terms[pos == j]
        if t.shape[0] < 2:
            raise ConfigurationError(f"slot {j} has {t.shape[0]} logged rows; need at least 2")
        value += float(t.mean())
        var += float(t.var(ddof=1)) / t.shape[0]
    se = float(np.sqrt(var))
    z = float(ndtri(0.5 + check_level(level) / 2.0))
    low, high = value - z * se, value + z * se
    bounds = _range(data.rewards, data.n_positions)
    clipped = False
    if bounds is not None:
        low, high, clipped = clip_to_range(value, low, high, bounds)
    return Estimate(name, value, low, high, se, effective_sample_size(np.abs(weights)),
                    data.n_rounds, "normal", float(level), float(np.max(weights)),
                    int(np.count_nonzero(data.rewards * weights)), clipped)


def per_position_ips_rows(data: LoggedData, q: np.ndarray, level: float = 0.95) -> Estimate:
    """Per-position IPS of clicks per slate from single-impression rows: the sum over slots
    of each slot's mean ``r q[j, a] / p``. ``q`` is the target's slot marginals ``(L, m)``, or
    its probability of each row's item at the row's slot ``(n,)``; with the logging policy's
    own propensities it is the log's own clicks per slate (each slot's click rate, summed)."""
    _, qa, _ = _rows(data, q)
    w = qa / data.propensities
    return _stratified("per_position_ips", data, w * data.rewards, w, level)


def pseudo_inverse_rows(data: LoggedData, q: np.ndarray, logging: str = "uniform",
                        level: float = 0.95) -> Estimate:
    """The pseudo-inverse estimator on single-impression rows: each row's click times the
    PI weight's expectation given its slot and item, the other slots drawn by the logging
    policy -- ``g[j, a] + sum_{k != j} (G_k - g[k, a]) / (m - 1)`` with ``g = Gamma^+ q``
    and ``G_k = sum_b g[k, b]`` for uniform logging (exact). With ``"independent"`` logging
    the other slots' expected ratios are 1 and the PI reduces to per-position IPS.

    It reduces to per-position IPS for uniform logging too: ``E[w | s_j = a] = m (Gamma
    Gamma^+ q)[j, a] = m q[j, a]``, because slot marginals (each slot summing to 1) are
    orthogonal to ``Gamma``'s null space (per-slot constants summing to 0). So on logs of
    single rows the PI adds nothing to per-position IPS; it differs on whole slates whose
    per-slot rewards are not observed (:func:`pseudo_inverse`). Weights within ``1e-12`` of 0
    are rounding and are set to 0."""
    if logging not in LOGGING:
        raise ConfigurationError(f"logging == {logging!r}, must be one of {LOGGING}")
    if logging == "independent":
        _, qa, _ = _rows(data, q)
        w = qa / data.propensities
        return _stratified("pseudo_inverse", data, w * data.rewards, w, level)
    pos, q, L = _rows(data, q, full=True)
    m = data.n_actions
    g = _pi_item_weights(q[None], m, L)[0]
    totals = g.sum(axis=1)
    others = (totals.sum() - totals[:, None]) - (g.sum(axis=0)[None, :] - g)  # (L, m)
    table = g + others / (m - 1)
    table[np.abs(table) < 1e-12 * max(float(np.abs(table).max()), 1e-300)] = 0.0
    w = table[pos, data.actions]
    return _stratified("pseudo_inverse", data, w * data.rewards, w, level)
