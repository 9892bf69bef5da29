"""DM and the DR family with scikit-learn reward models: cross-fitting, classifiers, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import DM, DR, SNDR, LoggedData, SklearnRewardModel, make_reward_model
from tsbandit.evaluation.reward_model import RidgeRewardModel

from .test_estimators import random_log


class Memorizer:
    """Predicts 1 for a context it was trained on, 0 otherwise; counts its fits."""

    fits = 0

    def fit(self, x, y):
        Memorizer.fits += 1
        self.seen = {tuple(np.round(row[:1], 9)) for row in x}
        return self

    def predict(self, x):
        return np.array([float(tuple(np.round(row[:1], 9)) in self.seen) for row in x])


def unique_context_log(n=60, k=3):
    rng = np.random.default_rng(0)
    return LoggedData(rng.integers(0, k, n), rng.random(n), np.full(n, 1 / k), k,
                      contexts=np.arange(n, dtype=float)[:, None])


@pytest.mark.parametrize("n_folds", [2, 5])
def test_a_round_is_never_predicted_by_a_model_that_saw_it(n_folds):
    log = unique_context_log()
    Memorizer.fits = 0
    q = SklearnRewardModel(Memorizer()).cross_fit_predict(log, n_folds)
    assert q.shape == (60, 3)
    assert Memorizer.fits == n_folds
    assert (q == 0.0).all()  # a model that had seen the round would have said 1
    # the memorizer does recognise training rows: the check above can fail
    m = Memorizer().fit(np.arange(60.0)[:, None], np.zeros(60))
    assert m.predict(np.arange(60.0)[:, None]).all()


def test_cross_fitting_needs_two_folds():
    with pytest.raises(ConfigurationError, match="n_folds"):
        SklearnRewardModel(Memorizer()).cross_fit_predict(unique_context_log(), 1)
    log, pi_b = random_log(0, 50, 2)
    with pytest.raises(ConfigurationError, match="n_folds"):
        DR(Memorizer(), n_folds=1).estimate(log, pi_b)


def test_dm_and_dr_with_an_sklearn_regressor():
    linear_model = pytest.importorskip("sklearn.linear_model")
    log, pi_b = random_log(1, 800, 3, reward="real")
    pi_e = np.roll(pi_b, 1, axis=1)
    model = SklearnRewardModel(linear_model.LinearRegression())
    q = model.cross_fit_predict(log, 4)
    rows = np.arange(log.n_rounds)
    w = pi_e[rows, log.actions] / log.propensities
    dm = DM(model, n_folds=4).estimate(log, pi_e)
    assert dm.value == pytest.approx((pi_e * q).sum(axis=1).mean(), rel=1e-12)
    dr = DR(linear_model.LinearRegression(), n_folds=4).estimate(log, pi_e)  # wrapped as is
    expected = ((pi_e * q).sum(axis=1) + w * (log.rewards - q[rows, log.actions])).mean()
    assert dr.value == pytest.approx(expected, rel=1e-12)
    # (bias and coverage against a known answer: test_validation.py)


def test_a_classifier_predicts_click_probabilities():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(2)
    n, k = 3000, 2
    a = rng.integers(0, k, n)
    log = LoggedData(a, (rng.random(n) < np.where(a == 1, 0.7, 0.2)).astype(float),
                     np.full(n, 0.5), k)
    q = SklearnRewardModel(linear_model.LogisticRegression()).cross_fit_predict(log, 3)
    assert ((q >= 0) & (q <= 1)).all()
    assert q[:, 0].mean() == pytest.approx(0.2, abs=0.03)
    assert q[:, 1].mean() == pytest.approx(0.7, abs=0.03)
    est = SNDR(linear_model.LogisticRegression()).estimate(log, np.array([0.0, 1.0]))
    assert est.low < 0.7 < est.high
    # a fold that saw only zeros predicts 0, only ones 1 (a classifier cannot fit one class)
    zeros = LoggedData(a[:20], np.zeros(20), np.full(20, 0.5), k)
    assert (SklearnRewardModel(linear_model.LogisticRegression())
            .cross_fit_predict(zeros, 2) == 0).all()
    with pytest.raises(ConfigurationError, match="0/1 rewards"):
        SklearnRewardModel(linear_model.LogisticRegression()).cross_fit_predict(
            LoggedData(a, rng.normal(size=n), np.full(n, 0.5), k), 2)


@pytest.mark.parametrize("name", ["random-forest", "gradient-boosting", "logistic"])
def test_named_models(name):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(3)
    n = 600
    x = rng.normal(size=(n, 2))
    a = rng.integers(0, 2, n)
    p = np.where(a == 1, 0.5 + 0.3 * (x[:, 0] > 0), 0.3)
    log = LoggedData(a, (rng.random(n) < p).astype(float), np.full(n, 0.5), 2, contexts=x)
    model = make_reward_model(name, random_state=0)
    assert isinstance(model, SklearnRewardModel)
    e1 = DR(model).estimate(log, np.array([0.0, 1.0]))
    e2 = DR(make_reward_model(name, random_state=0)).estimate(log, np.array([0.0, 1.0]))
    assert e1 == e2  # seeded: same numbers
    assert e1.low < 0.65 < e1.high


def test_named_model_errors(monkeypatch):
    assert isinstance(make_reward_model("ridge"), RidgeRewardModel)
    with pytest.raises(ConfigurationError, match="known"):
        make_reward_model("xgboost")
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'tsbandit\[sklearn\]'"):
        make_reward_model("random-forest")
    assert isinstance(make_reward_model("ridge"), RidgeRewardModel)  # needs no scikit-learn


def test_objects_that_are_not_models():
    with pytest.raises(ConfigurationError, match="fit"):
        DR(model=object())

    class Broken:
        def fit(self, x, y):
            raise ValueError("cannot fit")

        def predict(self, x):
            return np.zeros(len(x))

    class Nan(Broken):
        def fit(self, x, y):
            return self

        def predict(self, x):
            return np.full(len(x), np.nan)

    log, pi_b = random_log(0, 50, 2)
    with pytest.raises(ConfigurationError, match="Broken failed: cannot fit"):
        DR(Broken()).estimate(log, pi_b)
    with pytest.raises(ConfigurationError, match="NaN"):
        DM(Nan()).estimate(log, pi_b)


def test_estimators_sharing_a_model_on_one_log_fit_it_once():
    from tsbandit.evaluation.report import make_estimators

    log = unique_context_log()
    model = SklearnRewardModel(Memorizer())
    Memorizer.fits = 0
    ests = make_estimators(["dm", "dr", "sndr", "switch-dr"], model=model, n_folds=3, tau=1.0)
    for est in ests:
        est.estimate(log, np.full(3, 1 / 3))
    assert Memorizer.fits == 3
    est.estimate(unique_context_log(), np.full(3, 1 / 3))  # another log object: refitted
    assert Memorizer.fits == 6
