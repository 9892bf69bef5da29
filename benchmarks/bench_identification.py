"""Best-arm identification (issue 17): top-two Thompson sampling against Thompson sampling and
uniform allocation, on the same worlds, side by side (:mod:`tsbandit.experiments.identification`).

Each experiment stops at the first check (every ``--check`` users) where an arm's posterior
probability of being best reaches 0.95; the table gives, per world and rule, the share of
experiments that stopped within the horizon, the median users to stop, the error rate (the arm
named is not the true best) and the true best arm's share of traffic.

    python benchmarks/bench_identification.py [--quick] [--reps 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness import Col, Table, load_average
from tsbandit.experiments.identification import simulate_identification

WORLDS = {"close runner-up": [0.5, 0.45, 0.3], "four low rates": [0.10, 0.12, 0.08, 0.09],
          "two arms": [0.05, 0.06]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--check", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    reps, rounds = (40, 1000) if args.quick else (args.reps, args.rounds)
    print(f"load average {load_average()}; {reps} experiments x {rounds} users per world, "
          f"stop at P(best) >= 0.95")
    table = Table(Col("world", 16, align="<"), Col("rule", 9, align="<"),
                  Col("stopped", 8, ".2f"), Col("median", 7, ".0f"), Col("errors", 7, ".3f"),
                  Col("best share", 11, ".2f"))
    print(table.header())
    print(table.rule())
    start = time.perf_counter()
    for world, rates in WORLDS.items():
        res = simulate_identification(rates, rng=np.random.default_rng(args.seed),
                                      rounds=rounds, reps=reps, check_every=args.check)
        for row in res.summary():
            print(table.row(world, row["rule"], row["stopped"], row["median_stop"],
                            row["error_rate"], row["best_share"]))
    print(f"{time.perf_counter() - start:.0f} s; load average {load_average()}")


if __name__ == "__main__":
    main()
