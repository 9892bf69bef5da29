"""A live bandit read as a Bayesian A/B/n experiment: the report behind ``Engine.report`` and
the service's ``GET /v1/bandits/{name}/report``.

Probability best, expected loss and the credible lift of every arm (exact for two arms, Monte
Carlo for more; :func:`~tsbandit.experiments.experiment_report`), the decision of a stopping
rule, and the sample-ratio-mismatch (SRM) status of the decisions in the bandit's event log.

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
    adaptive the policy (martingale CLT; see :func:`~tsbandit.experiments.srm_check_adaptive`,
    calibration measured there). Thompson sampling's propensities are Monte-Carlo estimates
    shared by every decision of one model version: their variance is added, grouped by the
    decisions' ``model_version``.
more arms, no ``split``, the ``random`` rule, every logged propensity ``1/K``
    Pearson against the equal split (``method == "split"``): every decision was uniform over
    all arms.
more arms, no ``split``, any other rule
    Against every arm's probability, which the engine logs with each context-free single
    decision (``arm_probabilities``; up to 64 arms): ``D = N - E`` with ``E = sum_i pi_i`` is
    a vector martingale, ``D^T V^+ D`` chi-square(K - 1) (see
    :func:`~tsbandit.experiments.srm_check_allocation`); arms expected fewer than 5 times are
    pooled into one cell. ``not_checked`` when some decision lacks it (contextual or top-k
    decisions, more than 64 arms, events logged before it was): the chosen arm's propensity
    alone does not determine how much the policy gave each other arm.

Decisions for arms no longer in the bandit are left out (and counted in ``skipped``). The
check reads the whole event log (O(decisions)); ``srm=False`` skips it. The log's events are
read in one place, :func:`read_decisions`.

>>> from tsbandit.engine import BanditSpec, Engine
>>> engine = Engine.open("memory://", seed=0)
>>> _ = engine.create_bandit(BanditSpec(name="ab", arms=["A", "B"]))
>>> for _ in range(40):
...     d = engine.decide("ab"); _ = engine.record_reward(d.decision_id, int(d.arm == "B"))
>>> rep = engine.report("ab", rng=np.random.default_rng(0))
>>> rep["arms"][1]["prob_best"] > 0.99, rep["srm"]["status"], rep["srm"]["decisions"]
(True, 'ok', 40)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import ConfigurationError, InvalidSplitError
from ..events import DecisionEvent, iter_events
from ..policies.base import RewardModel
from ..policies.metrics import MetricSet
from ..policies.rules import SelectionRule
from ..policies.stats import Stats
from .metric_report import metric_report
from .posteriors import posteriors_from_model
from .report import experiment_report
from .srm import srm_check, srm_check_adaptive, srm_check_allocation
from .stopping import StoppingRule

__all__ = ["BanditLike", "LoggedDecisions", "bandit_report", "parse_split", "read_decisions"]


class BanditLike(Protocol):
    """What the report needs of a bandit's specification (an engine's ``BanditSpec``)."""

    @property
    def arms(self) -> Sequence[str]: ...
    @property
    def model(self) -> RewardModel: ...
    @property
    def rule(self) -> SelectionRule: ...
    @property
    def propensity_draws(self) -> int: ...


def parse_split(split: str | Sequence[float], n_arms: int) -> list[float]:
    """The intended split: ``"50,50"`` or a sequence, one finite weight > 0 per arm.

    >>> parse_split("50,50", 2)
    [50.0, 50.0]
    >>> parse_split("1,x", 2)
    Traceback (most recent call last):
    ...
    tsbandit.errors.InvalidSplitError: split == '1,x': expected comma-separated numbers, one per arm
    """
    def bad(why: str) -> InvalidSplitError:
        return InvalidSplitError(f"split == {split!r}: {why}")

    try:
        weights = [float(w) for w in (split.split(",") if isinstance(split, str) else split)]
    except (ValueError, TypeError):
        raise bad("expected comma-separated numbers, one per arm") from None
    if len(weights) != n_arms:
        raise bad(f"{len(weights)} weights for {n_arms} arms")
    if not all(np.isfinite(w) and w > 0 for w in weights):
        raise bad("weights must be finite and > 0")
    return weights


class LoggedDecisions(NamedTuple):
    """The decision events of a log, over a bandit's current arms (arm indices)."""

    chosen: list[int]
    propensities: list[float]
    versions: list[float]
    allocations: list[Any]
    skipped: int


def read_decisions(events: Iterable[Mapping[str, Any]], arms: Sequence[str]) -> LoggedDecisions:
    """The decision events of ``events``: chosen arm index, logged propensity, model version
    and ``arm_probabilities`` (NaN / None when absent); decisions of arms not in ``arms`` are
    only counted (``skipped``). The one place the report reads events
    (through :mod:`tsbandit.events`)."""
    index = {a: i for i, a in enumerate(arms)}
    out = LoggedDecisions([], [], [], [], 0)
    skipped = 0
    nan = float("nan")
    for event in iter_events(events, skip_malformed=True):
        if not isinstance(event, DecisionEvent):
            continue
        arm = index.get(event.arm)  # type: ignore[arg-type]
        if arm is None:
            skipped += 1
            continue
        out.chosen.append(arm)
        out.propensities.append(nan if event.propensity is None else float(event.propensity))
        out.versions.append(nan if event.model_version is None else float(event.model_version))
        out.allocations.append(event.arm_probabilities)
    return out._replace(skipped=skipped)


def _mc_draws(spec: BanditLike) -> int | None:
    """Draws behind the engine's first-slot propensities, or ``None`` when they are exact.

    Rules that override ``action_probabilities`` (epsilon-greedy, softmax, uniform) and
    deterministic rules are exact; the base class's (Thompson sampling) is Monte Carlo with
    ``propensity_draws`` draws, one estimate per model version (``Engine._first_slot``).
    """
    rule = spec.rule
    monte_carlo = (not rule.deterministic and type(rule).action_probabilities
                   is SelectionRule.action_probabilities)
    return int(spec.propensity_draws) if monte_carlo else None


def _srm(spec: BanditLike, logged: LoggedDecisions, split: list[float] | None,
         threshold: float) -> dict[str, Any]:
    index = {a: i for i, a in enumerate(spec.arms)}
    chosen, props, versions, allocations = (logged.chosen, logged.propensities,
                                            logged.versions, logged.allocations)
    skipped = logged.skipped
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


def _allocation_check(spec: BanditLike, index: dict[str, int], chosen: list[int],
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


def bandit_report(name: str, spec: BanditLike, stats: Stats, version: int,
                  events: Callable[[], Iterable[Mapping[str, Any]]], *,
                  rule: StoppingRule | None = None, level: float = 0.95,
                  split: str | Sequence[float] | None = None, srm: bool = True,
                  srm_threshold: float = 0.001, draws: int = 100_000,
                  rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The report of bandit ``name`` (the JSON of ``GET /v1/bandits/{name}/report``); for a
    bandit with several metrics, :func:`~tsbandit.experiments.metric_report.metric_report`'s
    (the objective, each metric's posterior, the constraints) with the same SRM check.

    Parameters
    ----------
    name, spec, stats, version
        The bandit: its name, specification, statistics and model version (one read).
    events
        Returns the bandit's event log (called only for the SRM check).
    rule
        The stopping rule (default :class:`StoppingRule`).
    split
        Intended split of a fixed-split test (see :func:`parse_split`), or None.
    rng
        Draws the Monte-Carlo estimates of bandits with more than two arms (fresh entropy
        when None).

    Raises
    ------
    InvalidSplitError
        A malformed ``split``.
    ConfigurationError
        A contextual model (no per-arm posterior to compare) or fewer than two arms.
    """
    weights = parse_split(split, len(spec.arms)) if split is not None else None
    rng = rng if rng is not None else np.random.default_rng()
    if isinstance(spec.model, MetricSet):  # several metrics: the objective, the constraints
        if len(spec.arms) < 2:
            raise ConfigurationError(f"bandit {name!r} has {len(spec.arms)} arm; a report "
                                     "compares at least 2")
        rep = metric_report(spec, stats, rule=rule, level=level, draws=draws, rng=rng)
    else:
        post = posteriors_from_model(spec.model, stats, spec.arms)  # type: ignore[arg-type]
        if post.n_arms < 2:
            raise ConfigurationError(f"bandit {name!r} has {post.n_arms} arm; a report "
                                     "compares at least 2")
        rep = experiment_report(post, rule=rule, rng=rng, level=level, draws=draws)
    if srm:
        rep["srm"] = _srm(spec, read_decisions(events(), spec.arms), weights, srm_threshold)
    else:
        rep["srm"] = {"status": "not_checked", "method": None, "threshold": srm_threshold,
                      "reason": "skipped (srm=false)"}
    return {"format": rep.pop("format"), "bandit": name, "model_version": version, **rep}
