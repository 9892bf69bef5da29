"""Plots of experiments (matplotlib, the ``[plot]`` extra), written to files, never shown.

matplotlib is imported inside the functions only, and through its object-oriented API with the
Agg canvas (no ``pyplot``, no process-wide backend switch), so importing this module is free and
calling it is safe in servers and tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .posteriors import ArmPosteriors, BinaryPosteriors
from .simulation import SimulationResult

__all__ = ["plot_posteriors", "plot_simulation"]

_LABELS = {"bayes_sequential": "Bayesian, look every batch",
           "bayes_single_look": "Bayesian, one look at n",
           "ztest_fixed": "z-test, fixed horizon n",
           "ztest_peeking": "z-test, peeking every batch"}


def _figure(ncols: int) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * ncols, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _draw_posteriors(ax: Any, post: ArmPosteriors, title: str) -> None:
    margs = [post.marginal(k) for k in range(post.n_arms)]
    lo = min(m.ppf(1e-4) for m in margs)
    hi = max(m.ppf(1.0 - 1e-4) for m in margs)
    x = np.linspace(lo, hi, 400)
    for name, m in zip(post.names, margs, strict=True):
        ax.plot(x, [m.pdf(float(v)) for v in x], label=f"{name} (mean {m.mean:.4g})")
    ax.set_xlabel("mean of the metric" if post.kind == "normal" else "conversion rate")
    ax.set_ylabel("posterior density")
    ax.set_title(title)
    ax.legend()


def plot_posteriors(post: ArmPosteriors, path: str | Path, *,
                    title: str = "Posterior of each arm") -> Path:
    """Write the posterior density of every arm's mean to ``path`` (PNG, SVG... by suffix)."""
    fig, (ax,) = _figure(1)
    _draw_posteriors(ax, post, title)
    out = Path(path)
    fig.savefig(out, dpi=120)
    return out


def _false_positives(result: SimulationResult, name: str) -> str:
    """Legend suffix: the design's A/A false-positive rate (speed alone flatters peeking)."""
    if not result.aa:
        return ""
    return f"; A/A false pos. {float(np.mean(result.aa[name].winner >= 0)):.1%}"


def plot_simulation(result: SimulationResult, path: str | Path) -> Path:
    """Two panels: the posteriors at the fixed horizon for data at the true rates, and the
    cumulative fraction of A/B replications decided by each sequential design against users
    per arm (the fixed-horizon designs decide at ``n``, drawn as a line)."""
    fig, (ax1, ax2) = _figure(2)
    n = result.n_fixed
    typical = BinaryPosteriors.from_counts([round(r * n) for r in result.rates], [n, n],
                                           names=["A", "B"])
    _draw_posteriors(ax1, typical, f"Posteriors at n = {n:,} per arm (observed = true rates)")
    for name in ("bayes_sequential", "ztest_peeking"):
        outcome = result.ab[name]
        s = np.sort(outcome.samples[outcome.winner >= 0])
        ecdf = np.arange(1, s.size + 1) / result.reps  # ends at the fraction that decided
        ax2.step(np.r_[0, s], np.r_[0.0, ecdf], where="post",
                 label=_LABELS[name] + _false_positives(result, name))
    fixed = float(np.mean(result.ab["ztest_fixed"].winner >= 0))
    ax2.axvline(n, color="grey", linestyle="--",
                label=f"fixed horizon n (z-test decides {fixed:.0%})"
                      + _false_positives(result, "ztest_fixed"))
    ax2.set_xlim(0, result.max_samples)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("users per arm at the decision")
    ax2.set_ylabel("fraction of replications decided")
    ax2.set_title(f"Samples to decision, rates {result.rates[0]:g} vs {result.rates[1]:g}")
    ax2.legend(loc="lower right", fontsize="small")
    out = Path(path)
    fig.savefig(out, dpi=120)
    return out
