"""Reward models from scikit-learn (or any object with ``fit`` / ``predict``) for DM and DR.

:class:`SklearnRewardModel` wraps an estimator and fits ``q(x, a, k)`` on the features
``[standardized context, position one-hot, action one-hot]`` (the layout of the Open Bandit
Pipeline's ``RegressionModel``), one model for all actions. Predictions are **cross-fitted**:
the rounds are split into ``n_folds`` folds (round ``i`` is in fold ``i mod n_folds``) and a
round's ``q`` comes from a copy of the estimator fitted on the other folds, never on the round
itself. A classifier (an object with ``predict_proba``) is used for 0/1 rewards and predicts
the probability of a 1; a regressor predicts the reward.

scikit-learn is an optional extra (``pip install 'tsbandit[sklearn]'``): it is imported only to
build a named model (:func:`make_reward_model`) or to ``clone`` an estimator that has
``get_params``; any other object is copied with :func:`copy.deepcopy` before each fit.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from tsbandit.evaluation import DR, LoggedData
>>> rng = np.random.default_rng(0)
>>> a = rng.integers(0, 2, 400)
>>> x = rng.normal(size=(400, 2))
>>> log = LoggedData(a, rng.normal(a, 1.0), np.full(400, 0.5), 2, contexts=x)
>>> est = DR(SklearnRewardModel(LinearRegression()), n_folds=3).estimate(log, np.array([0, 1.0]))
>>> round(est.value, 2)
1.03
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .data import LoggedData
from .reward_model import standardized_contexts

__all__ = ["REWARD_MODELS", "SklearnRewardModel", "as_reward_model", "make_reward_model"]

#: names accepted by :func:`make_reward_model` (and ``tsbandit evaluate --reward-model``)
REWARD_MODELS = ("ridge", "logistic", "random-forest", "gradient-boosting")


def _require_sklearn(what: str) -> Any:
    try:
        import sklearn
    except ImportError:
        raise ConfigurationError(
            f"{what} needs scikit-learn: pip install 'tsbandit[sklearn]'") from None
    return sklearn


def make_reward_model(name: str, *, random_state: int | None = None) -> Any:
    """A reward model by name: ``"ridge"`` (tsbandit's own :class:`RidgeRewardModel`, no
    scikit-learn needed), ``"logistic"`` (``LogisticRegression``, 0/1 rewards only),
    ``"random-forest"`` (``RandomForestRegressor``, 100 trees, leaves of >= 20 rounds) or
    ``"gradient-boosting"`` (``GradientBoostingRegressor``, 100 trees of depth 3), the last
    three wrapped in a cross-fitted :class:`SklearnRewardModel`."""
    from .reward_model import RidgeRewardModel

    if name == "ridge":
        return RidgeRewardModel()
    if name not in REWARD_MODELS:
        raise ConfigurationError(f"reward model {name!r}; known: {list(REWARD_MODELS)}")
    _require_sklearn(f"reward model {name!r}")
    est: Any
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(max_iter=1000)
    elif name == "random-forest":
        from sklearn.ensemble import RandomForestRegressor

        est = RandomForestRegressor(n_estimators=100, min_samples_leaf=20, n_jobs=1,
                                    random_state=random_state)
    else:
        from sklearn.ensemble import GradientBoostingRegressor

        # not the histogram variant: its OpenMP threads thrash on a loaded machine (measured:
        # 56 s instead of 2 s for 600 rounds on 2 busy cores)
        est = GradientBoostingRegressor(n_estimators=100, max_depth=3, subsample=0.8,
                                        random_state=random_state)
    return SklearnRewardModel(est)


class SklearnRewardModel:
    """A cross-fitted reward model around a scikit-learn style estimator.

    Parameters
    ----------
    estimator
        Unfitted object with ``fit(X, y)`` and ``predict(X)`` (regressor) or
        ``predict_proba(X)`` (classifier, 0/1 rewards). It is copied before each fit.
        The number of cross-fitting folds is the estimator's (``DM(n_folds=...)``,
        ``DR(n_folds=...)``; at least 2).
    use_context, use_position
        Include contexts / position one-hots in the features (``None``: when the log has them).
    """

    def __init__(self, estimator: Any, *, use_context: bool | None = None,
                 use_position: bool | None = None) -> None:
        if not callable(getattr(estimator, "fit", None)) or not (
                callable(getattr(estimator, "predict", None))
                or callable(getattr(estimator, "predict_proba", None))):
            raise ConfigurationError(
                f"reward model {type(estimator).__name__} needs fit() and predict() or "
                "predict_proba()")
        self.estimator = estimator
        # the last (log, folds, predictions): DM and the DR family on one log fit once
        self._last: tuple[LoggedData, int, np.ndarray] | None = None
        self.use_context, self.use_position = use_context, use_position

    @property
    def is_classifier(self) -> bool:
        """True when the estimator has ``predict_proba`` (rewards must then be 0/1)."""
        return callable(getattr(self.estimator, "predict_proba", None))

    def __repr__(self) -> str:
        return f"SklearnRewardModel({self.estimator!r})"

    def _fresh(self) -> Any:
        if callable(getattr(self.estimator, "get_params", None)):
            try:
                from sklearn.base import clone
            except ImportError:
                return copy.deepcopy(self.estimator)
            return clone(self.estimator)
        return copy.deepcopy(self.estimator)

    def _base_features(self, data: LoggedData) -> np.ndarray:
        ctx = standardized_contexts(data, self.use_context)
        cols = [] if ctx is None else [ctx]
        use_pos = data.n_positions > 1 if self.use_position is None else self.use_position
        if use_pos and data.n_positions > 1:
            cols.append(np.eye(data.n_positions)[data.position_index])
        return np.hstack(cols) if cols else np.zeros((data.n_rounds, 0))

    def _predict(self, model: Any, base: np.ndarray, action: int, k: int) -> np.ndarray:
        x = np.hstack([base, np.zeros((base.shape[0], k))])
        x[:, base.shape[1] + action] = 1.0
        if not self.is_classifier:
            return np.asarray(model.predict(x), dtype=np.float64).reshape(-1)
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        classes = [float(c) for c in model.classes_]
        if 1.0 in classes:
            return proba[:, classes.index(1.0)]
        return np.zeros(x.shape[0])  # the fold saw only zeros

    def cross_fit_predict(self, data: LoggedData, n_folds: int = 5) -> np.ndarray:
        """``(n, K)`` out-of-fold predictions ``q(x_i, a, k_i)`` for every action ``a``:
        round ``i`` is predicted by a copy fitted without fold ``i mod n_folds`` (capped at
        the number of rounds; at least 2). The last result is kept, so several estimators
        sharing this model on the same log object fit it once."""
        folds = min(int(n_folds), data.n_rounds)
        if self._last is not None and self._last[0] is data and self._last[1] == folds:
            return self._last[2].copy()
        if folds < 2:
            raise ConfigurationError(
                f"n_folds == {folds}; a scikit-learn reward model is cross-fitted, need >= 2")
        y = data.rewards
        if self.is_classifier and not np.isin(y, (0.0, 1.0)).all():
            raise ConfigurationError(
                f"{type(self.estimator).__name__} is a classifier: it needs 0/1 rewards; use "
                "a regressor (e.g. --reward-model random-forest) for other rewards")
        k = data.n_actions
        base = self._base_features(data)
        x_all = np.hstack([base, np.eye(k)[data.actions]])
        fold = np.arange(data.n_rounds) % folds
        q = np.empty((data.n_rounds, k))
        for f in range(folds):
            train, test = fold != f, fold == f
            model = self._fresh()
            try:
                if self.is_classifier and np.unique(y[train]).size < 2:
                    model = _Constant(float(y[train][0]))
                else:
                    model.fit(x_all[train], y[train])
                for a in range(k):
                    q[test, a] = self._predict(model, base[test], a, k)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"reward model {type(self.estimator).__name__} failed: {exc}") from None
        if not np.isfinite(q).all():
            raise ConfigurationError(
                f"reward model {type(self.estimator).__name__} predicted NaN or infinity")
        self._last = (data, folds, q)
        return q.copy()


class _Constant:
    """A fold whose training rewards are all one class predicts that class."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.classes_ = np.array([value])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((x.shape[0], 1))


def as_reward_model(model: Any) -> Any:
    """``None`` -> the default :class:`RidgeRewardModel`; a tsbandit reward model as is; any
    other object with ``fit``/``predict`` -> :class:`SklearnRewardModel` around it."""
    from .reward_model import RidgeRewardModel

    if model is None:
        return RidgeRewardModel()
    if isinstance(model, (RidgeRewardModel, SklearnRewardModel)):
        return model
    return SklearnRewardModel(model)
