"""The lab's compiled Beta-lanes steps (``_jit.beta_lanes_draw`` / ``beta_lanes_book``, numba).

They replace the NumPy calls of :class:`tsbandit.policies.beta_lanes.BetaLanes` (the Thompson step:
posterior means, one ``standard_gamma`` over ``(2, n, K)``, the ratio; and the round's argmax
and scatter-add) and must reproduce them bit for bit: the same pulls, regret curves,
exploration regret and posteriors for the same seed, whether the kernels are on or off.
"""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.lab import BernoulliArms, DelayedFeedback, PolicySpec, make_policy, simulate
from tsbandit.lab.rules import TemperedThompsonSampling
from tsbandit.policies import UCB1, BetaBernoulli, EpsilonGreedy, ThompsonSampling, _jit
from tsbandit.policies import _beta_kernels as kb
from tsbandit.policies.beta_lanes import BetaLanes

pytest.importorskip("numba", reason="the fast extra (numba) is not installed")

CF = ["ts", "ts-classic", "ts-jeffreys", "ts-tempered", "ucb1", "eps-greedy", "greedy",
      "random"]
FIELDS = ("pulls", "regret", "explore_regret", "alloc", "final_regret", "rewards", "optimal")


pytestmark = pytest.mark.usefixtures("fresh_jit")  # tests/conftest.py


def _run(env, names, n, T, seed, on: bool, **kw):
    assert _jit.use(on) is on
    res = simulate(env, [make_policy(p, env) if isinstance(p, str) else p for p in names], n, T,
                   seed=seed, **kw)
    _jit.use(True)
    return res


def _assert_same(a, b) -> None:
    assert list(a.policies) == list(b.policies)
    for name, ra in a.policies.items():
        rb = b.policies[name]
        for f in FIELDS:
            assert np.array_equal(getattr(ra, f), getattr(rb, f)), (name, f)
        assert ra.state.keys() == rb.state.keys()
        for k, v in ra.state.items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, rb.state[k]), (name, k)


def test_the_lanes_kernels_load_and_are_used():
    k = _jit.kernels()
    assert k is not None and _jit.status == "on"
    assert k.beta_lanes_draw is not None and k.beta_lanes_book is not None
    on = BetaLanes([BetaBernoulli()], 3, 4)
    assert on.compiled == (True, True)
    _jit.use(False)
    off = BetaLanes([BetaBernoulli()], 3, 4)
    assert off.compiled == (False, False)


@pytest.mark.parametrize(("n_arms", "n_trials", "rounds", "seed"),
                         [(2, 3, 50, 0), (2, 13, 700, 1), (5, 20, 1200, 2), (9, 7, 600, 3),
                          (5, 1, 300, 4)])
def test_runs_are_bit_identical_with_and_without_kernels(n_arms, n_trials, rounds, seed):
    rates = list(np.linspace(0.02, 0.3, n_arms))
    env = BernoulliArms(rates)
    on = _run(env, CF, n_trials, rounds, seed, True)
    off = _run(env, CF, n_trials, rounds, seed, False)
    _assert_same(on, off)


@pytest.mark.parametrize("seed", [0, 7])
def test_thompson_alone_tempered_scales_and_priors_are_bit_identical(seed):
    env = BernoulliArms([0.03, 0.045, 0.028, 0.015, 0.06])
    pols = [PolicySpec("ts-s0.1", BetaBernoulli(), TemperedThompsonSampling(0.1)),
            PolicySpec("ts-s0.7", BetaBernoulli(2.0, 5.0), ThompsonSampling(scale=0.7)),
            PolicySpec("ts-prior", BetaBernoulli(0.5, 3.0), ThompsonSampling())]
    for group in (pols, ["ts-classic"], ["ts"]):
        on = _run(env, group, 11, 900, seed, True)
        off = _run(env, group, 11, 900, seed, False)
        _assert_same(on, off)


def test_without_the_decomposition_and_with_delays_bit_identical():
    env = BernoulliArms([0.1, 0.2, 0.15])
    on = _run(env, CF, 9, 800, 3, True, decompose=False)
    off = _run(env, CF, 9, 800, 3, False, decompose=False)
    _assert_same(on, off)
    slow = DelayedFeedback(env, 20.0, 25)
    _assert_same(_run(slow, CF, 9, 800, 4, True), _run(slow, CF, 9, 800, 4, False))


def test_switched_off_by_environment_the_numpy_path_runs(monkeypatch):
    env = BernoulliArms([0.1, 0.2, 0.15])
    ref = _run(env, CF, 5, 300, 1, True)
    monkeypatch.setenv("TSBANDIT_JIT", "0")
    _jit.reset()
    assert _jit.kernels() is None
    lanes = BetaLanes([BetaBernoulli()], 2, 3)
    assert lanes.compiled == (False, False)
    _assert_same(simulate(env, [make_policy(p, env) for p in CF], 5, 300, seed=1), ref)


def test_a_lanes_kernel_failing_its_check_is_not_used(monkeypatch):
    monkeypatch.setattr(kb, "check_lanes_draw", lambda fn: False)
    _jit.reset()
    k = _jit.kernels()
    assert k is not None and k.beta_lanes_draw is None and k.beta_lanes_book is not None
    assert "lanes draw" in _jit.status
    env = BernoulliArms([0.1, 0.2, 0.15])
    res = simulate(env, [make_policy(p, env) for p in ("ts-classic", "ucb1")], 4, 200, seed=2)
    _assert_same(res, _run(env, ("ts-classic", "ucb1"), 4, 200, 2, False))


def test_the_load_checks_reject_kernels_that_differ():
    k = _jit.kernels()
    assert k is not None
    assert kb.check_lanes_draw(k.beta_lanes_draw)
    assert kb.check_lanes_book(k.beta_lanes_book)

    def no_means(ab, denom, m, want_m, scale, out, addr):
        k.beta_lanes_draw(ab, denom, m, False, scale, out, addr)

    def first_max_last(scores, ch, off, row, xf, v):
        k.beta_lanes_book(scores, ch, off, row, xf, v)
        ch[:] = scores.shape[1] - 1 - np.argmax(scores[:, ::-1], axis=1)

    assert not kb.check_lanes_draw(no_means)
    assert not kb.check_lanes_book(first_max_last)


def test_ties_and_nan_scores_pick_numpys_argmax():
    k = _jit.kernels()
    assert k is not None
    scores = np.array([[1.0, 1.0, 0.0], [np.nan, 2.0, np.nan], [0.0, np.nan, 5.0],
                       [np.inf, np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    L, K = scores.shape
    ch = np.empty(L, dtype=np.int64)
    off = np.zeros((2, 1, L), dtype=np.intp)
    off[:, 0] = np.arange(L) * K
    xf, v = np.zeros(L * K), np.empty((1, L))
    k.beta_lanes_book(scores, ch, off, np.arange(L * K, dtype=np.float64), xf, v)
    assert ch.tolist() == scores.argmax(axis=1).tolist() == [0, 0, 1, 0, 0]
    assert v[0].tolist() == (np.arange(L) * K + ch).tolist()


def test_mixed_units_with_ucb_and_eps_only_are_bit_identical():
    env = BernoulliArms([0.05, 0.5, 0.45, 0.2])
    pols = [PolicySpec("ucb", BetaBernoulli(), UCB1()),
            PolicySpec("eps", BetaBernoulli(), EpsilonGreedy(0.2))]
    _assert_same(_run(env, pols, 6, 500, 9, True), _run(env, pols, 6, 500, 9, False))
