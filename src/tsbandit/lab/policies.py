"""Policies the lab can run, and their short names (``tsbandit simulate --policies ts,ucb1``).

A :class:`PolicySpec` is a reward model plus a selection rule from :mod:`tsbandit.policies`
(optionally with a sliding window or discounting): exactly what a user would deploy. The lab
adds one special policy, :class:`TutorialLinearSpec`, the tutorial's Part 7 class as printed.

Names are resolved against an environment (:func:`make_policy`) because contextual models need
the context dimension.

>>> from tsbandit.lab.environments import BernoulliArms
>>> make_policy("ts", BernoulliArms([0.1, 0.2])).rule
ThompsonSampling(scale=0.25)
>>> make_policy("ts-classic", BernoulliArms([0.1, 0.2])).rule
ThompsonSampling(scale=1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies import (
    UCB1,
    BetaBernoulli,
    BinnedBeta,
    EpsilonGreedy,
    Greedy,
    HierarchicalLinear,
    LinearGaussian,
    LinUCB,
    LogisticLaplace,
    RandomPolicy,
    Softmax,
    ThompsonSampling,
)
from ..policies.base import RewardModel
from ..policies.rules import SelectionRule
from .environments import Environment
from .learners import Learner, ModelLearner
from .tutorial import TutorialLinearLearner

__all__ = [
    "DEFAULT_SCALE",
    "POLICY_HELP",
    "PolicySpec",
    "TutorialLinearSpec",
    "available_policies",
    "default_contextual_model",
    "default_contextual_policy",
    "default_policy",
    "make_policy",
]


@dataclass(frozen=True)
class PolicySpec:
    """A policy to simulate: a reward model, a selection rule and how it forgets.

    Parameters
    ----------
    name
        Label in tables, plots and ``results.json``.
    model, rule
        From :mod:`tsbandit.policies`.
    window
        Keep only each trial's last ``window`` observations (sliding-window Thompson sampling).
    discount
        Multiply the statistics by ``discount`` before each observation (discounted TS).
    description
        One line for reports.
    """

    name: str
    model: RewardModel
    rule: SelectionRule
    window: int | None = None
    discount: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError(f"policy name == {self.name!r}, must be a non-empty string")
        if self.window is not None and (isinstance(self.window, bool) or self.window < 1):
            raise ConfigurationError(f"window == {self.window!r}, must be an integer >= 1")
        if self.discount is not None and not (0.0 < self.discount <= 1.0):
            raise ConfigurationError(f"discount == {self.discount!r}, must be > 0 and <= 1")
        if self.window is not None and self.discount is not None:
            raise ConfigurationError("use either window or discount, not both")

    @property
    def contextual(self) -> bool:
        """True when the policy uses the context."""
        return self.model.contextual

    @property
    def n_features(self) -> int | None:
        """Context dimension the policy expects."""
        return self.model.n_features

    def make_learner(self, n_trials: int, n_arms: int, rng: np.random.Generator) -> Learner:
        """The generic (model API) learner for ``n_trials`` lanes."""
        return ModelLearner(self.model, self.rule, n_trials, n_arms, rng, self.window,
                            self.discount)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe configuration."""
        return {"model": self.model.to_config(), "rule": self.rule.to_config(),
                "window": self.window, "discount": self.discount}


@dataclass(frozen=True)
class TutorialLinearSpec:
    """The tutorial's contextual class (Part 7) as printed, or with its mean update fixed."""

    name: str
    n_features: int
    prior_variance: float = 2.0
    noise_variance: float = 0.05
    fixed: bool = False
    description: str = field(default="")

    contextual = True

    def make_learner(self, n_trials: int, n_arms: int, rng: np.random.Generator) -> Learner:
        return TutorialLinearLearner(self.n_features, self.prior_variance, self.noise_variance,
                                     n_trials, n_arms, rng, fixed=self.fixed)

    def to_config(self) -> dict[str, Any]:
        return {"model": {"kind": "tutorial-linear", "n_features": self.n_features,
                          "prior_variance": self.prior_variance,
                          "noise_variance": self.noise_variance, "fixed": self.fixed},
                "rule": {"kind": "thompson"}, "window": None, "discount": None}


Policy = PolicySpec | TutorialLinearSpec


#: posterior standard-deviation multiplier of the default contextual sampler
DEFAULT_SCALE = 0.25


def default_contextual_model(n_features: int) -> RewardModel:
    """The model behind our default contextual Thompson sampler (``ts`` in contextual worlds).

    Bayesian logistic regression per arm (Laplace approximation), prior precision 3 (prior sd
    0.58 per weight on the logit scale):
    the right likelihood for 0/1 rewards, so no noise variance to guess. It is used with
    ``ThompsonSampling(scale=DEFAULT_SCALE)`` (see :func:`default_contextual_policy`).
    """
    return LogisticLaplace(n_features=n_features, prior_precision=3.0)


def default_contextual_policy(name: str, n_features: int) -> PolicySpec:
    """Our default contextual Thompson sampler: logistic model, posterior scale 0.25."""
    return PolicySpec(name, default_contextual_model(n_features),
                      ThompsonSampling(scale=DEFAULT_SCALE))


def default_policy(name: str) -> PolicySpec:
    """Our default context-free Thompson sampler (``ts`` in context-free worlds).

    Beta(1, 1) priors with the same rule as the contextual default,
    ``ThompsonSampling(scale=DEFAULT_SCALE)``: each draw is ``mean + 0.25 (draw - mean)``, so
    the sampler still explores in proportion to its uncertainty but spends less on arms it has
    nearly ruled out. That pays at the horizons the lab simulates (thousands of rounds with
    rates of a few percent, where classic Thompson sampling is still far from its asymptotic
    regime) and costs robustness over very long runs: a sharpened posterior can leave an
    unlucky best arm unexplored for a long time (docs/lab.md gives both sides, measured).
    ``ts-classic`` is the untempered sampler.
    """
    return PolicySpec(name, BetaBernoulli(), ThompsonSampling(scale=DEFAULT_SCALE))


def _nig(d: int) -> LinearGaussian:
    return LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25,
                          unknown_noise=True, noise_a0=1.0)


def _ridge(env: Environment, name: str, noise_variance: float) -> LinearGaussian:
    """Per-arm ridge regression (prior precision 1) with a known noise variance."""
    return LinearGaussian(n_features=_d(env, name), prior_precision=1.0,
                          noise_variance=noise_variance)


def _shared(d: int) -> HierarchicalLinear:
    """The shared-weights linear model of ``shared-ts`` (raw context, no feature map)."""
    return HierarchicalLinear(n_features=d, shared_precision=1.0, offset_precision=4.0,
                              noise_variance=0.1)


def _binned(d: int) -> BinnedBeta:
    """The per-cell Beta model of ``cells-ts`` (grid 0.25, 64 hashed cells, Beta(1, 3))."""
    return BinnedBeta(n_features=d, n_cells=64, cell_width=0.25, alpha0=1.0, beta0=3.0)


def _d(env: Environment, name: str) -> int:
    d = env.n_features
    if d is None:
        raise ConfigurationError(
            f"policy {name!r} needs contexts; this environment ({env.name}) has none")
    return d


_Factory = Callable[[Environment, str], Policy]

_CONTEXT_FREE: dict[str, tuple[str, _Factory]] = {
    "ts": ("our default Thompson sampler: Beta(1, 1) priors, posterior scale 0.25 (the "
           "contextual default's rule)",
           lambda env, n: default_policy(n)),
    "ts-classic": ("classic Thompson sampling, Beta(1, 1) priors (the tutorial's Part 6 "
                   "sampler)",
                   lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling())),
    "ts-jeffreys": ("classic Thompson sampling with Jeffreys priors Beta(0.5, 0.5)",
                    lambda env, n: PolicySpec(n, BetaBernoulli(0.5, 0.5), ThompsonSampling())),
    "ts-tempered": ("Thompson sampling with posterior scale 0.5 (draw = mean + 0.5 (draw - "
                    "mean))",
                    lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling(scale=0.5))),
    "ucb1": ("UCB1: mean + sqrt(2 ln t / n)",
             lambda env, n: PolicySpec(n, BetaBernoulli(), UCB1())),
    "eps-greedy": ("epsilon-greedy, epsilon = 0.1",
                   lambda env, n: PolicySpec(n, BetaBernoulli(), EpsilonGreedy(0.1))),
    "greedy": ("greedy on the posterior mean (no exploration)",
               lambda env, n: PolicySpec(n, BetaBernoulli(), Greedy())),
    "softmax": ("softmax on posterior means, temperature 0.01",
                lambda env, n: PolicySpec(n, BetaBernoulli(), Softmax(0.01))),
    "random": ("uniformly random arm",
               lambda env, n: PolicySpec(n, BetaBernoulli(), RandomPolicy())),
    "sw-ts": ("sliding-window Thompson sampling, last 500 observations",
              lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling(), window=500)),
    "sw-ts-2000": ("sliding-window Thompson sampling, last 2000 observations",
                   lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling(),
                                             window=2000)),
    "discounted-ts": ("discounted Thompson sampling, gamma = 0.998 (memory ~500 rounds)",
                      lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling(),
                                                discount=0.998)),
    "discounted-ts-0.9995": ("discounted Thompson sampling, gamma = 0.9995 (memory ~2000)",
                             lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling(),
                                                       discount=0.9995)),
}

_CONTEXTUAL: dict[str, tuple[str, _Factory]] = {
    "ts": ("our default contextual Thompson sampler: Bayesian logistic regression (Laplace), "
           "prior precision 3, posterior scale 0.25",
           lambda env, n: default_contextual_policy(n, _d(env, n))),
    "linear-ts": ("linear TS with the tutorial's hyper-parameters (prior variance 2, noise "
                  "variance 0.05), correct update",
                  lambda env, n: PolicySpec(n, LinearGaussian(n_features=_d(env, n),
                                                              prior_precision=0.5,
                                                              noise_variance=0.05),
                                            ThompsonSampling())),
    "shared-ts": ("linear TS with weights shared across offers (w_a = w0 + delta_a, shared prior "
                  "precision 1, offset precision 4, noise variance 0.1) on the raw context, "
                  "posterior scale 0.5",
                  lambda env, n: PolicySpec(n, _shared(_d(env, n)),
                                            ThompsonSampling(scale=0.5))),
    "cells-ts": ("a Beta-Bernoulli bandit per context cell (contexts quantized to a 0.25 grid, "
                 "hashed into 64 cells), Beta(1, 3) priors, posterior scale 0.2",
                 lambda env, n: PolicySpec(n, _binned(_d(env, n)), ThompsonSampling(scale=0.2))),
    "tutorial-linear-ts": ("the tutorial's Part 7 class as printed (mean-update bug), prior "
                           "variance 2, noise variance 0.05",
                           lambda env, n: TutorialLinearSpec(n, _d(env, n), 2.0, 0.05)),
    "naive-ts": ("plain linear TS: prior precision 1, known noise variance 0.25",
                 lambda env, n: PolicySpec(n, _ridge(env, n, 0.25), ThompsonSampling())),
    "logistic-ts": ("Bayesian logistic regression (Laplace), prior precision 3, plain TS",
                    lambda env, n: PolicySpec(n, default_contextual_model(_d(env, n)),
                                              ThompsonSampling())),
    "nig-ts": ("linear TS with the noise variance learned (Normal-Inverse-Gamma), prior "
               "precision 1, noise prior 0.25 with weight 1",
               lambda env, n: PolicySpec(n, _nig(_d(env, n)), ThompsonSampling())),
    "nig-ts-scaled": ("the same with posterior scale 0.25",
                      lambda env, n: PolicySpec(n, _nig(_d(env, n)),
                                                ThompsonSampling(scale=DEFAULT_SCALE))),
    "linucb": ("LinUCB: ridge mean + 1 posterior sd (noise variance 0.25)",
               lambda env, n: PolicySpec(n, _ridge(env, n, 0.25), LinUCB(1.0))),
    "greedy": ("greedy per-arm ridge regression (lambda = 1), no exploration",
               lambda env, n: PolicySpec(n, _ridge(env, n, 1.0), Greedy())),
    "eps-greedy": ("epsilon-greedy (0.1) on per-arm ridge regression",
                   lambda env, n: PolicySpec(n, _ridge(env, n, 1.0), EpsilonGreedy(0.1))),
    "beta-ts": ("context-free Beta Thompson sampling (ignores the customer)",
                lambda env, n: PolicySpec(n, BetaBernoulli(), ThompsonSampling())),
    "random": ("uniformly random arm",
               lambda env, n: PolicySpec(n, BetaBernoulli(), RandomPolicy())),
}

#: name -> description, for ``tsbandit scenarios`` and error messages
POLICY_HELP: dict[str, dict[str, str]] = {
    "context-free": {k: v[0] for k, v in _CONTEXT_FREE.items()},
    "contextual": {k: v[0] for k, v in _CONTEXTUAL.items()},
}


def available_policies(env: Environment) -> list[str]:
    """Policy names that :func:`make_policy` accepts for this environment."""
    return list(_CONTEXTUAL if env.contextual else _CONTEXT_FREE)


def make_policy(name: str, env: Environment) -> Policy:
    """The policy called ``name`` for ``env``.

    Raises
    ------
    ConfigurationError
        For an unknown name (the message lists the known ones).
    """
    table = _CONTEXTUAL if env.contextual else _CONTEXT_FREE
    if name not in table:
        raise ConfigurationError(
            f"unknown policy {name!r} for a {'contextual' if env.contextual else 'context-free'}"
            f" world; known: {', '.join(table)}")
    desc, factory = table[name]
    spec = factory(env, name)
    object.__setattr__(spec, "description", desc)
    return spec
