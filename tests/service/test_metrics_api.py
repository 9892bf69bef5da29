"""The service with several metrics per decision (issue 15): the issue's example flow verbatim,
every refusal a 4xx JSON with its stable code and nothing changed, stats and report shapes,
per-metric windows, the configuration shown back, the single-metric API untouched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

#: the body of the issue, verbatim
CARDS: dict[str, Any] = {
    "name": "cards", "arms": ["A", "B", "C"],
    "metrics": {"apply": "beta",
                "revenue": {"model": "gaussian", "given": "apply"},
                "risk": {"model": "beta", "given": "apply"}},
    "objective": {"revenue": 1.0},
    "constraints": [{"metric": "risk", "max": 0.05}],
    "costs": {"A": 0.0}}


def create(client: TestClient, **changes: Any) -> dict[str, Any]:
    body = {**copy.deepcopy(CARDS), **changes}
    r = client.post("/v1/bandits", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def decide(client: TestClient, name: str = "cards", **body: Any) -> dict[str, Any]:
    r = client.post(f"/v1/bandits/{name}/decisions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def reward(client: TestClient, did: str, name: str = "cards", **body: Any) -> Any:
    return client.post(f"/v1/bandits/{name}/rewards", json={"decision_id": did, **body})


def stats(client: TestClient, name: str = "cards") -> dict[str, Any]:
    r = client.get(f"/v1/bandits/{name}/stats")
    assert r.status_code == 200, r.text
    return r.json()


def error(r: Any, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["detail"]
    return str(body["error"]["detail"])


def test_the_issue_example_flow(client: TestClient) -> None:
    out = create(client)
    assert out["model"] == {"kind": "metrics"}
    assert out["rule"]["kind"] == "constrained"  # the default rule with constraints
    assert out["metrics"]["revenue"] == {
        "model": {"kind": "gaussian", "mu0": 0.0, "kappa0": 1.0, "alpha0": 1.0, "beta0": 1.0},
        "given": "apply"}
    assert out["metrics"]["apply"]["given"] is None
    assert (out["objective"], out["constraints"]) == ({"revenue": 1.0},
                                                       [{"metric": "risk", "max": 0.05}])
    assert out["costs"] == {"A": 0.0, "B": 0.0, "C": 0.0}
    assert "baseline" not in out and out["default_reward"] is None
    assert client.get("/v1/bandits/cards").json() == out
    assert "cards" in client.get("/v1/bandits").json()["bandits"]

    d = decide(client)
    assert d["applied"] in ("constrained", "baseline", "most_likely")
    batch = client.post("/v1/bandits/cards/decisions/batch", json={"n": 2}).json()
    assert all(x["applied"] in ("constrained", "baseline", "most_likely")
               for x in batch["decisions"])
    did = d["decision_id"]
    r = reward(client, did, metrics={"apply": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["duplicate"], body["arm"]) == ("applied", False, d["arm"])
    assert body["metrics"] == {"apply": {"status": "applied", "duplicate": False}}

    r = reward(client, did, metrics={"revenue": 182.5, "risk": 0})
    assert r.json()["metrics"] == {"revenue": {"status": "applied", "duplicate": False},
                                   "risk": {"status": "applied", "duplicate": False}}
    version = r.json()["model_version"]
    # a repeat of a metric answers duplicate (with another value too) and changes nothing
    again = reward(client, did, metrics={"apply": 1})
    assert again.status_code == 200
    assert again.json()["duplicate"] and again.json()["metrics"]["apply"]["duplicate"]
    again = reward(client, did, metrics={"revenue": 10.0, "risk": 1})
    assert again.json()["status"] == "duplicate" and again.json()["model_version"] == version

    s = stats(client)
    arm = d["arm"]
    assert s["metrics"]["apply"][arm]["n"] == 1 and s["metrics"]["revenue"][arm]["n"] == 1
    assert s["metrics"]["risk"][arm]["n"] == 1
    assert {s["metrics"]["apply"][a]["n"] for a in "ABC" if a != arm} == {0}
    assert set(s["objective"]) == {"A", "B", "C"}
    assert sum(o["probability_best"] for o in s["objective"].values()) == pytest.approx(1.0)
    (con,) = s["constraints"]
    assert (con["metric"], con["max"], set(con["probability"])) == ("risk", 0.05, set("ABC"))
    assert all(0 <= p <= 1 for p in con["probability"].values())
    assert [row["arm"] for row in s["arms"]] == ["A", "B", "C"]  # the objective's summary
    import json

    events = [json.loads(e) for e in client.get("/v1/bandits/cards/events").text.splitlines()
              if e]
    mine = [(e["type"], e.get("metric")) for e in events if e["decision_id"] == did]
    assert mine == [("decision", None), ("reward", "apply"), ("reward", "revenue"),
                    ("reward", "risk")]  # one reward event per metric, applied once


def test_given_metrics_are_refused_until_met(client: TestClient) -> None:
    create(client)
    d, e = decide(client)["decision_id"], decide(client)["decision_id"]
    before = stats(client)["metrics"]
    detail = error(reward(client, d, metrics={"revenue": 100.0}), 409, "given_not_observed")
    assert "apply" in detail
    assert reward(client, d, metrics={"apply": 0}).status_code == 200
    detail = error(reward(client, d, metrics={"revenue": 100.0}), 422, "given_not_met")
    assert "apply" in detail
    error(reward(client, d, metrics={"risk": 1}), 422, "given_not_met")
    # in one request a given metric is applied first
    both = reward(client, e, metrics={"revenue": 50.0, "apply": 1})
    assert set(both.json()["metrics"]) == {"apply", "revenue"}
    after = stats(client)["metrics"]
    assert sum(r["n"] for r in after["revenue"].values()) == 1
    assert sum(r["n"] for r in after["apply"].values()) == 2
    assert sum(r["n"] for r in before["apply"].values()) == 0


def test_refusals_change_nothing(client: TestClient) -> None:
    create(client)
    did = decide(client)["decision_id"]
    before = stats(client)
    detail = error(reward(client, did, metrics={"clicks": 1}), 422, "unknown_metric")
    assert "clicks" in detail and "apply" in detail
    error(reward(client, did, metrics={"apply": 2}), 422, "invalid_reward")
    error(reward(client, did, metrics={"apply": 1, "clicks": 1}), 422, "unknown_metric")
    # a bare reward: the bandit has several metrics, and the answer says which field to use
    detail = error(reward(client, did, reward=1), 422, "invalid_reward")
    assert '"metrics"' in detail and "apply" in detail
    # exactly one of reward and metrics; a metric's value is a number; names are identifiers
    error(reward(client, did, reward=1, metrics={"apply": 1}), 422, "invalid_request")
    error(reward(client, did), 422, "invalid_request")
    error(reward(client, did, metrics={}), 422, "invalid_request")
    error(reward(client, did, metrics={"apply": "1"}), 422, "invalid_request")
    error(reward(client, did, metrics={"a__b": 1}), 422, "invalid_request")
    error(reward(client, "cards~" + "0" * 32, metrics={"apply": 1}), 404, "decision_not_found")
    assert stats(client)["model_version"] == before["model_version"]
    assert stats(client)["metrics"] == before["metrics"]


def test_a_single_metric_bandit_refuses_metrics(client: TestClient) -> None:
    assert client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]}).status_code == 201
    single = decide(client, "ads")
    assert "applied" not in single
    did = single["decision_id"]
    detail = error(reward(client, did, "ads", metrics={"apply": 1}), 422, "invalid_reward")
    assert '"reward"' in detail
    ok = reward(client, did, "ads", reward=1).json()
    assert "metrics" not in ok and ok["status"] == "applied"
    s = stats(client, "ads")
    assert set(s) == {"bandit", "model_version", "level", "arms"}
    out = client.get("/v1/bandits/ads").json()
    assert set(out) == {"name", "arms", "model", "rule", "reward_window", "default_reward",
                        "half_life", "propensity_draws"}


def test_each_metric_has_its_window(client: TestClient, clock: Any) -> None:
    create(client, reward_window=100.0, metric_windows={"apply": 10.0, "revenue": 1000.0},
           metric_defaults={"risk": 0})
    got = client.get("/v1/bandits/cards").json()
    assert (got["metric_windows"], got["metric_defaults"]) == (
        {"apply": 10.0, "revenue": 1000.0}, {"risk": 0.0})
    d, e = decide(client)["decision_id"], decide(client)["decision_id"]
    assert reward(client, d, metrics={"apply": 1}).status_code == 200
    clock.advance(50)
    detail = error(reward(client, e, metrics={"apply": 1}), 410, "decision_expired")
    assert "apply" in detail
    assert reward(client, d, metrics={"revenue": 5.0}).status_code == 200  # its own window
    clock.advance(100)  # risk keeps the bandit's reward_window
    error(reward(client, d, metrics={"risk": 0}), 410, "decision_expired")


@pytest.mark.parametrize(("changes", "where"), [
    ({"model": "beta"}, "either model"),
    ({"model": {"kind": "gaussian"}}, "either model"),
    ({"n_features": 2}, "n_features"),
    ({"default_reward": 0}, "metric_defaults"),
    ({"rule": "thompson"}, "constrained rule"),
    ({"constraints": [{"metric": "risk"}]}, "one of max or min"),
    ({"constraints": [{"metric": "risk", "max": 0.1, "min": 0.0}]}, "one of max or min"),
    ({"constraints": [{"metric": "risk", "max": "0.1"}]}, "max"),
    ({"metrics": {"apply": "beta", "x__y": "beta"}}, "metrics"),
    ({"metrics": {"apply": {"model": "linear"}}}, "n_features"),
    ({"metrics": {}}, "metrics"),
    ({"metric_windows": {"apply": 0}}, "metric_windows"),
    ({"objective": {"revenue": float("nan")}}, None),
])
def test_create_refuses_bad_shapes_with_422(client: TestClient, changes: dict[str, Any],
                                            where: str | None) -> None:
    body = {**copy.deepcopy(CARDS), **changes}
    if where is None:  # NaN is not JSON: a 400
        r = client.post("/v1/bandits", content=_json_with_nan(body),
                        headers={"content-type": "application/json"})
        error(r, 400, "malformed_json")
    else:
        assert where in error(client.post("/v1/bandits", json=body), 422, "invalid_request")
    error(client.get("/v1/bandits/cards"), 404, "bandit_not_found")


def _json_with_nan(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body)  # allow_nan: writes NaN


@pytest.mark.parametrize(("changes", "code"), [
    ({"objective": {"clicks": 1.0}}, "unknown_metric"),
    ({"constraints": [{"metric": "clicks", "max": 1}]}, "unknown_metric"),
    ({"costs": {"Z": 1.0}}, "invalid_configuration"),
    ({"baseline": "Z"}, "invalid_configuration"),
    ({"constraints": [{"metric": "risk", "max": 0.01, "relative_to": "Z"}]},
     "invalid_configuration"),
    ({"metrics": {"apply": "beta", "revenue": {"model": "gaussian", "given": "revenue"}}},
     "invalid_configuration"),
    ({"metric_defaults": {"apply": 0.5}}, "invalid_reward"),
])
def test_create_refuses_what_the_engine_refuses(client: TestClient, changes: dict[str, Any],
                                                code: str) -> None:
    body = {**copy.deepcopy(CARDS), **changes}
    r = client.post("/v1/bandits", json=body)
    assert r.status_code in (400, 404, 422), r.text
    assert r.json()["error"]["code"] == code, r.text
    error(client.get("/v1/bandits/cards"), 404, "bandit_not_found")


def test_metric_fields_need_metrics_and_metric_rules_need_them(client: TestClient) -> None:
    for extra in ({"objective": {"r": 1.0}}, {"constraints": []}, {"costs": {"a": 1.0}},
                  {"baseline": "a"}, {"metric_windows": {}}, {"metric_defaults": {}},
                  {"rule": "pareto"}, {"rule": {"kind": "constrained"}}):
        r = client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"], **extra})
        assert "metrics" in error(r, 422, "invalid_request")


def test_configuration_round_trips_and_follows_arms(client: TestClient) -> None:
    out = create(client, baseline="B", costs={"A": 0.5, "C": 2.0},
                 constraints=[{"metric": "risk", "max": 0.05},
                              {"metric": "revenue", "min": -10.0, "relative_to": "B"}],
                 rule={"kind": "constrained", "pool": 0.0, "optimism": 0.3},
                 metric_windows={"revenue": 3600.0}, metric_defaults={"apply": 0})
    assert out["baseline"] == "B" and out["costs"] == {"A": 0.5, "B": 0.0, "C": 2.0}
    assert out["constraints"][1] == {"metric": "revenue", "min": -10.0, "relative_to": "B"}
    assert out["rule"] == {"kind": "constrained", "pool": 0.0, "scale": 1.0, "optimism": 0.3,
                           "pessimism": 0.05}
    # what GET answers, minus model, creates the same bandit
    body = {k: v for k, v in out.items() if k != "model"}
    body["name"] = "cards2"
    again = client.post("/v1/bandits", json=body)
    assert again.status_code == 201, again.text
    assert {**again.json(), "name": "cards"} == out
    # arms change: costs follow, a new arm costs 0; the baseline cannot be retired
    added = client.post("/v1/bandits/cards/arms", json={"arm": "D"}).json()
    assert added["costs"] == {"A": 0.5, "B": 0.0, "C": 2.0, "D": 0.0}
    retired = client.delete("/v1/bandits/cards/arms/A").json()
    assert retired["costs"] == {"B": 0.0, "C": 2.0, "D": 0.0}
    assert retired["baseline"] == "B"
    error(client.delete("/v1/bandits/cards/arms/B"), 400, "invalid_configuration")


def test_pareto_rule_and_ranking(client: TestClient) -> None:
    out = create(client, name="pareto", constraints=None, rule="pareto",
                 objective={"apply": 1.0, "revenue": 1.0})
    assert out["rule"] == {"kind": "pareto", "scale": 1.0} and out["constraints"] == []
    d = decide(client, "pareto", k=3)
    assert sorted(d["ranking"]) == ["A", "B", "C"]
    assert reward(client, d["decision_id"], "pareto", metrics={"apply": 1}).status_code == 200
    assert stats(client, "pareto")["constraints"] == []


def test_openapi_documents_the_metric_fields(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    create_props = schemas.get("BanditCreate", schemas.get("BanditCreate-Input"))["properties"]
    assert set(("metrics", "objective", "constraints", "costs", "baseline", "metric_windows",
                "metric_defaults")) <= set(create_props)
    assert "metrics" in schemas["RewardRequest"]["properties"]
    assert "metrics" in schemas["RewardOut"]["properties"]
    assert {"metrics", "objective", "constraints"} <= set(schemas["StatsOut"]["properties"])
    assert "metric" in schemas["EventLine"]["properties"]
    assert {"constrained", "pareto"} <= set(
        schemas["BanditOut"]["properties"]["rule"]["discriminator"]["mapping"])


def test_report_reads_the_objective_and_the_constraints(client: TestClient) -> None:
    create(client, arms=["A", "B"], constraints=[{"metric": "risk", "max": 0.2}],
           objective={"apply": 1.0})
    for i in range(240):  # A converts 1 in 4, B 1 in 2; B's customers all default
        d = decide(client, eligible_arms=["AB"[i % 2]])
        applied = int(i % 4 == 1 or i % 8 == 0)
        body = {"apply": applied, **({"risk": int(d["arm"] == "B")} if applied else {})}
        assert reward(client, d["decision_id"], metrics=body).status_code == 200
    r = client.get("/v1/bandits/cards/report", params={"seed": 1, "min_samples": 10,
                                                       "draws": 20_000})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["metric"], rep["method"], rep["draws"]) == ("objective", "monte_carlo", 20_000)
    a, b = rep["arms"]
    assert (a["name"], b["name"], a["n"], b["n"]) == ("A", "B", 120.0, 120.0)
    assert b["mean"] > a["mean"]  # B converts more ...
    assert b["prob_feasible"] < 0.01 < 0.99 < a["prob_feasible"]  # ... but breaks the limit
    # so A is the best arm that passes, and the winner, with its guardrail holding
    assert a["prob_best"] > 0.99 and rep["decision"]["winner"] == "A"
    assert "constraints hold" in rep["decision"]["reason"]
    assert set(rep["metrics"]) == {"apply", "revenue", "risk"}
    assert rep["metrics"]["risk"]["B"]["n"] == 60 and rep["metrics"]["risk"]["B"]["mean"] > 0.9
    (con,) = rep["constraints"]
    assert con["metric"] == "risk" and con["probability"]["A"] > 0.99
    assert rep["objective"] == {"weights": {"apply": 1.0}, "costs": {"A": 0.0, "B": 0.0}}
    assert rep["lift"]["relative"] is False and rep["lift"]["median"] > 0
    assert rep["srm"]["status"] in ("ok", "not_checked")
    # the same seed, the same report
    again = client.get("/v1/bandits/cards/report", params={"seed": 1, "min_samples": 10,
                                                           "draws": 20_000}).json()
    assert again["arms"] == rep["arms"]


def test_report_of_a_single_metric_bandit_is_unchanged(client: TestClient) -> None:
    assert client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"]}).status_code == 201
    rep = client.get("/v1/bandits/ads/report").json()
    assert rep["metric"] == "binary"
    assert not {"metrics", "objective", "constraints", "prob_none_feasible"} & set(rep)
    assert "prob_feasible" not in rep["arms"][0]


def test_the_readme_example_works(client: TestClient) -> None:
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Several metrics in the service", 1)[1].split("\n## ", 1)[0]
    bodies = re.findall(r"-d '(\{.*?\})'", section, flags=re.S)
    create_body, decide_body, first, later = (json.loads(b) for b in bodies)
    assert create_body == CARDS  # the issue's body
    assert client.post("/v1/bandits", json=create_body).status_code == 201
    did = client.post("/v1/bandits/cards/decisions", json=decide_body).json()["decision_id"]
    for body in (first, later):
        r = client.post("/v1/bandits/cards/rewards", json={**body, "decision_id": did})
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text


def test_the_dashboard_serves_its_metrics_script(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and "dashboard/static/dashboard_metrics.js" in page.text
    assert page.text.index("dashboard_metrics.js") < page.text.index("dashboard.js\"")
    js = client.get("/dashboard/static/dashboard_metrics.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "function drawMetrics" in js.text and 'id="metrics-panel"' in page.text
