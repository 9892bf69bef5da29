"""A bandit's specification: everything that defines it, stored as its configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from ..core import DecisionCore, check_names, check_propensity_draws
from ..errors import ConfigurationError, SerializationError
from ..policies.base import RewardModel, check_positive
from ..policies.metrics import SEP, MetricSet
from ..policies.registry import model_from_config, rule_from_config
from ..policies.rules import SelectionRule, ThompsonSampling
from ..policies.stats import Stats
from ..stores.shard_routing import SHARDS_KEY, check_shards

__all__ = ["CONFIG_FORMAT", "BanditSpec"]

CONFIG_FORMAT = 1


@dataclass(frozen=True)
class BanditSpec:
    """Everything that defines a bandit; stored as its configuration.

    Parameters
    ----------
    name
        Bandit name (letters, digits and ``_.:@+=-``).
    arms
        Arm names.
    model, rule
        Reward model (default Beta-Bernoulli) and selection rule (default Thompson sampling).
    reward_window
        Seconds a decision waits for its reward; later rewards are refused as expired.
    default_reward
        Reward applied to decisions whose window passed without one (``None``: nothing learned).
    half_life
        Seconds for the statistics' weight to halve (non-stationary bandits), or ``None``.
    propensity_draws
        Monte-Carlo draws for Thompson-sampling propensities.
    arm_since
        Arm -> the configuration version at which it was last (re-)added (arms absent: 0, there
        from the start). A decision made at an older configuration version was made for an
        earlier incarnation of the arm (retired since): its reward is consumed, not learned.
        Kept by :meth:`Engine.add_arm` / :meth:`Engine.retire_arm`.
    metric_windows, metric_defaults
        With several metrics (``model`` a :class:`~tsbandit.policies.metrics.MetricSet`):
        each metric's own reward window in seconds from the decision (``reward_window`` for a
        metric not named) and default reward applied by the expiry sweep (none for a metric
        not named; ``default_reward`` must be None). A metric ``given`` another gets its
        default only for decisions whose ``given`` metric was 1.
    stickiness
        Seconds a user (a decision's ``user_id``) keeps the arm or ranking first chosen for
        them (:mod:`tsbandit.engine.sticky`); None: every decision draws anew.
    shards
        How many shards of the store hold the bandit (1-64; fixed at creation). Its
        statistics, decisions and events spread over them -- on a Redis Cluster over several
        primaries -- and every read sums them (:mod:`tsbandit.stores.sharded`); needs additive
        statistics and a store opened by :meth:`Engine.open <tsbandit.engine.Engine.open>`.

    Its :attr:`core` (arms, model, rule, propensity draws) makes the decisions and summaries,
    the same :class:`~tsbandit.core.DecisionCore` a :class:`~tsbandit.Bandit` uses.
    """

    name: str
    arms: Sequence[str]
    model: RewardModel = field(default_factory=lambda: model_from_config({"kind": "beta"}))
    rule: SelectionRule = field(default_factory=ThompsonSampling)
    reward_window: float = 86_400.0
    default_reward: float | None = None
    half_life: float | None = None
    propensity_draws: int = 1000
    arm_since: Mapping[str, int] = field(default_factory=dict, hash=False)
    metric_windows: Mapping[str, float] = field(default_factory=dict, hash=False)
    metric_defaults: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    stickiness: float | None = None
    shards: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", tuple(check_names(self.arms)))
        since = {str(a): int(v) for a, v in dict(self.arm_since).items()
                 if a in self.arms and int(v) > 0}
        object.__setattr__(self, "arm_since", MappingProxyType(since))
        check_positive("reward_window", self.reward_window)
        if self.half_life is not None:
            check_positive("half_life", self.half_life)
            if not self.model.additive:
                raise ConfigurationError(
                    f"half_life needs additive statistics; {type(self.model).__name__} has none")
        if self.default_reward is not None:
            self.model.check_reward(self.default_reward)
        check_propensity_draws(self.propensity_draws)
        if self.stickiness is not None:
            check_positive("stickiness", self.stickiness)
        if check_shards(self.shards) > 1 and not self.model.additive:
            raise ConfigurationError(
                f"shards need additive statistics; {type(self.model).__name__} has none")
        windows, defaults = check_metric_options(self.model, self.default_reward,
                                                 self.metric_windows, self.metric_defaults)
        object.__setattr__(self, "metric_windows", MappingProxyType(windows))
        object.__setattr__(self, "metric_defaults", MappingProxyType(defaults))

    @property
    def metrics(self) -> MetricSet | None:
        """The bandit's metric set (None: one reward per decision)."""
        return self.model if isinstance(self.model, MetricSet) else None

    def metric_window(self, metric: str) -> float:
        """Seconds a decision waits for ``metric``."""
        return float(self.metric_windows.get(metric, self.reward_window))

    def metric_deltas(self, stats: Stats, arm: str, metric: int, reward: float,
                      context: list[float] | None) -> dict[str, np.ndarray]:
        """The change one observation of metric ``metric`` (an index) of ``arm`` makes to
        the statistics: that metric's keys only (the caller checks that the arm learns)."""
        ms = self.metrics
        assert ms is not None
        a = np.array([self.arms.index(arm)])
        r = np.array([reward], dtype=float)
        x = None if context is None else np.asarray([context], dtype=float)
        if ms.models[metric].additive:
            return dict(ms.metric_delta(len(self.arms), metric, a, r, x))
        after = stats.copy()
        ms.accumulate_metric(after, metric, a, r, x)
        pre = ms.names[metric] + SEP
        return {k: v for k, v in (after - stats).items() if k.startswith(pre)}

    @cached_property
    def core(self) -> DecisionCore:
        """The decision core over this bandit's arms, model, rule and propensity draws."""
        return DecisionCore(self.arms, self.model, self.rule, self.propensity_draws)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe configuration (what the store keeps)."""
        return {
            "format": CONFIG_FORMAT,
            "name": self.name,
            "arms": list(self.arms),
            "model": self.model.to_config(),
            "rule": self.rule.to_config(),
            "reward_window": float(self.reward_window),
            "default_reward": self.default_reward,
            "half_life": self.half_life,
            "propensity_draws": int(self.propensity_draws),
            **({"arm_since": dict(self.arm_since)} if self.arm_since else {}),
            **({"metric_windows": dict(self.metric_windows)} if self.metric_windows else {}),
            **({"metric_defaults": dict(self.metric_defaults)} if self.metric_defaults
               else {}),
            **({"stickiness": float(self.stickiness)} if self.stickiness is not None else {}),
            **({SHARDS_KEY: int(self.shards)} if self.shards != 1 else {}),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BanditSpec:
        """Inverse of :meth:`to_config`."""
        if config.get("format") != CONFIG_FORMAT:
            raise SerializationError(f"unsupported bandit configuration format "
                                     f"{config.get('format')!r}")
        return cls(
            name=config["name"], arms=config["arms"], model=model_from_config(config["model"]),
            rule=rule_from_config(config["rule"]), reward_window=config["reward_window"],
            default_reward=config.get("default_reward"), half_life=config.get("half_life"),
            propensity_draws=config.get("propensity_draws", 1000),
            arm_since=config.get("arm_since") or {},
            metric_windows=config.get("metric_windows") or {},
            metric_defaults=config.get("metric_defaults") or {},
            stickiness=config.get("stickiness"), shards=config.get(SHARDS_KEY, 1),
        )

    def learns(self, arm: str, config_version: int | None) -> bool:
        """Whether a decision for ``arm`` made at ``config_version`` still teaches this bandit:
        the arm exists and was not retired (and re-added) since the decision was made."""
        if arm not in self.arms:
            return False
        return int(config_version or 0) >= self.arm_since.get(arm, 0)

    def deltas(self, stats: Stats, arm: str, reward: float, context: list[float] | None
               ) -> dict[str, np.ndarray]:
        """The change one observation of ``arm`` makes to the statistics ``stats`` (what the
        store adds atomically); the caller checks first that the arm :meth:`learns`."""
        a = np.array([self.arms.index(arm)])
        r = np.array([reward], dtype=float)
        x = None if context is None else np.asarray([context], dtype=float)
        model = self.model
        # No overflow check here: the model's bounds (|reward|, |x_i| <= 1e12) keep one
        # observation's delta finite, and the store refuses, inside its atomic write, a sum
        # with the stored totals that would not be (InvalidRewardError; a decision logged
        # before the bounds existed is covered by that too).
        if model.additive:
            return dict(model.delta(len(self.arms), a, r, x))
        # non-additive (Laplace): the change a refit makes to the current statistics
        after = stats.copy()
        model.accumulate(after, a, r, x)
        return dict(after - stats)


def check_metric_options(model: RewardModel, default_reward: float | None,
                         windows: Mapping[str, Any], defaults: Mapping[str, Any]
                         ) -> tuple[dict[str, float], dict[str, float | None]]:
    """Per-metric windows and defaults, validated against the model's metrics."""
    if not isinstance(model, MetricSet):
        if windows or defaults:
            raise ConfigurationError("metric_windows and metric_defaults need several metrics")
        return {}, {}
    if default_reward is not None:
        raise ConfigurationError(
            "default_reward is for one reward per decision; with several metrics give "
            "metric_defaults: {metric: default}")
    out_w: dict[str, float] = {}
    for name, w in dict(windows).items():
        model.index(str(name))
        check_positive(f"metric_windows[{name!r}]", w)
        out_w[str(name)] = float(w)
    out_d: dict[str, float | None] = {}
    for name, d in dict(defaults).items():
        i = model.index(str(name))
        out_d[str(name)] = None if d is None else model.models[i].check_reward(d)
    return out_w, out_d
