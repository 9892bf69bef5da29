"""Intervals are cut to the reward range, and a tiny effective sample size is called out."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import DR, IPS, SNIPS, LoggedData, evaluate
from tsbandit.evaluation.intervals import clip_to_range, reward_range


def tiny_ess_log():
    """Clicks at 0.5%, and a target that puts 10% on an action the logger chose twice with
    probability 1e-4: two rows of weight 1000 carry nearly all the weight, one of them a click
    (the Open Bandit Dataset's bts -> random case in small)."""
    rng = np.random.default_rng(0)
    n = 2000
    actions = np.ones(n, dtype=int)
    actions[:2] = 0
    props = np.where(actions == 0, 1e-4, 1 - 1e-4)
    rewards = (rng.random(n) < 0.005).astype(float)
    rewards[:2] = [1.0, 0.0]
    return LoggedData(actions, rewards, props, 2), np.array([0.1, 0.9])


def test_a_normal_interval_of_click_rates_no_longer_goes_below_zero():
    log, pi_e = tiny_ess_log()
    raw = IPS().estimate(log, pi_e, bounds=None)
    assert raw.ess < 10 and raw.low < 0  # what the estimator alone says
    est = IPS().estimate(log, pi_e)
    assert est.clipped and (est.low, est.high) == (0.0, min(raw.high, 1.0))
    assert (est.value, est.std_error) == (raw.value, raw.std_error)
    boot = SNIPS().estimate(log, pi_e, interval="bootstrap", rng=np.random.default_rng(0))
    assert 0.0 <= boot.low <= boot.high <= 1.0


def test_the_report_says_what_it_cut_and_that_the_ess_is_tiny():
    log, pi_e = tiny_ess_log()
    rep = evaluate(log, pi_e, estimators=[IPS(), DR()], rng=np.random.default_rng(0))
    text = rep.table()
    assert "]*" in text
    assert any("cut to the reward range [0, 1]" in n for n in rep.notes)
    assert any("ips (ESS 7.2), dr (ESS 7.2)" in n and "can be trusted" in n for n in rep.notes)
    assert rep.to_dict()["estimates"][0]["clipped"] is True


def test_wide_enough_logs_are_untouched():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 5000)
    log = LoggedData(a, (rng.random(5000) < 0.3 + 0.2 * a).astype(float), np.full(5000, 0.5), 2)
    rep = evaluate(log, np.array([0.2, 0.8]), estimators=[IPS(), DR()],
                   rng=np.random.default_rng(0))
    assert not any(e.clipped for e in rep.estimates) and rep.notes == []


def test_reward_range_and_clip_rules():
    assert reward_range(np.array([1.0, 0.0])) == (0.0, 1.0)
    assert reward_range(np.array([0.0, 0.0])) == (0.0, 1.0)  # clicks that never came
    assert reward_range(np.array([3.0, -2.0, 0.5])) == (-2.0, 3.0)
    assert clip_to_range(0.5, 0.1, 0.9, (0.0, 1.0)) == (0.1, 0.9, False)
    # an IPS value outside the range stays inside its own interval
    assert clip_to_range(-0.2, -0.5, 0.3, (0.0, 1.0)) == (-0.2, 0.3, True)
    assert clip_to_range(0.5, float("nan"), float("nan"), (0.0, 1.0))[2] is False


def test_explicit_bounds_and_errors():
    log, pi_e = tiny_ess_log()
    est = IPS().estimate(log, pi_e, bounds=(-1.0, 0.0001))
    assert est.low > -1.0 and est.high == pytest.approx(max(0.0001, est.value))
    for bad in ("wide", (1.0, 0.0), (0.0, float("inf")), (1.0,)):
        with pytest.raises(ConfigurationError, match="bounds"):
            IPS().estimate(log, pi_e, bounds=bad)
