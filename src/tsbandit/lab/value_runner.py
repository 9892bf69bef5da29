"""Several signals per decision in the lab: learners over metrics, and the runner that scores
them on :class:`~.offers_value.OfferValueWorld` (scenario ``offers-value``).

Every trial is one lane of batched statistics (a leading batch axis), as in the single-metric
runner; each round every policy decides for every lane with its rule's own batched ``choose``
and learns through :meth:`~tsbandit.policies.metrics.MetricSet.accumulate_metric`: the lab
drives the library's models and rules, it writes no posterior math of its own. All policies meet the
same customers and the same application, revenue and default draws (common random numbers).

Scored per trial, against the truth the world keeps:

* ``revenue_share``: expected revenue per offer shown (application rate times revenue of the
  arm shown, summed over rounds), as a share of the constrained oracle's. A policy that breaks
  the limit can exceed 1;
* ``feasible_revenue_share``: the same counting only decisions on feasible arms (revenue
  earned by breaking the limit is not revenue the bank wants);
* ``infeasible_share``: share of decisions on an arm whose true risk breaks the limit;
* ``regret``: cumulative expected revenue per offer of the constrained oracle minus the
  policy's (negative steps where the policy earns more on an infeasible arm);
* ``optimal_rate``: share of decisions on the constrained oracle's arm.

>>> res = run_offers_value(["constrained-ts", "oracle"], trials=2, rounds=50, seed=1)
>>> sorted(res.policies), res.summary()["policies"]["oracle"]["revenue_share"]
(['constrained-ts', 'oracle'], 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigurationError
from ..policies import LinearGaussian, LogisticLaplace, ThompsonSampling
from ..policies.metrics import MetricSet, MetricsPosterior
from ..policies.rules.constrained import ConstrainedThompson
from .learners import ModelLearner
from .offers import FEATURE_NAMES
from .offers_value import REVENUE_SD, TRUE_FORM_FEATURES, OfferValueWorld, ValueBlock
from .policies import DEFAULT_SCALE
from .runner import policy_seed

__all__ = ["VALUE_POLICIES", "VALUE_SCALE", "MetricsLearner", "ValueLearner", "ValueResult",
           "ValueRun", "run_offers_value", "value_metrics", "value_policy"]

_BLOCK = 250


class ValueLearner(Protocol):
    """One policy's lanes: an arm per lane, then that lane's signals."""

    def choose(self, contexts: np.ndarray) -> np.ndarray:
        """``(n,)`` arms for contexts ``(n, d)``."""

    def observe(self, arms: np.ndarray, apply: np.ndarray, revenue: np.ndarray,
                risk: np.ndarray, contexts: np.ndarray) -> None:
        """Signals ``(n,)`` of the arms shown; revenue and risk are NaN where apply is 0."""


class MetricsLearner:
    """A :class:`MetricSet` with a rule over ``n_trials`` lanes; ``columns`` selects the
    features the models see (``None``: all of them). The metric set's three metrics take the
    signals in :meth:`observe`'s order (application, revenue, risk).

    Observations of a round go through ``accumulate`` (one column per metric, NaN where
    unobserved); each metric's posterior follows with its model's batched O(d^2) update
    (``update_posterior_cells``), so the rule reads the same posterior a full refit gives.
    """

    def __init__(self, model: MetricSet, rule: Any, n_trials: int, n_arms: int,
                 rng: np.random.Generator, columns: Sequence[int] | None = None) -> None:
        if len(model.names) != 3:
            raise ConfigurationError(f"{model!r}: expected three metrics (application, "
                                     "revenue, risk)")
        self.model, self.rule, self.rng = model, rule, rng
        self.stats = model.init_stats(n_arms, (n_trials,))
        self.post = model.posterior(self.stats)
        self.cols = None if columns is None else np.asarray(columns)
        self._bi = np.arange(n_trials)

    def _x(self, contexts: np.ndarray | None) -> np.ndarray | None:
        if contexts is None or not self.model.contextual:
            return None
        return contexts if self.cols is None else contexts[:, self.cols]

    def choose(self, contexts: np.ndarray | None) -> np.ndarray:
        return np.asarray(self.rule.choose(self.model, self.post, self.stats, self.rng,
                                           self._x(contexts))[:, 0])

    def observe(self, arms: np.ndarray, apply: np.ndarray, revenue: np.ndarray,
                risk: np.ndarray, contexts: np.ndarray | None) -> None:
        ms, x = self.model, self._x(contexts)
        parts = list(self.post.parts)
        for i, r in enumerate((apply, revenue, risk)):
            seen = ~np.isnan(r)
            if not seen.any():
                continue
            bi, a, v = self._bi[seen], arms[seen], r[seen]
            xs = None if x is None else x[seen]
            ms.accumulate_metric(self.stats, i, a, v, xs, batch_index=bi)
            parts[i] = ms.models[i].update_posterior_cells(parts[i], ms.part(self.stats, i),
                                                           bi, a, v, xs)
        self.post = MetricsPosterior(tuple(parts))


class _ApplicationsLearner:
    """A single-metric policy learning from applications only (the ``offers`` learners)."""

    def __init__(self, inner: ModelLearner) -> None:
        self.inner = inner

    def choose(self, contexts: np.ndarray) -> np.ndarray:
        return self.inner.choose(0, contexts)

    def observe(self, arms: np.ndarray, apply: np.ndarray, revenue: np.ndarray,
                risk: np.ndarray, contexts: np.ndarray) -> None:
        self.inner.observe(arms, apply, contexts)


class _OracleLearner:
    def __init__(self, world: OfferValueWorld) -> None:
        self.world = world

    def choose(self, contexts: np.ndarray) -> np.ndarray:
        return self.world.oracle_arms(contexts)

    def observe(self, *args: Any) -> None:
        """The oracle learns nothing."""


def value_metrics(d: int, revenue_precision: float = 1e-2, risk_noise: float = 0.2,
                  risk_precision: float = 25.0) -> MetricSet:
    """The metrics of the value world over ``d`` features, objective revenue per offer:

    * ``apply``: logistic (the contextual default; a ``given`` metric must be binary);
    * ``revenue`` given apply: linear, noise variance learned (prior guess 40^2, weight 1),
      weight prior precision ``revenue_precision`` relative to the noise (nearly flat);
    * ``risk`` given apply: linear, noise variance ``risk_noise``, weight prior precision
      ``risk_precision`` (sd 0.2 per weight). Both keep one early default from pinning an
      arm's predicted risk near 1: with a loose prior (precision 1) and a small noise
      variance (0.05-0.1) a single default among an arm's first few approvals sends its
      probability of passing below the rule's pessimism zone, and an arm ruled out never
      gets the data that would clear it (measured: 1-5 of 40 trials lost 30-50 points so).
    """
    apply = LogisticLaplace(n_features=d, prior_precision=3.0)
    revenue = LinearGaussian(n_features=d, prior_precision=revenue_precision,
                             noise_variance=REVENUE_SD**2, unknown_noise=True, noise_a0=1.0)
    risk = LinearGaussian(n_features=d, prior_precision=risk_precision,
                          noise_variance=risk_noise)
    return MetricSet({"apply": apply, "revenue": {"model": revenue, "given": "apply"},
                      "risk": {"model": risk, "given": "apply"}}, objective={"revenue": 1.0})


#: posterior scale of the constrained learners (tempering, as the contextual default's 0.25)
VALUE_SCALE = 0.5

_Factory = Callable[[OfferValueWorld, int, np.random.Generator], ValueLearner]


def _constrained(true_form: bool) -> _Factory:
    def make(world: OfferValueWorld, n: int, rng: np.random.Generator) -> ValueLearner:
        cols = [FEATURE_NAMES.index(f) for f in TRUE_FORM_FEATURES] if true_form else None
        ms = value_metrics(len(cols) if cols else len(FEATURE_NAMES))
        rule = ConstrainedThompson(({"metric": "risk", "max": world.risk_limit},),
                                   scale=VALUE_SCALE)
        return MetricsLearner(ms, rule, n, world.n_arms, rng, cols)
    return make


def _unconstrained(world: OfferValueWorld, n: int, rng: np.random.Generator) -> ValueLearner:
    return MetricsLearner(value_metrics(len(FEATURE_NAMES)),
                          ThompsonSampling(scale=VALUE_SCALE), n, world.n_arms, rng)


def _applications(world: OfferValueWorld, n: int, rng: np.random.Generator) -> ValueLearner:
    model = LogisticLaplace(n_features=len(FEATURE_NAMES), prior_precision=3.0)
    return _ApplicationsLearner(ModelLearner(model, ThompsonSampling(scale=DEFAULT_SCALE), n,
                                             world.n_arms, rng))


#: name -> (description, factory)
VALUE_POLICIES: dict[str, tuple[str, _Factory]] = {
    "constrained-ts": ("constrained TS (posterior scale 0.5) over apply (logistic), revenue "
                       "and risk given apply (linear), all 11 features; risk <= the limit",
                       _constrained(False)),
    "true-form-ts": ("the same told the true functional form: its models see only the 6 "
                     "features the world's functions are linear in", _constrained(True)),
    "value-ts": ("TS on revenue per offer over the same metrics, no constraint",
                 _unconstrained),
    "ts-applications": ("single-metric TS on applications (the offers scenario's default "
                        "ts: logistic, posterior scale 0.25)", _applications),
    "oracle": ("the constrained oracle: knows the true functions, best feasible arm per "
               "customer", lambda world, n, rng: _OracleLearner(world)),
}


def value_policy(name: str, world: OfferValueWorld, n_trials: int,
                 rng: np.random.Generator) -> ValueLearner:
    """The learner called ``name`` (see :data:`VALUE_POLICIES`) for ``n_trials`` lanes."""
    if name not in VALUE_POLICIES:
        raise ConfigurationError(f"unknown policy {name!r} for offers-value; known: "
                                 f"{', '.join(VALUE_POLICIES)}")
    return VALUE_POLICIES[name][1](world, n_trials, rng)


@dataclass
class ValueRun:
    """One policy's decisions ``(rounds, trials)`` and their true consequences."""

    name: str
    chosen: np.ndarray
    value: np.ndarray
    infeasible: np.ndarray
    wall_seconds: float = 0.0

    def per_trial(self, oracle_value: np.ndarray, oracle_arm: np.ndarray,
                  last: int | None = None) -> dict[str, np.ndarray]:
        """``revenue_share``, ``feasible_revenue_share``, ``infeasible_share``, ``regret``,
        ``optimal_rate`` per trial (over the last ``last`` rounds when given)."""
        s = slice(-last, None) if last else slice(None)
        v, o = self.value[s], oracle_value[s]
        return {"revenue_share": v.sum(axis=0) / o.sum(axis=0),
                "feasible_revenue_share": np.where(self.infeasible[s], 0.0, v).sum(axis=0)
                / o.sum(axis=0),
                "infeasible_share": self.infeasible[s].mean(axis=0),
                "regret": (o - v).sum(axis=0),
                "optimal_rate": (self.chosen[s] == oracle_arm[s]).mean(axis=0)}


@dataclass
class ValueResult:
    """A run of ``offers-value``: every policy's :class:`ValueRun` and the oracle's truth."""

    scenario: str
    environment: dict[str, Any]
    trials: int
    rounds: int
    seed: int
    oracle_value: np.ndarray
    oracle_arm: np.ndarray
    policies: dict[str, ValueRun] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self, last: int | None = None) -> dict[str, Any]:
        """JSON-safe: per policy the mean over trials of every score, and the per-trial
        values (``per_trial``)."""
        out: dict[str, Any] = {}
        for name, run in self.policies.items():
            pt = run.per_trial(self.oracle_value, self.oracle_arm, last)
            out[name] = {**{k: float(v.mean()) for k, v in pt.items()},
                         "revenue_share_sd": float(pt["revenue_share"].std(ddof=1))
                         if self.trials > 1 else 0.0,
                         "per_trial": {k: v.round(6).tolist() for k, v in pt.items()},
                         "wall_seconds": run.wall_seconds,
                         "description": VALUE_POLICIES.get(name, ("",))[0]}
        return {"scenario": self.scenario, "kind": "metrics", "trials": self.trials,
                "rounds": self.rounds, "seed": self.seed, "environment": self.environment,
                "oracle_revenue_per_offer": float(self.oracle_value.mean()),
                "policies": out, "notes": list(self.notes)}


def run_offers_value(policies: Sequence[str] | None = None, trials: int = 10,
                     rounds: int = 3000, seed: int | None = 0,
                     world: OfferValueWorld | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     learners: dict[str, ValueLearner] | None = None) -> ValueResult:
    """Run policies (names of :data:`VALUE_POLICIES`, and/or ready ``learners`` over
    ``trials`` lanes, e.g. a peer library's) on the value world, paired.

    Each policy's stream is derived from ``seed`` and its name, as in :func:`~.runner.
    simulate`: a policy's results do not depend on which others run beside it.
    """
    w = world or OfferValueWorld()
    names = list(policies) if policies is not None else list(VALUE_POLICIES)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**62))
    n, T = int(trials), int(rounds)
    run_learners: dict[str, ValueLearner] = {
        p: value_policy(p, w, n, np.random.default_rng(policy_seed(seed, p))) for p in names}
    run_learners.update(learners or {})
    episode = w.episode(n, T, np.random.SeedSequence(seed, spawn_key=(0,)))
    runs = {p: ValueRun(p, np.zeros((T, n), np.intp), np.zeros((T, n)), np.zeros((T, n), bool))
            for p in run_learners}
    o_val, o_arm = np.zeros((T, n)), np.zeros((T, n), np.intp)
    lanes = np.arange(n)
    for start in range(0, T, _BLOCK):
        size = min(_BLOCK, T - start)
        blk = episode.block(start, size)
        assert isinstance(blk, ValueBlock)
        ctx, u_apply, revenue, risk = blk.contexts, blk.noise, blk.revenue, blk.risk
        z_rev, u_risk = blk.revenue_noise, blk.risk_noise
        assert ctx is not None and u_apply is not None and revenue is not None
        assert risk is not None and z_rev is not None and u_risk is not None
        values = blk.expected * revenue
        feas = np.asarray(risk <= w.risk_limit)
        best = np.argmax(np.where(feas, values, -np.inf), axis=-1)
        o_arm[start:start + size] = best
        o_val[start:start + size] = np.take_along_axis(values, best[..., None], -1)[..., 0]
        for p, learner in run_learners.items():
            run, t0 = runs[p], time.perf_counter()
            for b in range(size):
                x = ctx[b]
                a = learner.choose(x)
                applied = u_apply[b] < blk.expected[b, lanes, a]
                rev = np.where(applied, revenue[b, lanes, a] + w.revenue_sd * z_rev[b], np.nan)
                dflt = np.where(applied, (u_risk[b] < risk[b, lanes, a]) * 1.0, np.nan)
                learner.observe(a, applied.astype(float), rev, dflt, x)
                run.chosen[start + b] = a
                run.value[start + b] = values[b, lanes, a]
                run.infeasible[start + b] = ~feas[b, lanes, a]
            run.wall_seconds += time.perf_counter() - t0
        if progress is not None:
            progress(start + size, T)
    return ValueResult("offers-value", w.describe(), n, T, seed, o_val, o_arm, runs)
