"""Metrics over a :class:`~.runner.SimulationResult`: regret bands, shares, decomposition,
feature importance, and the ``results.json`` layout.

Every interval here is a 95% (by default) Student-t confidence interval of a *mean over trials*;
standard deviations are over trials (each trial is one independent run, i.e. one "seed" in the
tutorial's sense).

Exploration vs exploitation (the tutorial's Exercise 4): a round's regret is *exploration* when
the pulled arm's posterior mean is below the highest posterior mean at that moment (the policy
deliberately tried something it did not believe best), and *exploitation* otherwise (it pulled
its current best guess, which was wrong). The two add up to the total regret.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._scipy import stdtrit
from ..errors import ConfigurationError
from .runner import PolicyRun, SimulationResult

__all__ = [
    "curve_band",
    "feature_importance",
    "mean_ci",
    "paired_difference",
    "regret_decomposition",
    "results_dict",
    "summarize_policy",
]


def mean_ci(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student-t confidence interval of the mean of ``values`` (1-D).

    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    >>> m, round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stdtrit(x.size - 1, 0.5 + level / 2.0) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def curve_band(curves: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Mean and confidence band ``(G,)`` each, of ``(G, n)`` per-trial curves."""
    n = curves.shape[1]
    mean = curves.mean(axis=1)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = stdtrit(n - 1, 0.5 + level / 2.0) * curves.std(axis=1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_difference(result: SimulationResult, a: str, b: str,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Final regret of ``a`` minus that of ``b``: mean and CI over trials.

    The trials are paired by common random numbers, so this interval is much narrower than
    the two marginal intervals suggest.
    """
    d = result.policies[a].final_regret - result.policies[b].final_regret
    return mean_ci(d, level)


def _at(run: PolicyRun, grid: np.ndarray, rnd: int) -> int:
    i = int(np.searchsorted(grid, rnd))
    if i >= grid.shape[0] or grid[i] != rnd:
        raise ConfigurationError(
            f"round {rnd} is not on the recorded grid; pass it in checkpoints")
    return i


def regret_decomposition(result: SimulationResult, name: str,
                         rounds: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """Cumulative exploration / exploitation regret (means over trials) at ``rounds``.

    Returns ``{str(round): {"exploration", "exploitation", "total", "exploration_share"}}``.
    Rounds must be on the recorded grid (the final round always is).
    """
    run = result.policies[name]
    out: dict[str, dict[str, float]] = {}
    for rnd in rounds if rounds is not None else [result.rounds]:
        i = _at(run, result.grid, int(rnd))
        tot = float(run.regret[i].mean())
        ex = float(run.explore_regret[i].mean())
        out[str(int(rnd))] = {"exploration": ex, "exploitation": tot - ex, "total": tot,
                              "exploration_share": ex / tot if tot > 0 else math.nan}
    return out


def feature_importance(result: SimulationResult, name: str,
                       level_note: str = "95%") -> list[dict[str, Any]]:
    """Learned weights per arm and feature next to the true coefficients (Exercise 5).

    For each (arm, feature): the posterior mean averaged over trials (and its sd over trials),
    trial 0's posterior mean and 95% credible interval (what one deployed bandit would
    report), the share of trials whose interval
    covers the true coefficient, and the true coefficient (when the world is linear).
    Empty for policies without weights (Beta).
    """
    run = result.policies[name]
    st = run.state
    if st.get("kind") != "linear" or result.feature_names is None:
        return []
    mean, low, high = st["mean"], st["low"], st["high"]           # (n, K, d)
    true = result.oracle_coefficients
    rows = []
    for k, arm in enumerate(result.arm_names):
        for j, feat in enumerate(result.feature_names):
            row: dict[str, Any] = {
                "arm": arm, "feature": feat,
                "mean": float(mean[:, k, j].mean()),
                "sd_over_trials": float(mean[:, k, j].std()),
                "trial0_mean": float(mean[0, k, j]),
                "low": float(low[0, k, j]), "high": float(high[0, k, j]),
                "scale": st.get("scale", "linear"),
            }
            if true is not None and st.get("scale", "linear") == "linear":
                t = float(true[k, j])
                row["true"] = t
                row["coverage"] = float(np.mean((low[:, k, j] <= t) & (t <= high[:, k, j])))
            rows.append(row)
    return rows


def summarize_policy(result: SimulationResult, name: str,
                     checkpoints: Sequence[int] = ()) -> dict[str, Any]:
    """The ``results.json`` entry of one policy (see :func:`results_dict`)."""
    run = result.policies[name]
    T = result.rounds
    fr = run.final_regret
    m, lo, hi = mean_ci(fr)
    pulls = run.pulls
    total = pulls.sum()
    rr = run.rewards / T
    rounds = sorted({int(c) for c in checkpoints if 1 <= c <= T} | {T})
    dec = regret_decomposition(result, name, rounds)
    final = dec[str(T)]
    out: dict[str, Any] = {
        "description": run.description,
        "final_regret_mean": m,
        "final_regret_sd": float(fr.std(ddof=1)) if fr.size > 1 else 0.0,
        "final_regret_ci95": [lo, hi],
        "best_arm_share": float(pulls[:, result.best_arm].sum() / total),
        "optimal_arm_rate": float(run.optimal.mean() / T),
        "optimal_arm_rate_sd": float((run.optimal / T).std(ddof=1)) if fr.size > 1 else 0.0,
        "reward_rate": float(rr.mean()),
        "reward_rate_sd": float(rr.std(ddof=1)) if fr.size > 1 else 0.0,
        "pull_share": {a: float(pulls[:, k].sum() / total)
                       for k, a in enumerate(result.arm_names)},
        "regret_exploration": final["exploration"],
        "regret_exploitation": final["exploitation"],
        "regret_decomposition": dec,
        "wall_seconds": run.wall_seconds,
        "config": run.config,
    }
    return out


def results_dict(result: SimulationResult, checkpoints: Sequence[int] = (),
                 curves: bool = True, weights: bool = True) -> dict[str, Any]:
    """JSON-safe results: the keys tools read (``scenario``, ``rounds``, ``trials``, ``seed``,
    ``policies.<name>.final_regret_mean`` ...), plus curves and feature importance."""
    T = result.rounds
    out: dict[str, Any] = {
        "format": 1,
        "scenario": result.scenario,
        "rounds": T,
        "trials": result.trials,
        "seed": result.seed,
        "environment": result.environment,
        "arms": list(result.arm_names),
        "best_arm": result.arm_names[result.best_arm],
        "oracle_reward_rate": float(result.oracle_reward.mean() / T),
        "uniform_reward_rate": float(result.uniform_reward.mean() / T),
        "wall_seconds": result.wall_seconds,
        "notes": list(result.notes),
        "policies": {name: summarize_policy(result, name, checkpoints)
                     for name in result.policies},
    }
    if curves:
        out["grid"] = result.grid.tolist()
        for name, run in result.policies.items():
            mean, lo, hi = curve_band(run.regret)
            out["policies"][name]["regret_curve"] = {
                "mean": mean.round(6).tolist(), "low": lo.round(6).tolist(),
                "high": hi.round(6).tolist()}
    if weights and result.feature_names is not None:
        for name in result.policies:
            rows = feature_importance(result, name)
            if rows:
                out["policies"][name]["feature_importance"] = rows
    return out
