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

from typing import Any

from .bandit import Bandit
from .decision import ArmSummary, BatchDecision, Decision, RecordedDecision, RewardResult
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
    "RecordedDecision",
    "RewardResult",
    "SlidingWindowThompsonSampling",
    "ThompsonSamplingBandit",
    "__version__",  # noqa: F405 - module __getattr__, read on first use
    *_errors_all,
]


def __getattr__(name: str) -> Any:
    # ``__version__`` reads the installed metadata on first use: importlib.metadata costs tens
    # of milliseconds to import, and most imports of tsbandit never ask for the version
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("tsbandit")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            value = "0.0.0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

