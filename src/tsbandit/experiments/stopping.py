"""Stopping rules for Bayesian A/B/n tests.

A :class:`StoppingRule` stops an experiment when every arm has at least ``min_samples``
observations and either

- some arm's probability of being best is ``>= prob_best`` (e.g. 0.99), or
- some arm's expected loss is ``<= expected_loss`` (an absolute amount in the metric's units,
  e.g. 0.0005 = five hundredths of a percentage point of conversion rate).

Peeking warning
---------------
Checking a probability-best threshold after every batch is *not* a fixed-error-rate procedure:
under an A/A test the posterior probability wanders, and the chance that it ever crosses 0.99
grows with the number of looks (towards 1 as looks go to infinity, by the law of the iterated
logarithm). :func:`tsbandit.experiments.simulate_ab` measures this. At rates of 3 % (A/A,
4,000 seeded replications per seed, ``tsbandit abtest simulate --rates 0.030,0.036 --reps 4000
--seed S``), a 0.99 threshold checked once at the fixed-horizon size declares a winner in 2.0 to
2.4 % of tests (seeds 0-2; the theory for one look is 2 %); checked every 500 users per arm up to
twice that size (56 looks) it does so in 14.4, 16.5 and 16.7 % (+/- 0.6), and in about 19 % with
112 looks. A 0.999 threshold with 56 looks is back to 2.2 % (seed 0). For comparison the z-test
at alpha 0.05 goes from 5 % (one look) to 33 % (56 looks). Use a stricter threshold, fewer
looks, or report the measured rate. The expected-loss rule is different in kind: under A/A it
is *meant* to stop (either arm is fine to ship, and little is lost); its guarantee is a bound
on the expected loss, not on the false-positive rate.

Examples
--------
>>> from tsbandit.experiments import BinaryPosteriors, StoppingRule, evaluate_stopping
>>> post = BinaryPosteriors.from_counts([120, 160], [1000, 1000], names=["A", "B"])
>>> d = evaluate_stopping(post, StoppingRule(prob_best=0.99, min_samples=500))
>>> d.stop, d.winner
(True, 'B')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .bayes import ArmEstimate, expected_loss, prob_best
from .posteriors import ArmPosteriors

__all__ = ["StopDecision", "StoppingRule", "evaluate_stopping"]


@dataclass(frozen=True)
class StoppingRule:
    """When to stop a Bayesian A/B/n test (configuration; see the module docstring).

    Parameters
    ----------
    prob_best
        Stop when an arm's probability of being best reaches this (in (0, 1)); ``None`` to
        disable.
    expected_loss
        Stop when an arm's expected loss is at most this (``> 0``, metric units); ``None`` to
        disable.
    min_samples
        Observations every arm needs before any stop (guards against early flukes).
    """

    prob_best: float | None = 0.99
    expected_loss: float | None = None
    min_samples: int = 100

    def __post_init__(self) -> None:
        if self.prob_best is None and self.expected_loss is None:
            raise ConfigurationError(
                "a stopping rule needs prob_best or expected_loss (both are None)")
        if self.prob_best is not None:
            v = _number("prob_best", self.prob_best)
            if not 0.0 < v < 1.0:
                raise ConfigurationError(f"prob_best == {self.prob_best!r}, must be in (0, 1)")
            object.__setattr__(self, "prob_best", v)
        if self.expected_loss is not None:
            v = _number("expected_loss", self.expected_loss)
            if not (v > 0.0 and np.isfinite(v)):
                raise ConfigurationError(
                    f"expected_loss == {self.expected_loss!r}, must be finite and > 0")
            object.__setattr__(self, "expected_loss", v)
        m = self.min_samples
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
            raise ConfigurationError(f"min_samples == {m!r}, must be an integer >= 0")
        object.__setattr__(self, "min_samples", int(m))

    def check(self, probs: np.ndarray, losses: np.ndarray | None,
              counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized rule over a batch of experiments.

        Parameters
        ----------
        probs
            ``(..., K)`` probability best.
        losses
            ``(..., K)`` expected loss (may be ``None`` when the rule has no loss threshold).
        counts
            ``(..., K)`` observations per arm.

        Returns
        -------
        stop, winner, by_loss
            ``(...,)`` booleans, winning arm index (-1 when not stopping) and whether the loss
            criterion (rather than probability best) triggered.
        """
        enough = (np.asarray(counts) >= self.min_samples).all(axis=-1)
        best = np.argmax(probs, axis=-1)
        by_prob = np.zeros(enough.shape, dtype=bool)
        if self.prob_best is not None:
            by_prob = np.take_along_axis(probs, best[..., None], -1)[..., 0] >= self.prob_best
        by_loss = np.zeros(enough.shape, dtype=bool)
        if self.expected_loss is not None:
            if losses is None:
                raise ConfigurationError("this rule has an expected_loss threshold: pass losses")
            low = np.argmin(losses, axis=-1)
            by_loss = np.take_along_axis(losses, low[..., None], -1)[..., 0] <= self.expected_loss
            best = np.where(by_prob, best, np.where(by_loss, low, best))
        stop = enough & (by_prob | by_loss)
        return stop, np.where(stop, best, -1), stop & ~by_prob & by_loss

    def to_dict(self) -> dict[str, Any]:
        return {"prob_best": self.prob_best, "expected_loss": self.expected_loss,
                "min_samples": self.min_samples}


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number") from None


@dataclass(frozen=True)
class StopDecision:
    """Outcome of a stopping rule on one experiment's posteriors."""

    stop: bool
    winner: str | None
    reason: str
    prob_best: ArmEstimate
    expected_loss: ArmEstimate

    def to_dict(self) -> dict[str, Any]:
        return {"stop": self.stop, "winner": self.winner, "reason": self.reason}


def evaluate_stopping(post: ArmPosteriors, rule: StoppingRule | None = None, *,
                      rng: np.random.Generator | None = None,
                      draws: int = 200_000) -> StopDecision:
    """Apply ``rule`` (default ``StoppingRule()``) to the current posteriors.

    ``rng`` is needed for more than two arms (Monte-Carlo estimates; the rule then compares
    estimates, whose standard errors are in the returned ``prob_best`` / ``expected_loss``).
    """
    rule = rule if rule is not None else StoppingRule()
    pb = prob_best(post, rng=rng, draws=draws)
    el = expected_loss(post, rng=rng, draws=draws)
    counts = post.counts()
    stop, winner, by_loss = rule.check(pb.values, el.values, counts)
    if bool(stop):
        w = int(winner)
        if bool(by_loss):
            reason = (f"expected loss of {post.names[w]!r} is {el.values[w]:.3g} <= "
                      f"{rule.expected_loss:g}")
        else:
            reason = (f"probability {post.names[w]!r} is best is {pb.values[w]:.4f} >= "
                      f"{rule.prob_best:g}")
        return StopDecision(True, post.names[w], reason, pb, el)
    short = [n for n, c in zip(post.names, counts, strict=True) if c < rule.min_samples]
    if short:
        reason = (f"keep going: arms {short} have fewer than min_samples == "
                  f"{rule.min_samples} observations")
    else:
        parts = []
        if rule.prob_best is not None:
            parts.append(f"max probability best {pb.values.max():.4f} < {rule.prob_best:g}")
        if rule.expected_loss is not None:
            parts.append(f"min expected loss {el.values.min():.3g} > {rule.expected_loss:g}")
        reason = "keep going: " + " and ".join(parts)
    return StopDecision(False, None, reason, pb, el)
