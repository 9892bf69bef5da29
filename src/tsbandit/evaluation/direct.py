"""Model-based estimators: the direct method (DM) and the doubly robust family (DR, SNDR,
Switch-DR).

With a fitted reward model ``q(x, a)`` (:class:`~.reward_model.RidgeRewardModel` by default, or
any scikit-learn estimator through :class:`~.sklearn_model.SklearnRewardModel`), importance
weights ``w_i = pi_e(a_i | x_i) / p_i`` and ``q_pi(i) = sum_a pi_e(a | x_i) q(x_i, a)``:

- DM ``= mean_i q_pi(i)`` — low variance, biased when ``q`` is wrong. With the ridge model its
  normal interval includes the model's estimation error (influence function), and its bootstrap
  refits the model on every resample (cheap: the statistics of a resample are one matrix product).
  With a scikit-learn model ``q`` is cross-fitted and the interval uses DR's per-round terms
  (the influence function of a nonparametric model: the spread of ``q_pi`` alone would ignore
  the model's estimation error and be far too narrow).
- DR ``= mean_i [q_pi(i) + w_i (r_i - q(x_i, a_i))]`` — unbiased when the propensities are
  right, whatever ``q`` is; ``q`` only reduces the variance. ``q`` is cross-fitted (round ``i``
  predicted by a model that did not see it), so the per-round terms are nearly independent and
  the plain interval of their mean is valid.
- SNDR ``= mean_i q_pi(i) + sum_i w_i (r_i - q(x_i, a_i)) / sum_i w_i`` — DR with the
  correction self-normalized as in SNIPS (the Open Bandit Pipeline's
  ``SelfNormalizedDoublyRobust``): consistent, O(1/n) biased, steadier under large weights.
- Switch-DR ``= mean_i [q_pi(i) + 1{w_i <= tau} w_i (r_i - q(x_i, a_i))]`` (Wang, Agarwal &
  Dudik, 2017; the Pipeline's ``SwitchDoublyRobust`` with ``lambda_ = tau``): rounds whose
  weight exceeds ``tau`` fall back on the model. ``tau = inf`` is DR exactly; ``tau = 0`` is DM
  with the same (cross-fitted) ``q`` exactly; in between it is biased by the corrections it
  drops, which is the variance it saves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .base import Estimator, Terms, check_clip
from .data import LoggedData
from .intervals import effective_sample_size
from .ipw import importance_weights
from .reward_model import RidgeRewardModel
from .sklearn_model import as_reward_model

__all__ = ["DM", "DR", "SNDR", "SwitchDR"]


def _check_folds(n_folds: Any) -> int:
    if isinstance(n_folds, bool) or int(n_folds) < 1:
        raise ConfigurationError(f"n_folds == {n_folds!r}, must be >= 1")
    return int(n_folds)


class DM(Estimator):
    """Direct method: the target's expected reward under a fitted reward model.

    Parameters
    ----------
    model
        The reward model (default: :class:`RidgeRewardModel()`, one pseudo-round of shrinkage),
        a :class:`SklearnRewardModel`, or any unfitted estimator with ``fit`` and ``predict``
        (or ``predict_proba``).
    n_folds
        Cross-fitting folds of a scikit-learn model (the ridge DM is fitted on the whole log,
        its interval accounting for that).
    """

    name = "dm"

    def __init__(self, model: Any = None, n_folds: int = 5) -> None:
        self.model = as_reward_model(model)
        self.n_folds = _check_folds(n_folds)

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        if not isinstance(self.model, RidgeRewardModel):
            q = self.model.cross_fit_predict(data, self.n_folds)
            v = (pi_rows * q).sum(axis=1)
            value = float(v.mean())
            influence, resample = _nonparametric_terms(data, pi_rows, q, value)
            return Terms(value, influence, resample, float(data.n_rounds),
                         n_events=int(np.count_nonzero(data.rewards)))
        value, influence = self.model.dm_influence(data, pi_rows)
        return Terms(value, influence, _refit_resample(self.model, data, pi_rows),
                     float(data.n_rounds), n_events=int(np.count_nonzero(data.rewards)))


def _nonparametric_terms(data: LoggedData, pi_rows: np.ndarray, q: np.ndarray, value: float
                         ) -> tuple[np.ndarray, Any]:
    """Influence terms and a bootstrap for an estimate resting on a scikit-learn ``q``.

    The model's estimation error cannot be linearized for an arbitrary estimator, so the
    interval uses the influence function of a nonparametric regression, ``q_pi(i) + w_i
    (r_i - q(x_i, a_i))`` (DR's per-round terms): as wide as DR's interval, conservative for a
    model that is right. The bootstrap resamples these terms around ``value``.
    """
    rows = np.arange(data.n_rounds)
    w = importance_weights(data, pi_rows)
    psi = (pi_rows * q).sum(axis=1) + w * (data.rewards - q[rows, data.actions])
    centred = psi - psi.mean()
    n = data.n_rounds

    def resample(c: np.ndarray) -> np.ndarray:
        return value + c @ centred / n

    return psi, resample


def _refit_resample(model: RidgeRewardModel, data: LoggedData, pi_rows: np.ndarray
                    ) -> Any:
    """``counts (B, n) -> (B,)`` values ``sum_i c_i sum_a pi(a|i) q_c(i, a) / n`` with the ridge
    model refitted on each resample (``pi_rows`` may be signed weights)."""
    lam = model.resolve_ridge(data)
    phi = model.features(data)
    n, k, p = data.n_rounds, data.n_actions, phi.shape[1]
    pi_phi = (pi_rows[:, :, None] * phi[:, None, :]).reshape(n, k * p)

    def resample(c: np.ndarray) -> np.ndarray:
        fitted = model.fit_counts(data, c, ridge=lam, phi=phi)
        g = c @ pi_phi  # (B, K p): sum_i c_bi pi(a|i) phi_i
        return (g * fitted.theta.reshape(c.shape[0], k * p)).sum(axis=1) / n

    return resample


class DR(Estimator):
    """Doubly robust estimator with a cross-fitted reward model.

    Parameters
    ----------
    model
        The reward model (default: :class:`RidgeRewardModel()`, one pseudo-round of shrinkage),
        a :class:`SklearnRewardModel`, or any unfitted estimator with ``fit`` and ``predict``
        (or ``predict_proba``).
    clip
        Cap on the importance weights (``None``: no clipping).
    n_folds
        Cross-fitting folds (1: fit and predict on the whole log; ridge model only).
    """

    name = "dr"

    def __init__(self, model: Any = None, clip: float | None = None,
                 n_folds: int = 5) -> None:
        self.model = as_reward_model(model)
        self.clip = check_clip(clip)
        self.n_folds = _check_folds(n_folds)

    def parts(self, data: LoggedData, pi_rows: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(q, q_pi, w, residual)``: the cross-fitted ``(n, K)`` predictions, and ``(n,)``
        the model's value of the target at each round, the (clipped) weights and
        ``r_i - q(x_i, a_i)``."""
        q = self.model.cross_fit_predict(data, min(self.n_folds, data.n_rounds))
        w = importance_weights(data, pi_rows, self.clip)
        rows = np.arange(data.n_rounds)
        return q, (pi_rows * q).sum(axis=1), w, data.rewards - q[rows, data.actions]

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        _, q_pi, w, resid = self.parts(data, pi_rows)
        v = q_pi + w * resid
        n = data.n_rounds
        events = int(np.count_nonzero(w * data.rewards))
        return Terms(float(v.mean()), v, lambda c: c @ v / n, effective_sample_size(w),
                     float(w.max()), events)


class SNDR(DR):
    """Self-normalized doubly robust: DR whose correction is divided by ``mean(w)``.

    Same parameters as :class:`DR`. Its normal interval uses the linearization
    ``q_pi(i) - mean(q_pi) + w_i (e_i - c) / mean(w)`` with ``e_i`` the residual and ``c``
    the normalized correction.
    """

    name = "sndr"

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        _, q_pi, w, resid = self.parts(data, pi_rows)
        n = data.n_rounds
        total = float(w.sum())
        we = w * resid
        events = int(np.count_nonzero(w * data.rewards))
        if total <= 0:
            return Terms(float("nan"), np.zeros(n), lambda c: c[:, 0] * np.nan, 0.0,
                         float(w.max()), events)
        corr = float(we.sum() / total)
        value = float(q_pi.mean()) + corr
        influence = (q_pi - q_pi.mean()) + w * (resid - corr) / w.mean()

        def resample(c: np.ndarray) -> np.ndarray:
            den = c @ w
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(den > 0, (c @ q_pi) / n + (c @ we) / den, np.nan)

        return Terms(value, influence, resample, effective_sample_size(w), float(w.max()),
                     events)


class SwitchDR(DR):
    """Switch doubly robust: the DR correction only for rounds with ``w_i <= tau``.

    Parameters
    ----------
    tau
        Switching threshold on the importance weight (>= 0; ``inf``, the default as in the
        Open Bandit Pipeline, is DR; ``0`` is DM with the cross-fitted model).
    model, clip, n_folds
        As in :class:`DR` (``clip`` caps the weights of the rounds that are kept).

    Its effective sample size is that of the weights it keeps (``n`` when it keeps none).

    With the ridge model, once a round is switched its intervals add the model's estimation
    error as DM's do: the normal interval through DM's influence function with the signed
    weights ``pi_e(a | x_i) - w_i 1{a = a_i, w_i <= tau}``, the bootstrap by refitting the
    (whole-log) model on each resample. With a scikit-learn model they use DR's per-round
    terms instead (the influence function of a nonparametric model; conservative).
    """

    name = "switch-dr"

    def __init__(self, model: Any = None, tau: float = float("inf"), clip: float | None = None,
                 n_folds: int = 5) -> None:
        super().__init__(model, clip, n_folds)
        t = float(tau)
        if not t >= 0:
            raise ConfigurationError(f"tau == {tau!r}, must be >= 0 (inf: no switching)")
        self.tau = t

    def terms(self, data: LoggedData, pi_rows: np.ndarray,
              rng: np.random.Generator | None = None) -> Terms:
        q, q_pi, w, resid = self.parts(data, pi_rows)
        raw = importance_weights(data, pi_rows)
        kept = np.where(raw <= self.tau, w, 0.0)
        v = q_pi + kept * resid
        n = data.n_rounds
        events = int(np.count_nonzero(kept * data.rewards))
        influence, resample = _switch_terms(self.model, data, pi_rows, q, v, kept,
                                            bool((raw > self.tau).any()))
        # the rounds it reweights are those it keeps; keeping none, it is DM (ESS n)
        ess = effective_sample_size(kept) if kept.any() else float(n)
        return Terms(float(v.mean()), influence, resample, ess, float(kept.max()), events)


def _switch_terms(model: Any, data: LoggedData, pi_rows: np.ndarray, q: np.ndarray,
                  v: np.ndarray, kept: np.ndarray, switched: bool) -> tuple[np.ndarray, Any]:
    """Switch-DR's influence terms and bootstrap statistic (see :class:`SwitchDR`)."""
    n = data.n_rounds
    if not switched:  # DR exactly
        return v, lambda c: c @ v / n
    if not isinstance(model, RidgeRewardModel):
        return _nonparametric_terms(data, pi_rows, q, float(v.mean()))
    # rounds past tau rest on the model alone: add its estimation error, as DM does. The
    # value is linear in q with the signed weights pi(a|i) - kept_i 1{a = a_i}.
    signed = pi_rows.copy()
    signed[np.arange(n), data.actions] -= kept
    _, model_part = model.dm_influence(data, signed)
    kept_r = kept * data.rewards
    refit = _refit_resample(model, data, signed)
    return model_part + kept_r, lambda c: refit(c) + c @ kept_r / n
