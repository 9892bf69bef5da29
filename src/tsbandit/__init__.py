"""tsbandit: a Thompson-sampling personalization engine.

Bayesian bandit policies over additive sufficient statistics (``tsbandit.policies``), the
friendly :class:`Bandit` and the tutorial's classes, a simulation lab, state stores, a decision
service, Bayesian A/B tests and off-policy evaluation.

>>> from tsbandit import ThompsonSamplingBandit
>>> bandit = ThompsonSamplingBandit(["a", "b"], seed=0)
>>> bandit.select_arm() in {"a", "b"}
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsbandit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from .bandit import ArmSummary, Bandit, BatchDecision, Decision
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .tutorial import (
    ContextualThompsonSampling,
    DiscountedThompsonSampling,
    SlidingWindowThompsonSampling,
    ThompsonSamplingBandit,
)

__all__ = [
    "ArmSummary",
    "Bandit",
    "BatchDecision",
    "ContextualThompsonSampling",
    "Decision",
    "DiscountedThompsonSampling",
    "SlidingWindowThompsonSampling",
    "ThompsonSamplingBandit",
    "__version__",
    *_errors_all,
]
