"""The SciPy functions tsbandit uses, imported on their first call.

``import tsbandit`` must stay fast (the command line, a service's start-up, a notebook):
``scipy.special``, ``scipy.linalg``, ``scipy.integrate`` and ``scipy.optimize`` cost 0.3-0.6 s to
import, and are needed only once a posterior is summarized (intervals), a logistic model is
refit, a square-root factor is formed or an A/B report is computed. Each function here
resolves its SciPy counterpart on the first call and calls it directly afterwards (one extra
Python call, ~0.1 us).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["betainc", "betaincinv", "betaln", "brentq", "chdtrc", "expit", "ndtr", "ndtri",
           "stdtr", "stdtrit", "trtri"]

_resolved: dict[str, Any] = {}


def _get(module: str, name: str) -> Any:
    key = f"{module}.{name}"
    fn = _resolved.get(key)
    if fn is None:
        fn = _resolved[key] = getattr(importlib.import_module(module), name)
    return fn


def betainc(a: Any, b: Any, x: Any) -> Any:
    """:func:`scipy.special.betainc`."""
    return _get("scipy.special", "betainc")(a, b, x)


def betaincinv(a: Any, b: Any, q: Any) -> Any:
    """:func:`scipy.special.betaincinv`."""
    return _get("scipy.special", "betaincinv")(a, b, q)


def betaln(a: Any, b: Any) -> Any:
    """:func:`scipy.special.betaln`."""
    return _get("scipy.special", "betaln")(a, b)


def chdtrc(v: Any, x: Any) -> Any:
    """:func:`scipy.special.chdtrc`."""
    return _get("scipy.special", "chdtrc")(v, x)


def expit(x: Any) -> Any:
    """:func:`scipy.special.expit`."""
    return _get("scipy.special", "expit")(x)


def ndtr(x: Any) -> Any:
    """:func:`scipy.special.ndtr`."""
    return _get("scipy.special", "ndtr")(x)


def ndtri(q: Any) -> Any:
    """:func:`scipy.special.ndtri`."""
    return _get("scipy.special", "ndtri")(q)


def stdtr(df: Any, t: Any) -> Any:
    """:func:`scipy.special.stdtr`."""
    return _get("scipy.special", "stdtr")(df, t)


def stdtrit(df: Any, q: Any) -> Any:
    """:func:`scipy.special.stdtrit`."""
    return _get("scipy.special", "stdtrit")(df, q)


def brentq(f: Any, a: float, b: float, **kwargs: Any) -> Any:
    """:func:`scipy.optimize.brentq`."""
    return _get("scipy.optimize", "brentq")(f, a, b, **kwargs)


def trtri(c: Any, lower: int = 0) -> Any:
    """LAPACK's ``dtrtri`` (:func:`scipy.linalg.lapack.dtrtri`): ``(inverse, info)``."""
    return _get("scipy.linalg.lapack", "dtrtri")(c, lower=lower)
