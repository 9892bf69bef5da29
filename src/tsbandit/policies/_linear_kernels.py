"""Compiled kernels of the linear model's one-decision path (numba; loaded by :mod:`._jit`).

Plain Python over arrays until :func:`._jit.kernels` compiles them in place; each reproduces the
NumPy operations of the method it serves bit for bit (the same draws from the caller's bit
generator, the same BLAS calls through ``np.dot``, NumPy's pairwise summation), which
:func:`check_linear` verifies at load:

* ``_linear_argmax``: :meth:`.LinearGaussian.sample_argmax_one` (through :func:`argmax_one`);
* ``_linear_observe``: :meth:`.LinearGaussian.observe_one` (statistics + Potter update, through
  :func:`observe_one`).

:func:`argmax_one` and :func:`observe_one` are the glue those methods call: they check that the
arrays are in the layout the kernels take and return ``None`` (the NumPy path) when not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._jit import JitKernels, same

__all__ = ["KERNELS", "argmax_one", "check_linear", "observe_one"]

_F64 = np.dtype(np.float64)

# names the kernels call; bound to numba objects by ``_jit._load`` (placeholders until then)
_bitgen: Any = None
_gamma: Any = None
_normal: Any = None
_argmax_unique: Any = None
_pairwise_sum: Any = None

def _linear_argmax(mean: np.ndarray, sqrt_cov_t: np.ndarray, x: np.ndarray,
                   noise_a: np.ndarray, noise_b: np.ndarray, unknown: bool, phi: np.ndarray,
                   out: np.ndarray, addr: np.ndarray) -> int:  # pragma: no cover - compiled
    """``LinearGaussian.sample`` of one context + the argmax.

    ``mean`` ``(K, d)``; ``sqrt_cov_t`` ``(K, d, d)`` C-contiguous with ``sqrt_cov_t[a]`` the
    transpose of arm ``a``'s square-root covariance ``S_a`` (the layout ``sqrt_covariance``
    returns, seen transposed); ``S_a^T x`` of every arm goes to ``phi`` ``(K, d)``, the draws to
    ``out`` ``(K,)``. Draw order as NumPy's: ``K`` normals, then (unknown noise) ``K`` gammas.
    """
    bitgen = _bitgen(addr[0], addr[1], addr[2], addr[3])
    k_arms, d = mean.shape
    sq = np.empty(d)
    var = np.empty(k_arms)
    for a in range(k_arms):
        row = phi[a]
        np.dot(sqrt_cov_t[a], x, row)  # == x @ S_a, into phi
        for i in range(d):
            sq[i] = row[i] * row[i]
        var[a] = _pairwise_sum(sq)  # == (phi * phi).sum(axis=-1)
    mu = np.dot(mean, x)
    for a in range(k_arms):
        out[a] = _normal(bitgen)
    if unknown:
        for a in range(k_arms):
            var[a] = var[a] * (noise_b[a] / _gamma(bitgen, noise_a[a]))
    for a in range(k_arms):
        out[a] = mu[a] + math.sqrt(var[a]) * out[a]
    return _argmax_unique(out)


def _linear_observe(n: np.ndarray, sum_r: np.ndarray, sum_r2: np.ndarray, b: np.ndarray,
                    A: np.ndarray, arm: int, r: float, x: np.ndarray, potter: bool,
                    sqrt_cov_t: np.ndarray, mean: np.ndarray, noise: float, phi: np.ndarray,
                    have_phi: bool, unknown: bool, noise_a: np.ndarray, noise_b: np.ndarray,
                    a0: float, b0: float) -> None:  # pragma: no cover - compiled
    """``LinearGaussian.observe_one``: the statistics of one observation, then (``potter``) the
    O(d^2) Potter update of arm ``arm`` (``potter_update``) and its noise posterior."""
    d = x.shape[0]
    n[arm] += 1.0
    sum_r[arm] += r
    sum_r2[arm] += r * r
    for i in range(d):
        b[arm, i] += r * x[i]
    for i in range(d):
        xi = x[i]
        for j in range(d):
            A[arm, i, j] += xi * x[j]
    if not potter:
        return
    st = sqrt_cov_t[arm]            # S^T, C-contiguous
    m = mean[arm]
    if not have_phi:
        phi = np.dot(st, x)         # S^T x
    s_phi = np.dot(phi, st)         # S phi = Sigma x
    c = np.dot(phi, phi) + noise
    gain = (r - np.dot(x, m)) / c
    for i in range(d):
        m[i] += gain * s_phi[i]
    f = 1.0 / (c * (1.0 + math.sqrt(noise / c)))
    for i in range(d):
        s_phi[i] *= f
    for j in range(d):  # S -= (beta S phi) phi^T, on the transpose, row by row (contiguous)
        pj = phi[j]
        for i in range(d):
            st[j, i] -= s_phi[i] * pj
    if unknown:
        noise_a[arm] = a0 + 0.5 * n[arm]
        fit = np.dot(b[arm], m)
        noise_b[arm] = b0 + 0.5 * max(sum_r2[arm] - fit, 0.0)


#: the kernels of this module, compiled in place by ``_jit._load``
KERNELS = ("_linear_argmax", "_linear_observe")


# ----- the glue the model's methods call ------------------------------------------------------
def layout(posterior: Any) -> tuple[np.ndarray, ...] | None:
    """The compiled path's arrays ``(mean, sqrt_cov, S^T view, phi buffer, draw buffer)``, kept
    on the posterior, or ``None`` when it is not in the layout the kernels take (no batch
    axis, C-contiguous ``mean``, ``sqrt_cov`` a transposed C-contiguous stack as
    :func:`~._factor.sqrt_covariance` makes it)."""
    mean, sqrt_cov = posterior.mean, posterior.sqrt_cov
    scratch = posterior.scratch
    if scratch is not None and scratch[0] is mean and scratch[1] is sqrt_cov:
        return scratch
    if mean.ndim != 2 or mean.dtype != np.float64 or not mean.flags.c_contiguous:
        return None
    st = sqrt_cov.transpose(0, 2, 1)  # each arm's S^T
    if st.dtype != np.float64 or not st.flags.c_contiguous:
        return None
    scratch = (mean, sqrt_cov, st, np.empty(mean.shape), np.empty(mean.shape[0]))
    posterior.scratch = scratch
    return scratch


def argmax_one(jit: JitKernels, model: Any, posterior: Any, rng: np.random.Generator,
               context: np.ndarray) -> int | list[float] | None:
    """:meth:`.LinearGaussian.sample_argmax_one` in one compiled call: ``sample_one``'s products
    (the same BLAS calls) and the same draws; ``None`` when the arrays do not fit."""
    scratch = layout(posterior)
    if (scratch is None or context.ndim != 1 or context.dtype is not _F64
            or not context.flags.c_contiguous):
        return None
    mean, _, st, phi, out = scratch
    if posterior.projection is not None and posterior.projection[1] is phi:
        phi = np.empty_like(phi)  # the buffer is still the cached projection: keep it
    unknown = bool(model.unknown_noise)
    na, nb = posterior.noise() if unknown else (out, out)
    bg, addr = jit.addresses(rng)
    with bg.lock:  # as NumPy's own samplers hold it
        i: int = jit.linear_argmax(mean, st, context, na, nb, unknown, phi, out, addr)
    posterior.projection = (context.tobytes(), phi)
    return i if i >= 0 else out.tolist()


def observe_one(jit: JitKernels, model: Any, stats: Any, posterior: Any, arm: int,
                reward: float, context: np.ndarray) -> Any:
    """:meth:`.LinearGaussian.observe_one` in one compiled call (the same arithmetic, the same
    BLAS calls); ``None`` when the arrays are not in the layout the kernel takes."""
    arrays = stats._arrays  # the statistics' dict itself (Stats.__getitem__ costs a call)
    n, b = arrays["n"], arrays["b"]
    x = context
    if (n.ndim != 1 or x.ndim != 1 or x.dtype is not _F64 or not x.flags.c_contiguous
            or not b.flags.c_contiguous):
        return None
    scratch = layout(posterior)
    if scratch is None:
        return None
    potter = posterior.online_updates + 1 < model.refresh_every
    memo, posterior.projection = posterior.projection, None
    have_phi = memo is not None and memo[0] == x.tobytes()
    phi = memo[1][arm] if have_phi else x
    unknown = bool(model.unknown_noise)
    if unknown:
        na, nb = posterior.noise_a, posterior.noise_b
        noise, a0, b0 = 1.0, model.noise_a0, model.effective_noise_b0
    else:  # placeholders of the right types (the kernel does not touch them)
        na, nb, noise, a0, b0 = n, n, model.noise_variance, 0.0, 0.0
    jit.linear_observe(n, arrays["sum_r"], arrays["sum_r2"], b, arrays["A"], arm, reward, x,
                       potter, scratch[2], scratch[0], noise, phi, have_phi, unknown,
                       na, nb, a0, b0)
    if not potter:
        return model.posterior(stats)
    posterior.online_updates += 1
    return posterior


def check_linear(argmax: Any, observe: Any) -> bool:
    """The draw and the Potter update equal NumPy's for several ``d`` (BLAS included)."""
    from ._factor import potter_update, sqrt_covariance

    rng = np.random.default_rng(7)
    k = JitKernels(linear_argmax=argmax, linear_observe=observe)
    for d in (1, 2, 3, 5, 8, 11, 16, 33, 50, 129):
        n_arms = 3
        X = rng.normal(size=(4 * d, d))
        P = np.eye(d) + np.einsum("ni,nj->ij", X, X)[None] * rng.uniform(0.5, 2.0, (n_arms, 1, 1))
        S = sqrt_covariance(P)
        if not np.swapaxes(S, -1, -2).flags.c_contiguous:  # pragma: no cover
            return False
        m = rng.normal(size=(n_arms, d))
        x = rng.normal(size=d)
        na, nb = rng.uniform(2.0, 5.0, n_arms), rng.uniform(0.5, 2.0, n_arms)
        for unknown in (False, True):
            r1, r2 = np.random.default_rng(d), np.random.default_rng(d)
            phi = np.empty((n_arms, d))
            out = np.empty(n_arms)
            argmax(m, np.swapaxes(S, -1, -2), x, na, nb, unknown, phi, out, k.addresses(r1)[1])
            ref_phi = x @ S
            mu = np.dot(m, x).tolist()
            var = np.add.reduce(ref_phi * ref_phi, axis=-1)
            z = r2.standard_normal(n_arms).tolist()
            if unknown:
                var = var * (nb / r2.standard_gamma(na))
            ref = [u + math.sqrt(v) * w for u, v, w in zip(mu, var.tolist(), z, strict=True)]
            if not (same(phi, ref_phi) and out.tolist() == ref
                    and r1.bit_generator.state == r2.bit_generator.state):
                return False
        # the update, with and without the projection at hand
        for have_phi in (False, True):
            # copies in the layout sqrt_covariance returns (a transposed C-contiguous stack)
            S1, S2 = (np.swapaxes(np.swapaxes(S, -1, -2).copy(), -1, -2) for _ in range(2))
            m1, m2 = m.copy(), m.copy()
            stats = [np.zeros(n_arms), np.zeros(n_arms), np.zeros(n_arms),
                     np.zeros((n_arms, d)), np.zeros((n_arms, d, d))]
            phi_row = x @ S1[1]
            observe(*stats, 1, 0.7, x, True, np.swapaxes(S1, -1, -2), m1, 0.25, phi_row,
                    have_phi, True, na.copy(), nb.copy(), 2.0, 0.5)
            potter_update(S2[1], m2[1], x, 0.7, 0.25, phi_row.copy() if have_phi else None)
            if not (same(S1, S2) and same(m1, m2)
                    and same(stats[4][1], x[:, None] * x) and same(stats[3][1], 0.7 * x)):
                return False
    return True
