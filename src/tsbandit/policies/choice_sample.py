"""Thompson sampling's first-choice probabilities, carried from one posterior to the next.

A context-free Thompson bandit logs, with every decision, the probability that its posterior
puts the chosen arm first -- a Monte-Carlo estimate over ``n`` posterior draws. Every reward
changes the posterior, and ``n`` fresh draws per change (10,000 gamma variates for 1,000 draws
of 5 Beta arms) is most of a decision batch's CPU in a busy service. Yet one reward moves a
posterior with thousands of observations very little: the draws made under the earlier
posterior ``q`` still cover the new one ``p``, and weighting each draw by ``p(x) / q(x)``
estimates the new probabilities from the same draws (importance sampling; self-normalized, so
they sum to 1). The weights need only each draw's log density, not new random numbers.

The price is precision: weights that vary leave fewer effective draws,
``ESS = (sum w)**2 / sum w**2`` (Kong, 1992). A sample is reused only while its ESS for the new
posterior stays at least ``min_effective`` (90%) of its draws -- the estimate's standard error
then at most ``1 / sqrt(0.9)``, 5%, above a fresh one's; below that, the caller draws afresh
and the new draws become the sample. The self-normalized estimate is consistent with a bias of
order ``1 / ESS``, well below its Monte-Carlo error. How long a sample lasts follows the
information a reward adds: a success moves ``Beta(a, b)`` by a chi-square distance of
``b / (a (a + b + 1))`` (~0.009 at ``a = 100, b = 900``; a failure ~0.0001), so early, every
reward redraws, and later a sample serves many rewards.

>>> import numpy as np
>>> from tsbandit.policies import BetaBernoulli, ThompsonSampling
>>> m = BetaBernoulli(); s = m.init_stats(3)
>>> s["successes"][:] = [200, 300, 250]; s["failures"][:] = [800, 700, 750]
>>> rng = np.random.default_rng(0)
>>> sample = ThompsonSampling().choice_sample(m, m.posterior(s), s, rng, None, 1000)
>>> s["failures"][0] += 1  # one more reward: the same draws, reweighted
>>> p = sample.reweighted(m, m.posterior(s))
>>> round(float(p.sum()), 12), p.argmax()
(1.0, np.int64(1))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import RewardModel

__all__ = ["MIN_EFFECTIVE", "ChoiceSample"]

#: reuse a sample while its effective size stays at least this fraction of its draws
MIN_EFFECTIVE = 0.9


@dataclass(frozen=True)
class ChoiceSample:
    """``n`` draws of a context-free posterior and the first choice each makes among the
    eligible arms, with the draws' log density under the posterior that drew them.

    Attributes
    ----------
    draws
        ``(n, K)`` posterior draws of every arm's expected reward.
    choice
        ``(n,)`` the arm each draw puts first (ties broken at random, as the rule does).
    columns
        Indices of the eligible arms (their draws alone decide the choice).
    log_q
        ``(n,)`` the joint log density of the eligible arms' draws under the drawing posterior.
    memo
        What the model keeps of the draws for their densities (``draw_log_density``'s memo).
    """

    draws: np.ndarray
    choice: np.ndarray
    columns: np.ndarray
    log_q: np.ndarray
    memo: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, model: RewardModel, posterior: Any, draws: np.ndarray, choice: np.ndarray,
           eligible: np.ndarray | None) -> ChoiceSample | None:
        """The sample of ``draws`` ``(n, K)`` of ``posterior`` and their first ``choice``
        ``(n,)`` among the ``eligible`` arms (None: all); ``None`` when ``model`` has no
        :meth:`~.RewardModel.draw_log_density`."""
        columns = (np.arange(draws.shape[-1]) if eligible is None
                   else np.flatnonzero(eligible))
        memo: dict[str, np.ndarray] = {}
        log_q = cls._joint(model, posterior, draws, columns, memo)
        return None if log_q is None else cls(draws, choice, columns, log_q, memo)

    @staticmethod
    def _joint(model: RewardModel, posterior: Any, draws: np.ndarray, columns: np.ndarray,
               memo: dict[str, np.ndarray]) -> np.ndarray | None:
        # at extreme priors a density may be +inf in one column and -inf in another: their sum
        # is NaN, which reweighted() refuses (a fresh draw then), so numpy need not warn
        with np.errstate(invalid="ignore", over="ignore"):
            log_density = model.draw_log_density(posterior, draws, memo)
            if log_density is None:
                return None
            return np.asarray(log_density[:, columns].sum(axis=1), dtype=float)

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return int(self.draws.shape[-1])

    def probabilities(self) -> np.ndarray:
        """The plain Monte-Carlo estimate under the drawing posterior: ``(K,)``."""
        return np.bincount(self.choice, minlength=self.n_arms) / self.choice.shape[0]

    def reweighted(self, model: RewardModel, posterior: Any,
                   min_effective: float = MIN_EFFECTIVE) -> np.ndarray | None:
        """First-choice probabilities ``(K,)`` under ``posterior`` (of the same arms and model)
        from these draws, importance-weighted; ``None`` when the effective sample size falls
        below ``min_effective`` of the draws, or a weight is not finite (draw afresh then)."""
        log_p = self._joint(model, posterior, self.draws, self.columns, self.memo)
        if log_p is None:
            return None
        with np.errstate(invalid="ignore"):  # -inf - -inf: refused just below
            log_w = log_p - self.log_q
        if not np.isfinite(log_w).all():
            return None
        w = np.exp(log_w - log_w.max())
        total = w.sum()
        if total * total < min_effective * w.shape[0] * np.dot(w, w):
            return None
        return np.bincount(self.choice, weights=w, minlength=self.n_arms) / total
