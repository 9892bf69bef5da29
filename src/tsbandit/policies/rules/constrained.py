"""Constrained Thompson sampling over several metrics (Daulton et al., 2019), with a pooled prior.

Every decision draws every metric's posterior once (:meth:`~..metrics.MetricSet.
sample_metrics`), keeps the arms whose *drawn* constraint values pass (``risk <= 0.05``, or
relative to a baseline arm: ``risk_a - risk_baseline <= 0.01``), and takes the argmax of the
drawn objective among them. When no arm passes: the baseline arm if one is named, else the arm
most likely to pass (its posterior probability of passing, normal approximation). A ranking
(top-k) puts passing arms first by objective, then the others by probability of passing.

The lock-on problem, and what this rule does about it. With a flat ``Beta(1, 1)`` prior on a
binary constraint metric observed only ``given`` a conversion (default risk given an
application), an arm with no data passes ``risk <= 0.05`` with probability 0.05: the prior, not
data, calls it infeasible, and an arm that rarely converts rarely gets the data that would say
otherwise -- worse after one unlucky early default -- so plain constrained TS locks onto
whichever feasible arm it learned first. The mirror problem: an arm that is probably
infeasible is retried whenever a draw is lucky, and rarely gets the data that would rule it
out. Two changes, each on the posterior probability ``p`` that an arm's constraint holds:

1. **A prior pooled across arms** (``pool = w``, default 2): a binary constraint metric's prior
   is ``Beta(w m, w (1 - m))`` with ``m`` the rate over all arms' observations (empirical
   Bayes; the configured prior until some arm has data). An arm without data then looks like
   the bandit's arms do, and ``w`` pseudo-observations yield quickly to its own data. Additive
   statistics make it cheap: the pooled counts are sums over the arm axis.
2. **Three zones of** ``p`` instead of the draw alone: ``p >= optimism`` (default 0.2) passes
   whatever the draw (an arm whose constraint is still uncertain keeps being explored, and its
   data come in at the rate its objective earns), ``p < pessimism`` (default 0.05) fails
   whatever the draw (a probably-infeasible arm is not retried on lucky draws), and in between
   the draw decides (probability matching, as Thompson sampling).

``p`` is exact for an absolute bound on a Beta metric (the regularized incomplete beta), a
normal approximation otherwise; it changes only with the statistics, so it is cached on the
posterior. ``pool = optimism = pessimism = 0`` is plain constrained TS. Measured on the
context-free world of ``tests/policies/mo_world.py`` (``benchmarks/bench_metrics.py``).

>>> import numpy as np
>>> from tsbandit.policies.metrics import MetricSet
>>> ms = MetricSet({"apply": "beta", "risk": {"model": "beta", "given": "apply"}},
...                objective={"apply": 1.0})
>>> rule = ConstrainedThompson(({"metric": "risk", "max": 0.05},))
>>> s = ms.init_stats(3)
>>> rule.choose(ms, ms.posterior(s), s, np.random.default_rng(0)).shape
(1,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._scipy import betainc, ndtr
from ...errors import ConfigurationError
from .. import _jit
from .. import _metrics_kernels as _mk
from ..base import Posterior, RewardModel, check_positive
from ..beta import BetaPosterior
from ..metrics import MetricSet, MetricsPosterior
from ..stats import Stats
from .base import SelectionRule

__all__ = ["APPLIED", "ConstrainedThompson", "check_constraint", "pass_probability"]

#: what a decision applied: the constrained argmax, the baseline, the most likely to pass
APPLIED = ("constrained", "baseline", "most_likely")


def check_constraint(c: Mapping[str, Any], n_arms: int | None = None) -> dict[str, Any]:
    """A constraint as ``{"metric", "max" | "min", "relative_to"?}`` (an arm index), or a
    :class:`ConfigurationError` naming what is wrong."""
    if not isinstance(c, Mapping) or "metric" not in c:
        raise ConfigurationError(f"constraint {c!r} needs a 'metric'")
    bad = set(c) - {"metric", "max", "min", "relative_to"}
    bounds = [k for k in ("max", "min") if k in c]
    if bad or len(bounds) != 1:
        raise ConfigurationError(f"constraint {dict(c)!r}: give 'metric' and one of 'max' or "
                                 "'min' (and optionally 'relative_to', an arm)")
    value = c[bounds[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigurationError(f"constraint on {c['metric']!r}: {bounds[0]} == {value!r}, "
                                 "must be a finite number")
    rel = c.get("relative_to")
    if rel is not None and (isinstance(rel, bool) or not isinstance(rel, int)
                            or (n_arms is not None and not 0 <= rel < n_arms)):
        raise ConfigurationError(f"constraint on {c['metric']!r}: relative_to == {rel!r}, "
                                 "must be an arm")
    return {"metric": str(c["metric"]), bounds[0]: float(value),
            **({} if rel is None else {"relative_to": int(rel)})}


@dataclass(frozen=True)
class ConstrainedThompson(SelectionRule):
    """Argmax of the drawn objective among arms whose drawn constraints pass.

    Parameters
    ----------
    constraints
        ``({"metric": "risk", "max": 0.05}, {"metric": "nps", "min": 0.0, "relative_to": 0})``
        (``relative_to`` is an arm index: the bound is on the difference to that arm).
    baseline
        Arm index chosen when no arm passes (default: the arm most likely to pass).
    pool
        Pseudo-observations of the prior pooled across arms for binary constraint metrics
        (0: the configured prior).
    optimism, pessimism
        A constraint whose posterior probability of holding is at least ``optimism`` passes,
        below ``pessimism`` fails, whatever the draw (0 and 0: the draw alone decides).
    scale
        Posterior spread multiplier (tempering), as :class:`ThompsonSampling`.
    """

    constraints: tuple[Mapping[str, Any], ...] = ()
    baseline: int | None = None
    pool: float = 2.0
    scale: float = 1.0
    optimism: float = 0.2
    pessimism: float = 0.05

    kind = "constrained"

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints",
                           tuple(check_constraint(c) for c in self.constraints))
        b = self.baseline
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ConfigurationError(f"baseline == {b!r}, must be an arm index")
        object.__setattr__(self, "pool", check_positive("pool", self.pool, allow_zero=True))
        object.__setattr__(self, "scale", check_positive("scale", self.scale))
        for name in ("optimism", "pessimism"):
            o = getattr(self, name)
            if isinstance(o, bool) or not isinstance(o, (int, float)) or not 0.0 <= o < 1.0:
                raise ConfigurationError(f"{name} == {o!r}, must be in [0, 1)")
            object.__setattr__(self, name, float(o))
        if self.pessimism and self.optimism and self.pessimism >= self.optimism:
            raise ConfigurationError(f"pessimism == {self.pessimism!r} must be below "
                                     f"optimism == {self.optimism!r}")

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "constraints": [dict(c) for c in self.constraints],
                "baseline": self.baseline, "pool": self.pool, "scale": self.scale,
                "optimism": self.optimism, "pessimism": self.pessimism}

    def check_model(self, model: RewardModel) -> MetricSet:
        """The model as a :class:`MetricSet` whose metrics the constraints name."""
        if not isinstance(model, MetricSet):
            raise ConfigurationError(f"{type(self).__name__} needs a MetricSet model")
        for c in self.constraints:
            model.index(c["metric"])
        return model

    # ----- the draws ----------------------------------------------------------------------
    def constraint_posterior(self, model: MetricSet, posterior: Posterior, stats: Stats
                             ) -> Posterior:
        """The posterior decisions draw from: binary constraint metrics' priors pooled across
        arms, every other metric's own posterior. The pooled parts are cached on
        ``posterior`` under a key naming the metrics they depend on, so they survive
        observations of the other metrics (:meth:`~..metrics.MetricSet.observe_one`)."""
        if self.pool == 0.0 or not self.constraints:
            return posterior
        key = ("pooled", self.pool, self._deps(model))
        pooled = posterior.cache.get(key)
        if pooled is None:
            pooled = posterior.cache[key] = self._pooled(model, stats)
        parts = list(posterior.parts)
        for i, part in pooled.items():
            parts[i] = part
        return MetricsPosterior(tuple(parts))

    def _deps(self, model: MetricSet) -> frozenset[int]:
        """The metrics the constraints read."""
        return frozenset(model.index(c["metric"]) for c in self.constraints)

    def _pooled(self, model: MetricSet, stats: Stats) -> dict[int, Any]:
        """``{metric index: pooled Beta posterior}`` of the binary constraint metrics."""
        out: dict[int, Any] = {}
        for i in sorted(self._deps(model)):
            m = model.models[i]
            if m.kind != "beta":
                continue
            s = model.part(stats, i)
            succ, fail = s["successes"], s["failures"]
            a0, b0 = m.alpha0, m.beta0  # type: ignore[attr-defined]
            if succ.ndim == 1:  # one bandit: the pooled prior in Python floats
                ssum, fsum = float(np.add.reduce(succ)), float(np.add.reduce(fail))
                if ssum + fsum > 0:
                    rate = (a0 + ssum) / (a0 + b0 + ssum + fsum)
                    a0 = max(self.pool * rate, 0.05)
                    b0 = max(self.pool * (1.0 - rate), 0.05)
                params = np.empty((2, succ.shape[0]))
                np.add(succ, a0, out=params[0])
                np.add(fail, b0, out=params[1])
                out[i] = BetaPosterior.from_params(params)
                continue
            ssum = succ.sum(axis=-1, keepdims=True)
            n = ssum + fail.sum(axis=-1, keepdims=True)
            rate = (a0 + ssum) / (a0 + b0 + n)
            pa = np.where(n > 0, np.maximum(self.pool * rate, 0.05), a0)
            pb = np.where(n > 0, np.maximum(self.pool * (1.0 - rate), 0.05), b0)
            out[i] = BetaPosterior.from_params(np.stack(np.broadcast_arrays(pa + succ,
                                                                            pb + fail)))
        return out

    def margins(self, model: MetricSet, draws: np.ndarray) -> np.ndarray:
        """Each constraint's drawn slack ``(C, ..., K)``: >= 0 where it passes."""
        out = []
        for c in self.constraints:
            v = draws[model.index(c["metric"])]
            rel = c.get("relative_to")
            if rel is not None:
                v = v - v[..., rel:rel + 1]
            out.append(c["max"] - v if "max" in c else v - c["min"])
        return np.stack(out) if out else np.zeros((0, *draws.shape[1:]))

    def pass_probability(self, model: MetricSet, posterior: Posterior,
                         contexts: np.ndarray | None = None) -> np.ndarray:
        """Posterior probability ``(C, *batch, K)`` that each constraint holds
        (:func:`pass_probability`)."""
        return pass_probability(self.constraints, model, posterior, contexts)

    def plausible(self, model: MetricSet, cpost: Posterior, contexts: np.ndarray | None,
                  cache: dict[Any, Any] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(sure, ruled_out)``, each ``(C, *batch, K)``: the constraint's posterior
        probability of holding is at least ``optimism`` (it passes whatever the draw), or below
        ``pessimism`` (it fails whatever the draw); None when both are 0. Cached in ``cache``
        (the decision's posterior's) when there is no context."""
        if not (self.optimism or self.pessimism) or not self.constraints:
            return None
        key = ("plausible", self.pool, self.optimism, self.pessimism, self._deps(model))
        if contexts is None and cache is not None and key in cache:
            return cache[key]
        prob = self.pass_probability(model, cpost, contexts)
        out = ((prob >= self.optimism) if self.optimism else np.zeros(prob.shape, bool),
               prob < self.pessimism)
        if contexts is None and cache is not None:
            cache[key] = out
        return out

    def scores(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               size: int | None = None) -> np.ndarray:
        """The drawn objective (constraints ignored; :meth:`choose` applies them)."""
        ms = self.check_model(model)
        return ms.objective_of(ms.sample_metrics(posterior, rng, contexts, size, self.scale))

    def explain(self, model: RewardModel, posterior: Posterior, stats: Stats,
                rng: np.random.Generator, contexts: np.ndarray | None = None,
                eligible: np.ndarray | None = None, k: int = 1, size: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Chosen arms ``(..., k)`` and what applied ``(...)``: an index into
        ``APPLIED`` (0 the constrained argmax, 1 the baseline, 2 the most likely to pass).

        Random numbers: one draw of every metric (:meth:`~..metrics.MetricSet.
        sample_metrics`, constraint metrics from the pooled posterior), then ``K`` uniforms
        per decision that break ties at random.
        """
        ms = self.check_model(model)
        cpost = self.constraint_posterior(ms, posterior, stats)
        draws = ms.sample_metrics(cpost, rng, contexts, size, self.scale)
        obj = ms.objective_of(draws)
        tie = rng.random(obj.shape)
        ok = self.margins(ms, draws) >= 0
        pl = self.plausible(ms, cpost, contexts, posterior.cache)
        if pl is not None:
            sure, out = (p if size is None else np.expand_dims(p, 1) for p in pl)
            ok = (ok | sure) & ~out
        passing = ok.all(axis=0)
        n_arms = obj.shape[-1]
        if eligible is not None:
            passing = passing & eligible
        if int(passing.sum(axis=-1).min()) >= k:  # enough arms pass in every decision
            key, tier = obj, passing.astype(float)
        else:
            likely = np.broadcast_to(
                self.pass_probability(ms, cpost, contexts).prod(axis=0), obj.shape)
            if self.baseline is not None:
                likely = np.where(np.arange(n_arms) == self.baseline, 2.0, likely)
            key, tier = np.where(passing, obj, likely), passing.astype(float)
        if eligible is not None:
            tier = np.where(eligible, tier, -1.0)
        chosen = np.lexsort((tie, -key, -tier), axis=-1)[..., :k]
        top_passes = np.take_along_axis(passing, chosen[..., :1], axis=-1)[..., 0]
        at_base = chosen[..., 0] == (-1 if self.baseline is None else self.baseline)
        applied = np.where(top_passes, 0, np.where(at_base, 1, 2))
        return chosen, applied

    def explain_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                    rng: np.random.Generator, context: np.ndarray | None = None
                    ) -> tuple[int, int]:
        """:meth:`explain` for one user among all arms, ``k = 1``: ``(arm, applied)`` -- the
        same choice from the same random numbers, in Python floats where the models allow, in
        one compiled call (:mod:`~.._metrics_kernels`) when numba is installed and every metric
        is Beta or Normal-Inverse-Gamma."""
        ms, plan = self._plan(model)
        if self.scale != 1.0 or ms.contextual or stats.batch_ndim:
            chosen, how = self.explain(model, posterior, stats, rng, context)
            return int(chosen[0]), int(how)
        out = None
        if plan is not None:
            jit = _jit.kernels()
            if jit is not None and jit.metrics_draw is not None:
                out = _mk.run(jit, self, plan, posterior, stats, rng)
                if out is not None and out[0] >= 0:
                    return out[0], 0
        cpost = self.constraint_posterior(ms, posterior, stats)
        if out is None:
            draws = []
            for m, p in zip(ms.models, cpost.parts, strict=True):
                one = m.sample_one(p, rng, context)
                draws.append(one if one is not None else m.sample(p, rng, context).tolist())
            tie = rng.random(len(draws[0])).tolist()
        else:  # no arm passes, or a NaN objective: decide from the kernel's draws
            draws, tie = out[1][:len(ms.models)].tolist(), out[1][-1].tolist()
        return _choose_one(self, ms, cpost, posterior.cache, draws, tie, context)

    def _plan(self, model: RewardModel) -> tuple[MetricSet, _mk.Plan | None]:
        """The checked metric set and the compiled draw's plan (None: a metric the kernel
        does not draw), kept for the last metric set asked about."""
        hit = self.__dict__.get("_last_plan")
        if hit is not None and hit[0] is model:
            return hit
        ms = self.check_model(model)
        out = (ms, None if ms.packing is None else _mk.Plan(
            ms, self.constraints, self.pool, self.optimism, self.pessimism))
        object.__setattr__(self, "_last_plan", out)
        return out

    def choose_one(self, model: RewardModel, posterior: Posterior, stats: Stats,
                   rng: np.random.Generator, context: np.ndarray | None = None) -> int:
        return self.explain_one(model, posterior, stats, rng, context)[0]

    def choose(self, model: RewardModel, posterior: Posterior, stats: Stats,
               rng: np.random.Generator, contexts: np.ndarray | None = None,
               eligible: np.ndarray | None = None, k: int = 1,
               size: int | None = None) -> np.ndarray:
        return self.explain(model, posterior, stats, rng, contexts, eligible, k, size)[0]


def _choose_one(self: ConstrainedThompson, ms: MetricSet, cpost: Posterior,
                cache: dict[Any, Any], draws: list[list[float]], tie: list[float],
                context: np.ndarray | None) -> tuple[int, int]:
    """:meth:`ConstrainedThompson.explain_one`'s choice from one user's draws ``(M, K)`` (of
    ``cpost``) and ``K`` uniforms, in Python floats (the compiled kernel's arithmetic)."""
    n_arms = len(draws[0])
    vals: list[list[float]] = [[]] * len(draws)
    for i in ms.order:
        g = ms.given[i]
        vals[i] = draws[i] if g is None else [a * b for a, b in
                                               zip(draws[i], vals[g], strict=True)]
    w = ms.weights.tolist()
    cost = ms.costs.tolist() if ms.costs.size else [0.0] * n_arms
    obj = []
    for a in range(n_arms):
        acc = 0.0  # left to right, as the kernel (not sum(): compensated from Python 3.12)
        for i in range(len(w)):
            if w[i]:
                acc += w[i] * vals[i][a]
        obj.append(acc - cost[a])
    ok = [True] * n_arms
    pl = self.plausible(ms, cpost, context, cache)
    for j, c in enumerate(self.constraints):
        v = draws[ms.index(c["metric"])]
        rel = c.get("relative_to")
        for a in range(n_arms):
            x = v[a] - v[rel] if rel is not None else v[a]
            drawn = c["max"] - x >= 0 if "max" in c else x - c["min"] >= 0
            if pl is not None:
                drawn = (drawn or bool(pl[0][j, a])) and not pl[1][j, a]
            if not drawn:
                ok[a] = False
    cands = [a for a in range(n_arms) if ok[a]]
    if not cands:  # explain's fallback: the baseline, else the most likely to pass
        likely = self.pass_probability(ms, cpost, context).prod(axis=0).tolist()
        if self.baseline is not None:
            likely[self.baseline] = 2.0
        best = max(likely)
        top = [a for a in range(n_arms) if likely[a] == best]
        a = top[0] if len(top) == 1 else min(top, key=tie.__getitem__)
        return a, 1 if a == self.baseline else 2
    best = max(obj[a] for a in cands)
    top = [a for a in cands if obj[a] == best]
    return (top[0] if len(top) == 1 else min(top, key=tie.__getitem__)), 0


def pass_probability(constraints: tuple[Mapping[str, Any], ...], model: MetricSet,
                     posterior: Posterior, contexts: np.ndarray | None = None) -> np.ndarray:
    """Posterior probability ``(C, *batch, K)`` that each constraint holds (exact for an
    absolute bound on a Beta metric, else a normal approximation of the posterior; of a
    difference for relative constraints)."""
    out = []
    for c in constraints:
        i = model.index(c["metric"])
        m, p = model.models[i], posterior.parts[i]
        rel = c.get("relative_to")
        if m.kind == "beta" and rel is None:  # exact: the regularized incomplete beta
            below = betainc(p.alpha, p.beta, min(max(c.get("max", c.get("min")), 0), 1))
            out.append(below if "max" in c else 1.0 - below)
            continue
        mu, sd = np.asarray(m.mean(p, contexts)), np.asarray(m.std(p, contexts))
        if rel is not None:
            mu = mu - mu[..., rel:rel + 1]  # the baseline's own difference is exactly 0
            sd = np.where(np.arange(mu.shape[-1]) == rel, 0.0,
                          np.sqrt(sd**2 + sd[..., rel:rel + 1] ** 2))
        slack = c["max"] - mu if "max" in c else mu - c["min"]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, slack / sd, np.where(slack >= 0, np.inf, -np.inf))
        out.append(ndtr(z))
    if len(out) == 1:
        return np.asarray(out[0])[None]
    return np.stack(out) if out else np.ones((0,))
