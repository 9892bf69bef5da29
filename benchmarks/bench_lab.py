"""How fast is the simulation lab? Side by side in one run.

Usage::

    python benchmarks/bench_lab.py            # full table
    python benchmarks/bench_lab.py --quick    # one repetition each

Rows:

* ``tutorial-part6`` (classic Thompson, UCB1, epsilon-greedy 0.1; 20 trials x 5000 rounds; with the
  exploration/exploitation decomposition) through the lab runner, where every trial of every
  policy advances in lock-step as arrays;
* the same simulation as the tutorial runs it: a per-round, per-trial Python loop over
  per-trial policy objects, (a) the tutorial's own small NumPy classes (written here from its
  Part 6, with a ``numpy.random.Generator`` instead of the global RNG) and (b) tsbandit's
  friendly ``Bandit`` objects, one per trial;
* the same with 200 trials: the lab's cost barely grows, the per-trial loop's grows tenfold
  (its cost is linear in the trials by construction, so it is extrapolated, not re-run);
* microseconds per trial-round for the ``offers`` world (Part 8: 5 offers, 11 features) with
  1,000 trials, for the contextual policies, through the fast paths and through the generic
  model API.

Each lab figure is the median of several runs (``time.perf_counter``, through
``benchmarks/harness.py``). The part6 lab row is
timed with the optional compiled kernels (numba, the ``fast`` extra) and on the NumPy path, the
repetitions alternating, in the same run (the two paths make bit-identical decisions).
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

import harness
from harness import Col, Stopwatch, Table
from tsbandit import Bandit
from tsbandit.lab import OfferWorld, make_policy, mean_ci, simulate
from tsbandit.lab.scenarios import PART6_RATES, run_scenario
from tsbandit.policies import UCB1, BetaBernoulli, EpsilonGreedy, ThompsonSampling, _jit

N_TRIALS, N_ROUNDS = 20, 5000
#: the tutorial's three strategies (classic Thompson sampling, as its loop below runs it)
PART6_POLICIES = ["ts-classic", "ucb1", "eps-greedy"]


# ----- the tutorial's Part 6 classes (the baseline) ----------------------------------------
class BanditStrategy(ABC):
    def __init__(self, n_arms: int, rng: np.random.Generator) -> None:
        self.n_arms = n_arms
        self.rng = rng
        self.counts = np.zeros(n_arms)
        self.rewards = np.zeros(n_arms)

    @abstractmethod
    def select_arm(self) -> int: ...

    def update(self, arm: int, reward: int) -> None:
        self.counts[arm] += 1
        self.rewards[arm] += reward


class TutorialEpsilonGreedy(BanditStrategy):
    def __init__(self, n_arms: int, rng: np.random.Generator, epsilon: float = 0.1) -> None:
        super().__init__(n_arms, rng)
        self.epsilon = epsilon

    def select_arm(self) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_arms))
        means = np.where(self.counts > 0, self.rewards / np.maximum(self.counts, 1), 0)
        return int(np.argmax(means))


class TutorialUCB1(BanditStrategy):
    def select_arm(self) -> int:
        n_total = int(self.counts.sum())
        if n_total < self.n_arms:
            return n_total
        means = self.rewards / self.counts
        ucb = means + np.sqrt(2 * np.log(n_total) / self.counts)
        return int(np.argmax(ucb))


class TutorialThompson(BanditStrategy):
    def __init__(self, n_arms: int, rng: np.random.Generator) -> None:
        super().__init__(n_arms, rng)
        self.alpha = np.ones(n_arms)
        self.beta = np.ones(n_arms)

    def select_arm(self) -> int:
        return int(np.argmax(self.rng.beta(self.alpha, self.beta)))

    def update(self, arm: int, reward: int) -> None:
        super().update(arm, reward)
        self.alpha[arm] += reward
        self.beta[arm] += 1 - reward


def tutorial_simulate(strategy: BanditStrategy, true_rates: np.ndarray, n_rounds: int,
                      rng: np.random.Generator) -> np.ndarray:
    best_rate = true_rates.max()
    cum_regret = np.zeros(n_rounds)
    total_regret = 0.0
    for t in range(n_rounds):
        arm = strategy.select_arm()
        reward = int(rng.random() < true_rates[arm])
        strategy.update(arm, reward)
        total_regret += best_rate - true_rates[arm]
        cum_regret[t] = total_regret
    return cum_regret


FINAL: dict[str, list[float]] = {}


def tutorial_loop() -> float:
    rates = np.array(PART6_RATES)
    rng = np.random.default_rng(42)
    factories: dict[str, Callable[[], BanditStrategy]] = {
        "epsilon-greedy 0.1": lambda: TutorialEpsilonGreedy(5, rng, 0.1),
        "UCB1": lambda: TutorialUCB1(5, rng),
        "Thompson": lambda: TutorialThompson(5, rng),
    }
    with Stopwatch() as sw:
        for name, factory in factories.items():
            regrets = np.zeros(N_ROUNDS)
            for _ in range(N_TRIALS):
                run = tutorial_simulate(factory(), rates, N_ROUNDS, rng)
                regrets += run
                FINAL.setdefault(name, []).append(float(run[-1]))
    return sw.wall


def bandit_loop() -> float:
    rates = np.array(PART6_RATES)
    rng = np.random.default_rng(42)
    rules = [EpsilonGreedy(0.1), UCB1(), ThompsonSampling()]
    with Stopwatch() as sw:
        for rule in rules:
            for trial in range(N_TRIALS):
                bandit = Bandit([f"offer{i}" for i in range(5)], BetaBernoulli(), rule,
                                seed=trial)
                regret = 0.0
                for _ in range(N_ROUNDS):
                    d = bandit.select()
                    bandit.update(d.index, 1.0 if rng.random() < rates[d.index] else 0.0)
                    regret += rates.max() - rates[d.index]
    return sw.wall


def median_time(fn: Callable[[], object], repeats: int) -> float:
    return harness.pick(harness.measure(fn, repeats))


def median_time_both(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn`` with the compiled kernels on and off (NumPy path), the
    repetitions alternating between the two; ``nan`` for "on" when the kernels did not load."""
    if _jit.kernels() is None:
        return float("nan"), median_time(fn, repeats)
    on, off = harness.alternate([fn, fn], repeats, before=lambda i: _jit.use(i == 0))
    _jit.use(True)
    return harness.pick(on), harness.pick(off)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition of each row")
    args = ap.parse_args()
    reps = 1 if args.quick else 5
    print(f"load average before: {harness.load_average()}")

    with Stopwatch() as sw:
        _jit.kernels()
    print(f"compiled kernels (numba): {_jit.status}; first call {sw.wall:.2f} s")
    lab_on, lab_np = median_time_both(
        lambda: run_scenario("tutorial-part6", seed=0, policies=PART6_POLICIES), reps)
    lab = lab_np if lab_on != lab_on else lab_on  # the path a default install takes
    tut = tutorial_loop() if args.quick else harness.pick(tutorial_loop() for _ in range(2))
    bnd = bandit_loop()
    print(f"tutorial-part6: 3 policies x {N_TRIALS} trials x {N_ROUNDS} rounds")
    table = Table(Col("runner", 58, align="<"), Col("seconds", 9, ".3f"),
                  Col("lab speed-up", 13))
    print(table.header())
    print(table.row("lab runner (lock-step arrays, with decomposition)", lab, "1.0x"))
    print(table.row("  the same on the NumPy path (TSBANDIT_JIT=0 or no numba)", lab_np,
                    harness.ratio(lab_np, lab))
          + f"   (tutorial loop / NumPy path: {tut / lab_np:.1f}x)")
    print(table.row("per-trial loop, the tutorial classes (NumPy)", tut,
                    harness.ratio(tut, lab, 1)))
    print(table.row("per-trial loop, tsbandit Bandit objects", bnd, harness.ratio(bnd, lab, 1)))
    print("\nfinal regret of the tutorial's own classes in those loops (all runs, mean and "
          "95% CI):")
    for name, vals in FINAL.items():
        m, lo, hi = mean_ci(vals)
        print(f"  {name:20s} {m:7.1f} [{lo:.1f}, {hi:.1f}]  ({len(vals)} runs)")
    big = median_time(lambda: run_scenario("tutorial-part6", trials=10 * N_TRIALS, seed=0,
                                           policies=PART6_POLICIES), 1 if args.quick else 3)
    print(table.row("lab runner, 200 trials", big, "").rstrip())
    print(table.row("per-trial loop, tutorial classes, 200 trials (10 x the above)", 10 * tut,
                    harness.ratio(10 * tut, big, 1)))

    env = OfferWorld()
    n, T = 1000, 1000
    print(f"\noffers (Part 8): {n} trials x {T} rounds, microseconds per trial-round")
    offers = Table(Col("policy", 22, align="<"), Col("fast path", 10, ".2f"),
                   Col("model API", 10, ".2f"))
    print(offers.header())
    for name in ("linear-ts", "nig-ts", "ts", "logistic-ts", "tutorial-linear-ts"):
        pol = [make_policy(name, env)]
        fast = median_time(lambda pol=pol: simulate(env, pol, n, T, seed=0),
                           1 if args.quick else 3) / (n * T) * 1e6
        generic = None
        if name != "tutorial-linear-ts":
            generic = median_time(lambda pol=pol: simulate(env, pol, n, T // 4, seed=0,
                                                           fast=False), 1) / (n * T // 4) * 1e6
        print(offers.row(name, fast, generic))
    print(f"load average after: {harness.load_average()}")


if __name__ == "__main__":
    main()
