"""How much do the exact two-arm formulas and the vectorized simulation path cost?

Prints one table: seconds per call (the best of a few calls, no warm-up call: the first call
counts) and ratios. Run: ``python benchmarks/bench_experiments.py``.
"""

from __future__ import annotations

import numpy as np

import harness
from harness import Col, Table
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
    return min(harness.measure(fn, repeat, warmup=0))


def table(title: str, ratio_title: str) -> Table:
    return Table(Col(title, 44, align="<"), Col("seconds", 12, ".2e"),
                 Col(ratio_title, 15, ".1f"), sep="")


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
    out = table("operation", "x closed form")
    print(out.header())
    for name, sec in rows:
        print(out.row(name, sec, sec / base))


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

    out = table("/report (in process)", "x srm=false")
    print("\n" + out.header())
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("memory", 10_000, MemoryStore()), ("memory", 100_000, MemoryStore()),
                 ("sqlite", 10_000, SQLiteStore(f"sqlite:///{Path(tmp) / 'b.db'}"))]
        for kind, n, store in cases:
            engine = filled(store, n)
            bare = timed(lambda e=engine: bandit_report(e, "ab", srm=False), 3)
            full = timed(lambda e=engine: bandit_report(e, "ab"), 3)
            print(out.row(f"{kind}, {n:,} decisions, srm=false", bare, 1.0))
            print(out.row(f"{kind}, {n:,} decisions, srm check", full, full / bare))
            store.close()


if __name__ == "__main__":
    main()
    report_cost()
