"""Fixed-horizon design: textbook sample sizes, power, z-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tsbandit.errors import ConfigurationError
from tsbandit.experiments import (
    power_two_proportions,
    sample_size_two_proportions,
    two_proportion_ztest,
)


def test_textbook_value_pooled_variance():
    # Fleiss (1981) eq. 3.14 without continuity correction (R: power.prop.test(.10, .12,
    # power = .8) gives n = 3840.9):
    # baseline 10 %, 12 % treatment, alpha 0.05 two-sided, power 0.80 -> 3,841 per arm
    assert sample_size_two_proportions(0.10, 0.12) == 3841
    assert sample_size_two_proportions(0.12, 0.10) == 3841


def test_r_power_prop_test_help_page_example():
    # R's ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90) -> n = 76.7
    assert sample_size_two_proportions(0.50, 0.75, power=0.90) == 77
    assert power_two_proportions(0.50, 0.75, 76.7) == pytest.approx(0.90, abs=1e-3)


def test_other_conventions():
    assert sample_size_two_proportions(0.10, 0.12, method="unpooled") == 3839
    assert sample_size_two_proportions(0.10, 0.12, method="arcsine") == 3835
    # Fleiss, Tytun & Ury (1980) continuity correction, roughly n + 2 / |d|
    assert sample_size_two_proportions(0.10, 0.12, continuity_correction=True) == 3941


def test_cohen_table_value_for_h_0_2():
    # Cohen (1988) Table 6.4.1: h = 0.2, a2 = 0.05, power 0.80 -> n = 392 per group; the
    # formula gives 392.4, which Cohen rounds to nearest and we round up (power >= target)
    p1 = 0.5
    p2 = np.sin((2 * np.arcsin(np.sqrt(p1)) + 0.2) / 2) ** 2
    assert sample_size_two_proportions(p1, p2, method="arcsine") == 393


@pytest.mark.parametrize("p1,p2", [(0.10, 0.12), (0.03, 0.036), (0.5, 0.55), (0.2, 0.1)])
@pytest.mark.parametrize("alpha,power", [(0.05, 0.8), (0.01, 0.9)])
def test_sample_size_is_the_smallest_with_the_power(p1, p2, alpha, power):
    n = sample_size_two_proportions(p1, p2, alpha, power)
    assert power_two_proportions(p1, p2, n, alpha) >= power
    # dropping the negligible wrong-direction tail, n - 1 falls short
    za = stats.norm.isf(alpha / 2)
    pbar = (p1 + p2) / 2
    s0, s1 = np.sqrt(2 * pbar * (1 - pbar)), np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    assert stats.norm.cdf((abs(p2 - p1) * np.sqrt(n - 1) - za * s0) / s1) < power


def test_ztest_matches_scipy_chi_square():
    s1, n1, s2, n2 = 120, 1000, 150, 1000
    z, p = two_proportion_ztest(s1, n1, s2, n2)
    table = np.array([[s1, n1 - s1], [s2, n2 - s2]])
    chi2, p_ref, _, _ = stats.chi2_contingency(table, correction=False)
    assert float(z) ** 2 == pytest.approx(chi2)
    assert float(p) == pytest.approx(p_ref)
    assert float(z) > 0
    z0, p0 = two_proportion_ztest(0, 10, 0, 10)
    assert float(z0) == 0.0 and float(p0) == 1.0


def test_errors():
    with pytest.raises(ConfigurationError, match="infinite sample"):
        sample_size_two_proportions(0.1, 0.1)
    with pytest.raises(ConfigurationError, match=r"p2 == 1\.2"):
        sample_size_two_proportions(0.1, 1.2)
    with pytest.raises(ConfigurationError, match="method"):
        sample_size_two_proportions(0.1, 0.2, method="exact")
    with pytest.raises(ConfigurationError, match="power"):
        sample_size_two_proportions(0.1, 0.2, power=0.0)
