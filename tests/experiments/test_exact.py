"""Exact two-arm probabilities: closed form vs quadrature vs references integrated here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate, stats

from tsbandit.experiments import BinaryPosteriors, NormalPosteriors
from tsbandit.experiments._batch import beta_expected_loss_batch, beta_prob_greater_batch
from tsbandit.experiments._marginals import (
    BetaMarginal,
    StudentTMarginal,
    beta_prob_greater_sum,
    expected_shortfall,
    prob_greater_quad,
)
from tsbandit.policies import BetaBernoulli


def reference_p_b_beats_a(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X2 > X1) = int f_1(x) (1 - F_2(x)) dx, integrated directly in x (independent code)."""
    d1, d2 = stats.beta(a1, b1), stats.beta(a2, b2)
    lo, hi = d1.ppf(1e-13), d1.isf(1e-13)
    mid = sorted(d.ppf(q) for d in (d1, d2) for q in (0.01, 0.5, 0.99) if lo < d.ppf(q) < hi)
    val, _ = integrate.quad(lambda x: d1.pdf(x) * d2.sf(x), lo, hi, points=mid, limit=400,
                            epsabs=1e-13, epsrel=1e-11)
    return val


def reference_loss(m1: stats.rv_continuous, m2: stats.rv_continuous) -> float:
    """E[(X2 - X1)^+] as a double integral written the obvious way (independent code)."""
    lo, hi = m1.ppf(1e-12), m1.isf(1e-12)

    def inner(x: float) -> float:
        return integrate.quad(lambda y: (y - x) * m2.pdf(y), x, m2.isf(1e-14), limit=200,
                              epsabs=1e-14)[0] if x < m2.isf(1e-14) else 0.0

    return integrate.quad(lambda x: m1.pdf(x) * inner(x), lo, hi, limit=200, epsabs=1e-13,
                          points=[m1.ppf(0.5)])[0]


REFERENCE_CASES = [
    (121, 881, 151, 851),          # 120/1000 vs 150/1000, uniform prior
    (1, 1, 1, 1),                  # no data: exactly 1/2
    (2, 1, 1, 2),                  # P = 1/6 (the probability an upper order statistic...)
    (31, 971, 37, 965),            # 3 % vs 3.6 % at n = 1000
    (3001, 97001, 3101, 96901),    # counts of 1e5
    (0.5, 0.5, 3.5, 10.5),         # Jeffreys prior, real-valued everywhere
    (3000.5, 97000.5, 3100.5, 96900.5),  # real-valued with counts of 1e5: quadrature path
    (75, 263, 3, 93),              # far apart: P ~ 2e-7, carried by the far tail of arm 2
    (75.5, 263.5, 3.5, 93.5),      # the same through the quadrature path
]


@pytest.mark.parametrize("a1,b1,a2,b2", REFERENCE_CASES)
def test_prob_greater_matches_direct_integration(a1, b1, a2, b2):
    post = BinaryPosteriors.from_counts([a1 - 0.5, a2 - 0.5], [a1 + b1 - 1, a2 + b2 - 1],
                                        prior=BetaBernoulli(0.5, 0.5))
    ref = reference_p_b_beats_a(a1, b1, a2, b2)
    assert post.prob_greater(0, 1) == pytest.approx(ref, abs=1e-9, rel=1e-6)
    assert prob_greater_quad(BetaMarginal(a1, b1), BetaMarginal(a2, b2)) == pytest.approx(
        ref, abs=1e-9, rel=1e-6)


def test_known_closed_values():
    # Beta(1,1) vs Beta(1,1): 1/2; Beta(2,1) vs Beta(1,2): P(X2 > X1) = 1/6 (x^2 vs 1-(1-y)^2)
    assert beta_prob_greater_sum(1, 1, 1, 1) == pytest.approx(0.5, abs=1e-15)
    assert beta_prob_greater_sum(2, 1, 1, 2) == pytest.approx(1 / 6, abs=1e-15)
    # Beta(1,1) vs Beta(2,1): P(X2 > X1) = int 2y * y dy = 2/3
    assert beta_prob_greater_sum(1, 1, 2, 1) == pytest.approx(2 / 3, abs=1e-15)


def test_sum_form_is_used_and_falls_back():
    assert beta_prob_greater_sum(0.5, 0.5, 0.5, 0.5) is None
    # only b2 is an integer: the last symmetric form must be chosen and agree with quadrature
    p = beta_prob_greater_sum(2.5, 7.5, 3.5, 9.0)
    assert p == pytest.approx(reference_p_b_beats_a(2.5, 7.5, 3.5, 9.0), abs=1e-10)


def test_large_counts_stable_and_near_normal_approximation():
    # 1e5 per arm: the normal approximation of the difference is accurate to ~1e-3 here
    a1, b1, a2, b2 = 3001.0, 97001.0, 3101.0, 96901.0
    exact = beta_prob_greater_sum(a1, b1, a2, b2)
    m1, m2 = BetaMarginal(a1, b1), BetaMarginal(a2, b2)
    z = (m2.mean - m1.mean) / math.hypot(m1.std, m2.std)
    assert exact == pytest.approx(stats.norm.cdf(z), abs=2e-3)
    assert prob_greater_quad(m1, m2) == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("a1,b1,a2,b2", [(121, 881, 151, 851), (3.5, 40.2, 5.0, 41.0)])
def test_expected_loss_matches_double_integral(a1, b1, a2, b2):
    m1, m2 = BetaMarginal(a1, b1), BetaMarginal(a2, b2)
    ref = reference_loss(stats.beta(a1, b1), stats.beta(a2, b2))
    assert expected_shortfall(m1, m2) == pytest.approx(ref, abs=1e-10)
    ref_b = reference_loss(stats.beta(a2, b2), stats.beta(a1, b1))
    assert expected_shortfall(m2, m1) == pytest.approx(ref_b, abs=1e-10)


def test_student_t_prob_and_loss_match_direct_integration():
    post = NormalPosteriors.from_summary([40, 300], [50.0, 53.0], [20.0, 25.0])
    m1, m2 = post.marginal(0), post.marginal(1)
    d1 = stats.t(m1.df, m1.loc, m1.scale)
    d2 = stats.t(m2.df, m2.loc, m2.scale)
    ref = integrate.quad(lambda x: d1.pdf(x) * d2.sf(x), -np.inf, np.inf, epsabs=1e-13)[0]
    assert post.prob_greater(0, 1) == pytest.approx(ref, abs=1e-9)
    assert expected_shortfall(m1, m2) == pytest.approx(reference_loss(d1, d2), abs=1e-8)


def test_student_t_marginal_pieces():
    m = StudentTMarginal(5.0, 2.0, 3.0)
    d = stats.t(5.0, 2.0, 3.0)
    for x in (-4.0, 1.0, 2.0, 9.0):
        assert m.pdf(x) == pytest.approx(d.pdf(x), rel=1e-12)
        assert m.cdf(x) == pytest.approx(d.cdf(x), rel=1e-12)
        assert m.sf(x) == pytest.approx(d.sf(x), rel=1e-12)
        ref = integrate.quad(lambda y, x=x: (y - x) * d.pdf(y), x, np.inf)[0]
        assert m.upper_partial(x) == pytest.approx(ref, rel=1e-8)
    assert m.ppf(0.3) == pytest.approx(d.ppf(0.3), rel=1e-12)
    assert StudentTMarginal(1.0, 0.0, 1.0).upper_partial(0.0) == math.inf


beta_param = st.floats(0.3, 400.0)


@given(beta_param, beta_param, beta_param, beta_param)
@example(1.0, 1.0, 15.0, 2.5)  # found by CI: the rule's error was 1.06e-6 with b2 = 2.5 < 4
@example(390.2059286, 2.21680027, 3.3523753, 4.10881225)  # error 1.3e-5 before
def test_batch_quadrature_matches_exact(a1, b1, a2, b2):
    exact = prob_greater_quad(BetaMarginal(a1, b1), BetaMarginal(a2, b2))
    assert float(beta_prob_greater_batch(a1, b1, a2, b2)) == pytest.approx(exact, abs=1e-6)
    l1, l2 = beta_expected_loss_batch(a1, b1, a2, b2)
    assert float(l1) == pytest.approx(
        expected_shortfall(BetaMarginal(a1, b1), BetaMarginal(a2, b2)), abs=1e-6)
    assert float(l2) == pytest.approx(
        expected_shortfall(BetaMarginal(a2, b2), BetaMarginal(a1, b1)), abs=1e-6)


def test_batch_quadrature_on_simulation_like_counts():
    rng = np.random.default_rng(7)
    n = rng.integers(100, 30_000, size=(200, 2)).astype(float)
    s = rng.binomial(n.astype(int), [0.03, 0.034]).astype(float)
    a, b = 1 + s, 1 + n - s
    got = beta_prob_greater_batch(a[:, 0], b[:, 0], a[:, 1], b[:, 1])
    want = [beta_prob_greater_sum(*row) for row in zip(a[:, 0], b[:, 0], a[:, 1], b[:, 1],
                                                       strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-9)


integer_param = st.integers(1, 300)


@given(integer_param, integer_param, integer_param, integer_param)
def test_closed_form_agrees_with_quadrature_and_is_symmetric(a1, b1, a2, b2):
    p = beta_prob_greater_sum(a1, b1, a2, b2)
    q = beta_prob_greater_sum(a2, b2, a1, b1)
    assert p + q == pytest.approx(1.0, abs=1e-10)
    assert p == pytest.approx(prob_greater_quad(BetaMarginal(a1, b1), BetaMarginal(a2, b2)),
                              abs=1e-9)
    # reflection X -> 1 - X swaps the roles: P(X2 > X1) = P(1 - X1 > 1 - X2)
    assert p == pytest.approx(beta_prob_greater_sum(b2, a2, b1, a1), abs=1e-10)
