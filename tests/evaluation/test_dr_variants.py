"""SNDR and Switch-DR: their definitions, exact limiting identities, and errors.

Their bias and coverage on synthetic logs with a known answer are in test_validation.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import DM, DR, SNDR, LoggedData, RidgeRewardModel, SwitchDR
from tsbandit.evaluation.report import make_estimators

from .test_estimators import random_log


def case(seed=3, n=600, k=4):
    log, _ = random_log(seed, n, k)
    pi_e = np.random.default_rng(seed + 1).dirichlet(np.ones(k) * 0.3, size=n)
    return log, pi_e


def by_hand(log, pi_e, n_folds=5):
    """q_pi, weights and residuals from the public pieces, written out again."""
    q = RidgeRewardModel().cross_fit_predict(log, n_folds)
    rows = np.arange(log.n_rounds)
    w = pi_e[rows, log.actions] / log.propensities
    return (pi_e * q).sum(axis=1), w, log.rewards - q[rows, log.actions]


def test_sndr_is_the_self_normalized_correction():
    log, pi_e = case()
    q_pi, w, e = by_hand(log, pi_e)
    expected = q_pi.mean() + (w * e).sum() / w.sum()
    assert SNDR().estimate(log, pi_e).value == pytest.approx(expected, rel=1e-12)
    # the DR of the same pieces differs (the weights do not average to 1 here)
    assert abs(w.mean() - 1) > 0.01
    assert DR().estimate(log, pi_e).value == pytest.approx(q_pi.mean() + (w * e).mean(),
                                                           rel=1e-12)


def test_sndr_equals_dr_on_policy_and_ignores_a_propensity_scale():
    log, pi_b = random_log(5, 400, 3)
    # on-policy every weight is 1: the normalization is by exactly 1
    assert SNDR().estimate(log, pi_b).value == pytest.approx(DR().estimate(log, pi_b).value,
                                                             rel=1e-12)
    _, pi_e = case(5, 400, 3)
    half = LoggedData(log.actions, log.rewards, log.propensities / 2, 3, contexts=log.contexts)
    assert SNDR().estimate(half, pi_e).value == pytest.approx(SNDR().estimate(log, pi_e).value,
                                                              rel=1e-12)


def test_switch_dr_between_the_limits_drops_the_corrections_above_tau():
    log, pi_e = case()
    q_pi, w, e = by_hand(log, pi_e)
    tau = float(np.quantile(w, 0.7))
    expected = (q_pi + np.where(w <= tau, w * e, 0.0)).mean()
    est = SwitchDR(tau=tau).estimate(log, pi_e)
    assert est.value == pytest.approx(expected, rel=1e-12)
    assert est.max_weight == pytest.approx(w[w <= tau].max())
    kept = np.where(w <= tau, w, 0.0)
    assert est.ess == pytest.approx(kept.sum() ** 2 / (kept**2).sum(), rel=1e-12)
    assert est.ess > DR().estimate(log, pi_e).ess  # the heavy rows are the ones it drops
    assert est.low < est.value < est.high


def test_switch_dr_with_infinite_tau_is_dr():
    log, pi_e = case()
    for clip in (None, 4.0):
        dr = DR(clip=clip).estimate(log, pi_e, interval="bootstrap", n_bootstrap=200,
                                     rng=np.random.default_rng(0))
        sw = SwitchDR(clip=clip).estimate(log, pi_e, interval="bootstrap", n_bootstrap=200,
                                          rng=np.random.default_rng(0))
        assert sw == dr.__class__(**{**dr.__dict__, "estimator": "switch-dr"})
    # any tau at or above the largest weight is the same as infinity
    w_max = DR().estimate(log, pi_e).max_weight
    assert SwitchDR(tau=w_max).estimate(log, pi_e).value == DR().estimate(log, pi_e).value


def test_switch_dr_with_zero_tau_is_dm():
    log, pi_e = case()
    q_pi, _, _ = by_hand(log, pi_e)
    assert SwitchDR(tau=0.0).estimate(log, pi_e).value == pytest.approx(q_pi.mean(), rel=1e-12)
    # with the model fitted on the whole log (one fold) it is the ridge DM, interval included
    dm = DM().estimate(log, pi_e)
    sw = SwitchDR(tau=0.0, n_folds=1).estimate(log, pi_e)
    assert sw.value == pytest.approx(dm.value, rel=1e-12)
    assert sw.std_error == pytest.approx(dm.std_error, rel=1e-9)
    assert sw.ess == dm.ess == log.n_rounds
    boot = {e.estimator: e for e in (
        est.estimate(log, pi_e, interval="bootstrap", n_bootstrap=300,
                     rng=np.random.default_rng(1))
        for est in (DM(), SwitchDR(tau=0.0, n_folds=1)))}
    assert boot["switch-dr"].std_error == pytest.approx(boot["dm"].std_error, rel=1e-9)


def test_make_estimators_and_parameter_errors():
    sw = make_estimators(["sndr", "switch-dr"], tau=3.0, clip=10.0, n_folds=4)
    assert [e.name for e in sw] == ["sndr", "switch-dr"]
    assert sw[1].tau == 3.0 and sw[1].clip == 10.0 and sw[0].n_folds == 4
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigurationError, match="tau"):
            SwitchDR(tau=bad)
    with pytest.raises(ConfigurationError, match="n_folds"):
        SNDR(n_folds=0)
