"""Ceilings for decision quality: what a learner told (almost) everything could achieve.

:func:`top_two_value` is the exact Bayes-optimal number of correct picks in a two-hypothesis
problem: the learner knows the two best arms and both their rates ``p > q``, and only has to
find out which arm has which (prior 1/2 each); every other arm is known to be worse. Any real
policy also has to find the two best arms and learn the rates, so — averaged over the world
and the world with those two arms swapped, both of which a policy that is not told the answer
must handle — it cannot do better. With Bernoulli rewards the posterior depends on the data
only through ``a = s_A - s_B`` (successes) and ``b = f_A - f_B`` (failures):
``log P(A is best) / P(B is best) = a log(p / q) + b log((1 - p) / (1 - q))``. The value is
computed by backward induction over ``(a, b)``; the recursion does not depend on the round, so
one pass gives the value for every horizon up to ``n``.

>>> v = top_two_value(0.2, 0.1, 200)
>>> round(float(v[200] / 200), 3)  # optimal-arm rate over 200 rounds
0.875
>>> float(top_two_value(0.1, 0.1, 10)[10])  # equal rates: a coin flip every round
5.0
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigurationError

__all__ = ["top_two_value"]


def _shift(v: np.ndarray, da: int, db: int) -> np.ndarray:
    """``v[a + da, b + db]``, the edge value repeated outside the grid."""
    p = np.pad(v, 1, mode="edge")
    return p[1 + da:1 + da + v.shape[0], 1 + db:1 + db + v.shape[1]]


def top_two_value(p: float, q: float, n: int, max_successes: int | None = None
                  ) -> np.ndarray:
    """Bayes-optimal expected number of correct picks in ``k`` rounds, ``k = 0 .. n``.

    Parameters
    ----------
    p, q
        The two rates, ``1 > p >= q > 0``; which arm has ``p`` is unknown (prior 1/2).
    n
        Longest horizon.
    max_successes
        Half-width of the grid in ``a`` (successes); default ``n``. Values are exact while
        ``|a|`` stays inside the grid, i.e. for horizons with fewer successes than this on
        either arm; pass ``~p n + 6 sqrt(p n)`` to save time on long horizons.

    Returns
    -------
    numpy.ndarray
        ``(n + 1,)``: entry ``k`` is the optimal expected number of rounds, out of ``k``, in
        which the better arm is pulled. ``value[k] / k`` is the optimal-arm rate.

    Raises
    ------
    ConfigurationError
        For rates outside ``0 < q <= p < 1`` or ``n < 1``.
    """
    if not (0.0 < q <= p < 1.0) or not math.isfinite(p):
        raise ConfigurationError(f"rates p == {p!r}, q == {q!r}, must satisfy 0 < q <= p < 1")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigurationError(f"n == {n!r}, must be an integer >= 1")
    n = int(n)
    ra = n if max_successes is None else max(1, min(int(max_successes), n))
    a = np.arange(-ra, ra + 1, dtype=np.float64)[:, None]
    b = np.arange(-n, n + 1, dtype=np.float64)[None, :]
    llr = a * math.log(p / q) + b * math.log((1.0 - p) / (1.0 - q))
    pi = 0.5 * (1.0 + np.tanh(0.5 * llr))           # P(A is the better arm | data)
    win_a = pi * p + (1.0 - pi) * q                  # P(success | pull A)
    win_b = pi * q + (1.0 - pi) * p
    v = np.zeros_like(pi)
    out = np.zeros(n + 1)
    for k in range(1, n + 1):
        pull_a = pi + win_a * _shift(v, 1, 0) + (1.0 - win_a) * _shift(v, 0, 1)
        pull_b = (1.0 - pi) + win_b * _shift(v, -1, 0) + (1.0 - win_b) * _shift(v, 0, -1)
        v = np.maximum(pull_a, pull_b)
        out[k] = v[ra, n]
    return out
