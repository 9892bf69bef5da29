"""Compiled kernel of the constrained Thompson draw over several metrics (numba; loaded by
:mod:`._jit`).

``_metrics_draw`` is one user's decision of :meth:`.ConstrainedThompson.explain_one` over Beta
and Normal-Inverse-Gamma metrics in one compiled call: every metric's draw, the ``K`` uniforms
that break ties, the per-decision values (a metric ``given`` another times the other's value),
the objective, the constraints (drawn, or forced by the three zones) and the arg-max among the
arms that pass. Random numbers come from the caller's generator in NumPy's order (per metric in
metric order: a Beta metric's ``K`` gamma draws of ``alpha`` then ``K`` of ``beta``; a NIG
metric's ``K`` gamma draws of ``alpha`` then ``K`` standard normals; then ``K`` uniforms), with
the same IEEE operations, so the draws, the choice and the generator state after are those of
the NumPy path bit for bit (``check_metrics`` verifies the draws at load).

The layout the rule hands it (:func:`layout`, built once per rule and metric set):

* ``P`` ``(R, K)``: the posterior's packed parameters (:attr:`.MetricsPosterior.packed`: two
  rows ``alpha, beta`` per Beta metric, four rows ``mu, kappa, alpha, beta`` per NIG metric);
  ``Q`` ``(2 * B, K)``: the pooled Beta posteriors of the ``B`` pooled constraint metrics;
* ``N`` (int64): ``M``, ``C``, 1 when the three zones apply (else 0), then per metric
  ``kind`` (0 Beta, 1 NIG), its row in ``P``, its ``given`` (-1: none) and its row in ``Q``
  (-1: not pooled), then the metrics in ``given`` order, then per constraint its metric, 1 for
  ``max`` (0 for ``min``) and ``relative_to`` (-1: absolute);
* ``F`` (float64): the ``M`` objective weights, the ``C`` bounds, ``optimism``,
  ``pessimism``, the ``K`` costs;
* ``Z`` ``(C, K)``: each constraint's posterior probability of holding, or a bound of it on
  the side of its zone (read when the zones apply: at least ``optimism`` > 0 it passes
  whatever the draw, below ``pessimism`` it fails whatever the draw);
* ``D`` ``(2 M + 2, K)``: out: the draws, the values, the objective, the uniforms.

It returns the arm, or ``NO_ARM`` (no arm passes) or ``NAN`` (a NaN objective among those that
pass): the caller then decides from the draws in ``D`` as the NumPy path does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._scipy import betainc
from ._jit import JitKernels, same

__all__ = ["KERNELS", "NAN", "NO_ARM", "Plan", "check_metrics", "check_pool", "check_zones",
           "layout", "run"]

#: no arm passes the constraints: the caller applies the fallback
NO_ARM = -1
#: an objective among the passing arms is NaN: the caller decides as the NumPy path does
NAN = -2

# names the kernel calls; bound to numba objects by ``_jit._load`` (placeholders until then)
_bitgen: Any = None
_gamma: Any = None
_normal: Any = None
_next_double: Any = None
_pairwise_sum: Any = None


def _metrics_pool(succ: np.ndarray, fail: np.ndarray, a0: float, b0: float, pool: float,
                  out: np.ndarray) -> None:  # pragma: no cover - compiled
    """The pooled Beta posterior of one binary constraint metric (one bandit, ``K`` arms) into
    ``out`` ``(2, K)``: :meth:`.ConstrainedThompson._pooled`'s arithmetic (NumPy's sums, then
    ``Beta(w m, w (1 - m))`` floored at 0.05 once some arm has data)."""
    ssum, fsum = _pairwise_sum(succ), _pairwise_sum(fail)
    if ssum + fsum > 0:
        rate = (a0 + ssum) / (a0 + b0 + ssum + fsum)
        v = pool * rate
        a0 = 0.05 if 0.05 > v else v
        v = pool * (1.0 - rate)
        b0 = 0.05 if 0.05 > v else v
    for k in range(succ.shape[0]):
        out[0, k] = succ[k] + a0
        out[1, k] = fail[k] + b0


def _metrics_zones(ab: np.ndarray, prev: np.ndarray, z: np.ndarray, is_max: bool,
                   optimism: float, pessimism: float, need: np.ndarray
                   ) -> int:  # pragma: no cover - compiled
    """Which arms' zones an incomplete beta must decide again (``need``; the count returned).

    ``z`` ``(K,)`` bounds the probability that an exact Beta constraint holds at the
    parameters ``prev`` ``(2, K)``: from below when ``z >= optimism`` (the arm passes whatever
    its draw), from above when ``z < pessimism`` (it fails whatever its draw). ``I_x(a, b)``
    falls as ``a`` grows and rises as ``b`` grows, so at the parameters ``ab`` an arm keeps its
    zone, and ``z`` its bound, when the probability moved away from the other zones (for a
    ``max`` bound, ``I_x`` itself; for a ``min``, ``1 - I_x``)."""
    n = 0
    for k in range(ab.shape[1]):
        a, b, pa, pb, p = ab[0, k], ab[1, k], prev[0, k], prev[1, k], z[k]
        rises = a <= pa and b >= pb
        falls = a >= pa and b <= pb
        if not is_max:
            rises, falls = falls, rises
        keep = (rises and optimism != 0.0 and p >= optimism) or (falls and p < pessimism)
        need[k] = not keep
        n += not keep
    return n


def _metrics_draw(P: np.ndarray, Q: np.ndarray, N: np.ndarray, F: np.ndarray,
                  Z: np.ndarray, D: np.ndarray, addr: np.ndarray
                  ) -> int:  # pragma: no cover - compiled
    """One decision of the constrained Thompson rule (layout in the module docstring)."""
    bitgen = _bitgen(addr[0], addr[1], addr[2], addr[3])
    k_arms = P.shape[1]
    n_m, n_c = N[0], N[1]
    lay = 3
    for m in range(n_m):
        base = lay + 4 * m
        q = N[base + 3]
        src = Q if q >= 0 else P
        r = q if q >= 0 else N[base + 1]
        if N[base] == 0:  # Beta: X / (X + Y), all X first (NumPy's one gamma call)
            for k in range(k_arms):
                D[m, k] = _gamma(bitgen, src[r, k])
            for k in range(k_arms):
                x = D[m, k]
                D[m, k] = x / (x + _gamma(bitgen, src[r + 1, k]))
        else:  # NIG: sigma2 = beta / Gamma(alpha); mu + sqrt(sigma2 / kappa) * N(0, 1)
            for k in range(k_arms):
                D[m, k] = _gamma(bitgen, src[r + 2, k])
            for k in range(k_arms):
                sigma2 = src[r + 3, k] / D[m, k]
                D[m, k] = src[r, k] + math.sqrt(sigma2 / src[r + 1, k]) * _normal(bitgen)
    tie = 2 * n_m + 1
    for k in range(k_arms):
        D[tie, k] = _next_double(bitgen)
    order = lay + 4 * n_m
    for j in range(n_m):
        i = N[order + j]
        g = N[lay + 4 * i + 2]
        for k in range(k_arms):
            D[n_m + i, k] = D[i, k] if g < 0 else D[i, k] * D[n_m + g, k]
    obj = 2 * n_m
    optimism, pessimism = F[n_m + n_c], F[n_m + n_c + 1]
    zones = N[2] == 1
    cost = n_m + n_c + 2
    for k in range(k_arms):
        acc = 0.0
        for i in range(n_m):
            w = F[i]
            if w != 0.0:
                acc += w * D[n_m + i, k]
        D[obj, k] = acc - F[cost + k]
    cons = order + n_m
    best = 0.0
    ibest = NO_ARM
    for a in range(k_arms):
        passed = True
        for j in range(n_c):
            c = cons + 3 * j
            mi, rel = N[c], N[c + 2]
            x = D[mi, a] - D[mi, rel] if rel >= 0 else D[mi, a]
            bound = F[n_m + j]
            drawn = bound - x >= 0.0 if N[c + 1] == 1 else x - bound >= 0.0
            if zones:  # (drawn or sure) and not ruled out
                p = Z[j, a]
                drawn = (drawn or (optimism != 0.0 and p >= optimism)) and not p < pessimism
            if not drawn:
                passed = False
                break
        if not passed:
            continue
        v = D[obj, a]
        if v != v:
            return NAN
        if ibest == NO_ARM or v > best:
            best, ibest = v, a
        elif v == best and D[tie, a] < D[tie, ibest]:
            ibest = a
    return ibest


#: the kernels of this module, compiled in place by ``_jit._load``
KERNELS = ("_metrics_draw", "_metrics_pool", "_metrics_zones")


def layout(kinds: list[int], rows: list[int], given: list[int], pooled: list[int],
           order: list[int], constraints: list[tuple[int, bool, int, float]],
           weights: list[float], zones: tuple[float, float] | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """``(N, F)`` of a metric set and its constraints, costs left out of ``F`` (the caller
    appends the ``K`` costs): per metric its kind (0 Beta, 1 NIG), row in ``P``, ``given``
    (-1: none) and row in ``Q`` (-1); ``constraints`` as ``(metric, is_max, relative_to or -1,
    bound)``; ``zones`` ``(optimism, pessimism)`` or None."""
    ints = [len(kinds), len(constraints), 0 if zones is None else 1]
    for m in range(len(kinds)):
        ints += [kinds[m], rows[m], given[m], pooled[m]]
    ints += order
    for metric, is_max, rel, _ in constraints:
        ints += [metric, int(is_max), rel]
    floats = [*weights, *(c[3] for c in constraints), *(zones or (0.0, 0.0))]
    return np.array(ints, dtype=np.int64), np.array(floats, dtype=np.float64)


def check_metrics(fn: Any) -> bool:
    """The kernel's draws (every gamma branch, Beta and NIG, pooled rows), its uniforms and the
    generator state after equal NumPy's ``standard_gamma`` / ``standard_normal`` / ``random``
    calls."""
    rng = np.random.default_rng(21)
    k_arms = 5
    beta = rng.choice([1e-3, 0.3, 1.0, 2.5, 40.0, 700.0], size=(2, k_arms))
    nig = np.stack([rng.normal(0, 50, k_arms), rng.uniform(0.01, 30, k_arms),
                    rng.choice([0.5, 0.7, 1.0, 3.0, 400.0], k_arms),
                    rng.uniform(0.1, 1e4, k_arms)])
    pooled = rng.choice([0.05, 0.4, 1.0, 9.0], size=(2, k_arms))
    P = np.ascontiguousarray(np.concatenate([beta, nig, beta[::-1]]))
    Q = np.ascontiguousarray(pooled)
    # apply (Beta), revenue (NIG given apply), risk (Beta given apply, pooled)
    N, F = layout([0, 1, 0], [0, 2, 6], [-1, 0, 0], [-1, -1, 0], [0, 1, 2],
                  [(2, True, -1, 0.3)], [0.0, 1.0, 0.0], (0.2, 0.05))
    F = np.concatenate([F, np.zeros(k_arms)])
    Z = rng.random((1, k_arms))
    k = JitKernels(metrics_draw=fn)
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(100):
            D = np.empty((8, k_arms))
            fn(P, Q, N, F, Z, D, k.addresses(r1)[1])
            g = r2.standard_gamma(beta)
            d0 = g[0] / (g[0] + g[1])
            sigma2 = nig[3] / r2.standard_gamma(nig[2])
            d1 = nig[0] + np.sqrt(sigma2 / nig[1]) * r2.standard_normal(k_arms)
            g = r2.standard_gamma(pooled)
            d2 = g[0] / (g[0] + g[1])
            tie = r2.random(k_arms)
            if not (same(D[0], d0) and same(D[1], d1) and same(D[2], d2) and same(D[7], tie)):
                return False
    return r1.bit_generator.state == r2.bit_generator.state


def check_pool(fn: Any) -> bool:
    """The compiled pooled prior equals :meth:`.ConstrainedThompson._pooled` (counts with
    fractions, no data, every size of NumPy's pairwise sum)."""
    from .metrics import MetricSet
    from .rules.constrained import ConstrainedThompson

    rng = np.random.default_rng(8)
    for k_arms in (1, 3, 9, 130, 300):
        ms = MetricSet({"risk": {"model": "beta", "prior": {"alpha0": 0.7, "beta0": 3.0}}})
        for pool, scale in ((2.0, 0.0), (2.0, 1.0), (0.01, 1e-3), (50.0, 7.3)):
            s = ms.init_stats(k_arms)
            s["risk__successes"][:] = rng.random(k_arms) * scale
            s["risk__failures"][:] = rng.random(k_arms) * scale * 40
            rule = ConstrainedThompson(({"metric": "risk", "max": 0.1},), pool=pool)
            want = rule._pooled(ms, s)[0].params
            out = np.empty((2, k_arms))
            fn(s["risk__successes"], s["risk__failures"], 0.7, 3.0, pool, out)
            if not same(out, want):
                return False
    return True


def check_zones(fn: Any) -> bool:
    """The compiled zone test equals its NumPy expression (both bounds, both directions,
    moves that are not monotone, zones switched off)."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        prev = rng.choice([0.05, 1.0, 2.0, 30.0], size=(2, 9))
        ab = prev + rng.choice([-1.0, 0.0, 1.0], size=prev.shape)
        z = rng.choice([0.01, 0.05, 0.1, 0.2, 0.5], size=9)
        for is_max in (True, False):
            for opt, pess in ((0.2, 0.05), (0.0, 0.05), (0.2, 0.0)):
                need = np.empty(9, dtype=np.bool_)
                n = fn(ab, prev, z, is_max, opt, pess, need)
                up = (ab[0] <= prev[0]) & (ab[1] >= prev[1])
                down = (ab[0] >= prev[0]) & (ab[1] <= prev[1])
                rises, falls = (up, down) if is_max else (down, up)
                keep = (rises & (opt != 0.0) & (z >= opt)) | (falls & (z < pess))
                if not (same(need, ~keep) and n == int((~keep).sum())):
                    return False
    return True


# ----- the glue ConstrainedThompson.explain_one calls ----------------------------------------
class Plan:
    """What the kernel needs of a rule over a metric set that does not change between
    decisions: ``N``, ``F`` without the costs, the pooled metrics (rows of ``Q`` in order) and
    the key under which a posterior caches its ``Q`` and ``Z``. The constraints and their
    settings are :class:`~.rules.constrained.ConstrainedThompson`'s (none: the draws and the
    objective alone, as :class:`~.rules.pareto.ParetoThompson` uses them)."""

    __slots__ = ("F", "F0", "N", "costs", "exact", "key", "last", "ms", "n_constraints",
                 "n_metrics", "pooled", "zones", "zones_on")

    def __init__(self, ms: Any, constraints: tuple[Any, ...] = (), pool: float = 0.0,
                 optimism: float = 0.0, pessimism: float = 0.0) -> None:
        self.ms = ms
        self.n_constraints = len(constraints)
        deps = frozenset(ms.index(c["metric"]) for c in constraints)
        pooled = ([i for i in sorted(deps) if ms.models[i].kind == "beta"]
                  if pool != 0.0 and constraints else [])
        kinds = [k for k, _ in ms.packing]
        cons = [(ms.index(c["metric"]), "max" in c, c.get("relative_to", -1),
                 c["max"] if "max" in c else c["min"]) for c in constraints]
        self.N, self.F0 = layout(
            kinds, [r for _, r in ms.packing], [-1 if g is None else g for g in ms.given],
            [2 * pooled.index(i) if i in pooled else -1 for i in range(len(kinds))],
            list(ms.order), cons, ms.weights.tolist(),
            (optimism, pessimism) if (optimism or pessimism) and cons else None)
        self.costs = ms.costs
        self.F = self.F0
        self.n_metrics = len(kinds)
        self.pooled = pooled
        self.zones = (optimism, pessimism)
        self.zones_on = bool(self.N[2])
        #: per exact constraint, the parameters and probability bounds of the last pack
        self.last: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: per constraint (all absolute bounds on Beta metrics; else None): its metric's
        #: rows, in ``Q`` (True) or ``P``, the bound clipped to [0, 1] and whether a ``max``
        self.exact: list[tuple[int, bool, float, bool]] | None = []
        for c in constraints:
            i = ms.index(c["metric"])
            if ms.models[i].kind != "beta" or c.get("relative_to") is not None:
                self.exact = None
                break
            bound = c["max"] if "max" in c else c["min"]
            self.exact.append((2 * pooled.index(i) if i in pooled else ms.packing[i][1],
                               i in pooled, float(min(max(bound, 0), 1)), "max" in c))
        #: the plan itself names the rule's settings (a plan per rule and metric set)
        self.key = (self, deps)

    def floats(self, n_arms: int) -> np.ndarray:
        """``F`` with the ``K`` costs (zeros when the metric set has none)."""
        F = self.F
        if F.shape[0] != self.F0.shape[0] + n_arms:
            costs = self.costs if self.costs.size else np.zeros(n_arms)
            if costs.shape[0] != n_arms:
                raise ValueError(f"{costs.shape[0]} costs for {n_arms} arms")
            F = self.F = np.concatenate([self.F0, costs])
        return F


def run(jit: Any, rule: Any, plan: Plan, posterior: Any, stats: Any,
        rng: np.random.Generator) -> tuple[int, np.ndarray] | None:
    """One decision in one compiled call: the kernel's return (the arm, ``NO_ARM`` or ``NAN``)
    and ``D`` (the draws, the values, the objective, the uniforms), from which the caller
    decides as the NumPy path does when no arm is returned; None when the posterior is not
    packed (the NumPy path draws instead)."""
    P = posterior.packed
    if P is None:
        return None
    n_arms = P.shape[1]
    cache = posterior.cache
    pack = cache.get(plan.key)
    if pack is None:  # the pooled rows and the zones, until the constraint metrics change
        F = plan.F
        if F.shape[0] != plan.F0.shape[0] + n_arms:
            F = plan.floats(n_arms)
        pack = cache[plan.key] = (*_pack(jit, rule, plan, posterior, stats, n_arms), F)
    D = np.empty((2 * plan.n_metrics + 2, n_arms))
    bg, addr = jit.addresses(rng)
    with bg.lock:  # as NumPy's own samplers hold it
        a: int = jit.metrics_draw(P, pack[0], plan.N, pack[2], pack[1], D, addr)
    return a, D


def _pack(jit: Any, rule: Any, plan: Plan, posterior: Any, stats: Any, n_arms: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, Z)``: the pooled rows (compiled when every pooled metric's statistics are
    contiguous) and the constraints' probabilities of holding (exact Beta bounds from the
    regularized incomplete beta of the rows the draw uses, else :meth:`pass_probability`)."""
    ms = plan.ms
    Q = np.empty((2 * len(plan.pooled), n_arms))
    cpost = None
    for q, i in enumerate(plan.pooled):
        s = ms.part(stats, i)
        succ, fail = s["successes"], s["failures"]
        if (jit.metrics_pool is None or not succ.flags.c_contiguous
                or not fail.flags.c_contiguous):
            cpost = rule.constraint_posterior(ms, posterior, stats)
            Q = np.concatenate([cpost.parts[j].params for j in plan.pooled])
            break
        m = ms.models[i]
        jit.metrics_pool(succ, fail, m.alpha0, m.beta0, rule.pool,
                         Q if len(plan.pooled) == 1 else Q[2 * q:2 * q + 2])
    if not plan.zones_on:
        return Q, np.empty((plan.n_constraints, n_arms))
    if plan.exact is None:
        cpost = cpost or rule.constraint_posterior(ms, posterior, stats)
        return Q, np.ascontiguousarray(rule.pass_probability(ms, cpost), dtype=np.float64)
    P = posterior.packed
    bounds = [_bounds(jit, plan, j, Q[row:row + 2] if pooled else P[row:row + 2].copy(), x,
                      is_max) for j, (row, pooled, x, is_max) in enumerate(plan.exact)]
    return Q, bounds[0][None] if len(bounds) == 1 else np.stack(bounds)


def _prob(ab: np.ndarray, x: float, is_max: bool) -> np.ndarray:
    """The probability ``(K,)`` that an exact Beta constraint holds (as
    :func:`~.rules.constrained.pass_probability`)."""
    below = betainc(ab[0], ab[1], x)
    return below if is_max else 1.0 - below


def _bounds(jit: Any, plan: Plan, j: int, ab: np.ndarray, x: float, is_max: bool
            ) -> np.ndarray:
    """Constraint ``j``'s probabilities of holding at the parameters ``ab`` ``(2, K)``, or of
    an arm whose zone provably has not changed since the last pack, its bound from then
    (``_metrics_zones``); ``plan.last[j]`` is brought up to ``ab``. Neither ``ab`` (pooled rows
    or a copy) nor the bounds are written after (packs and ``plan.last`` share them)."""
    last = plan.last.get(j)
    n_arms = ab.shape[1]
    if jit.metrics_zones is None or last is None or last[0].shape != ab.shape:
        z = _prob(ab, x, is_max)
    else:
        need = np.empty(n_arms, dtype=np.bool_)
        n = jit.metrics_zones(ab, last[0], last[1], is_max, plan.zones[0], plan.zones[1],
                              need)
        if n == 0:
            z = last[1]
        elif n == n_arms:
            z = _prob(ab, x, is_max)
        else:
            z = last[1].copy()
            z[need] = _prob(ab[:, need], x, is_max)
    plan.last[j] = (ab, z)
    return z
