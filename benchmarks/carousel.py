"""Clicks per ranking on the 3-slot carousel: learning from every slot vs the top slot only.

Usage::

    python benchmarks/carousel.py                          # the goal: carousel, 5 seeds
    python benchmarks/carousel.py --seeds 3 --trials 10    # quicker
    python benchmarks/carousel.py --worlds carousel carousel-cascade carousel-flat
    python benchmarks/carousel.py --tempered               # also the lab's scale-0.25 samplers

The goal (issue 17): on the 3-slot carousel, clicks per ranking >= 10% above learning from the
top slot only, at 3,000 rounds, in one seeded run side by side. Each seed is one run of
:func:`tsbandit.lab.carousel.run_carousel`: ``--trials`` independent trials of every learner
on the same users (common random numbers). The table gives, per seed and over seeds (mean and
sd of the per-seed figures), the realized clicks per ranking of each learner and its ratio to
the top-slot learner of the same posterior scale (the lift: ``pbm-ts`` over ``top-slot-ts``,
``pbm-ts@0.25`` over ``top-slot-ts@0.25``), and the expected clicks per ranking (ground truth,
no click noise).
"""

from __future__ import annotations

import argparse

import numpy as np

import harness
from harness import Col, Stopwatch, Table
from tsbandit.lab.carousel import CAROUSELS, LEARNERS, run_carousel

BASELINE = "top-slot-ts"


def baseline(name: str) -> str:
    """The top-slot learner with the same posterior scale (``pbm-ts@0.25`` ->
    ``top-slot-ts@0.25``): the like-for-like baseline of a learner."""
    _, at, scale = name.partition("@")
    return f"{BASELINE}@{scale}" if at else BASELINE


def run_world(name: str, learners: list[str], seeds: int, trials: int, rounds: int,
              out: dict) -> None:
    """Run ``seeds`` seeded runs of the world ``name`` and print their table."""
    table = Table(Col("seed", 5, align="<"), *[Col(n, max(12, len(n) + 1), align=">")
                                               for n in learners])
    print(f"\n### {name}: clicks per ranking (lift vs the top-slot learner of the same "
          f"posterior scale), {trials} trials x {rounds} rounds per seed\n")
    print(f"world: {CAROUSELS[name].describe()}")
    print(table.header())
    print(table.rule())
    per_seed: dict[str, list[float]] = {n: [] for n in learners}
    expected: dict[str, list[float]] = {n: [] for n in learners}
    for s in range(seeds):
        with Stopwatch() as sw:
            res = run_carousel(name, learners, trials=trials, rounds=rounds, seed=s)
        for n in learners:
            per_seed[n].append(res.clicks[n])
            expected[n].append(res.expected[n])
        print(table.row(str(s), *[f"{res.clicks[n]:.4f} {res.ratio(n, baseline(n)):.2f}x"
                                  for n in learners]) + f"   ({sw.wall:.0f} s)")
    print(table.rule())
    lifts = {n: np.array(per_seed[n]) / np.array(per_seed[baseline(n)]) for n in learners}
    print(table.row("mean", *[f"{np.mean(per_seed[n]):.4f} {lifts[n].mean():.2f}x"
                              for n in learners]))
    if seeds > 1:
        print(table.row("sd", *[f"{np.std(per_seed[n], ddof=1):.4f} "
                                f"{lifts[n].std(ddof=1):.2f}x" for n in learners]))
    print(table.row("exp.", *[f"{np.mean(expected[n]):.4f} "
                              f"{np.mean(expected[n]) / np.mean(expected[baseline(n)]):.2f}x"
                              for n in learners]))
    for n in learners:
        if n.startswith(("pbm-ts", "cascade-ts")):
            met = int((lifts[n] >= 1.10).sum())
            print(f"{n}: mean lift {lifts[n].mean():.3f} over {baseline(n)} (lowest seed "
                  f"{lifts[n].min():.3f}); >= 1.10 in {met} of {seeds} seeds")
    out[name] = {"clicks": per_seed, "expected": expected,
                 "lift": {n: lifts[n].tolist() for n in learners}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="*", default=["carousel"], choices=sorted(CAROUSELS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--tempered", action="store_true",
                    help="add the scale-0.25 Thompson samplers (the lab's default 'ts')")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args()
    learners = list(LEARNERS)
    if args.tempered:
        learners += ["top-slot-ts@0.25", "pbm-ts@0.25", "cascade-ts@0.25"]
    print(f"load average {harness.load_average()}")
    out: dict = {}
    for name in args.worlds:
        run_world(name, learners, args.seeds, args.trials, args.rounds, out)
    print(f"load average {harness.load_average()}")
    harness.write_json(args.json, out)


if __name__ == "__main__":
    main()
