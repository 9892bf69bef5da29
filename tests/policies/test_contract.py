"""One contract suite that every policy (reward model x selection rule) passes.

Shapes, seeding, serialization round-trip, errors that leave the state untouched, and learning
the best arm on an easy problem. Nothing here is skipped or marked flaky.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit import Bandit
from tsbandit.errors import (
    EligibilityError,
    InvalidContextError,
    InvalidRewardError,
    TsbanditError,
    UnknownArmError,
)
from tsbandit.policies import (
    UCB1,
    BetaBernoulli,
    BinnedBeta,
    CascadeBeta,
    EpsilonGreedy,
    Greedy,
    HierarchicalLinear,
    LinearGaussian,
    LinUCB,
    LogisticLaplace,
    NormalInverseGamma,
    PositionBased,
    RandomPolicy,
    Softmax,
    ThompsonSampling,
)

D = 3
ARMS = ["a", "b", "c", "d"]
TRUE_W = np.array([[0.1, 0.0, 0.0], [0.2, 0.1, 0.0], [0.8, 0.3, 0.1], [0.3, 0.0, 0.2]])


def _models():
    return {
        "beta": BetaBernoulli(),
        "gaussian": NormalInverseGamma(mu0=0.5, kappa0=1.0, alpha0=2.0, beta0=0.1),
        "linear": LinearGaussian(n_features=D, prior_precision=1.0, noise_variance=0.1),
        "linear-nig": LinearGaussian(n_features=D, unknown_noise=True),
        "logistic": LogisticLaplace(n_features=D),
        "hierarchical": HierarchicalLinear(n_features=D, shared_precision=1.0,
                                           offset_precision=4.0, noise_variance=0.1),
        "binned": BinnedBeta(n_features=D, n_cells=16, cell_width=0.5),
        # ranking models: one-arm feedback is the top slot (exact for both)
        "pbm": PositionBased(n_positions=3),
        "cascade": CascadeBeta(),
    }


RULES = {
    "thompson": ThompsonSampling(),
    "thompson-scaled": ThompsonSampling(scale=0.25),  # tempered: the lab's default sampler
    "ucb1": UCB1(),
    "linucb": LinUCB(alpha=1.0),
    "eps": EpsilonGreedy(0.1),
    "greedy": Greedy(),
    "softmax": Softmax(0.05),
    "random": RandomPolicy(),
}
LEARNERS = {"thompson", "thompson-scaled", "ucb1", "linucb", "eps", "softmax"}

#: the non-stationary variants (discounted and sliding-window Thompson sampling) are policies
#: too: ``rule_name`` "thompson+discount" / "thompson+window" selects them
VARIANTS = {"discount": {"discount": 0.98}, "window": {"window": 60}}

#: rules the ranking models run the suite with (every rule works on them; these keep it short)
RANKING_RULES = {"thompson", "ucb1", "random"}
POLICIES = [(m, r) for m in _models() for r in RULES
            if m not in ("pbm", "cascade") or r in RANKING_RULES] + [
    (m, f"thompson+{v}") for m in _models() for v in VARIANTS
    if not (v == "window" and m == "logistic")  # Laplace statistics are not additive
]


def make(model_name: str, rule_name: str, seed: int = 0) -> Bandit:
    rule, _, variant = rule_name.partition("+")
    return Bandit(ARMS, _models()[model_name], RULES[rule], seed=seed, propensity_draws=400,
                  **VARIANTS.get(variant, {}))


def context(rng: np.random.Generator, model_name: str) -> np.ndarray | None:
    if model_name in ("beta", "gaussian", "pbm", "cascade"):
        return None
    x = rng.random(D)
    x[0] = 1.0  # intercept
    return x


def reward(model_name: str, arm: int, x: np.ndarray | None, rng: np.random.Generator) -> float:
    if x is None:
        p = [0.1, 0.2, 0.8, 0.3][arm]
    else:
        p = float(np.clip(TRUE_W[arm] @ x, 0.0, 1.0))
    if model_name in ("gaussian", "linear", "linear-nig"):
        return p + 0.1 * float(rng.standard_normal())
    return float(rng.random() < p)


def play(b: Bandit, model_name: str, rounds: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        x = context(rng, model_name)
        d = b.select(x)
        b.update(d.arm, reward(model_name, d.index, x, rng), x)
        out.append(d.arm)
    return out


def state_json(b: Bandit) -> str:
    return json.dumps(b.to_dict(), sort_keys=True)


@pytest.mark.parametrize(("model_name", "rule_name"), POLICIES)
class TestContract:
    def test_shapes(self, model_name, rule_name):
        b = make(model_name, rule_name)
        play(b, model_name, 20, 1)
        rng = np.random.default_rng(0)
        x = context(rng, model_name)
        d = b.rank(3, x, propensity=True)
        assert len(d.ranking) == 3 and len(set(d.ranking)) == 3
        assert d.arm == d.ranking[0] and b.arms[d.index] == d.arm
        assert d.position_propensities is not None and len(d.position_propensities) == 3
        assert all(0.0 < p <= 1.0 for p in d.position_propensities)
        if model_name in ("beta", "gaussian", "pbm", "cascade"):
            batch = b.select_batch(n=7, k=2, propensity=True)
        else:
            batch = b.select_batch(np.ones((7, D)), k=2, propensity=True)
        assert batch.indices.shape == (7, 2)
        assert batch.propensities is not None and batch.propensities.shape == (7, 2)
        assert all(r[0] != r[1] for r in batch.indices)
        probs = b.action_probabilities(None if x is None else np.stack([x, x]))
        assert probs.shape == ((b.n_arms,) if x is None else (2, b.n_arms))
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
        summary = b.posterior_summary(x)
        assert [s.arm for s in summary] == ARMS
        assert all(s.lower <= s.mean <= s.upper for s in summary)
        assert sum(s.prob_best for s in summary) == pytest.approx(1.0)

    def test_same_seed_same_decisions(self, model_name, rule_name):
        a = play(make(model_name, rule_name, seed=11), model_name, 60, 5)
        b = play(make(model_name, rule_name, seed=11), model_name, 60, 5)
        assert a == b

    def test_propensities_do_not_shift_decisions(self, model_name, rule_name):
        b1, b2 = make(model_name, rule_name, seed=3), make(model_name, rule_name, seed=3)
        rng = np.random.default_rng(0)
        for _ in range(30):
            x = context(rng, model_name)
            d1 = b1.select(x, propensity=True)
            b2.posterior_summary(x)  # reads on the side stream only
            d2 = b2.select(x)
            assert d1.arm == d2.arm
            r = reward(model_name, d1.index, x, rng)
            b1.update(d1.arm, r, x)
            b2.update(d2.arm, r, x)

    def test_serialization_round_trip(self, model_name, rule_name):
        b = make(model_name, rule_name, seed=4)
        play(b, model_name, 40, 2)
        text = json.dumps(b.to_dict())
        c = Bandit.from_dict(json.loads(text))
        assert state_json(c) == state_json(b)
        # the restored bandit continues exactly like the original (generators restored too)
        assert play(c, model_name, 30, 9) == play(b, model_name, 30, 9)

    def test_errors_leave_state_untouched(self, model_name, rule_name):
        b = make(model_name, rule_name, seed=5)
        play(b, model_name, 15, 3)
        before = state_json(b)
        rng = np.random.default_rng(1)
        x = context(rng, model_name)
        bad_calls = [
            lambda: b.update("zzz", 1.0, x),
            lambda: b.update("a", float("nan"), x),
            lambda: b.update("a", float("inf"), x),
            lambda: b.update("a", "one", x),
            lambda: b.select(x, eligible=[]),
            lambda: b.select(x, eligible=["zzz"]),
            lambda: b.rank(len(ARMS) + 1, x),
            lambda: b.rank(2, x, eligible=["a"]),
            lambda: b.update_batch(["a", "zzz"], [1.0, 0.0], None if x is None else [x, x]),
        ]
        if model_name in ("beta", "logistic", "pbm", "cascade"):
            bad_calls.append(lambda: b.update("a", 0.5, x))
        if x is None:
            bad_calls.append(lambda: b.update("a", 1.0, np.ones(D)))
        else:
            bad_calls += [
                lambda: b.update("a", 1.0, None),
                lambda: b.update("a", 1.0, np.ones(D + 1)),
                lambda: b.update("a", 1.0, np.array([1.0, np.nan, 0.0])),
                lambda: b.select(np.array([np.inf, 0.0, 0.0])),
                lambda: b.select(np.ones(D - 1)),
            ]
        for call in bad_calls:
            with pytest.raises(TsbanditError) as info:
                call()
            assert isinstance(info.value, (ValueError, KeyError))
            assert str(info.value)  # a message a person can read
            assert state_json(b) == before

    def test_eligible_arms_respected(self, model_name, rule_name):
        b = make(model_name, rule_name, seed=6)
        play(b, model_name, 10, 4)
        rng = np.random.default_rng(2)
        for _ in range(20):
            x = context(rng, model_name)
            d = b.rank(2, x, eligible=["b", "d"])
            assert set(d.ranking) == {"b", "d"}

@pytest.mark.parametrize(
    ("model_name", "rule_name"),
    [(m, r) for m, r in POLICIES if r.partition("+")[0] in LEARNERS],
)
def test_learns_the_best_arm(model_name, rule_name):
    b = make(model_name, rule_name, seed=7)
    pulls = play(b, model_name, 400, 8)
    # arm 'c' is best by a wide margin everywhere; a learner pulls it most in the last half.
    # Uniform play would give 25%: 50% is more than 10 standard errors (sd ~ 0.03) above.
    late = pulls[200:]
    assert late.count("c") / len(late) > 0.5, {a: late.count(a) for a in ARMS}


@pytest.mark.parametrize("model_name", list(_models()))
def test_random_baseline_is_uniform(model_name):
    pulls = play(make(model_name, "random", seed=8), model_name, 800, 3)
    for arm in ARMS:
        # binomial(800, 1/4): sd = 12.2 pulls; 4 sd either side
        assert abs(pulls.count(arm) - 200) < 4 * 12.25


@pytest.mark.parametrize("model_name", list(_models()))
def test_greedy_baseline_exploits_its_best_estimate(model_name):
    b = make(model_name, "greedy", seed=9)
    play(b, model_name, 100, 4)
    rng = np.random.default_rng(5)
    x = context(rng, model_name)
    means = b.posterior_mean(x)
    best = max(means, key=means.get)
    assert all(b.select(x).arm == best for _ in range(20))


def test_error_classes_match_builtins():
    b = Bandit(["a", "b"], seed=0)
    with pytest.raises(KeyError):
        b.update("x", 1)
    with pytest.raises(UnknownArmError, match="unknown arm 'x'"):
        b.update("x", 1)
    with pytest.raises(InvalidRewardError, match="not binary"):
        b.update("a", 2)
    with pytest.raises(InvalidContextError, match="takes no context"):
        b.select([1.0, 2.0])
    with pytest.raises(EligibilityError, match="only 1 arms are eligible"):
        b.rank(2, eligible=["a"])
