"""Build models and rules from their JSON configurations (``{"kind": ..., ...}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..errors import ConfigurationError
from .base import RewardModel
from .beta import BetaBernoulli
from .binned import BinnedBeta
from .cascade import CascadeBeta
from .gaussian import NormalInverseGamma
from .hierarchical import HierarchicalLinear
from .linear import LinearGaussian
from .logistic import LogisticLaplace
from .position_based import PositionBased
from .rules import (
    UCB1,
    EpsilonGreedy,
    Greedy,
    LinUCB,
    RandomPolicy,
    SelectionRule,
    Softmax,
    ThompsonSampling,
)
from .rules.allocation import TopTwoThompson, TrafficFloor
from .rules.constrained import ConstrainedThompson
from .rules.pareto import ParetoThompson

__all__ = ["MODELS", "RULES", "model_from_config", "rule_from_config"]

MODELS: dict[str, type[RewardModel]] = {
    cls.kind: cls for cls in (BetaBernoulli, NormalInverseGamma, LinearGaussian, LogisticLaplace,
                              HierarchicalLinear, PositionBased, CascadeBeta, BinnedBeta)
}
RULES: dict[str, type[SelectionRule]] = {
    cls.kind: cls
    for cls in (ThompsonSampling, UCB1, LinUCB, EpsilonGreedy, Greedy, Softmax, RandomPolicy,
                ConstrainedThompson, ParetoThompson, TrafficFloor, TopTwoThompson)
}


def _build(table: Mapping[str, Any], config: Mapping[str, Any], what: str, noun: str) -> Any:
    """``table[config["kind"]].from_config(config)``, or a :class:`ConfigurationError` naming
    the unknown kind (and the known ones) or the bad parameter."""
    kind = config.get("kind")
    if kind not in table:
        raise ConfigurationError(f"unknown {what} {kind!r}; known: {sorted(table)}")
    try:
        return table[str(kind)].from_config(config)
    except TypeError as exc:
        raise ConfigurationError(f"bad {kind!r} {noun} configuration: {exc}") from None


def model_from_config(config: Mapping[str, Any]) -> RewardModel:
    """A reward model from its configuration.

    >>> model_from_config({"kind": "beta", "alpha0": 2.0}).alpha0
    2.0
    """
    if config.get("kind") == "metrics":
        from .metrics import MetricSet

        return MetricSet.from_config(config)
    return cast(RewardModel, _build(MODELS, config, "model kind", "model"))


def rule_from_config(config: Mapping[str, Any]) -> SelectionRule:
    """A selection rule from its configuration.

    >>> rule_from_config({"kind": "epsilon_greedy", "epsilon": 0.2}).epsilon
    0.2
    """
    return cast(SelectionRule, _build(RULES, config, "selection rule", "rule"))
