"""The carousel world: rankings of ``k`` slots, clicks in every slot, learners side by side.

A carousel shows ``k`` of ``K`` arms each round. In the ``pbm`` world the user examines slot
``j`` with probability ``examination[j]`` (1.0 / 0.6 / 0.3 by default) and clicks arm ``a`` in
an examined slot with probability ``attractiveness[a]``, independently per slot; in the
``cascade`` world the user scans top-down and clicks the first attractive arm, then stops. The
ground truth stays here; learners see their ranking and its per-slot clicks, nothing else.

Learners drive the library's models and rules over batched statistics (one lane per trial;
no posterior math here):

* ``top-slot-ts`` -- today's behaviour: Beta Thompson sampling ranks by one draw per arm and
  learns the reward of ``ranking[0]`` only;
* ``pbm-ts`` -- :class:`~tsbandit.policies.PositionBased` (examination learned), every slot;
* ``cascade-ts`` -- :class:`~tsbandit.policies.CascadeBeta`, every slot up to the first click
  (CascadeTS: the slots below the first click were not examined);
* ``oracle`` -- the true top ``k`` by attractiveness (the optimal ranking in both worlds);
* ``random`` -- ``k`` arms uniformly at random.

A Thompson learner's name may end in ``@scale`` (``pbm-ts@0.25``): its posterior scale
(:class:`~tsbandit.policies.ThompsonSampling`'s ``scale``, the lab's tempered sampler).

Worlds (:data:`CAROUSELS`): ``carousel`` -- 30 arms with a long tail of attractiveness
(``0.25 * 0.9^i``), examination 1.0 / 0.6 / 0.3, position-based clicks; ``carousel-cascade``
-- the same arms, cascade clicks; ``carousel-flat`` -- 20 arms evenly from 0.20 to 0.02 (small
gaps), position-based clicks.

Every learner meets the same users: per trial and round one uniform per arm (attractive
or not) and one per slot (examined or not), shared by all learners (common random numbers),
so the comparison is paired. A run's figure is the mean number of clicks per ranking.

>>> res = run_carousel("carousel", trials=4, rounds=200, seed=0)
>>> sorted(res.clicks)
['cascade-ts', 'oracle', 'pbm-ts', 'random', 'top-slot-ts']
>>> res.clicks["oracle"] > res.clicks["random"]
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..policies import BetaBernoulli, CascadeBeta, PositionBased, ThompsonSampling
from ..policies.base import RewardModel

__all__ = ["CAROUSELS", "LEARNERS", "CarouselResult", "CarouselWorld", "run_carousel"]

LEARNERS = ("top-slot-ts", "pbm-ts", "cascade-ts", "oracle", "random")

#: a long-tailed catalogue of 30 arms: click rates in the top slot 0.25 * 0.9^i (0.25 for the
#: best arm, 0.012 for the last)
ATTRACTIVENESS = tuple(float(v) for v in np.round(0.25 * 0.9 ** np.arange(30), 4))
#: twenty arms spread evenly from 0.20 to 0.02 (small gaps: a harder world to learn)
FLAT = tuple(float(v) for v in np.round(np.linspace(0.20, 0.02, 20), 4))


@dataclass(frozen=True)
class CarouselWorld:
    """Arms' attractiveness ``(K,)``, slots' examination ``(k,)`` and the click model."""

    attractiveness: tuple[float, ...] = ATTRACTIVENESS
    examination: tuple[float, ...] = (1.0, 0.6, 0.3)
    click_model: str = "pbm"

    def __post_init__(self) -> None:
        if self.click_model not in ("pbm", "cascade"):
            raise ConfigurationError(
                f"click_model == {self.click_model!r}, must be 'pbm' or 'cascade'")
        if len(self.examination) > len(self.attractiveness):
            raise ConfigurationError("a carousel needs at least as many arms as slots")

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return len(self.attractiveness)

    @property
    def n_slots(self) -> int:
        """Number of slots ``k``."""
        return len(self.examination)

    def clicks(self, rankings: np.ndarray, u_arm: np.ndarray, u_slot: np.ndarray) -> np.ndarray:
        """Clicks ``(L, k)`` of rankings ``(L, k)`` given the users' uniforms: ``u_arm``
        ``(L, K)`` (arm ``a`` attractive when below its attractiveness) and ``u_slot``
        ``(L, k)`` (slot ``j`` examined when below its examination; the pbm world)."""
        theta = np.asarray(self.attractiveness)
        attractive = np.take_along_axis(u_arm, rankings, axis=1) < theta[rankings]
        if self.click_model == "pbm":
            return (attractive & (u_slot < np.asarray(self.examination))).astype(float)
        first = np.where(attractive.any(axis=1), attractive.argmax(axis=1), self.n_slots)
        return (np.arange(self.n_slots)[None, :] == first[:, None]).astype(float)

    def expected_clicks(self, rankings: np.ndarray) -> np.ndarray:
        """Expected clicks ``(L,)`` of rankings ``(L, k)`` (ground truth)."""
        theta = np.asarray(self.attractiveness)[rankings]
        if self.click_model == "pbm":
            return np.asarray(theta @ np.asarray(self.examination))
        return 1.0 - np.prod(1.0 - theta, axis=1)

    def best_ranking(self) -> np.ndarray:
        """The optimal ranking ``(k,)``: the ``k`` most attractive arms, best first."""
        return np.argsort(-np.asarray(self.attractiveness), kind="stable")[: self.n_slots]

    def describe(self) -> dict[str, Any]:
        """JSON-safe description."""
        return {"attractiveness": list(self.attractiveness),
                "examination": list(self.examination), "click_model": self.click_model,
                "best_expected_clicks": float(self.expected_clicks(self.best_ranking()[None])[0])}


CAROUSELS: dict[str, CarouselWorld] = {
    "carousel": CarouselWorld(),
    "carousel-cascade": CarouselWorld(click_model="cascade"),
    "carousel-flat": CarouselWorld(FLAT),
}


@dataclass
class CarouselResult:
    """Per learner: mean clicks per ranking (realized), mean expected clicks per ranking, and
    per-trial realized means ``(trials,)``; the world and the run's settings."""

    scenario: str
    world: dict[str, Any]
    trials: int
    rounds: int
    seed: int | None
    clicks: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    per_trial: dict[str, np.ndarray] = field(default_factory=dict)

    def ratio(self, learner: str, baseline: str = "top-slot-ts") -> float:
        """Clicks per ranking of ``learner`` over ``baseline``'s."""
        return self.clicks[learner] / self.clicks[baseline]


class _ModelLearner:
    """Thompson sampling over one model's batched statistics (one lane per trial)."""

    def __init__(self, model: RewardModel, world: CarouselWorld, trials: int, mode: str,
                 rng: np.random.Generator, scale: float = 1.0) -> None:
        self.model, self.mode, self.rng = model, mode, rng
        self.rule = ThompsonSampling(scale=scale)
        self.k, self.n_arms = world.n_slots, world.n_arms
        self.stats = model.init_stats(world.n_arms, (trials,))
        self.lanes = np.arange(trials)

    def choose(self) -> np.ndarray:
        post = self.model.posterior(self.stats)
        return self.rule.choose(self.model, post, self.stats, self.rng, k=self.k)

    def observe(self, rankings: np.ndarray, clicks: np.ndarray) -> None:
        model: Any = self.model
        if self.mode == "top":  # the reward of ranking[0] only
            model.accumulate(self.stats, rankings[:, 0], clicks[:, 0], batch_index=self.lanes)
            return
        if self.mode == "cascade":  # CascadeTS: below the first click, not examined
            after = np.cumsum(clicks, axis=1) - clicks > 0
            clicks = np.where(after, 0.0, clicks)  # each slot delta then nets to nothing
        model.accumulate_ranking(self.stats, rankings, clicks, batch_index=self.lanes)


def _learner(name: str, world: CarouselWorld, trials: int, rng: np.random.Generator) -> Any:
    base, _, tail = name.partition("@")
    try:
        scale = float(tail) if tail else 1.0
    except ValueError:
        scale = -1.0
    if base == "top-slot-ts" and scale > 0:
        return _ModelLearner(BetaBernoulli(), world, trials, "top", rng, scale)
    if base == "pbm-ts" and scale > 0:
        return _ModelLearner(PositionBased(n_positions=world.n_slots), world, trials, "all", rng,
                             scale)
    if base == "cascade-ts" and scale > 0:
        return _ModelLearner(CascadeBeta(), world, trials, "cascade", rng, scale)
    raise ConfigurationError(f"unknown carousel learner {name!r}; known: {list(LEARNERS)}")


def run_carousel(scenario: str | CarouselWorld = "carousel",
                 learners: Sequence[str] = LEARNERS, trials: int = 20, rounds: int = 3000,
                 seed: int | None = 0) -> CarouselResult:
    """Run ``learners`` side by side on a carousel world for ``trials`` x ``rounds``.

    ``scenario`` is a name of :data:`CAROUSELS` or a :class:`CarouselWorld`. Users' uniforms
    come from one stream shared by all learners; each learner draws its decisions from its
    own spawned stream. Same seed, same result.
    """
    if isinstance(scenario, CarouselWorld):
        world, name = scenario, "custom"
    elif scenario in CAROUSELS:
        world, name = CAROUSELS[scenario], scenario
    else:
        raise ConfigurationError(f"unknown carousel {scenario!r}; known: {list(CAROUSELS)}")
    for n in ("trials", "rounds"):
        v = locals()[n]
        if isinstance(v, bool) or int(v) < 1:
            raise ConfigurationError(f"{n} == {v!r}, must be an integer >= 1")
    names = list(dict.fromkeys(learners))
    ss = np.random.SeedSequence(seed)
    users_ss, *own = ss.spawn(1 + len(names))
    users = np.random.default_rng(users_ss)
    active = {n: _learner(n, world, trials, np.random.default_rng(s))
              for n, s in zip(names, own, strict=True) if n not in ("oracle", "random")}
    pick = {n: np.random.default_rng(s) for n, s in zip(names, own, strict=True)}
    best = np.broadcast_to(world.best_ranking(), (trials, world.n_slots))
    realized = {n: np.zeros(trials) for n in names}
    expected = {n: 0.0 for n in names}
    for _ in range(rounds):
        u_arm = users.random((trials, world.n_arms))
        u_slot = users.random((trials, world.n_slots))
        for n in names:
            if n == "oracle":
                rk = best
            elif n == "random":
                rk = np.argsort(pick[n].random((trials, world.n_arms)), axis=1)[:, :world.n_slots]
            else:
                rk = active[n].choose()
            c = world.clicks(rk, u_arm, u_slot)
            if n in active:
                active[n].observe(rk, c)
            realized[n] += c.sum(axis=1)
            expected[n] += float(world.expected_clicks(rk).mean())
    res = CarouselResult(name, world.describe(), trials, rounds, seed)
    for n in names:
        res.per_trial[n] = realized[n] / rounds
        res.clicks[n] = float(res.per_trial[n].mean())
        res.expected[n] = expected[n] / rounds
    return res
