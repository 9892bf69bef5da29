"""API v1 and the tutorial endpoints, in process (TestClient over a MemoryStore)."""

from __future__ import annotations

import pytest

from tsbandit.service.settings import TUTORIAL_ARMS


def create(client, name="ads", arms=("a", "b", "c"), **extra):
    r = client.post("/v1/bandits", json={"name": name, "arms": list(arms), **extra})
    assert r.status_code == 201, r.text
    return r.json()


# ----- bandits --------------------------------------------------------------------------------
def test_bandit_crud(client):
    created = create(client, model={"kind": "beta", "alpha0": 2.0, "beta0": 3.0},
                     rule={"kind": "epsilon_greedy", "epsilon": 0.2}, reward_window=60,
                     default_reward=0)
    assert created["model"] == {"kind": "beta", "alpha0": 2.0, "beta0": 3.0}
    assert created["rule"] == {"kind": "epsilon_greedy", "epsilon": 0.2}
    assert created["reward_window"] == 60 and created["default_reward"] == 0
    assert client.get("/v1/bandits/ads").json() == created
    assert "ads" in client.get("/v1/bandits").json()["bandits"]
    assert client.post("/v1/bandits", json={"name": "ads", "arms": ["x"]}).json()["error"][
        "code"] == "bandit_exists"
    r = client.delete("/v1/bandits/ads")
    assert r.status_code == 204 and r.content == b""
    r = client.get("/v1/bandits/ads")
    assert r.status_code == 404 and r.json()["error"]["code"] == "bandit_not_found"
    assert client.delete("/v1/bandits/ads").status_code == 404


def test_a_bandit_deleted_and_created_again_is_served_at_once_by_every_worker(
        make_client, tmp_path):
    """Two workers (services on one SQLite file): one deletes the bandit and creates it again
    with other arms; the other, which had it cached, decides and rewards on the new arms from
    its next request -- decisions from the new arms, a reward on its own arm."""
    from tsbandit.engine import Engine
    from tsbandit.stores import open_store

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    admin = make_client(Engine(open_store(url), seed=1), default_bandit=False)
    worker = make_client(Engine(open_store(url), seed=2), default_bandit=False)
    create(admin, "offers", arms=("a", "b", "c"))
    assert worker.post("/v1/bandits/offers/decisions", json={}).json()["arm"] in {"a", "b", "c"}
    assert admin.delete("/v1/bandits/offers").status_code == 204
    create(admin, "offers", arms=("x", "y"))
    got = [worker.post("/v1/bandits/offers/decisions", json={}).json() for _ in range(5)]
    assert {d["arm"] for d in got} <= {"x", "y"}
    rewarded = worker.post("/v1/bandits/offers/rewards",
                           json={"decision_id": got[0]["decision_id"], "reward": 1})
    assert rewarded.status_code == 200 and rewarded.json()["status"] == "applied"
    arms = {a["arm"]: a["pulls"] for a in admin.get("/v1/bandits/offers/stats").json()["arms"]}
    assert arms == {"x": 0.0, "y": 0.0, got[0]["arm"]: 1.0}


@pytest.mark.parametrize("model", ["beta", "gaussian", "linear", "logistic"])
def test_every_model_decides_learns_and_reports(client, model):
    extra = {"n_features": 3} if model in ("linear", "logistic") else {}
    create(client, "m", model=model, **extra)
    ctx = [1.0, 0.5, -0.5] if extra else None
    body = {"context": ctx} if ctx else {}
    d = client.post("/v1/bandits/m/decisions", json=body).json()
    assert d["arm"] in ("a", "b", "c") and d["ranking"] == [d["arm"]]
    assert 0 < d["propensity"] <= 1
    r = client.post("/v1/bandits/m/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    assert r.status_code == 200 and r.json()["status"] == "applied"
    params = {"context": ctx} if ctx else {}
    s = client.get("/v1/bandits/m/stats", params=params).json()
    row = next(a for a in s["arms"] if a["arm"] == d["arm"])
    assert row["pulls"] == 1 and row["rewards"] == 1
    assert row["lower"] <= row["mean"] <= row["upper"]
    assert sum(a["prob_best"] for a in s["arms"]) == pytest.approx(1.0)
    assert (row["alpha"] is not None) == (model == "beta")


def test_top_level_n_features_must_agree_with_the_model(client):
    r = client.post("/v1/bandits", json={"name": "x", "arms": ["a"], "n_features": 2,
                                         "model": {"kind": "linear", "n_features": 3}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


# ----- decisions ------------------------------------------------------------------------------
def test_ranking_and_eligible_arms(client):
    create(client)
    d = client.post("/v1/bandits/ads/decisions", json={"k": 3, "user_id": "u1"}).json()
    assert sorted(d["ranking"]) == ["a", "b", "c"] and d["arm"] == d["ranking"][0]
    assert len(d["position_propensities"]) == 3
    for _ in range(20):
        d = client.post("/v1/bandits/ads/decisions",
                        json={"eligible_arms": ["b", "c"], "k": 2}).json()
        assert sorted(d["ranking"]) == ["b", "c"]
    pending = client.get(f"/v1/decisions/{d['decision_id']}").json()
    assert pending["status"] == "pending" and pending["ranking"] == d["ranking"]


def test_batch_decisions(client):
    create(client)
    r = client.post("/v1/bandits/ads/decisions/batch",
                    json={"n": 5, "user_ids": ["u1", "u2", "u3", "u4", "u5"]})
    assert r.status_code == 200, r.text
    ds = r.json()["decisions"]
    assert len(ds) == 5 and len({d["decision_id"] for d in ds}) == 5
    create(client, "lin", model="linear", n_features=2)
    r = client.post("/v1/bandits/lin/decisions/batch", json={"contexts": [[1, 0], [0, 1]]})
    assert len(r.json()["decisions"]) == 2
    r = client.post("/v1/bandits/lin/decisions/batch", json={"contexts": [[1, 0]], "n": 2})
    assert r.status_code == 422


def test_batch_size_is_bounded(make_client):
    client = make_client(max_batch=3)
    create(client)
    r = client.post("/v1/bandits/ads/decisions/batch", json={"n": 4})
    assert r.status_code == 400 and "at most 3" in r.json()["error"]["detail"]


# ----- rewards --------------------------------------------------------------------------------
def test_reward_exactly_once(client):
    create(client)
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    body = {"decision_id": d["decision_id"], "reward": 1}
    first = client.post("/v1/bandits/ads/rewards", json=body).json()
    again = client.post("/v1/bandits/ads/rewards", json=body)
    assert first["status"] == "applied" and first["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    arms = {a["arm"]: a for a in client.get("/v1/bandits/ads/stats").json()["arms"]}
    assert arms[d["arm"]]["pulls"] == 1 and arms[d["arm"]]["alpha"] == 2.0


def test_reward_unknown_and_expired(client, clock):
    create(client, reward_window=10)
    r = client.post("/v1/bandits/ads/rewards",
                    json={"decision_id": "ads~" + "0" * 32, "reward": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    clock.advance(11)
    r = client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    assert r.status_code == 410 and r.json()["error"]["code"] == "decision_expired"


def test_reward_for_a_decision_of_another_bandit_is_not_found(client):
    create(client)
    create(client, "other")
    d = client.post("/v1/bandits/other/decisions", json={}).json()
    r = client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    assert r.status_code == 404
    # and it is still rewardable on its own bandit
    r = client.post("/v1/bandits/other/rewards",
                    json={"decision_id": d["decision_id"], "reward": 1})
    assert r.json()["status"] == "applied"


# ----- arms -----------------------------------------------------------------------------------
def test_add_and_retire_arms(client):
    create(client, arms=["a", "b"])
    r = client.post("/v1/bandits/ads/arms", json={"arm": "c"})
    assert r.status_code == 201 and r.json()["arms"] == ["a", "b", "c"]
    assert client.post("/v1/bandits/ads/arms", json={"arm": "c"}).json()["error"][
        "code"] == "duplicate_arm"
    assert client.delete("/v1/bandits/ads/arms/a").json()["arms"] == ["b", "c"]
    r = client.delete("/v1/bandits/ads/arms/zz")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_arm"
    client.delete("/v1/bandits/ads/arms/b")
    r = client.delete("/v1/bandits/ads/arms/c")
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_arm"


def test_retired_arm_pending_reward_is_consumed_not_learned_after_re_add(client):
    create(client, arms=["a", "b"])
    d = client.post("/v1/bandits/ads/decisions", json={"eligible_arms": ["b"]}).json()
    assert client.delete("/v1/bandits/ads/arms/b").status_code == 200
    assert client.get(f"/v1/decisions/{d['decision_id']}").json()["status"] == "pending"
    assert client.post("/v1/bandits/ads/arms", json={"arm": "b"}).status_code == 201
    body = {"decision_id": d["decision_id"], "reward": 1}
    r = client.post("/v1/bandits/ads/rewards", json=body)
    assert r.status_code == 200 and r.json()["status"] == "arm_retired", r.text
    assert r.json()["duplicate"] is False
    r = client.post("/v1/bandits/ads/rewards", json=body)
    assert r.json()["status"] == "duplicate" and r.json()["duplicate"] is True
    b = next(a for a in client.get("/v1/bandits/ads/stats").json()["arms"] if a["arm"] == "b")
    assert b["pulls"] == 0 and b["alpha"] == 1.0


@pytest.mark.parametrize("path", ["x/y", "x%2Fy"])
def test_arm_names_with_a_slash_can_be_retired(client, path):
    create(client, arms=["a", "x/y"])
    r = client.delete(f"/v1/bandits/ads/arms/{path}")
    assert r.status_code == 200, r.text
    assert r.json()["arms"] == ["a"]
    r = client.delete("/v1/bandits/ads/arms/no/such")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_arm"


def test_arm_count_is_bounded(make_client):
    client = make_client(max_arms=2)
    r = client.post("/v1/bandits", json={"name": "big", "arms": ["a", "b", "c"]})
    assert r.status_code == 400
    create(client, arms=["a", "b"])
    assert client.post("/v1/bandits/ads/arms", json={"arm": "c"}).status_code == 400


def test_feature_count_is_bounded(make_client):
    client = make_client(max_features=4)
    r = client.post("/v1/bandits", json={"name": "big", "arms": ["a"], "model": "linear",
                                         "n_features": 5})
    assert r.status_code == 400 and "n_features" in r.json()["error"]["detail"]


# ----- the tutorial's endpoints ------------------------------------------------------------
def test_tutorial_default_bandit_exists_at_start_up(client):
    spec = client.get("/v1/bandits/credit_card_offers").json()
    assert spec["arms"] == list(TUTORIAL_ARMS)
    assert spec["model"]["kind"] == "beta" and spec["rule"]["kind"] == "thompson"


def test_tutorial_recommend_reward_stats(client):
    rec = client.get("/recommend/cust_42").json()
    assert rec["customer_id"] == "cust_42" and rec["offer"] in TUTORIAL_ARMS
    r = client.post("/reward", json={"customer_id": "cust_42", "arm": rec["offer"], "reward": 1})
    assert r.json() == {"status": "updated", "customer_id": "cust_42", "arm": rec["offer"],
                        "decision_id": rec["decision_id"]}
    r = client.post("/reward", json={"customer_id": "cust_42", "arm": rec["offer"], "reward": 1})
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    stats = client.get("/stats").json()
    assert set(stats) == set(TUTORIAL_ARMS)
    assert stats[rec["offer"]]["alpha"] == 2.0 and stats[rec["offer"]]["total_pulls"] == 1
    others = [a for a in TUTORIAL_ARMS if a != rec["offer"]]
    assert all(stats[a]["alpha"] == 1.0 and stats[a]["beta"] == 1.0 for a in others)


def test_tutorial_reward_needs_the_recommended_arm(client):
    rec = client.get("/recommend/c1").json()
    wrong = next(a for a in TUTORIAL_ARMS if a != rec["offer"])
    r = client.post("/reward", json={"customer_id": "c1", "arm": wrong, "reward": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "arm_mismatch"
    assert client.get("/stats").json()[wrong]["total_pulls"] == 0
    r = client.post("/reward", json={"customer_id": "c1", "arm": rec["offer"], "reward": 0})
    assert r.json()["status"] == "updated"


def test_tutorial_reward_without_recommendation_is_404(client):
    r = client.post("/reward", json={"customer_id": "nobody", "arm": TUTORIAL_ARMS[0],
                                     "reward": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"


def test_tutorial_latest_recommendation_wins(client):
    first = client.get("/recommend/c7").json()
    second = client.get("/recommend/c7").json()
    r = client.post("/reward", json={"customer_id": "c7", "arm": second["offer"], "reward": 1})
    assert r.json()["decision_id"] == second["decision_id"]
    assert first["decision_id"] != second["decision_id"]


def test_tutorial_reward_by_decision_id_checks_the_customer(client):
    rec = client.get("/recommend/c9").json()
    r = client.post("/reward", json={"customer_id": "someone_else", "arm": rec["offer"],
                                     "reward": 1, "decision_id": rec["decision_id"]})
    assert r.status_code == 404
    r = client.post("/reward", json={"customer_id": "c9", "arm": rec["offer"], "reward": 1,
                                     "decision_id": rec["decision_id"]})
    assert r.json()["status"] == "updated"


def test_tutorial_default_bandit_is_recreated_after_deletion(client):
    assert client.delete("/v1/bandits/credit_card_offers").status_code == 204
    assert client.get("/recommend/c1").status_code == 200
    assert client.get("/v1/bandits/credit_card_offers").status_code == 200


def test_without_default_bandit_tutorial_endpoints_404(make_client):
    client = make_client(default_bandit=False)
    assert client.get("/v1/bandits").json()["bandits"] == []
    r = client.get("/recommend/c1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "bandit_not_found"


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok", "store": "memory",
                                             "reachable": True}
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/v1/bandits", "/v1/bandits/{name}", "/v1/bandits/{name}/arms",
              "/v1/bandits/{name}/arms/{arm}", "/v1/bandits/{name}/decisions",
              "/v1/bandits/{name}/decisions/batch", "/v1/bandits/{name}/rewards",
              "/v1/bandits/{name}/stats", "/recommend/{customer_id}", "/reward", "/stats",
              "/healthz"):
        assert p in paths
    assert client.get("/docs").status_code == 200


def test_tutorial_learning_shifts_traffic(make_client):
    """The tutorial's loop over HTTP: the offer that converts gets most of the traffic."""
    client = make_client()
    best = "balance_transfer_0apr"
    for i in range(300):
        offer = client.get(f"/recommend/c{i}").json()["offer"]
        client.post("/reward", json={"customer_id": f"c{i}", "arm": offer,
                                     "reward": int(offer == best)})
    stats = client.get("/stats").json()
    # after ~300 rounds where only `best` ever converts, TS plays it most of the time
    assert stats[best]["total_pulls"] > 150
    assert stats[best]["prob_best"] > 0.95


def test_engine_on_the_event_loop_behaves_the_same(make_client):
    client = make_client(offload=False)
    create(client)
    d = client.post("/v1/bandits/ads/decisions", json={"k": 2}).json()
    r = client.post("/v1/bandits/ads/rewards", json={"decision_id": d["decision_id"], "reward": 1})
    assert r.json()["status"] == "applied"
    assert client.get("/v1/bandits/nope").json()["error"]["code"] == "bandit_not_found"
    rec = client.get("/recommend/c1").json()
    r = client.post("/reward", json={"customer_id": "c1", "arm": rec["offer"], "reward": 0})
    assert r.json()["status"] == "updated"
