"""Pure bandit math: reward models over additive statistics, and selection rules.

No I/O, no globals; every random draw comes from a ``numpy.random.Generator`` passed in.

Reward models: :class:`BetaBernoulli`, :class:`NormalInverseGamma`, :class:`LinearGaussian`,
:class:`LogisticLaplace`, :class:`HierarchicalLinear` (weights shared across arms),
:class:`BinnedBeta` (a Beta bandit per context cell); ranking
models that learn from every slot: :class:`PositionBased`, :class:`CascadeBeta`. Selection
rules: :class:`ThompsonSampling`, :class:`UCB1`, :class:`LinUCB`, :class:`EpsilonGreedy`,
:class:`Greedy`, :class:`Softmax`, :class:`RandomPolicy`.
"""

from __future__ import annotations

from .base import RewardModel
from .beta import BetaBernoulli, BetaPosterior
from .binned import BinnedBeta, BinnedPosterior
from .cascade import CascadeBeta
from .gaussian import NIGPosterior, NormalInverseGamma
from .hierarchical import HierarchicalLinear, HierarchicalPosterior
from .linear import LinearGaussian, LinearPosterior
from .logistic import LogisticLaplace
from .position_based import PBMPosterior, PositionBased
from .ranking import RankingModel
from .registry import MODELS, RULES, model_from_config, rule_from_config
from .rules import (
    UCB1,
    EpsilonGreedy,
    Greedy,
    LaneScorer,
    LinUCB,
    RandomPolicy,
    SelectionRule,
    Softmax,
    ThompsonSampling,
    lanes_argmax,
    top_k,
)
from .stats import Stats

__all__ = [
    "MODELS",
    "RULES",
    "UCB1",
    "BetaBernoulli",
    "BetaPosterior",
    "BinnedBeta",
    "BinnedPosterior",
    "CascadeBeta",
    "EpsilonGreedy",
    "Greedy",
    "HierarchicalLinear",
    "HierarchicalPosterior",
    "LaneScorer",
    "LinUCB",
    "LinearGaussian",
    "LinearPosterior",
    "LogisticLaplace",
    "NIGPosterior",
    "NormalInverseGamma",
    "PBMPosterior",
    "PositionBased",
    "RandomPolicy",
    "RankingModel",
    "RewardModel",
    "SelectionRule",
    "Softmax",
    "Stats",
    "ThompsonSampling",
    "lanes_argmax",
    "model_from_config",
    "rule_from_config",
    "top_k",
]
