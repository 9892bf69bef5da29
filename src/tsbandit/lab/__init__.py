"""The simulation lab: compare strategies on simulated worlds before risking real traffic.

* environments — :class:`BernoulliArms`, :class:`PiecewiseBernoulli`, :class:`OfferWorld` (the
  tutorial's credit-card world), :class:`SupervisedBandit` (classification data as a bandit),
  :class:`DelayedFeedback`; the ground truth never reaches a policy;
* :func:`simulate` — every trial of every policy in lock-step as arrays, with common random
  numbers across policies;
* metrics — regret bands, pull shares, optimal-arm rate, exploration/exploitation regret,
  feature importance (:mod:`tsbandit.lab.metrics`);
* plots — PNG/SVG files through matplotlib (:mod:`tsbandit.lab.plots`, the ``plot`` extra);
* scenarios — the tutorial's simulations by name (:mod:`tsbandit.lab.scenarios`);
* carousels — rankings with clicks in every slot, learners side by side
  (:mod:`tsbandit.lab.carousel`, :func:`run_carousel`).

>>> from tsbandit.lab import BernoulliArms, make_policy, simulate
>>> env = BernoulliArms([0.030, 0.045, 0.028, 0.015, 0.060])
>>> res = simulate(env, [make_policy(p, env) for p in ("ts", "random")], 10, 500, seed=0)
>>> sorted(res.policies)
['random', 'ts']
"""

from __future__ import annotations

from .carousel import CAROUSELS, CarouselWorld, run_carousel
from .environments import (
    BernoulliArms,
    Block,
    DelayedFeedback,
    Environment,
    Episode,
    PiecewiseBernoulli,
)
from .metrics import (
    curve_band,
    feature_importance,
    mean_ci,
    paired_difference,
    regret_decomposition,
    results_dict,
    summarize_policy,
)
from .offers import (
    CUSTOMER_PROFILES,
    FEATURE_NAMES,
    OFFERS,
    CustomerFieldError,
    OfferWorld,
    build_customer_context,
    build_features,
    true_conversion_rates,
)
from .policies import PolicySpec, TutorialLinearSpec, available_policies, make_policy
from .runner import PolicyRun, SimulationResult, simulate
from .supervised import DATASETS, SupervisedBandit, load_dataset

__all__ = [
    "CAROUSELS",
    "CUSTOMER_PROFILES",
    "DATASETS",
    "FEATURE_NAMES",
    "OFFERS",
    "BernoulliArms",
    "Block",
    "CarouselWorld",
    "CustomerFieldError",
    "DelayedFeedback",
    "Environment",
    "Episode",
    "OfferWorld",
    "PiecewiseBernoulli",
    "PolicyRun",
    "PolicySpec",
    "SimulationResult",
    "SupervisedBandit",
    "TutorialLinearSpec",
    "available_policies",
    "build_customer_context",
    "build_features",
    "curve_band",
    "feature_importance",
    "load_dataset",
    "make_policy",
    "mean_ci",
    "paired_difference",
    "regret_decomposition",
    "results_dict",
    "run_carousel",
    "simulate",
    "summarize_policy",
    "true_conversion_rates",
]
