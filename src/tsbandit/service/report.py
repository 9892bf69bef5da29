"""Experiment endpoints: ``GET /v1/bandits/{name}/report`` and ``GET /v1/bandits/{name}/events``.

``/report`` reads a bandit as a Bayesian A/B/n experiment (below); ``/events`` streams the
bandit's event log as JSON Lines, the format :func:`tsbandit.evaluation.load_event_log` reads
(``tsbandit evaluate events.jsonl``), so a live service's decisions can be evaluated off-policy.

The report
----------

Probability best, expected loss and the credible lift of every arm (exact for two arms, Monte
Carlo for more), the decision of a stopping rule (a winner only when the rule holds), and the
sample-ratio-mismatch (SRM) status of the decisions in the event log. It is
:meth:`Engine.report <tsbandit.engine.Engine.report>` (the statistics, and what the SRM check
compares the decisions with, are explained in :mod:`tsbandit.experiments.bandit_report`); this
module only reads the query and shapes the answer.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from ..engine import Engine, StoppingRule
from ..errors import InvalidSplitError
from .configs import drop_absent
from .deps import EngineDep, RouteTable
from .errors import ERROR_RESPONSES, ErrorResponse
from .schemas import ConstraintStats, EventLine, MetricArmStats

__all__ = ["NDJSONResponse", "ReportOut", "bandit_report", "table"]

table = RouteTable(prefix="/v1", responses=ERROR_RESPONSES)


# ----- response ---------------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)


class ReportArm(_Out):
    """One arm of the report."""

    name: str
    n: float = Field(description="Observations in the posterior (rewarded decisions; "
                     "decayed counts for a bandit with a half-life).")
    mean: float | None = Field(description="Posterior mean of the metric (null if undefined).")
    interval: list[float | None] = Field(description="Equal-tailed credible interval at "
                                         "`level`: [low, high].")
    prob_best: float = Field(description="Posterior probability that this arm is the best.")
    prob_best_se: float = Field(description="Monte-Carlo standard error (0 when exact).")
    expected_loss: float | None = Field(
        description="E[max_j X_j - X_this]: metric units given up, in expectation, by "
        "shipping this arm.")
    expected_loss_se: float | None = Field(description="Monte-Carlo standard error.")
    prob_feasible: float | None = Field(None, description="Several metrics: the probability "
                                        "that every constraint of this arm holds.")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("prob_feasible",))


class ReportRule(_Out):
    """The stopping rule applied."""

    prob_best: float | None
    expected_loss: float | None
    min_samples: int


class ReportDecision(_Out):
    """The rule's verdict: ``winner`` is null unless ``stop``."""

    stop: bool
    winner: str | None
    reason: str


class ReportLift(_Out):
    """Credible interval of the lift of the second arm over the first (two arms only)."""

    control: str
    treatment: str
    level: float
    low: float | None
    median: float | None
    high: float | None
    prob_positive: float | None
    relative: bool = Field(description="True: X_t / X_c - 1; false: X_t - X_c.")


class ReportSRM(_Out):
    """Sample-ratio-mismatch check of the decisions per arm."""

    status: Literal["ok", "mismatch", "not_checked"]
    method: Literal["split", "propensity"] | None = Field(
        description="What the counts were compared with: the given split, or the allocation "
        "implied by the logged propensities (two arms).")
    reason: str
    threshold: float = Field(description="Flagged when p_value < threshold.")
    statistic: float | None = None
    p_value: float | None = None
    dof: int | None = None
    observed: list[float] | None = Field(None, description="Decisions per arm.")
    expected: list[float] | None = Field(None, description="Expected decisions per arm.")
    decisions: int = Field(0, description="Decisions counted.")
    skipped: int = Field(0, description="Decisions of arms the bandit no longer has.")


class ReportObjective(_Out):
    """Several metrics: the objective's weights and per-arm costs."""

    weights: dict[str, float]
    costs: dict[str, float]


class ReportOut(_Out):
    """A bandit's arms as a Bayesian A/B/n experiment.

    A bandit with several metrics is reported on its objective (``metric == "objective"``,
    Monte Carlo): ``prob_best`` is the probability of the highest objective among the arms
    whose constraints hold in the same draw, ``expected_loss`` is against that arm, each arm
    has ``prob_feasible``, a winner must also pass its constraints with the rule's
    probability, and ``metrics``, ``objective``, ``constraints`` and ``prob_none_feasible`` are
    added.
    """

    format: Literal[1]
    bandit: str
    model_version: int
    metric: Literal["binary", "normal", "objective"]
    level: float
    arms: list[ReportArm]
    method: Literal["exact", "monte_carlo"]
    draws: int = Field(description="Monte-Carlo draws (0 when exact).")
    rule: ReportRule
    decision: ReportDecision
    lift: ReportLift | None
    srm: ReportSRM
    metrics: dict[str, dict[str, MetricArmStats]] | None = Field(
        None, description="Several metrics: per metric, per arm, the posterior of "
        "E[metric | given].")
    objective: ReportObjective | None = None
    constraints: list[ConstraintStats] | None = None
    prob_none_feasible: float | None = Field(
        None, description="Several metrics: the probability that no arm passes.")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("metrics", "objective", "constraints",
                                           "prob_none_feasible"))


# ----- the report ------------------------------------------------------------------------------
def bandit_report(engine: Engine, name: str, *, rule: StoppingRule | None = None,
                  level: float = 0.95, split: str | None = None, srm: bool = True,
                  srm_threshold: float = 0.001, draws: int = 100_000,
                  rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The report of bandit ``name`` (the JSON of ``GET /v1/bandits/{name}/report``):
    :meth:`Engine.report <tsbandit.engine.Engine.report>`, with a malformed ``split`` raised as
    the bad query value it is.

    Raises :class:`~tsbandit.errors.BanditNotFoundError` for an unknown bandit and
    :class:`~tsbandit.errors.ConfigurationError` for a contextual model (no per-arm
    posterior to compare) or fewer than two arms; a malformed ``split`` raises FastAPI's
    ``RequestValidationError`` (422 ``invalid_request``). ``rng`` draws the Monte-Carlo
    estimates of bandits with more than two arms (fresh entropy when ``None``).
    """
    try:
        return engine.report(name, rule=rule, level=level, split=split, srm=srm,
                             srm_threshold=srm_threshold, draws=draws, rng=rng)
    except InvalidSplitError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "split"),
                                       "msg": str(exc), "input": split}]) from None


# ----- the route -------------------------------------------------------------------------------
Name = Annotated[str, Path(description="Bandit name", examples=["credit_card_offers"])]


@table.route("GET", "/bandits/{name}/report", "read", operation_id="get_report",
             response_model=ReportOut,
             responses={404: {"model": ErrorResponse, "description": "Unknown bandit"}},
             tags=["experiments"])
def report(
    name: Name,
    engine: EngineDep,
    prob_best: Annotated[float, Query(
        gt=0, lt=1, allow_inf_nan=False,
        description="Stop when an arm's probability of being best reaches this.")] = 0.99,
    expected_loss: Annotated[float | None, Query(
        gt=0, allow_inf_nan=False,
        description="Also stop when an arm's expected loss is at most this (metric units).")
    ] = None,
    min_samples: Annotated[int, Query(
        ge=0, le=10**12, description="Observations every arm needs before any stop.")] = 100,
    level: Annotated[float, Query(gt=0, lt=1, allow_inf_nan=False,
                                  description="Credible level.")] = 0.95,
    split: Annotated[str | None, Query(
        max_length=10_000, description="Intended split of a fixed-split test, one weight "
        "per arm in the bandit's arm order (e.g. 50,50). Default: the allocation implied by "
        "the logged propensities (two arms).")] = None,
    srm: Annotated[bool, Query(description="Run the SRM check (reads the event log).")
                   ] = True,
    srm_threshold: Annotated[float, Query(gt=0, lt=1, allow_inf_nan=False,
                                          description="SRM flag: p < this.")] = 0.001,
    draws: Annotated[int, Query(ge=1000, le=1_000_000,
                                description="Monte-Carlo draws (more than two arms).")
                     ] = 100_000,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Seed of the "
                                      "Monte-Carlo draws (default: fresh entropy).")] = None,
) -> Any:
    """Probability best, expected loss, lift, the stopping rule's winner and the SRM status.

    The winner is null unless the rule holds. Checking this report repeatedly and stopping at
    the first winner is sequential testing: see docs/service.md for the measured false-positive
    rate of that (peeking) and how to choose the threshold.
    """
    rule = StoppingRule(prob_best=prob_best, expected_loss=expected_loss,
                        min_samples=min_samples)
    return bandit_report(engine, name, rule=rule, level=level, split=split, srm=srm,
                         srm_threshold=srm_threshold, draws=draws,
                         rng=np.random.default_rng(seed))


# ----- the event log ---------------------------------------------------------------------------
class NDJSONResponse(StreamingResponse):
    """A streamed body of JSON Lines (one JSON object per line)."""

    media_type = "application/x-ndjson"


def _lines(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    if first is None:
        return
    for event in itertools.chain([first], rest):
        yield (json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n").encode()


@table.route("GET", "/bandits/{name}/events", "private", operation_id="list_events",
             response_class=NDJSONResponse,
             responses={200: {"model": EventLine,
                              "description": "The event log as JSON Lines "
                              "(application/x-ndjson): one JSON object per line, in append "
                              "order (decision, reward and expired events); the schema is "
                              "that of one line. No events: an empty body."},
                        404: {"model": ErrorResponse, "description": "Unknown bandit"}},
             tags=["experiments"])
def events(name: Name, engine: EngineDep) -> Any:
    """The bandit's event log as JSON Lines, for off-policy evaluation.

    The format of ``Engine.export_events``: load it with
    ``tsbandit.evaluation.load_event_log`` or ``tsbandit evaluate FILE --format jsonl``. It
    holds contexts and user ids, so it needs the API key whenever one is configured (like a
    write). Streamed: a store failure after the first event ends the stream early.
    """
    it = iter(engine.events(name))
    first = next(it, None)  # store errors surface here, as a JSON error response
    return NDJSONResponse(_lines(first, it))
