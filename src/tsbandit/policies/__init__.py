"""Pure bandit math: reward models over additive statistics, and selection rules.

No I/O, no globals; every random draw comes from a ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from .base import RewardModel
from .beta import BetaBernoulli, BetaPosterior
from .gaussian import NIGPosterior, NormalInverseGamma
from .stats import Stats

__all__ = [
    "BetaBernoulli",
    "BetaPosterior",
    "NIGPosterior",
    "NormalInverseGamma",
    "RewardModel",
    "Stats",
]
