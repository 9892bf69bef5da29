"""Guardrail metrics of a Bayesian A/B/n test: a winner on the goal must not break them.

An experiment has a *goal* metric (conversion, revenue per user: what the stopping rule ranks
arms on) and *guardrail* metrics (default risk, latency, unsubscribes: what must not get
worse). Each metric has its own per-arm posteriors (:class:`~.posteriors.BinaryPosteriors` for
successes/trials, :class:`~.posteriors.NormalPosteriors` for ``n``/sum/sum of squares), all over
the same arms. A :class:`Guardrail` is a bound on one metric of every arm:

- absolute: ``{"metric": "risk", "max": 0.05}`` holds when ``X_k <= 0.05``;
- relative to the control (``"relative_to": "control"``, or an arm's name): with the default
  ``"lift": "relative"`` the bound is on the **relative lift** ``X_k / X_control - 1``, as in
  :func:`~.bayes.lift_interval` (``{"metric": "risk", "max": 0.10, "relative_to": "control"}``:
  risk at most 10 % above the control's, i.e. ``X_k <= 1.10 X_control``); it needs a control
  whose metric is positive;
- no worse than the control by more than ``delta`` (``"lift": "absolute"``): the bound is on the
  difference ``X_k - X_control`` (``{"metric": "risk", "max": 0.005, "relative_to": "control",
  "lift": "absolute"}``: at most half a point above the control; ``"min": -0.01`` on a metric
  where higher is better: at most one point below it).

The control's relative guardrails compare it with itself (a lift of exactly 0): they hold with
probability 1 when the bound admits 0 (``max >= 0`` or ``min <= 0``), else 0.

A guardrail *holds* for an arm when the posterior probability of its bound is at least the
guardrail level (default: the stopping rule's ``prob_best``). The probability is exact by default
(the metric's CDF for an absolute bound; one-dimensional quadrature of the ratio or the
difference against the control, :mod:`._marginals`), or a seeded Monte-Carlo estimate with its
standard error (``method="mc"``). "By how much" is the *credible bound* at the level: for a
``max`` guardrail the level-quantile of the guarded quantity (for ``min`` the ``1 - level``
quantile), and its ``margin`` past the limit; the guardrail holds exactly when ``margin <= 0``.

:func:`~.guarded.evaluate_guardrails` makes the decision: a winner must meet the stopping rule
on the goal and keep every guardrail.

>>> from tsbandit.experiments import BinaryPosteriors
>>> risk = BinaryPosteriors.from_counts([20, 60], [1000, 1000], names=["A", "B"])
>>> g = Guardrail.from_dict({"metric": "risk", "max": 0.05})
>>> round(guardrail_probability(g, risk, 1, None)[0], 4), round(credible_bound(g, risk, 1,
...                                                                            None, 0.99), 4)
(0.068, 0.0797)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ._marginals import Marginal, diff_cdf, ratio_cdf, solve_quantile
from .posteriors import ArmPosteriors

__all__ = ["Guardrail", "credible_bound", "guardrail_probability"]

_KEYS = {"metric", "max", "min", "relative_to", "lift"}
_MC_CHUNK = 100_000


@dataclass(frozen=True)
class Guardrail:
    """A bound on one metric of every arm (see the module docstring).

    Parameters
    ----------
    metric
        The metric's name.
    bound
        ``"max"`` (the metric, or its lift, must stay at most ``value``) or ``"min"``.
    value
        The limit (a rate, an amount; a relative lift as a fraction: 0.10 is +10 %).
    relative_to
        ``None`` (absolute), ``"control"`` (the experiment's control) or an arm's name.
    lift
        With ``relative_to``: ``"relative"`` (``X_k / X_ref - 1``) or ``"absolute"``
        (``X_k - X_ref``).
    """

    metric: str
    bound: str
    value: float
    relative_to: str | None = None
    lift: str = "relative"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigurationError(f"guardrail metric == {self.metric!r}, must be a name")
        if self.bound not in ("max", "min"):
            raise ConfigurationError(f"guardrail on {self.metric!r}: bound == {self.bound!r}, "
                                     "must be 'max' or 'min'")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigurationError(f"guardrail on {self.metric!r}: {self.bound} == {v!r}, "
                                     "must be a finite number")
        object.__setattr__(self, "value", float(v))
        if self.relative_to is not None and (not isinstance(self.relative_to, str)
                                             or not self.relative_to):
            raise ConfigurationError(f"guardrail on {self.metric!r}: relative_to == "
                                     f"{self.relative_to!r}, must be 'control' or an arm name")
        if self.lift not in ("relative", "absolute"):
            raise ConfigurationError(f"guardrail on {self.metric!r}: lift == {self.lift!r}, "
                                     "must be 'relative' or 'absolute'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Guardrail) -> Guardrail:
        """From ``{"metric", "max" | "min", "relative_to"?, "lift"?}``.

        >>> Guardrail.from_dict({"metric": "risk", "max": 0.1, "relative_to": "control"})
        Guardrail(metric='risk', bound='max', value=0.1, relative_to='control', lift='relative')
        """
        if isinstance(data, Guardrail):
            return data
        if not isinstance(data, Mapping) or "metric" not in data:
            raise ConfigurationError(f"guardrail {data!r} needs a 'metric'")
        bounds = [k for k in ("max", "min") if k in data]
        bad = set(data) - _KEYS
        if bad or len(bounds) != 1:
            raise ConfigurationError(
                f"guardrail {dict(data)!r}: give 'metric' and one of 'max' or 'min' (and "
                "optionally 'relative_to': 'control' or an arm, 'lift': 'relative' or "
                "'absolute')")
        return cls(data["metric"], bounds[0], data[bounds[0]], data.get("relative_to"),
                   data.get("lift", "relative"))

    @classmethod
    def parse(cls, text: str) -> Guardrail:
        """From the command line's ``METRIC:max=V[,relative_to=ARM][,lift=absolute]``
        (``V`` may end in ``%``: ``10%`` is 0.10).

        >>> Guardrail.parse("risk:max=10%,relative_to=control").value
        0.1
        """
        metric, sep, rest = text.partition(":")
        fields: dict[str, Any] = {"metric": metric.strip()}
        for part in rest.split(",") if sep else ():
            key, eq, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not eq or key in fields or key not in _KEYS - {"metric"}:
                raise ConfigurationError(
                    f"--guardrail {text!r}: expected METRIC:max=V or METRIC:min=V, optionally "
                    "followed by ,relative_to=ARM and ,lift=relative|absolute")
            if key in ("max", "min"):
                try:
                    fields[key] = (float(raw[:-1]) / 100.0 if raw.endswith("%")
                                   else float(raw))
                except ValueError:
                    raise ConfigurationError(
                        f"--guardrail {text!r}: {key} == {raw!r} is not a number") from None
            else:
                fields[key] = raw
        return cls.from_dict(fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as :meth:`from_dict` reads it."""
        out: dict[str, Any] = {"metric": self.metric, self.bound: self.value}
        if self.relative_to is not None:
            out |= {"relative_to": self.relative_to, "lift": self.lift}
        return out

    def describe(self, reference: str | None = None) -> str:
        """``risk <= 0.05``, ``risk / risk[A] - 1 <= +10%``, ``risk - risk[A] <= 0.005``."""
        op = "<=" if self.bound == "max" else ">="
        if self.relative_to is None:
            return f"{self.metric} {op} {self.value:g}"
        ref = reference or self.relative_to
        if self.lift == "relative":
            return f"{self.metric} / {self.metric}[{ref}] - 1 {op} {100 * self.value:+g}%"
        return f"{self.metric} - {self.metric}[{ref}] {op} {self.value:+g}"


def guardrail_probability(g: Guardrail, post: ArmPosteriors, arm: int, reference: int | None,
                          *, method: str = "exact", rng: np.random.Generator | None = None,
                          draws: int = 200_000) -> tuple[float, float]:
    """Posterior probability ``(p, stderr)`` that guardrail ``g`` holds for ``arm``.

    ``post`` are the guardrail metric's posteriors; ``reference`` the index of the arm a relative
    guardrail compares with. ``method="exact"`` (stderr 0) or ``"mc"`` (``draws`` joint draws
    from ``rng``; stderr ``sqrt(p (1 - p) / draws)``).
    """
    if g.relative_to is not None and reference is None:
        raise ConfigurationError(f"guardrail {g.describe()} needs the reference arm's index")
    if g.relative_to is not None and arm == reference:
        return _self_probability(g), 0.0
    if method == "mc":
        q = _mc_quantity(g, post, arm, reference, rng, draws)
        p = float(np.mean(q <= g.value) if g.bound == "max" else np.mean(q >= g.value))
        return p, math.sqrt(p * (1.0 - p) / q.size)
    if method != "exact":
        raise ConfigurationError(f"method == {method!r}, must be 'exact' or 'mc'")
    cdf = _quantity_cdf(g, post, arm, reference)
    below = cdf(g.value)
    return (below if g.bound == "max" else 1.0 - below), 0.0


def _self_probability(g: Guardrail) -> float:
    ok = 0.0 <= g.value if g.bound == "max" else 0.0 >= g.value
    return 1.0 if ok else 0.0


def _positive_reference(g: Guardrail, post: ArmPosteriors, reference: int) -> Marginal:
    mc = post.marginal(reference)
    if g.lift == "relative" and mc.cdf(0.0) > 1e-9:
        raise ConfigurationError(
            f"guardrail {g.describe(post.names[reference])}: the relative lift is undefined, "
            f"{post.names[reference]!r}'s {g.metric} is <= 0 with probability "
            f"{mc.cdf(0.0):.3g}; use 'lift': 'absolute'")
    return mc


def _quantity_cdf(g: Guardrail, post: ArmPosteriors, arm: int, reference: int | None
                  ) -> Any:
    """``x -> P(Q <= x)`` for the guarded quantity ``Q`` of ``arm`` (exact)."""
    mk = post.marginal(arm)
    if g.relative_to is None:
        return mk.cdf
    assert reference is not None
    mc = _positive_reference(g, post, reference)
    if g.lift == "relative":
        return lambda r: ratio_cdf(mc, mk, 1.0 + r)
    return lambda d: diff_cdf(mc, mk, d)


def _mc_quantity(g: Guardrail, post: ArmPosteriors, arm: int, reference: int | None,
                 rng: np.random.Generator | None, draws: int) -> np.ndarray:
    if not isinstance(rng, np.random.Generator):
        raise ConfigurationError("method='mc' draws: pass rng=np.random.default_rng(seed)")
    if isinstance(draws, bool) or int(draws) != draws or draws < 100:
        raise ConfigurationError(f"draws == {draws!r}, must be an integer >= 100")
    if g.relative_to is not None:
        assert reference is not None
        _positive_reference(g, post, reference)
    parts, done = [], 0
    while done < draws:
        m = min(_MC_CHUNK, int(draws) - done)
        x = post.sample(rng, m)
        if g.relative_to is None:
            parts.append(x[:, arm])
        elif g.lift == "relative":
            parts.append(x[:, arm] / x[:, reference] - 1.0)
        else:
            parts.append(x[:, arm] - x[:, reference])
        done += m
    return np.concatenate(parts)


def credible_bound(g: Guardrail, post: ArmPosteriors, arm: int, reference: int | None,
                   level: float) -> float:
    """The guarded quantity's credible bound at ``level`` (exact): its ``level``-quantile
    for a ``max`` guardrail, its ``1 - level`` quantile for ``min``. The guardrail holds with
    probability ``>= level`` exactly when this bound is within the limit."""
    q = level if g.bound == "max" else 1.0 - level
    if g.relative_to is not None and arm == reference:
        return 0.0
    mk = post.marginal(arm)
    if g.relative_to is None:
        return float(mk.ppf(q))
    cdf = _quantity_cdf(g, post, arm, reference)
    assert reference is not None
    mc = post.marginal(reference)
    c_mid, t_mid = _centre(mc), _centre(mk)
    if g.lift == "relative":
        guess = t_mid / c_mid - 1.0
        spread = (mk.width / abs(c_mid) + abs(t_mid) * mc.width / c_mid**2) / 1.349
    else:
        guess, spread = t_mid - c_mid, (mk.width + mc.width) / 1.349
    return solve_quantile(cdf, q, guess, spread)


def _centre(m: Marginal) -> float:
    mean = m.mean
    return mean if math.isfinite(mean) else m.ppf(0.5)
