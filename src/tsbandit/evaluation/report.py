"""Run several estimators on one log and one target policy; print or serialize the result.

>>> import numpy as np
>>> from tsbandit.evaluation import LoggedData
>>> from tsbandit.evaluation.targets import UniformPolicy
>>> rng = np.random.default_rng(0)
>>> a = rng.integers(0, 2, 500)
>>> log = LoggedData(a, (rng.random(500) < 0.3 + 0.2 * a).astype(float), np.full(500, 0.5), 2)
>>> rep = evaluate(log, UniformPolicy(), rng=np.random.default_rng(1))
>>> [e.estimator for e in rep.estimates]
['replay', 'ips', 'snips', 'dm', 'dr']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .base import Estimator
from .data import LoggedData
from .direct import DM, DR, SNDR, SwitchDR
from .intervals import Estimate, clip_to_range, normal_interval, reward_range
from .ipw import IPS, SNIPS
from .replay import Replay
from .targets import TargetPolicy

__all__ = ["DEFAULT_ESTIMATORS", "ESTIMATOR_NAMES", "EvaluationReport", "evaluate",
           "make_estimators"]

#: every estimator :func:`make_estimators` knows
ESTIMATOR_NAMES = ("replay", "ips", "snips", "dm", "dr", "sndr", "switch-dr")
#: the ones :func:`evaluate` runs when none are given
DEFAULT_ESTIMATORS = ("replay", "ips", "snips", "dm", "dr")


def make_estimators(names: Sequence[str] = DEFAULT_ESTIMATORS, *, clip: float | None = None,
                    model: Any = None, n_folds: int = 5, tau: float = float("inf")
                    ) -> list[Estimator]:
    """Estimators by name (``clip`` applies to IPS, SNIPS and the DR family; ``model`` and
    ``n_folds`` to DM and the DR family; ``tau`` to Switch-DR)."""
    out: list[Estimator] = []
    for name in names:
        if name == "replay":
            out.append(Replay())
        elif name == "ips":
            out.append(IPS(clip))
        elif name == "snips":
            out.append(SNIPS(clip))
        elif name == "dm":
            out.append(DM(model, n_folds))
        elif name == "dr":
            out.append(DR(model, clip, n_folds))
        elif name == "sndr":
            out.append(SNDR(model, clip, n_folds))
        elif name == "switch-dr":
            out.append(SwitchDR(model, tau, clip, n_folds))
        else:
            raise ConfigurationError(
                f"unknown estimator {name!r}; known: {list(ESTIMATOR_NAMES)}")
    return out


@dataclass(frozen=True)
class EvaluationReport:
    """Estimates of one target policy on one log, with the log's own (on-policy) mean."""

    policy: str
    log: dict[str, Any]
    logged_value: Estimate
    estimates: list[Estimate]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"policy": self.policy, "log": self.log,
                "logged_value": self.logged_value.to_dict(),
                "estimates": [e.to_dict() for e in self.estimates], "notes": list(self.notes)}

    def table(self) -> str:
        """A plain-text table for people."""
        pct = f"{self.logged_value.level:.0%}"
        head = (f"{'estimator':<10}{'value':>11}{pct + ' interval':>27}{'std err':>11}"
                f"{'ESS':>10}{'events':>8}{'max w':>9}")
        lines = [head, "-" * len(head)]  # '*': interval cut to the reward range
        for e in [*self.estimates, self.logged_value]:
            interval = f"[{e.low:.5g}, {e.high:.5g}]" + ("*" if e.clipped else "")
            maxw = "" if np.isnan(e.max_weight) else f"{e.max_weight:.3g}"
            lines.append(f"{e.estimator:<10}{e.value:>11.5g}{interval:>27}{e.std_error:>11.3g}"
                         f"{e.ess:>10.1f}{e.n_events:>8d}{maxw:>9}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _logged_value(data: LoggedData, level: float) -> Estimate:
    r = data.rewards
    mean = float(r.mean())
    low, high, se = normal_interval(mean, r - mean, level)
    low, high, clipped = clip_to_range(mean, low, high, reward_range(r))
    return Estimate("logged", mean, low, high, se, float(data.n_rounds), data.n_rounds,
                    "normal", level, n_events=int(np.count_nonzero(r)), clipped=clipped)


def evaluate(
    data: LoggedData,
    policy: TargetPolicy | np.ndarray,
    *,
    estimators: Sequence[Estimator] | None = None,
    interval: str = "normal",
    level: float = 0.95,
    n_bootstrap: int = 1000,
    rng: np.random.Generator,
    bounds: str | tuple[float, float] | None = "auto",
) -> EvaluationReport:
    """Estimate a target policy's expected reward per round with several estimators.

    ``rng`` is split into independent streams: one for the target policy's Monte Carlo, one
    per estimator (so adding an estimator never changes the others' numbers). ``bounds`` is
    the reward range intervals are cut to (see :meth:`Estimator.estimate`).

    The report's notes say which intervals were cut to the reward range, which estimates rest
    on fewer than 10 events, and which have an effective sample size below 10 (a handful of
    rows decide the estimate; neither interval kind can be trusted then) or below 1% of the
    log.
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigurationError("evaluate needs rng=np.random.default_rng(seed)")
    ests = list(estimators) if estimators is not None else make_estimators()
    policy_rng, *est_rngs = rng.spawn(1 + len(ests))
    if isinstance(policy, TargetPolicy):
        name = getattr(policy, "name", type(policy).__name__)
        pi_e = policy.action_dist(data, policy_rng)
    else:
        name, pi_e = "given", np.asarray(policy, dtype=np.float64)
    results = [e.estimate(data, pi_e, interval=interval, level=level, rng=r,
                          n_bootstrap=n_bootstrap, bounds=bounds)
               for e, r in zip(ests, est_rngs, strict=True)]
    return EvaluationReport(name, data.describe(), _logged_value(data, level), results,
                            _notes(data, results, bounds))


def _notes(data: LoggedData, results: list[Estimate],
           bounds: str | tuple[float, float] | None) -> list[str]:
    notes = []
    cut = [e.estimator for e in results if e.clipped]
    if cut:
        lo, hi = (reward_range(data.rewards) if isinstance(bounds, str)
                  else tuple(float(b) for b in bounds or (0.0, 0.0)))
        notes.append(f"{', '.join(cut)}: interval cut to the reward range [{lo:.5g}, {hi:.5g}] "
                     "(marked *; an expected reward cannot leave it)")
    few = [e.estimator for e in results if e.n_events < 10]
    if few:
        notes.append(f"{', '.join(few)}: fewer than 10 rounds carry a non-zero weighted "
                     "reward; the interval is unreliable (zero width means no events, not "
                     "certainty)")
    tiny = [e for e in results if e.estimator not in ("dm", "replay") and e.ess < 10]
    if tiny:
        notes.append(f"{', '.join(f'{e.estimator} (ESS {e.ess:.1f})' for e in tiny)}: "
                     "effective sample size below 10, a handful of rows decide the estimate; "
                     "neither the normal nor the bootstrap interval can be trusted (try --clip "
                     "or --estimators switch-dr --tau)")
    low_ess = [e.estimator for e in results
               if e.ess < 0.01 * data.n_rounds and e not in tiny and e.estimator != "dm"]
    if low_ess:
        notes.append(f"{', '.join(low_ess)}: effective sample size below 1% of the log")
    return notes
