"""A Python client of the tsbandit decision service (``tsbandit serve``), built on httpx.

:class:`Client` (blocking) and :class:`AsyncClient` (asyncio) send the same requests, retry the
same way and return the same typed results (:mod:`tsbandit.client.results`). Errors are the
library's own (:mod:`tsbandit.errors`): the service's error ``code`` names the class
(``bandit_not_found`` -> :class:`~tsbandit.errors.BanditNotFoundError`). Only httpx is needed
(``pip install tsbandit[client]``); FastAPI and pydantic are not imported.

Retries (:class:`Retry`: attempts, exponential backoff with full jitter, the statuses) are made
only where they cannot apply something twice: reads, rewards (the service applies a decision's
reward once and answers a repeat ``"duplicate"``) and decisions, which always carry an
``Idempotency-Key`` reused by every retry. Rewards can be buffered and sent in batches
(:meth:`Client.reward_buffer`).

>>> from tsbandit.client import Client, Retry
>>> client = Client("http://127.0.0.1:8000", api_key=None, timeout=5.0,
...                 retry=Retry(attempts=5, backoff=0.05))
>>> d = client.decide("offers", user_id="u1")                   # doctest: +SKIP
>>> client.reward(d, 1).status                                  # doctest: +SKIP
'applied'
>>> client.close()
"""

from __future__ import annotations

from ._async import AsyncClient, AsyncRewardBuffer
from ._core import (
    InvalidRequestError,
    Retry,
    RewardFlushError,
    ServiceConnectionError,
    ServiceError,
    ServiceTimeoutError,
    error_class,
)
from ._sync import Client, RewardBuffer
from .results import (
    ArmStats,
    BanditInfo,
    Decision,
    DecisionStatus,
    Health,
    Report,
    ReportArm,
    ReportDecision,
    ReportLift,
    ReportSRM,
    Reward,
    RewardOutcome,
    RewardResult,
    Stats,
)

__all__ = [
    "ArmStats",
    "AsyncClient",
    "AsyncRewardBuffer",
    "BanditInfo",
    "Client",
    "Decision",
    "DecisionStatus",
    "Health",
    "InvalidRequestError",
    "Report",
    "ReportArm",
    "ReportDecision",
    "ReportLift",
    "ReportSRM",
    "Retry",
    "Reward",
    "RewardBuffer",
    "RewardFlushError",
    "RewardOutcome",
    "RewardResult",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceTimeoutError",
    "Stats",
    "error_class",
]
