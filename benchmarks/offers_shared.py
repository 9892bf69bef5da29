"""Does learning shared across offers help on the tutorial's offer world? 10 seeds, side by side.

Usage::

    python benchmarks/offers_shared.py                 # 10 seeds x 100 trials x 3000 rounds
    python benchmarks/offers_shared.py --seeds 3 --json out.json
    python benchmarks/offers_shared.py --quadratic     # add the quadratic feature map (slow)
    python benchmarks/offers_shared.py --tune          # cells-ts hyper-parameters, seeds 100-103

Each seed runs the ``offers`` scenario (four customer profiles, five offers, 3000 rounds, 100
trials) with ``linear-ts`` (per-offer linear TS, the tutorial's hyper-parameters) and
``shared-ts`` (:class:`tsbandit.policies.HierarchicalLinear`: every offer's weights are shared
weights plus an offset, on the raw 11-feature context, tempered Thompson sampling), in one
simulation with the scenario's seed; with ``--quadratic`` also ``shared-ts-quadratic`` (the same
on the generic quadratic expansion, every pairwise product and square of the context: 77
features, about 20x slower). Next to
them, the learner *told the true functional form* (``offers_bound.true_form_run``: per-offer
linear TS on only the features the true model uses), with the same number of trials per seed
(its own random stream: same world, different customers).

``cells-ts`` (:class:`tsbandit.policies.BinnedBeta`) is a Beta-Bernoulli bandit per context
cell: contexts quantized to a 0.25 grid and hashed into 64 cells, Beta(1, 3) priors, tempered
Thompson sampling at scale 0.2 (picked with ``--tune`` on seeds 100-103, which prints the grid).

No learner here is told the segments or the form: they see the 11 features every
policy sees. The table gives each seed's optimal-arm rate and conversion and the mean +- sd
over seeds; the goal of issue 17 is >= 70% optimal and >= 0.129 conversion.
"""

from __future__ import annotations

import argparse

import numpy as np

import harness
from harness import Stopwatch, markdown_header, markdown_row
from offers_bound import true_form_run
from tsbandit.lab import OfferWorld, PolicySpec
from tsbandit.lab.scenarios import run_scenario
from tsbandit.policies import BinnedBeta, HierarchicalLinear, ThompsonSampling

ROUNDS, TRIALS = 3000, 100
POLICIES = ("linear-ts", "shared-ts", "cells-ts")


def quadratic_spec() -> PolicySpec:
    """``shared-ts`` on the generic quadratic feature map."""
    return PolicySpec("shared-ts-quadratic",
                      HierarchicalLinear(n_features=11, shared_precision=1.0,
                                         offset_precision=4.0, noise_variance=0.1,
                                         features="quadratic"),
                      ThompsonSampling(scale=0.5))


TUNE_SEEDS = (100, 101, 102, 103)


def tune_specs() -> list[PolicySpec]:
    """The ``--tune`` grid of ``cells-ts``: prior x posterior scale, and partial pooling."""
    out = []
    for a0, b0 in ((1.0, 1.0), (1.0, 3.0), (1.0, 10.0)):
        for scale in (0.15, 0.2, 0.3, 0.5, 1.0):
            out.append(PolicySpec(f"Beta({a0:g},{b0:g}) scale {scale:g}",
                                  BinnedBeta(n_features=11, alpha0=a0, beta0=b0),
                                  ThompsonSampling(scale=scale)))
    for kappa in (2.0, 5.0, 30.0):
        out.append(PolicySpec(f"Beta(1,3) scale 0.2, pooling {kappa:g}",
                              BinnedBeta(n_features=11, alpha0=1.0, beta0=3.0, pooling=kappa),
                              ThompsonSampling(scale=0.2)))
    return out


def tune() -> None:
    """Print the ``cells-ts`` grid on the tuning seeds (never the reported ones)."""
    from tsbandit.lab.runner import simulate

    specs = tune_specs()
    res: dict[str, list[tuple[float, float]]] = {s.name: [] for s in specs}
    for seed in TUNE_SEEDS:
        out = simulate(OfferWorld("profiles"), specs, TRIALS, ROUNDS, seed, decompose=False,
                       scenario="offers")
        for n, r in out.policies.items():
            res[n].append((float(r.optimal.mean() / ROUNDS), float(r.rewards.mean() / ROUNDS)))
    print(f"cells-ts grid, seeds {TUNE_SEEDS}, {TRIALS} trials x {ROUNDS} rounds\n")
    print(markdown_header("cells-ts", "optimal-arm rate (mean over seeds)", "conversion"))
    for n, v in res.items():
        a = np.array(v)
        print(markdown_row(n, f"{a[:, 0].mean():.1%}", f"{a[:, 1].mean():.4f}"))


def lab_seed(seed: int, quadratic: bool) -> dict[str, tuple[float, float, float]]:
    """``{policy: (optimal-arm rate, conversion, seconds)}`` of one seed of the scenario."""
    from tsbandit.lab.runner import simulate

    res = run_scenario("offers", policies=list(POLICIES), seed=seed, rounds=ROUNDS,
                       trials=TRIALS)
    out = {n: (float(r.optimal.mean() / ROUNDS), float(r.rewards.mean() / ROUNDS),
               float(r.wall_seconds)) for n, r in res.policies.items()}
    if quadratic:
        q = simulate(OfferWorld("profiles"), [quadratic_spec()], TRIALS, ROUNDS, seed,
                     decompose=False, scenario="offers")
        for n, r in q.policies.items():
            out[n] = (float(r.optimal.mean() / ROUNDS), float(r.rewards.mean() / ROUNDS),
                      float(r.wall_seconds))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quadratic", action="store_true",
                    help="add the quadratic feature map (the slowest column)")
    ap.add_argument("--json", default=None, help="write the per-seed numbers here")
    ap.add_argument("--tune", action="store_true",
                    help="only the cells-ts hyper-parameter grid on seeds 100-103")
    args = ap.parse_args()
    print(f"load average: {harness.load_average()}\n")
    if args.tune:
        tune()
        print(f"\nload average: {harness.load_average()}")
        return
    world = OfferWorld("profiles")
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with Stopwatch() as sw:
        for s in range(args.seeds):
            for name, val in lab_seed(s, args.quadratic).items():
                rows.setdefault(name, []).append(val)
            for name, (pv, nz, sc, base) in {
                    "told the form (tutorial: var 2, noise 0.05, TS)": (2.0, 0.05, 1.0, 0.0),
                    "told the form (best: var 1, noise 0.1, base 0.07, scale 0.5)":
                        (1.0, 0.1, 0.5, 0.07)}.items():
                with Stopwatch() as one:
                    opt, conv = true_form_run(world, pv, nz, sc, base, 1000 + s, TRIALS)
                rows.setdefault(name, []).append((opt, conv, one.wall))
    print(f"offers: {TRIALS} trials x {ROUNDS} rounds per seed, seeds 0..{args.seeds - 1}\n")
    print(markdown_header("learner", *(f"seed {s}" for s in range(args.seeds)),
                          "optimal-arm rate (mean ± sd over seeds)", "conversion",
                          "s per seed"))
    for name, vals in rows.items():
        v = np.array(vals)
        sd = v[:, 0].std(ddof=1) if len(v) > 1 else 0.0
        sdc = v[:, 1].std(ddof=1) if len(v) > 1 else 0.0
        print(markdown_row(name, *(f"{o:.1%} / {c:.4f}" for o, c, _ in vals),
                           f"**{v[:, 0].mean():.1%}** ± {sd:.1%}",
                           f"**{v[:, 1].mean():.4f}** ± {sdc:.4f}", f"{v[:, 2].mean():.1f}"))
    print(f"\n(cells: optimal-arm rate / conversion; {sw.wall:.0f} s in all; "
          f"load average {harness.load_average()})")
    harness.write_json(args.json, {n: [{"optimal": o, "conversion": c, "seconds": t}
                                       for o, c, t in v] for n, v in rows.items()})


if __name__ == "__main__":
    main()
