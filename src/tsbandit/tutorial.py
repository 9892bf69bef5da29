"""The tutorial's API, so its readers feel at home — built on :class:`~tsbandit.bandit.Bandit`.

``ThompsonSamplingBandit`` (Beta-Bernoulli), ``ContextualThompsonSampling`` (Bayesian linear
regression per arm, with the tutorial's mean-update bug fixed), and the two non-stationary
variants of its Exercise 1: ``DiscountedThompsonSampling`` and ``SlidingWindowThompsonSampling``.

>>> bandit = ThompsonSamplingBandit(["cashback_grocery_2pct", "travel_miles_3x"], seed=42)
>>> offer, posteriors = bandit.recommend()
>>> bandit.update(offer, reward=1)
>>> bandit.arms[offer].total_pulls
1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .bandit import Bandit
from .policies.beta import BetaBernoulli
from .policies.linear import LinearGaussian
from .policies.rules import ThompsonSampling

__all__ = [
    "ArmView",
    "ContextualThompsonSampling",
    "DiscountedThompsonSampling",
    "LinearArmView",
    "SlidingWindowThompsonSampling",
    "ThompsonSamplingBandit",
]

Seed = int | np.random.SeedSequence | np.random.Generator | None


class ArmView:
    """Read-only view of one Beta arm, with the tutorial's attribute names."""

    def __init__(self, bandit: Bandit, name: str) -> None:
        self._bandit = bandit
        self.name = name

    @property
    def _i(self) -> int:
        return self._bandit.arm_index(self.name)

    @property
    def alpha(self) -> float:
        """Posterior alpha = prior alpha + successes."""
        return float(self._bandit.posterior.alpha[self._i])

    @property
    def beta(self) -> float:
        """Posterior beta = prior beta + failures."""
        return float(self._bandit.posterior.beta[self._i])

    @property
    def mean_reward(self) -> float:
        """Posterior mean ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def total_pulls(self) -> int:
        """Number of rewards recorded for this arm (rounded weighted count)."""
        return round(float(self._bandit.model.counts(self._bandit.stats)[self._i]))

    @property
    def total_rewards(self) -> int:
        """Number of successes recorded for this arm."""
        return round(float(self._bandit.model.reward_sums(self._bandit.stats)[self._i]))

    def __repr__(self) -> str:
        return (f"Arm({self.name!r}: α={self.alpha:.1f}, β={self.beta:.1f}, "
                f"mean={self.mean_reward:.3f}, pulls={self.total_pulls})")


class _ArmMapping(Mapping[str, Any]):
    def __init__(self, bandit: Bandit, view: type) -> None:
        self._bandit = bandit
        self._view = view

    def __getitem__(self, name: str) -> Any:
        self._bandit.arm_index(name)  # UnknownArmError for unknown names
        return self._view(self._bandit, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._bandit.arms)

    def __len__(self) -> int:
        return self._bandit.n_arms


class ThompsonSamplingBandit:
    """Beta-Bernoulli Thompson sampling over named arms (the tutorial's Part 5 class).

    Parameters
    ----------
    arm_names
        Names of the offers / items.
    prior_alpha, prior_beta
        Beta prior of every arm.
    seed
        Seed or Generator (``None`` = fresh entropy).
    """

    def __init__(self, arm_names: Sequence[str], prior_alpha: float = 1.0,
                 prior_beta: float = 1.0, seed: Seed = None, **bandit_kwargs: Any) -> None:
        self.bandit = Bandit(arm_names, BetaBernoulli(prior_alpha, prior_beta),
                             ThompsonSampling(), seed=seed, **bandit_kwargs)
        self.arms: Mapping[str, ArmView] = _ArmMapping(self.bandit, ArmView)

    def select_arm(self) -> str:
        """Draw one sample per arm from its posterior; return the arm with the highest."""
        return self.bandit.select().arm

    def update(self, arm_name: str, reward: int | float) -> None:
        """Record a 0/1 outcome for ``arm_name``."""
        self.bandit.update(arm_name, reward)

    def recommend(self) -> tuple[str, dict[str, float]]:
        """``(selected_arm, {arm: posterior_mean})`` — the tutorial's main interface."""
        return self.select_arm(), self.bandit.posterior_mean()

    @property
    def total_decisions(self) -> int:
        """Number of rewards recorded."""
        return self.bandit.n_updates

    def summary(self) -> str:
        """The tutorial's summary table, returned as a string (print it yourself)."""
        lines = [f"{'Arm':<30} {'α':>6} {'β':>6} {'Mean':>7} {'Pulls':>7} {'Rewards':>9} "
                 f"{'Rate':>7}", "-" * 78]
        for name in self.bandit.arms:
            a = self.arms[name]
            rate = a.total_rewards / a.total_pulls if a.total_pulls else 0.0
            lines.append(f"{name:<30} {a.alpha:>6.1f} {a.beta:>6.1f} {a.mean_reward:>7.3f} "
                         f"{a.total_pulls:>7} {a.total_rewards:>9} {rate:>7.3f}")
        lines.append("")
        lines.append(f"Total decisions: {self.total_decisions}")
        return "\n".join(lines)


class DiscountedThompsonSampling(ThompsonSamplingBandit):
    """Beta Thompson sampling that forgets: statistics times ``gamma`` before each update."""

    def __init__(self, arm_names: Sequence[str], gamma: float = 0.99, prior_alpha: float = 1.0,
                 prior_beta: float = 1.0, seed: Seed = None) -> None:
        super().__init__(arm_names, prior_alpha, prior_beta, seed, discount=gamma)


class SlidingWindowThompsonSampling(ThompsonSamplingBandit):
    """Beta Thompson sampling on the last ``window_size`` observations only (Exercise 1)."""

    def __init__(self, arm_names: Sequence[str], window_size: int = 500,
                 prior_alpha: float = 1.0, prior_beta: float = 1.0, seed: Seed = None) -> None:
        super().__init__(arm_names, prior_alpha, prior_beta, seed, window=window_size)


class LinearArmView:
    """Read-only view of one linear arm: ``mu`` (posterior mean weights), ``expected_reward``."""

    def __init__(self, bandit: Bandit, name: str) -> None:
        self._bandit = bandit
        self.name = name

    @property
    def mu(self) -> np.ndarray:
        """Posterior mean of the weights, ``(d,)`` (a copy)."""
        return np.array(self._bandit.posterior.mean[self._bandit.arm_index(self.name)])

    def expected_reward(self, context: Any) -> float:
        """Posterior mean prediction ``x^T mu`` for this context."""
        return self._bandit.posterior_mean(context)[self.name]


class ContextualThompsonSampling:
    """Contextual Thompson sampling with one Bayesian linear regression per arm (Part 7).

    Unlike the tutorial's class it never inverts a matrix, updates in O(d^2), and its mean update
    is correct (after a reward of 0 for context ``x`` the prediction for ``x`` does not rise).
    """

    def __init__(self, arm_names: Sequence[str], n_features: int, prior_variance: float = 1.0,
                 noise_variance: float = 0.1, seed: Seed = None, **model_kwargs: Any) -> None:
        from .policies.base import check_positive

        pv = check_positive("prior_variance", prior_variance)
        model = LinearGaussian(n_features=n_features, prior_precision=1.0 / pv,
                               noise_variance=noise_variance, **model_kwargs)
        self.bandit = Bandit(arm_names, model, ThompsonSampling(), seed=seed)
        self.arm_names = list(arm_names)
        self.arms: Mapping[str, LinearArmView] = _ArmMapping(self.bandit, LinearArmView)

    def select_arm(self, context: Any) -> str:
        """Sample each arm's expected reward for ``context``; return the highest."""
        return self.bandit.select(context).arm

    def update(self, arm_name: str, context: Any, reward: float) -> None:
        """Update the chosen arm's posterior with the observed reward."""
        self.bandit.update(arm_name, reward, context)
