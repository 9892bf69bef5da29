"""First-slot propensities of a new model version: fresh Monte-Carlo draws vs the previous
version's draws importance-reweighted (:mod:`tsbandit.policies.choice_sample`), side by side.

Usage::

    python benchmarks/bench_propensities.py [--rewards 3000] [--arms 5] [--draws 1000]

A Beta-Thompson bandit of ``--arms`` arms (conversion rates 8-14%) learns from ``--rewards``
rewards, one at a time; after each, the engine's way of estimating the new version's
first-slot probabilities (``DecisionCore.first_choice_probabilities``: reweight while the
draws keep 90% of their effective size, else draw afresh) runs beside the plain fresh estimate
(``action_probabilities``). The table gives, per stretch of the stream, the microseconds per
version of each (CPU, one core), how often the reweighted path had to redraw, and the largest
difference between the two estimates against the Monte-Carlo standard error of a fresh one.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

import harness


def run(rewards: int, arms: int, draws: int, seed: int = 0) -> list[dict[str, float]]:
    from tsbandit.core import DecisionCore
    from tsbandit.policies import BetaBernoulli, ThompsonSampling

    model, rule = BetaBernoulli(), ThompsonSampling()
    core = DecisionCore([f"arm{i}" for i in range(arms)], model, rule, draws)
    stats = model.init_stats(arms)
    rng = np.random.default_rng(seed)
    side_a, side_b = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    rates = np.linspace(0.08, 0.14, arms)
    sample = None
    edges = [0, 30, 300, rewards // 3, rewards]
    rows: list[dict[str, float]] = []
    clock = harness.clock(cpu=True)
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        t_fresh = t_reuse = 0.0
        redraws = 0
        worst = 0.0
        for _ in range(lo, hi):
            arm = int(rng.integers(arms))
            key = "successes" if rng.random() < rates[arm] else "failures"
            stats[key][arm] += 1
            post = model.posterior(stats)
            t0 = clock()
            fresh = core.action_probabilities(post, stats, side_a)
            t1 = clock()
            before = sample
            reused, sample = core.first_choice_probabilities(post, stats, side_b, None, sample)
            t2 = clock()
            t_fresh += t1 - t0
            t_reuse += t2 - t1
            redraws += sample is not before
            p = np.maximum((fresh + reused) / 2, 1.0 / draws)  # pooled, floored
            se = np.sqrt(2 * p * (1 - p) / draws)  # of the difference of two estimates
            worst = max(worst, float(np.max(np.abs(reused - fresh) / se)))
        n = hi - lo
        rows.append({"from": lo, "to": hi, "fresh_us": t_fresh / n * 1e6,
                     "reweighted_us": t_reuse / n * 1e6, "redraw_share": redraws / n,
                     "max_diff_se": worst})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rewards", type=int, default=3000)
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    harness.limit_blas()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = run(args.rewards, args.arms, args.draws)
    print(f"{started}; load average {harness.load_average()}; {args.arms} arms, "
          f"{args.draws} draws, one reward per version")
    print(harness.markdown_header("rewards", "fresh us/version", "reweighted us/version",
                                  "speed-up", "redrawn", "max |diff| / SE of the difference",
                                  align=["---", *["---:"] * 5]))
    for r in rows:
        print(harness.markdown_row(f"{r['from']:,}-{r['to']:,}", f"{r['fresh_us']:.0f}",
                                   f"{r['reweighted_us']:.0f}",
                                   harness.ratio(r["fresh_us"], r["reweighted_us"]),
                                   f"{r['redraw_share']:.1%}", f"{r['max_diff_se']:.2f}"))
    harness.write_json(args.json, rows)


if __name__ == "__main__":
    main()
