"""Each reward model against its closed forms, and Monte-Carlo moments against analytic ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from tsbandit.errors import ConfigurationError
from tsbandit.policies import (
    BetaBernoulli,
    LinearGaussian,
    LogisticLaplace,
    NormalInverseGamma,
)

N_DRAWS = 200_000


def se_of_mean(sd: np.ndarray, n: int) -> np.ndarray:
    return sd / np.sqrt(n)


class TestBetaBernoulli:
    def test_posterior_mean_and_variance_closed_form(self):
        m = BetaBernoulli(alpha0=2.0, beta0=3.0)
        s = m.init_stats(2)
        m.accumulate(s, np.array([0] * 7 + [1] * 4), np.array([1.0] * 5 + [0.0] * 2 + [1, 0, 0, 0]))
        p = m.posterior(s)
        a, b = np.array([2 + 5, 2 + 1]), np.array([3 + 2, 3 + 3])
        np.testing.assert_allclose(p.alpha, a)
        np.testing.assert_allclose(p.beta, b)
        np.testing.assert_allclose(m.mean(p), a / (a + b))
        np.testing.assert_allclose(m.std(p) ** 2, a * b / ((a + b) ** 2 * (a + b + 1)))
        lo, hi = m.interval(p, 0.9)
        np.testing.assert_allclose(lo, sps.beta.ppf(0.05, a, b))
        np.testing.assert_allclose(hi, sps.beta.ppf(0.95, a, b))

    def test_samples_match_moments(self):
        m = BetaBernoulli()
        s = m.init_stats(3)
        m.accumulate(s, np.array([0, 0, 1, 2, 2, 2]), np.array([1.0, 0, 1, 0, 0, 1]))
        p = m.posterior(s)
        draws = m.sample(p, np.random.default_rng(0), size=N_DRAWS)
        assert draws.shape == (N_DRAWS, 3)
        sd = m.std(p)
        assert np.all(np.abs(draws.mean(0) - m.mean(p)) < 4 * se_of_mean(sd, N_DRAWS))
        # variance of the sample variance ~ 2 sd^4 / n for near-normal draws; allow 6 of those
        assert np.all(np.abs(draws.var(0) - sd**2) < 6 * np.sqrt(2 / N_DRAWS) * sd**2 + 1e-4)

    def test_prior_is_configuration_not_state(self):
        s = BetaBernoulli().init_stats(2)
        assert float(s["successes"].sum() + s["failures"].sum()) == 0.0
        assert BetaBernoulli(5.0, 1.0).mean(BetaBernoulli(5.0, 1.0).posterior(s))[0] == 5 / 6

    @pytest.mark.parametrize("kwargs", [{"alpha0": 0.0}, {"beta0": -1.0}, {"alpha0": np.nan}])
    def test_bad_priors(self, kwargs):
        with pytest.raises(ConfigurationError, match=next(iter(kwargs))):
            BetaBernoulli(**kwargs)


class TestNormalInverseGamma:
    def test_conjugate_formulas(self):
        mu0, k0, a0, b0 = 1.0, 2.0, 3.0, 4.0
        m = NormalInverseGamma(mu0, k0, a0, b0)
        r = np.array([2.0, 3.5, 1.0, 4.0, 2.5])
        s = m.init_stats(1)
        m.accumulate(s, np.zeros(5, dtype=int), r)
        p = m.posterior(s)
        n, xbar = len(r), r.mean()
        kn = k0 + n
        mun = (k0 * mu0 + n * xbar) / kn
        an = a0 + n / 2
        bn = b0 + 0.5 * ((r - xbar) ** 2).sum() + k0 * n * (xbar - mu0) ** 2 / (2 * kn)
        np.testing.assert_allclose([p.mu[0], p.kappa[0], p.alpha[0], p.beta[0]],
                                   [mun, kn, an, bn])
        lo, hi = m.interval(p, 0.95)
        t = sps.t(df=2 * an, loc=mun, scale=np.sqrt(bn / (an * kn)))
        np.testing.assert_allclose([lo[0], hi[0]], t.ppf([0.025, 0.975]))

    def test_samples_match_student_t(self):
        m = NormalInverseGamma(0.0, 1.0, 3.0, 2.0)
        s = m.init_stats(2)
        m.accumulate(s, np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 0.5, -1.0]))
        p = m.posterior(s)
        draws = m.sample(p, np.random.default_rng(1), size=N_DRAWS)
        sd = m.std(p)
        assert np.all(np.isfinite(sd))
        assert np.all(np.abs(draws.mean(0) - m.mean(p)) < 4 * se_of_mean(sd, N_DRAWS))
        for k in range(2):
            t = sps.t(df=2 * p.alpha[k], loc=p.mu[k], scale=p.scale[k])
            # the sample's 10% and 90% quantiles agree with the Student-t marginal
            qs = np.quantile(draws[:, k], [0.1, 0.9])
            np.testing.assert_allclose(qs, t.ppf([0.1, 0.9]), atol=0.02 * t.std())


class TestLinearGaussian:
    @pytest.fixture
    def data(self):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 4))
        arms = rng.integers(0, 2, 300)
        W = np.array([[1.0, -0.5, 0.2, 0.0], [0.3, 0.3, -1.0, 0.5]])
        r = np.einsum("nd,nd->n", X, W[arms]) + 0.3 * rng.normal(size=300)
        return X, arms, r

    def test_mean_is_the_ridge_solution(self, data):
        X, arms, r = data
        m = LinearGaussian(n_features=4, prior_precision=[1.0, 2.0, 0.5, 3.0], noise_variance=0.2)
        s = m.init_stats(2)
        m.accumulate(s, arms, r, X)
        p = m.posterior(s)
        lam = np.diag([1.0, 2.0, 0.5, 3.0])
        for a in range(2):
            Xa, ra = X[arms == a], r[arms == a]
            P = lam + Xa.T @ Xa / 0.2
            np.testing.assert_allclose(p.mean[a], np.linalg.solve(P, Xa.T @ ra / 0.2), atol=1e-10)
            cov = p.sqrt_cov[a] @ p.sqrt_cov[a].T
            np.testing.assert_allclose(cov @ P, np.eye(4), atol=1e-10)

    def test_unknown_noise_matches_nig_formulas(self, data):
        X, arms, r = data
        m = LinearGaussian(n_features=4, prior_precision=1.0, unknown_noise=True,
                           noise_a0=2.0, noise_b0=0.5)
        s = m.init_stats(2)
        m.accumulate(s, arms, r, X)
        p = m.posterior(s)
        Xa, ra = X[arms == 1], r[arms == 1]
        P = np.eye(4) + Xa.T @ Xa
        mn = np.linalg.solve(P, Xa.T @ ra)
        np.testing.assert_allclose(p.mean[1], mn, atol=1e-10)
        assert p.noise_a[1] == pytest.approx(2.0 + len(ra) / 2)
        assert p.noise_b[1] == pytest.approx(0.5 + 0.5 * (ra @ ra - mn @ P @ mn))
        # learned noise variance close to the truth 0.09 (b/(a-1) is the posterior mean)
        assert p.noise_b[1] / (p.noise_a[1] - 1) == pytest.approx(0.09, rel=0.3)

    def test_weight_samples_match_posterior(self, data):
        X, arms, r = data
        m = LinearGaussian(n_features=4, noise_variance=0.5)
        s = m.init_stats(2)
        m.accumulate(s, arms[:30], r[:30], X[:30])
        p = m.posterior(s)
        w = m.sample_weights(p, np.random.default_rng(2), size=N_DRAWS)
        cov = p.sqrt_cov[0] @ p.sqrt_cov[0].T
        sd = np.sqrt(np.diag(cov))
        assert np.all(np.abs(w[:, 0].mean(0) - p.mean[0]) < 4 * sd / np.sqrt(N_DRAWS))
        np.testing.assert_allclose(np.cov(w[:, 0].T), cov, atol=0.02 * sd.max() ** 2)

    def test_predictive_samples_match_mean_and_sd(self, data):
        X, arms, r = data
        for m in (LinearGaussian(n_features=4), LinearGaussian(n_features=4, unknown_noise=True)):
            s = m.init_stats(2)
            m.accumulate(s, arms[:40], r[:40], X[:40])
            p = m.posterior(s)
            x = X[0]
            draws = m.sample(p, np.random.default_rng(3), x, size=N_DRAWS)
            sd = m.std(p, x)
            assert np.all(np.abs(draws.mean(0) - m.mean(p, x)) < 4 * sd / np.sqrt(N_DRAWS))
            np.testing.assert_allclose(draws.std(0), sd, rtol=0.03)
            lo, hi = m.interval(p, 0.9, x)
            inside = ((draws > lo) & (draws < hi)).mean(0)
            np.testing.assert_allclose(inside, 0.9, atol=0.005)

    def test_online_updates_equal_batch_posterior(self, data):
        X, arms, r = data
        for m in (LinearGaussian(n_features=4, refresh_every=10_000),
                  LinearGaussian(n_features=4, unknown_noise=True, refresh_every=10_000)):
            batch = m.init_stats(2)
            m.accumulate(batch, arms, r, X)
            s = m.init_stats(2)
            p = m.posterior(s)
            for i in range(len(r)):
                m.accumulate(s, arms[i : i + 1], r[i : i + 1], X[i : i + 1])
                p = m.update_posterior(p, s, int(arms[i]), float(r[i]), X[i])
            full = m.posterior(batch)
            np.testing.assert_allclose(p.mean, full.mean, atol=1e-9)
            np.testing.assert_allclose(p.sqrt_cov @ np.swapaxes(p.sqrt_cov, -1, -2),
                                       full.sqrt_cov @ np.swapaxes(full.sqrt_cov, -1, -2),
                                       atol=1e-12)

    def test_stable_for_d_200(self):
        rng = np.random.default_rng(4)
        d = 200
        m = LinearGaussian(n_features=d, prior_precision=1e-3, noise_variance=1.0)
        s = m.init_stats(1)
        X = rng.normal(size=(500, d)) * np.logspace(-3, 2, d)  # badly scaled features
        w = rng.normal(size=d)
        m.accumulate(s, np.zeros(500, dtype=int), X @ w + rng.normal(size=500), X)
        p = m.posterior(s)
        assert np.all(np.isfinite(p.mean)) and np.all(np.isfinite(p.sqrt_cov))
        P = s["A"][0] + 1e-3 * np.eye(d)
        resid = P @ p.mean[0] - s["b"][0]
        assert np.linalg.norm(resid) <= 1e-8 * np.linalg.norm(s["b"][0]) * np.linalg.cond(P) ** 0.5
        p2 = p
        for _ in range(50):  # online O(d^2) updates stay finite and close to the exact refit
            x = rng.normal(size=d)
            m.accumulate(s, np.array([0]), np.array([x @ w]), x[None])
            p2 = m.update_posterior(p2, s, 0, float(x @ w), x)
        exact = m.posterior(s)
        np.testing.assert_allclose(p2.mean, exact.mean, rtol=1e-6, atol=1e-6)


def test_tutorial_contextual_bug_regression():
    """After a reward of 0 for context x, the posterior prediction for x must not increase.

    The tutorial's update uses the *new* precision in ``Lambda @ mu``; with it the mean never
    drops after a 0 reward. Ours is the exact conjugate update.
    """
    from tsbandit import ContextualThompsonSampling

    rng = np.random.default_rng(0)
    bandit = ContextualThompsonSampling(["a", "b"], n_features=3, prior_variance=1.0,
                                        noise_variance=0.1, seed=1)
    for _ in range(30):
        x = rng.random(3)
        bandit.update("a", x, 1.0)
    for _ in range(50):
        x = rng.random(3)
        before = bandit.arms["a"].expected_reward(x)
        bandit.update("a", x, 0.0)
        after = bandit.arms["a"].expected_reward(x)
        assert after <= before + 1e-12


class TestLogisticLaplace:
    def test_batch_refit_is_the_map_estimate(self):
        rng = np.random.default_rng(5)
        X = np.c_[np.ones(400), rng.normal(size=(400, 2))]
        w = np.array([-1.0, 2.0, -0.5])
        y = (rng.random(400) < 1 / (1 + np.exp(-X @ w))).astype(float)
        m = LogisticLaplace(n_features=3, prior_precision=0.5)
        s = m.init_stats(1)
        m.accumulate(s, np.zeros(400, dtype=int), y, X)
        mode = s["m"][0]
        p = 1 / (1 + np.exp(-X @ mode))
        grad = 0.5 * mode + X.T @ (p - y)
        assert np.max(np.abs(grad)) < 1e-6  # first-order optimality of the MAP
        hess = 0.5 * np.eye(3) + (X * (p * (1 - p))[:, None]).T @ X
        np.testing.assert_allclose(s["H"][0] + 0.5 * np.eye(3), hess, rtol=1e-8)
        assert np.all(np.abs(mode - w) < 4 * np.sqrt(np.diag(np.linalg.inv(hess))))

    def test_single_step_solves_the_one_observation_problem(self):
        m = LogisticLaplace(n_features=2, prior_precision=1.0)
        s1, s2 = m.init_stats(1), m.init_stats(1)
        x, y = np.array([[1.0, 0.5]]), np.array([1.0])
        m.accumulate(s1, np.array([0]), y, x)  # vectorized 1-D Newton path
        m._refit(s2, (0,), y, x, np.ones(1))  # full Newton path
        np.testing.assert_allclose(s1["m"], s2["m"], atol=1e-9)
        np.testing.assert_allclose(s1["H"], s2["H"], atol=1e-9)

    def test_interval_maps_through_the_sigmoid(self):
        m = LogisticLaplace(n_features=2)
        s = m.init_stats(2)
        m.accumulate(s, np.array([0, 0, 1]), np.array([1.0, 1.0, 0.0]), np.ones((3, 2)))
        p = m.posterior(s)
        x = np.ones(2)
        draws = m.sample(p, np.random.default_rng(6), x, size=N_DRAWS)
        lo, hi = m.interval(p, 0.9, x)
        np.testing.assert_allclose(((draws > lo) & (draws < hi)).mean(0), 0.9, atol=0.005)
