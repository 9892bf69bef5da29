"""Bayesian A/B/n summaries: probability each arm is best, expected loss, lift interval.

For two arms every quantity is exact (a closed form or one-dimensional quadrature; no Monte
Carlo error). For ``K > 2`` arms the probability of being best and the expected loss are Monte
Carlo estimates from a ``numpy.random.Generator`` passed in, returned with their standard errors.

Definitions, with ``X_k`` the posterior of arm ``k``'s mean (conversion rate or revenue):

- probability best: ``P(X_k = max_j X_j)``;
- expected loss of choosing ``k``: ``E[max_j X_j - X_k] >= 0``, in the metric's units (what we
  expect to give up by shipping ``k``; Stucchio 2015, "Bayesian A/B testing at VWO");
- relative lift of ``treatment`` over ``control``: ``X_t / X_c - 1``.

Examples
--------
>>> from tsbandit.experiments import BinaryPosteriors, prob_best, expected_loss
>>> post = BinaryPosteriors.from_counts([120, 150], [1000, 1000], names=["A", "B"])
>>> prob_best(post).probs.round(4).tolist()
[0.0249, 0.9751]
>>> expected_loss(post).values.round(5).tolist()
[0.03008, 0.00014]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._scipy import ndtri
from ..errors import ConfigurationError
from ..policies.base import check_unit_interval
from ._marginals import Marginal, diff_cdf, expected_shortfall, ratio_cdf, solve_quantile
from .posteriors import ArmPosteriors

__all__ = ["ArmEstimate", "LiftInterval", "expected_loss", "lift_interval", "prob_best"]

_CHUNK = 50_000


@dataclass(frozen=True)
class ArmEstimate:
    """One value per arm with its Monte-Carlo standard error (zeros when exact).

    ``values`` and ``stderr`` are ``(K,)``; ``method`` is ``"exact"`` or ``"monte_carlo"``.
    """

    values: np.ndarray
    stderr: np.ndarray
    method: str
    draws: int = 0

    @property
    def probs(self) -> np.ndarray:
        """Alias of ``values`` for probabilities."""
        return self.values

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values.tolist(), "stderr": self.stderr.tolist(),
                "method": self.method, "draws": self.draws}


def _check_draws(draws: int) -> int:
    if isinstance(draws, bool) or int(draws) != draws or draws < 100:
        raise ConfigurationError(f"draws == {draws!r}, must be an integer >= 100")
    return int(draws)


def _monte_carlo(post: ArmPosteriors, rng: np.random.Generator | None, draws: int,
                 what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-arm sums over draws of (is best, loss, loss^2), in chunks to bound memory."""
    if rng is None:
        raise ConfigurationError(
            f"{what} for {post.n_arms} arms is estimated by Monte Carlo: pass rng, a "
            "numpy.random.Generator")
    draws = _check_draws(draws)
    k = post.n_arms
    wins, loss, loss2 = np.zeros(k), np.zeros(k), np.zeros(k)
    done = 0
    while done < draws:
        m = min(_CHUNK, draws - done)
        x = post.sample(rng, m)  # (m, K)
        best = x.argmax(axis=1)
        wins += np.bincount(best, minlength=k)
        gap = x.max(axis=1, keepdims=True) - x
        loss += gap.sum(axis=0)
        loss2 += (gap * gap).sum(axis=0)
        done += m
    return wins, loss, loss2


def prob_best(post: ArmPosteriors, *, rng: np.random.Generator | None = None,
              draws: int = 200_000, method: str = "auto") -> ArmEstimate:
    """Probability that each arm has the highest mean.

    Parameters
    ----------
    post
        Posteriors of ``K >= 2`` arms.
    rng
        Generator for the Monte-Carlo estimate (required when ``K > 2`` or ``method="mc"``).
    draws
        Monte-Carlo draws; the standard error is ``sqrt(p (1 - p) / draws)``.
    method
        ``"auto"`` (exact for two arms, Monte Carlo otherwise), ``"exact"`` or ``"mc"``.

    Returns
    -------
    ArmEstimate
        ``probs`` of shape ``(K,)``, summing to 1.
    """
    k = _check_arms(post)
    use_exact = _use_exact(method, k)
    if use_exact:
        p = post.prob_greater(0, 1)
        return ArmEstimate(np.array([1.0 - p, p]), np.zeros(2), "exact")
    wins, _, _ = _monte_carlo(post, rng, draws, "the probability of being best")
    n = _check_draws(draws)
    probs = wins / n
    return ArmEstimate(probs, np.sqrt(probs * (1.0 - probs) / n), "monte_carlo", n)


def expected_loss(post: ArmPosteriors, *, rng: np.random.Generator | None = None,
                  draws: int = 200_000, method: str = "auto") -> ArmEstimate:
    """Expected loss ``E[max_j X_j - X_k]`` of choosing each arm ``k``, in metric units.

    Exact for two arms (quadrature of the partial expectation); Monte Carlo for ``K > 2``.
    Always ``>= 0``; for two arms ``loss_A - loss_B == mean_B - mean_A``. Infinite for every
    arm when some arm's mean is undefined (a Student-t posterior with ``df <= 1``: a vague
    revenue prior before data), which no finite sample of draws would reveal.
    """
    k = _check_arms(post)
    use_exact = _use_exact(method, k)
    if not all(math.isfinite(post.marginal(j).mean) for j in range(k)):
        return ArmEstimate(np.full(k, math.inf), np.zeros(k) if use_exact else
                           np.full(k, math.inf), "exact" if use_exact else "monte_carlo",
                           0 if use_exact else _check_draws(draws))
    if use_exact:
        m0, m1 = post.marginal(0), post.marginal(1)
        return ArmEstimate(np.array([expected_shortfall(m0, m1), expected_shortfall(m1, m0)]),
                           np.zeros(2), "exact")
    _, loss, loss2 = _monte_carlo(post, rng, draws, "the expected loss")
    n = _check_draws(draws)
    mean = loss / n
    var = np.maximum(loss2 / n - mean * mean, 0.0)
    return ArmEstimate(mean, np.sqrt(var / n), "monte_carlo", n)


@dataclass(frozen=True)
class LiftInterval:
    """Equal-tailed credible interval of the lift of ``treatment`` over ``control``.

    ``relative=True``: lift is ``X_t / X_c - 1`` (0.25 means +25 %); otherwise ``X_t - X_c``.
    ``prob_positive`` is ``P(lift > 0) = P(X_t > X_c)``.
    """

    control: str
    treatment: str
    level: float
    low: float
    median: float
    high: float
    prob_positive: float
    relative: bool

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "treatment": self.treatment, "level": self.level,
                "low": self.low, "median": self.median, "high": self.high,
                "prob_positive": self.prob_positive, "relative": self.relative}


def lift_interval(post: ArmPosteriors, control: int = 0, treatment: int = 1, *,
                  level: float = 0.95, relative: bool = True) -> LiftInterval:
    """Exact credible interval of the (relative) lift of ``treatment`` over ``control``.

    The lift's CDF is a one-dimensional integral (``P(X_t <= c X_c)``), inverted by root
    finding, so the interval has no Monte-Carlo error. The relative lift needs a control whose
    posterior is positive: raises :class:`~tsbandit.errors.ConfigurationError` when
    ``P(X_c <= 0) > 1e-9`` (use ``relative=False`` for the absolute difference).
    """
    k = _check_arms(post)
    for name, idx in (("control", control), ("treatment", treatment)):
        if not 0 <= idx < k:
            raise ConfigurationError(f"{name} == {idx!r}, must be an arm index in [0, {k})")
    if control == treatment:
        raise ConfigurationError("control and treatment must be different arms")
    level = check_unit_interval("level", level, open_low=True)
    if level >= 1.0:
        raise ConfigurationError(f"level == {level!r}, must be < 1")
    mc, mt = post.marginal(control), post.marginal(treatment)
    # starting points only: the median where the mean is undefined (Student-t, df <= 1)
    c_mid, t_mid = _centre(mc), _centre(mt)
    if relative:
        if mc.cdf(0.0) > 1e-9:
            raise ConfigurationError(
                f"relative lift is undefined: the control {post.names[control]!r} mean is <= 0 "
                f"with probability {mc.cdf(0.0):.3g}; use relative=False")
        guess = t_mid / c_mid - 1.0
        spread = (mt.width / abs(c_mid) + abs(t_mid) * mc.width / c_mid**2) / 1.349

        def cdf(r: float) -> float:
            return ratio_cdf(mc, mt, 1.0 + r)
    else:
        guess = t_mid - c_mid
        spread = (mt.width + mc.width) / 1.349

        def cdf(r: float) -> float:
            return diff_cdf(mc, mt, r)

    # start at the normal-approximation quantiles, then refine
    qs = [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0]
    low, med, high = (solve_quantile(cdf, q, guess + spread * float(ndtri(q)), spread)
                      for q in qs)
    return LiftInterval(post.names[control], post.names[treatment], level, low, med, high,
                        post.prob_greater(control, treatment), relative)


def _centre(m: Marginal) -> float:
    mean = m.mean
    return mean if math.isfinite(mean) else m.ppf(0.5)


def _check_arms(post: ArmPosteriors) -> int:
    k = post.n_arms
    if k < 2:
        raise ConfigurationError(f"an experiment needs at least 2 arms, got {k}")
    return k


def _use_exact(method: str, k: int) -> bool:
    if method not in {"auto", "exact", "mc"}:
        raise ConfigurationError(f"method == {method!r}, must be 'auto', 'exact' or 'mc'")
    if method == "exact" and k != 2:
        raise ConfigurationError(f"method='exact' needs exactly 2 arms, got {k}")
    return method == "exact" or (method == "auto" and k == 2)
