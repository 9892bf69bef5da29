"""Per-arm posteriors of an experiment: binary (Beta-Bernoulli) and real-valued (Normal).

An experiment's data are additive statistics per arm, exactly as in a bandit: successes and
trials for a conversion metric; ``n``, ``sum`` and ``sum of squares`` for revenue. The two
classes here turn them into posteriors (with the priors of :mod:`tsbandit.policies`) and offer
what the A/B functions need: the marginal of each arm's mean, joint Monte-Carlo draws, and the
exact two-arm probability ``P(arm j beats arm i)``.

Examples
--------
>>> post = BinaryPosteriors.from_counts([120, 150], [1000, 1000], names=["A", "B"])
>>> round(post.prob_greater(0, 1), 4)
0.9751
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import ConfigurationError
from ..policies import BetaBernoulli, NIGPosterior, NormalInverseGamma, Stats
from ._marginals import BetaMarginal, Marginal, StudentTMarginal, beta_prob_greater_sum
from ._marginals import prob_greater_quad as _prob_greater_quad

__all__ = [
    "DEFAULT_NORMAL_PRIOR",
    "ArmPosteriors",
    "BinaryPosteriors",
    "NormalPosteriors",
    "posteriors_from_model",
]

#: Nearly non-informative Normal-Inverse-Gamma prior for experiment metrics: the mean is shrunk
#: by one millionth of an observation and the variance prior adds 1e-6 to the sum of squares.
DEFAULT_NORMAL_PRIOR = NormalInverseGamma(mu0=0.0, kappa0=1e-6, alpha0=1.0, beta0=1e-6)


class ArmPosteriors(Protocol):
    """What the experiment functions need from the posteriors of ``K`` arms."""

    @property
    def names(self) -> tuple[str, ...]:
        """Arm names, ``K`` of them."""
        ...

    @property
    def kind(self) -> str:
        """``"binary"`` or ``"normal"``."""
        ...

    @property
    def n_arms(self) -> int: ...

    def counts(self) -> np.ndarray:
        """Observations per arm, ``(K,)``."""
        ...

    def means(self) -> np.ndarray:
        """Posterior mean of each arm's metric, ``(K,)``."""
        ...

    def intervals(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of each arm's metric, two ``(K,)`` arrays."""
        ...

    def marginal(self, k: int) -> Marginal:
        """Posterior marginal of arm ``k``'s mean."""
        ...

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent posterior draws of every arm's mean, ``(size, K)``."""
        ...

    def prob_greater(self, i: int, j: int) -> float:
        """Exact ``P(mean_j > mean_i)``."""
        ...


def _names(names: Sequence[str] | None, k: int) -> tuple[str, ...]:
    if names is None:
        return tuple(chr(ord("A") + i) if k <= 26 else f"arm{i}" for i in range(k))
    out = tuple(str(n) for n in names)
    if len(out) != k:
        raise ConfigurationError(f"got {len(out)} arm names for {k} arms")
    if len(set(out)) != k or any(not n for n in out):
        raise ConfigurationError(f"arm names must be unique and non-empty, got {list(out)}")
    return out


def _vector(name: str, values: Any, k: int | None = None) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if v.ndim != 1 or v.size == 0:
        raise ConfigurationError(f"{name} must be a non-empty 1-d sequence, got shape {v.shape}")
    if k is not None and v.size != k:
        raise ConfigurationError(f"{name} has {v.size} values for {k} arms")
    if not np.isfinite(v).all():
        raise ConfigurationError(f"{name} contains NaN or infinite values: {v.tolist()}")
    return v


@dataclass(frozen=True, eq=False)
class BinaryPosteriors:
    """Beta posteriors of ``K`` conversion rates: ``Beta(alpha0 + s_k, beta0 + n_k - s_k)``.

    Parameters
    ----------
    names
        Arm names, ``K`` of them.
    successes, trials
        ``(K,)`` counts (weighted counts may be fractional); ``0 <= successes <= trials``.
    prior
        The Beta prior (``Beta(1, 1)`` by default).
    """

    names: tuple[str, ...]
    successes: np.ndarray
    trials: np.ndarray
    prior: BetaBernoulli = field(default_factory=BetaBernoulli)
    kind: ClassVar[str] = "binary"

    @classmethod
    def from_counts(cls, successes: Sequence[float] | np.ndarray,
                    trials: Sequence[float] | np.ndarray, names: Sequence[str] | None = None,
                    prior: BetaBernoulli | None = None) -> BinaryPosteriors:
        """Validate counts and build the posteriors.

        Raises :class:`~tsbandit.errors.ConfigurationError` naming the arm for negative counts
        or ``successes > trials``.
        """
        s = _vector("successes", successes)
        n = _vector("trials", trials, s.size)
        labels = _names(names, s.size)
        for k, label in enumerate(labels):
            if s[k] < 0 or n[k] < 0:
                raise ConfigurationError(
                    f"arm {label!r}: counts must be >= 0, got successes={s[k]:g}, "
                    f"trials={n[k]:g}")
            if s[k] > n[k]:
                raise ConfigurationError(
                    f"arm {label!r}: successes == {s[k]:g} exceeds trials == {n[k]:g}")
        return cls(labels, s, n, prior if prior is not None else BetaBernoulli())

    @classmethod
    def from_stats(cls, model: BetaBernoulli, stats: Stats,
                   names: Sequence[str] | None = None) -> BinaryPosteriors:
        """From a bandit's Beta-Bernoulli statistics (``successes``, ``failures``)."""
        s, f = stats["successes"], stats["failures"]
        return cls.from_counts(s, s + f, names, model)

    @property
    def n_arms(self) -> int:
        return int(self.successes.size)

    @property
    def alpha(self) -> np.ndarray:
        return self.prior.alpha0 + self.successes

    @property
    def beta(self) -> np.ndarray:
        return self.prior.beta0 + self.trials - self.successes

    def counts(self) -> np.ndarray:
        return self.trials.copy()

    def means(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def intervals(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        from ..policies import BetaPosterior

        return self.prior.interval(BetaPosterior(self.alpha, self.beta), level)

    def marginal(self, k: int) -> BetaMarginal:
        return BetaMarginal(float(self.alpha[k]), float(self.beta[k]))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        ab = np.stack([self.alpha, self.beta])[:, None, :]
        g = rng.standard_gamma(np.broadcast_to(ab, (2, size, self.n_arms)))
        return g[0] / (g[0] + g[1])

    def prob_greater(self, i: int, j: int) -> float:
        """``P(p_j > p_i)``: Evan Miller's closed form when a Beta parameter is an integer,
        otherwise quadrature over the incomplete beta function."""
        a1, b1 = float(self.alpha[i]), float(self.beta[i])
        a2, b2 = float(self.alpha[j]), float(self.beta[j])
        exact = beta_prob_greater_sum(a1, b1, a2, b2)
        return exact if exact is not None else _prob_greater_quad(self.marginal(i),
                                                                  self.marginal(j))


@dataclass(frozen=True, eq=False)
class NormalPosteriors:
    """Normal-Inverse-Gamma posteriors of ``K`` real-valued metrics (revenue per user).

    The posterior of each arm's mean is Student-t with ``2 alpha_n`` degrees of freedom (see
    :class:`tsbandit.policies.NormalInverseGamma`).
    """

    names: tuple[str, ...]
    n: np.ndarray
    sum_r: np.ndarray
    sum_r2: np.ndarray
    prior: NormalInverseGamma = DEFAULT_NORMAL_PRIOR
    kind: ClassVar[str] = "normal"

    @classmethod
    def from_stats(cls, n: Sequence[float] | np.ndarray, sum_r: Sequence[float] | np.ndarray,
                   sum_r2: Sequence[float] | np.ndarray, names: Sequence[str] | None = None,
                   prior: NormalInverseGamma | None = None) -> NormalPosteriors:
        """From sufficient statistics ``n``, ``sum r`` and ``sum r^2`` per arm."""
        nn = _vector("n", n)
        s1 = _vector("sum_r", sum_r, nn.size)
        s2 = _vector("sum_r2", sum_r2, nn.size)
        labels = _names(names, nn.size)
        for k, label in enumerate(labels):
            if nn[k] < 0:
                raise ConfigurationError(f"arm {label!r}: n == {nn[k]:g}, must be >= 0")
            if s2[k] < 0 or s1[k] ** 2 > s2[k] * nn[k] * (1 + 1e-9) + 1e-12:
                raise ConfigurationError(
                    f"arm {label!r}: sum_r2 == {s2[k]:g} is impossible for n == {nn[k]:g} and "
                    f"sum_r == {s1[k]:g} (needs sum_r^2 <= n * sum_r2)")
        return cls(labels, nn, s1, s2, prior if prior is not None else DEFAULT_NORMAL_PRIOR)

    @classmethod
    def from_summary(cls, n: Sequence[float], mean: Sequence[float], sd: Sequence[float],
                     names: Sequence[str] | None = None,
                     prior: NormalInverseGamma | None = None) -> NormalPosteriors:
        """From per-arm sample size, sample mean and sample standard deviation (``ddof=1``)."""
        nn = _vector("n", n)
        m = _vector("mean", mean, nn.size)
        s = _vector("sd", sd, nn.size)
        if (s < 0).any():
            raise ConfigurationError(f"sd must be >= 0, got {s.tolist()}")
        if (nn < 0).any():
            raise ConfigurationError(f"n must be >= 0, got {nn.tolist()}")
        s2 = np.maximum(nn - 1.0, 0.0) * s * s + nn * m * m
        return cls.from_stats(nn, nn * m, s2, names, prior)

    @classmethod
    def from_samples(cls, samples: Sequence[Sequence[float] | np.ndarray],
                     names: Sequence[str] | None = None,
                     prior: NormalInverseGamma | None = None) -> NormalPosteriors:
        """From raw observations, one sequence per arm."""
        arrs = [np.asarray(x, dtype=np.float64).ravel() for x in samples]
        for k, a in enumerate(arrs):
            if not np.isfinite(a).all():
                raise ConfigurationError(f"arm {k}: observations contain NaN or infinite values")
        return cls.from_stats([a.size for a in arrs], [a.sum() for a in arrs],
                              [(a * a).sum() for a in arrs], names, prior)

    @classmethod
    def from_model(cls, model: NormalInverseGamma, stats: Stats,
                   names: Sequence[str] | None = None) -> NormalPosteriors:
        """From a bandit's Normal statistics (``n``, ``sum_r``, ``sum_r2``)."""
        return cls.from_stats(stats["n"], stats["sum_r"], stats["sum_r2"], names, model)

    @property
    def n_arms(self) -> int:
        return int(self.n.size)

    def _posterior(self) -> NIGPosterior:
        return self.prior.posterior(Stats({"n": self.n, "sum_r": self.sum_r,
                                           "sum_r2": self.sum_r2}))

    def counts(self) -> np.ndarray:
        return self.n.copy()

    def means(self) -> np.ndarray:
        return self._posterior().mu.copy()

    def intervals(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        return self.prior.interval(self._posterior(), level)

    def marginal(self, k: int) -> StudentTMarginal:
        p = self._posterior()
        return StudentTMarginal(float(2.0 * p.alpha[k]), float(p.mu[k]), float(p.scale[k]))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.prior.sample(self._posterior(), rng, size=size)

    def prob_greater(self, i: int, j: int) -> float:
        """``P(mu_j > mu_i)`` by quadrature over the Student-t marginals."""
        return _prob_greater_quad(self.marginal(i), self.marginal(j))


def posteriors_from_model(model: BetaBernoulli | NormalInverseGamma, stats: Stats,
                          names: Sequence[str] | None = None) -> ArmPosteriors:
    """Experiment posteriors for a bandit's model and statistics (for the service's report).

    Raises :class:`~tsbandit.errors.ConfigurationError` for models without an experiment
    analysis (contextual models).
    """
    builders = {"beta": BinaryPosteriors.from_stats, "gaussian": NormalPosteriors.from_model}
    kind = getattr(model, "kind", None)
    if kind not in builders:
        raise ConfigurationError(
            f"no experiment report for reward model kind {kind!r}; supported: {sorted(builders)}")
    return builders[kind](model, stats, names)  # type: ignore[operator]
