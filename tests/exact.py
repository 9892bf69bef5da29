"""Exact Thompson-sampling choice probabilities by quadrature: the references that Monte-Carlo
propensities are tested against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import integrate, stats


def _first_slot(pdf: Callable[[float, int], float], cdf: Callable[[float, int], float],
                n_arms: int, lo: float, hi: float) -> np.ndarray:
    """P(arm i's draw is the largest) = int f_i(x) prod_{j != i} F_j(x) dx, per arm."""

    def integrand(x: float, i: int) -> float:
        out = pdf(x, i)
        for j in range(n_arms):
            if j != i:
                out *= cdf(x, j)
        return float(out)

    return np.array([integrate.quad(integrand, lo, hi, args=(i,), limit=400)[0]
                     for i in range(n_arms)])


def first_slot_beta(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """First-choice probabilities of Thompson sampling over ``Beta(alpha_i, beta_i)`` arms."""
    return _first_slot(lambda x, i: stats.beta.pdf(x, alpha[i], beta[i]),
                       lambda x, j: stats.beta.cdf(x, alpha[j], beta[j]), len(alpha), 0.0, 1.0)


def first_slot_t(df: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The same over Student-t arms (the Normal-Inverse-Gamma posterior of the mean)."""
    lo, hi = float((loc - 60 * scale).min()), float((loc + 60 * scale).max())
    return _first_slot(lambda x, i: stats.t.pdf(x, df[i], loc[i], scale[i]),
                       lambda x, j: stats.t.cdf(x, df[j], loc[j], scale[j]), len(df), lo, hi)
