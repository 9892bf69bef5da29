"""Decision quality of every lab scenario over 10 seeds: the numbers behind docs/lab.md.

Usage::

    python benchmarks/lab_scenarios.py                  # all scenarios, 10 seeds
    python benchmarks/lab_scenarios.py offers --seeds 3 # one scenario

Each seed runs the scenario with its default trials (so ``tutorial-part6`` pools 10 x 20 = 200
independent runs); the tables give mean +- sd over those runs (one run = one trial = what the
tutorial calls a seed) and the 95% confidence interval of the mean; the last column gives the
mean +- sd over the seeds of each seed's scenario-level mean. The bake-off scenarios already hold
10 trials (10 permutations of the stream), so they run once.
"""

from __future__ import annotations

import argparse

import numpy as np

import harness
from harness import Stopwatch
from tsbandit.lab.metrics import mean_ci
from tsbandit.lab.scenarios import SCENARIOS, run_scenario

EXTRA = {
    "tutorial-part6": ["ts-tempered", "ts-jeffreys"],
}


def pooled(name: str, seeds: int, policies: list[str] | None, rounds: int | None
           ) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    n_seeds = 1 if name.startswith("bakeoff") else seeds
    for s in range(n_seeds):
        res = run_scenario(name, policies=policies, rounds=rounds, seed=s)
        T = res.rounds
        for p, run in res.policies.items():
            best = run.pulls[:, res.best_arm] / T
            rows = out.setdefault(p, {})
            for key, val in (("regret", run.final_regret), ("reward", run.rewards / T),
                             ("optimal", run.optimal / T), ("best", best),
                             ("explore", run.explore_regret[-1]),
                             ("wall", np.full(run.final_regret.shape, run.wall_seconds))):
                rows.setdefault(key, []).append(val)
            rows.setdefault("seed", []).append(np.full(run.final_regret.shape, s))
    return {p: {k: np.concatenate(v) for k, v in d.items()} for p, d in out.items()}


def over_seeds(d: dict[str, np.ndarray], key: str) -> str:
    """Mean +- sd over seeds of the per-seed mean (each seed = one run of the scenario)."""
    seeds = np.unique(d["seed"])
    if seeds.size < 2:
        return "-"
    per = np.array([d[key][d["seed"] == s].mean() for s in seeds])
    return f"{per.mean():.4g} ± {per.std(ddof=1):.2g}"


def show(name: str, stats: dict[str, dict[str, np.ndarray]]) -> None:
    print(f"\n### {name}\n")
    print(harness.markdown_header("policy", "final regret (mean ± sd)", "95% CI of mean",
                                  "explore share", "best-arm share", "optimal-arm rate",
                                  "reward rate", "over seeds: regret / optimal / reward"))
    for p, d in stats.items():
        m, lo, hi = mean_ci(d["regret"])
        ex = d["explore"].mean() / max(m, 1e-12)
        print(harness.markdown_row(
            p, f"{m:.1f} ± {d['regret'].std(ddof=1):.1f}", f"[{lo:.1f}, {hi:.1f}]", f"{ex:.0%}",
            f"{d['best'].mean():.1%} ± {d['best'].std(ddof=1):.1%}",
            f"{d['optimal'].mean():.1%} ± {d['optimal'].std(ddof=1):.1%}",
            f"{d['reward'].mean():.4f} ± {d['reward'].std(ddof=1):.4f}",
            f"{over_seeds(d, 'regret')} / {over_seeds(d, 'optimal')} / "
            f"{over_seeds(d, 'reward')}"))
    n = next(iter(stats.values()))["regret"].size
    print(f"\n({n} runs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*",  # offers-value: benchmarks/bench_offers_value.py
                    default=[n for n, s in SCENARIOS.items() if s.runner is None])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args()
    print(f"load average {harness.load_average()}")
    for name in args.scenarios:
        with Stopwatch() as sw:
            pols = list(SCENARIOS[name].policies) + EXTRA.get(name, [])
            show(name, pooled(name, args.seeds, pols, args.rounds))
        print(f"({sw.wall:.0f} s)")


if __name__ == "__main__":
    main()
