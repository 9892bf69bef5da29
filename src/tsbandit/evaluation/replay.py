"""The replay method (Li, Chu, Langford & Wang, 2011): rejection sampling on a uniform log.

In each round the target policy draws its own action from ``pi_e(. | x_i)``; the round is kept
when that action equals the logged one, and the estimate is the mean reward of the kept rounds.
On a log collected uniformly at random the kept rounds are distributed as if the target policy
had run, so the estimate is unbiased (given at least one kept round). On a non-uniform log a
kept round is further accepted with probability ``min_j p_j / p_i``, which restores that
property at the price of discarding more rounds.

The number of kept rounds (about ``n / K`` on a uniform log; in expectation
``sum_i pi_e(a_i | x_i) min_j p_j / p_i``) is reported as the effective sample size; the interval
is that of a mean of the kept rewards (Wilson's score interval when rewards are 0/1, which
stays honest with few or no successes). On a uniform log, averaging over the rejection draws
gives (nearly) SNIPS, which has less variance; replay is here because it is simple to explain
and because it is what a uniform A/B log was designed for.
"""

from __future__ import annotations

import numpy as np

from .base import Estimator, Terms
from .data import LoggedData
from .intervals import wilson_interval

__all__ = ["Replay", "sample_actions"]


def sample_actions(pi_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``pi_rows`` ``(n, K)`` by inverse CDF, vectorized.

    >>> import numpy as np
    >>> sample_actions(np.array([[0.0, 1.0], [1.0, 0.0]]), np.random.default_rng(0)).tolist()
    [1, 0]
    """
    cdf = np.cumsum(pi_rows, axis=1)
    u = rng.random(pi_rows.shape[0]) * cdf[:, -1]
    idx = (cdf > u[:, None]).argmax(axis=1)
    return idx.astype(np.intp)


class Replay(Estimator):
    """Rejection-sampling replay estimator (needs a Generator: it draws the target's actions)."""

    name = "replay"
    needs_rng = True

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        assert rng is not None
        choice = sample_actions(pi_rows, rng)
        accept_p = data.propensities.min() / data.propensities
        keep = (choice == data.actions) & (rng.random(data.n_rounds) < accept_p)
        r = data.rewards[keep]
        m = r.shape[0]
        value = float(r.mean()) if m else float("nan")
        binary = bool(np.isin(r, (0.0, 1.0)).all())
        wilson = (lambda level: wilson_interval(float(r.sum()), m, level)) if binary else None
        return Terms(value, r - value if m else r, lambda c: c @ r / m, float(m),
                     n_events=int(np.count_nonzero(r)), normal=wilson)
