"""Square-root covariance factors shared by the Gaussian-posterior models.

A posterior precision ``P`` is factored once by Cholesky, ``P = L L^T``; its covariance square
root is ``S = L^{-T}`` (upper triangular, found by a triangular solve), so ``S S^T = P^{-1}``.
Sampling is then ``m + S z`` and the predictive variance of ``x^T w`` is ``|S^T x|^2``: no matrix
is ever inverted as such, and the draws do not depend on the BLAS the way ``multivariate_normal``'s
SVD does.

Between refreshes, one observation updates ``S`` in O(d^2) by Potter's square-root measurement
update, which keeps ``S S^T`` symmetric positive definite by construction.
"""

from __future__ import annotations

import math

import numpy as np

from .._scipy import trtri as _trtri

__all__ = ["linear_update_rows", "potter_rows", "potter_update", "potter_update_many", "project",
           "sqrt_covariance"]


def sqrt_covariance(precision: np.ndarray) -> np.ndarray:
    """``S`` with ``S S^T = precision^{-1}`` for a stack ``(..., d, d)`` of SPD matrices.

    ``precision = L L^T`` by Cholesky; ``L^{-1}`` comes from LAPACK's triangular routine
    ``dtrtri`` (the triangular solve ``L X = I``; one call per matrix of the stack), and
    ``S = L^{-T}``. The precision itself is never inverted or solved against.

    ``dtrtri`` rather than ``dtrtrs``: for small ``d`` it stays in level-2 BLAS, which never
    wakes OpenBLAS's thread pool (waking it costs milliseconds on a loaded machine).
    """
    try:
        chol = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        chol = _cholesky_jittered(precision)
    d = precision.shape[-1]
    flat = chol.reshape(-1, d, d)
    linv = np.empty_like(flat)
    for i in range(flat.shape[0]):
        # numpy's Cholesky factor has exact zeros above the diagonal, and dtrtri only writes
        # the lower triangle, so the result is exactly lower triangular
        linv[i], info = _trtri(flat[i], lower=1)
        if info != 0:  # pragma: no cover - impossible after a successful Cholesky
            raise np.linalg.LinAlgError(f"triangular solve failed (info {info})")
    return np.swapaxes(linv.reshape(precision.shape), -1, -2)


def _cholesky_jittered(precision: np.ndarray) -> np.ndarray:
    """Cholesky factors of a stack whose float64 rounding left some matrix not positive
    definite (contexts spanning many orders of magnitude beside a weak prior: the prior's
    diagonal is lost next to entries ~1e16 times larger).

    Each failing matrix gets the smallest diagonal jitter ``delta * I`` (from 1e-15 times its
    largest diagonal entry, times 10 per try) that makes it factor: the precision of exact
    arithmetic is positive definite, so this only restores what rounding took away, and the
    posterior stays finite. Matrices that factor are untouched. Non-finite input still raises.
    """
    d = precision.shape[-1]
    flat = precision.reshape(-1, d, d)
    out = np.empty_like(flat)
    eye = np.eye(d)
    for i in range(flat.shape[0]):
        p = flat[i]
        try:
            out[i] = np.linalg.cholesky(p)
            continue
        except np.linalg.LinAlgError:
            pass
        sym = 0.5 * (p + p.T)
        delta = 1e-15 * max(float(np.max(np.abs(np.diag(sym)))), 1e-300)
        for _ in range(30):
            try:
                out[i] = np.linalg.cholesky(sym + delta * eye)
                break
            except np.linalg.LinAlgError:
                delta *= 10.0
        else:
            raise np.linalg.LinAlgError("precision matrix is not positive definite")
    return out.reshape(precision.shape)


def solve_spd(precision: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``precision^{-1} rhs`` for a stack of SPD matrices by LU (``np.linalg.solve``); a stack
    that rounding made singular is solved through :func:`sqrt_covariance` (``S S^T rhs``), which
    jitters what it must. ``rhs`` is ``(..., d, k)``."""
    try:
        out = np.linalg.solve(precision, rhs)
        if np.isfinite(out).all():
            return out
    except np.linalg.LinAlgError:
        pass
    S = sqrt_covariance(precision)
    return S @ (np.swapaxes(S, -1, -2) @ rhs)


def project(contexts: np.ndarray, mean: np.ndarray, sqrt_cov: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Predictive mean ``x^T m`` and variance ``x^T S S^T x`` per arm.

    ``contexts`` ``(*cb, d)``, ``mean`` ``(*pb, K, d)``, ``sqrt_cov`` ``(*pb, K, d, d)``;
    returns two arrays of shape ``(*broadcast(cb, pb), K)``.
    """
    if contexts.ndim == 1 and mean.ndim == 2:
        # one context, no batch: plain matrix products (the online decision path)
        phi = contexts @ sqrt_cov
        return mean @ contexts, (phi * phi).sum(axis=-1)
    xr = contexts[..., None, None, :]
    mu = (xr @ mean[..., None])[..., 0, 0]
    phi = (xr @ sqrt_cov)[..., 0, :]
    return mu, np.einsum("...i,...i->...", phi, phi)


def potter_update(sqrt_cov: np.ndarray, mean: np.ndarray, x: np.ndarray, y: float,
                  noise: float, phi: np.ndarray | None = None) -> None:
    """In-place posterior update of one Gaussian arm by one linear observation.

    Observation ``y = x^T w + e``, ``e ~ N(0, noise)``. ``sqrt_cov`` ``(d, d)`` and ``mean``
    ``(d,)`` are modified in place; cost O(d^2). ``phi`` is ``S^T x`` when the caller has it
    (``x @ sqrt_cov``, computed here otherwise).
    """
    # np.dot on these 1-d/2-d operands is the same BLAS call as ``@`` (bit for bit) with less
    # dispatch overhead, which dominates at small d
    dot = np.dot
    if phi is None:
        phi = dot(x, sqrt_cov)              # S^T x
    s_phi = dot(sqrt_cov, phi)              # Sigma x
    c = float(dot(phi, phi)) + noise        # predictive variance of y
    gain = (y - float(dot(x, mean))) / c
    mean += gain * s_phi
    s_phi *= 1.0 / (c * (1.0 + math.sqrt(noise / c)))
    sqrt_cov -= s_phi[:, None] * phi        # (beta s_phi) phi^T, the Potter rank-1 step

def potter_rows(blk: np.ndarray, phi: np.ndarray, s_phi: np.ndarray, c: np.ndarray,
                noise: float | np.ndarray, outer: np.ndarray) -> None:
    """Potter's square-root step for a stack of gathered arms, in place (the batched form of
    the factor step of :func:`potter_update`).

    ``blk`` ``(n, d + 1, d)`` holds each arm's ``[S^T; m^T]``; ``phi = S^T x`` and
    ``s_phi = S phi`` ``(n, d)`` (``s_phi`` is overwritten), ``c = |phi|^2 + noise`` ``(n,)``;
    ``outer`` ``(n, d + 1, d)`` is scratch whose last row stays 0, so the mean row is untouched
    and one contiguous subtraction updates every block: ``S <- S - beta (S phi) phi^T``.
    """
    d = phi.shape[1]
    s_phi *= (1.0 / (c * (1.0 + np.sqrt(noise / c))))[:, None]
    np.einsum("ni,nj->nij", phi, s_phi, out=outer[:, :d])
    blk -= outer


def linear_update_rows(blk: np.ndarray, phi: np.ndarray, s_phi: np.ndarray, mu: np.ndarray,
                       y: np.ndarray, noise: float | np.ndarray, outer: np.ndarray) -> None:
    """One linear observation ``y = x^T w + e`` (``e ~ N(0, noise)``) per gathered arm, in
    place on ``blk`` ``(n, d + 1, d)`` = ``[S^T; m^T]``: the mean moves by the Kalman gain,
    the factor by :func:`potter_rows`. ``phi = S^T x`` and ``s_phi = S phi`` ``(n, d)``
    (``s_phi`` is overwritten), ``mu = m . x`` ``(n,)``; ``outer`` as in
    :func:`potter_rows`. O(d^2) per arm.

    >>> import numpy as np
    >>> blk = np.zeros((1, 2, 1)); blk[0, 0, 0] = 1.0           # S = 1, m = 0
    >>> linear_update_rows(blk, np.ones((1, 1)), np.ones((1, 1)), np.zeros(1), np.array([2.0]),
    ...                    1.0, np.zeros((1, 2, 1)))
    >>> float(blk[0, 1, 0]), round(float(blk[0, 0, 0]) ** 2, 12)   # mean 1, variance 1/2
    (1.0, 0.5)
    """
    d = phi.shape[1]
    c = np.einsum("ni,ni->n", phi, phi) + noise
    m = blk[:, d]
    m += s_phi * ((y - mu) / c)[:, None]
    potter_rows(blk, phi, s_phi, c, noise, outer)


def potter_update_many(sqrt_cov: np.ndarray, mean: np.ndarray, x: np.ndarray, y: np.ndarray,
                       noise: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized :func:`potter_update` over a stack: ``sqrt_cov`` ``(n, d, d)``, ``mean``
    ``(n, d)``, ``x`` ``(n, d)``, ``y`` ``(n,)``; returns the updated copies (through
    :func:`linear_update_rows`)."""
    n, d = mean.shape
    blk = np.empty((n, d + 1, d))
    blk[:, :d] = np.swapaxes(sqrt_cov, -1, -2)
    blk[:, d] = mean
    phi = (x[:, None, :] @ sqrt_cov)[:, 0, :]                    # S^T x
    s_phi = (sqrt_cov @ phi[:, :, None])[:, :, 0]                # S phi
    mu = np.einsum("ni,ni->n", x, mean)
    linear_update_rows(blk, phi, s_phi, mu, y, noise, np.zeros((n, d + 1, d)))
    return np.swapaxes(blk[:, :d], -1, -2), blk[:, d]
