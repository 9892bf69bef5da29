"""The tutorial's credit-card world (Part 8): 5 offers, 4 customer profiles, 11 features.

:func:`build_customer_context` turns one raw customer record into the tutorial's 11 features;
:func:`build_features` does the same for columns of many customers at once. Both validate every
field and name the offending one (:class:`CustomerFieldError`). :class:`OfferWorld` draws
customers — the four profiles exactly as the tutorial does, or random customers *around* them so
that contexts are not just four points — and converts them with the tutorial's true model.

Examples
--------
>>> x = build_customer_context(CUSTOMER_PROFILES["grocery_shopper"])
>>> x.shape, float(x[-1])
((11,), 1.0)
>>> try:
...     build_customer_context({**CUSTOMER_PROFILES["grocery_shopper"], "credit_score": 900})
... except CustomerFieldError as exc:
...     print(exc.field, "|", exc)
credit_score | customer field 'credit_score' == 900.0, must be between 300 and 850
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigurationError, CustomerFieldError, InvalidContextError
from .environments import Block, Environment, Episode, _check_trials

__all__ = [
    "CUSTOMER_FIELDS",
    "CUSTOMER_PROFILES",
    "FEATURE_NAMES",
    "OFFERS",
    "CustomerFieldError",
    "OfferWorld",
    "build_customer_context",
    "build_features",
    "true_conversion_rates",
]

FEATURE_NAMES: tuple[str, ...] = (
    "age_normalized",
    "income_log_normalized",
    "credit_score_normalized",
    "revolving_balance_ratio",
    "travel_spend_pct",
    "grocery_spend_pct",
    "months_as_customer",
    "has_mortgage",
    "has_business",
    "recent_app_count",
    "const",
)

OFFERS: tuple[str, ...] = (
    "cashback_grocery_2pct",
    "travel_miles_3x",
    "balance_transfer_0apr",
    "business_expense_card",
    "premium_rewards_500bonus",
)

#: field -> (low, high, required, integral); ``has_*`` are 0/1 flags
CUSTOMER_FIELDS: dict[str, tuple[float, float, bool, bool]] = {
    "age": (18.0, 120.0, True, False),
    "annual_income": (0.0, math.inf, True, False),
    "credit_score": (300.0, 850.0, True, False),
    "revolving_balance": (0.0, math.inf, True, False),
    "credit_limit": (0.0, math.inf, True, False),
    "travel_spend_pct": (0.0, 1.0, True, False),
    "grocery_spend_pct": (0.0, 1.0, True, False),
    "months_as_customer": (0.0, math.inf, True, False),
    "has_mortgage": (0.0, 1.0, False, True),
    "has_business": (0.0, 1.0, False, True),
    "recent_app_count": (0.0, math.inf, False, True),
}

CUSTOMER_PROFILES: dict[str, dict[str, float]] = {
    "frequent_traveller": {
        "age": 38, "annual_income": 180_000, "credit_score": 790,
        "revolving_balance": 2_000, "credit_limit": 25_000,
        "travel_spend_pct": 0.40, "grocery_spend_pct": 0.10,
        "months_as_customer": 48, "has_mortgage": 1, "has_business": 0,
        "recent_app_count": 1,
    },
    "grocery_shopper": {
        "age": 34, "annual_income": 65_000, "credit_score": 720,
        "revolving_balance": 800, "credit_limit": 8_000,
        "travel_spend_pct": 0.05, "grocery_spend_pct": 0.45,
        "months_as_customer": 24, "has_mortgage": 0, "has_business": 0,
        "recent_app_count": 0,
    },
    "high_revolving_balance": {
        "age": 42, "annual_income": 90_000, "credit_score": 650,
        "revolving_balance": 14_000, "credit_limit": 16_000,
        "travel_spend_pct": 0.10, "grocery_spend_pct": 0.20,
        "months_as_customer": 72, "has_mortgage": 1, "has_business": 0,
        "recent_app_count": 2,
    },
    "small_business_owner": {
        "age": 45, "annual_income": 250_000, "credit_score": 810,
        "revolving_balance": 5_000, "credit_limit": 40_000,
        "travel_spend_pct": 0.20, "grocery_spend_pct": 0.08,
        "months_as_customer": 96, "has_mortgage": 1, "has_business": 1,
        "recent_app_count": 0,
    },
}

# The tutorial's true model is linear in five features, capped at 0.25:
#   rate(offer, x) = min(const + sum_j coef_j x_j, 0.25)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_TRUE: dict[str, dict[str, float]] = {
    "cashback_grocery_2pct": {"const": 0.02, "grocery_spend_pct": 0.12},
    "travel_miles_3x": {"const": 0.01, "travel_spend_pct": 0.15, "income_log_normalized": 0.05},
    "balance_transfer_0apr": {"const": 0.01, "revolving_balance_ratio": 0.18},
    "business_expense_card": {"const": 0.005, "has_business": 0.20},
    "premium_rewards_500bonus": {"const": 0.01, "income_log_normalized": 0.08,
                                 "travel_spend_pct": 0.03},
}
_COEF = np.zeros((len(OFFERS), len(FEATURE_NAMES)))
for _k, _offer in enumerate(OFFERS):
    for _feat, _v in _TRUE[_offer].items():
        _COEF[_k, _F[_feat]] = _v
_COEF.setflags(write=False)
_CAP = 0.25


def _column(name: str, value: Any, n: int | None) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise CustomerFieldError(f"customer field {name!r} == {value!r}, must be a number", name)
    try:
        col = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CustomerFieldError(f"customer field {name!r} == {value!r}, must be a number",
                                 name) from None
    if col.ndim > 1 or (n is not None and col.ndim == 1 and col.shape[0] != n):
        raise CustomerFieldError(
            f"customer field {name!r} has shape {col.shape}, expected ({n},)", name)
    return col


def build_features(customers: Mapping[str, Any]) -> np.ndarray:
    """The tutorial's 11 features for one customer (scalars) or many (equal-length columns).

    Parameters
    ----------
    customers
        Field name to value (or to an ``(n,)`` column). Required: ``age`` (18-120),
        ``annual_income`` (>= 0), ``credit_score`` (300-850), ``revolving_balance`` (>= 0),
        ``credit_limit`` (>= 0), ``travel_spend_pct`` and ``grocery_spend_pct`` (0-1),
        ``months_as_customer`` (>= 0). Optional, default 0 as in the tutorial: ``has_mortgage``
        and ``has_business`` (0 or 1), ``recent_app_count`` (integer >= 0).

    Returns
    -------
    numpy.ndarray
        ``(11,)`` for scalar fields, ``(n, 11)`` for columns; see :data:`FEATURE_NAMES`.

    Raises
    ------
    CustomerFieldError
        Naming the field (and the customer index) that is missing, unknown, not a number, or
        out of range.
    """
    if not isinstance(customers, Mapping):
        raise InvalidContextError(
            f"a customer must be a mapping of field names to values, got {type(customers)!r}")
    unknown = sorted(set(customers) - set(CUSTOMER_FIELDS))
    if unknown:
        raise CustomerFieldError(
            f"unknown customer field {unknown[0]!r}; known fields: {list(CUSTOMER_FIELDS)}",
            unknown[0])
    n: int | None = None
    for v in customers.values():
        shape = np.shape(v)
        if len(shape) == 1:
            n = shape[0]
            break
    cols: dict[str, np.ndarray] = {}
    for name, (low, high, required, integral) in CUSTOMER_FIELDS.items():
        if name not in customers:
            if required:
                raise CustomerFieldError(f"customer field {name!r} is missing", name)
            cols[name] = np.zeros(() if n is None else (n,))
            continue
        col = _column(name, customers[name], n)
        bad = ~np.isfinite(col) | (col < low) | (col > high)
        if integral:
            bad |= col != np.round(col)
        if bad.any():
            i = int(np.flatnonzero(np.atleast_1d(bad))[0])
            val = float(np.atleast_1d(col)[i])
            if integral and high == 1.0:
                rule = "must be 0 or 1"
            elif integral:
                rule = "must be a whole number >= 0"
            elif math.isinf(high):
                rule = f"must be finite and >= {low:g}"
            else:
                rule = f"must be between {low:g} and {high:g}"
            where = f" (customer {i})" if col.ndim == 1 else ""
            raise CustomerFieldError(f"customer field {name!r} == {val!r}{where}, {rule}",
                                     name, i if col.ndim == 1 else None)
        cols[name] = col
    feats = [
        np.minimum((cols["age"] - 18.0) / 62.0, 1.0),
        np.log(np.maximum(cols["annual_income"], 1.0)) / np.log(500_000.0),
        (cols["credit_score"] - 300.0) / 550.0,
        np.minimum(cols["revolving_balance"] / np.maximum(cols["credit_limit"], 1.0), 1.0),
        np.minimum(cols["travel_spend_pct"], 1.0),
        np.minimum(cols["grocery_spend_pct"], 1.0),
        np.minimum(cols["months_as_customer"] / 120.0, 1.0),
        cols["has_mortgage"],
        cols["has_business"],
        np.minimum(cols["recent_app_count"] / 5.0, 1.0),
        np.ones(() if n is None else (n,)),
    ]
    return np.stack(np.broadcast_arrays(*feats), axis=-1)


def build_customer_context(customer: Mapping[str, Any]) -> np.ndarray:
    """The tutorial's ``build_customer_context``: one customer record to ``(11,)`` features,
    validated (see :func:`build_features`)."""
    for name, value in customer.items() if isinstance(customer, Mapping) else ():
        if np.ndim(value) != 0:
            raise CustomerFieldError(f"customer field {name!r} must be a single number", name)
    return build_features(customer)


def true_conversion_rates(contexts: np.ndarray) -> np.ndarray:
    """The tutorial's hidden conversion model: ``(..., 11)`` features to ``(..., 5)`` rates."""
    return np.minimum(np.asarray(contexts) @ _COEF.T, _CAP)


class OfferWorld(Environment):
    """The tutorial's credit-card offer world (Part 8).

    Each round, each trial meets one customer: one of the four profiles drawn uniformly (as the
    tutorial does, ``customers="profiles"``), or a random customer *around* a profile
    (``customers="around"``): age, income, score, limit, balances, spend shares, tenure and
    flags are jittered so that the features vary within each segment and the true coefficients
    become identifiable. Conversions follow the tutorial's true model (linear in five features,
    capped at 0.25).

    Parameters
    ----------
    customers
        ``"profiles"`` or ``"around"``.
    spread
        Scale of the jitter around the profiles (``"around"`` only; 1 = default).
    """

    name = "offers"

    def __init__(self, customers: str = "profiles", spread: float = 1.0) -> None:
        if customers not in ("profiles", "around"):
            raise ConfigurationError(
                f"customers == {customers!r}, must be 'profiles' or 'around'")
        sp = float(spread)
        if not math.isfinite(sp) or sp < 0:
            raise ConfigurationError(f"spread == {spread!r}, must be finite and >= 0")
        super().__init__(OFFERS, FEATURE_NAMES)
        self.customers = customers
        self.spread = sp
        self.profile_names = tuple(CUSTOMER_PROFILES)
        self._profile_x = np.stack([build_customer_context(p)
                                    for p in CUSTOMER_PROFILES.values()])
        self._profile_rates = true_conversion_rates(self._profile_x)

    def oracle_coefficients(self) -> np.ndarray:
        """The true model's coefficients ``(5, 11)`` (before the 0.25 cap)."""
        return _COEF

    def oracle_profile_rates(self) -> np.ndarray:
        """True conversion rate ``(4, 5)`` of each offer for each profile."""
        return self._profile_rates.copy()

    def sample_customers(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Raw fields of ``n`` random customers around the profiles (columns), and ``profile``."""
        prof = rng.integers(0, len(self.profile_names), n)
        base = {f: np.array([p[f] for p in CUSTOMER_PROFILES.values()], dtype=float)[prof]
                for f in CUSTOMER_FIELDS}
        s = self.spread

        def beta_around(mean: np.ndarray, conc: float) -> np.ndarray:
            if s == 0:
                return mean
            c = conc / s**2
            m = np.clip(mean, 0.01, 0.99)
            return rng.beta(m * c, (1.0 - m) * c)

        limit = base["credit_limit"] * np.exp(s * 0.25 * rng.standard_normal(n))
        ratio = beta_around(base["revolving_balance"] / base["credit_limit"], 20.0)
        out = {
            "age": np.clip(base["age"] + s * 6.0 * rng.standard_normal(n), 18.0, 80.0),
            "annual_income": base["annual_income"] * np.exp(s * 0.3 * rng.standard_normal(n)),
            "credit_score": np.clip(base["credit_score"] + s * 30.0 * rng.standard_normal(n),
                                    300.0, 850.0),
            "revolving_balance": ratio * limit,
            "credit_limit": limit,
            "travel_spend_pct": beta_around(base["travel_spend_pct"], 20.0),
            "grocery_spend_pct": beta_around(base["grocery_spend_pct"], 20.0),
            "months_as_customer": np.clip(base["months_as_customer"]
                                          + s * 12.0 * rng.standard_normal(n), 0.0, 240.0),
            "has_mortgage": np.where(rng.random(n) < 0.15 * min(s, 1.0),
                                     1.0 - base["has_mortgage"], base["has_mortgage"]),
            "has_business": np.where(rng.random(n) < 0.05 * min(s, 1.0),
                                     1.0 - base["has_business"], base["has_business"]),
            "recent_app_count": rng.poisson(np.maximum(base["recent_app_count"], 0.3)
                                            ).astype(float) if s > 0 else base["recent_app_count"],
        }
        out["profile"] = prof.astype(float)
        return out

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        _check_trials(n_trials, n_rounds)
        return _OfferEpisode(self, int(n_trials), np.random.default_rng(seed))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "customers": self.customers, "spread": self.spread,
                "profiles": list(self.profile_names)}


class _OfferEpisode(Episode):
    def __init__(self, world: OfferWorld, n_trials: int, rng: np.random.Generator) -> None:
        self.world = world
        self.n_trials = n_trials
        self._rng = rng
        self._next = 0

    def block(self, start: int, size: int) -> Block:
        if start != self._next:
            raise ConfigurationError(f"blocks must be consecutive: expected start {self._next}")
        self._next = start + size
        n = self.n_trials
        w = self.world
        if w.customers == "profiles":
            prof = self._rng.integers(0, len(w.profile_names), (size, n))
            contexts = w._profile_x[prof]
            expected = w._profile_rates[prof]
        else:
            raw = w.sample_customers(self._rng, size * n)
            raw.pop("profile")
            contexts = build_features(raw).reshape(size, n, -1)
            expected = true_conversion_rates(contexts)
        return Block(start, contexts, expected, self._rng.random((size, n)))


def profile_table(world: OfferWorld | None = None) -> list[dict[str, Any]]:
    """Each profile's true rates, best offer and its margin over the runner-up (for reports)."""
    w = world or OfferWorld()
    rows = []
    for name, rates in zip(w.profile_names, w.oracle_profile_rates(), strict=True):
        order = np.argsort(rates)[::-1]
        rows.append({"profile": name, "best": OFFERS[order[0]],
                     "best_rate": float(rates[order[0]]),
                     "runner_up": OFFERS[order[1]], "margin": float(rates[order[0]]
                                                                    - rates[order[1]]),
                     "rates": dict(zip(OFFERS, map(float, rates), strict=True))})
    return rows


def customers_from_records(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Features ``(n, 11)`` of a list of customer records (each validated)."""
    return np.stack([build_customer_context(r) for r in records])
