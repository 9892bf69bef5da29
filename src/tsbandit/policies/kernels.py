"""The optional compiled kernels (the ``fast`` extra), seen from outside ``policies``.

The kernels themselves are private (``_jit`` loads them, each model's ``_*_kernels`` module
holds its own) and stay behind the models' methods; this module is the public door for what a
caller may ask of them: what they are doing, and to load them ahead of the first decision.

>>> from tsbandit.policies import kernels
>>> isinstance(kernels.status(), str)
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import _jit

__all__ = ["load_in_background", "status", "use"]


def status() -> str:
    """What the kernels are doing: ``"on"``, ``"not loaded"``, ``"off (TSBANDIT_JIT=0)"``,
    ``"numba not available (...)"``..."""
    return str(_jit.status)


def load_in_background(on_ready: Callable[[], None] | None = None) -> threading.Thread | None:
    """Load (or compile, once) the kernels in a background thread; decisions take the NumPy
    path (the same draws and choices) until they are ready. ``on_ready`` runs in that thread
    once loading is over. Returns the thread, or None when there is nothing to load."""
    return _jit.load_in_background(on_ready=on_ready)


def use(on: bool) -> bool:
    """Switch loaded kernels off (``False``) or back on (``True``) in this process, without
    loading them again (benchmarks compare both paths in one run); returns whether they are
    in use."""
    return _jit.use(on)
