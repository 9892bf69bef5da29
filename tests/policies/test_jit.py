"""The optional compiled kernels (``tsbandit.policies._jit``, numba) against the NumPy path.

numba's ports of NumPy's gamma and normal samplers, fed the caller's bit generator, draw exactly
NumPy's numbers; the products call the same BLAS; so the kernels must reproduce the NumPy path
bit for bit: the same decisions, statistics, posteriors and generator state over whole
trajectories, ties and NaN draws included. Also tested: the switch (``TSBANDIT_JIT=0``), the
fallback when numba is absent, the fallbacks for layouts and subclasses the kernels do not take,
the load-time self-check, and (as independent evidence) the distribution of the kernels' draws.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy import stats as sps

from tsbandit import Bandit
from tsbandit.policies import BetaBernoulli, BetaPosterior, LinearGaussian, ThompsonSampling, _jit
from tsbandit.policies import _beta_kernels as kb
from tsbandit.policies import _linear_kernels as kl

numba = pytest.importorskip("numba", reason="the fast extra (numba) is not installed")


pytestmark = pytest.mark.usefixtures("fresh_jit")  # tests/conftest.py


def _use(monkeypatch, enabled: bool) -> None:
    monkeypatch.setenv("TSBANDIT_JIT", "1" if enabled else "0")
    _jit.reset()
    assert (_jit.kernels() is not None) is enabled


def _linear(d: int, unknown: bool = False, refresh_every: int = 1000) -> LinearGaussian:
    return LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25,
                          unknown_noise=unknown, refresh_every=refresh_every)


def _trajectory(model, n_arms: int, d: int | None, rounds: int, seed: int):
    """Decisions and the final state of a bandit played one decision at a time."""
    b = Bandit([f"a{i}" for i in range(n_arms)], model, ThompsonSampling(), seed=seed)
    rng = np.random.default_rng(seed + 1)
    w = rng.normal(size=(n_arms, d)) * 0.3 if d else rng.uniform(0.05, 0.6, n_arms)
    arms = []
    for _ in range(rounds):
        x = None if d is None else rng.normal(size=d)
        dec = b.select(x)
        arms.append(dec.index)
        if d is None:
            r = float(rng.random() < w[dec.index])
        else:
            r = float(w[dec.index] @ x + 0.5 * rng.standard_normal())
        b.update(dec.arm, r, x)
    return arms, b


def _same_bandit(b1: Bandit, b2: Bandit) -> None:
    assert json.dumps(b1.to_dict(), sort_keys=True) == json.dumps(b2.to_dict(), sort_keys=True)
    p1, p2 = b1.posterior, b2.posterior
    for name in ("params", "mean", "sqrt_cov", "noise_a", "noise_b"):
        if getattr(p1, name, None) is not None:
            assert np.array_equal(np.asarray(getattr(p1, name)), np.asarray(getattr(p2, name)),
                                  equal_nan=True), name


def test_kernels_load_and_pass_their_check_against_numpy():
    k = _jit.kernels()
    assert k is not None and _jit.status == "on"
    # both kernels reproduce NumPy on this machine (a different BLAS would switch the linear
    # one off, and this test says so)
    assert k.beta_argmax is not None and k.linear_argmax is not None
    assert k.linear_observe is not None
    # the lab's lock-step Beta lanes (tests/lab/test_jit_lanes.py)
    assert k.beta_lanes_draw is not None and k.beta_lanes_book is not None


@pytest.mark.parametrize(("n_arms", "rounds"), [(1, 20), (5, 400), (40, 150)])
def test_beta_trajectory_is_bit_identical_with_and_without_kernels(monkeypatch, n_arms, rounds):
    _use(monkeypatch, True)
    fast_arms, fast = _trajectory(BetaBernoulli(), n_arms, None, rounds, seed=3)
    _use(monkeypatch, False)
    slow_arms, slow = _trajectory(BetaBernoulli(), n_arms, None, rounds, seed=3)
    assert fast_arms == slow_arms
    _same_bandit(fast, slow)


@pytest.mark.parametrize("unknown", [False, True])
@pytest.mark.parametrize(("n_arms", "d", "refresh"),
                         [(5, 11, 1000), (3, 1, 1000), (4, 3, 7), (2, 40, 1000), (2, 130, 50)])
def test_linear_trajectory_is_bit_identical_with_and_without_kernels(monkeypatch, n_arms, d,
                                                                     refresh, unknown):
    rounds = 60 if d > 100 else 150
    _use(monkeypatch, True)
    fast_arms, fast = _trajectory(_linear(d, unknown, refresh), n_arms, d, rounds, seed=5)
    _use(monkeypatch, False)
    slow_arms, slow = _trajectory(_linear(d, unknown, refresh), n_arms, d, rounds, seed=5)
    assert fast_arms == slow_arms
    _same_bandit(fast, slow)


def test_the_kernel_path_is_the_one_taken():
    # with kernels: the argmax comes back as an int; without (or declined): the draws
    m = BetaBernoulli()
    p = m.posterior(m.init_stats(4))
    assert isinstance(m.sample_argmax_one(p, np.random.default_rng(0)), int)
    lm = _linear(3)
    lp = lm.posterior(lm.init_stats(4))
    assert isinstance(lm.sample_argmax_one(lp, np.random.default_rng(0), np.ones(3)), int)


def test_tied_and_nan_draws_are_broken_exactly_as_the_numpy_path(monkeypatch):
    # tiny priors: both gamma variates of an arm underflow to 0, 0 / 0 is NaN; the kernel
    # hands the draws back and the tie-break is the NumPy path's
    # (a posterior no accepted prior reaches since alpha0, beta0 >= 0.05: built directly, to
    # keep the NaN path of the kernels and the tie-break exact)
    m = BetaBernoulli()
    p = BetaPosterior.from_params(np.full((2, 5), 1e-3))
    stats = m.init_stats(5)
    rule = ThompsonSampling()

    def play(seed: int) -> tuple[list, list[int], dict]:
        r = np.random.default_rng(seed)
        with np.errstate(invalid="ignore"):
            draws = [m.sample_argmax_one(p, r) for _ in range(300)]
            choices = [rule.choose_one(m, p, stats, r) for _ in range(100)]
        return draws, choices, r.bit_generator.state

    _use(monkeypatch, True)
    fast, fast_choices, fast_state = play(0)
    _use(monkeypatch, False)
    slow, slow_choices, slow_state = play(0)
    declined = 0
    for f, sl in zip(fast, slow, strict=True):
        assert isinstance(sl, list)
        if isinstance(f, int):
            assert sl.count(max(sl)) == 1 and f == sl.index(max(sl))
        else:
            declined += 1
            assert np.array_equal(f, sl, equal_nan=True)
    assert declined > 0  # the NaN case really happened
    assert fast_choices == slow_choices and fast_state == slow_state


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv("TSBANDIT_JIT", "off")
    _jit.reset()
    assert _jit.disabled_by_env() and _jit.kernels() is None
    assert "TSBANDIT_JIT" in _jit.status
    m = BetaBernoulli()
    assert isinstance(m.sample_argmax_one(m.posterior(m.init_stats(3)),
                                          np.random.default_rng(0)), list)


def test_without_numba_everything_runs_on_numpy(monkeypatch):
    _use(monkeypatch, False)
    ref_arms, ref = _trajectory(_linear(4, unknown=True), 3, 4, 50, seed=8)
    monkeypatch.delenv("TSBANDIT_JIT")
    monkeypatch.setitem(sys.modules, "numba", None)  # ``import numba`` raises ImportError
    _jit.reset()
    assert _jit.kernels() is None and "not available" in _jit.status
    arms, b = _trajectory(_linear(4, unknown=True), 3, 4, 50, seed=8)
    assert arms == ref_arms
    _same_bandit(b, ref)


def test_layouts_the_kernels_do_not_take_fall_back_to_numpy(monkeypatch):
    # a strided context (a column of a matrix) and a C-ordered square root go to NumPy
    lm = _linear(3)
    s = lm.init_stats(4)
    X = np.random.default_rng(2).normal(size=(3, 10))  # C order: a column is strided
    for col in range(5):
        lm.accumulate(s, np.array([col % 4]), np.array([0.3]), X[:, col][None, :])
    post = lm.posterior(s)
    x = X[:, 7]
    assert not x.flags.c_contiguous
    assert isinstance(lm.sample_argmax_one(post, np.random.default_rng(0), x), list)
    c_post = lm.posterior(s)
    c_post.sqrt_cov = np.ascontiguousarray(c_post.sqrt_cov)
    assert isinstance(lm.sample_argmax_one(c_post, np.random.default_rng(0), x.copy()), list)
    # either way the result is the NumPy path's
    _use(monkeypatch, False)
    assert (lm.sample_argmax_one(post, np.random.default_rng(0), x)
            == lm.sample_one(post, np.random.default_rng(0), x))


def test_a_subclass_that_draws_differently_is_not_bypassed():
    class Shifted(BetaBernoulli):
        def sample_one(self, posterior, rng, context=None):
            return [v + i for i, v in enumerate(super().sample_one(posterior, rng, context))]

    m = Shifted()
    p = m.posterior(m.init_stats(4))
    assert ThompsonSampling().choose_one(m, p, m.init_stats(4), np.random.default_rng(0)) == 3


def test_load_check_rejects_a_kernel_that_does_not_reproduce_numpy():
    def wrong_beta(params, out, addr):
        out[:] = 0.5
        return 0

    assert kb.check_beta(kb._beta_argmax)
    assert not kb.check_beta(wrong_beta)
    k = _jit.kernels()
    assert k is not None

    def wrong_argmax(*args):
        args[7][:] = 0.0
        return 0

    assert kl.check_linear(k.linear_argmax, k.linear_observe)
    assert not kl.check_linear(wrong_argmax, k.linear_observe)


def test_pairwise_sum_is_numpys_for_every_length():
    rng = np.random.default_rng(0)
    assert _jit.kernels() is not None
    fn = _jit._pairwise_sum  # compiled in place by the load
    assert hasattr(fn, "py_func")
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 257, 1000, 4099]:
        a = rng.normal(size=n) * np.exp(3 * rng.normal(size=n))
        assert fn(a) == np.add.reduce(a), n


def test_generators_are_remembered_with_a_reference_and_a_bound():
    k = _jit.kernels()
    assert k is not None
    gens = [np.random.default_rng(i) for i in range(70)]
    for g in gens:
        bg, addr = k.addresses(g)
        assert bg is g.bit_generator and addr.dtype == np.uint64 and addr.shape == (4,)
    assert len(k._addr) <= 64
    assert k.addresses(gens[-1])[0] is gens[-1].bit_generator


# ----- distribution of the kernels' draws (independent of the NumPy comparison) -----------------
def test_beta_kernel_draws_follow_the_beta_posterior():
    k = _jit.kernels()
    assert k is not None and k.beta_argmax is not None
    params = np.array([[3.0, 0.4, 30.0], [7.0, 0.6, 12.0]])
    rng = np.random.default_rng(11)
    addr = k.addresses(rng)[1]
    n = 4000
    draws = np.empty((n, 3))
    out = np.empty(3)
    for t in range(n):
        k.beta_argmax(params, out, addr)
        draws[t] = out
    for j in range(3):
        a, b = params[:, j]
        # Kolmogorov-Smirnov at 1e-4: a false alarm once in 10,000 seeds
        assert sps.kstest(draws[:, j], sps.beta(a, b).cdf).pvalue > 1e-4
        mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
        assert abs(draws[:, j].mean() - mean) < 4 * np.sqrt(var / n)


def test_linear_kernel_draws_follow_the_predictive_posterior():
    k = _jit.kernels()
    assert k is not None and k.linear_argmax is not None
    lm = _linear(4)
    s = lm.init_stats(2)
    rng = np.random.default_rng(12)
    X = rng.normal(size=(30, 4))
    lm.accumulate(s, rng.integers(0, 2, 30), X @ np.array([0.5, -0.2, 0.1, 0.3]), X)
    post = lm.posterior(s)
    x = rng.normal(size=4)
    mu, sd = lm.mean(post, x), lm.std(post, x)
    st = np.swapaxes(post.sqrt_cov, -1, -2)
    addr = k.addresses(rng)[1]
    n = 4000
    draws = np.empty((n, 2))
    out, phi = np.empty(2), np.empty((2, 4))
    for t in range(n):
        k.linear_argmax(post.mean, st, x, out, out, False, phi, out, addr)
        draws[t] = out
    for j in range(2):
        assert sps.kstest(draws[:, j], sps.norm(mu[j], sd[j]).cdf).pvalue > 1e-4
        assert abs(draws[:, j].mean() - mu[j]) < 4 * sd[j] / np.sqrt(n)


def test_use_switches_the_loaded_kernels_off_and_on():
    k = _jit.kernels()
    assert k is not None
    assert _jit.use(False) is False and _jit.kernels() is None
    assert "use(False)" in _jit.status
    m = BetaBernoulli()
    p = m.posterior(m.init_stats(3))
    assert isinstance(m.sample_argmax_one(p, np.random.default_rng(0)), list)
    assert _jit.use(True) is True and _jit.kernels() is k and _jit.status == "on"
    assert isinstance(m.sample_argmax_one(p, np.random.default_rng(0)), int)


def test_use_cannot_turn_on_kernels_that_never_loaded(monkeypatch):
    monkeypatch.setenv("TSBANDIT_JIT", "0")
    _jit.reset()
    assert _jit.use(True) is False and _jit.kernels() is None


@pytest.mark.parametrize("unknown", [False, True])
def test_interleaved_decisions_and_updates_match_the_numpy_path(monkeypatch, unknown):
    # two decisions before an update, updates for an older context, a posterior refresh:
    # the kernels' reused buffers and the projection cache never serve stale values
    def play() -> Bandit:
        b = Bandit(["a", "b", "c"], _linear(4, unknown, refresh_every=9), seed=17)
        rng = np.random.default_rng(18)
        for _ in range(30):
            x1, x2 = rng.normal(size=4), rng.normal(size=4)
            d1 = b.select(x1)
            d2 = b.select(x2)
            b.update(d2.arm, float(rng.normal()), x2)
            b.update(d1.arm, float(rng.normal()), x1)
            b.select(x1)
            x1[0] += 1.0  # changed in place after the decision
            b.update(d1.arm, float(rng.normal()), x1)
        return b

    _use(monkeypatch, True)
    fast = play()
    _use(monkeypatch, False)
    _same_bandit(fast, play())


def test_a_kernel_that_fails_to_build_leaves_numpy_in_charge(monkeypatch):
    def broken() -> None:
        raise AttributeError("numba internals moved")

    monkeypatch.setattr(_jit, "_make_bitgen_intrinsic", broken)
    _jit.reset()
    assert _jit.kernels() is None and "failed to build" in _jit.status
    arms, _ = _trajectory(BetaBernoulli(), 3, None, 20, seed=1)
    assert len(arms) == 20


def test_a_subclass_with_its_own_posterior_update_is_not_bypassed():
    calls = []

    class Counting(LinearGaussian):
        def update_posterior(self, posterior, stats, arm, reward, context=None):
            calls.append(arm)
            return super().update_posterior(posterior, stats, arm, reward, context)

    b = Bandit(["a", "b"], Counting(n_features=2), seed=0)
    x = np.array([1.0, 0.5])
    for _ in range(3):
        b.update(b.select(x).arm, 0.5, x)
    assert len(calls) == 3


def test_the_disk_cache_lives_in_the_user_cache_directory(tmp_path):
    """Compiled kernels are cached under ``$TSBANDIT_CACHE_DIR`` (else the user's cache
    directory), never beside the installed sources (site-packages may be read-only)."""
    import os
    import subprocess
    from pathlib import Path

    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(TSBANDIT_CACHE_DIR=str(cache), TSBANDIT_JIT="1")
    code = ("from tsbandit.policies import _jit\n"
            "_jit.kernels(); print(_jit.status)\n"
            "from tsbandit.policies import _beta_kernels\n"
            "print(_beta_kernels._beta_argmax._cache._impl.locator.get_cache_path())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    status, where = out.stdout.split("\n")[:2]
    assert status == "on"
    assert Path(where).is_relative_to(cache)
    names = {p.name.split("-")[0] for p in cache.rglob("*.nbi")}
    assert {"_beta_kernels._beta_argmax", "_linear_kernels._linear_argmax",
            "_linear_kernels._linear_observe", "_jit._pairwise_sum"} <= names
    assert not Path(where).is_relative_to(Path(_jit.__file__).parent)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TSBANDIT_CACHE_DIR", str(tmp_path / "x"))
    assert _jit.cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv("TSBANDIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _jit.cache_dir() == str(tmp_path / "xdg" / "tsbandit" / "numba")


def test_background_loading_keeps_the_numpy_path_until_the_kernels_are_ready(fresh_jit):
    """While the kernels load in the background, ``kernels()`` does not wait (the NumPy path,
    same decisions); once loaded they are used. The service starts them this way so its port
    opens without waiting for numba."""
    import threading

    ready = threading.Event()
    gate = threading.Event()
    real_load = _jit._load

    def slow_load() -> None:
        gate.wait(30)  # hold the load until the test has looked
        real_load()

    _jit._load = slow_load  # type: ignore[assignment]
    try:
        thread = _jit.load_in_background(on_ready=ready.set)
        assert thread is not None
        assert _jit.load_in_background() is None  # one load at a time
        assert _jit.kernels() is None  # loading: no waiting, the NumPy path
        during = _play(Bandit(["a", "b", "c"], BetaBernoulli(), ThompsonSampling(), seed=5))
        gate.set()
        thread.join(60)
    finally:
        _jit._load = real_load  # type: ignore[assignment]
    assert ready.is_set()
    assert _jit.kernels() is not None and _jit.status == "on"
    after = _play(Bandit(["a", "b", "c"], BetaBernoulli(), ThompsonSampling(), seed=5))
    assert after == during  # same stream, same choices, with the kernels now


def _play(bandit: Bandit, rounds: int = 40) -> list[str]:
    arms = []
    for _ in range(rounds):
        arm = bandit.select().arm
        bandit.update(arm, 1 if arm == "c" else 0)
        arms.append(arm)
    return arms
