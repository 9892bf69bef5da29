"""The API's model and rule objects (pydantic v2, strict): what a bandit's ``model`` and
``rule`` may be in ``POST /v1/bandits`` and its answers, with the base classes of every
request (:class:`_In`: unknown fields refused, strict types) and answer (:class:`_Out`).
Re-exported by :mod:`~tsbandit.service.configs` and :mod:`~tsbandit.service.schemas`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CONTEXTUAL_KINDS",
    "METRIC_RULES",
    "ArmName",
    "BanditModelConfig",
    "BanditModelKind",
    "BetaModel",
    "BinnedBetaModel",
    "CascadeModel",
    "ConstrainedRule",
    "EpsilonGreedyRule",
    "Finite",
    "FloorRule",
    "GaussianModel",
    "GreedyRule",
    "HierarchicalLinearModel",
    "LinUCBRule",
    "LinearModel",
    "LogisticModel",
    "ModelConfig",
    "ModelKind",
    "ParetoRule",
    "PlainRuleConfig",
    "PositionBasedModel",
    "Positive",
    "RandomRule",
    "RuleConfig",
    "RuleKind",
    "SoftmaxRule",
    "ThompsonRule",
    "TopTwoRule",
    "UCB1Rule",
]

Positive = Annotated[float, Field(gt=0)]
Finite = float  # NaN and infinities are refused by every model's config
ArmName = Annotated[str, Field(min_length=1, max_length=128)]


class _In(BaseModel):
    # json_schema_serialization_defaults_required: a model also used in answers (the bandit
    # configuration) gets an output schema with every field required (it is always sent)
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              json_schema_serialization_defaults_required=True)


class _Out(BaseModel):
    # A float field of an answer is never NaN or infinite (those would reach the wire as
    # null, which the schema's ``number`` does not allow): fields that can be undefined are
    # ``float | None`` and declared ``anyOf: [number, null]``.
    model_config = ConfigDict(allow_inf_nan=False)


# ----- bandit configuration -------------------------------------------------------------------
class BetaModel(_In):
    """Beta-Bernoulli (binary rewards): prior Beta(alpha0, beta0) per arm."""

    kind: Literal["beta"] = "beta"
    alpha0: Positive = 1.0
    beta0: Positive = 1.0


class GaussianModel(_In):
    """Normal rewards with unknown variance (Normal-Inverse-Gamma prior)."""

    kind: Literal["gaussian"]
    mu0: Finite = 0.0
    kappa0: Positive = 1.0
    alpha0: Positive = 1.0
    beta0: Positive = 1.0


class LinearModel(_In):
    """Bayesian linear regression per arm on a context of ``n_features`` numbers."""

    kind: Literal["linear"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    prior_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 1.0
    noise_variance: Positive = 0.1
    unknown_noise: bool = False
    noise_a0: Positive = 2.0
    noise_b0: Positive | None = None
    refresh_every: int = Field(1000, ge=1, le=2**31 - 1, description=(
        "Online rank-1 updates between two full refactorizations of the posterior."))


class LogisticModel(_In):
    """Bayesian logistic regression per arm (Laplace approximation), binary rewards."""

    kind: Literal["logistic"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    prior_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 1.0
    max_newton_steps: int = Field(25, ge=1, le=1000,
                                  description="Most Newton steps of one Laplace refit.")
    tol: Positive = Field(1e-8, description="A refit stops when no coefficient moves more.")


ModelConfig = Annotated[
    BetaModel | GaussianModel | LinearModel | LogisticModel, Field(discriminator="kind")
]
ModelKind = Literal["beta", "gaussian", "linear", "logistic"]


class PositionBasedModel(_In):
    """Rankings that learn from every slot: click = attractiveness(arm) x examination(slot),
    Beta attractiveness, examination given or learned; a reward names its slot."""

    kind: Literal["position_based"]
    alpha0: Positive = 1.0
    beta0: Positive = 1.0
    n_positions: Annotated[int, Field(ge=1, le=100)] = 3
    examination: Annotated[list[Annotated[float, Field(gt=0, le=1)]],
                           Field(min_length=1, max_length=100)] | None = None
    em_iterations: Annotated[int, Field(ge=1, le=1000)] = 30
    examination_prior: Positive = 1.0
    monotone: bool = True


class CascadeModel(_In):
    """Rankings under the cascade model: the user scans down and clicks the first attractive
    arm (Beta attractiveness of the arms examined); a reward names its slot."""

    kind: Literal["cascade"]
    alpha0: Positive = 1.0
    beta0: Positive = 1.0


class HierarchicalLinearModel(_In):
    """Linear Thompson sampling with weights shared across arms: each arm's weights are shared
    weights plus an arm offset whose prior (``offset_precision``, larger than
    ``shared_precision``) shrinks it, so every arm learns from every observation."""

    kind: Literal["hierarchical-linear"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    shared_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 1.0
    offset_precision: Positive | Annotated[list[Positive], Field(min_length=1)] = 4.0
    noise_variance: Positive = 0.1
    features: Literal["linear", "quadratic"] = "linear"
    refresh_every: int = Field(1000, ge=1, le=2**31 - 1)


class BinnedBetaModel(_In):
    """Binary rewards, a Beta-Bernoulli bandit per context cell: the context is quantized to a
    grid of side ``cell_width`` and hashed into ``n_cells`` cells; customers in one cell share
    a bandit (optionally pooled toward the arm's rate in its other cells)."""

    kind: Literal["binned-beta"]
    n_features: int | None = Field(None, ge=1, description="Or give n_features at top level.")
    n_cells: int = Field(64, ge=1, le=65536)
    cell_width: Positive = 0.25
    alpha0: Positive = 1.0
    beta0: Positive = 1.0
    pooling: Annotated[float, Field(ge=0)] = 0.0


#: the models that take a context (``n_features``)
CONTEXTUAL_KINDS = ("linear", "logistic", "hierarchical-linear", "binned-beta")

BanditModelConfig = Annotated[
    BetaModel | GaussianModel | LinearModel | LogisticModel | PositionBasedModel | CascadeModel
    | HierarchicalLinearModel | BinnedBetaModel, Field(discriminator="kind")]
BanditModelKind = Literal["beta", "gaussian", "linear", "logistic", "position_based", "cascade",
                          "hierarchical-linear", "binned-beta"]


class ThompsonRule(_In):
    """Thompson sampling: one posterior draw per arm, best draw wins.

    ``scale`` multiplies the posterior spread of the draws (1 is plain Thompson sampling; the
    lab's default contextual sampler uses 0.25).
    """

    kind: Literal["thompson"] = "thompson"
    scale: Positive = Field(1.0, description="Posterior standard-deviation multiplier (> 0).")


class UCB1Rule(_In):
    """Upper confidence bound on the posterior mean."""

    kind: Literal["ucb1"]
    c: Annotated[float, Field(ge=0)] = 1.0


class LinUCBRule(_In):
    """LinUCB for linear models."""

    kind: Literal["linucb"]
    alpha: Annotated[float, Field(ge=0)] = 1.0


class EpsilonGreedyRule(_In):
    """Best posterior mean, a uniformly random arm with probability epsilon."""

    kind: Literal["epsilon_greedy"]
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.1


class GreedyRule(_In):
    """Best posterior mean (no exploration)."""

    kind: Literal["greedy"]


class SoftmaxRule(_In):
    """Boltzmann exploration over posterior means."""

    kind: Literal["softmax"]
    temperature: Positive = 0.1


class RandomRule(_In):
    """Uniformly random arm (a baseline)."""

    kind: Literal["random"]


class ConstrainedRule(_In):
    """Constrained Thompson sampling (several metrics only): the argmax of the drawn objective
    among arms whose drawn constraint values pass. The bandit's top-level ``constraints`` and
    ``baseline`` say what passes; the default rule of a bandit with constraints."""

    kind: Literal["constrained"]
    pool: Annotated[float, Field(ge=0)] = Field(2.0, description=(
        "Pseudo-observations of a prior pooled across arms for binary constraint metrics "
        "(0: each metric's own prior)."))
    scale: Positive = Field(1.0, description="Posterior standard-deviation multiplier (> 0).")
    optimism: Annotated[float, Field(ge=0, lt=1)] = Field(0.2, description=(
        "A constraint at least this likely to hold passes whatever the draw (0: off)."))
    pessimism: Annotated[float, Field(ge=0, lt=1)] = Field(0.05, description=(
        "A constraint less likely than this to hold fails whatever the draw (0: off)."))


class ParetoRule(_In):
    """Pareto Thompson sampling (several metrics only): an arm at random from the Pareto front
    of one draw of the objective's metrics."""

    kind: Literal["pareto"]
    scale: Positive = Field(1.0, description="Posterior standard-deviation multiplier (> 0).")


class TopTwoRule(_In):
    """Top-two Thompson sampling, for best-arm identification: the leader of a posterior draw
    with probability ``beta``, else the arm that wins a repeated draw instead (its
    challenger)."""

    kind: Literal["top_two"]
    beta: Annotated[float, Field(gt=0, lt=1)] = 0.5
    max_resamples: Annotated[int, Field(ge=1, le=1000)] = 50


PlainRuleConfig = Annotated[
    ThompsonRule | UCB1Rule | LinUCBRule | EpsilonGreedyRule | GreedyRule | SoftmaxRule
    | RandomRule | TopTwoRule,
    Field(discriminator="kind"),
]


class FloorRule(_In):
    """A traffic floor around another rule: every eligible arm is chosen first in at least
    ``floor`` of decisions (at most 1 / number of arms); the propensities are the exact
    mixture, logged as usual."""

    kind: Literal["floor"]
    rule: PlainRuleConfig = Field(default_factory=lambda: ThompsonRule(kind="thompson", scale=1.0))
    floor: Annotated[float, Field(ge=0, le=1)] = 0.05


RuleConfig = Annotated[
    ThompsonRule | UCB1Rule | LinUCBRule | EpsilonGreedyRule | GreedyRule | SoftmaxRule
    | RandomRule | TopTwoRule | FloorRule | ConstrainedRule | ParetoRule,
    Field(discriminator="kind"),
]
RuleKind = Literal["thompson", "ucb1", "linucb", "epsilon_greedy", "greedy", "softmax", "random",
                   "top_two", "floor", "constrained", "pareto"]
#: rules that need several metrics
METRIC_RULES = ("constrained", "pareto")
