"""Synthetic logs with a known answer, to check that estimators and intervals can be trusted.

:class:`SyntheticBandit` is a contextual Bernoulli environment over a finite set of ``M`` context
vectors (drawn uniformly each round), so the value of any policy given as an ``(M, K)`` table of
action probabilities is an exact sum, not a simulation. Expected rewards are linear in the
context, ``p(x, a) = c_a + x . beta_a`` clipped to [0.02, 0.98] (so the ridge reward model is
well specified up to the clipping), or logistic (misspecified for it).

Logs can be drawn for many replications at once (:meth:`SyntheticBandit.simulate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from .data import LoggedData

__all__ = ["SyntheticBandit", "epsilon_greedy_table", "softmax_table"]


def softmax_table(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``(M, K)`` softmax of ``scores / temperature`` along actions."""
    z = np.asarray(scores, dtype=np.float64) / float(temperature)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def epsilon_greedy_table(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """``(M, K)`` epsilon-greedy probabilities around the argmax of ``scores``."""
    s = np.asarray(scores, dtype=np.float64)
    k = s.shape[-1]
    best = np.eye(k)[s.argmax(axis=-1)]
    return (1.0 - epsilon) * best + epsilon / k


@dataclass(frozen=True)
class SyntheticBandit:
    """A contextual Bernoulli bandit with exact policy values.

    Attributes
    ----------
    contexts
        ``(M, d)`` the possible context vectors (each round draws one uniformly).
    probs
        ``(M, K)`` expected reward of each action in each context.
    """

    contexts: np.ndarray
    probs: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, n_actions: int = 5, n_features: int = 3,
             n_contexts: int = 40, link: str = "linear") -> SyntheticBandit:
        """A random environment; ``link`` is ``"linear"`` or ``"logistic"``."""
        x = rng.normal(size=(n_contexts, n_features))
        base = rng.uniform(0.2, 0.6, size=n_actions)
        coef = rng.normal(scale=0.06, size=(n_actions, n_features))
        if link == "linear":
            p = base + x @ coef.T
        elif link == "logistic":
            logits = np.log(base / (1 - base)) + x @ (4.0 * coef).T
            p = 1.0 / (1.0 + np.exp(-logits))
        else:
            raise ConfigurationError(f"link == {link!r}, must be 'linear' or 'logistic'")
        return cls(x, np.clip(p, 0.02, 0.98))

    @property
    def n_actions(self) -> int:
        """Number of actions ``K``."""
        return int(self.probs.shape[1])

    def value(self, table: np.ndarray) -> float:
        """Exact expected reward per round of a policy given as an ``(M, K)`` table."""
        return float((np.asarray(table) * self.probs).sum(axis=1).mean())

    def simulate(self, behavior: np.ndarray, n_rounds: int, rng: np.random.Generator,
                 n_logs: int = 1) -> tuple[list[LoggedData], np.ndarray]:
        """Draw ``n_logs`` independent logs of ``n_rounds`` rounds under ``behavior`` ``(M, K)``.

        Returns the logs and the ``(n_logs, n_rounds)`` context ids (index rows of a target
        table with them: ``target[ids[j]]`` is log ``j``'s ``pi_e``).
        """
        m, k = self.probs.shape
        ids = rng.integers(0, m, size=(n_logs, n_rounds))
        cdf = np.cumsum(behavior, axis=1)[ids]  # (R, n, K)
        u = rng.random((n_logs, n_rounds, 1)) * cdf[..., -1:]
        actions = (cdf > u).argmax(axis=-1)
        rewards = (rng.random((n_logs, n_rounds)) < self.probs[ids, actions]).astype(np.float64)
        props = behavior[ids, actions]
        logs = [LoggedData(actions[j], rewards[j], props[j], k, contexts=self.contexts[ids[j]])
                for j in range(n_logs)]
        return logs, ids
