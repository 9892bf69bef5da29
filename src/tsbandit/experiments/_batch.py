"""Vectorized two-arm Beta quantities for simulations (many experiments at once).

``P(X_2 > X_1)`` is ``int f_out(x) F_in(x) dx`` with ``out`` the narrower of the two Betas,
computed with a fixed 32-node Gauss-Legendre rule on ``out``'s ``[1e-10, 1 - 1e-10]`` quantile
window. Against the exact closed form the error is below 1e-9 for ``alpha, beta >= 1`` (checked
in ``tests/experiments/test_batch.py``), far below what any stopping threshold can see, at
about 1/1000 of the cost of adaptive quadrature.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaincinv, betaln

__all__ = ["beta_expected_loss_batch", "beta_prob_greater_batch"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_TAIL = 1e-10


def _var(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a + b
    return a * b / (n * n * (n + 1.0))


def beta_prob_greater_batch(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray,
                            b2: np.ndarray) -> np.ndarray:
    """``P(X_2 > X_1)`` for ``X_k ~ Beta(a_k, b_k)``, elementwise over broadcast shapes."""
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                           for v in (a1, b1, a2, b2)))
    out2 = _var(a2, b2) <= _var(a1, b1)
    ao, bo = np.where(out2, a2, a1), np.where(out2, b2, b1)
    ai, bi = np.where(out2, a1, a2), np.where(out2, b1, b2)
    lo = betaincinv(ao, bo, _TAIL)[..., None]
    hi = betaincinv(ao, bo, 1.0 - _TAIL)[..., None]
    x = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _NODES
    logf = ((ao[..., None] - 1.0) * np.log(x) + (bo[..., None] - 1.0) * np.log1p(-x)
            - betaln(ao, bo)[..., None])
    inner = betainc(ai[..., None], bi[..., None], x)
    integral = 0.5 * (hi - lo)[..., 0] * np.sum(_WEIGHTS * np.exp(logf) * inner, axis=-1)
    # integral = P(X_in < X_out): equals P(X2 > X1) when X2 is the outer arm
    return np.clip(np.where(out2, integral, 1.0 - integral), 0.0, 1.0)


def beta_expected_loss_batch(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray,
                             b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected losses ``(E[(X_2 - X_1)^+], E[(X_1 - X_2)^+])`` of choosing arm 1, arm 2.

    Uses ``E[X_2 1{X_2 > X_1}] = mean_2 P(Beta(a_2 + 1, b_2) > X_1)`` (Stucchio 2015).
    """
    a1, b1, a2, b2 = (np.asarray(v, dtype=np.float64) for v in (a1, b1, a2, b2))
    m1, m2 = a1 / (a1 + b1), a2 / (a2 + b2)
    loss1 = (m2 * beta_prob_greater_batch(a1, b1, a2 + 1.0, b2)
             - m1 * beta_prob_greater_batch(a1 + 1.0, b1, a2, b2))
    loss1 = np.maximum(loss1, 0.0)
    return loss1, np.maximum(loss1 + m1 - m2, 0.0)
