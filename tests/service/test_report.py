"""``GET /v1/bandits/{name}/report``: in process (TestClient) and over real HTTP (uvicorn).

The numbers are checked against :mod:`tsbandit.experiments` computed on the bandit's own
statistics; the SRM status against a correct log, a log with a real defect (double-logged
decisions), a fixed split, and the cases it cannot check.
"""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.engine import BanditSpec
from tsbandit.experiments import (
    BinaryPosteriors,
    expected_loss,
    lift_interval,
    prob_best,
    srm_check_adaptive,
    srm_check_allocation,
)
from tsbandit.policies import EpsilonGreedy, RandomPolicy
from tsbandit.policies.registry import model_from_config

# The JSON shape the dashboard reads (docs/service.md): changing it is a breaking change.
TOP_KEYS = {"format", "bandit", "model_version", "metric", "level", "arms", "method", "draws",
            "rule", "decision", "lift", "srm"}
ARM_KEYS = {"name", "n", "mean", "interval", "prob_best", "prob_best_se", "expected_loss",
            "expected_loss_se"}
SRM_KEYS = {"status", "method", "reason", "threshold", "statistic", "p_value", "dof",
            "observed", "expected", "decisions", "skipped"}


def drive(engine, name, rates, n, seed=0):
    """``n`` decisions of bandit ``name``, each rewarded 0/1 at the chosen arm's rate."""
    users = np.random.default_rng(seed)
    for _ in range(n):
        d = engine.decide(name)
        engine.record_reward(d.decision_id, float(users.random() < rates[d.arm]))


def test_two_arm_report_matches_the_library_and_has_the_documented_shape(engine, client):
    engine.create_bandit(BanditSpec("ab", ["A", "B"]))
    drive(engine, "ab", {"A": 0.10, "B": 0.20}, 400)
    r = client.get("/v1/bandits/ab/report")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert set(rep) == TOP_KEYS and rep["format"] == 1 and rep["bandit"] == "ab"
    assert all(set(a) == ARM_KEYS for a in rep["arms"]) and set(rep["srm"]) == SRM_KEYS
    assert rep["metric"] == "binary" and rep["method"] == "exact" and rep["draws"] == 0
    stats = engine.stats("ab")
    assert rep["model_version"] == stats["model_version"] == 400
    s = [a["rewards"] for a in stats["arms"]]
    n = [a["pulls"] for a in stats["arms"]]
    post = BinaryPosteriors.from_counts(s, n, names=["A", "B"])
    assert [a["n"] for a in rep["arms"]] == n
    np.testing.assert_allclose([a["prob_best"] for a in rep["arms"]], prob_best(post).probs,
                               rtol=1e-12)
    np.testing.assert_allclose([a["expected_loss"] for a in rep["arms"]],
                               expected_loss(post).values, rtol=1e-9)
    li = lift_interval(post)
    assert rep["lift"]["low"] == pytest.approx(li.low) and rep["lift"]["relative"] is True
    assert rep["rule"] == {"prob_best": 0.99, "expected_loss": None, "min_samples": 100}


def test_winner_only_when_the_rule_holds(engine, client):
    engine.create_bandit(BanditSpec("ab", ["A", "B"], rule=EpsilonGreedy(0.5)))
    drive(engine, "ab", {"A": 0.10, "B": 0.20}, 1200)
    rep = client.get("/v1/bandits/ab/report").json()
    assert rep["decision"]["stop"] is True and rep["decision"]["winner"] == "B"
    assert rep["arms"][1]["prob_best"] >= 0.99
    held = client.get("/v1/bandits/ab/report", params={"min_samples": 10_000}).json()
    assert held["decision"] == {"stop": False, "winner": None, "reason": held["decision"][
        "reason"]} and "min_samples" in held["decision"]["reason"]
    strict = client.get("/v1/bandits/ab/report", params={"prob_best": 0.999999999}).json()
    assert strict["decision"]["winner"] is None
    by_loss = client.get("/v1/bandits/ab/report",
                         params={"prob_best": 0.999999999, "expected_loss": 0.01}).json()
    assert by_loss["decision"]["winner"] == "B" and "expected loss" in by_loss["decision"][
        "reason"]


def test_srm_against_the_logged_propensities_and_a_real_defect(engine, client):
    engine.create_bandit(BanditSpec("ab", ["A", "B"]))
    drive(engine, "ab", {"A": 0.10, "B": 0.25}, 600, seed=4)
    srm = client.get("/v1/bandits/ab/report").json()["srm"]
    assert srm["status"] == "ok" and srm["method"] == "propensity" and srm["dof"] == 1
    assert srm["decisions"] == 600 and sum(srm["observed"]) == 600
    assert sum(srm["expected"]) == pytest.approx(600)
    # Thompson sampling moved traffic to B: a 50/50 split would be (rightly) flagged
    assert client.get("/v1/bandits/ab/report", params={"split": "1,1"}).json()["srm"][
        "status"] == "mismatch"
    # 300 decisions from one posterior (no reward yet) share one Monte-Carlo propensity: the
    # check adds that estimate's variance, grouped by model version
    for _ in range(300):
        engine.decide("ab")
    srm = client.get("/v1/bandits/ab/report").json()["srm"]
    dec = [e for e in engine.store.iter_events("ab") if e["type"] == "decision"]
    ref = srm_check_adaptive([["A", "B"].index(e["arm"]) for e in dec],
                             [e["propensity"] for e in dec],
                             groups=[e["model_version"] for e in dec], mc_draws=1000)
    assert srm["p_value"] == pytest.approx(ref.p_value) and srm["decisions"] == 900
    # a logging bug: every decision of A written twice
    events = [e for e in engine.store.iter_events("ab") if e["type"] == "decision"]
    for e in events:
        if e["arm"] == "A":
            engine.store.append_event("ab", {**e, "decision_id": e["decision_id"] + "x"})
    bad = client.get("/v1/bandits/ab/report").json()["srm"]
    assert bad["status"] == "mismatch" and bad["p_value"] < 0.001
    assert "inconsistent" in bad["reason"]


def test_fixed_split_test_and_what_cannot_be_checked(engine, client):
    engine.create_bandit(BanditSpec("abc", ["A", "B", "C"], rule=EpsilonGreedy(1.0)))
    drive(engine, "abc", {"A": 0.1, "B": 0.1, "C": 0.1}, 600)
    srm = client.get("/v1/bandits/abc/report", params={"seed": 1}).json()["srm"]
    # every decision logged every arm's probability: the K-arm check runs
    assert srm["status"] == "ok" and srm["method"] == "propensity" and srm["dof"] == 2
    assert srm["decisions"] == 600 and srm["expected"] == pytest.approx([200.0] * 3)
    ok = client.get("/v1/bandits/abc/report", params={"split": "1,1,1", "seed": 1}).json()
    assert ok["srm"]["status"] == "ok" and ok["srm"]["method"] == "split"
    assert ok["srm"]["expected"] == [200.0, 200.0, 200.0] and ok["srm"]["dof"] == 2
    wrong = client.get("/v1/bandits/abc/report", params={"split": "80,10,10"}).json()
    assert wrong["srm"]["status"] == "mismatch"
    off = client.get("/v1/bandits/abc/report", params={"srm": "false"}).json()["srm"]
    assert off["status"] == "not_checked" and off["reason"] == "skipped (srm=false)"
    # the uniform random rule has a known split: equal (every decision uniform over all arms)
    engine.create_bandit(BanditSpec("rnd", ["A", "B", "C"], rule=RandomPolicy()))
    drive(engine, "rnd", {"A": 0.1, "B": 0.1, "C": 0.1}, 600)
    rnd = client.get("/v1/bandits/rnd/report", params={"seed": 1}).json()["srm"]
    assert rnd["status"] == "ok" and rnd["method"] == "split" and "uniform random" in rnd[
        "reason"] and rnd["expected"] == [200.0, 200.0, 200.0]
    d = engine.decide("rnd", eligible=["A", "B"])  # propensity 1/2: no longer a uniform log
    assert d.propensity == pytest.approx(0.5)
    mixed = client.get("/v1/bandits/rnd/report", params={"seed": 1}).json()["srm"]
    assert mixed["status"] == "ok" and mixed["method"] == "propensity"  # by the allocations
    assert mixed["expected"] == pytest.approx([200.5, 200.5, 200.0])
    # a top-k decision logs no allocation of the first slot: then it cannot be checked
    engine.decide("rnd", k=2)
    srm = client.get("/v1/bandits/rnd/report", params={"seed": 1}).json()["srm"]
    assert srm["status"] == "not_checked" and "split=" in srm["reason"]


def test_srm_of_a_four_arm_thompson_bandit_and_a_real_defect(engine, client):
    arms = ["A", "B", "C", "D"]
    engine.create_bandit(BanditSpec("abcd", arms))
    drive(engine, "abcd", {"A": 0.10, "B": 0.12, "C": 0.14, "D": 0.16}, 800, seed=2)
    for _ in range(200):  # 200 decisions from one posterior share one estimate
        engine.decide("abcd")
    srm = client.get("/v1/bandits/abcd/report", params={"seed": 0}).json()["srm"]
    dec = [e for e in engine.store.iter_events("abcd") if e["type"] == "decision"]
    assert all(sum(e["arm_probabilities"].values()) == pytest.approx(1.0) for e in dec)
    pi = np.array([[e["arm_probabilities"].get(a, 0.0) for a in arms] for e in dec])
    assert (pi.sum(axis=0) >= 5).all()  # no arm pooled here
    ref = srm_check_allocation([arms.index(e["arm"]) for e in dec], pi,
                               groups=[e["model_version"] for e in dec], mc_draws=1000)
    assert srm["status"] == "ok" and srm["method"] == "propensity" and srm["dof"] == 3
    assert srm["p_value"] == pytest.approx(ref.p_value) and srm["decisions"] == 1000
    assert sum(srm["expected"]) == pytest.approx(1000)
    # a logging bug: every decision of the second most chosen arm logged twice
    counts = {a: sum(e["arm"] == a for e in dec) for a in arms}
    second = sorted(arms, key=counts.__getitem__)[-2]
    assert counts[second] > 100, counts
    for e in dec:
        if e["arm"] == second:
            engine.store.append_event("abcd", {**e, "decision_id": e["decision_id"] + "x"})
    bad = client.get("/v1/bandits/abcd/report", params={"seed": 0}).json()["srm"]
    assert bad["status"] == "mismatch" and "inconsistent" in bad["reason"], bad


def test_no_decisions_yet_and_retired_arms(engine, client):
    engine.create_bandit(BanditSpec("ab", ["A", "B", "C"]))
    srm = client.get("/v1/bandits/ab/report", params={"seed": 0}).json()["srm"]
    assert srm["status"] == "not_checked" and srm["reason"] == "no decisions logged yet"
    drive(engine, "ab", {"A": 0.1, "B": 0.2, "C": 0.3}, 300)
    retired = engine.stats("ab")["arms"][2]
    engine.retire_arm("ab", "C")
    srm = client.get("/v1/bandits/ab/report").json()["srm"]
    assert srm["method"] == "propensity" and srm["skipped"] > 0
    assert srm["decisions"] + srm["skipped"] == 300 and retired["arm"] == "C"


def test_more_than_two_arms_is_monte_carlo_and_seeded(engine, client):
    engine.create_bandit(BanditSpec("abc", ["A", "B", "C"]))
    drive(engine, "abc", {"A": 0.1, "B": 0.2, "C": 0.3}, 300)
    params = {"seed": 42, "draws": 20_000}
    a = client.get("/v1/bandits/abc/report", params=params).json()
    b = client.get("/v1/bandits/abc/report", params=params).json()
    assert a == b and a["method"] == "monte_carlo" and a["draws"] == 20_000
    assert a["lift"] is None
    assert sum(x["prob_best"] for x in a["arms"]) == pytest.approx(1.0)
    assert all(x["prob_best_se"] > 0 or x["prob_best"] in (0.0, 1.0) for x in a["arms"])


def test_revenue_bandit_and_a_fresh_one(engine, client):
    engine.create_bandit(BanditSpec("rev", ["A", "B"], model=model_from_config(
        {"kind": "gaussian"})))
    fresh = client.get("/v1/bandits/rev/report")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["metric"] == "normal" and fresh.json()["arms"][0]["n"] == 0
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = engine.decide("rev")
        engine.record_reward(d.decision_id, float(rng.normal(5.0 if d.arm == "B" else 3.0)))
    rep = client.get("/v1/bandits/rev/report").json()
    assert rep["arms"][1]["mean"] == pytest.approx(5.0, abs=0.5)
    assert rep["arms"][1]["prob_best"] > 0.99


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/v1/bandits/nope/report", 404, "bandit_not_found"),
    ("/v1/bandits/lin/report", 400, "invalid_configuration"),
    ("/v1/bandits/one/report", 400, "invalid_configuration"),
    ("/v1/bandits/ab/report?split=1", 422, "invalid_request"),
    ("/v1/bandits/ab/report?split=1,x", 422, "invalid_request"),
    ("/v1/bandits/ab/report?split=abc", 422, "invalid_request"),
    ("/v1/bandits/ab/report?split=1,-1", 422, "invalid_request"),
    ("/v1/bandits/ab/report?split=1,inf", 422, "invalid_request"),
    ("/v1/bandits/ab/report?prob_best=1.5", 422, "invalid_request"),
    ("/v1/bandits/ab/report?expected_loss=0", 422, "invalid_request"),
    ("/v1/bandits/ab/report?level=1", 422, "invalid_request"),
    ("/v1/bandits/ab/report?draws=10", 422, "invalid_request"),
    ("/v1/bandits/ab/report?min_samples=-1", 422, "invalid_request"),
    ("/v1/bandits/ab/report?prob_best=nan", 422, "invalid_request"),
])
def test_errors_are_json_and_change_nothing(engine, client, path, status, code):
    engine.create_bandit(BanditSpec("ab", ["A", "B"]))
    engine.create_bandit(BanditSpec("one", ["A"]))
    engine.create_bandit(BanditSpec("lin", ["A", "B"], model=model_from_config(
        {"kind": "linear", "n_features": 2})))
    drive(engine, "ab", {"A": 0.1, "B": 0.2}, 20)
    before = (engine.store.read("ab").version, len(list(engine.store.iter_events("ab"))))
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["detail"]
    assert (engine.store.read("ab").version, len(list(engine.store.iter_events("ab")))) == before


def test_reads_are_open_unless_configured_and_documented(engine, make_client):
    engine.create_bandit(BanditSpec("ab", ["A", "B"]))
    keyed = make_client(api_key="k", open_reads=False)
    assert keyed.get("/v1/bandits/ab/report").status_code == 401
    assert keyed.get("/v1/bandits/ab/report",
                     headers={"Authorization": "Bearer k"}).status_code == 200
    spec = make_client(api_key="k").get("/openapi.json").json()
    op = spec["paths"]["/v1/bandits/{name}/report"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"split", "prob_best", "min_samples"}
    assert "401" not in op["responses"]  # reads stay open when only writes need the key


def test_event_log_export_round_trips_into_logged_data(engine, client, make_client):
    import io

    from tsbandit.evaluation import IPS, load_event_log

    engine.create_bandit(BanditSpec("ab", ["A", "B"], rule=EpsilonGreedy(0.3)))
    drive(engine, "ab", {"A": 0.1, "B": 0.3}, 300)
    engine.decide("ab")  # one decision still waiting for its reward
    r = client.get("/v1/bandits/ab/events")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    buf = io.StringIO()
    assert engine.export_events("ab", buf) == 601
    assert r.text == buf.getvalue()  # byte for byte what Engine.export_events writes
    data, rep = load_event_log(io.StringIO(r.text), return_report=True)
    assert (rep.n_decisions, data.n_rounds, rep.missing_rewards) == (301, 300, 1)
    assert data.action_names == ("A", "B") and (data.propensities >= 0.15 - 1e-12).all()
    est = IPS().estimate(data, np.array([0.5, 0.5]))  # the uniform policy's click rate: 0.2
    assert abs(est.value - 0.2) < 4 * est.std_error
    assert client.get("/v1/bandits/nope/events").json()["error"]["code"] == "bandit_not_found"
    engine.create_bandit(BanditSpec("empty", ["A", "B"]))
    assert client.get("/v1/bandits/empty/events").text == ""
    keyed = make_client(api_key="k")  # contexts and user ids: the key, whenever one is set
    assert keyed.get("/v1/bandits/ab/events").status_code == 401
    assert keyed.get("/v1/bandits/ab/report").status_code == 200


def test_over_real_http_on_sqlite(serve, tmp_path):
    httpx = pytest.importorskip("httpx")
    # seeded: the SRM check below flags p < 0.001, which an unseeded run would meet 1 in 1,000
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'report.db'}",
                    "TSBANDIT_SEED": "2"})
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/bandits", json={"name": "ab", "arms": ["A", "B"]}).status_code == 201
        users = np.random.default_rng(1)
        for _ in range(150):
            d = c.post("/v1/bandits/ab/decisions", json={}).json()
            r = float(users.random() < (0.1 if d["arm"] == "A" else 0.3))
            got = c.post("/v1/bandits/ab/rewards",
                         json={"decision_id": d["decision_id"], "reward": r})
            assert got.status_code == 200, got.text
        rep = c.get("/v1/bandits/ab/report", params={"min_samples": 10})
        assert rep.status_code == 200, rep.text
        body = rep.json()
        assert set(body) == TOP_KEYS and body["model_version"] == 150
        assert sum(a["n"] for a in body["arms"]) == 150
        assert body["srm"]["method"] == "propensity" and body["srm"]["decisions"] == 150
        assert body["srm"]["status"] == "ok"
        from tsbandit.evaluation import load_event_log

        exported = c.get("/v1/bandits/ab/events")
        assert exported.status_code == 200
        data = load_event_log(exported.text.splitlines())
        assert data.n_rounds == 150 and set(data.action_names) == {"A", "B"}
        missing = c.get("/v1/bandits/zz/report")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == \
            "bandit_not_found"


def test_a_vague_revenue_prior_without_a_posterior_mean(engine, client):
    # Student-t with df = 1 before data (the smallest shape accepted): no mean, and the report
    # must still answer (no 500)
    engine.create_bandit(BanditSpec("vague", ["A", "B"], model=model_from_config(
        {"kind": "gaussian", "alpha0": 0.5})))
    d = engine.decide("vague")
    engine.record_reward(d.decision_id, 1e6)
    r = client.get("/v1/bandits/vague/report")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["lift"]["relative"] is False and rep["lift"]["low"] < rep["lift"]["high"]
    assert None in [a["expected_loss"] for a in rep["arms"]]
