"""Sample-ratio mismatch check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tsbandit.errors import ConfigurationError
from tsbandit.experiments import srm_check


def test_matches_scipy_chisquare_and_flags_below_threshold():
    r = srm_check([5000, 4600])
    ref = stats.chisquare([5000, 4600])
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.mismatch and r.to_dict()["status"] == "mismatch"
    ok = srm_check([5000, 4700])  # p = 0.0023: suspicious but not flagged at 0.001
    assert not ok.mismatch and ok.p_value > 0.001


def test_unequal_intended_split():
    r = srm_check([2000, 8000], [20, 80])
    assert r.p_value == pytest.approx(1.0) and not r.mismatch
    assert srm_check([5000, 5000], [0.2, 0.8]).mismatch
    np.testing.assert_allclose(srm_check([10, 20, 30], [1, 1, 1]).expected, [20, 20, 20])


def test_false_alarm_rate_under_correct_split_is_about_threshold():
    rng = np.random.default_rng(4)
    n = rng.binomial(10_000, 0.5, size=8_000)
    flags = [srm_check([k, 10_000 - k], threshold=0.01).mismatch for k in n]
    rate = float(np.mean(flags))
    # chi-square is a close approximation here: rate within 4 standard errors of 0.01
    assert abs(rate - 0.01) <= 4 * np.sqrt(0.01 * 0.99 / n.size)


def test_errors():
    with pytest.raises(ConfigurationError, match="at least 2 arms"):
        srm_check([10])
    with pytest.raises(ConfigurationError, match=">= 0"):
        srm_check([10, -1])
    with pytest.raises(ConfigurationError, match="2 weights for 3 arms"):
        srm_check([10, 10, 10], [1, 1])
    with pytest.raises(ConfigurationError, match="> 0"):
        srm_check([10, 10], [1, 0])
    with pytest.raises(ConfigurationError, match="all zero"):
        srm_check([0, 0])
