"""Bayesian A/B/n experiments with stopping rules, their frequentist comparison, SRM checks.

- :class:`BinaryPosteriors`, :class:`NormalPosteriors`: per-arm posteriors from counts
  (conversion) or sums (revenue), with the priors of :mod:`tsbandit.policies`.
- :func:`prob_best`, :func:`expected_loss`, :func:`lift_interval`: exact for two arms, Monte
  Carlo (``rng`` passed in) for more.
- :class:`StoppingRule`, :func:`evaluate_stopping`: probability best >= threshold, or expected
  loss <= epsilon, after a minimum sample per arm.
- :func:`sample_size_two_proportions`, :func:`two_proportion_ztest`: the fixed-horizon design.
- :func:`simulate_ab`: both designs on the same seeded streams; samples to decision, wrong-winner
  rate, A/A false-positive rate with and without peeking.
- :func:`srm_check`: sample-ratio mismatch (chi-square, flagged at p < 0.001);
  :func:`srm_check_adaptive`: the same for a two-arm bandit, against its logged propensities;
  :func:`srm_check_allocation`: any number of arms, against every arm's logged probability.
- :class:`Guardrail`, :func:`evaluate_guardrails`: a goal metric and guardrail metrics (absolute
  bounds, or relative to the control); a winner must meet the stopping rule on the goal and keep
  every guardrail with the rule's probability. :func:`experiment_from_dict`: such an experiment
  as one JSON document.
- :func:`experiment_report`: one JSON-safe dict of all of it (for the service and the CLI).

Plots live in :mod:`tsbandit.experiments.plots` (matplotlib, imported lazily); the CLI in
:mod:`tsbandit.cli.abtest` (Typer).

Peeking: checking a probability-best threshold after every batch inflates the A/A rate of
declaring a winner (measured by :func:`simulate_ab`; see :mod:`.stopping`).
"""

from __future__ import annotations

from .bayes import ArmEstimate, LiftInterval, expected_loss, lift_interval, prob_best
from .frequentist import (
    power_two_proportions,
    sample_size_two_proportions,
    two_proportion_ztest,
)
from .guarded import GuardedDecision, GuardrailCheck, evaluate_guardrails
from .guardrails import Guardrail
from .inputs import Experiment, experiment_from_dict
from .posteriors import (
    DEFAULT_NORMAL_PRIOR,
    ArmPosteriors,
    BinaryPosteriors,
    NormalPosteriors,
    posteriors_from_model,
)
from .report import experiment_report
from .simulation import DESIGNS, DesignOutcome, SimulationResult, simulate_ab
from .srm import SRMResult, srm_check, srm_check_adaptive, srm_check_allocation
from .stopping import StopDecision, StoppingRule, evaluate_stopping

__all__ = [
    "DEFAULT_NORMAL_PRIOR",
    "DESIGNS",
    "ArmEstimate",
    "ArmPosteriors",
    "BinaryPosteriors",
    "DesignOutcome",
    "Experiment",
    "GuardedDecision",
    "Guardrail",
    "GuardrailCheck",
    "LiftInterval",
    "NormalPosteriors",
    "SRMResult",
    "SimulationResult",
    "StopDecision",
    "StoppingRule",
    "evaluate_guardrails",
    "evaluate_stopping",
    "expected_loss",
    "experiment_from_dict",
    "experiment_report",
    "lift_interval",
    "posteriors_from_model",
    "power_two_proportions",
    "prob_best",
    "sample_size_two_proportions",
    "simulate_ab",
    "srm_check",
    "srm_check_adaptive",
    "srm_check_allocation",
    "two_proportion_ztest",
]
