"""How good can any learner be on the tutorial's offer world (Part 8)? An optimistic bound.

Usage::

    python benchmarks/offers_bound.py              # 300 runs per profile
    python benchmarks/offers_bound.py --runs 100

The ``offers`` world shows each of its four customer profiles about 750 times in 3000 rounds.
Here a learner is *told* which profile it faces and learns each profile's five offers as a
separate Bernoulli bandit of 750 rounds (``BernoulliArms`` of that profile's true rates):
no features to fit, no weights to identify. A contextual learner has strictly less to go on
(unless its model happens to pool the profiles the right way), so the best optimal-arm rate
found here is a practical ceiling for the ``offers`` goal. Rows: Beta priors x (tempered)
Thompson sampling and greedy; columns: optimal-arm rate per profile and the average over the
four profiles (each profile is a quarter of the traffic).
"""

from __future__ import annotations

import argparse

import numpy as np

from tsbandit.lab import BernoulliArms, OfferWorld, PolicySpec, simulate
from tsbandit.lab.rules import TemperedThompsonSampling
from tsbandit.policies import BetaBernoulli, Greedy, ThompsonSampling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300, help="runs per profile")
    ap.add_argument("--rounds", type=int, default=750, help="rounds per profile")
    args = ap.parse_args()
    world = OfferWorld()
    rates = world.oracle_profile_rates()
    policies = []
    for a0, b0 in ((1.0, 1.0), (0.5, 5.0), (1.0, 10.0)):
        for scale in (1.0, 0.5, 0.3):
            rule = ThompsonSampling() if scale == 1.0 else TemperedThompsonSampling(scale)
            policies.append(PolicySpec(f"Beta({a0:g},{b0:g}) TS scale {scale:g}",
                                       BetaBernoulli(a0, b0), rule))
        policies.append(PolicySpec(f"Beta({a0:g},{b0:g}) greedy", BetaBernoulli(a0, b0),
                                   Greedy()))
    table: dict[str, list[float]] = {}
    for k, r in enumerate(rates):
        res = simulate(BernoulliArms(r), policies, args.runs, args.rounds, seed=k,
                       decompose=False)
        for name, run in res.policies.items():
            table.setdefault(name, []).append(float(run.optimal.mean() / args.rounds))
    print(f"optimal-arm rate, {args.runs} runs x {args.rounds} rounds per profile")
    print("| learner told the profile | " + " | ".join(world.profile_names) + " | average |")
    print("|---|" + "---|" * (len(world.profile_names) + 1))
    for name, vals in sorted(table.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"| {name} | " + " | ".join(f"{v:.1%}" for v in vals)
              + f" | {np.mean(vals):.1%} |")


if __name__ == "__main__":
    main()
