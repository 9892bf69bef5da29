"""Off-policy evaluation: judge a new policy on logged decisions before it touches real traffic.

Logged feedback (:class:`LoggedData`, loaded from the service's JSON Lines event log or the Open
Bandit Dataset) and a target policy's action probabilities go in; estimates of the target's
expected reward per round come out, each with a confidence interval and an effective sample size.

- Logs: :class:`LoggedData`; :func:`load_event_log` (the service's JSON Lines export),
  :func:`load_obd` / :func:`load_obd_csv` / :func:`load_obd_prior` (Open Bandit Dataset),
  :func:`load_table` (any CSV or Parquet table with named columns).
- Estimators: :class:`Replay`, :class:`IPS`, :class:`SNIPS`, :class:`DM`, :class:`DR`,
  :class:`SNDR`, :class:`SwitchDR` (reward model :class:`RidgeRewardModel`, or any scikit-learn
  estimator through :class:`SklearnRewardModel`), each with normal and bootstrap intervals.
- Target policies: :class:`UniformPolicy`, :class:`FixedPolicy`, :func:`thompson_policy`,
  :func:`greedy_policy` (replayed on the log, tsbandit's Beta-Bernoulli model),
  :func:`bandit_policy` (a saved :class:`~tsbandit.bandit.Bandit`), any model and selection
  rule through :class:`ReplayedPolicy`, or per-round probabilities from a file
  (:class:`FilePolicy`).
- Several metrics per decision (a bandit with ``metrics=``): :func:`load_metric_log` gives each
  metric's per-decision value (a ``given`` metric's is ``given * metric``) and the weighted
  objective; :func:`evaluate_metrics` estimates all of them for one target policy.
- :func:`evaluate` runs them together; ``tsbandit evaluate`` is its command line
  (:mod:`tsbandit.cli.evaluate`); :mod:`tsbandit.evaluation.synthetic` has environments with
  exact answers for validation.

Examples
--------
>>> import numpy as np
>>> from tsbandit.evaluation import SNIPS, LoggedData
>>> rng = np.random.default_rng(0)
>>> actions = rng.integers(0, 2, size=1000)  # a uniform logging policy
>>> rewards = (rng.random(1000) < np.where(actions == 1, 0.6, 0.3)).astype(float)
>>> log = LoggedData(actions, rewards, np.full(1000, 0.5), n_actions=2)
>>> est = SNIPS().estimate(log, np.array([0.0, 1.0]))  # target: always action 1
>>> round(est.value, 3), est.low < 0.6 < est.high
(0.618, True)
"""

from __future__ import annotations

from .base import Estimator, action_dist_rows
from .data import InvalidLogError, LoggedData
from .direct import DM, DR, SNDR, SwitchDR
from .intervals import Estimate, effective_sample_size
from .ipw import IPS, SNIPS, importance_weights
from .jsonl import load_event_log
from .metric_log import MetricLog, load_metric_log
from .metric_report import MetricEvaluation, evaluate_metrics
from .obd import load_obd, load_obd_csv, load_obd_prior
from .policy_file import FilePolicy
from .replay import Replay
from .report import EvaluationReport, evaluate, make_estimators
from .reward_model import RidgeRewardModel
from .sklearn_model import SklearnRewardModel, make_reward_model
from .tabular import load_table
from .targets import (
    FixedPolicy,
    ReplayedPolicy,
    TargetPolicy,
    UniformPolicy,
    bandit_policy,
    greedy_policy,
    thompson_policy,
)

__all__ = [
    "DM",
    "DR",
    "IPS",
    "SNDR",
    "SNIPS",
    "Estimate",
    "Estimator",
    "EvaluationReport",
    "FilePolicy",
    "FixedPolicy",
    "InvalidLogError",
    "LoggedData",
    "MetricEvaluation",
    "MetricLog",
    "Replay",
    "ReplayedPolicy",
    "RidgeRewardModel",
    "SklearnRewardModel",
    "SwitchDR",
    "TargetPolicy",
    "UniformPolicy",
    "action_dist_rows",
    "bandit_policy",
    "effective_sample_size",
    "evaluate",
    "evaluate_metrics",
    "greedy_policy",
    "importance_weights",
    "load_event_log",
    "load_metric_log",
    "load_obd",
    "load_obd_csv",
    "load_obd_prior",
    "load_table",
    "make_estimators",
    "make_reward_model",
    "thompson_policy",
]
