"""Named scenarios: the tutorial's simulations (Parts 3, 6, 8; Exercises 1, 3, 4, 5) and the
supervised bake-off, each runnable by name (``tsbandit simulate tutorial-part6``).

A scenario fixes a world, a horizon, a number of trials, default policies and the rounds at
which the regret decomposition is reported, and remembers what the tutorial printed so reports
can show both side by side.

>>> sorted(SCENARIOS)[:3]
['bakeoff-breast_cancer', 'bakeoff-digits', 'bakeoff-iris']
>>> res = run_scenario("tutorial-part6", trials=4, rounds=300, seed=1)
>>> sorted(res.policies)
['eps-greedy', 'ts', 'ts-classic', 'ucb1']
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from .environments import BernoulliArms, DelayedFeedback, Environment, PiecewiseBernoulli
from .offers import OFFERS, OfferWorld
from .offers_value import OfferValueWorld
from .policies import available_policies, make_policy
from .runner import SimulationResult, simulate
from .supervised import DATASETS, SupervisedBandit

__all__ = ["SCENARIOS", "Scenario", "run_scenario", "scenario_plots", "scenario_results"]

PART6_RATES = (0.030, 0.045, 0.028, 0.015, 0.060)


@dataclass(frozen=True)
class Scenario:
    """A named simulation.

    Attributes
    ----------
    name, title
        Identifier and one-line description.
    make_env
        Builds the world.
    rounds, trials
        Defaults (``None`` rounds: the world's natural length, e.g. a data stream).
    policies
        Default policy names.
    checkpoints
        Rounds at which the exploration/exploitation decomposition is reported.
    tutorial
        What the tutorial prints for this simulation (for side-by-side reports).
    variants
        For scenarios that compare worlds (delays): suffix and wrapper applied to the world;
        every policy runs in every variant, with the same seed (paired).
    runner
        For a world with several signals per decision (``offers-value``): runs it instead of
        the single-metric runner, ``runner(policies, trials, rounds, seed, progress=...)``,
        returning a :class:`~.value_runner.ValueResult`.
    """

    name: str
    title: str
    make_env: Callable[[], Environment]
    rounds: int | None
    trials: int
    policies: tuple[str, ...]
    checkpoints: tuple[int, ...] = ()
    tutorial: dict[str, Any] = field(default_factory=dict)
    variants: tuple[tuple[str, Callable[[Environment], Environment]], ...] = ()
    plots: tuple[str, ...] = ("regret", "allocation", "decomposition")
    weights_policy: str | None = None
    runner: Callable[..., Any] | None = None

    def horizon(self, env: Environment) -> int:
        """Default number of rounds for ``env``."""
        if self.rounds is not None:
            return self.rounds
        return int(getattr(env, "natural_rounds", 1000))

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for ``tsbandit scenarios``."""
        env = self.make_env()
        if self.runner is not None:
            from .value_runner import VALUE_POLICIES

            avail = list(VALUE_POLICIES)
        else:
            avail = available_policies(env)
        return {"name": self.name, "title": self.title, "rounds": self.horizon(env),
                "trials": self.trials, "policies": list(self.policies),
                "available_policies": avail,
                "checkpoints": list(self.checkpoints), "tutorial": self.tutorial}


def _delay(mean: float, batch: int) -> Callable[[Environment], Environment]:
    return lambda env: DelayedFeedback(env, mean_delay=mean, batch_every=batch)


def _run_value(policies: Sequence[str] | None, trials: int, rounds: int, seed: int | None,
               progress: Callable[[int, int], None] | None = None) -> Any:
    from .value_runner import run_offers_value

    return run_offers_value(policies, trials, rounds, seed, progress=progress)


def _scenarios() -> dict[str, Scenario]:
    out = [
        Scenario(
            "tutorial-part6",
            "Part 6 / Exercise 4: Thompson vs UCB1 vs epsilon-greedy on five offers "
            "(rates 0.030, 0.045, 0.028, 0.015, 0.060)",
            lambda: BernoulliArms(PART6_RATES, OFFERS), 5000, 20,
            ("ts", "ucb1", "eps-greedy", "ts-classic"), checkpoints=(100, 1000, 5000),
            tutorial={"ts_pull_share_best_arm": 0.756,
                      "ts_pull_shares": [0.062, 0.084, 0.058, 0.040, 0.756],
                      "note": "one run of classic Thompson sampling (our ts-classic), "
                              "5000 rounds"},
            plots=("regret", "allocation", "posteriors", "decomposition")),
        Scenario(
            "offers",
            "Part 8 / Exercise 5: personalized credit-card offers, 4 customer profiles, "
            "11 features, 3000 rounds",
            lambda: OfferWorld("profiles"), 3000, 100,
            ("tutorial-linear-ts", "linear-ts", "shared-ts", "ts", "logistic-ts", "nig-ts",
             "greedy", "beta-ts", "random"), checkpoints=(100, 1000, 3000),
            tutorial={"conversion_rate": 0.059, "optimal_arm_rate": 0.713,
                      "offer_shares": {"balance_transfer_0apr": 0.340,
                                       "travel_miles_3x": 0.263,
                                       "cashback_grocery_2pct": 0.207,
                                       "premium_rewards_500bonus": 0.130,
                                       "business_expense_card": 0.059},
                      "note": "one run of the Part 7 class, prior variance 2, noise 0.05"},
            plots=("regret", "allocation", "decomposition", "weights"),
            weights_policy="linear-ts"),
        Scenario(
            "offers-customers",
            "Part 8 with random customers around the four profiles (features vary within "
            "segments, so the true coefficients become identifiable)",
            lambda: OfferWorld("around"), 3000, 100,
            ("linear-ts", "ts", "logistic-ts", "nig-ts", "greedy", "beta-ts", "random"),
            checkpoints=(100, 1000, 3000),
            plots=("regret", "allocation", "decomposition", "weights"),
            weights_policy="linear-ts"),
        Scenario(
            "offers-value",
            "Issue 15: the credit-card world with revenue and default risk; the most revenue "
            "per offer shown among offers whose default risk is <= 0.05 (see "
            "tsbandit.lab.offers_value)",
            OfferValueWorld, 3000, 10,
            ("constrained-ts", "true-form-ts", "value-ts", "ts-applications", "oracle"),
            plots=(), runner=_run_value),
        Scenario(
            "changepoint",
            "Exercise 1: arm 0 best in rounds 1-2500, arm 1 best in 2501-5000; classic vs "
            "sliding-window (500, 2000) vs discounted (0.998, 0.9995) Thompson sampling, and "
            "our default sampler (which does not forget either)",
            lambda: PiecewiseBernoulli([[0.060, 0.030, 0.028, 0.015, 0.045],
                                        [0.030, 0.060, 0.028, 0.015, 0.045]],
                                       change_points=[2500]), 5000, 20,
            ("ts-classic", "sw-ts", "sw-ts-2000", "discounted-ts", "discounted-ts-0.9995",
             "ts"),
            checkpoints=(2500, 5000),
            plots=("regret", "allocation", "decomposition")),
        Scenario(
            "delayed",
            "Exercise 3: the cost of delay. Part 6 rates; rewards arrive after a geometric "
            "delay and are applied in batches (classic and default Thompson sampling)",
            lambda: BernoulliArms(PART6_RATES, OFFERS), 5000, 20, ("ts-classic", "ts"),
            checkpoints=(100, 1000, 5000),
            variants=(("", lambda env: env),
                      ("@delay50/batch100", _delay(50.0, 100)),
                      ("@delay500/batch500", _delay(500.0, 500))),
            plots=("regret", "decomposition")),
    ]
    for ds in DATASETS:
        passes = 1 if ds == "digits" else 5
        out.append(Scenario(
            f"bakeoff-{ds}",
            f"Supervised bake-off: scikit-learn's {ds} as a contextual bandit (standardized "
            f"features + intercept, {passes} pass{'es' if passes > 1 else ''}, reward 1 for "
            "the right class)",
            functools.partial(SupervisedBandit.from_sklearn, ds, passes),
            None, 10, ("greedy", "naive-ts", "nig-ts", "logistic-ts", "ts"),
            plots=("regret", "decomposition")))
    return {s.name: s for s in out}


SCENARIOS: dict[str, Scenario] = _scenarios()


def run_scenario(name: str, policies: Sequence[str] | None = None, trials: int | None = None,
                 rounds: int | None = None, seed: int | None = 0,
                 progress: Callable[[int, int], None] | None = None,
                 fast: bool = True) -> Any:
    """Run the scenario called ``name``; ``None`` arguments take the scenario's defaults.

    ``progress(done, total)`` counts rounds over all variants of the scenario. Returns a
    :class:`~.runner.SimulationResult`, or for a scenario with several signals per decision
    (``offers-value``) a :class:`~.value_runner.ValueResult`.

    Raises
    ------
    ConfigurationError
        For an unknown scenario or policy name.
    """
    if name not in SCENARIOS:
        raise ConfigurationError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    sc = SCENARIOS[name]
    base = sc.make_env()
    names = list(policies) if policies else list(sc.policies)
    n_rounds = int(rounds) if rounds is not None else sc.horizon(base)
    n_trials = int(trials) if trials is not None else sc.trials
    if sc.runner is not None:
        return sc.runner(policies or sc.policies, n_trials, n_rounds, seed, progress=progress)
    variants = sc.variants or (("", lambda env: env),)
    result: SimulationResult | None = None
    for i, (suffix, wrap) in enumerate(variants):
        env = wrap(base)
        specs = [make_policy(p, env) for p in names]

        def prog(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * total + done, total * len(variants))

        res = simulate(env, specs, n_trials, n_rounds, seed, checkpoints=sc.checkpoints,
                       progress=prog, fast=fast, scenario=name)
        seed = res.seed
        if suffix:
            for run in list(res.policies.values()):
                run.name += suffix
            res.policies = {run.name: run for run in res.policies.values()}
        result = res if result is None else result.merge(res)
    assert result is not None
    result.environment = base.describe()
    if sc.variants:
        result.environment["variants"] = [v[0] or "immediate" for v in sc.variants]
    if sc.tutorial:
        result.notes.append(f"tutorial: {sc.tutorial}")
    return result


def scenario_results(result: Any) -> dict[str, Any]:
    """``results.json`` content of a scenario run (see :func:`~.metrics.results_dict`), with the
    scenario's title, checkpoints and what the tutorial prints (a
    :class:`~.value_runner.ValueResult`: its ``summary()`` with the title)."""
    from .metrics import results_dict

    sc = SCENARIOS.get(result.scenario)
    if not isinstance(result, SimulationResult):
        return {**result.summary(), "title": sc.title if sc else ""}
    checkpoints = sc.checkpoints if sc else ()
    out = results_dict(result, checkpoints)
    if sc is not None:
        out["title"] = sc.title
        out["checkpoints"] = [c for c in checkpoints if c <= result.rounds]
        out["tutorial"] = sc.tutorial
    return out


def scenario_plots(result: Any, out_dir: Any, fmt: str = "png") -> list[Any]:
    """Write the scenario's figures to ``out_dir`` (needs matplotlib; none for a scenario with
    several signals per decision)."""
    from .plots import save_plots

    if not isinstance(result, SimulationResult):
        return []
    sc = SCENARIOS.get(result.scenario)
    kinds = sc.plots if sc else ("regret", "allocation", "decomposition", "weights")
    return save_plots(result, out_dir, kinds, sc.checkpoints if sc else (), fmt,
                      sc.weights_policy if sc else None)
