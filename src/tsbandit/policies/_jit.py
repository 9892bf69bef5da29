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

The model kernels live beside the math they serve -- :mod:`._beta_kernels` (Beta draws, one user's
and a batch of lanes'), :mod:`._linear_kernels` (the linear model's one-decision draw and
update) and :mod:`._metrics_kernels` (one constrained decision over several metrics) -- and
are reached only through the models' (and that rule's) methods. This module holds the shared
numeric helpers (NumPy's pairwise summation, a tie-aware arg-max) and the loading: it compiles
the helpers and every kernel module's ``KERNELS`` in place, binds the samplers they call, and runs
each module's checks.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["JitKernels", "disabled_by_env", "kernels", "reset", "same", "use"]

_ENV = "TSBANDIT_JIT"

#: tie or NaN among the draws: the caller breaks it from the values written to ``out``
TIE = -1

# ----- shared helper kernels (compiled by _load before the model kernels) -------------------
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



#: the shared helpers above, compiled first (the model kernels call them)
_HELPERS = ("_pairwise_block", "_pairwise_sum", "_argmax_unique")


# ----- loading ------------------------------------------------------------------------------
class JitKernels:
    """The compiled kernels (``None`` for one that failed its check against NumPy)."""

    def __init__(self, beta_argmax: Any = None, linear_argmax: Any = None,
                 linear_observe: Any = None, beta_lanes_draw: Any = None,
                 beta_lanes_book: Any = None, metrics_draw: Any = None,
                 metrics_pool: Any = None, metrics_zones: Any = None) -> None:
        self.beta_argmax = beta_argmax
        self.linear_argmax = linear_argmax
        self.linear_observe = linear_observe
        #: a batch of Beta lanes (:class:`~tsbandit.policies.beta_lanes.BetaLanes`)
        self.beta_lanes_draw = beta_lanes_draw
        self.beta_lanes_book = beta_lanes_book
        #: one constrained decision over several metrics (:mod:`._metrics_kernels`)
        self.metrics_draw = metrics_draw
        self.metrics_pool = metrics_pool
        self.metrics_zones = metrics_zones
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
    global _loaded, _kernels, status
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
            from numba.np.random.generator_core import next_double
        except ImportError as exc:
            status = f"numba not available ({exc})"
            return
        from . import _beta_kernels as kb
        from . import _linear_kernels as kl
        from . import _metrics_kernels as km

        g = globals()
        try:
            for name in _HELPERS:
                if not hasattr(g[name], "py_func"):
                    g[name] = _cached_njit(numba, g[name])
            bound = {"_bitgen": _make_bitgen_intrinsic(), "_gamma": random_standard_gamma,
                     "_normal": random_standard_normal, "_argmax_unique": g["_argmax_unique"],
                     "_pairwise_sum": g["_pairwise_sum"], "_next_double": next_double}
            for mod in (kb, kl, km):
                for name, value in bound.items():
                    if hasattr(mod, name):
                        setattr(mod, name, value)
                for name in mod.KERNELS:
                    fn = getattr(mod, name)
                    if not hasattr(fn, "py_func"):
                        setattr(mod, name, _cached_njit(numba, fn))
            # the checks' first calls compile the kernels (or load them from the disk cache)
            beta = kb._beta_argmax if kb.check_beta(kb._beta_argmax) else None
            lin_ok = kl.check_linear(kl._linear_argmax, kl._linear_observe)
            draw = kb._beta_lanes_draw if kb.check_lanes_draw(kb._beta_lanes_draw) else None
            book = kb._beta_lanes_book if kb.check_lanes_book(kb._beta_lanes_book) else None
            metrics = km._metrics_draw if km.check_metrics(km._metrics_draw) else None
            pool = km._metrics_pool if km.check_pool(km._metrics_pool) else None
            zones = km._metrics_zones if km.check_zones(km._metrics_zones) else None
        except Exception as exc:  # another numba whose internals moved: stay on NumPy
            status = f"numba kernels failed to build ({type(exc).__name__}: {exc})"
            return
        _kernels = JitKernels(beta, kl._linear_argmax if lin_ok else None,
                              kl._linear_observe if lin_ok else None, draw, book, metrics,
                              pool, zones)
        off = [n for n, k in (("beta", beta), ("linear", lin_ok), ("lanes draw", draw),
                              ("lanes book", book), ("metrics", metrics),
                              ("metrics pool", pool), ("metrics zones", zones))
               if k is None or k is False]
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


def same(a: Any, b: Any) -> bool:
    """Equal arrays, NaN equal to NaN (the kernels' load-time checks)."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


