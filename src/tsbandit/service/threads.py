"""BLAS threads per service worker.

A decision touches tiny matrices (a linear bandit with ``d = 11`` factors five 11 x 11
precisions). Multi-threaded BLAS only adds synchronisation there, and with several workers its
threads oversubscribe the cores: measured on the 2-core machine, one linear decide+reward pair
took 8.2 ms with OpenBLAS's default 2 threads under load and 0.53 ms with 1. So each worker
limits BLAS to ``Settings.blas_threads`` (default 1) when it starts:

* :func:`blas_env` puts ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
  into the environment (unless already set) before ``serve`` starts worker processes, so their
  BLAS starts with that many threads;
* :func:`limit_blas_threads` applies the limit to an already loaded BLAS through
  ``threadpoolctl`` (when installed), for the worker that imported numpy first. The app's
  lifespan calls it; OpenBLAS takes the limit from the main thread, which is where uvicorn
  runs the lifespan.

>>> limiter = limit_blas_threads(1)
>>> limiter is None or hasattr(limiter, "restore_original_limits")
True
>>> if limiter is not None:
...     limiter.restore_original_limits()
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["BLAS_ENV", "blas_env", "limit_blas_threads"]

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_env(n: int) -> None:
    """Set the BLAS thread variables to ``n`` where the environment does not set them."""
    if n > 0:
        for var in BLAS_ENV:
            os.environ.setdefault(var, str(n))


def limit_blas_threads(n: int) -> Any:
    """Limit loaded BLAS libraries to ``n`` threads; returns the limiter (its
    ``restore_original_limits()`` undoes it), or None when ``n == 0`` or threadpoolctl is
    missing."""
    if n <= 0:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the environment variables still apply
        return None
    return threadpool_limits(limits=n, user_api="blas")
