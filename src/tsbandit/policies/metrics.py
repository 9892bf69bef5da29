"""Several reward signals per decision: named *metrics*, each a model over its own statistics.

A :class:`MetricSet` declares named metrics (``apply``: Beta, ``revenue``: Normal-Inverse-Gamma,
...), each optionally ``given`` another *binary* metric: observed only for decisions where that
metric was 1, so its per-decision value is ``P(given) * E[metric | given]``. The statistics of all
metrics live in one :class:`~.stats.Stats` whose keys are prefixed ``<metric>__<field>``
(``apply__successes``, ``revenue__sum_r``): still named float64 arrays with the arm axis first,
additive, so every store holds them unchanged, and a reward for one metric is a delta of that
metric's keys alone (delayed, per-metric rewards).

A ``MetricSet`` is a :class:`~.base.RewardModel` whose *expected reward* is the weighted
objective ``sum_m w_m * value_m - cost_arm``: its ``mean``, ``sample`` and ``interval`` are the
objective's, so every single-metric rule (Thompson, greedy, ...) works on it unchanged, and
the multi-metric rules (:mod:`.rules.constrained`, :mod:`.rules.pareto`) use
:meth:`MetricSet.sample_metrics` (every metric's posterior drawn once per decision).

>>> import numpy as np
>>> ms = MetricSet({"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"}},
...                objective={"revenue": 1.0})
>>> s = ms.init_stats(2)
>>> sorted(s)[:2]
['apply__failures', 'apply__successes']
>>> ms.accumulate_metric(s, "apply", np.array([0, 0]), np.array([1.0, 0.0]))
>>> ms.accumulate_metric(s, "revenue", np.array([0]), np.array([10.0]))
>>> ms.metric_means(ms.posterior(s))["revenue"].round(2).tolist()  # E[revenue | apply]
[5.0, 0.0]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError, GivenNotMetError, UnknownMetricError
from .base import RewardModel
from .beta import BetaBernoulli, BetaPosterior
from .gaussian import NIGPosterior, NormalInverseGamma
from .stats import Stats

__all__ = ["SEP", "MetricSet", "MetricsPosterior"]

#: separates a metric's name from its statistic's name in the shared statistics
SEP = "__"
#: model kinds of binary metrics (a ``given`` metric must be one)
BINARY = ("beta", "logistic")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class MetricsPosterior:
    """Each metric's posterior, in the metric set's order (``parts``).

    ``cache`` holds what rules derive from this posterior (a constrained rule's pooled
    posterior). A key whose last element is a ``frozenset`` of metric indices names what
    the entry depends on: an observation of other metrics keeps it; every other entry, and
    any entry after an observation of a metric it names, is dropped (never stale).

    ``packed`` ``(R, K)``, when every metric is Beta or Normal-Inverse-Gamma and there is no
    batch axis: the parts' parameters in one array (:attr:`MetricSet.packing`), the parts
    being views of its rows -- what the compiled constrained draw reads. Observations update
    the parts in place, so it stays current; None when a part was replaced.
    """

    parts: tuple[Any, ...]
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    packed: np.ndarray | None = field(default=None, compare=False, repr=False)


def _model(name: str, spec: Any) -> tuple[RewardModel, str | None]:
    """A metric's model and its ``given`` from ``"beta"``, a model, or ``{"model": ...}``."""
    from .registry import model_from_config

    given = None
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"model", "given", "prior"}
        if unknown or "model" not in spec:
            raise ConfigurationError(
                f"metric {name!r}: give {{'model': kind, 'given': metric, 'prior': {{...}}}}, "
                f"got keys {sorted(spec)}")
        given = spec.get("given")
        prior = dict(spec.get("prior") or {})
        spec = spec["model"] if not isinstance(spec["model"], str) else {
            "kind": spec["model"], **prior}
    if isinstance(spec, str):
        spec = {"kind": spec}
    if isinstance(spec, Mapping):
        spec = model_from_config(spec)
    if not isinstance(spec, RewardModel) or isinstance(spec, MetricSet):
        raise ConfigurationError(f"metric {name!r}: {spec!r} is not a reward model")
    if given is not None and not isinstance(given, str):
        raise ConfigurationError(f"metric {name!r}: given == {given!r}, must be a metric name")
    return spec, given


class MetricSet(RewardModel):
    """Named metrics with their models, the weighted objective and per-arm costs.

    Parameters
    ----------
    metrics
        ``{name: model}`` in order; a model is a kind (``"beta"``), a configuration
        (``{"kind": "gaussian", "mu0": 100}``), a :class:`~.base.RewardModel`, or
        ``{"model": kind or model, "given": other_metric, "prior": {...}}``. Names are
        identifiers without ``__``; ``given`` names a declared Beta metric (no cycles).
    objective
        ``{metric: weight}`` over the metrics' per-decision values (default: weight 1 on the
        first metric).
    costs
        Per-arm cost subtracted from the objective, ``(K,)`` (default zeros); the bandit keeps
        it in step with its arms.
    """

    kind = "metrics"

    def __init__(self, metrics: Mapping[str, Any], objective: Mapping[str, float] | None = None,
                 costs: Any = ()) -> None:
        models, given = _declared(metrics)
        self.names: tuple[str, ...] = tuple(models)
        self.models: tuple[RewardModel, ...] = tuple(models.values())
        self.given: tuple[int | None, ...] = tuple(
            None if given[n] is None else self.names.index(str(given[n])) for n in self.names)
        self.order = _given_order(self.names, self.given)
        w = np.zeros(len(self.names))
        for name, weight in (objective if objective is not None else {self.names[0]: 1}).items():
            i = self.index(name)
            w[i] = weight if isinstance(weight, (int, float)) else np.nan
        if not np.all(np.isfinite(w)):
            raise ConfigurationError(f"objective == {objective!r}: weights must be finite")
        self.weights = w
        c = np.asarray(costs, dtype=float).reshape(-1)
        if not np.all(np.isfinite(c)):
            raise ConfigurationError(f"costs == {costs!r}, must be finite numbers")
        self.costs = c
        self._keys: dict[int, list[tuple[str, str]]] = {}
        #: the statistics the parts were last taken from, and those parts (views)
        self._parts: tuple[Stats, list[Stats]] | None = None
        #: metric name -> (index, its model's check_reward, True for a Beta metric (an int
        #: 0 or 1 is then the float it checks as, without the call))
        self._checks = {n: (i, m.check_reward, type(m) is BetaBernoulli) for i, (n, m) in
                        enumerate(zip(self.names, self.models, strict=True))}
        #: each metric's ``(kind, first row)`` in a packed posterior, or None (not all
        #: Beta or Normal-Inverse-Gamma): :attr:`MetricsPosterior.packed`
        self.packing = _packing(self.models)
        self.contextual = any(m.contextual for m in self.models)  # type: ignore[misc]
        dims = {m.n_features for m in self.models if m.contextual}
        if len(dims) > 1:
            raise ConfigurationError(f"contextual metrics need one context size, got {dims}")
        self._d = dims.pop() if dims else None
        self.additive = all(m.additive for m in self.models)  # type: ignore[misc]

    @property
    def n_features(self) -> int | None:
        """The context size ``d`` the contextual metrics share (None: all context-free)."""
        return self._d

    def index(self, name: str) -> int:
        """The index of a metric, else :class:`UnknownMetricError`."""
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownMetricError(
                f"unknown metric {name!r}; known metrics: {list(self.names)}") from None

    def with_costs(self, costs: Any) -> MetricSet:
        """The same metrics and objective with other per-arm costs."""
        return MetricSet(self._metric_config(), self.objective, costs)

    @property
    def objective(self) -> dict[str, float]:
        """``{metric: weight}`` of the non-zero weights."""
        return {n: float(w) for n, w in zip(self.names, self.weights, strict=True) if w}

    def _metric_config(self) -> dict[str, Any]:
        return {n: {"model": m.to_config(), **({} if g is None else {"given": self.names[g]})}
                for n, m, g in zip(self.names, self.models, self.given, strict=True)}

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "metrics": self._metric_config(),
                "objective": self.objective, "costs": [float(c) for c in self.costs]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MetricSet:
        return cls(config["metrics"], config.get("objective"), config.get("costs", ()))

    def __repr__(self) -> str:
        return f"MetricSet({list(self.names)}, objective={self.objective})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricSet) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(tuple(self.names))

    # ----- statistics ---------------------------------------------------------------------
    def init_stats(self, n_arms: int, batch_shape: tuple[int, ...] = ()) -> Stats:
        arrays: dict[str, np.ndarray] = {}
        for name, m in zip(self.names, self.models, strict=True):
            for k, v in m.init_stats(n_arms, batch_shape).items():
                arrays[f"{name}{SEP}{k}"] = v
        return Stats(arrays, len(batch_shape))

    def part(self, stats: Stats, i: int) -> Stats:
        """Metric ``i``'s statistics (views of ``stats``'s arrays, unprefixed); the parts of
        the last statistics asked about are kept (a ``Stats`` never changes its arrays)."""
        last = self._parts
        if last is not None and last[0] is stats:
            return last[1][i]
        parts = []
        for j, m in enumerate(self.models):
            keys = self._keys.get(j)
            if keys is None:
                pre = self.names[j] + SEP
                keys = self._keys[j] = [(pre + k, k) for k in m.init_stats(1)]
            parts.append(Stats({short: stats[full] for full, short in keys}, stats.batch_ndim))
        self._parts = (stats, parts)
        return parts[i]

    def observe_one(self, stats: Stats, posterior: MetricsPosterior, arm: int,
                    reward: Any, context: np.ndarray | None = None) -> MetricsPosterior:
        """Add one decision's validated ``{metric index: reward}`` to ``stats`` in place; the
        posterior after it: ``posterior`` itself when every touched metric's posterior was
        updated in place (its cache then loses the entries that depend on them), else a new
        object (untouched metrics keep their posteriors)."""
        parts = posterior.parts
        models = self.models
        last = self._parts
        sp = last[1] if last is not None and last[0] is stats else None
        new: list[Any] | None = None
        for i, r in reward.items():
            old = parts[i]
            p = models[i].observe_one(self.part(stats, i) if sp is None else sp[i], old, arm, r,
                                      context)
            if p is not old:  # replaced, not updated in place
                new = new if new is not None else list(parts)
                new[i] = p
        if new is not None:  # the packed parameters are stale
            return MetricsPosterior(tuple(new), _kept(posterior.cache, reward))
        cache = posterior.cache
        if cache:  # (_keeps, inlined: the hot path)
            for k in [k for k in cache if not (type(k) is tuple and k and type(k[-1]) is
                                               frozenset and k[-1].isdisjoint(reward))]:
                del cache[k]
        return posterior

    def check_metric_rewards(self, rewards: Any) -> dict[int, float]:
        """``{metric index: validated reward}`` of one decision's ``{metric: reward}``:
        :class:`UnknownMetricError`, an invalid value (the metric's model says),
        :class:`GivenNotMetError` for a metric whose ``given`` is 0 in the same rewards."""
        if (type(rewards) is not dict and not isinstance(rewards, Mapping)) or not rewards:
            raise UnknownMetricError(
                f"rewards must be a non-empty {{metric: value}} mapping, got {rewards!r}")
        checks, out = self._checks, {}
        for k, v in rewards.items():
            hit = checks.get(k) if type(k) is str else None
            if hit is None:
                i = self.index(str(k))
                hit = (i, self.models[i].check_reward, False)
            out[hit[0]] = (float(v) if hit[2] and type(v) is int and (v == 0 or v == 1)
                           else hit[1](v))
        given = self.given
        for i in out:
            g = given[i]
            if g is not None and out.get(g) == 0.0:
                raise GivenNotMetError(
                    f"metric {self.names[i]!r} is observed only when {self.names[g]!r} is 1; "
                    f"this decision's {self.names[g]!r} is 0")
        return out

    def accumulate_metric(self, stats: Stats, metric: str | int, arms: np.ndarray,
                          rewards: np.ndarray, contexts: np.ndarray | None = None, *,
                          batch_index: np.ndarray | None = None,
                          weights: np.ndarray | None = None) -> None:
        """Add observations of one metric to ``stats`` in place (inputs validated)."""
        i = metric if isinstance(metric, int) else self.index(metric)
        self.models[i].accumulate(self.part(stats, i), arms, rewards, contexts,
                                  batch_index=batch_index, weights=weights)

    def metric_delta(self, n_arms: int, metric: str | int, arms: np.ndarray,
                     rewards: np.ndarray, contexts: np.ndarray | None = None) -> Stats:
        """The statistics of observations of one metric alone, under that metric's prefixed
        keys only: the delta a store adds when that metric's rewards arrive.

        >>> ms = MetricSet({"apply": "beta", "risk": {"model": "beta", "given": "apply"}})
        >>> sorted(ms.metric_delta(2, "risk", np.array([1]), np.array([0.0])))
        ['risk__failures', 'risk__successes']
        """
        i = metric if isinstance(metric, int) else self.index(metric)
        d = self.models[i].delta(n_arms, arms, rewards, contexts)
        return Stats({f"{self.names[i]}{SEP}{k}": v for k, v in d.items()}, d.batch_ndim)

    def accumulate(self, stats: Stats, arms: np.ndarray, rewards: np.ndarray,
                   contexts: np.ndarray | None = None, *, batch_index: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> None:
        """Rewards ``(n, M)``: one column per metric, NaN where a metric was not observed."""
        r = np.asarray(rewards, dtype=float).reshape(arms.shape[0], -1)
        if r.shape[1] != len(self.names):
            raise ConfigurationError(f"rewards of a metric set are (n, {len(self.names)}) "
                                     f"(one column per metric), got {r.shape}")
        for i in range(len(self.names)):
            seen = ~np.isnan(r[:, i])
            if seen.any():
                self.accumulate_metric(
                    stats, i, arms[seen], r[seen, i],
                    None if contexts is None else contexts[seen],
                    batch_index=None if batch_index is None else batch_index[seen],
                    weights=None if weights is None else weights[seen])

    def counts(self, stats: Stats) -> np.ndarray:
        """Observations of the first metric per arm (the decisions rewarded)."""
        return self.models[0].counts(self.part(stats, 0))

    def reward_sums(self, stats: Stats) -> np.ndarray:
        return self.models[0].reward_sums(self.part(stats, 0))

    # ----- posterior ----------------------------------------------------------------------
    def posterior(self, stats: Stats) -> MetricsPosterior:
        parts = [m.posterior(self.part(stats, i)) for i, m in enumerate(self.models)]
        if self.packing is None or stats.batch_ndim:
            return MetricsPosterior(tuple(parts))
        return MetricsPosterior(*_packed(self.packing, parts, stats.n_arms))

    def refresh(self, posterior: MetricsPosterior, stats: Stats,
                touched: Any) -> MetricsPosterior:
        """The posterior after observations of the metrics ``touched`` (indices) only."""
        parts = list(posterior.parts)
        for i in touched:
            parts[i] = self.models[i].posterior(self.part(stats, i))
        return MetricsPosterior(tuple(parts), _kept(posterior.cache, touched))

    def metric_means(self, posterior: MetricsPosterior, contexts: np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
        """Each metric's posterior mean (of ``E[metric | given]``), ``(*batch, K)``."""
        return {n: np.asarray(m.mean(p, contexts)) for n, m, p in
                zip(self.names, self.models, posterior.parts, strict=True)}

    def sample_metrics(self, posterior: MetricsPosterior, rng: np.random.Generator,
                       contexts: np.ndarray | None = None, size: int | None = None,
                       scale: float = 1.0) -> np.ndarray:
        """One draw of every metric's ``E[metric | given]``: ``(M, [size,] *batch, K)``, drawn
        in metric order (``scale`` != 1: tempered draws, as :class:`ThompsonSampling`)."""
        draws = [m.sample(p, rng, contexts, size) if scale == 1.0 else
                 m.sample_scaled(p, rng, scale, contexts, size)
                 for m, p in zip(self.models, posterior.parts, strict=True)]
        return np.stack(np.broadcast_arrays(*draws))

    def values(self, draws: np.ndarray) -> np.ndarray:
        """Per-decision values ``(M, ...)`` of conditional draws ``(M, ...)``: a metric given
        another is its draw times the other's per-decision value (``P(given) * E[m | given]``)."""
        out = np.empty_like(draws)
        for i in self.order:
            g = self.given[i]
            out[i] = draws[i] if g is None else draws[i] * out[g]
        return out

    def objective_of(self, draws: np.ndarray) -> np.ndarray:
        """The objective ``sum_m w_m value_m - cost`` of conditional draws ``(M, ..., K)``."""
        obj = np.tensordot(self.weights, self.values(draws), axes=1)
        if self.costs.size:
            obj = obj - self.costs
        return np.asarray(obj)

    def mean(self, posterior: MetricsPosterior, contexts: np.ndarray | None = None
             ) -> np.ndarray:
        # independent posteriors: the mean of a product is the product of the means
        means = self.metric_means(posterior, contexts)
        return self.objective_of(np.stack(np.broadcast_arrays(*means.values())))

    def sample(self, posterior: MetricsPosterior, rng: np.random.Generator,
               contexts: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
        return self.objective_of(self.sample_metrics(posterior, rng, contexts, size))

    def sample_scaled(self, posterior: MetricsPosterior, rng: np.random.Generator,
                      scale: float, contexts: np.ndarray | None = None,
                      size: int | None = None) -> np.ndarray:
        return self.objective_of(self.sample_metrics(posterior, rng, contexts, size, scale))

    def std(self, posterior: MetricsPosterior, contexts: np.ndarray | None = None,
            ) -> np.ndarray:
        draws = self.sample(posterior, np.random.default_rng(0), contexts, size=2000)
        return np.asarray(draws.std(axis=0))

    def interval(self, posterior: MetricsPosterior, level: float = 0.95,
                 contexts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Monte-Carlo interval of the objective (4000 draws of a fixed-seed stream: reads
        never move a bandit's generators)."""
        draws = self.sample(posterior, np.random.default_rng(0), contexts, size=4000)
        q = (1.0 - level) / 2.0
        return np.quantile(draws, q, axis=0), np.quantile(draws, 1.0 - q, axis=0)


def _declared(metrics: Mapping[str, Any]
              ) -> tuple[dict[str, RewardModel], dict[str, str | None]]:
    """Each metric's model and ``given``, validated (names, binary ``given`` metrics)."""
    if not isinstance(metrics, Mapping) or not metrics:
        raise ConfigurationError("metrics must be a non-empty {name: model} mapping")
    models: dict[str, RewardModel] = {}
    given: dict[str, str | None] = {}
    for name, spec in metrics.items():
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 40:
            raise ConfigurationError(f"metric name {name!r} must be an identifier of at most "
                                     "40 characters without '__'")
        models[name], given[name] = _model(name, spec)
    for name, g in given.items():
        if g is not None and g not in models:
            raise UnknownMetricError(f"metric {name!r} is given {g!r}, which is not a "
                                     f"metric; known: {list(models)}")
        if g is not None and models[g].kind not in BINARY:
            raise ConfigurationError(f"metric {name!r} is given {g!r}, which is not binary "
                                     f"(one of {BINARY}); it is {models[g].kind!r}")
    return models, given


def _given_order(names: tuple[str, ...], given: tuple[int | None, ...]) -> tuple[int, ...]:
    """Metric indices, each after its ``given`` (a :class:`ConfigurationError` on a cycle)."""
    out: list[int] = []
    for start in range(len(names)):
        chain: list[int] = []
        i: int | None = start
        while i is not None and i not in out:
            if i in chain:
                raise ConfigurationError(f"metrics {[names[j] for j in chain]} are "
                                         "given each other in a cycle")
            chain.append(i)
            i = given[i]
        out.extend(reversed(chain))
    return tuple(out)


def _packing(models: tuple[RewardModel, ...]) -> tuple[tuple[int, int], ...] | None:
    """Each metric's ``(kind, first row)`` in a packed posterior (kind 0: Beta, two rows
    ``alpha, beta``; 1: Normal-Inverse-Gamma, four rows ``mu, kappa, alpha, beta``), or None
    when a metric is of another model (or a subclass, whose posterior may differ)."""
    out, row = [], 0
    for m in models:
        if type(m) is BetaBernoulli:
            out.append((0, row))
            row += 2
        elif type(m) is NormalInverseGamma:
            out.append((1, row))
            row += 4
        else:
            return None
    return tuple(out)


def _packed(packing: tuple[tuple[int, int], ...], parts: list[Any], n_arms: int
            ) -> tuple[tuple[Any, ...], dict[Any, Any], np.ndarray]:
    """The parts re-made as views of one ``(R, K)`` array of their parameters (copied), an
    empty cache and that array."""
    kind, row = packing[-1]
    P = np.empty((row + (2 if kind == 0 else 4), n_arms))
    out: list[Any] = []
    for (kind, r), p in zip(packing, parts, strict=True):
        if kind == 0:
            P[r:r + 2] = p.params
            out.append(BetaPosterior.from_params(P[r:r + 2]))
        else:
            P[r], P[r + 1], P[r + 2], P[r + 3] = p.mu, p.kappa, p.alpha, p.beta
            out.append(NIGPosterior(P[r], P[r + 1], P[r + 2], P[r + 3]))
    return tuple(out), {}, P


def _kept(cache: dict[Any, Any], touched: Any) -> dict[Any, Any]:
    """The entries of ``cache`` that depend on none of the metrics ``touched``."""
    if not cache:
        return {}
    return {k: v for k, v in cache.items() if _keeps(k, touched)}


def _keeps(key: Any, touched: Any) -> bool:
    """Whether a cache entry under ``key`` survives observations of the metrics ``touched``."""
    return (type(key) is tuple and len(key) > 0 and type(key[-1]) is frozenset
            and key[-1].isdisjoint(touched))
