"""The ``tsbandit`` command line (Typer): a thin shell over the library, lab and service.

Sub-commands import what they need lazily, so ``tsbandit --help`` stays fast.
"""

from __future__ import annotations

import typer

from . import __version__

app = typer.Typer(
    name="tsbandit",
    help="Thompson-sampling personalization engine: policies, simulation lab, decision service.",
    no_args_is_help=True,
    add_completion=False,
)

TUTORIAL_OFFERS = (
    "cashback_grocery_2pct",
    "travel_miles_3x",
    "balance_transfer_0apr",
    "business_expense_card",
    "premium_rewards_500bonus",
)
TUTORIAL_RATES = (0.030, 0.045, 0.028, 0.015, 0.060)


def _version_callback(value: bool) -> None:
    if value:
        print(f"tsbandit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Thompson-sampling personalization engine."""


@app.command()
def demo(
    rounds: int = typer.Option(5000, min=1, help="Simulated customers."),
    seed: int = typer.Option(42, help="Seed of the bandit and of the simulated customers."),
) -> None:
    """Thompson sampling picks credit-card offers for simulated customers (tutorial Part 5/6).

    The true application rates are hidden from the bandit; watch traffic shift to the best offer.
    """
    import numpy as np

    from .tutorial import ThompsonSamplingBandit

    bandit = ThompsonSamplingBandit(list(TUTORIAL_OFFERS), seed=seed)
    rates = dict(zip(TUTORIAL_OFFERS, TUTORIAL_RATES, strict=True))
    customers = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    u = customers.random(rounds)
    applied = 0
    for i in range(rounds):
        offer = bandit.select_arm()
        reward = int(u[i] < rates[offer])
        applied += reward
        bandit.update(offer, reward)
    print(bandit.summary())
    best = max(rates, key=rates.__getitem__)
    share = bandit.arms[best].total_pulls / rounds
    oracle = rates[best] * rounds
    print("\nTrue rates (hidden from the bandit): "
          + ", ".join(f"{k}={v:.3f}" for k, v in rates.items()))
    print(f"Traffic to the best offer ({best}): {share:.1%}")
    print(f"Applications: {applied} (always-best oracle expects {oracle:.0f}, "
          f"uniform random {np.mean(TUTORIAL_RATES) * rounds:.0f})")


def main() -> None:
    """Console-script entry point."""
    app()
