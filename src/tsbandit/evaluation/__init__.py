"""Off-policy evaluation: judge a new policy on logged decisions before it touches real traffic.

Logged feedback (:class:`LoggedData`, loaded from the service's JSON Lines event log or the Open
Bandit Dataset) and a target policy's action probabilities go in; estimates of the target's
expected reward per round come out, each with a confidence interval and an effective sample size.

Estimators: :class:`Replay`, :class:`IPS`, :class:`SNIPS`, :class:`DM`, :class:`DR`.

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
from .direct import DM, DR
from .intervals import Estimate, effective_sample_size
from .ipw import IPS, SNIPS, importance_weights
from .replay import Replay
from .reward_model import RidgeRewardModel

__all__ = [
    "DM",
    "DR",
    "IPS",
    "SNIPS",
    "Estimate",
    "Estimator",
    "InvalidLogError",
    "LoggedData",
    "Replay",
    "RidgeRewardModel",
    "action_dist_rows",
    "effective_sample_size",
    "importance_weights",
]
