"""Best-arm identification: which allocation rule finds the best arm soonest, and how surely.

An experiment that must *name* the best arm (rather than earn the most while it runs) wants a
different allocation than a bandit: plain Thompson sampling sends nearly all traffic to the
apparent leader, so the runner-up is measured slowly and the posterior probability that the
leader is best creeps towards a stopping threshold. Top-two Thompson sampling
(:class:`~tsbandit.policies.rules.TopTwoThompson`, Russo 2016) gives the leader a fixed share and
the rest to its most plausible challenger; uniform allocation is the classic A/B/n test.

:func:`simulate_identification` runs the rules side by side on Bernoulli arms, ``reps``
independent experiments at once (vectorized over replications), checking every ``check_every``
users whether some arm's posterior probability of being best reached ``prob_best`` -- the
sequential stopping a dashboard would do -- and reports per rule when it stopped, whether the
arm it named is the true best, and the share of traffic the true best arm received (the cost
of the experiment in conversions).

>>> import numpy as np
>>> res = simulate_identification([0.5, 0.4], rng=np.random.default_rng(0), rounds=300,
...                               reps=20, check_every=50)
>>> sorted(res.outcomes)
['thompson', 'top_two', 'uniform']
>>> row = res.summary()[0]; sorted(row)[:3]
['best_share', 'error_rate', 'median_stop']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies import BetaBernoulli, RandomPolicy, SelectionRule, ThompsonSampling
from ..policies.rules import TopTwoThompson

__all__ = ["IdentificationOutcome", "IdentificationResult", "simulate_identification"]


@dataclass(frozen=True, eq=False)
class IdentificationOutcome:
    """One rule's replications: ``stop`` ``(reps,)`` users at the first check where an arm's
    P(best) reached the threshold (-1: never within the horizon), ``named`` the arm named then
    (at the horizon, the arm with the highest posterior mean, when it never stopped), and
    ``best_share`` the share of traffic the true best arm received until the stop."""

    stop: np.ndarray
    named: np.ndarray
    best_share: np.ndarray


@dataclass(frozen=True, eq=False)
class IdentificationResult:
    """The outcomes of every rule on one world (``rates``), with the settings used."""

    rates: tuple[float, ...]
    rounds: int
    reps: int
    prob_best: float
    outcomes: dict[str, IdentificationOutcome]

    def summary(self) -> list[dict[str, Any]]:
        """Per rule: share of experiments stopped within the horizon, median users to stop
        (over those that stopped), error rate (named arm not the true best, over all), and
        the true best arm's share of traffic."""
        best = int(np.argmax(self.rates))
        rows = []
        for name, o in self.outcomes.items():
            stopped = o.stop >= 0
            rows.append({
                "rule": name,
                "stopped": float(stopped.mean()),
                "median_stop": float(np.median(o.stop[stopped])) if stopped.any() else None,
                "error_rate": float((o.named != best).mean()),
                "best_share": float(o.best_share.mean()),
            })
        return rows


def _default_rules() -> dict[str, SelectionRule]:
    return {"thompson": ThompsonSampling(), "top_two": TopTwoThompson(),
            "uniform": RandomPolicy()}


def simulate_identification(rates: Sequence[float], *, rng: np.random.Generator,
                            rules: Mapping[str, SelectionRule] | None = None,
                            rounds: int = 3000, reps: int = 200, prob_best: float = 0.95,
                            check_every: int = 100, draws: int = 1000
                            ) -> IdentificationResult:
    """Run each rule on Bernoulli arms with true ``rates`` for ``rounds`` users, ``reps``
    times, stopping an experiment at the first check (every ``check_every`` users) where some
    arm's posterior probability of being best (Beta(1, 1) priors, ``draws`` Monte-Carlo
    draws) reaches ``prob_best``. Every rule sees its own spawned stream of the same seed."""
    r = np.asarray(rates, dtype=float)
    if r.ndim != 1 or r.size < 2 or not np.all((r >= 0) & (r <= 1)):
        raise ConfigurationError(f"rates == {rates!r}: give at least two probabilities")
    for name, v in (("rounds", rounds), ("reps", reps), ("check_every", check_every),
                    ("draws", draws)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigurationError(f"{name} == {v!r}, must be an integer >= 1")
    if not 0.5 < prob_best < 1:
        raise ConfigurationError(f"prob_best == {prob_best!r}, must be in (0.5, 1)")
    chosen_rules = dict(rules) if rules is not None else _default_rules()
    streams = rng.spawn(len(chosen_rules))
    outcomes = {name: _run(rule, r, g, rounds, reps, prob_best, check_every, draws)
                for (name, rule), g in zip(chosen_rules.items(), streams, strict=True)}
    return IdentificationResult(tuple(r.tolist()), rounds, reps, prob_best, outcomes)


def _run(rule: SelectionRule, rates: np.ndarray, rng: np.random.Generator, rounds: int,
         reps: int, prob_best: float, check_every: int, draws: int) -> IdentificationOutcome:
    model = BetaBernoulli()
    k = rates.size
    stats = model.init_stats(k, (reps,))
    best = int(np.argmax(rates))
    stop = np.full(reps, -1)
    named = np.full(reps, -1)
    best_pulls = np.zeros(reps)
    live = np.ones(reps, dtype=bool)
    rows = np.arange(reps)
    for t in range(1, rounds + 1):
        post = model.posterior(stats)
        arm = rule.choose(model, post, stats, rng)[:, 0]
        win = rng.random(reps) < rates[arm]
        # stopped experiments learn nothing more (their counts are frozen at the stop)
        np.add.at(stats["successes"], (rows[live], arm[live]), win[live])
        np.add.at(stats["failures"], (rows[live], arm[live]), ~win[live])
        best_pulls += live & (arm == best)
        if t % check_every == 0 or t == rounds:
            p_best = _prob_best(model, stats, rng, draws)
            hit = live & (p_best.max(axis=1) >= prob_best)
            stop[hit] = t
            named[hit] = p_best[hit].argmax(axis=1)
            live &= ~hit
            if not live.any():
                break
    if live.any():  # never stopped: the arm with the highest posterior mean at the horizon
        mean = model.mean(model.posterior(stats))
        named[live] = mean[live].argmax(axis=1)
    used = np.where(stop >= 0, stop, rounds)
    return IdentificationOutcome(stop, named, best_pulls / used)


def _prob_best(model: BetaBernoulli, stats: Any, rng: np.random.Generator,
               draws: int) -> np.ndarray:
    sample = model.sample(model.posterior(stats), rng, size=draws)      # (draws, reps, K)
    winners = sample.argmax(axis=-1)
    k = sample.shape[-1]
    return np.stack([(winners == a).mean(axis=0) for a in range(k)], axis=-1)
