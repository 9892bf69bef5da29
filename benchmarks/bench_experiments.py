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


if __name__ == "__main__":
    main()
