"""A bandit's configuration in the API (pydantic v2, strict): its ``model`` and ``rule``
objects, its metrics when it has several (named ``metrics``, each a model, optionally
``given`` another binary metric; a weighted ``objective``; ``constraints``; per-arm ``costs``;
a ``baseline`` arm; per-metric reward windows and defaults), what ``POST /v1/bandits`` takes
(:class:`BanditCreate`) and ``GET /v1/bandits/{name}`` answers (:class:`BanditOut`).

Everything that needs the bandit (arm and metric names, a ``given`` metric being binary,
priors) is checked by the engine, which names the bandit's own rule; shapes, and which fields
go together, are checked here. Re-exported by :mod:`~tsbandit.service.schemas`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from .model_configs import (
    CONTEXTUAL_KINDS,
    METRIC_RULES,
    ArmName,
    BanditModelConfig,
    BanditModelKind,
    BetaModel,
    BinnedBetaModel,
    CascadeModel,
    ConstrainedRule,
    EpsilonGreedyRule,
    Finite,
    FloorRule,
    GaussianModel,
    GreedyRule,
    HierarchicalLinearModel,
    LinearModel,
    LinUCBRule,
    LogisticModel,
    ModelConfig,
    ModelKind,
    ParetoRule,
    PositionBasedModel,
    Positive,
    RandomRule,
    RuleConfig,
    RuleKind,
    SoftmaxRule,
    ThompsonRule,
    TopTwoRule,
    UCB1Rule,
    _In,
    _Out,
)

__all__ = [
    "METRIC_BANDIT_FIELDS",
    "METRIC_NAME",
    "METRIC_RULES",
    "ArmName",
    "BanditCreate",
    "BanditOut",
    "BetaModel",
    "BinnedBetaModel",
    "ConstrainedRule",
    "Constraint",
    "EpsilonGreedyRule",
    "Finite",
    "FloorRule",
    "GaussianModel",
    "GreedyRule",
    "LinUCBRule",
    "LinearModel",
    "LogisticModel",
    "MetricSpec",
    "MetricsModel",
    "ModelConfig",
    "ModelKind",
    "ParetoRule",
    "Positive",
    "RandomRule",
    "RuleConfig",
    "RuleKind",
    "SoftmaxRule",
    "ThompsonRule",
    "TopTwoRule",
    "UCB1Rule",
    "drop_absent",
]

_BANDIT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]{0,127}$"


# ----- several metrics ------------------------------------------------------------------------
#: a metric's name: an identifier without ``__`` (the statistics' separator)
METRIC_NAME = r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"
MetricName = Annotated[str, Field(pattern=METRIC_NAME, max_length=64)]
#: the fields of a bandit's configuration that only a bandit with several metrics has
METRIC_BANDIT_FIELDS = ("metrics", "objective", "constraints", "costs", "baseline",
                        "metric_windows", "metric_defaults")


class MetricsModel(_In):
    """The ``model`` of a bandit with several metrics (its metrics are the bandit's
    ``metrics``)."""

    kind: Literal["metrics"]


class MetricSpec(_In):
    """One metric: its model (a kind, or an object with priors) and, optionally, the binary
    metric it is observed ``given`` (only for decisions where that metric was 1; its value
    per decision is then ``P(given) * E[metric | given]``)."""

    model: ModelKind | ModelConfig = Field(description=(
        "A model kind (beta, gaussian, linear, logistic) or an object with its priors, as a "
        "bandit's ``model``; a contextual model names its n_features."))
    given: MetricName | None = Field(None, description="A binary (beta) metric of the bandit.")


class Constraint(_In):
    """``max`` or ``min`` (one of them) on a metric's mean per decision, absolute or, with
    ``relative_to`` (an arm), on the difference to that arm's."""

    metric: MetricName
    max: float | None = None
    min: float | None = None
    relative_to: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"constraint on {self.metric!r}: give exactly one of max or min")
        return self

    def to_config(self) -> dict[str, Any]:
        """``{"metric", "max" | "min", "relative_to"?}`` (what the engine takes)."""
        return self.model_dump(exclude_none=True)

    # no return annotation: with one, pydantic would take it for the answer's schema
    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("max", "min", "relative_to"))


def drop_absent(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without the ``keys`` whose value is None (fields an answer has only for
    some bandits, left out for the others rather than sent as null)."""
    for k in keys:
        if k in data and data[k] is None:
            del data[k]
    return data


# ----- bandits --------------------------------------------------------------------------------
_METRICS_DOC = (
    "Several metrics per decision instead of one reward (never with ``model``): ``{name: "
    "kind}`` or ``{name: {\"model\": kind or object, \"given\": binary_metric}}``, e.g. "
    "``{\"apply\": \"beta\", \"revenue\": {\"model\": \"gaussian\", \"given\": "
    "\"apply\"}}``. Rewards then name their metrics (``{\"metrics\": {\"apply\": 1}}``).")


class BanditCreate(_In):
    """A new bandit. ``model`` and ``rule`` take a kind name or an object with priors.

    A bandit with several metrics per decision gives ``metrics`` instead of ``model``, and
    optionally ``objective``, ``constraints``, ``costs``, ``baseline``, ``metric_windows`` and
    ``metric_defaults`` (see docs/service.md).
    """

    name: Annotated[str, Field(pattern=_BANDIT_NAME)]
    arms: Annotated[list[ArmName], Field(min_length=1)]
    model: BanditModelKind | BanditModelConfig = "beta"
    rule: RuleKind | RuleConfig = Field("thompson", description=(
        "Selection rule; ``constrained`` (the default with constraints) and ``pareto`` need "
        "metrics."))
    n_features: int | None = Field(None, ge=1, description="Context dimension (linear, logistic).")
    reward_window: Positive = Field(86_400.0, description="Seconds a decision awaits its reward.")
    default_reward: Finite | None = Field(
        None, description="Reward applied when the window passes without one (None: nothing).")
    half_life: Positive | None = Field(None, description="Decay half-life in seconds.")
    propensity_draws: int = Field(1000, ge=1, le=100_000)
    stickiness: Positive | None = Field(
        None, description="Seconds a user (a decision's ``user_id``) keeps the arm or ranking "
        "first chosen for them; each visit is still its own decision, logged with the original "
        "draw's propensities (None: every decision draws anew).")
    shards: int = Field(1, ge=1, le=64, description=(
        "Store shards the bandit's statistics, pending decisions and events spread over (on a "
        "Redis Cluster: over several primaries, so one hot bandit is not capped by one node); "
        "fixed at creation; needs an additive model (not logistic)."))
    metrics: Annotated[dict[MetricName, ModelKind | MetricSpec],
                       Field(min_length=1, max_length=32)] | None = Field(
        None, description=_METRICS_DOC)
    objective: Annotated[dict[MetricName, Finite], Field(min_length=1, max_length=32)
                         ] | None = Field(None, description=(
        "Weights of the metrics' values per decision: the objective is ``sum w_m value_m - "
        "cost``, a ``given`` metric's value being ``P(given) * E[metric | given]`` (default: "
        "weight 1 on the first metric)."))
    constraints: Annotated[list[Constraint], Field(max_length=32)] | None = Field(
        None, description="Bounds on metrics' means an arm must keep to be chosen.")
    costs: Annotated[dict[ArmName, Finite], Field(max_length=10_000)] | None = Field(
        None, description="Per-arm cost subtracted from the objective (default 0).")
    baseline: ArmName | None = Field(
        None, description="The arm chosen when no arm passes the constraints (default: the "
        "arm most likely to pass).")
    metric_windows: Annotated[dict[MetricName, Positive], Field(max_length=32)] | None = Field(
        None, description="Seconds a decision awaits each metric (default ``reward_window``).")
    metric_defaults: Annotated[dict[MetricName, Finite | None], Field(max_length=32)
                               ] | None = Field(
        None, description="Value applied to a metric whose window passes without one (a "
        "``given`` metric: only where its condition was 1).")

    @model_validator(mode="after")
    def _features(self) -> BanditCreate:
        rule = self.rule if isinstance(self.rule, str) else self.rule.kind
        if self.metrics is not None:
            return self._check_metrics(rule)
        extra = [f for f in METRIC_BANDIT_FIELDS if getattr(self, f) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} need several metrics: declare the bandit's "
                             "metrics (and no model), or leave them out")
        if rule in METRIC_RULES:
            raise ValueError(f"the {rule} rule needs several metrics (give metrics)")
        inner = getattr(self.model, "n_features", None)
        if inner is not None and self.n_features is not None and inner != self.n_features:
            raise ValueError(f"n_features == {self.n_features} but model.n_features == {inner}")
        kind = self.model if isinstance(self.model, str) else self.model.kind
        if kind in CONTEXTUAL_KINDS and inner is None and self.n_features is None:
            raise ValueError(f"a {kind} model needs n_features (the context dimension)")
        if kind not in CONTEXTUAL_KINDS and self.n_features is not None:
            raise ValueError(f"a {kind} model takes no context; n_features must be omitted")
        return self

    def _check_metrics(self, rule: str) -> BanditCreate:
        if "model" in self.model_fields_set:
            raise ValueError("give either model (one reward per decision) or metrics "
                             "(several per decision), not both")
        if self.n_features is not None:
            raise ValueError("with metrics, a contextual metric's model names its n_features; "
                             "omit the top-level n_features")
        if self.default_reward is not None:
            raise ValueError("default_reward is for one reward per decision; with metrics "
                             "give metric_defaults: {metric: value}")
        assert self.metrics is not None
        for name, m in self.metrics.items():
            model = m if isinstance(m, str) else m.model
            kind = model if isinstance(model, str) else model.kind
            if kind in ("linear", "logistic") and getattr(model, "n_features", None) is None:
                raise ValueError(f"metric {name!r}: a {kind} model needs n_features (the "
                                 "context dimension)")
        if ((self.constraints or self.baseline is not None) and "rule" in self.model_fields_set
                and rule != "constrained"):
            raise ValueError(f"constraints and baseline need the constrained rule, not {rule}")
        return self

    def model_config_dict(self) -> dict[str, Any]:
        """``{"kind": ..., ...}``: the ``model`` of :func:`tsbandit.engine.bandit_spec`."""
        cfg: dict[str, Any] = ({"kind": self.model} if isinstance(self.model, str)
                               else self.model.model_dump(exclude_none=True))
        if self.n_features is not None:
            cfg["n_features"] = self.n_features
        return cfg

    def rule_config_dict(self) -> dict[str, Any]:
        """``{"kind": ..., ...}``: the ``rule`` of :func:`tsbandit.engine.bandit_spec`."""
        return {"kind": self.rule} if isinstance(self.rule, str) else self.rule.model_dump()

    def spec_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`tsbandit.engine.bandit_spec` (after the name and
        the arms; the caller adds ``max_features``)."""
        opts: dict[str, Any] = {
            "reward_window": self.reward_window, "default_reward": self.default_reward,
            "half_life": self.half_life, "propensity_draws": self.propensity_draws,
            "stickiness": self.stickiness, "shards": self.shards}
        if self.metrics is None:
            return {"model": self.model_config_dict(), "rule": self.rule_config_dict(), **opts}
        metrics = {name: m if isinstance(m, str) else {
            "model": m.model if isinstance(m.model, str) else m.model.model_dump(
                exclude_none=True), **({"given": m.given} if m.given is not None else {})}
            for name, m in self.metrics.items()}
        return {
            "metrics": metrics, "objective": self.objective,
            "constraints": [c.to_config() for c in self.constraints or ()],
            "costs": self.costs, "baseline": self.baseline,
            # the default rule follows the constraints (constrained TS when there are some)
            "rule": self.rule_config_dict() if "rule" in self.model_fields_set else None,
            "metric_windows": self.metric_windows or {},
            "metric_defaults": self.metric_defaults or {}, **opts}


OutModelConfig = Annotated[
    BetaModel | GaussianModel | LinearModel | LogisticModel | PositionBasedModel | CascadeModel
    | HierarchicalLinearModel | BinnedBetaModel | MetricsModel, Field(discriminator="kind")]


class BanditOut(_Out):
    """A bandit's stored configuration: ``model`` and ``rule`` in the objects creating one
    takes, every parameter given (defaults filled in). A bandit with several metrics also
    has ``metrics``, ``objective``, ``constraints``, ``costs`` (by arm), ``baseline`` (when
    set), ``metric_windows`` and ``metric_defaults``, as creating one takes them, and its
    ``model`` is ``{"kind": "metrics"}``; the other bandits' answers have none of these."""

    name: str
    arms: list[str]
    model: OutModelConfig
    rule: RuleConfig
    reward_window: float
    default_reward: float | None
    half_life: float | None
    propensity_draws: int
    stickiness: float | None = None
    shards: int | None = None
    metrics: dict[str, MetricSpec] | None = None
    objective: dict[str, float] | None = None
    constraints: list[Constraint] | None = None
    costs: dict[str, float] | None = None
    baseline: str | None = None
    metric_windows: dict[str, float] | None = None
    metric_defaults: dict[str, float | None] | None = None

    # no return annotation: pydantic would take it for the answer's schema
    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), (*METRIC_BANDIT_FIELDS, "stickiness", "shards"))
