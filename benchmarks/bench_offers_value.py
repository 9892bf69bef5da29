"""Several signals per decision (issue 15), side by side: constrained TS vs single-metric TS on
applications vs pybandits' multi-objective (Pareto) and cost-control bandits vs the oracle,
on ``offers-value`` and on the context-free three-metric world (tests/policies/mo_world.py).

    python benchmarks/bench_offers_value.py [--seeds 10] [--rounds 3000] [--seed 0]
                                            [--subsidy 0.2 0.5 0.8]

pybandits comes with the ``bench`` extra (``pip install -e '.[bench]'``; 8.4 brings jax,
jaxlib, numpyro, optuna, bokeh and sqlalchemy, ~500 MB beside NumPy and SciPy); without it
its rows say "not installed". How pybandits is driven (its API takes
Bernoulli rewards and fixed per-arm costs, no context-dependent constraint):

* revenue enters as a Bernoulli reward with probability revenue / 400 (its expectation is
  proportional to revenue per offer, the objective);
* ``pybandits-pareto``: ``SmabBernoulliMO`` over (that reward, "no default" = 1 unless an
  approved customer defaults), one arm at random from the Pareto front of the draws;
* ``pybandits-cost``: ``SmabBernoulliCC`` on that reward with each arm's *true* default risk as
  its fixed cost (told what our learners learn), subsidy factor 0.5 (its default;
  ``--subsidy`` for others);
* on ``offers-value`` pybandits runs one context-free bandit per customer profile (told the
  profile, which with four profiles is all the context there is; its contextual bandits, a
  Bayesian neural network per arm fit by variational inference, were not tried here).

Goals (issue 15), 3,000 rounds, 10 seeds: revenue per offer within 5 points (share of the
constrained oracle's) of the learner told the true functional form; <= 3% of decisions on arms
that break the constraint; ahead of pybandits on both; in every seed the best feasible arm takes
>= 90% of the last 1,000 rounds of the context-free world.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "policies"))

import mo_world

from harness import load_average
from tsbandit.lab.learners import ModelLearner
from tsbandit.lab.offers_value import OfferValueWorld
from tsbandit.lab.value_runner import MetricsLearner, run_offers_value
from tsbandit.policies import BetaBernoulli, ThompsonSampling
from tsbandit.policies.rules.constrained import ConstrainedThompson

REVENUE_SCALE = 400.0


def pybandits_available() -> bool:
    try:
        import pybandits.smab  # noqa: F401
    except ImportError:
        return False
    return True


class PyBanditsLearner:
    """One pybandits context-free bandit per (lane, group); ``group_of(contexts)`` says which
    group a customer belongs to (one group for a context-free world)."""

    def __init__(self, kind: str, n: int, costs: np.ndarray, seed: int,
                 group_of: Any = None, subsidy: float = 0.5) -> None:
        from pybandits.model import Beta, BetaCC, BetaMO
        from pybandits.smab import SmabBernoulliCC, SmabBernoulliMO

        self.kind, self.n = kind, n
        self.group_of = group_of or (lambda x: np.zeros(n, dtype=int))
        self.arms = [str(a) for a in range(costs.shape[-1])]
        costs = np.atleast_2d(costs)
        self.bandits = []
        for lane in range(n):
            row = []
            for g in range(costs.shape[0]):
                s = seed * 100_003 + lane * 101 + g
                if kind == "pareto":
                    row.append(SmabBernoulliMO(
                        actions={a: BetaMO(models=[Beta(), Beta()]) for a in self.arms},
                        random_seed=s))
                else:
                    row.append(SmabBernoulliCC(
                        actions={a: BetaCC(cost=float(c))
                                 for a, c in zip(self.arms, costs[g], strict=True)},
                        subsidy_factor=subsidy, random_seed=s))
            self.bandits.append(row)
        self.rng = np.random.default_rng(seed)
        self._groups = np.zeros(n, dtype=int)

    def choose(self, contexts: np.ndarray | None) -> np.ndarray:
        self._groups = self.group_of(contexts)
        out = np.empty(self.n, dtype=np.intp)
        for lane in range(self.n):
            actions, _ = self.bandits[lane][self._groups[lane]].predict(n_samples=1)
            out[lane] = int(actions[0])
        return out

    def observe(self, arms: np.ndarray, apply: np.ndarray, revenue: np.ndarray,
                risk: np.ndarray, contexts: np.ndarray | None) -> None:
        u = self.rng.random(self.n)
        for lane in range(self.n):
            applied = apply[lane] == 1.0
            value = int(applied and u[lane] < min(max(revenue[lane] / REVENUE_SCALE, 0.0), 1.0))
            bandit = self.bandits[lane][self._groups[lane]]
            if self.kind == "pareto":
                no_default = int(not (applied and risk[lane] == 1.0))
                bandit.update(actions=[str(arms[lane])], rewards=[[value, no_default]])
            else:
                bandit.update(actions=[str(arms[lane])], rewards=[value])


# ----- offers-value -------------------------------------------------------------------------
def offers_value(seeds: int, rounds: int, seed: int, subsidies: list[float]
                 ) -> dict[str, dict[str, np.ndarray]]:
    world = OfferValueWorld()
    X = world.profile_contexts()

    def profile_of(x: np.ndarray) -> np.ndarray:
        return np.argmin(((x[:, None, :] - X[None]) ** 2).sum(-1), axis=1)

    extra: dict[str, Any] = {}
    if pybandits_available():
        from tsbandit.lab.offers_value import true_risk

        risk = true_risk(X)                                  # (profiles, K)
        extra["pybandits-pareto"] = PyBanditsLearner("pareto", seeds, risk, seed, profile_of)
        for f in subsidies:
            extra[_cost_name(f, subsidies)] = PyBanditsLearner("cost", seeds, risk, seed,
                                                               profile_of, subsidy=f)
    res = run_offers_value(["constrained-ts", "true-form-ts", "ts-applications", "value-ts",
                            "oracle"], seeds, rounds, seed, world=world, learners=extra)
    out = {}
    for name, run in res.policies.items():
        out[name] = {**run.per_trial(res.oracle_value, res.oracle_arm),
                     "wall": np.array([run.wall_seconds])}
    return out


# ----- the context-free world ----------------------------------------------------------------
def context_free(learners: dict[str, Any], seeds: int, rounds: int, seed: int
                 ) -> dict[str, dict[str, np.ndarray]]:
    """Every learner on the same draws of the context-free world; per seed: revenue share of
    the constrained oracle's (best feasible arm), infeasible share, best-feasible share of the
    last 1,000 rounds."""
    world = np.random.default_rng(seed + 1)
    u_apply = world.random((rounds, seeds))
    z_rev = world.standard_normal((rounds, seeds))
    u_risk = world.random((rounds, seeds))
    value = mo_world.APPLY * mo_world.REVENUE
    oracle = value[mo_world.BEST]
    out = {}
    for name, learner in learners.items():
        chosen = np.zeros((rounds, seeds), dtype=np.intp)
        t0 = time.perf_counter()
        for t in range(rounds):
            a = np.asarray(learner.choose(None))
            applied = u_apply[t] < mo_world.APPLY[a]
            rev = np.where(applied, mo_world.REVENUE[a] * (1.0 + 0.2 * z_rev[t]), np.nan)
            risk = np.where(applied, (u_risk[t] < mo_world.RISK[a]) * 1.0, np.nan)
            learner.observe(a, applied.astype(float), rev, risk, None)
            chosen[t] = a
        wall = time.perf_counter() - t0
        last = min(1000, rounds)
        feasible_value = np.where(mo_world.INFEASIBLE, 0.0, value)
        out[name] = {"revenue_share": value[chosen].sum(axis=0) / (oracle * rounds),
                     "feasible_revenue_share": feasible_value[chosen].sum(axis=0)
                     / (oracle * rounds),
                     "infeasible_share": mo_world.INFEASIBLE[chosen].mean(axis=0),
                     "best_last": (chosen[-last:] == mo_world.BEST).mean(axis=0),
                     "wall": np.array([wall])}
    return out


class _Oracle:
    def __init__(self, n: int) -> None:
        self.n = n

    def choose(self, contexts: Any) -> np.ndarray:
        return np.full(self.n, mo_world.BEST)

    def observe(self, *args: Any) -> None:
        pass


class _Applications:
    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.inner = ModelLearner(BetaBernoulli(), ThompsonSampling(scale=0.25), n,
                                  mo_world.APPLY.shape[0], rng)

    def choose(self, contexts: Any) -> np.ndarray:
        return self.inner.choose(0, None)

    def observe(self, arms: np.ndarray, apply: np.ndarray, *args: Any) -> None:
        self.inner.observe(arms, apply, None)


def _cost_name(subsidy: float, subsidies: list[float]) -> str:
    return "pybandits-cost" + (f" (subsidy {subsidy:g})" if subsidies != [0.5] else "")


def context_free_learners(seeds: int, seed: int, subsidies: list[float]) -> dict[str, Any]:
    k = mo_world.APPLY.shape[0]
    rule = ConstrainedThompson(({"metric": "risk", "max": mo_world.LIMIT},))
    ss = np.random.SeedSequence(seed).spawn(3)
    out: dict[str, Any] = {
        "constrained-ts": MetricsLearner(mo_world.metric_set(), rule, seeds, k,
                                         np.random.default_rng(ss[0])),
        "ts-applications": _Applications(seeds, np.random.default_rng(ss[1])),
        "oracle": _Oracle(seeds),
    }
    if pybandits_available():
        out["pybandits-pareto"] = PyBanditsLearner("pareto", seeds, mo_world.RISK, seed)
        for f in subsidies:
            out[_cost_name(f, subsidies)] = PyBanditsLearner("cost", seeds, mo_world.RISK,
                                                             seed, subsidy=f)
    return out


# ----- report --------------------------------------------------------------------------------
def _fmt(v: np.ndarray) -> str:
    return f"{v.mean():6.1%} [{v.min():5.1%}, {v.max():5.1%}]"


def table(title: str, rows: dict[str, dict[str, np.ndarray]], cols: list[str],
          reference: str | None) -> None:
    print(f"\n### {title}\n")
    ref = rows[reference]["revenue_share"].mean() if reference else None
    head = "| policy | " + " | ".join(cols) + (" | vs reference |" if ref is not None else " |")
    print(head + " sec |")
    print("|" + "---|" * (len(cols) + 2 + (ref is not None)))
    for name, r in rows.items():
        cells = [_fmt(r[c]) for c in cols]
        if ref is not None:
            cells.append(f"{100 * (r['revenue_share'].mean() - ref):+.1f} pts")
        print(f"| {name} | " + " | ".join(cells) + f" | {float(r['wall'][0]):.1f} |")
    if not pybandits_available():
        print("| pybandits-pareto, pybandits-cost | not installed (pip install pybandits) |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subsidy", type=float, nargs="+", default=[0.5],
                    help="subsidy factors of pybandits' cost control (one row each)")
    args = ap.parse_args()
    print(f"load average {load_average()}; {args.seeds} seeds x {args.rounds} rounds, "
          f"master seed {args.seed}; cells: mean over seeds [min, max]")
    ov = offers_value(args.seeds, args.rounds, args.seed, args.subsidy)
    table("offers-value (revenue per offer as a share of the constrained oracle's)", ov,
          ["revenue_share", "feasible_revenue_share", "infeasible_share", "optimal_rate"],
          "true-form-ts")
    c = ov["constrained-ts"]
    print(f"\nconstrained-ts per seed: revenue share {np.round(c['revenue_share'], 3).tolist()}"
          f"; infeasible share {np.round(c['infeasible_share'], 4).tolist()}")
    cf = context_free(context_free_learners(args.seeds, args.seed, args.subsidy), args.seeds,
                      args.rounds, args.seed)
    table("context-free three-metric world (tests/policies/mo_world.py)", cf,
          ["revenue_share", "feasible_revenue_share", "infeasible_share", "best_last"], None)
    c = cf["constrained-ts"]
    print(f"\nconstrained-ts per seed: best feasible share of the last 1,000 rounds "
          f"{np.round(c['best_last'], 3).tolist()}; infeasible share "
          f"{np.round(c['infeasible_share'], 4).tolist()}")


if __name__ == "__main__":
    main()
