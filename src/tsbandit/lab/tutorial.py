"""The tutorial's Part 7 contextual class *as printed* (its mean-update bug included), as a
lab learner, so that the lab can show what that bug costs. Its math is the tutorial's, not the
library's: this is the one learner that keeps its own posterior arrays, on purpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .learners import Learner

__all__ = ["TutorialLinearLearner"]


class TutorialLinearLearner(Learner):
    """The tutorial's ``BayesianLinearArm`` / ``ContextualThompsonSampling`` (Part 7) *as printed*.

    Its update sets ``mu_new = Lambda_new^{-1} (Lambda_new mu_old + r x / s2)``: the old mean
    is multiplied by the *new* precision, so the mean moves by ``Sigma_new x r / s2`` and a
    reward of 0 never lowers it. The correct update uses ``Lambda_old mu_old``. Set
    ``fixed=True`` for the corrected class (the same as ``LinearGaussian`` + Thompson).
    Draws use the predictive ``x^T w ~ N(x^T mu, x^T Sigma x)``, which is the distribution of
    the tutorial's ``context @ multivariate_normal(mu, Sigma)``.
    """

    def __init__(self, n_features: int, prior_variance: float, noise_variance: float,
                 n_trials: int, n_arms: int, rng: np.random.Generator,
                 fixed: bool = False) -> None:
        self.n_lanes = n = n_trials
        self.n_arms = K = n_arms
        self.d = d = n_features
        self.rng = rng
        self.s2 = float(noise_variance)
        self.prior_variance = float(prior_variance)
        self.fixed = fixed
        self.mu = np.zeros((n, K, d))
        self.Sigma = np.broadcast_to(np.eye(d) * prior_variance, (n, K, d, d)).copy()
        self._bi = np.arange(n)
        self._m = np.empty((n, K))
        self._v = np.empty((n, K, d))

    def choose(self, t: int, contexts: np.ndarray | None) -> np.ndarray:
        x = contexts
        assert x is not None
        np.matmul(self.Sigma, x[:, None, :, None], out=self._v[..., None])
        np.matmul(self.mu, x[:, :, None], out=self._m[..., None])
        var = np.maximum(np.einsum("nkd,nd->nk", self._v, x), 0.0)
        return np.argmax(self._m + np.sqrt(var) * self.rng.standard_normal(var.shape), axis=1)

    def exploring(self, contexts: np.ndarray | None, chosen: np.ndarray) -> np.ndarray:
        return np.asarray(self._m[self._bi, chosen] < self._m.max(axis=1))

    def _update(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
                x: np.ndarray) -> None:
        Sig = self.Sigma[lanes, arms]
        v = np.matmul(Sig, x[:, :, None])[:, :, 0]
        c = self.s2 + np.einsum("nd,nd->n", v, x)
        mu = self.mu[lanes, arms]
        target = rewards - np.einsum("nd,nd->n", x, mu) if self.fixed else rewards
        self.mu[lanes, arms] = mu + v * (target / c)[:, None]
        self.Sigma[lanes, arms] = Sig - v[:, :, None] * (v / c[:, None])[:, None, :]

    def observe(self, chosen: np.ndarray, rewards: np.ndarray,
                contexts: np.ndarray | None) -> None:
        assert contexts is not None
        self._update(self._bi, chosen, rewards, contexts)

    def apply(self, lanes: np.ndarray, arms: np.ndarray, rewards: np.ndarray,
              contexts: np.ndarray | None) -> None:
        assert contexts is not None
        for i in range(lanes.shape[0]):  # sequential: the tutorial's update is not additive
            self._update(lanes[i:i + 1], arms[i:i + 1], rewards[i:i + 1], contexts[i:i + 1])

    def final_state(self) -> list[dict[str, Any]]:
        from scipy.special import ndtri

        sd = np.sqrt(np.maximum(np.einsum("...ii->...i", self.Sigma), 0.0))
        half = ndtri(0.975) * sd
        return [{"kind": "linear", "mean": self.mu.copy(), "low": self.mu - half,
                 "high": self.mu + half, "scale": "linear"}]
