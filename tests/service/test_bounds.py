"""Configurations, rewards and contexts the service refuses because they would break a
bandit later (priors that overflow the report, rewards whose squares overflow the stored
sums, contexts that can never be rewarded), and what it accepts stays finite everywhere."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tsbandit.policies.checks as policy_checks

BAD_MODELS = [
    {"kind": "beta", "alpha0": 1e308},
    {"kind": "gaussian", "mu0": 1e308, "kappa0": 1e-308},
    {"kind": "gaussian", "mu0": 1e200},
    {"kind": "logistic", "n_features": 145042897285184},
    {"kind": "logistic", "n_features": 200_000_000},
    {"kind": "linear", "n_features": 2, "prior_precision": 1e-9},
]


@pytest.mark.parametrize("model", BAD_MODELS)
def test_configurations_that_break_later_are_refused_at_creation(client, model):
    t0 = time.perf_counter()
    r = client.post("/v1/bandits", json={"name": "x", "arms": ["a", "b"], "model": model})
    assert time.perf_counter() - t0 < 1.0  # was up to 5.6 s for n_features = 2e8
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_configuration"
    assert client.get("/v1/bandits/x").status_code == 404


def _decide(client, name, body=None):
    r = client.post(f"/v1/bandits/{name}/decisions", json=body or {})
    assert r.status_code == 200, r.text
    return r.json()["decision_id"]


def test_a_reward_whose_square_overflows_is_refused_and_the_decision_stays_pending(client):
    client.post("/v1/bandits", json={"name": "g", "arms": ["a", "b"],
                                     "model": {"kind": "gaussian"}})
    ids = [_decide(client, "g") for _ in range(2)]
    for did in ids:  # 1.3e154 squared is finite; twice that is not: both refused
        r = client.post("/v1/bandits/g/rewards", json={"decision_id": did, "reward": 1.3e154})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_reward", r.text
        assert client.get(f"/v1/decisions/{did}").json()["status"] == "pending"
    for did in ids:
        r = client.post("/v1/bandits/g/rewards", json={"decision_id": did, "reward": 1e12})
        assert r.status_code == 200, r.text
    stats = client.get("/v1/bandits/g/stats").json()
    assert all(arm[k] is not None for arm in stats["arms"] for k in ("mean", "lower", "upper"))
    assert client.get("/v1/bandits/g/report").status_code == 200


def test_a_context_that_could_never_be_rewarded_is_refused(client):
    client.post("/v1/bandits", json={"name": "l", "arms": ["a", "b"],
                                     "model": {"kind": "linear", "n_features": 2}})
    r = client.post("/v1/bandits/l/decisions", json={"context": [1e308, 1]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_context", r.text
    assert "too large" in r.json()["error"]["detail"]
    did = _decide(client, "l", {"context": [1e12, 1]})
    assert client.post("/v1/bandits/l/rewards",
                       json={"decision_id": did, "reward": 1e12}).status_code == 200


def test_the_store_refuses_an_overflowing_sum_and_the_decision_stays_pending(
        client, engine, monkeypatch):
    """Past the model's bound (lifted here), the store's atomic add is the last line: the
    overflowing reward is refused with 422 ``invalid_reward``, nothing is written, and the
    decision can still be rewarded."""
    monkeypatch.setattr(policy_checks, "MAX_ABS_REWARD", float("inf"))
    client.post("/v1/bandits", json={"name": "g", "arms": ["a"],
                                     "model": {"kind": "gaussian"}})
    first, second = _decide(client, "g"), _decide(client, "g")
    assert client.post("/v1/bandits/g/rewards",
                       json={"decision_id": first, "reward": 1.3e154}).status_code == 200
    before = engine.store.read("g")
    r = client.post("/v1/bandits/g/rewards", json={"decision_id": second, "reward": 1.3e154})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_reward", r.text
    assert "non-finite" in r.json()["error"]["detail"]
    after = engine.store.read("g")
    assert after.version == before.version
    assert all(np.array_equal(after.arrays[k], v) for k, v in before.arrays.items())
    assert client.get(f"/v1/decisions/{second}").json()["status"] == "pending"
    assert client.post("/v1/bandits/g/rewards",
                       json={"decision_id": second, "reward": -1.0}).status_code == 200


_LEVELS = st.sampled_from([0.95, 0.999999, 1 - 2**-53])
_MODELS = st.one_of(
    st.fixed_dictionaries({"kind": st.just("beta"),
                           "alpha0": st.sampled_from([0.05, 1.0, 1e6]),
                           "beta0": st.sampled_from([0.05, 1.0, 1e6])}),
    st.fixed_dictionaries({"kind": st.just("gaussian"),
                           "mu0": st.sampled_from([-1e12, 0.0, 1e12]),
                           "kappa0": st.sampled_from([1e-6, 1e6]),
                           "alpha0": st.sampled_from([0.5, 1e6]),
                           "beta0": st.sampled_from([1e-12, 1e12])}),
)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(model=_MODELS, level=_LEVELS, extreme=st.booleans())
def test_accepted_configurations_keep_stats_and_report_finite(make_client, model, level,
                                                              extreme):
    """Priors at the bounds, rewards at the reward bound: ``/stats`` has numbers (no nulls)
    at any level and ``/report`` answers 200."""
    from tsbandit.engine import Engine
    from tsbandit.stores.memory import MemoryStore

    client = make_client(Engine(MemoryStore(), seed=0))
    assert client.post("/v1/bandits", json={"name": "b", "arms": ["a", "b", "c"],
                                            "model": model}).status_code == 201
    big = 1.0 if model["kind"] == "beta" else (1e12 if extreme else 2.5)
    for reward in (big, 0.0, big):
        did = _decide(client, "b")
        assert client.post("/v1/bandits/b/rewards",
                           json={"decision_id": did, "reward": reward}).status_code == 200
    r = client.get("/v1/bandits/b/stats", params={"level": level})
    assert r.status_code == 200, r.text
    for arm in r.json()["arms"]:
        for key in ("mean", "lower", "upper", "prob_best"):
            assert isinstance(arm[key], float) and np.isfinite(arm[key]), (key, arm)
    assert client.get("/v1/bandits/b/report", params={"level": level}).status_code == 200
