"""The compiled constrained decision over several metrics (``_metrics_kernels``) against the
NumPy path: the same decisions, statistics and generator states over whole trajectories, the
fallbacks (no arm passes, metrics the kernel does not draw), the pooled prior, the reused zones,
and the packed posterior kept current by in-place observations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit import Bandit
from tsbandit.policies import NormalInverseGamma, _jit
from tsbandit.policies import _metrics_kernels as mk
from tsbandit.policies.metrics import MetricSet
from tsbandit.policies.rules.constrained import ConstrainedThompson
from tsbandit.policies.rules.pareto import ParetoThompson

pytest.importorskip("numba", reason="the fast extra (numba) is not installed")

pytestmark = pytest.mark.usefixtures("fresh_jit")  # tests/conftest.py

METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
           "risk": {"model": "beta", "given": "apply"}}
APPLY, REVENUE, RISK = [0.3, 0.1, 0.3, 0.2], [100.0, 250.0, 45.0, 40.0], [0.3, 0.01, 0.02, 0.03]

CONFIGS = {
    "pooled zones": {"objective": {"revenue": 1.0},
                     "constraints": [{"metric": "risk", "max": 0.05}]},
    "plain": {"objective": {"revenue": 1.0}, "constraints": [{"metric": "risk", "max": 0.05}],
              "rule": ConstrainedThompson(pool=0.0, optimism=0.0, pessimism=0.0)},
    "costs relative baseline": {
        "objective": {"revenue": 1.0, "apply": 5.0}, "costs": {"A": 3.0}, "baseline": "C",
        "constraints": [{"metric": "risk", "max": 0.05},
                        {"metric": "revenue", "min": -5.0, "relative_to": "B"}]},
    "min on a Beta, optimism only": {
        "objective": {"revenue": 0.5}, "constraints": [{"metric": "apply", "min": 0.2}],
        "rule": ConstrainedThompson(optimism=0.3, pessimism=0.0)},
    "nothing passes": {"objective": {"revenue": 1.0}, "baseline": "D",
                       "constraints": [{"metric": "risk", "max": 1e-4}],
                       "rule": ConstrainedThompson(pool=0.0, optimism=0.0, pessimism=0.0)},
    "no constraint": {"objective": {"revenue": 1.0, "apply": 2.0}, "costs": {"B": 1.0},
                      "rule": ConstrainedThompson()},
    "pareto": {"objective": {"revenue": 1.0, "risk": -1.0}, "rule": ParetoThompson()},
    "two pooled metrics": {"objective": {"revenue": 1.0},
                           "constraints": [{"metric": "risk", "max": 0.05},
                                           {"metric": "apply", "min": 0.12}]},
}


def _use(monkeypatch, enabled: bool) -> None:
    monkeypatch.setenv("TSBANDIT_JIT", "1" if enabled else "0")
    _jit.reset()
    assert (_jit.kernels() is not None) is enabled


def _play(config: dict, seed: int, rounds: int = 400) -> tuple[list, Bandit]:
    """Decisions (arm, what applied) of a bandit learning the three-metric world."""
    b = Bandit(["A", "B", "C", "D"], metrics=METRICS, seed=seed, **config)
    world = np.random.default_rng(seed + 10)
    seq = []
    for i in range(rounds):
        d = b.select()
        seq.append((d.index, d.applied))
        a = d.index
        if world.random() < APPLY[a]:
            b.update(d.arm, {"apply": 1})
            if world.random() < 0.7:  # the later signals arrive together, for some
                b.update(d.arm, {"revenue": float(world.normal(REVENUE[a], 10.0)),
                                 "risk": int(world.random() < RISK[a])})
        else:
            b.update(d.arm, {"apply": 0})
        if i % 50 == 0:  # propensities come from the side stream, on both paths
            seq.append(b.select(propensity=True).propensity)
    return seq, b


def test_kernels_load_and_pass_their_checks():
    k = _jit.kernels()
    assert k is not None and _jit.status == "on"
    assert k.metrics_draw is not None and k.metrics_pool is not None
    assert k.metrics_zones is not None


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("seed", [0, 7])
def test_compiled_and_numpy_paths_decide_the_same(monkeypatch, name, seed):
    calls = {"arm": 0, "fallback": 0}
    run = mk.run

    def spy(*args):
        out = run(*args)
        calls["arm" if out[0] >= 0 else "fallback"] += 1
        return out

    monkeypatch.setattr(mk, "run", spy)
    _use(monkeypatch, True)
    fast, b1 = _play(CONFIGS[name], seed)
    assert calls["arm"] + calls["fallback"] >= 400  # the kernel decided them all
    if name == "nothing passes":
        assert calls["fallback"] > 0  # ... and handed some back: no arm passed
    _use(monkeypatch, False)
    slow, b2 = _play(CONFIGS[name], seed)
    assert fast == slow
    assert json.dumps(b1.to_dict(), sort_keys=True) == json.dumps(b2.to_dict(), sort_keys=True)


def test_a_metric_the_kernel_does_not_draw_takes_the_numpy_path(monkeypatch):
    class Gaussian2(NormalInverseGamma):  # a subclass may draw otherwise: not packed
        pass

    ms = MetricSet({"apply": "beta", "revenue": {"model": Gaussian2(), "given": "apply"}})
    assert ms.packing is None and ms.posterior(ms.init_stats(3)).packed is None
    b = Bandit(["A", "B", "C"], metrics={"apply": "beta",
                                        "revenue": {"model": Gaussian2(), "given": "apply"}},
               constraints=[{"metric": "apply", "min": 0.1}], objective={"revenue": 1.0},
               seed=1)
    spy = []
    monkeypatch.setattr(mk, "run", lambda *a: spy.append(a))
    for _ in range(5):
        b.update(b.select().arm, {"apply": 1, "revenue": 2.0})
    assert spy == []


def test_packed_posterior_stays_current_and_observations_keep_its_object():
    b = Bandit(["A", "B", "C", "D"], metrics=METRICS, objective={"revenue": 1.0},
               constraints=[{"metric": "risk", "max": 0.05}], seed=3)
    rng = np.random.default_rng(0)
    post = b.posterior
    for _ in range(200):
        arm = int(rng.integers(4))
        b.update(arm, {"apply": 1, "revenue": float(rng.normal(50, 20)),
                       "risk": int(rng.random() < 0.1)})
        b.update(arm, {"apply": 0})
    assert b.posterior is post  # every part updated in place
    fresh = b.model.posterior(b.stats)
    assert np.array_equal(post.packed, fresh.packed)
    for p, q in zip(post.parts, fresh.parts, strict=True):
        for name in ("params", "mu", "kappa", "alpha", "beta"):
            if hasattr(q, name):
                assert np.array_equal(getattr(p, name), getattr(q, name))


def test_nig_observe_one_in_place_equals_the_posterior_of_the_statistics():
    m = NormalInverseGamma(mu0=3.0, kappa0=0.3, alpha0=2.0, beta0=5.0)
    stats = m.init_stats(5)
    post = m.posterior(stats)
    rng = np.random.default_rng(1)
    for _ in range(300):
        a, r = int(rng.integers(5)), float(rng.normal(0, 1e3) * rng.random() ** 4)
        assert m.observe_one(stats, post, a, r) is post
    ref = m.posterior(stats)
    for name in ("mu", "kappa", "alpha", "beta"):
        assert np.array_equal(getattr(post, name), getattr(ref, name)), name


def test_reused_zones_classify_as_fresh_probabilities():
    """Zones carried over from the last pack (bounds, when the move provably keeps an arm's
    zone) classify every arm as the exact probabilities of the current posterior do."""
    rule = ConstrainedThompson(({"metric": "risk", "max": 0.05},
                                {"metric": "apply", "min": 0.15}), pool=2.0,
                               optimism=0.2, pessimism=0.05)
    ms = MetricSet(METRICS, objective={"revenue": 1.0})
    b = Bandit(["A", "B", "C", "D"], ms, rule, seed=5)
    rng = np.random.default_rng(2)
    reused = 0
    for step in range(600):
        b.select()
        post, stats = b.posterior, b._memory.stats
        _, plan = b.rule._plan(b.model)
        z = post.cache[plan.key][1]
        cpost = b.rule.constraint_posterior(b.model, post, stats)
        sure, out = b.rule.plausible(b.model, cpost, None)
        exact = b.rule.pass_probability(b.model, cpost)
        assert np.array_equal(z >= 0.2, sure) and np.array_equal(z < 0.05, out), step
        reused += int(not np.array_equal(z, exact))
        arm = int(rng.integers(4))
        if rng.random() < 0.4:
            b.update(arm, {"apply": 1, "risk": int(rng.random() < RISK[arm] * 3)})
        else:
            b.update(arm, {"apply": 0})
    assert reused > 0  # the bounds were used, not only recomputed


def test_pooled_prior_kernel_equals_the_rule(monkeypatch):
    k = _jit.kernels()
    assert mk.check_pool(k.metrics_pool)
    rule = ConstrainedThompson(({"metric": "risk", "max": 0.05},), pool=3.0)
    ms = MetricSet(METRICS)
    s = ms.init_stats(6)
    s["risk__successes"][:] = [0.5, 0.0, 3.25, 1.0, 0.0, 7.0]
    s["risk__failures"][:] = [10.0, 0.1, 2.0, 0.0, 44.5, 3.0]
    out = np.empty((2, 6))
    k.metrics_pool(s["risk__successes"], s["risk__failures"], 1.0, 1.0, 3.0, out)
    assert np.array_equal(out, rule._pooled(ms, s)[2].params)


@pytest.mark.parametrize("off", ["metrics_pool", "metrics_zones"])
def test_a_kernel_that_failed_its_check_leaves_its_step_to_numpy(monkeypatch, off):
    """The draw kernel without the pooled-prior or the zone kernel (each is switched off when
    it does not reproduce NumPy on a machine) decides as the NumPy path."""
    config = CONFIGS["two pooled metrics"]
    _use(monkeypatch, True)
    monkeypatch.setattr(_jit.kernels(), off, None)
    fast, b1 = _play(config, 3, rounds=250)
    _use(monkeypatch, False)
    slow, b2 = _play(config, 3, rounds=250)
    assert fast == slow
    assert json.dumps(b1.to_dict(), sort_keys=True) == json.dumps(b2.to_dict(), sort_keys=True)
