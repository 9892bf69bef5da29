"""The context-free three-metric world of issue 15, simulated over seeds with the library's math.

Arms (apply rate, revenue per approved customer, default risk given approval):
A (0.30, 100, 0.30): the highest value per offer (30) but infeasible (risk > 0.05);
B (0.10, 250, 0.01): the best feasible arm (25), which rarely converts;
C (0.30, 45, 0.02) and D (0.20, 40, 0.03): feasible, lower value. Revenue noise: 20% of the mean.
Every seed is one lane of batched statistics (a leading batch axis); each round every lane
decides with the rule's own ``explain`` and learns through ``MetricSet.accumulate_metric``.
"""

from __future__ import annotations

import numpy as np

from tsbandit.policies.metrics import MetricSet
from tsbandit.policies.rules.constrained import ConstrainedThompson

APPLY = np.array([0.30, 0.10, 0.30, 0.20])
REVENUE = np.array([100.0, 250.0, 45.0, 40.0])
RISK = np.array([0.30, 0.01, 0.02, 0.03])
LIMIT = 0.05
BEST = 1
INFEASIBLE = RISK > LIMIT


def metric_set() -> MetricSet:
    return MetricSet({"apply": "beta",
                      "revenue": {"model": "gaussian", "given": "apply",
                                  "prior": {"kappa0": 0.01, "beta0": 1e4}},
                      "risk": {"model": "beta", "given": "apply"}},
                     objective={"revenue": 1.0})


def simulate(pool: float, seeds: int = 10, rounds: int = 3000, seed: int = 0,
             oracle: bool = False, optimism: float = 0.0,
             pessimism: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Best-feasible share of the last 1000 rounds and infeasible share, per seed ``(S,)``.

    ``oracle``: no constraint, the infeasible arms made ineligible (Thompson sampling on the
    objective told which arms are feasible: what is left is the objective's own difficulty).
    """
    ms = metric_set()
    cons = () if oracle else ({"metric": "risk", "max": LIMIT},)
    rule = ConstrainedThompson(cons, pool=pool, optimism=optimism, pessimism=pessimism)
    mask = ~INFEASIBLE if oracle else None
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(seed + 1)
    k = APPLY.shape[0]
    stats = ms.init_stats(k, (seeds,))
    lanes = np.arange(seeds)
    chosen = np.zeros((seeds, rounds), dtype=np.intp)
    for t in range(rounds):
        post = ms.posterior(stats)
        pick = rule.explain(ms, post, stats, rng, eligible=mask)[0][:, 0]
        chosen[:, t] = pick
        applied = (world.random(seeds) < APPLY[pick]).astype(float)
        ms.accumulate_metric(stats, "apply", pick, applied, batch_index=lanes)
        ok = applied == 1.0
        if ok.any():
            rev = REVENUE[pick[ok]] * (1.0 + 0.2 * world.standard_normal(int(ok.sum())))
            risk = (world.random(int(ok.sum())) < RISK[pick[ok]]).astype(float)
            ms.accumulate_metric(stats, "revenue", pick[ok], rev, batch_index=lanes[ok])
            ms.accumulate_metric(stats, "risk", pick[ok], risk, batch_index=lanes[ok])
    best_last = (chosen[:, -1000:] == BEST).mean(axis=1)
    infeasible = INFEASIBLE[chosen].mean(axis=1)
    return best_last, infeasible
