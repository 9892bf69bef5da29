"""Optional compiled kernels for the one-decision fast paths (numba; the ``fast`` extra).

The single-decision paths of Beta and linear Thompson sampling (``sample_argmax_one`` and
``observe_one``) spend most of their time in NumPy's per-call overhead, not in arithmetic. When
numba is installed these kernels do the same work in one compiled call each. They are
**bit-identical** to the NumPy path, so seeded results never depend on whether numba is there:

* random numbers come from the caller's ``numpy.random.Generator``: its bit generator's state
  pointer and ``next_*`` functions (the ones NumPy's own C distributions call) are handed to
  numba's ports of NumPy's ``random_standard_gamma`` / ``random_standard_normal`` (the same
  algorithms, the same order of draws, so the same values and the same generator state after);
* matrix-vector and dot products call BLAS through ``np.dot`` in the same orientation as the
  NumPy path; the sum of squares is NumPy's pairwise summation, ported; every element-wise step is
  the same IEEE operation (no fast-math, no fused multiply-add);
* the first time they load, the kernels are checked against NumPy on scratch data (draws of every
  gamma branch, products for several ``d``); a kernel that does not reproduce NumPy exactly on
  this machine (another BLAS, another numba) is not used, and that path stays on NumPy.

``TSBANDIT_JIT=0`` (or ``false``/``no``/``off``) disables the kernels; without numba everything
runs on NumPy as before. Nothing is imported or compiled until a fast path first asks
(:func:`kernels`); compiled code is cached on disk, so later processes only load it. The cache
lives in the user's cache directory (``$TSBANDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/tsbandit``,
else ``~/.cache/tsbandit``; numba's own ``NUMBA_CACHE_DIR`` wins when set), never beside the
installed sources: site-packages may be read-only, and files written there outlive an uninstall.

The kernel bodies below are plain Python over arrays; :func:`_load` compiles them in place.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["JitKernels", "disabled_by_env", "kernels", "reset", "use"]

_ENV = "TSBANDIT_JIT"

#: tie or NaN among the draws: the caller breaks it from the values written to ``out``
TIE = -1

# names the kernels call; bound to numba objects by _load (plain placeholders until then)
_bitgen: Any = None
_gamma: Any = None
_normal: Any = None


# ----- kernel bodies (compiled by _load) ------------------------------------------------------
def _pairwise_block(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """NumPy's pairwise summation of ``a[lo:lo + n]`` for ``n <= 128`` (one block)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    m = n - n % 8
    while i < m:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


def _pairwise_sum(a: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.add.reduce`` of a contiguous 1-d array: NumPy's pairwise summation (blocks of at
    most 128 summed 8-way, halves split at a multiple of 8), the same additions in the same
    tree. Iterative (an explicit stack): numba's on-disk cache mishandles recursion."""
    n = a.shape[0]
    if n <= 128:
        return 0.0 + _pairwise_block(a, 0, n)
    t_lo = np.empty(128, dtype=np.int64)
    t_n = np.empty(128, dtype=np.int64)
    t_done = np.empty(128, dtype=np.bool_)
    vals = np.empty(128)
    top, nv = 0, 0
    t_lo[0], t_n[0], t_done[0] = 0, n, False
    top = 1
    while top > 0:
        top -= 1
        lo, m, done = t_lo[top], t_n[top], t_done[top]
        if m <= 128:
            vals[nv] = _pairwise_block(a, lo, m)
            nv += 1
        elif done:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        else:
            m2 = m // 2
            m2 -= m2 % 8
            t_lo[top], t_n[top], t_done[top] = lo, m, True
            t_lo[top + 1], t_n[top + 1], t_done[top + 1] = lo + m2, m - m2, False
            t_lo[top + 2], t_n[top + 2], t_done[top + 2] = lo, m2, False
            top += 3
    return 0.0 + vals[0]


def _argmax_unique(out: np.ndarray) -> int:  # pragma: no cover - compiled
    """Index of the strict maximum of ``out``, or ``TIE`` when it is tied or a value is NaN."""
    best = -math.inf
    ibest = TIE
    unique = True
    for k in range(out.shape[0]):
        v = out[k]
        if v > best:
            best = v
            ibest = k
            unique = True
        elif v == best:
            unique = False
        elif v != v:
            return TIE
    return ibest if unique else TIE


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


def _beta_lanes_draw(ab: np.ndarray, denom: np.ndarray, m: np.ndarray, want_m: bool,
                     scale: float, out: np.ndarray, addr: np.ndarray
                     ) -> None:  # pragma: no cover - compiled
    """The lab's ``BetaLanes`` Thompson step of one policy over its ``(n, K)`` lanes.

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
    """The lab's ``BetaLanes`` round bookkeeping: ``ch = scores.argmax(axis=1)`` (NumPy's
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


_KERNELS = ("_pairwise_block", "_pairwise_sum", "_argmax_unique", "_beta_argmax", "_linear_argmax",
            "_linear_observe", "_beta_lanes_draw", "_beta_lanes_book")


# ----- loading ------------------------------------------------------------------------------
class JitKernels:
    """The compiled kernels (``None`` for one that failed its check against NumPy)."""

    def __init__(self, beta_argmax: Any, linear_argmax: Any, linear_observe: Any,
                 beta_lanes_draw: Any = None, beta_lanes_book: Any = None) -> None:
        self.beta_argmax = beta_argmax
        self.linear_argmax = linear_argmax
        self.linear_observe = linear_observe
        #: the lab's lock-step Beta lanes (``tsbandit.lab.learners.BetaLanes``)
        self.beta_lanes_draw = beta_lanes_draw
        self.beta_lanes_book = beta_lanes_book
        self._addr: dict[int, tuple[Any, np.ndarray]] = {}

    def addresses(self, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        """``(bit generator, [state, next_uint64, next_uint32, next_double] as uint64)``.

        Found once per bit generator (``ctypes.cast`` is slow) and kept with a reference to it,
        so the addresses stay valid; a few dozen generators at most are remembered.
        """
        bg = rng.bit_generator
        hit = self._addr.get(id(bg))
        if hit is not None and hit[0] is bg:
            return hit
        import ctypes

        c = bg.ctypes
        addr = np.array([c.state.value or 0,
                         ctypes.cast(c.next_uint64, ctypes.c_void_p).value or 0,
                         ctypes.cast(c.next_uint32, ctypes.c_void_p).value or 0,
                         ctypes.cast(c.next_double, ctypes.c_void_p).value or 0],
                        dtype=np.uint64)
        if len(self._addr) >= 64:
            self._addr.pop(next(iter(self._addr)))
        entry = (bg, addr)
        self._addr[id(bg)] = entry
        return entry


_lock = threading.Lock()
_loaded = False
_kernels: JitKernels | None = None
_saved: JitKernels | None = None  # the kernels while use(False) has them switched off
_saved_status = ""
#: why the kernels (or one of them) are not used, for notes and tests
status = "not loaded"
#: the thread of :func:`load_in_background` while it runs
_background: threading.Thread | None = None


def disabled_by_env() -> bool:
    """True when ``TSBANDIT_JIT`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(_ENV, "1").strip().lower() in {"0", "false", "no", "off"}


def kernels() -> JitKernels | None:
    """The compiled kernels, or ``None`` (numba absent, disabled, or not reproducing NumPy).

    The first call imports numba and loads (or compiles) the kernels; later calls are a global
    read. While :func:`load_in_background` is loading them, it returns ``None`` at once (the
    NumPy path, which gives the same results) instead of waiting.
    """
    if _loaded:
        return _kernels
    if _background is not None:
        return None
    with _lock:
        if not _loaded:
            _load()
    return _kernels


def load_in_background(on_ready: Callable[[], None] | None = None) -> threading.Thread | None:
    """Load (or compile) the kernels in a daemon thread; until they are ready every fast path
    runs on NumPy (same draws, same decisions), then switches to them. ``on_ready`` runs in
    that thread once loading is over (whatever :data:`status` says). Returns the thread, or
    ``None`` when the kernels are already loaded or loading. A service calls this at start-up
    so that compiling (~3 s the first time, ~0.2-1 s from the disk cache) is off the path
    that opens its port.
    """
    global _background
    if _loaded or _background is not None:  # (the loading thread holds the lock)
        return None
    with _lock:
        if _loaded or _background is not None:
            return None
        thread = threading.Thread(target=_load_then, args=(on_ready,), daemon=True,
                                  name="tsbandit-jit-load")
        _background = thread
    thread.start()
    return thread


def _load_then(on_ready: Callable[[], None] | None) -> None:
    global _background
    try:
        with _lock:
            if not _loaded:
                _load()
    finally:
        _background = None
    if on_ready is not None:
        on_ready()


def use(on: bool) -> bool:
    """Switch the loaded kernels off (``False``) or back on (``True``) in this process, without
    loading or checking them again (benchmarks compare both paths in one run). Returns whether
    the kernels are now in use: ``use(True)`` cannot turn on kernels that never loaded."""
    global _kernels, _saved, _saved_status, status
    current = kernels()
    with _lock:
        if on:
            if current is None and _saved is not None:
                _kernels, _saved, status = _saved, None, _saved_status
        elif current is not None:
            _saved, _saved_status, _kernels = current, status, None
            status = "switched off by use(False)"
    return _kernels is not None


def reset() -> None:
    """Forget the loaded state so the next :func:`kernels` call decides again (reads
    ``TSBANDIT_JIT`` anew; tests use it to exercise both paths)."""
    global _loaded, _kernels, _saved, status, _background
    with _lock:
        _loaded, _kernels, _saved, status = False, None, None, "not loaded"
        _background = None


def _load() -> None:
    global _loaded, _kernels, status, _bitgen, _gamma, _normal
    try:
        if disabled_by_env():
            status = f"disabled by {_ENV}"
            return
        try:
            import numba
            from numba.np.random.distributions import (
                random_standard_gamma,
                random_standard_normal,
            )
        except ImportError as exc:
            status = f"numba not available ({exc})"
            return
        g = globals()
        try:
            _bitgen = _make_bitgen_intrinsic()
            _gamma, _normal = random_standard_gamma, random_standard_normal
            for name in _KERNELS:
                fn = g[name]
                if not hasattr(fn, "py_func"):
                    g[name] = _cached_njit(numba, fn)
            # the checks' first calls compile the kernels (or load them from the disk cache)
            beta = g["_beta_argmax"] if _check_beta(g["_beta_argmax"]) else None
            lin_ok = _check_linear(g["_linear_argmax"], g["_linear_observe"])
            draw = g["_beta_lanes_draw"] if _check_lanes_draw(g["_beta_lanes_draw"]) else None
            book = g["_beta_lanes_book"] if _check_lanes_book(g["_beta_lanes_book"]) else None
        except Exception as exc:  # another numba whose internals moved: stay on NumPy
            status = f"numba kernels failed to build ({type(exc).__name__}: {exc})"
            return
        _kernels = JitKernels(beta, g["_linear_argmax"] if lin_ok else None,
                              g["_linear_observe"] if lin_ok else None, draw, book)
        off = [n for n, k in (("beta", beta), ("linear", lin_ok), ("lanes draw", draw),
                              ("lanes book", book)) if k is None or k is False]
        status = "on" if not off else f"on, except {off} (does not reproduce NumPy here)"
    finally:
        _loaded = True


def cache_dir() -> str:
    """Where the compiled kernels are cached: ``$TSBANDIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/tsbandit/numba``, else ``~/.cache/tsbandit/numba``."""
    explicit = os.environ.get("TSBANDIT_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tsbandit", "numba")


def _cached_njit(numba: Any, fn: Any) -> Any:
    """``numba.njit`` of ``fn`` with its on-disk cache in :func:`cache_dir` (numba's
    ``NUMBA_CACHE_DIR`` first when set). An unwritable cache directory only means no cache: the
    kernels then compile in every process."""
    disp = numba.njit(error_model="numpy")(fn)
    try:
        from numba.core import caching

        root = cache_dir()

        class _UserCacheLocator(caching.UserWideCacheLocator):
            def __init__(self, py_func: Any, py_file: str) -> None:
                super().__init__(py_func, py_file)
                self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

        class _UserCacheImpl(caching.CompileResultCacheImpl):
            _locator_classes = [caching.UserProvidedCacheLocator, _UserCacheLocator]  # noqa: RUF012

        class _UserCache(caching.FunctionCache):
            _impl_class = _UserCacheImpl

        disp._cache = _UserCache(fn)
    except Exception:  # another numba's internals, or no writable directory: no disk cache
        pass
    return disp


def _make_bitgen_intrinsic() -> Any:
    """A nopython constructor of numba's bit-generator struct from raw addresses.

    numba's own unboxing of a ``Generator`` argument does the same through ``ctypes.cast`` on
    every call (about 7 µs); here the addresses are found once (:meth:`JitKernels.addresses`).
    """
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    bitgen_t = types.NumPyRandomBitGeneratorType("bit_generator")

    @intrinsic
    def make_bitgen(typingctx: Any, state: Any, next_u64: Any, next_u32: Any,
                    next_double: Any) -> Any:
        sig = bitgen_t(types.uint64, types.uint64, types.uint64, types.uint64)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            st = cgutils.create_struct_proxy(bitgen_t)(context, builder)
            st.state_address = args[0]
            st.state = args[0]
            st.fnptr_next_uint64 = args[1]
            st.fnptr_next_uint32 = args[2]
            st.fnptr_next_double = args[3]
            return st._getvalue()

        return sig, codegen

    return make_bitgen


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def _check_beta(fn: Any) -> bool:
    """Draws of every gamma branch (shape < 1, == 1, > 1, tiny) equal NumPy's, state too."""
    params = np.array([[0.3, 1.0, 2.5, 1e-3, 40.0, 700.0], [1.0, 0.7, 3.0, 1e-3, 60.0, 5.0]])
    r1, r2 = np.random.default_rng(12345), np.random.default_rng(12345)
    k = JitKernels(fn, None, None)
    out = np.empty(params.shape[1])
    with np.errstate(invalid="ignore"):
        for _ in range(200):
            fn(params, out, k.addresses(r1)[1])
            g = r2.standard_gamma(params)
            if not _same(out, g[0] / (g[0] + g[1])):
                return False
    return r1.bit_generator.state == r2.bit_generator.state


def _check_linear(argmax: Any, observe: Any) -> bool:
    """The draw and the Potter update equal NumPy's for several ``d`` (BLAS included)."""
    from ._factor import potter_update, sqrt_covariance

    rng = np.random.default_rng(7)
    k = JitKernels(None, argmax, observe)
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
            if not (_same(phi, ref_phi) and out.tolist() == ref
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
            if not (_same(S1, S2) and _same(m1, m2)
                    and _same(stats[4][1], x[:, None] * x) and _same(stats[3][1], 0.7 * x)):
                return False
    return True


def _check_lanes_draw(fn: Any) -> bool:
    """The lab's Beta-lanes Thompson step equals its NumPy ops (every gamma branch, plain and
    tempered, with and without the means), generator state too."""
    rng = np.random.default_rng(99)
    ab = rng.choice([1e-3, 0.3, 1.0, 2.5, 40.0, 700.0], size=(2, 7, 6))
    ab += rng.integers(0, 3, size=ab.shape)
    denom = ab[0] + ab[1]
    k = JitKernels(None, None, None, fn, None)
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
                    if not (_same(out, ref) and _same(m, want)):
                        return False
                if r1.bit_generator.state != r2.bit_generator.state:
                    return False
    return True


def _check_lanes_book(fn: Any) -> bool:
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
        if not (_same(ch1, ch2) and _same(v1, v2) and _same(xf1, xf2)):
            return False
    return True
