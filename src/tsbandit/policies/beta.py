"""Beta-Bernoulli: binary rewards (click, apply, convert) with a conjugate Beta prior.

Statistics per arm: ``successes`` and ``failures`` (weighted counts). The posterior of arm ``a``
is ``Beta(alpha0 + s_a, beta0 + f_a)``; the prior is configuration and never enters the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import add, truediv
from typing import Any

import numpy as np

from .._scipy import betainc, betaincinv
from ..errors import InvalidRewardError
from . import _jit
from .base import BETA_SHAPE_MIN, PRIOR_MAX, RewardModel, check_in_range
from .stats import Stats

__all__ = ["BetaBernoulli", "BetaPosterior"]


class BetaPosterior:
    """Posterior ``Beta(alpha, beta)`` per arm, each ``(*batch, K)``.

    Both are kept in one array ``params`` ``(2, *batch, K)`` so that a draw makes a single call
    to the gamma sampler; ``alpha`` and ``beta`` are views into it.
    """

    __slots__ = ("params", "scratch")

    def __init__(self, alpha: np.ndarray, beta: np.ndarray) -> None:
        self.params = np.stack(np.broadcast_arrays(np.asarray(alpha, dtype=np.float64),
                                                   np.asarray(beta, dtype=np.float64)))
        #: ``(params it was made for, (K,) buffer)``: the compiled draw's output, kept between
        #: decisions once ``params`` passed the kernel's layout checks
        self.scratch: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_params(cls, params: np.ndarray) -> BetaPosterior:
        """Wrap an existing ``(2, *batch, K)`` array without copying."""
        obj = cls.__new__(cls)
        obj.params = params
        obj.scratch = None
        return obj

    @property
    def alpha(self) -> np.ndarray:
        """``alpha0 + successes``, ``(*batch, K)`` (a view)."""
        return self.params[0]

    @property
    def beta(self) -> np.ndarray:
        """``beta0 + failures``, ``(*batch, K)`` (a view)."""
        return self.params[1]


def _scatter(target: np.ndarray, batch_index: np.ndarray | None, arms: np.ndarray,
             values: np.ndarray) -> None:
    """``target[batch, arm] += values`` with repeated indices summed (shared by the models)."""
    if batch_index is None:
        if arms.shape[0] == 1:
            target[arms[0]] += values[0]
        else:
            np.add.at(target, arms, values)
    elif batch_index.shape[0] < 2 or bool(np.all(batch_index[1:] > batch_index[:-1])):
        # strictly increasing batch index: every (batch, arm) cell is distinct, and buffered
        # fancy-index addition is exact and far faster than np.add.at (the lab's hot path)
        target[batch_index, arms] += values
    else:
        np.add.at(target, (batch_index, arms), values)


@dataclass(frozen=True)
class BetaBernoulli(RewardModel):
    """Beta-Bernoulli reward model.

    Parameters
    ----------
    alpha0, beta0
        Prior pseudo-successes and pseudo-failures (``Beta(1, 1)`` is uniform), each between
        ``0.05`` and ``1e6`` (:data:`~.base.BETA_SHAPE_MIN`, :data:`~.base.PRIOR_MAX`): below
        0.05 a Thompson draw can be ``0/0`` (both gamma draws underflow).

    Examples
    --------
    >>> import numpy as np
    >>> m = BetaBernoulli(alpha0=1.0, beta0=1.0)
    >>> s = m.init_stats(2)
    >>> m.accumulate(s, np.array([0, 0, 1]), np.array([1.0, 1.0, 0.0]))
    >>> m.mean(m.posterior(s)).round(3).tolist()
    [0.75, 0.333]
    """

    alpha0: float = 1.0
    beta0: float = 1.0

    kind = "beta"

    def __post_init__(self) -> None:
        for name in ("alpha0", "beta0"):
            object.__setattr__(self, name,
                               check_in_range(name, getattr(self, name), BETA_SHAPE_MIN,
                                              PRIOR_MAX))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha0": self.alpha0, "beta0": self.beta0}

    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        shape = (*batch_shape, n_arms)
        return Stats({"successes": np.zeros(shape), "failures": np.zeros(shape)},
                     len(batch_shape))

    def check_reward(self, reward: Any) -> float:
        r = RewardModel.check_reward(self, reward)
        if r != 0.0 and r != 1.0:
            raise InvalidRewardError(
                f"reward {r!r} is not binary; this model takes rewards 0 or 1"
            )
        return r

    def check_rewards(self, rewards: Any) -> np.ndarray:
        r = RewardModel.check_rewards(self, rewards)
        bad = (r != 0.0) & (r != 1.0)
        if bad.any():
            raise InvalidRewardError(
                f"reward {r[bad].ravel()[0]!r} is not binary; this model takes rewards 0 or 1"
            )
        return r

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        if weights is None and batch_index is None and arms.shape[0] == 1:
            # one observation: two scalar additions (the online hot path)
            r = float(rewards[0])
            stats["successes"][arms[0]] += r
            stats["failures"][arms[0]] += 1.0 - r
            return
        w = np.ones_like(rewards) if weights is None else weights
        _scatter(stats["successes"], batch_index, arms, w * rewards)
        _scatter(stats["failures"], batch_index, arms, w * (1.0 - rewards))

    def observe_one(self, stats: Stats, posterior: BetaPosterior, arm: int, reward: float,
                    context: np.ndarray | None = None) -> BetaPosterior:
        # accumulate's one-observation path and update_posterior, fused
        s, f = stats["successes"], stats["failures"]
        s[arm] += reward
        f[arm] += 1.0 - reward
        p = posterior.params
        if p.ndim != 2:
            return self.posterior(stats)
        p[0, arm] = self.alpha0 + s[arm]
        p[1, arm] = self.beta0 + f[arm]
        return posterior

    def lanes(self, n_lanes: int, n_arms: int) -> Any:
        """The batched state of ``n_lanes`` lanes (:class:`~.beta_lanes.BetaLanes`, with the
        counts UCB1 scores from), or ``None`` for a subclass (whose draws may differ)."""
        if type(self) is not BetaBernoulli:
            return None
        from .beta_lanes import BetaLanes

        return BetaLanes([self], n_lanes, n_arms, counts=True)

    def counts(self, stats: Stats) -> np.ndarray:
        return stats["successes"] + stats["failures"]

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return stats["successes"].copy()

    def posterior(self, stats: Stats) -> BetaPosterior:
        return BetaPosterior.from_params(np.stack([self.alpha0 + stats["successes"],
                                                   self.beta0 + stats["failures"]]))

    def update_posterior(self, posterior: BetaPosterior, stats: Stats, arm: int, reward: float,
                         context: np.ndarray | None = None) -> BetaPosterior:
        if posterior.params.ndim != 2:
            return self.posterior(stats)
        posterior.params[0, arm] = self.alpha0 + stats["successes"][arm]
        posterior.params[1, arm] = self.beta0 + stats["failures"][arm]
        return posterior

    def mean(self, posterior: BetaPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        a, b = posterior.alpha, posterior.beta
        return a / (a + b)

    def std(self, posterior: BetaPosterior, contexts: np.ndarray | None = None) -> np.ndarray:
        a, b = posterior.alpha, posterior.beta
        n = a + b
        return np.sqrt(a * b / (n * n * (n + 1.0)))

    def sample(self, posterior: BetaPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        # Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b): one call to the gamma sampler
        # costs less than rng.beta's per-call parameter checks for small K.
        ab = posterior.params
        if size is not None:
            ab = np.broadcast_to(ab[:, None], (2, size, *ab.shape[1:]))
        g = rng.standard_gamma(ab)
        return g[0] / (g[0] + g[1])

    def sample_one(self, posterior: BetaPosterior, rng: np.random.Generator,
                   context: np.ndarray | None = None) -> list[float] | None:
        if posterior.params.ndim != 2:
            return None
        # the same single gamma call as ``sample``; X / (X + Y) in Python floats is the same
        # IEEE arithmetic numpy does (0 / 0, possible for tiny priors, is NaN there too)
        xs, ys = rng.standard_gamma(posterior.params).tolist()
        try:
            return list(map(truediv, xs, map(add, xs, ys)))
        except ZeroDivisionError:
            return [x / s if (s := x + y) else math.nan for x, y in zip(xs, ys, strict=True)]

    def sample_argmax_one(self, posterior: BetaPosterior, rng: np.random.Generator,
                          context: np.ndarray | None = None) -> int | list[float] | None:
        jit = _jit.kernels()
        if (jit is None or jit.beta_argmax is None
                or type(self).sample_one is not BetaBernoulli.sample_one):  # a subclass's draw
            return self.sample_one(posterior, rng, context)
        p = posterior.params
        scratch = posterior.scratch
        if scratch is None or scratch[0] is not p:
            if p.ndim != 2 or p.dtype != np.float64 or not p.flags.c_contiguous:
                return self.sample_one(posterior, rng, context)
            scratch = posterior.scratch = (p, np.empty(p.shape[1]))
        out = scratch[1]
        # the compiled kernel: the same gamma draws from the same generator, the same division
        bg, addr = jit.addresses(rng)
        with bg.lock:  # as NumPy's own samplers hold it
            i: int = jit.beta_argmax(p, out, addr)
        return i if i >= 0 else out.tolist()

    def draw_log_density(self, posterior: BetaPosterior, draws: np.ndarray,
                         memo: dict[str, np.ndarray] | None = None) -> np.ndarray:
        # Beta(a, b) log pdf; log B(a, b) from math.lgamma on the K arms (no SciPy import)
        memo = {} if memo is None else memo
        if "log_x" not in memo:
            with np.errstate(divide="ignore"):  # a draw of exactly 0 or 1: -inf
                memo["log_x"], memo["log_1mx"] = np.log(draws), np.log1p(-draws)
        a, b = posterior.alpha, posterior.beta
        log_norm = np.array([math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
                             for x, y in zip(a.tolist(), b.tolist(), strict=True)])
        with np.errstate(invalid="ignore"):  # 0 * -inf (a prior of exactly 1): NaN, refused
            return (a - 1.0) * memo["log_x"] + (b - 1.0) * memo["log_1mx"] - log_norm

    def interval(self, posterior: BetaPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = (1.0 - level) / 2.0
        a, b = posterior.alpha, posterior.beta
        return _beta_quantile(a, b, q), _beta_quantile(a, b, 1.0 - q)


def _beta_quantile(a: np.ndarray, b: np.ndarray, q: float) -> np.ndarray:
    """``betaincinv(a, b, q)``, with the entries where it fails (NaN: SciPy's inverse gives up
    for ``a`` just above 1, ``b`` tiny and ``q`` within 1e-16 of 0) found by bisection on the
    regularized incomplete beta function instead (80 halvings: within 1e-24 of the quantile)."""
    x = np.asarray(betaincinv(a, b, q))
    bad = np.isnan(x)
    if not bad.any():
        return x
    aa, bb = np.broadcast_to(a, x.shape)[bad], np.broadcast_to(b, x.shape)[bad]
    lo, hi = np.zeros(aa.shape), np.ones(aa.shape)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = betainc(aa, bb, mid) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    x = x.copy()
    x[bad] = 0.5 * (lo + hi)
    return x
