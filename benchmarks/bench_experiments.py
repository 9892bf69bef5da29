"""How much do the exact two-arm formulas and the vectorized simulation path cost?

Prints one table: seconds per call and ratios. Run: ``python benchmarks/bench_experiments.py``.
"""

from __future__ import annotations

import time

import numpy as np

from tsbandit.experiments import (
    BinaryPosteriors,
    NormalPosteriors,
    expected_loss,
    lift_interval,
    prob_best,
    simulate_ab,
)
from tsbandit.experiments._batch import beta_prob_greater_batch
from tsbandit.experiments._marginals import BetaMarginal, prob_greater_quad


def timed(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    small = BinaryPosteriors.from_counts([120, 150], [1000, 1000])
    big = BinaryPosteriors.from_counts([3000, 3100], [100_000, 100_000])
    normal = NormalPosteriors.from_summary([1000, 1000], [50.0, 51.0], [20.0, 22.0])
    rows = [
        ("P(best) exact, 1e3 counts (closed form)", timed(lambda: prob_best(small))),
        ("P(best) exact, 1e5 counts (closed form)", timed(lambda: prob_best(big))),
        ("P(B>A) quadrature, 1e5 counts", timed(
            lambda: prob_greater_quad(BetaMarginal(3001.5, 97000.5),
                                      BetaMarginal(3101.5, 96900.5)))),
        ("P(best) Monte Carlo, 200k draws", timed(
            lambda: prob_best(small, rng=rng, method="mc"))),
        ("expected loss exact (Beta)", timed(lambda: expected_loss(small))),
        ("expected loss exact (Student-t)", timed(lambda: expected_loss(normal))),
        ("lift interval exact (Beta)", timed(lambda: lift_interval(small), repeat=2)),
    ]
    a = 1 + rng.binomial(10_000, 0.03, size=(10_000, 2)).astype(float)
    b = 10_002 - a
    batch = timed(lambda: beta_prob_greater_batch(a[:, 0], b[:, 0], a[:, 1], b[:, 1]), 2)
    rows.append(("P(B>A) batch, per element (10k)", batch / 10_000))
    rows.append(("simulate_ab, 1000 reps x 56 looks x 2", timed(
        lambda: simulate_ab((0.03, 0.036), rng=np.random.default_rng(1), reps=1000), 1)))
    base = rows[0][1]
    print(f"{'operation':<44}{'seconds':>12}{'x closed form':>15}")
    for name, sec in rows:
        print(f"{name:<44}{sec:>12.2e}{sec / base:>15.1f}")


def report_cost() -> None:
    """What one ``GET /v1/bandits/{name}/report`` costs as the event log grows (in process,
    without HTTP): the SRM check reads every decision event; ``srm=false`` skips it."""
    import tempfile
    from pathlib import Path

    from tsbandit.engine import BanditSpec, Engine
    from tsbandit.service.report import bandit_report
    from tsbandit.stores.memory import MemoryStore
    from tsbandit.stores.sqlite import SQLiteStore

    def filled(store, n: int) -> Engine:
        engine = Engine(store, seed=0)
        engine.create_bandit(BanditSpec("ab", ["A", "B"]))
        rng = np.random.default_rng(0)
        arms = rng.integers(0, 2, n)
        for i, a in enumerate(arms):  # decision events as the engine writes them
            store.append_event("ab", {"type": "decision", "decision_id": f"ab~{i:032x}",
                                      "timestamp": float(i), "bandit": "ab", "context": None,
                                      "arm": "AB"[a], "ranking": ["AB"[a]], "propensity": 0.5,
                                      "position_propensities": [0.5], "user_id": None,
                                      "model_version": 0})
        return engine

    print(f"\n{'/report (in process)':<44}{'seconds':>12}{'x srm=false':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("memory", 10_000, MemoryStore()), ("memory", 100_000, MemoryStore()),
                 ("sqlite", 10_000, SQLiteStore(f"sqlite:///{Path(tmp) / 'b.db'}"))]
        for kind, n, store in cases:
            engine = filled(store, n)
            bare = timed(lambda e=engine: bandit_report(e, "ab", srm=False), 3)
            full = timed(lambda e=engine: bandit_report(e, "ab"), 3)
            print(f"{f'{kind}, {n:,} decisions, srm=false':<44}{bare:>12.2e}{1.0:>15.1f}")
            print(f"{f'{kind}, {n:,} decisions, srm check':<44}{full:>12.2e}{full / bare:>15.1f}")
            store.close()


if __name__ == "__main__":
    main()
    report_cost()
