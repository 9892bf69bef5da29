"""Frequentist reference design: the fixed-horizon two-proportion z-test.

Sample size per arm (two-sided level ``alpha``, power ``1 - beta``, equal allocation), with
``d = |p2 - p1|``, ``pbar = (p1 + p2) / 2``, ``q = 1 - p``:

- ``"pooled"`` (default; Fleiss 1981, *Statistical Methods for Rates and Proportions*, 2nd ed.,
  eq. 3.14 without continuity correction; Fleiss, Levin & Paik 2003, eq. 4.14; what R's
  ``power.prop.test`` solves, with its default one-tail shortcut ``strict = FALSE``)::

      n = (z_{1-alpha/2} sqrt(2 pbar qbar) + z_{1-beta} sqrt(p1 q1 + p2 q2))^2 / d^2

  e.g. ``p1 = 0.10, p2 = 0.12`` gives 3,841 per arm.
- ``"unpooled"``: ``(z_{1-alpha/2} + z_{1-beta})^2 (p1 q1 + p2 q2) / d^2`` (3,839).
- ``"arcsine"``: Cohen's ``h = 2 asin(sqrt p2) - 2 asin(sqrt p1)``,
  ``n = 2 ((z_{1-alpha/2} + z_{1-beta}) / h)^2`` (Cohen 1988, ch. 6: h = 0.2 needs 392 per
  group; 3,835 for the example).

``continuity_correction=True`` applies Fleiss, Tytun & Ury (1980):
``n' = n / 4 (1 + sqrt(1 + 4 / (n d)))^2`` (3,941 for the example, about
``n + 2 / d``). Results are rounded up.

Examples
--------
>>> sample_size_two_proportions(0.10, 0.12)
3841
>>> sample_size_two_proportions(0.030, 0.036)
13914
"""

from __future__ import annotations

import math

import numpy as np

from .._scipy import ndtr, ndtri
from ..errors import ConfigurationError

__all__ = ["power_two_proportions", "sample_size_two_proportions", "two_proportion_ztest"]

_METHODS = ("pooled", "unpooled", "arcsine")


def _check_rate(name: str, p: float) -> float:
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {p!r}, must be a number") from None
    if not 0.0 < v < 1.0:
        raise ConfigurationError(f"{name} == {p!r}, must be in (0, 1)")
    return v


def _z_terms(p1: float, p2: float, alpha: float, power: float) -> tuple[float, float]:
    _check_rate("alpha", alpha)
    _check_rate("power", power)
    if power <= alpha / 2:
        raise ConfigurationError(f"power == {power!r} must exceed alpha / 2 == {alpha / 2!r}")
    return float(ndtri(1.0 - alpha / 2.0)), float(ndtri(power))


def sample_size_two_proportions(p1: float, p2: float, alpha: float = 0.05, power: float = 0.80,
                                *, method: str = "pooled",
                                continuity_correction: bool = False) -> int:
    """Users per arm for a two-sided two-proportion z-test (see the module docstring).

    Raises :class:`~tsbandit.errors.ConfigurationError` for rates outside (0, 1), ``p1 == p2``
    (no finite sample detects a zero effect) or an unknown ``method``.
    """
    p1, p2 = _check_rate("p1", p1), _check_rate("p2", p2)
    if p1 == p2:
        raise ConfigurationError(f"p1 == p2 == {p1!r}: a zero effect needs an infinite sample")
    if method not in _METHODS:
        raise ConfigurationError(f"method == {method!r}, must be one of {list(_METHODS)}")
    za, zb = _z_terms(p1, p2, alpha, power)
    d = abs(p2 - p1)
    var1 = p1 * (1 - p1) + p2 * (1 - p2)
    if method == "pooled":
        pbar = (p1 + p2) / 2.0
        n = (za * math.sqrt(2.0 * pbar * (1 - pbar)) + zb * math.sqrt(var1)) ** 2 / d**2
    elif method == "unpooled":
        n = (za + zb) ** 2 * var1 / d**2
    else:
        h = 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))
        n = 2.0 * ((za + zb) / h) ** 2
    if continuity_correction:
        n = n / 4.0 * (1.0 + math.sqrt(1.0 + 4.0 / (n * d))) ** 2
    # guard against 3841.0000000002 from rounding of an exactly integer n
    return math.ceil(n - 1e-9)


def power_two_proportions(p1: float, p2: float, n: float, alpha: float = 0.05) -> float:
    """Power of the pooled two-sided z-test with ``n`` users per arm (normal approximation).

    The inverse of the ``"pooled"`` sample size: includes both rejection tails.
    """
    p1, p2 = _check_rate("p1", p1), _check_rate("p2", p2)
    _check_rate("alpha", alpha)
    za = float(ndtri(1.0 - alpha / 2.0))
    pbar = (p1 + p2) / 2.0
    s0 = math.sqrt(2.0 * pbar * (1 - pbar))
    s1 = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    d = abs(p2 - p1) * math.sqrt(n)
    return float(ndtr((d - za * s0) / s1) + ndtr((-d - za * s0) / s1))


def two_proportion_ztest(s1: np.ndarray | float, n1: np.ndarray | float, s2: np.ndarray | float,
                         n2: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-proportion z statistic of ``p2 - p1`` and its two-sided p-value.

    Vectorized over any broadcastable shapes; when no arm has a success (or a failure) the
    statistic is 0 and the p-value 1.
    """
    s1, n1, s2, n2 = (np.asarray(v, dtype=np.float64) for v in (s1, n1, s2, n2))
    pbar = (s1 + s2) / (n1 + n2)
    se = np.sqrt(pbar * (1.0 - pbar) * (1.0 / n1 + 1.0 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (s2 / n2 - s1 / n1) / se, 0.0)
    return z, 2.0 * ndtr(-np.abs(z))
