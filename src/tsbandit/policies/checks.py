"""Input validation every reward model shares: hyper-parameter checks, and the bounds and
checks of rewards and contexts (:class:`InputChecks`, a base of
:class:`~.base.RewardModel`). Errors are the tree's (:mod:`tsbandit.errors`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigurationError, InvalidContextError, InvalidRewardError

__all__ = [
    "BETA_SHAPE_MIN",
    "MAX_ABS_CONTEXT",
    "MAX_ABS_REWARD",
    "MAX_FEATURES",
    "PRIOR_MAX",
    "PRIOR_MIN",
    "SHAPE_MIN",
    "VARIANCE_MAX",
    "VARIANCE_MIN",
    "InputChecks",
    "check_in_range",
    "check_n_features",
    "check_positive",
    "check_unit_interval",
]

_F64 = np.dtype(np.float64)

# ----- bounds that keep every statistic and posterior summary finite ------------------------
# Statistics are float64 sums of r, r^2, r x, x x^T over observations. With |r|, |x_i| <= 1e12 one
# observation adds at most 1e24 to any total, so ~1e284 observations would be needed to overflow
# (the stores still refuse a sum that would, see tsbandit.stores.base.finite_sums). Pseudo-counts
# and prior precisions in [1e-6, 1e6] keep posterior precisions >= 1e-6 (variances <= 1e6) and
# prior shares like kappa0 * mu0^2 <= 1e30; variance-like priors in [1e-12, 1e12] do the same for
# noise scales. An inverse-gamma shape >= 0.5 gives Student-t marginals with >= 1 degree of
# freedom, whose quantiles stay finite at every level < 1 (and whose prior draws do not
# overflow); smaller shapes overflow both.
#: largest accepted magnitude of a reward
MAX_ABS_REWARD = 1e12
#: largest accepted magnitude of a context entry
MAX_ABS_CONTEXT = 1e12
#: range of pseudo-counts and prior precisions (alpha0, beta0, kappa0, prior_precision)
PRIOR_MIN, PRIOR_MAX = 1e-6, 1e6
#: range of variance-like priors (Normal beta0, noise_variance, noise_b0)
VARIANCE_MIN, VARIANCE_MAX = 1e-12, 1e12
#: smallest inverse-gamma shape (Normal alpha0, noise_a0): one degree of freedom
SHAPE_MIN = 0.5
#: smallest Beta prior pseudo-count (alpha0, beta0). A Beta draw is G_a / (G_a + G_b) with
#: gamma draws; P(G_c < 5e-324, the smallest float) is about exp(-744.4 c), so at c = 1e-3 a draw
#: underflows to 0 half the time and both do (0/0: NaN) a quarter of the time. At 0.05 one does
#: with probability 7e-17, both 5e-33: never. (Beta(0.5, 0.5), Jeffreys, is well inside.)
BETA_SHAPE_MIN = 0.05
#: largest context dimension of a model: checked before anything is allocated (statistics hold
#: a (d, d) matrix per arm; 1024 is 8 MiB per arm)
MAX_FEATURES = 1024
_MAX_CONTEXT_SQ = MAX_ABS_CONTEXT * MAX_ABS_CONTEXT


def _as_float(name: str, value: Any) -> float:
    """``float(value)``, or a :class:`ConfigurationError` naming the parameter."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} == {value!r}, must be a number") from None


def check_in_range(name: str, value: Any, low: float, high: float) -> float:
    """Validate a scalar hyper-parameter within ``[low, high]``; the message names it.

    >>> check_in_range("alpha0", 2, 1e-6, 1e6)
    2.0
    """
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(f"{name} == {value!r}, must be a number")
    v = _as_float(name, value)
    if not low <= v <= high:  # NaN fails too
        raise ConfigurationError(
            f"{name} == {value!r}, must be finite and between {low:g} and {high:g}"
        )
    return v


def check_n_features(value: Any) -> int:
    """A context dimension: an integer in ``[1, MAX_FEATURES]`` (checked before allocating)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigurationError(f"n_features == {value!r}, must be an integer >= 1")
    if value > MAX_FEATURES:
        raise ConfigurationError(f"n_features == {value!r}, must be <= {MAX_FEATURES}")
    return int(value)


def _refuse_bad_context(x: np.ndarray) -> None:
    """Raise for non-finite or too large entries (the slow path behind the screens below)."""
    if not np.isfinite(x).all():
        raise InvalidContextError("context contains NaN or infinite values")
    big = np.abs(x) > MAX_ABS_CONTEXT
    if big.any():
        raise InvalidContextError(
            f"context entry {float(x[big].ravel()[0])!r} is too large: every |x_i| must be <= "
            f"{MAX_ABS_CONTEXT:g}"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a scalar hyper-parameter; the message names the parameter.

    >>> check_positive("alpha0", 1.0)
    1.0
    """
    v = _as_float(name, value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} == {value!r}, must be finite and {bound}")
    return v


def check_unit_interval(name: str, value: float, *, open_low: bool = False) -> float:
    """Validate a probability-like scalar in [0, 1] (or (0, 1] with ``open_low``)."""
    v = _as_float(name, value)
    if not (0.0 <= v <= 1.0) or (open_low and v == 0.0):
        low = "> 0" if open_low else ">= 0"
        raise ConfigurationError(f"{name} == {value!r}, must be {low} and <= 1")
    return v


class InputChecks:
    """Validation of one model's inputs: rewards (finite, within :data:`MAX_ABS_REWARD`) and
    contexts (``(d,)`` or ``(n, d)``, finite, within :data:`MAX_ABS_CONTEXT`; none for a
    context-free model). Models narrow the reward domain (0/1 for Beta and logistic)."""

    @property
    def n_features(self) -> int | None:
        """Context dimension ``d`` (``None`` for context-free models)."""
        return None

    def check_reward(self, reward: Any) -> float:
        """One reward as a float, or :class:`InvalidRewardError` (the scalar fast path)."""
        if isinstance(reward, (str, bytes)):
            raise InvalidRewardError(f"reward {reward!r} is not a number")
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise InvalidRewardError(f"reward {reward!r} is not a number") from None
        if not -MAX_ABS_REWARD <= r <= MAX_ABS_REWARD:
            if not math.isfinite(r):
                raise InvalidRewardError(
                    f"reward {r!r} is not finite; rewards must be finite numbers")
            raise InvalidRewardError(
                f"reward {r!r} is too large: |reward| must be <= {MAX_ABS_REWARD:g}")
        return r

    def check_rewards(self, rewards: Any) -> np.ndarray:
        """Rewards as float64, or :class:`InvalidRewardError` naming the bad value."""
        r: np.ndarray | None = None
        if not isinstance(rewards, (str, bytes)):
            try:
                r = np.asarray(rewards, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        if r is None:
            raise InvalidRewardError(f"reward {rewards!r} is not a number")
        bad = ~(np.abs(r) <= MAX_ABS_REWARD)
        if bad.any():
            for v in r[bad].ravel()[:1].tolist():
                InputChecks.check_reward(self, v)  # raises, with the scalar check's message
        return r

    def check_contexts(self, contexts: Any, n: int | None = None) -> np.ndarray | None:
        """Contexts as float64 ``(n, d)`` (a single ``(d,)`` is promoted), or an error.

        Context-free models accept ``None`` only.
        """
        d = self.n_features
        if d is None:
            if contexts is not None:
                raise InvalidContextError(
                    f"{type(self).__name__} takes no context, got one of shape "
                    f"{np.shape(contexts)}"
                )
            return None
        if contexts is None:
            raise InvalidContextError(
                f"{type(self).__name__} needs a context vector of length {d}, got none"
            )
        if (type(contexts) is np.ndarray and contexts.dtype == np.float64
                and contexts.shape == (d,) and n in (None, 1)):
            # one float64 context (the online decision path): a single screen (|x|^2 within
            # the bound implies every entry is; NaN or inf fail the comparison)
            if not float(contexts @ contexts) <= _MAX_CONTEXT_SQ:
                _refuse_bad_context(contexts)
            return contexts[None, :]
        try:
            x = np.asarray(contexts, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidContextError("context must be a sequence of numbers") from None
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != d:
            raise InvalidContextError(
                f"context has shape {np.shape(contexts)}, expected ({d},) or (n, {d})"
            )
        if n is not None and x.shape[0] != n:
            raise InvalidContextError(f"got {x.shape[0]} contexts for {n} observations")
        # one dot product screens the common case: a sum of squares within the bound implies
        # every entry is (NaN or inf fail the comparison); only a larger sum (or an overflow)
        # pays for the element-wise check
        flat = x.reshape(-1)
        if not float(flat @ flat) <= _MAX_CONTEXT_SQ:
            _refuse_bad_context(x)
        return x

    def check_context(self, context: Any) -> np.ndarray | None:
        """One user's context as float64 ``(d,)`` (``None`` for context-free models), or an
        error: the single-decision form of :meth:`check_contexts` (which it falls back to, so
        it accepts and refuses the same inputs; of several contexts it takes the first)."""
        d = self.n_features
        if d is None:
            if context is not None:
                self.check_contexts(context)  # raises, naming the model
            return None
        if type(context) is np.ndarray and context.dtype is _F64 and context.shape == (d,):
            # one dot product screens the common case, as in check_contexts
            if not float(np.dot(context, context)) <= _MAX_CONTEXT_SQ:
                _refuse_bad_context(context)
            return context
        x = self.check_contexts(context)
        assert x is not None
        return x[0]
