"""Figures of a simulation, written to files (PNG or SVG); never shown.

matplotlib (the ``plot`` extra) is imported inside these functions only, and figures are built on
the object-oriented API with the Agg canvas, so nothing touches pyplot's global state or a
display.

* :func:`plot_regret` — cumulative regret, mean and 95% band of the mean, per policy;
* :func:`plot_allocation` — share of pulls per arm over time, per policy;
* :func:`plot_posteriors` — posterior densities of each arm at the end of a run (the
  tutorial's Part 3 figure), for Beta policies;
* :func:`plot_decomposition` — exploration vs exploitation regret at the checkpoints;
* :func:`plot_weights` — learned weights with credible intervals beside the true coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import curve_band, feature_importance, regret_decomposition
from .runner import SimulationResult

__all__ = [
    "plot_allocation",
    "plot_decomposition",
    "plot_posteriors",
    "plot_regret",
    "plot_weights",
    "save_plots",
]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'tsbandit[plot]'") from exc
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p)
    return p


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _mark_changes(result: SimulationResult, ax: Any, color: str = "grey") -> None:
    """Dashed vertical lines at the world's change points (piecewise worlds)."""
    for cp in result.environment.get("change_points", []) or []:
        ax.axvline(cp, color=color, ls="--", lw=1)


def plot_regret(result: SimulationResult, path: str | Path,
                policies: Sequence[str] | None = None) -> Path:
    """Cumulative expected regret per policy: mean over trials and its 95% confidence band."""
    names = list(policies or result.policies)
    fig = _figure(9, 5)
    ax = fig.add_subplot()
    for name, color in zip(names, _colors(len(names)), strict=True):
        run = result.policies[name]
        mean, lo, hi = curve_band(run.regret)
        ax.plot(result.grid, mean, color=color, lw=2,
                label=f"{name} ({mean[-1]:.1f})")
        ax.fill_between(result.grid, lo, hi, color=color, alpha=0.2, lw=0)
    _mark_changes(result, ax)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret (expected)")
    ax.set_title(f"{result.scenario}: regret, mean and 95% band over {result.trials} trials")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_allocation(result: SimulationResult, path: str | Path,
                    policies: Sequence[str] | None = None) -> Path:
    """Share of pulls of each arm between consecutive grid rounds, one panel per policy."""
    names = list(policies or result.policies)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = _figure(4.2 * cols, 3.2 * rows + 0.6)
    grid = result.grid
    K = len(result.arm_names)
    colors = _colors(K)
    last = None
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        cum = result.policies[name].alloc                        # (G, K)
        per = np.diff(np.vstack([np.zeros((1, K)), cum]), axis=0)
        share = per / np.maximum(per.sum(axis=1, keepdims=True), 1e-300)
        last = ax.stackplot(grid, share.T, colors=colors, alpha=0.85)
        _mark_changes(result, ax, color="black")
        ax.set_ylim(0, 1)
        ax.set_xlim(grid[0], grid[-1])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("round", fontsize=8)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("share of pulls", fontsize=8)
    if last is not None:
        fig.legend(last, list(result.arm_names), loc="lower center", ncol=min(K, 5),
                   fontsize=7, frameon=False)
    fig.suptitle(f"{result.scenario}: arm allocation over time (all trials)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def plot_posteriors(result: SimulationResult, path: str | Path, policy: str | None = None,
                    trial: int = 0) -> Path | None:
    """Posterior Beta densities of every arm at the end of one trial (tutorial Part 3).

    Returns ``None`` when the policy has no Beta posterior.
    """
    from scipy import stats as sps

    names = [policy] if policy else [n for n, r in result.policies.items()
                                      if r.state.get("kind") == "beta"]
    names = [n for n in names if result.policies[n].state.get("kind") == "beta"]
    if not names:
        return None
    name = names[0]
    st = result.policies[name].state
    a, b = st["alpha"][trial], st["beta"][trial]
    truth = result.environment.get("rates")
    fig = _figure(9, 4.5)
    ax = fig.add_subplot()
    hi = float(min(1.0, max(np.max((a + 4 * np.sqrt(a)) / (a + b)), 0.05)))
    x = np.linspace(0.0, hi, 800)
    for k, (arm, color) in enumerate(zip(result.arm_names, _colors(len(a)), strict=True)):
        dens = sps.beta.pdf(x, a[k], b[k])
        ax.plot(x, dens, color=color, lw=2,
                label=f"{arm}: Beta({a[k]:.0f}, {b[k]:.0f})")
        ax.fill_between(x, dens, color=color, alpha=0.15, lw=0)
        if truth is not None:
            ax.axvline(truth[k], color=color, ls="--", lw=1)
    ax.set_xlabel("conversion rate")
    ax.set_ylabel("posterior density")
    ax.set_title(f"{result.scenario}: {name} posteriors after {result.rounds} rounds "
                 f"(trial {trial}; dashed = true rate)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_decomposition(result: SimulationResult, path: str | Path,
                       rounds: Sequence[int] | None = None) -> Path:
    """Exploration and exploitation regret (means over trials) at the given rounds.

    One panel per round; in each, one horizontal stacked bar per policy (exploration, then
    exploitation), labelled with the total and the exploration share.
    """
    names = list(result.policies)
    rounds = sorted(set(rounds or [result.rounds]))
    ncol = len(rounds)
    fig = _figure(min(15.0, 1.5 + 4.3 * ncol), 1.4 + 0.42 * len(names))
    y = np.arange(len(names))
    for j, rnd in enumerate(rounds):
        ax = fig.add_subplot(1, ncol, j + 1)
        ex, xp = [], []
        for name in names:
            dec = regret_decomposition(result, name, [rnd])[str(rnd)]
            ex.append(dec["exploration"])
            xp.append(dec["exploitation"])
        ex_a, xp_a = np.array(ex), np.array(xp)
        ax.barh(y, ex_a, 0.7, color="tab:orange", label="exploration")
        ax.barh(y, xp_a, 0.7, left=ex_a, color="tab:blue", label="exploitation")
        top = float(max((ex_a + xp_a).max(), 1e-9))
        for yi, e, x in zip(y, ex_a, xp_a, strict=True):
            tot = e + x
            share = f"{e / tot:.0%} expl." if tot > 0 else ""
            ax.text(tot + 0.01 * top, yi, f"{tot:.1f} ({share})", va="center", fontsize=7)
        ax.set_xlim(0, 1.34 * top)
        ax.set_yticks(y, names if j == 0 else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"after {rnd} rounds", fontsize=9)
        ax.set_xlabel("cumulative regret (mean over trials)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
        if j == 0:
            handles, labels = ax.get_legend_handles_labels()
    fig.suptitle(f"{result.scenario}: exploration vs exploitation regret", fontsize=10)
    fig.legend(handles, labels, loc="upper right", ncol=2, fontsize=7, frameon=False)
    return _save(fig, path)


def plot_weights(result: SimulationResult, path: str | Path, policy: str) -> Path | None:
    """Learned weights per arm (trial 0's posterior mean and 95% credible interval, and the
    mean over trials) beside the true coefficients. ``None`` when the policy has no weights."""
    rows = feature_importance(result, policy)
    if not rows or result.feature_names is None:
        return None
    feats = list(result.feature_names)
    arms = list(result.arm_names)
    K = len(arms)
    cols = min(3, K)
    nrows = -(-K // cols)
    fig = _figure(5.0 * cols, 3.6 * nrows)
    y = np.arange(len(feats))
    scale = rows[0].get("scale", "linear")
    # the axis follows the estimates and the truth; intervals wider than that (weights the data
    # cannot identify) are clipped at the edge and marked with an arrow head
    span = max([abs(r["mean"]) for r in rows] + [abs(r["trial0_mean"]) for r in rows]
               + [abs(r.get("true", 0.0)) for r in rows])
    lim = 1.6 * max(span, 1e-3)
    clipped = False
    for k, arm in enumerate(arms):
        ax = fig.add_subplot(nrows, cols, k + 1)
        mine = [r for r in rows if r["arm"] == arm]
        mean = np.array([r["trial0_mean"] for r in mine])
        lo = np.array([r["low"] for r in mine])
        hi = np.array([r["high"] for r in mine])
        lo_c, hi_c = np.maximum(lo, -lim), np.minimum(hi, lim)
        ax.errorbar(mean, y, xerr=[np.maximum(mean - lo_c, 0), np.maximum(hi_c - mean, 0)],
                    fmt="o", ms=3, color="tab:blue", ecolor="tab:blue", elinewidth=1,
                    capsize=2, label="learned, trial 0 (95% CI)")
        for side, mask, marker in ((-lim, lo < -lim, "<"), (lim, hi > lim, ">")):
            if mask.any():
                clipped = True
                ax.plot(np.full(int(mask.sum()), side), y[mask], marker, color="tab:blue",
                        ms=4)
        ax.set_xlim(-1.05 * lim, 1.05 * lim)
        ax.plot([r["mean"] for r in mine], y, "|", color="black", ms=8,
                label="mean over trials")
        if "true" in mine[0]:
            ax.plot([r["true"] for r in mine], y, "x", color="tab:red", ms=6, mew=2,
                    label="true")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(y, feats if k % cols == 0 else [""] * len(feats), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(arm, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="lower right")
    note = "; arrow = 95% interval runs off the axis" if clipped else ""
    fig.suptitle(f"{result.scenario}: {policy} weights after {result.rounds} rounds "
                 f"({scale} scale{note})", fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def save_plots(result: SimulationResult, out_dir: str | Path, kinds: Sequence[str] = (
        "regret", "allocation", "posteriors", "decomposition", "weights"),
        checkpoints: Sequence[int] = (), fmt: str = "png",
        weights_policy: str | None = None) -> list[Path]:
    """Write the applicable figures to ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths: list[Path | None] = []
    if "regret" in kinds:
        paths.append(plot_regret(result, out / f"regret.{fmt}"))
    if "allocation" in kinds:
        paths.append(plot_allocation(result, out / f"allocation.{fmt}"))
    if "posteriors" in kinds:
        paths.append(plot_posteriors(result, out / f"posteriors.{fmt}"))
    if "decomposition" in kinds:
        rounds = [c for c in checkpoints if 1 <= c <= result.rounds and c in result.grid]
        paths.append(plot_decomposition(result, out / f"decomposition.{fmt}",
                                        rounds or [result.rounds]))
    if "weights" in kinds:
        linear = [n for n, r in result.policies.items()
                  if r.state.get("kind") == "linear" and r.state.get("scale") == "linear"]
        pick = weights_policy if weights_policy in result.policies else (
            linear[0] if linear else None)
        if pick is not None:
            paths.append(plot_weights(result, out / f"weights-{pick}.{fmt}", pick))
    return [p for p in paths if p is not None]
