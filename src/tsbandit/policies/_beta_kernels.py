"""Compiled kernels of the Beta-Bernoulli draws (numba; loaded by :mod:`._jit`).

Plain Python over arrays until :func:`._jit.kernels` compiles them in place; each reproduces the
NumPy operations of the method it serves bit for bit (the same gamma draws from the caller's bit
generator, in the same order, and the same IEEE operations), which ``check_*`` verify at load:

* ``_beta_argmax``: :meth:`.BetaBernoulli.sample_argmax_one` (one user's draw + its arg-max);
* ``_beta_lanes_draw`` and ``_beta_lanes_book``: :class:`.BetaLanes` (the Thompson step of a
  batch of lanes, and a round's arg-max + scatter-add into the lanes' statistics).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import JitKernels, same

__all__ = ["KERNELS", "check_beta", "check_lanes_book", "check_lanes_draw"]

# names the kernels call; bound to numba objects by ``_jit._load`` (placeholders until then)
_bitgen: Any = None
_gamma: Any = None
_argmax_unique: Any = None

def _beta_argmax(params: np.ndarray, out: np.ndarray, addr: np.ndarray
                 ) -> int:  # pragma: no cover - compiled
    """``BetaBernoulli.sample`` of one user + the argmax: ``params`` ``(2, K)``; the draws
    ``X_k / (X_k + Y_k)`` go to ``out`` ``(K,)`` (all X first, then all Y, as NumPy's one
    ``standard_gamma(params)`` call draws them)."""
    bitgen = _bitgen(addr[0], addr[1], addr[2], addr[3])
    k_arms = params.shape[1]
    for k in range(k_arms):
        out[k] = _gamma(bitgen, params[0, k])
    for k in range(k_arms):
        x = out[k]
        out[k] = x / (x + _gamma(bitgen, params[1, k]))  # 0 / 0 is NaN (error_model numpy)
    return _argmax_unique(out)



def _beta_lanes_draw(ab: np.ndarray, denom: np.ndarray, m: np.ndarray, want_m: bool,
                     scale: float, out: np.ndarray, addr: np.ndarray
                     ) -> None:  # pragma: no cover - compiled
    """:meth:`.BetaLanes.thompson`: the Thompson step of one policy over its ``(n, K)`` lanes.

    ``ab`` ``(2, n, K)`` holds ``alpha`` and ``beta``, ``denom`` ``alpha + beta``. When
    ``want_m``: the posterior means ``alpha / denom`` go to ``m``. The gamma draws are those of
    NumPy's one ``standard_gamma(ab)`` call (C order: all of ``ab[0]``, then all of ``ab[1]``).
    ``scale == 1``: ``out = X / Y`` (increasing in the Beta draw ``X / (X + Y)``); otherwise
    ``out = (X / (X + Y) - m) * scale + m`` (tempered; needs ``want_m``).
    """
    bitgen = _bitgen(addr[0], addr[1], addr[2], addr[3])
    a, b = ab[0], ab[1]
    n, k_arms = out.shape
    if want_m:
        for i in range(n):
            for k in range(k_arms):
                m[i, k] = a[i, k] / denom[i, k]
    for i in range(n):
        for k in range(k_arms):
            out[i, k] = _gamma(bitgen, a[i, k])
    if scale == 1.0:
        for i in range(n):
            for k in range(k_arms):
                out[i, k] = out[i, k] / _gamma(bitgen, b[i, k])
    else:
        for i in range(n):
            for k in range(k_arms):
                x = out[i, k]
                draw = x / (x + _gamma(bitgen, b[i, k]))
                out[i, k] = (draw - m[i, k]) * scale + m[i, k]


def _beta_lanes_book(scores: np.ndarray, ch: np.ndarray, off: np.ndarray, row: np.ndarray,
                     xf: np.ndarray, v: np.ndarray) -> None:  # pragma: no cover - compiled
    """:class:`.BetaLanes`' round: ``ch = lanes_argmax(scores)`` (NumPy's
    rule: the first maximum, or the first NaN), then, with ``idx = off + ch`` ``(2, R, L)``,
    ``v = row.take(idx[1], mode="clip")`` and ``xf[idx[0]] += v`` (cells are distinct)."""
    n_lanes, k_arms = scores.shape
    for lane in range(n_lanes):
        best = scores[lane, 0]
        ib = 0
        if best == best:
            for k in range(1, k_arms):
                s = scores[lane, k]
                if not s <= best:
                    best = s
                    ib = k
                    if s != s:
                        break
        ch[lane] = ib
    n_rows = off.shape[1]
    top = row.shape[0] - 1
    for r in range(n_rows):
        for lane in range(n_lanes):
            c = ch[lane]
            ti = off[1, r, lane] + c
            if ti < 0:
                ti = 0
            elif ti > top:
                ti = top
            val = row[ti]
            v[r, lane] = val
            xf[off[0, r, lane] + c] += val


#: the kernels of this module, compiled in place by ``_jit._load``
KERNELS = ("_beta_argmax", "_beta_lanes_draw", "_beta_lanes_book")


def check_beta(fn: Any) -> bool:
    """Draws of every gamma branch (shape < 1, == 1, > 1, tiny) equal NumPy's, state too."""
    params = np.array([[0.3, 1.0, 2.5, 1e-3, 40.0, 700.0], [1.0, 0.7, 3.0, 1e-3, 60.0, 5.0]])
    r1, r2 = np.random.default_rng(12345), np.random.default_rng(12345)
    k = JitKernels(beta_argmax=fn)
    out = np.empty(params.shape[1])
    with np.errstate(invalid="ignore"):
        for _ in range(200):
            fn(params, out, k.addresses(r1)[1])
            g = r2.standard_gamma(params)
            if not same(out, g[0] / (g[0] + g[1])):
                return False
    return r1.bit_generator.state == r2.bit_generator.state



def check_lanes_draw(fn: Any) -> bool:
    """The lab's Beta-lanes Thompson step equals its NumPy ops (every gamma branch, plain and
    tempered, with and without the means), generator state too."""
    rng = np.random.default_rng(99)
    ab = rng.choice([1e-3, 0.3, 1.0, 2.5, 40.0, 700.0], size=(2, 7, 6))
    ab += rng.integers(0, 3, size=ab.shape)
    denom = ab[0] + ab[1]
    k = JitKernels(beta_lanes_draw=fn)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for scale in (1.0, 0.25, 0.5):
            for want_m in ((False, True) if scale == 1.0 else (True,)):
                r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
                for _ in range(20):
                    m, out = np.full(denom.shape, -1.0), np.empty(denom.shape)
                    fn(ab, denom, m, want_m, scale, out, k.addresses(r1)[1])
                    g = r2.standard_gamma(ab)
                    mean = ab[0] / denom
                    if scale == 1.0:
                        ref = g[0] / g[1]
                    else:
                        ref = g[0] / (g[0] + g[1])
                        ref = (ref - mean) * scale + mean
                    want = mean if want_m else np.full(mean.shape, -1.0)
                    if not (same(out, ref) and same(m, want)):
                        return False
                if r1.bit_generator.state != r2.bit_generator.state:
                    return False
    return True


def check_lanes_book(fn: Any) -> bool:
    """The lab's Beta-lanes bookkeeping equals ``argmax`` (ties, NaN, inf) + ``take`` + the
    fancy-index add."""
    rng = np.random.default_rng(3)
    for n_lanes, k_arms, n_rows in ((1, 1, 3), (6, 5, 5), (40, 3, 3), (9, 17, 5)):
        scores = rng.integers(0, 3, size=(n_lanes, k_arms)).astype(np.float64)
        scores[0, -1] = np.nan
        if n_lanes > 2:
            scores[1, 0] = np.nan
            scores[2, :] = np.inf
        row = rng.random(n_lanes * k_arms * 3)
        x_off = np.arange(n_rows)[:, None] * (n_lanes * k_arms) + np.arange(n_lanes) * k_arms
        t_off = np.arange(n_rows)[:, None] % 3 * (n_lanes * k_arms) + np.arange(n_lanes) * k_arms
        off = np.stack([x_off, t_off]).astype(np.intp)
        xf1 = rng.random(n_rows * n_lanes * k_arms)
        xf2 = xf1.copy()
        ch1 = np.empty(n_lanes, dtype=np.int64)
        v1 = np.empty((n_rows, n_lanes))
        fn(scores, ch1, off, row, xf1, v1)
        ch2 = scores.argmax(axis=1)
        idx = off + ch2
        v2 = row.take(idx[1], mode="clip")
        xf2[idx[0]] += v2
        if not (same(ch1, ch2) and same(v1, v2) and same(xf1, xf2)):
            return False
    return True
