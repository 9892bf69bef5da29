"""Experiment endpoints: ``GET /v1/bandits/{name}/report`` and ``GET /v1/bandits/{name}/events``.

``/report`` reads a bandit as a Bayesian A/B/n experiment (below); ``/events`` streams the
bandit's event log as JSON Lines, the format :func:`tsbandit.evaluation.load_event_log` reads
(``tsbandit evaluate events.jsonl``), so a live service's decisions can be evaluated off-policy.

The report
----------

Probability best, expected loss and the credible lift of every arm (exact for two arms, Monte
Carlo for more), the decision of a stopping rule (a winner only when the rule holds), and the
sample-ratio-mismatch (SRM) status. The statistics come from
:mod:`tsbandit.experiments`; this module only reads the bandit and shapes the answer.

The intended split of the SRM check
-----------------------------------
Observed counts are the *decisions* per arm in the bandit's event log (the assignment; a
decision counts whether or not its reward came). What they are compared with:

``split`` given (a fixed-split test, e.g. ``split=50,50``, one weight per arm in the bandit's
arm order)
    Pearson's chi-square against that split (``method == "split"``).
two arms, no ``split`` (an adaptive bandit)
    The allocation the policy itself logged (``method == "propensity"``): with two arms the
    logged propensity of the chosen arm is the whole distribution (the other arm had
    ``1 - p``), so the expected count of arm B is ``sum_i pi_i(B)`` and ``(N_B - E_B)^2 /
    sum_i pi_i(B)(1 - pi_i(B))`` is chi-square(1) under a correct assignment and log, however
    adaptive the policy (martingale CLT; see
    :func:`tsbandit.experiments.srm_check_adaptive`, calibration measured there). Thompson
    sampling's propensities are Monte-Carlo estimates shared by every decision of one model
    version: their variance is added, grouped by the decisions' ``model_version``.
more arms, no ``split``, the ``random`` rule, every logged propensity ``1/K``
    Pearson against the equal split (``method == "split"``): every decision was uniform over
    all arms.
more arms, no ``split``, any other rule
    Against every arm's probability, which the engine logs with each context-free single
    decision (``arm_probabilities``; up to 64 arms): ``D = N - E`` with ``E = sum_i pi_i`` is
    a vector martingale, ``D^T V^+ D`` chi-square(K - 1) (see
    :func:`tsbandit.experiments.srm_check_allocation`); arms expected fewer than 5 times are
    pooled into one cell. ``not_checked`` when some decision lacks it (contextual or top-k
    decisions, more than 64 arms, events logged before it was): the chosen arm's propensity
    alone does not determine how much the policy gave each other arm.

Decisions for arms no longer in the bandit are left out (and counted in ``skipped``). The
check reads the whole event log (O(decisions)); ``srm=false`` skips it.
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
from pydantic import BaseModel, ConfigDict, Field

from ..engine import BanditSpec, Engine
from ..errors import BanditNotFoundError, ConfigurationError
from ..experiments import (
    StoppingRule,
    experiment_report,
    posteriors_from_model,
    srm_check,
    srm_check_adaptive,
    srm_check_allocation,
)
from ..policies.rules import SelectionRule
from .deps import EngineDep, RouteTable
from .errors import ERROR_RESPONSES, ErrorResponse
from .schemas import EventLine

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


class ReportOut(_Out):
    """A bandit's arms as a Bayesian A/B/n experiment."""

    format: Literal[1]
    bandit: str
    model_version: int
    metric: Literal["binary", "normal"]
    level: float
    arms: list[ReportArm]
    method: Literal["exact", "monte_carlo"]
    draws: int = Field(description="Monte-Carlo draws (0 when exact).")
    rule: ReportRule
    decision: ReportDecision
    lift: ReportLift | None
    srm: ReportSRM


# ----- the report ------------------------------------------------------------------------------
def _bad_split(text: str, why: str) -> RequestValidationError:
    """A bad ``split`` is a bad query value: 422 ``invalid_request``, like the other ones."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", "split"),
                                    "msg": f"split == {text!r}: {why}", "input": text}])


def _parse_split(text: str, n_arms: int) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise _bad_split(text, "expected comma-separated numbers, one per arm") from None
    if len(weights) != n_arms:
        raise _bad_split(text, f"{len(weights)} weights for {n_arms} arms")
    if not all(np.isfinite(w) and w > 0 for w in weights):
        raise _bad_split(text, "weights must be finite and > 0")
    return weights


def _mc_draws(spec: BanditSpec) -> int | None:
    """Draws behind the engine's first-slot propensities, or ``None`` when they are exact.

    Rules that override ``action_probabilities`` (epsilon-greedy, softmax, uniform) and
    deterministic rules are exact; the base class's (Thompson sampling) is Monte Carlo with
    ``propensity_draws`` draws, one estimate per model version (``Engine._first_slot``).
    """
    rule = spec.rule
    monte_carlo = (not rule.deterministic and type(rule).action_probabilities
                   is SelectionRule.action_probabilities)
    return int(spec.propensity_draws) if monte_carlo else None


def _srm(engine: Engine, name: str, spec: BanditSpec, split: list[float] | None,
         threshold: float) -> dict[str, Any]:
    index = {a: i for i, a in enumerate(spec.arms)}
    chosen: list[int] = []
    props: list[float] = []
    versions: list[float] = []
    allocations: list[Any] = []
    skipped = 0
    for event in engine.store.iter_events(name):
        if event.get("type") != "decision":
            continue
        arm = index.get(event.get("arm"))  # type: ignore[arg-type]
        if arm is None:
            skipped += 1
            continue
        chosen.append(arm)
        props.append(float(event.get("propensity", float("nan"))))
        versions.append(float(event.get("model_version", float("nan"))))
        allocations.append(event.get("arm_probabilities"))
    base: dict[str, Any] = {"threshold": threshold, "decisions": len(chosen), "skipped": skipped}
    if not chosen:
        return {**base, "status": "not_checked", "method": None,
                "reason": "no decisions logged yet"}
    if split is not None:
        res = srm_check(np.bincount(chosen, minlength=len(spec.arms)), split,
                        threshold=threshold)
        what = "the split " + ":".join(f"{w:g}" for w in split)
    elif (len(spec.arms) > 2 and spec.rule.kind == "random"
          and np.allclose(props, 1.0 / len(spec.arms), rtol=0.0, atol=1e-9)):
        res = srm_check(np.bincount(chosen, minlength=len(spec.arms)), threshold=threshold)
        what = "the equal split of the uniform random rule"
    elif len(spec.arms) == 2:
        p = np.asarray(props)
        if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
            return {**base, "status": "not_checked", "method": None,
                    "reason": "some decisions in the event log have no valid propensity"}
        v = np.asarray(versions)
        res = srm_check_adaptive(chosen, p, groups=v if np.isfinite(v).all() else None,
                                 mc_draws=_mc_draws(spec), threshold=threshold)
        what = "the allocation implied by the logged propensities"
    else:
        checked = _allocation_check(spec, index, chosen, versions, allocations, threshold)
        if isinstance(checked, str):
            return {**base, "status": "not_checked", "method": None, "reason": checked}
        res, what, dropped = checked
        base["decisions"] -= dropped
        base["skipped"] += dropped
    out = res.to_dict()
    verdict = "inconsistent" if res.mismatch else "consistent"
    return {**base, **out,
            "reason": f"decisions per arm {verdict} with {what} (chi-square p = "
                      f"{res.p_value:.3g}, flagged below {threshold:g})"}


_MIN_EXPECTED = 5.0  # decisions expected per cell of the chi-square (arms below are pooled)


def _allocation_check(spec: BanditSpec, index: dict[str, int], chosen: list[int],
                      versions: list[float], allocations: list[Any], threshold: float
                      ) -> tuple[Any, str, int] | str:
    """The K-arm check against every decision's logged ``arm_probabilities``; a reason string
    when it cannot run. Decisions whose allocation gave weight to an arm that is no longer
    the bandit's are left out (their counted arm set differs). Arms expected fewer than 5 times
    are pooled into one cell (the chi-square's usual condition; a Monte-Carlo estimate of a
    rare arm is mostly 0, unbiased only on average)."""
    k = len(spec.arms)
    if any(not isinstance(a, dict) for a in allocations):
        return (f"{k} arms: some decisions were logged without every arm's probability "
                "(contextual or top-k decisions, more than 64 arms, or logged by an older "
                "version); pass split=... for a fixed-split test")
    rows, keep = [], []
    for alloc in allocations:
        row = np.zeros(k)
        ok = True
        for arm, p in alloc.items():
            j = index.get(arm)
            if j is None or not isinstance(p, (int, float)):
                ok = False
                break
            row[j] = float(p)
        keep.append(ok)
        if ok:
            rows.append(row)
    dropped = keep.count(False)
    if not rows:
        return "no decision's allocation is over the bandit's current arms"
    pi = np.array(rows)
    a = np.array([c for c, ok in zip(chosen, keep, strict=True) if ok])
    v = np.array([g for g, ok in zip(versions, keep, strict=True) if ok])
    expected = pi.sum(axis=0)
    cells = _pool_rare(expected)
    if cells.max() < 1:
        return (f"fewer than 2 cells of arms expected {_MIN_EXPECTED:g} or more times: too "
                "few decisions to check the allocation")
    pooled = np.zeros((pi.shape[0], int(cells.max()) + 1))
    np.add.at(pooled.T, cells, pi.T)
    res = srm_check_allocation(cells[a], pooled, groups=v if np.isfinite(v).all() else None,
                               mc_draws=_mc_draws(spec), threshold=threshold)
    what = "every arm's logged probability, decision by decision"
    rare = [arm for arm, e in zip(spec.arms, expected, strict=True) if e < _MIN_EXPECTED]
    if rare:
        what += f" (arms expected < {_MIN_EXPECTED:g} times pooled: {', '.join(rare)})"
    return res, what, dropped


def _pool_rare(expected: np.ndarray) -> np.ndarray:
    """Cell index of each arm: arms expected at least ``_MIN_EXPECTED`` times keep their own
    cell, the rest share the last one -- merged into the smallest other cell when even
    together they are expected fewer times."""
    big = expected >= _MIN_EXPECTED
    cells = np.cumsum(big) - 1
    rest = ~big
    if not rest.any():
        return cells
    if expected[rest].sum() >= _MIN_EXPECTED or not big.any():
        cells[rest] = int(big.sum())  # a cell of their own
    else:
        cells[rest] = cells[int(np.argmin(np.where(big, expected, np.inf)))]
    return cells


def bandit_report(engine: Engine, name: str, *, rule: StoppingRule | None = None,
                  level: float = 0.95, split: str | None = None, srm: bool = True,
                  srm_threshold: float = 0.001, draws: int = 100_000,
                  rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The report of bandit ``name`` (the JSON of ``GET /v1/bandits/{name}/report``).

    Raises :class:`~tsbandit.errors.BanditNotFoundError` for an unknown bandit and
    :class:`~tsbandit.errors.ConfigurationError` for a contextual model (no per-arm
    posterior to compare) or fewer than two arms; a malformed ``split`` raises FastAPI's
    ``RequestValidationError`` (a bad query value: 422 ``invalid_request``). ``rng`` draws the
    Monte-Carlo estimates of bandits with more than two arms (fresh entropy when ``None``).
    """
    spec, stats, version = engine.statistics(name)
    weights = _parse_split(split, len(spec.arms)) if split is not None else None
    post = posteriors_from_model(spec.model, stats, spec.arms)  # type: ignore[arg-type]
    if post.n_arms < 2:
        raise ConfigurationError(f"bandit {name!r} has {post.n_arms} arm; a report compares "
                                 "at least 2")
    rng = rng if rng is not None else np.random.default_rng()
    rep = experiment_report(post, rule=rule, rng=rng, level=level, draws=draws)
    if srm:
        rep["srm"] = _srm(engine, name, spec, weights, srm_threshold)
    else:
        rep["srm"] = {"status": "not_checked", "method": None, "threshold": srm_threshold,
                      "reason": "skipped (srm=false)"}
    return {"format": rep.pop("format"), "bandit": name, "model_version": version, **rep}


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
    if not engine.store.exists(name):
        raise BanditNotFoundError(f"no bandit named {name!r}")
    it = iter(engine.store.iter_events(name))
    first = next(it, None)  # store errors surface here, as a JSON error response
    return NDJSONResponse(_lines(first, it))
