"""Sample-ratio mismatch (SRM): is the observed traffic split the one that was intended?

A Pearson chi-square goodness-of-fit test of the users per arm against the intended split.
An SRM means the assignment or the logging is broken (bots, redirects, a crashing variant), and
no comparison of the arms can be trusted until it is explained. The conventional flag is
``p < 0.001`` (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments", KDD): strict, because the check runs on every experiment, and real SRMs usually
give p-values far smaller.

An adaptive policy (a bandit) has no fixed split: its intended allocation changes with every
decision. :func:`srm_check_adaptive` tests the observed allocation of a two-arm bandit against
the allocation its own logged propensities imply (see there; the obvious shortcut, summing the
logged propensities per arm, is wrong and is explained there too), and
:func:`srm_check_allocation` any number of arms against each decision's logged probabilities of
every arm.

Examples
--------
>>> srm_check([5000, 5000]).mismatch
False
>>> r = srm_check([5000, 4600])
>>> r.mismatch, round(r.p_value, 5)
(True, 4e-05)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._scipy import chdtrc
from ..errors import ConfigurationError

__all__ = ["SRMResult", "srm_check", "srm_check_adaptive", "srm_check_allocation"]


@dataclass(frozen=True)
class SRMResult:
    """Chi-square statistic, p-value and flag (``p_value < threshold``); arrays are ``(K,)``.

    ``method`` is ``"split"`` (Pearson test against a fixed split, :func:`srm_check`) or
    ``"propensity"`` (against the allocation implied by logged propensities,
    :func:`srm_check_adaptive`).
    """

    statistic: float
    p_value: float
    dof: int
    mismatch: bool
    threshold: float
    observed: np.ndarray
    expected: np.ndarray
    method: str = "split"

    def to_dict(self) -> dict[str, Any]:
        return {"status": "mismatch" if self.mismatch else "ok", "method": self.method,
                "statistic": self.statistic if np.isfinite(self.statistic) else None,
                "p_value": self.p_value, "dof": self.dof,
                "threshold": self.threshold, "observed": self.observed.tolist(),
                "expected": self.expected.tolist()}


def srm_check(observed: Sequence[float] | np.ndarray,
              intended_split: Sequence[float] | np.ndarray | None = None, *,
              threshold: float = 0.001) -> SRMResult:
    """Chi-square test of observed users per arm against the intended split.

    Parameters
    ----------
    observed
        ``(K,)`` users (or sessions) assigned to each arm, ``K >= 2``.
    intended_split
        ``(K,)`` positive weights (need not sum to 1; ``[50, 50]`` works). Default: equal.
    threshold
        Flag a mismatch when ``p_value < threshold``.
    """
    try:
        obs = np.asarray(observed, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError(f"observed must be numbers, got {observed!r}") from None
    if obs.ndim != 1 or obs.size < 2:
        raise ConfigurationError(f"observed needs counts for at least 2 arms, got {obs.tolist()}")
    if not np.isfinite(obs).all() or (obs < 0).any():
        raise ConfigurationError(f"observed counts must be finite and >= 0, got {obs.tolist()}")
    total = float(obs.sum())
    if total <= 0:
        raise ConfigurationError("observed counts are all zero: nothing to check")
    if intended_split is None:
        w = np.ones_like(obs)
    else:
        try:
            w = np.asarray(intended_split, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"intended_split must be numbers, got {intended_split!r}") from None
        if w.shape != obs.shape:
            raise ConfigurationError(
                f"intended_split has {w.size} weights for {obs.size} arms")
        if not np.isfinite(w).all() or (w <= 0).any():
            raise ConfigurationError(
                f"intended_split weights must be finite and > 0, got {w.tolist()}")
    _check_threshold(threshold)
    expected = total * w / w.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    dof = obs.size - 1
    p = float(chdtrc(dof, stat))
    return SRMResult(stat, p, dof, p < threshold, float(threshold), obs, expected)


def _shared_estimates(mc_draws: int, groups: Any, chosen: np.ndarray, pi: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct Monte-Carlo estimates ``(G, K)`` among the rows of ``pi`` ``(n, K)`` and how
    many decisions share each: decisions of one group (model version) with the same estimate
    share it; without ``groups`` every decision has its own."""
    if isinstance(mc_draws, bool) or int(mc_draws) != mc_draws or mc_draws < 1:
        raise ConfigurationError(f"mc_draws == {mc_draws!r}, must be an integer >= 1")
    if groups is None:
        return pi, np.ones(pi.shape[0])
    try:
        g = np.asarray(groups, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError("groups must be numbers (e.g. model versions)") from None
    if g.shape != chosen.shape:
        raise ConfigurationError(f"groups {g.shape} must match chosen {chosen.shape}")
    keys, counts = np.unique(np.column_stack([g, pi]), axis=0, return_counts=True)
    return keys[:, 1:], counts.astype(np.float64)


def _check_threshold(threshold: float) -> None:
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigurationError(f"threshold == {threshold!r}, must be in (0, 1)")


def srm_check_adaptive(chosen: Sequence[int] | np.ndarray,
                       propensities: Sequence[float] | np.ndarray, *,
                       groups: Sequence[float] | np.ndarray | None = None,
                       mc_draws: int | None = None,
                       threshold: float = 0.001) -> SRMResult:
    """SRM check of a two-arm adaptive policy against the allocation it logged.

    Decision ``i`` chose arm ``chosen[i]`` (0 or 1) with logged probability
    ``propensities[i] = pi_i(chosen[i])``. With two arms that one number is the whole
    distribution: ``pi_i(other) = 1 - propensities[i]``. So the expected allocation of arm 1 is
    ``E = sum_i pi_i(1)`` and ``N_1 - E`` is a martingale (each ``pi_i`` may depend on all
    earlier outcomes) with predictable variance ``V = sum_i pi_i(1) (1 - pi_i(1))``; by the
    martingale central limit theorem ``(N_1 - E)^2 / V`` is chi-square with 1 degree of freedom
    when the assignment and its logging are right. With a constant ``pi = 1/2`` this is exactly
    Pearson's test of a 50/50 split.

    Why not "sum the logged propensities per arm" as the intended split? Only the chosen arm's
    propensity is logged, so ``sum_{i: chosen[i] = a} pi_i(a)`` estimates ``sum_i pi_i(a)^2``,
    not the expected count ``sum_i pi_i(a)``; under a 50/50 split it is ``N_a / 2``, and the
    normalized "split" equals the observed one whatever happened: a check that cannot fail.

    What it detects: decisions dropped or duplicated for one arm, assignment that does not follow
    the policy, wrong propensities. A lost decision of an arm the policy chose with probability
    ``pi`` moves ``N - E`` by only ``1 - pi``: losses of the favoured arm are nearly invisible
    (as they are to any test on counts).

    Monte-Carlo propensities (Thompson sampling: ``propensity_draws`` posterior draws, floored
    at ``1 / draws``) are unbiased but noisy, and the engine reuses one estimate for every
    decision made from the same posterior (one model version). An error shared by ``m``
    decisions moves ``E`` by ``m`` times it, so with ``mc_draws`` the variance gains
    ``sum_g m_g^2 pi_g (1 - pi_g) / mc_draws`` over groups of decisions that share an estimate
    (``groups``, e.g. the model version; decisions are grouped by group *and* propensity, so
    two workers' estimates at one version stay apart). Without it the check over-flags logs
    with many decisions per version (measured in ``tests/experiments/test_srm.py``).

    Parameters
    ----------
    chosen
        ``(n,)`` arm index (0 or 1) of every decision.
    propensities
        ``(n,)`` logged probability, in [0, 1], of the chosen arm.
    groups
        ``(n,)`` numeric id of the estimate each propensity came from (the decision's model
        version); ``None``: every decision has its own estimate.
    mc_draws
        Draws behind each Monte-Carlo propensity; ``None`` when the propensities are exact
        (epsilon-greedy, softmax, uniform, greedy rules).
    threshold
        Flag a mismatch when ``p_value < threshold``.

    Returns
    -------
    SRMResult
        ``observed`` ``[N_0, N_1]``, ``expected`` ``[n - E, E]``, ``dof == 1``,
        ``method == "propensity"``.

    Examples
    --------
    >>> r = srm_check_adaptive([0, 1, 1, 1] * 250, [0.5, 0.5, 0.5, 0.5] * 250)
    >>> r.expected.tolist(), r.mismatch
    ([500.0, 500.0], True)
    """
    _check_threshold(threshold)
    try:
        a = np.asarray(chosen, dtype=np.float64)
        p = np.asarray(propensities, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError("chosen and propensities must be numbers") from None
    if a.ndim != 1 or p.shape != a.shape:
        raise ConfigurationError(
            f"chosen {a.shape} and propensities {p.shape} must be 1-d of one length")
    if a.size == 0:
        raise ConfigurationError("no decisions: nothing to check")
    if not np.isin(a, (0.0, 1.0)).all():
        raise ConfigurationError("chosen must hold arm indices 0 or 1 (two arms)")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ConfigurationError("propensities must be probabilities in [0, 1]")
    pi1 = np.where(a == 1.0, p, 1.0 - p)  # probability of arm 1 at each decision
    n1, e1 = float(a.sum()), float(pi1.sum())
    var = float(np.sum(pi1 * (1.0 - pi1)))
    if mc_draws is not None:
        shared, m = _shared_estimates(mc_draws, groups, a, pi1[:, None])
        var += float(np.sum(m * m * shared[:, 0] * (1.0 - shared[:, 0]))) / float(mc_draws)
    gap = n1 - e1
    if var > 1e-12:
        stat = gap * gap / var
        p_value = float(chdtrc(1, stat))
    else:  # a deterministic policy: the counts are known exactly
        stat, p_value = (0.0, 1.0) if abs(gap) < 1e-6 else (float("inf"), 0.0)
    n = float(a.size)
    return SRMResult(float(stat), p_value, 1, p_value < threshold, float(threshold),
                     np.array([n - n1, n1]), np.array([n - e1, e1]), "propensity")


def srm_check_allocation(chosen: Sequence[int] | np.ndarray,
                         probabilities: Sequence[Sequence[float]] | np.ndarray, *,
                         groups: Sequence[float] | np.ndarray | None = None,
                         mc_draws: int | None = None,
                         threshold: float = 0.001) -> SRMResult:
    """SRM check of a K-arm adaptive policy against the allocation it logged for every arm.

    Decision ``i`` chose arm ``chosen[i]`` when the policy's probabilities of the arms were
    ``probabilities[i]`` (a row summing to 1). As in :func:`srm_check_adaptive`, ``D = N - E``
    with ``E = sum_i pi_i`` is a vector martingale with predictable covariance
    ``V = sum_i (diag(pi_i) - pi_i pi_i^T)``, so ``D^T V^+ D`` is chi-square with
    ``rank(V)`` degrees of freedom (``K - 1`` when every arm had a chance) when assignment and
    logging are right; with two arms it is exactly :func:`srm_check_adaptive`. ``mc_draws``
    adds the covariance of Monte-Carlo estimates shared by the decisions of one group (a
    multinomial average of ``mc_draws`` draws: ``m^2 (diag(pi) - pi pi^T) / mc_draws`` for
    ``m`` decisions sharing it).

    >>> pi = [[0.2, 0.3, 0.5]] * 3000
    >>> srm_check_allocation([0] * 600 + [1] * 900 + [2] * 1500, pi).mismatch
    False
    >>> srm_check_allocation([0] * 750 + [1] * 900 + [2] * 1350, pi).mismatch
    True
    """
    _check_threshold(threshold)
    try:
        a = np.asarray(chosen, dtype=np.float64)
        pi = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigurationError("chosen and probabilities must be numbers") from None
    if a.ndim != 1 or pi.ndim != 2 or pi.shape[0] != a.size:
        raise ConfigurationError(
            f"chosen {a.shape} must be (n,) and probabilities {pi.shape} (n, K)")
    n, k = pi.shape
    if n == 0:
        raise ConfigurationError("no decisions: nothing to check")
    if k < 2:
        raise ConfigurationError("probabilities need at least 2 arms")
    if not np.isin(a, np.arange(k)).all():
        raise ConfigurationError(f"chosen must hold arm indices 0..{k - 1}")
    if not np.isfinite(pi).all() or (pi < 0).any() or (pi > 1).any():
        raise ConfigurationError("probabilities must be in [0, 1]")
    if not np.allclose(pi.sum(axis=1), 1.0, rtol=0.0, atol=1e-6):
        raise ConfigurationError("each row of probabilities must sum to 1")
    observed = np.bincount(a.astype(np.int64), minlength=k).astype(np.float64)
    expected = pi.sum(axis=0)
    cov = np.diag(expected) - pi.T @ pi
    if mc_draws is not None:
        shared, m = _shared_estimates(mc_draws, groups, a, pi)
        w = (m * m)[:, None]
        cov += (np.diag((w * shared).sum(axis=0)) - (shared * w).T @ shared) / float(mc_draws)
    # V is singular (D sums to 0): the statistic in the eigenbasis of its non-null space
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > 1e-9 * max(float(vals.max()), 1e-300)
    gap = observed - expected
    dof = int(keep.sum())
    # along a direction V does not vary in (an arm the policy never gave a chance), the counts
    # are fixed: any gap there is a mismatch outright
    if np.abs(vecs[:, ~keep].T @ gap).max(initial=0.0) > 1e-6 * n:
        stat, p_value = float("inf"), 0.0
    elif dof == 0:  # a deterministic policy, and the counts are what it fixed
        stat, p_value = 0.0, 1.0
    else:
        z = vecs[:, keep].T @ gap
        stat = float(np.sum(z * z / vals[keep]))
        p_value = float(chdtrc(dof, stat))
    return SRMResult(stat, p_value, dof, p_value < threshold, float(threshold), observed,
                     expected, "propensity")
