"""Univariate posterior marginals of one arm's mean, and exact two-arm integrals over them.

Two marginal families cover the experiments: :class:`BetaMarginal` (conversion rates) and
:class:`StudentTMarginal` (the mean of a Normal model with unknown variance). Both expose the same
small interface (``cdf``, ``sf``, ``ppf``, ``upper_partial``...) built on ``scipy.special``
directly (the frozen ``scipy.stats`` objects cost ~50 us per call, too slow inside ``quad``).

Two-arm quantities are one-dimensional integrals over the quantiles of the narrower arm, e.g.
``P(X_j > X_i) = int_0^1 F_i(Q_j(u)) du``, written on the *normal-score* scale ``u = Phi(z)``:
``int phi(z) F_i(Q_j(Phi(z))) dz``, with upper-tail quantiles taken through the inverse
survival function. On the ``u`` scale an event carried by the far tail of the outer arm (two
arms far apart: all the mass of ``P`` in ``u > 1 - 1e-8``) is invisible to adaptive
quadrature; on the ``z`` scale it is an ordinary bump near ``z = 6``. The inner function is
smooth because the outer arm is the narrower one, so the quadrature converges for real-valued
parameters, heavy tails and counts of 1e5 alike.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .._scipy import betainc, betaincinv, betaln, brentq, ndtr, stdtr, stdtrit

__all__ = [
    "BetaMarginal",
    "Marginal",
    "StudentTMarginal",
    "beta_prob_greater_sum",
    "diff_cdf",
    "expected_shortfall",
    "prob_greater_quad",
    "ratio_cdf",
    "solve_quantile",
]

_QUAD = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 500}


class Marginal(Protocol):
    """Posterior distribution of one arm's mean (scalar parameters)."""

    @property
    def mean(self) -> float: ...

    @property
    def width(self) -> float:
        """Interquartile range (finite even when the variance is not)."""
        ...

    def pdf(self, x: float) -> float: ...

    def cdf(self, x: float) -> float: ...

    def sf(self, x: float) -> float: ...

    def ppf(self, u: float) -> float: ...

    def isf(self, p: float) -> float:
        """Inverse survival function, ``Q(1 - p)``, accurate for tiny ``p``."""
        ...

    def upper_partial(self, x: float) -> float:
        """``E[(X - x)^+]``."""
        ...


@dataclass(frozen=True)
class BetaMarginal:
    """``Beta(a, b)``."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def std(self) -> float:
        n = self.a + self.b
        return math.sqrt(self.a * self.b / (n * n * (n + 1.0)))

    @property
    def width(self) -> float:
        return float(self.ppf(0.75) - self.ppf(0.25))

    def pdf(self, x: float) -> float:
        if not 0.0 < x < 1.0:
            return 0.0
        return math.exp((self.a - 1) * math.log(x) + (self.b - 1) * math.log1p(-x)
                        - betaln(self.a, self.b))

    def cdf(self, x: float) -> float:
        return float(betainc(self.a, self.b, min(max(x, 0.0), 1.0)))

    def sf(self, x: float) -> float:
        # I_{1-x}(b, a) keeps full precision in the upper tail
        return float(betainc(self.b, self.a, 1.0 - min(max(x, 0.0), 1.0)))

    def ppf(self, u: float) -> float:
        return float(betaincinv(self.a, self.b, u))

    def isf(self, p: float) -> float:
        return float(1.0 - betaincinv(self.b, self.a, p))

    def upper_partial(self, x: float) -> float:
        # E[X 1{X > x}] = mean * P(Beta(a + 1, b) > x)
        shifted = BetaMarginal(self.a + 1.0, self.b)
        return max(self.mean * shifted.sf(x) - x * self.sf(x), 0.0)


@dataclass(frozen=True)
class StudentTMarginal:
    """Location-scale Student-t: ``loc + scale * T_df``."""

    df: float
    loc: float
    scale: float

    @property
    def mean(self) -> float:
        return self.loc if self.df > 1.0 else math.nan

    @property
    def width(self) -> float:
        return float(2.0 * self.scale * stdtrit(self.df, 0.75))

    def pdf(self, x: float) -> float:
        z = (x - self.loc) / self.scale
        nu = self.df
        logc = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
        return math.exp(logc - (nu + 1) / 2 * math.log1p(z * z / nu)) / self.scale

    def cdf(self, x: float) -> float:
        return float(stdtr(self.df, (x - self.loc) / self.scale))

    def sf(self, x: float) -> float:
        return float(stdtr(self.df, (self.loc - x) / self.scale))

    def ppf(self, u: float) -> float:
        return float(self.loc + self.scale * stdtrit(self.df, u))

    def isf(self, p: float) -> float:
        return float(self.loc - self.scale * stdtrit(self.df, p))

    def upper_partial(self, x: float) -> float:
        # For T ~ t_nu: E[(T - z)^+] = (nu + z^2) / (nu - 1) f(z) - z S(z), nu > 1.
        if self.df <= 1.0:
            return math.inf
        z = (x - self.loc) / self.scale
        nu = self.df
        fz = self.pdf(x) * self.scale
        sz = float(stdtr(nu, -z))
        return max(self.scale * ((nu + z * z) / (nu - 1.0) * fz - z * sz), 0.0)


_Z_MAX = 30.0  # tail mass beyond 30 standard scores is ~1e-197; stdtrit fails near 1e-300
_Z_POINTS = [-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _quantile_z(m: Marginal, z: float) -> float:
    """``Q(Phi(z))``, through the survival side for ``z > 0`` so upper tails keep precision."""
    return m.ppf(float(ndtr(z))) if z <= 0.0 else m.isf(float(ndtr(-z)))


def _integrate_over(m: Marginal, f: Callable[[float], float]) -> float:
    """``E[f(X)]`` for ``X ~ m`` as ``int phi(z) f(Q(Phi(z))) dz``; warnings become errors."""

    def g(z: float) -> float:
        x = _quantile_z(m, z)
        if not math.isfinite(x):  # pragma: no cover - inverse CDF failure deep in a tail
            return 0.0
        return math.exp(-0.5 * z * z) * _INV_SQRT_2PI * f(x)

    from scipy.integrate import IntegrationWarning, quad  # ~0.3 s to import: on first use

    with warnings.catch_warnings():
        warnings.simplefilter("error", IntegrationWarning)
        try:
            value, _ = quad(g, -_Z_MAX, _Z_MAX, points=_Z_POINTS, **_QUAD)
        except IntegrationWarning:  # pragma: no cover - fall back to a looser, noisier answer
            warnings.simplefilter("ignore", IntegrationWarning)
            value, _ = quad(g, -_Z_MAX, _Z_MAX, points=_Z_POINTS, epsabs=1e-10, epsrel=1e-8,
                            limit=2000)
    return float(value)


def prob_greater_quad(mi: Marginal, mj: Marginal) -> float:
    """``P(X_j > X_i)`` for independent arms, by quadrature over the narrower arm."""
    if mj.width <= mi.width:
        p = _integrate_over(mj, mi.cdf)
    else:
        p = _integrate_over(mi, mj.sf)
    return min(max(p, 0.0), 1.0)


def expected_shortfall(mi: Marginal, mj: Marginal) -> float:
    """``E[(X_j - X_i)^+]``: expected loss of choosing arm ``i`` when ``j`` is the alternative."""
    if mi.width <= mj.width:
        v = _integrate_over(mi, mj.upper_partial)
    else:
        # E[(y - X_i)^+] = y - mean_i + E[(X_i - y)^+]
        mu_i = mi.mean
        v = _integrate_over(mj, lambda y: y - mu_i + mi.upper_partial(y))
    return max(v, 0.0)


def ratio_cdf(mi: Marginal, mj: Marginal, c: float) -> float:
    """``P(X_j <= c X_i)`` for a control ``X_i`` that is positive (almost surely)."""
    if c > 0.0 and mj.width < c * mi.width:
        p = _integrate_over(mj, lambda y: mi.sf(y / c))
    else:
        p = _integrate_over(mi, lambda x: mj.cdf(c * x))
    return min(max(p, 0.0), 1.0)


def diff_cdf(mi: Marginal, mj: Marginal, d: float) -> float:
    """``P(X_j - X_i <= d)``."""
    if mj.width < mi.width:
        p = _integrate_over(mj, lambda y: mi.sf(y - d))
    else:
        p = _integrate_over(mi, lambda x: mj.cdf(x + d))
    return min(max(p, 0.0), 1.0)


def solve_quantile(cdf: Callable[[float], float], q: float, guess: float, spread: float) -> float:
    """Root of ``cdf(x) = q`` for a nondecreasing ``cdf``, bracketing outward from ``guess``."""
    spread = spread if spread > 0 and math.isfinite(spread) else 1.0
    lo, hi = guess - spread, guess + spread
    step = spread
    for _ in range(200):
        if cdf(lo) <= q:
            break
        step *= 2.0
        lo -= step
    step = spread
    for _ in range(200):
        if cdf(hi) >= q:
            break
        step *= 2.0
        hi += step
    return float(brentq(lambda x: cdf(x) - q, lo, hi, xtol=1e-12 * spread, rtol=1e-12))


def beta_prob_greater_sum(a1: float, b1: float, a2: float, b2: float,
                          max_terms: int = 1_000_000) -> float | None:
    """Closed form ``P(X_2 > X_1)``, ``X_k ~ Beta(a_k, b_k)``, when one parameter is an integer.

    Evan Miller's sum over the integer ``a_2`` (Miller 2015, "Formulas for Bayesian A/B
    testing"; also Cook 2005), evaluated in log space:

        P = sum_{i=0}^{a_2 - 1} B(a_1 + i, b_1 + b_2) / ((b_2 + i) B(1 + i, b_2) B(a_1, b_1)).

    The symmetries ``X -> 1 - X`` and ``P(X_2 > X_1) = 1 - P(X_1 > X_2)`` let the sum run over
    whichever of the four parameters is an integer and smallest. Returns ``None`` when none is
    an integer (or all exceed ``max_terms``); callers then integrate numerically.
    """
    forms = [  # (number of terms, evaluation)
        (a2, lambda: _miller(a1, b1, a2, b2)),
        (a1, lambda: 1.0 - _miller(a2, b2, a1, b1)),
        (b1, lambda: _miller(b2, a2, b1, a1)),
        (b2, lambda: 1.0 - _miller(b1, a1, b2, a2)),
    ]
    usable = [(k, f) for k, f in forms if float(k).is_integer() and 1 <= k <= max_terms]
    if not usable:
        return None
    _, best = min(usable, key=lambda kf: kf[0])
    return min(max(float(best()), 0.0), 1.0)


def _miller(a1: float, b1: float, a2: float, b2: float) -> float:
    i = np.arange(int(a2), dtype=np.float64)
    log_terms = betaln(a1 + i, b1 + b2) - np.log(b2 + i) - betaln(1.0 + i, b2) - betaln(a1, b1)
    m = float(log_terms.max())
    return math.exp(m) * float(np.exp(log_terms - m).sum())
