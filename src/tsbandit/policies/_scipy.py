"""SciPy's special functions and LAPACK's ``dtrtri``, imported on first use.

``import tsbandit`` must stay fast (the command line, a service's start-up, a notebook): SciPy's
``special`` and ``linalg`` cost ~0.3 s to import and are needed only once a posterior is
summarized (intervals), a logistic model is refit or a square-root factor is formed. Each name
here resolves the SciPy function on its first call and calls it directly afterwards.
"""

from __future__ import annotations

from typing import Any

__all__ = ["betaincinv", "expit", "ndtri", "stdtrit", "trtri"]

_resolved: dict[str, Any] = {}


def _special(name: str) -> Any:
    fn = _resolved.get(name)
    if fn is None:
        import scipy.special

        fn = _resolved[name] = getattr(scipy.special, name)
    return fn


def betaincinv(a: Any, b: Any, q: Any) -> Any:
    """:func:`scipy.special.betaincinv`."""
    return _special("betaincinv")(a, b, q)


def stdtrit(df: Any, q: Any) -> Any:
    """:func:`scipy.special.stdtrit`."""
    return _special("stdtrit")(df, q)


def ndtri(q: Any) -> Any:
    """:func:`scipy.special.ndtri`."""
    return _special("ndtri")(q)


def expit(x: Any) -> Any:
    """:func:`scipy.special.expit`."""
    return _special("expit")(x)


def trtri(c: Any, lower: int = 0) -> Any:
    """LAPACK's ``dtrtri`` (:func:`scipy.linalg.lapack.dtrtri`): ``(inverse, info)``."""
    fn = _resolved.get("trtri")
    if fn is None:
        from scipy.linalg.lapack import dtrtri

        fn = _resolved["trtri"] = dtrtri
    return fn(c, lower=lower)
