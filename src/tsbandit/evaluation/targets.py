"""Target policies: what we want to evaluate, as action probabilities at every logged round.

A target policy turns a log into ``pi_e`` — ``(n, K)``, or ``(n, K, L)`` for a slate log — that
the estimators read. Randomness (Monte Carlo for Thompson sampling) comes from the generator you
pass; callers give a spawned stream so that estimating ``pi_e`` never shifts other draws.

- :class:`UniformPolicy`, :class:`FixedPolicy`: the same distribution every round.
- :class:`ReplayedPolicy`: any tsbandit reward model and selection rule (Thompson sampling,
  greedy, epsilon-greedy, ...). With ``learn=True`` it is *replayed on the log*: its statistics
  start from a prior (or a saved bandit's state) and absorb the logged rounds in time order, in
  batches of ``batch_size`` rounds, so its distribution at round ``i`` depends only on rounds
  before ``i``'s batch, as a policy updated in batches in production would. On a slate log it
  ranks: slot 1 gets the highest score (one posterior draw per arm for Thompson sampling), slot 2
  the next, and so on — the Open Bandit Pipeline's construction of the ``bts`` policy.
- :func:`thompson_policy`, :func:`greedy_policy`, :func:`bandit_policy`: the common ones.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, SerializationError
from ..policies import BetaBernoulli, Greedy, NormalInverseGamma, ThompsonSampling
from ..policies.base import RewardModel
from ..policies.metrics import MetricSet
from ..policies.rules import SelectionRule
from ..policies.stats import Stats
from .data import LoggedData

__all__ = [
    "FixedPolicy",
    "ReplayedPolicy",
    "TargetPolicy",
    "UniformPolicy",
    "bandit_policy",
    "greedy_policy",
    "ranking_probabilities",
    "thompson_policy",
]

_CHUNK = 4_000_000  # elements per Monte-Carlo block (n_sim x rows x K)


class TargetPolicy(ABC):
    """A policy to evaluate: gives its action probabilities at each logged round."""

    name: str = "target"

    @abstractmethod
    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        """``(K,)``, ``(n, K)`` or ``(n, K, L)`` action probabilities for ``data``."""


class UniformPolicy(TargetPolicy):
    """Every action equally likely (at every slot)."""

    name = "uniform"

    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        return np.full(data.n_actions, 1.0 / data.n_actions)


class FixedPolicy(TargetPolicy):
    """The same distribution every round: ``(K,)``, or ``(K, L)`` per slot."""

    name = "fixed"

    def __init__(self, probs: Any) -> None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim not in (1, 2) or not np.isfinite(p).all() or (p < 0).any():
            raise ConfigurationError("probs must be a (K,) or (K, L) array of probabilities")
        if np.abs(p.sum(axis=0) - 1.0).max() > 1e-6:
            raise ConfigurationError("probs must sum to 1 (over actions, for every slot)")
        self.probs = p

    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        p = self.probs
        if p.shape[0] != data.n_actions:
            raise ConfigurationError(f"probs has {p.shape[0]} actions, the log {data.n_actions}")
        if p.ndim == 1:
            return p
        if p.shape[1] != data.n_positions:
            raise ConfigurationError(f"probs has {p.shape[1]} slots, the log {data.n_positions}")
        return np.broadcast_to(p, (data.n_rounds, *p.shape))


def ranking_probabilities(scores: np.ndarray, n_slots: int) -> np.ndarray:
    """Exact slot probabilities ``(*batch, K, L)`` of ranking by ``scores`` ``(*batch, K)``
    with ties broken uniformly at random: an arm in a tie group of ``g`` arms occupying ranks
    ``[above, above + g)`` is at each of those ranks with probability ``1/g``.

    >>> ranking_probabilities(np.array([0.2, 0.9, 0.2]), 2).tolist()
    [[0.0, 0.5], [1.0, 0.0], [0.0, 0.5]]
    """
    s = np.asarray(scores, dtype=np.float64)
    above = (s[..., None, :] > s[..., :, None]).sum(axis=-1)
    group = (s[..., None, :] == s[..., :, None]).sum(axis=-1)
    k = np.arange(n_slots)
    inside = (k >= above[..., None]) & (k < (above + group)[..., None])
    return np.where(inside, 1.0 / group[..., None], 0.0)


class ReplayedPolicy(TargetPolicy):
    """A tsbandit model and selection rule, optionally learning from the log as it replays.

    Parameters
    ----------
    model, rule
        Reward model and selection rule (e.g. ``BetaBernoulli()``, ``ThompsonSampling()``).
    stats
        Starting statistics over the log's ``K`` actions (default: none, the model's prior).
    learn
        Absorb the logged rounds in time order (batches of ``batch_size``).
    batch_size
        Rounds per update (default: ``ceil(n / 20)``).
    n_sim
        Monte-Carlo draws per distribution for stochastic rules.
    name
        Label in reports.
    """

    def __init__(self, model: RewardModel, rule: SelectionRule, *, stats: Stats | None = None,
                 learn: bool = True, batch_size: int | None = None, n_sim: int = 10_000,
                 name: str = "replayed") -> None:
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigurationError(f"batch_size == {batch_size!r}, must be >= 1")
        if int(n_sim) < 1:
            raise ConfigurationError(f"n_sim == {n_sim!r}, must be >= 1")
        self.model, self.rule, self.stats = model, rule, stats
        self.learn, self.batch_size, self.n_sim, self.name = learn, batch_size, int(n_sim), name
        #: ``(n, M)`` observations of a several-metric model's metrics per logged round (NaN:
        #: not observed), learned instead of ``data.rewards`` (see :func:`bandit_policy`)
        self.observed: np.ndarray | None = None

    def _probs(self, stats: Stats, contexts: np.ndarray | None, n_slots: int,
               rng: np.random.Generator) -> np.ndarray:
        """``(m, K, L)`` for contexts ``(m, d)``, or ``(K, L)`` context-free."""
        post = self.model.posterior(stats)
        k = stats.n_arms
        if self.rule.deterministic:
            return ranking_probabilities(self.rule.scores(self.model, post, stats, rng, contexts),
                                         n_slots)
        if n_slots == 1:
            return self.rule.action_probabilities(self.model, post, stats, rng, contexts, None,
                                                  self.n_sim)[..., None]
        m = 1 if contexts is None else contexts.shape[0]
        counts = np.zeros(m * k * n_slots)
        step = max(1, _CHUNK // max(1, m * k))
        cell = (np.arange(m)[None, :, None] * k) * n_slots + np.arange(n_slots)  # (1, m, L)
        done = 0
        while done < self.n_sim:
            size = min(step, self.n_sim - done)
            chosen = self.rule.choose(self.model, post, stats, rng, contexts, None, n_slots,
                                      size=size).reshape(size, m, n_slots)
            counts += np.bincount((cell + chosen * n_slots).ravel(), minlength=counts.size)
            done += size
        probs = counts.reshape(m, k, n_slots) / self.n_sim
        return probs[0] if contexts is None else probs

    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        if not isinstance(rng, np.random.Generator) and not self.rule.deterministic:
            raise ConfigurationError(f"policy {self.name!r} draws: pass rng=default_rng(seed)")
        rng = rng if rng is not None else np.random.default_rng(0)  # unused by deterministic
        k, n, n_slots = data.n_actions, data.n_rounds, data.n_positions
        stats = self.model.init_stats(k) if self.stats is None else self.stats.copy()
        if stats.n_arms != k:
            raise ConfigurationError(f"statistics have {stats.n_arms} arms, the log {k}")
        x_all = data.contexts if self.model.contextual else None
        if self.model.contextual and x_all is None:
            raise ConfigurationError(f"policy {self.name!r} needs a log with contexts")
        size = self.batch_size or max(1, -(-n // 20))
        starts = range(0, n, size) if self.learn else range(0, n, n)
        out = np.empty((n, k, n_slots))
        for start in starts:
            stop = min(n, start + size) if self.learn else n
            if x_all is None:
                out[start:stop] = self._probs(stats, None, n_slots, rng)
            else:
                rows_per = max(1, _CHUNK // max(1, self.n_sim * k))
                for r0 in range(start, stop, rows_per):
                    r1 = min(stop, r0 + rows_per)
                    out[r0:r1] = self._probs(stats, x_all[r0:r1], n_slots, rng)
            if self.learn:
                x = None if x_all is None else x_all[start:stop]
                rewards = (self.model.check_rewards(data.rewards[start:stop])
                           if self.observed is None else self.observed[start:stop])
                self.model.accumulate(stats, data.actions[start:stop], rewards, x)
        return out[..., 0] if n_slots == 1 else out


def _binary(data: LoggedData) -> bool:
    return bool(np.isin(data.rewards, (0.0, 1.0)).all())


def _prior_stats(model: BetaBernoulli, alpha: Any, beta: Any, k: int) -> Stats | None:
    """Per-arm Beta priors as pseudo-counts over the model's own prior."""
    if np.ndim(alpha) == 0 and np.ndim(beta) == 0:
        if (float(alpha), float(beta)) == (model.alpha0, model.beta0):
            return None
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (k,))
    b = np.broadcast_to(np.asarray(beta, dtype=np.float64), (k,))
    if (a <= 0).any() or (b <= 0).any():
        raise ConfigurationError("prior alpha and beta must be > 0")
    stats = model.init_stats(k)
    stats["successes"][:] = a - model.alpha0
    stats["failures"][:] = b - model.beta0
    return stats


class _ModelChoice(TargetPolicy):
    """Picks Beta-Bernoulli for 0/1 rewards, else Normal-Inverse-Gamma, when the log is seen."""

    def __init__(self, rule: SelectionRule, name: str, alpha: Any, beta: Any,
                 **kwargs: Any) -> None:
        self.rule, self.name, self.alpha, self.beta, self.kwargs = rule, name, alpha, beta, kwargs

    def policy(self, data: LoggedData) -> ReplayedPolicy:
        """The concrete :class:`ReplayedPolicy` used for this log."""
        if _binary(data):
            model: RewardModel = BetaBernoulli()
            stats = _prior_stats(BetaBernoulli(), self.alpha, self.beta, data.n_actions)
        else:
            model, stats = NormalInverseGamma(mu0=float(data.rewards.mean())), None
        return ReplayedPolicy(model, self.rule, stats=stats, name=self.name, **self.kwargs)

    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        return self.policy(data).action_dist(data, rng)


def thompson_policy(prior_alpha: Any = 1.0, prior_beta: Any = 1.0, *, learn: bool = True,
                    batch_size: int | None = None, n_sim: int = 10_000) -> TargetPolicy:
    """Thompson sampling replayed on the log (Beta-Bernoulli for 0/1 rewards, else NIG).

    ``prior_alpha``/``prior_beta`` are scalars or per-action arrays (e.g. the Open Bandit
    Dataset's production priors from :func:`~.obd.load_obd_prior`).
    """
    return _ModelChoice(ThompsonSampling(), "thompson", prior_alpha, prior_beta, learn=learn,
                        batch_size=batch_size, n_sim=n_sim)


def greedy_policy(prior_alpha: Any = 1.0, prior_beta: Any = 1.0, *, learn: bool = True,
                  batch_size: int | None = None) -> TargetPolicy:
    """The arm(s) with the highest posterior mean, replayed on the log (ties shared)."""
    return _ModelChoice(Greedy(), "greedy", prior_alpha, prior_beta, learn=learn,
                        batch_size=batch_size)


def bandit_policy(state: str | Path | Mapping[str, Any], data: LoggedData, *,
                  learn: bool = False, batch_size: int | None = None,
                  n_sim: int | None = None,
                  observed: Mapping[str, np.ndarray] | None = None) -> ReplayedPolicy:
    """A saved :class:`~tsbandit.bandit.Bandit` (its ``to_dict()`` JSON, a file or a dict).

    The bandit's arms are matched to the log's actions by name; every bandit arm must be in the
    log (actions the bandit lacks get probability 0). ``learn=True`` continues learning on the
    log from the saved statistics: a bandit with several metrics learns each metric from
    ``observed`` (``{metric: (n,)}`` per logged round, NaN where not observed; a
    :class:`~.metric_log.MetricLog`'s ``observed``), and its constrained or Pareto rule is
    replayed too.
    """
    from ..bandit import Bandit

    if isinstance(state, (str, Path)):
        try:
            state = json.loads(Path(state).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SerializationError(f"cannot read bandit state {state}: {exc}") from None
    assert isinstance(state, Mapping)
    bandit = Bandit.from_dict(state)
    idx = data.action_index(bandit.arms)
    several = isinstance(bandit.model, MetricSet)
    kinds = ("thompson", "greedy", "epsilon_greedy", "softmax", "random")
    if bandit.rule.kind not in kinds + (("constrained", "pareto") if several else ()):
        raise ConfigurationError(f"rule {bandit.rule.kind!r} has no action probabilities here")
    saved = bandit.stats
    full = bandit.model.init_stats(data.n_actions)
    rest = np.setdiff1d(np.arange(data.n_actions), idx)
    for key in full:
        full[key][idx] = saved[key]
    policy = _Restricted(bandit.model, bandit.rule, stats=full, learn=learn,
                         batch_size=batch_size, n_sim=n_sim or bandit.propensity_draws,
                         name="bandit", excluded=rest)
    if isinstance(bandit.model, MetricSet) and learn:
        policy.observed = _observed(bandit.model, observed, data.n_rounds)
    return policy


def _observed(model: MetricSet, observed: Mapping[str, np.ndarray] | None, n: int
              ) -> np.ndarray:
    """``(n, M)`` validated observations in the model's metric order (NaN: not observed)."""
    if observed is None:
        raise ConfigurationError(
            "a bandit with several metrics learns each metric: pass observed= (a MetricLog's "
            "observed), or learn=False")
    out = np.full((n, len(model.names)), np.nan)
    for i, (name, m) in enumerate(zip(model.names, model.models, strict=True)):
        if name in observed:
            col = np.asarray(observed[name], dtype=np.float64)
            if col.shape != (n,):
                raise ConfigurationError(f"observed[{name!r}] has shape {col.shape}, "
                                         f"expected ({n},)")
            seen = ~np.isnan(col)
            out[seen, i] = m.check_rewards(col[seen])
    return out


class _Restricted(ReplayedPolicy):
    """A replayed policy that never picks the log's actions in ``excluded``."""

    def __init__(self, *args: Any, excluded: np.ndarray, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.excluded = excluded

    def _probs(self, stats: Stats, contexts: np.ndarray | None, n_slots: int,
               rng: np.random.Generator) -> np.ndarray:
        if self.excluded.size == 0:
            return super()._probs(stats, contexts, n_slots, rng)
        keep = np.setdiff1d(np.arange(stats.n_arms), self.excluded)
        sub = stats.take_arms(keep)
        p = super()._probs(sub, contexts, n_slots, rng)
        out = np.zeros((*p.shape[:-2], stats.n_arms, n_slots))
        out[..., keep, :] = p
        return out
