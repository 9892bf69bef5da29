"""The credit-card world with three signals per offer: application, revenue, default risk.

The tutorial's world (:mod:`.offers`) says only whether a customer applies. A bank wants the
most expected revenue per offer shown among offers whose default risk stays under its limit.
:class:`OfferValueWorld` keeps the application rates of :class:`~.offers.OfferWorld` exactly
(the same customers, the same draws: it *wraps* that world) and adds, for a customer who
applies and is approved:

* **revenue** (first-year dollars) by card and profile, linear in the customer's features, with
  Gaussian noise (sd :data:`REVENUE_SD`): grocery cash back earns with the grocery share,
  travel miles with the travel share, the balance transfer with the revolving balance, the
  business card on business owners, the premium card a fixed fee plus travel;
* **default risk** (a 0/1 default of an approved customer), rising with the revolving balance
  ratio, steeply for the balance-transfer card (it attracts the riskiest customers).

With the default limit ``risk <= 0.05`` the balance-transfer card is infeasible for the
high-revolving-balance profile (default risk 0.27) although it is that profile's best card
by applications (0.1675) and by revenue per offer (50.6 against 13.2 for the best feasible):
the constraint matters. Revenue also reorders the grocery shopper's offers (cash back earns
more per offer than the premium card, which gets more applications).

>>> w = OfferValueWorld()
>>> x = w.profile_contexts()
>>> true_risk(x)[2].round(2).tolist()   # high revolving balance: balance transfer 0.27
[0.03, 0.02, 0.27, 0.04, 0.03]
>>> [OFFERS[a] for a in w.oracle_arms(x)]
['travel_miles_3x', 'cashback_grocery_2pct', 'premium_rewards_500bonus', 'business_expense_card']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .environments import Block, Environment, Episode, _check_trials
from .offers import FEATURE_NAMES, OFFERS, OfferWorld, true_conversion_rates

__all__ = [
    "REVENUE_SD",
    "RISK_LIMIT",
    "TRUE_FORM_FEATURES",
    "OfferValueWorld",
    "ValueBlock",
    "true_revenue",
    "true_risk",
    "true_value",
]

#: default limit on the default risk of approved customers
RISK_LIMIT = 0.05
#: standard deviation of the revenue of one approved customer (dollars)
REVENUE_SD = 40.0

_F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _table(rows: dict[str, dict[str, float]]) -> np.ndarray:
    out = np.zeros((len(OFFERS), len(FEATURE_NAMES)))
    for k, offer in enumerate(OFFERS):
        for feat, v in rows[offer].items():
            out[k, _F[feat]] = v
    out.setflags(write=False)
    return out


# revenue per approved customer (dollars), linear in the features
_REVENUE = _table({
    "cashback_grocery_2pct": {"const": 60.0, "grocery_spend_pct": 300.0},
    "travel_miles_3x": {"const": 80.0, "travel_spend_pct": 300.0},
    "balance_transfer_0apr": {"const": 40.0, "revolving_balance_ratio": 300.0},
    "business_expense_card": {"const": 100.0, "has_business": 200.0},
    "premium_rewards_500bonus": {"const": 150.0, "travel_spend_pct": 100.0},
})
# default risk of an approved customer, rising with the revolving balance ratio
_RISK = _table({
    "cashback_grocery_2pct": {"const": 0.010, "revolving_balance_ratio": 0.02},
    "travel_miles_3x": {"const": 0.005, "revolving_balance_ratio": 0.02},
    "balance_transfer_0apr": {"const": 0.005, "revolving_balance_ratio": 0.30},
    "business_expense_card": {"const": 0.010, "revolving_balance_ratio": 0.03},
    "premium_rewards_500bonus": {"const": 0.005, "revolving_balance_ratio": 0.03},
})

#: the features every true function of this world is linear in (applications below their
#: 0.25 cap, revenue, risk): what a learner told the true functional form is given
TRUE_FORM_FEATURES: tuple[str, ...] = (
    "income_log_normalized", "revolving_balance_ratio", "travel_spend_pct",
    "grocery_spend_pct", "has_business", "const")


def true_revenue(contexts: np.ndarray) -> np.ndarray:
    """Expected revenue of an approved customer, ``(..., 11)`` features to ``(..., 5)``."""
    return np.asarray(contexts) @ _REVENUE.T


def true_risk(contexts: np.ndarray) -> np.ndarray:
    """Default probability of an approved customer, ``(..., 11)`` to ``(..., 5)``."""
    return np.clip(np.asarray(contexts) @ _RISK.T, 0.0, 1.0)


def true_value(contexts: np.ndarray) -> np.ndarray:
    """Expected revenue per offer shown: application rate times revenue, ``(..., 5)``."""
    return true_conversion_rates(contexts) * true_revenue(contexts)


@dataclass(frozen=True)
class ValueBlock(Block):
    """A :class:`~.environments.Block` of the value world: ``expected`` and ``noise`` are the
    applications' (as in the tutorial's world), and for every arm of every trial and round
    ``(size, n, K)`` the true revenue and risk; ``revenue_noise`` (standard normal) and
    ``risk_noise`` (uniform) ``(size, n)`` realize them for whichever arm is shown (common
    random numbers across policies)."""

    revenue: np.ndarray | None = None
    risk: np.ndarray | None = None
    revenue_noise: np.ndarray | None = None
    risk_noise: np.ndarray | None = None


class OfferValueWorld(Environment):
    """The tutorial's credit-card world with revenue and default risk (see the module).

    Parameters
    ----------
    customers, spread
        As :class:`~.offers.OfferWorld` (``"profiles"``: the four profiles; ``"around"``:
        random customers around them).
    risk_limit
        The bank's limit on the default risk of approved customers.
    revenue_sd
        Standard deviation of one approved customer's revenue.
    """

    name = "offers-value"

    def __init__(self, customers: str = "profiles", spread: float = 1.0,
                 risk_limit: float = RISK_LIMIT, revenue_sd: float = REVENUE_SD) -> None:
        self.offers = OfferWorld(customers, spread)
        super().__init__(OFFERS, FEATURE_NAMES)
        lim, sd = float(risk_limit), float(revenue_sd)
        if not 0.0 < lim < 1.0:
            raise ConfigurationError(f"risk_limit == {risk_limit!r}, must be in (0, 1)")
        if not math.isfinite(sd) or sd < 0:
            raise ConfigurationError(f"revenue_sd == {revenue_sd!r}, must be finite and >= 0")
        self.risk_limit = lim
        self.revenue_sd = sd

    def profile_contexts(self) -> np.ndarray:
        """The four profiles' features ``(4, 11)``."""
        return self.offers._profile_x.copy()

    def feasible(self, contexts: np.ndarray) -> np.ndarray:
        """``(..., 5)`` bool: the arm's true risk is within the limit."""
        return true_risk(contexts) <= self.risk_limit

    def oracle_values(self, contexts: np.ndarray) -> np.ndarray:
        """Expected revenue per offer ``(..., 5)``, ``-inf`` on infeasible arms."""
        return np.where(self.feasible(contexts), true_value(contexts), -np.inf)

    def oracle_arms(self, contexts: np.ndarray) -> np.ndarray:
        """The constrained oracle's arm ``(...)``: the best expected revenue per offer among
        the arms whose true risk is within the limit (every customer of this world has one:
        the travel card's risk is at most 0.025)."""
        return np.asarray(np.argmax(self.oracle_values(contexts), axis=-1))

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        _check_trials(n_trials, n_rounds)
        apply_seed, value_seed = seed.spawn(2)
        return _ValueEpisode(self, self.offers.episode(n_trials, n_rounds, apply_seed),
                             int(n_trials), np.random.default_rng(value_seed))

    def describe(self) -> dict[str, Any]:
        return {**self.offers.describe(), "name": self.name, "risk_limit": self.risk_limit,
                "revenue_sd": self.revenue_sd}


class _ValueEpisode(Episode):
    def __init__(self, world: OfferValueWorld, applications: Episode, n_trials: int,
                 rng: np.random.Generator) -> None:
        self.world = world
        self.applications = applications
        self.n_trials = n_trials
        self._rng = rng

    def block(self, start: int, size: int) -> ValueBlock:
        b = self.applications.block(start, size)
        assert b.contexts is not None
        n = self.n_trials
        return ValueBlock(b.start, b.contexts, b.expected, b.noise,
                          revenue=true_revenue(b.contexts), risk=true_risk(b.contexts),
                          revenue_noise=self._rng.standard_normal((size, n)),
                          risk_noise=self._rng.random((size, n)))
