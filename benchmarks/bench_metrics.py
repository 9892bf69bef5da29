"""Several metrics per decision (issue 15): what do three metrics cost, and does the pooled
prior find the best feasible arm in every seed?

1. decide + update, one at a time, for a Beta bandit, a Normal-Inverse-Gamma bandit and a
   three-metric constrained bandit (apply; revenue and risk given apply), alternating, with the
   compiled kernels (the ``fast`` extra) and the three-metric bandit also on the NumPy path (the
   same decisions); the ratio to the compiled Beta bandit is the issue's goal (<= 3x).
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

from typing import Any

from harness import alternate, load_average, pick
from tsbandit import Bandit
from tsbandit.policies import kernels

METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
           "risk": {"model": "beta", "given": "apply"}}


def loops(n: int) -> tuple[Any, Any, Any, Any]:
    from tsbandit.policies import NormalInverseGamma

    single = Bandit(["A", "B", "C", "D"], seed=0)
    gauss = Bandit(["A", "B", "C", "D"], NormalInverseGamma(), seed=0)
    multi, slow = (Bandit(["A", "B", "C", "D"], metrics=METRICS, objective={"revenue": 1.0},
                          constraints=[{"metric": "risk", "max": 0.05}], seed=0)
                   for _ in range(2))

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

    def played(bandit: Bandit) -> Any:
        def three() -> int:
            for i in range(n):
                d = bandit.select()
                if i % 3 == 0:
                    bandit.update(d.arm, {"apply": 1, "revenue": 100.0, "risk": 0})
                else:
                    bandit.update(d.arm, {"apply": 0})
            return n
        return three

    return one, revenue, played(multi), played(slow)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--seeds", type=int, default=20, help="lanes (seeds) per run")
    ap.add_argument("--seed", type=int, nargs="+", default=[0, 100, 300],
                    help="master seeds, one run of --seeds lanes each")
    args = ap.parse_args()
    n, reps = (500, 5) if args.quick else (2000, 9)
    fns = loops(n)
    on = kernels.use(True)  # loads them (or says why not)
    samples = alternate(fns, reps, cpu=args.cpu, per_op=True,
                        before=lambda i: kernels.use(i != 3))
    kernels.use(True)
    a, g, b, slow = (pick(s, args.cpu) for s in samples)
    print(f"load average {load_average()}; compiled kernels: {kernels.status()}")
    print(f"decide+update, one at a time: Beta {a:.1f} us, Normal-Inverse-Gamma {g:.1f} us, "
          f"three metrics constrained {b:.1f} us ({slow:.1f} us on the NumPy path); "
          f"ratio {b / a:.2f}x Beta, {b / g:.2f}x NIG (goal <= 3x the Beta bandit"
          f"{'' if on else '; the kernels are off, so all rows are the NumPy path'})")
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
