"""The vectorized runner: every trial of every policy advances in lock-step as arrays.

Each round the environment draws one :class:`~.environments.Block` row — a context and a reward
draw per trial — and *every* policy meets exactly those customers and those draws (common random
numbers): differences between policies are paired, not blurred by different luck. Each policy
also has its own random stream, derived from the seed and its name, so a policy's results do not
depend on which other policies run beside it.

Per round and per policy the runner records the expected regret of the pulled arm (the oracle's
expected reward minus the pulled arm's, as the tutorial does), the realized reward, whether the
decision was exploratory (the pulled arm is not the one with the highest posterior mean), and
the pull itself; curves are kept on a grid of rounds, so memory stays ``O(grid * trials)``.

Examples
--------
>>> from tsbandit.lab import BernoulliArms, make_policy, simulate
>>> env = BernoulliArms([0.03, 0.06])
>>> res = simulate(env, [make_policy("ts", env)], n_trials=8, n_rounds=200, seed=1)
>>> res.policies["ts"].final_regret.shape
(8,)
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .environments import Environment
from .lanes import build_learners
from .learners import Learner
from .policies import Policy

__all__ = ["PolicyRun", "SimulationResult", "policy_seed", "simulate"]


@dataclass
class PolicyRun:
    """Everything recorded for one policy (arrays over trials ``n`` and the grid ``G``).

    Attributes
    ----------
    regret
        ``(G, n)`` cumulative expected regret after each grid round.
    explore_regret
        ``(G, n)`` the part of it incurred by exploratory decisions.
    alloc
        ``(G, K)`` cumulative pulls of each arm, summed over trials.
    final_regret, rewards, optimal
        ``(n,)`` cumulative regret, realized reward and number of optimal pulls at the end.
    pulls
        ``(n, K)`` pulls per arm.
    state
        Final posterior arrays (``kind`` "beta": ``alpha``/``beta`` ``(n, K)``; "linear":
        weight ``mean``/``low``/``high`` ``(n, K, d)``).
    """

    name: str
    description: str
    config: dict[str, Any]
    regret: np.ndarray
    explore_regret: np.ndarray
    alloc: np.ndarray
    final_regret: np.ndarray
    rewards: np.ndarray
    optimal: np.ndarray
    pulls: np.ndarray
    wall_seconds: float
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimulationResult:
    """The outcome of :func:`simulate` (or of a scenario, which may merge several runs)."""

    scenario: str
    environment: dict[str, Any]
    arm_names: tuple[str, ...]
    feature_names: tuple[str, ...] | None
    rounds: int
    trials: int
    seed: int
    grid: np.ndarray
    best_arm: int
    oracle_reward: np.ndarray
    uniform_reward: np.ndarray
    policies: dict[str, PolicyRun]
    oracle_coefficients: np.ndarray | None = None
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def merge(self, other: SimulationResult, rename: Callable[[str], str] | None = None
              ) -> SimulationResult:
        """A result holding this one's policies and ``other``'s (same world, same seed)."""
        if (other.rounds, other.trials, other.seed) != (self.rounds, self.trials, self.seed):
            raise ConfigurationError("can only merge runs with the same rounds, trials and seed")
        pols = dict(self.policies)
        for name, run in other.policies.items():
            new = rename(name) if rename else name
            if new in pols:
                raise ConfigurationError(f"duplicate policy name {new!r} when merging runs")
            run.name = new
            pols[new] = run
        self.policies = pols
        self.wall_seconds += other.wall_seconds
        return self


def policy_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The seed of a policy's own stream: a function of the run seed and the policy name."""
    return np.random.SeedSequence(seed, spawn_key=(1, zlib.crc32(name.encode("utf-8"))))


def _grid(n_rounds: int, points: int, checkpoints: Sequence[int]) -> np.ndarray:
    base = np.linspace(1, n_rounds, num=min(n_rounds, max(points, 2))).round().astype(np.int64)
    extra = [c for c in checkpoints if 1 <= c <= n_rounds]
    return np.unique(np.concatenate([base, np.asarray(extra, dtype=np.int64), [n_rounds]]))


class _Unit:
    """A learner plus the runner's per-lane bookkeeping."""

    def __init__(self, learner: Learner, policies: list[Policy], n: int, K: int,
                 grid: np.ndarray) -> None:
        self.learner = learner
        self.policies = policies
        self.P = P = learner.n_policies
        self.L = L = P * n
        self.n, self.K = n, K
        self.off = (np.arange(L) % n) * K
        self.lane_policy = np.arange(L) // n
        self.policy_arm = self.lane_policy * K        # + arm: the (policy, arm) cell
        self.lane_arm = np.arange(L) * K              # + arm: the (lane, arm) cell
        G = grid.shape[0]
        self.regret = np.zeros((G, L))
        self.explore = np.zeros((G, L))
        self.alloc = np.zeros((G, P, K))
        self.run_regret = np.zeros(L)
        self.run_explore = np.zeros(L)
        self.run_alloc = np.zeros((P, K))
        self.rewards = np.zeros(L)
        self.optimal = np.zeros(L)
        self.pulls = np.zeros(L * K)
        self.seconds = 0.0
        self.buckets: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def allocate(self, size: int) -> None:
        self.rew_buf = np.empty((size, self.L))
        self.ch_buf = np.empty((size, self.L), dtype=np.int64)
        self.ex_buf = np.zeros((size, self.L), dtype=bool)

    def close_block(self, rows: int, start: int, grid: np.ndarray, gpos: np.ndarray,
                    regret_if: np.ndarray) -> None:
        """Fold the block's ``rows`` rounds into the curves, totals and pull counts.

        Curves are only kept at grid rounds, so the block is summed by segments that end at
        its grid rows (and at its last row): ``reduceat`` over the rounds, then a cumulative
        sum over the few segments."""
        P, K, L = self.P, self.K, self.L
        ch = self.ch_buf[:rows]
        # regret of each pull: the (rows, n * K) table gathered at lane-major (trial, arm) cells
        cell = ch + self.off
        cell += (np.arange(rows) * (self.n * K))[:, None]
        reg = np.ascontiguousarray(regret_if[:rows]).reshape(-1).take(cell)   # (rows, L)
        sel = gpos - start - 1                     # grid rounds that end inside this block
        ends = np.union1d(sel, [rows - 1])
        starts = np.concatenate(([0], ends[:-1] + 1))
        cs = np.cumsum(np.add.reduceat(reg, starts, axis=0), axis=0)
        cs += self.run_regret
        ce = np.cumsum(np.add.reduceat(reg * self.ex_buf[:rows], starts, axis=0), axis=0)
        ce += self.run_explore
        n_seg = ends.shape[0]
        seg = np.repeat(np.arange(n_seg) * (P * K), np.diff(np.concatenate(([-1], ends))))
        key = ch + self.policy_arm
        key += seg[:, None]
        counts = np.bincount(key.reshape(-1), minlength=n_seg * P * K).reshape(n_seg, P, K)
        ca = np.cumsum(counts, axis=0, dtype=np.float64)
        ca += self.run_alloc
        if sel.size:
            g0 = int(np.searchsorted(grid, start + 1))
            pos = np.searchsorted(ends, sel)
            self.regret[g0:g0 + sel.size] = cs[pos]
            self.explore[g0:g0 + sel.size] = ce[pos]
            self.alloc[g0:g0 + sel.size] = ca[pos]
        self.run_regret = cs[-1].copy()
        self.run_explore = ce[-1].copy()
        self.run_alloc = ca[-1].copy()
        self.rewards += self.rew_buf[:rows].sum(axis=0)
        self.optimal += np.count_nonzero(reg <= 0.0, axis=0)
        self.pulls += np.bincount((ch + self.lane_arm).reshape(-1), minlength=L * K)


def _max_last(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=-1)``, column by column (NumPy reduces a short last axis slowly)."""
    flat = a.reshape(-1, a.shape[-1])
    out = flat[:, 0].copy()
    for k in range(1, flat.shape[1]):
        np.maximum(out, flat[:, k], out=out)
    return out.reshape(a.shape[:-1])


def _build_units(policies: Sequence[Policy], env: Environment, n: int, seed: int,
                 grid: np.ndarray, fast: bool) -> list[_Unit]:
    for spec in policies:
        if spec.contextual and not env.contextual:
            raise ConfigurationError(
                f"policy {spec.name!r} needs contexts; this environment ({env.name}) has none")
        if spec.contextual and spec.n_features != env.n_features:
            raise ConfigurationError(
                f"policy {spec.name!r} expects {spec.n_features} features, the environment "
                f"has {env.n_features}")
    K = env.n_arms
    learners = build_learners(policies, n, K,
                              lambda name: np.random.default_rng(policy_seed(seed, name)), fast)
    return [_Unit(learner, specs, n, K, grid) for learner, specs in learners]


def simulate(env: Environment, policies: Sequence[Policy], n_trials: int, n_rounds: int,
             seed: int | None = None, *, decompose: bool = True, grid_points: int = 200,
             checkpoints: Sequence[int] = (), progress: Callable[[int, int], None] | None = None,
             fast: bool = True, scenario: str = "custom",
             block_size: int | None = None) -> SimulationResult:
    """Run ``policies`` on ``env`` for ``n_trials`` independent trials of ``n_rounds`` rounds.

    Parameters
    ----------
    env
        The world (ground truth stays inside).
    policies
        Policies with distinct names (:func:`~.policies.make_policy` or :class:`PolicySpec`).
    n_trials, n_rounds
        Replications and their length.
    seed
        Seed of everything: the world's draws and each policy's stream. ``None`` draws fresh
        entropy (recorded in the result).
    decompose
        Record which decisions were exploratory (one posterior-mean evaluation per round).
    grid_points, checkpoints
        Rounds at which curves are kept: ``grid_points`` evenly spaced, plus ``checkpoints``.
    progress
        Called as ``progress(rounds_done, n_rounds)`` after each block of rounds.
    fast
        Use the fast paths for Beta and linear Thompson policies (same policies, fewer NumPy
        calls); ``False`` drives every policy through the model API.
    block_size
        Rounds drawn per block (default: sized to the run, about 8 MB of block arrays).

    Returns
    -------
    SimulationResult
    """
    for name, v in (("n_trials", n_trials), ("n_rounds", n_rounds)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ConfigurationError(f"{name} == {v!r}, must be an integer >= 1")
    n, T = int(n_trials), int(n_rounds)
    names = [p.name for p in policies]
    if not names:
        raise ConfigurationError("no policies to simulate")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"policy names must be distinct, got {names}")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**62))  # fresh entropy, recorded
    seed = int(seed)
    K = env.n_arms
    d = env.n_features or 0
    grid = _grid(T, grid_points, checkpoints)
    units = _build_units(policies, env, n, seed, grid, fast)
    if block_size is None:
        block_size = int(max(1, min(T, 256, (1 << 20) // max(1, n * (K + d + 3)))))
    episode = env.episode(n, T, np.random.SeedSequence(seed, spawn_key=(0,)))

    env_seconds = 0.0
    oracle = np.zeros(n)
    uniform = np.zeros(n)
    arm_value = np.zeros(K)
    t_start = time.perf_counter()
    pending_ctx: dict[int, list[tuple[np.ndarray, np.ndarray | None]]] = {}
    start = 0
    while start < T:
        size = min(block_size, T - start)
        t0 = time.perf_counter()
        blk = episode.block(start, size)
        best = _max_last(blk.expected)                                # (B, n)
        oracle += best.sum(axis=0)
        per_arm = blk.expected.sum(axis=0)                            # (n, K)
        uniform += per_arm.mean(axis=1)
        arm_value += per_arm.sum(axis=0)
        # what each lane would get from each arm: (B, n * K), lane-major
        if blk.noise is None:
            if_pulled = np.ascontiguousarray(blk.expected, dtype=np.float64)
        else:
            if_pulled = (blk.noise[:, :, None] < blk.expected).astype(np.float64)
        regret_if = best[:, :, None] - blk.expected
        if_pulled = if_pulled.reshape(size, n * K)
        regret_if = regret_if.reshape(size, n * K)
        tiled: dict[int, np.ndarray] = {1: if_pulled}
        for u in units:  # a Beta group reads the one (trial, arm) table for all its policies
            if u.P not in tiled and not u.learner.shared_rewards:
                tiled[u.P] = np.tile(if_pulled, (1, u.P))
        env_seconds += time.perf_counter() - t0
        immediate = blk.apply_at is None
        apply_at = blk.apply_at if blk.apply_at is not None else np.zeros((size, n), np.int64)
        for u in units:
            u.allocate(size)
            u.learner.begin_block(size)
            u.learner.bind_block(tiled.get(u.P, if_pulled), u.rew_buf, u.ch_buf,
                                 u.ex_buf if decompose else None, immediate)
        contexts = blk.contexts
        if immediate:
            # nothing happens between rounds: each unit runs the whole block in its own loop
            # (its own stream and state, so the order of units does not matter)
            for u in units:
                t1 = time.perf_counter()
                cu = contexts if (contexts is None or u.P == 1) else np.tile(contexts,
                                                                             (1, u.P, 1))
                u.learner.run_block(size, start, cu)
                u.seconds += time.perf_counter() - t1
        else:
            for b in range(size):
                t = start + b
                x = None if contexts is None else contexts[b]
                shared = pending_ctx.pop(t, None)
                for u in units:
                    t1 = time.perf_counter()
                    xu = x if (x is None or u.P == 1) else np.tile(x, (u.P, 1))
                    if shared is not None:
                        _apply_pending(u, t, shared, n)
                    u.learner.step_row(b, t, xu)
                    _enqueue(u, apply_at[b], u.ch_buf[b], u.rew_buf[b], n)
                    u.seconds += time.perf_counter() - t1
                _enqueue_shared(pending_ctx, apply_at[b], x)
        for u in units:
            t1 = time.perf_counter()
            u.learner.end_block(size)
            u.close_block(size, start, grid, grid[(grid > start) & (grid <= start + size)],
                          regret_if)
            u.seconds += time.perf_counter() - t1
        start += size
        if progress is not None:
            progress(start, T)
    wall = time.perf_counter() - t_start

    n_pol = len(policies)
    runs: dict[str, PolicyRun] = {}
    for u in units:
        states = u.learner.final_state()
        for i, spec in enumerate(u.policies):
            sl = slice(i * n, (i + 1) * n)
            runs[spec.name] = PolicyRun(
                name=spec.name, description=getattr(spec, "description", ""),
                config=spec.to_config(),
                regret=u.regret[:, sl].copy(), explore_regret=u.explore[:, sl].copy(),
                alloc=u.alloc[:, i].copy(), final_regret=u.run_regret[sl].copy(),
                rewards=u.rewards[sl].copy(), optimal=u.optimal[sl].copy(),
                pulls=u.pulls.reshape(u.L, K)[sl].copy(),
                wall_seconds=u.seconds / u.P + env_seconds / n_pol,
                state=states[i])
    ordered = {name: runs[name] for name in names}
    coef = env.oracle_coefficients()
    return SimulationResult(
        scenario=scenario, environment=env.describe(), arm_names=env.arm_names,
        feature_names=env.feature_names, rounds=T, trials=n, seed=seed, grid=grid,
        best_arm=int(np.argmax(arm_value)), oracle_reward=oracle, uniform_reward=uniform,
        policies=ordered, oracle_coefficients=None if coef is None else np.array(coef),
        wall_seconds=wall)


# ----- delayed feedback ------------------------------------------------------------------
def _groups(apply_at: np.ndarray) -> list[tuple[int, np.ndarray]]:
    order = np.argsort(apply_at, kind="stable")
    vals = apply_at[order]
    uniq, first = np.unique(vals, return_index=True)
    return list(zip(uniq.tolist(), np.split(order, first[1:]), strict=True))


def _enqueue_shared(pending: dict[int, list[tuple[np.ndarray, np.ndarray | None]]],
                    apply_at: np.ndarray, x: np.ndarray | None) -> None:
    for v, lanes in _groups(apply_at):
        pending.setdefault(v, []).append((lanes, None if x is None else x[lanes]))


def _enqueue(u: _Unit, apply_at: np.ndarray, ch: np.ndarray, r: np.ndarray, n: int) -> None:
    for v, lanes in _groups(apply_at):
        all_lanes = (lanes[None, :] + n * np.arange(u.P)[:, None]).ravel()
        u.buckets.setdefault(v, []).append((ch[all_lanes], np.array(r[all_lanes])))


def _apply_pending(u: _Unit, t: int, shared: list[tuple[np.ndarray, np.ndarray | None]],
                   n: int) -> None:
    mine = u.buckets.pop(t, [])
    if not mine:
        return
    lanes_parts, ctx_parts = [], []
    for lanes, ctx in shared:
        lanes_parts.append((lanes[None, :] + n * np.arange(u.P)[:, None]).ravel())
        if ctx is not None:
            ctx_parts.append(np.tile(ctx, (u.P, 1)))
    lanes = np.concatenate(lanes_parts)
    arms = np.concatenate([a for a, _ in mine])
    rewards = np.concatenate([r for _, r in mine])
    ctx = np.concatenate(ctx_parts) if ctx_parts else None
    u.learner.apply(lanes, arms, rewards, ctx)
