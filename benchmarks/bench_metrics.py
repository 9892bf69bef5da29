"""Several metrics per decision (issue 15): what do three metrics cost, and does the pooled
prior find the best feasible arm in every seed?

1. decide + update, one at a time, for a Beta bandit and for a three-metric constrained bandit
   (apply; revenue and risk given apply), alternating; the ratio is the issue's goal (<= 3x).
2. the context-free three-metric world (tests/policies/mo_world.py) over many seeds: plain
   constrained TS (pool 0) against the pooled prior (pool 2).

    python benchmarks/bench_metrics.py [--quick] [--cpu] [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "policies"))

from harness import alternate, load_average, pick
from tsbandit import Bandit

METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
           "risk": {"model": "beta", "given": "apply"}}


def loops(n: int) -> tuple[object, object, object]:
    from tsbandit.policies import NormalInverseGamma

    single = Bandit(["A", "B", "C", "D"], seed=0)
    gauss = Bandit(["A", "B", "C", "D"], NormalInverseGamma(), seed=0)
    multi = Bandit(["A", "B", "C", "D"], metrics=METRICS, objective={"revenue": 1.0},
                   constraints=[{"metric": "risk", "max": 0.05}], seed=0)

    def one() -> int:
        for i in range(n):
            d = single.select()
            single.update(d.arm, i % 3 == 0)
        return n

    def revenue() -> int:
        for i in range(n):
            d = gauss.select()
            gauss.update(d.arm, 100.0 * (i % 3 == 0))
        return n

    def three() -> int:
        for i in range(n):
            d = multi.select()
            if i % 3 == 0:
                multi.update(d.arm, {"apply": 1, "revenue": 100.0, "risk": 0})
            else:
                multi.update(d.arm, {"apply": 0})
        return n

    return one, revenue, three


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--seeds", type=int, default=20, help="lanes (seeds) per run")
    ap.add_argument("--seed", type=int, nargs="+", default=[0, 100, 300],
                    help="master seeds, one run of --seeds lanes each")
    args = ap.parse_args()
    n, reps = (500, 5) if args.quick else (2000, 9)
    one, revenue, three = loops(n)
    s1, s2, s3 = alternate([one, revenue, three], reps, cpu=args.cpu, per_op=True)
    a, g, b = pick(s1, args.cpu), pick(s2, args.cpu), pick(s3, args.cpu)
    print(f"load average {load_average()}")
    print(f"decide+update, one at a time: Beta {a:.1f} us, Normal-Inverse-Gamma {g:.1f} us, "
          f"three metrics constrained {b:.1f} us; ratio {b / a:.1f}x Beta, {b / g:.1f}x NIG "
          "(goal <= 3x)")
    from mo_world import simulate

    rounds = 3000
    rules = {"told the feasible arms": {"pool": 0.0, "oracle": True},
             "plain constrained TS": {"pool": 0.0},
             "pooled prior + zones": {"pool": 2.0, "optimism": 0.2, "pessimism": 0.05}}
    for seed in args.seed:
        for name, kw in rules.items():
            best, inf = simulate(seeds=args.seeds, rounds=rounds, seed=seed, **kw)
            print(f"seed {seed:4d} {name:23s}: best-feasible share of the last 1000 rounds "
                  f"min {best.min():.2f} mean {best.mean():.2f}; infeasible share max "
                  f"{inf.max():.3f} mean {inf.mean():.3f} ({args.seeds} seeds x {rounds} rounds)")


if __name__ == "__main__":
    main()
