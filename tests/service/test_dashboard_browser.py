"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a uvicorn
server started here. Screenshots (desktop and phone width) are saved under the test's tmp dir,
and copied to ``$TSBANDIT_TEST_ARTIFACTS`` when that is set.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` package (dev extra). Outside CI the test skips with the reason when either is
missing; under ``CI=true`` it fails.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import integrate, stats

IN_CI = bool(os.environ.get("CI"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-default-apps", "--mute-audio"]
OFFERS = ["cashback_grocery_2pct", "travel_miles_3x", "balance_transfer_0apr",
          "business_expense_card", "premium_rewards_500bonus"]


def _need(what: str) -> None:
    msg = f"browser test needs {what}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: required)")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        _need(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _artifact(path: Path) -> None:
    where = os.environ.get("TSBANDIT_TEST_ARTIFACTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(where) / path.name)


def _reward(base: str, bandit: str, arm: str, reward: float, n: int) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        ds = http.post(f"/v1/bandits/{bandit}/decisions/batch",
                       json={"n": n, "eligible_arms": [arm]}).json()["decisions"]
        for d in ds:
            assert d["arm"] == arm
            r = http.post(f"/v1/bandits/{bandit}/rewards",
                          json={"decision_id": d["decision_id"], "reward": reward})
            assert r.status_code == 200, r.text


class Watch:
    """Console errors, page errors and any request that leaves the service (offline page)."""

    def __init__(self, page: Any, base: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: r.url.startswith(base) or self.foreign.append(r.url))
        self.failed: list[str] = []
        page.on("response", lambda r: r.status >= 400 and self.failed.append(
            f"{r.status} {r.url}"))

    def check(self) -> None:
        assert (self.errors, self.failed, self.foreign) == ([], [], [])


def _updates(page: Any) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.updates || 0)"))


def test_dashboard_draws_and_follows_rewards(browser, serve, tmp_path):
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'dash.db'}",
                    "TSBANDIT_DASHBOARD_REFRESH_SECONDS": "0.5",
                    "TSBANDIT_LOG_FORMAT": "none"})
    base = server.url
    with httpx.Client(base_url=base, timeout=10) as http:  # a second bandit, non-Beta model
        assert http.post("/v1/bandits", json={"name": "revenue", "arms": ["x", "y"],
                                              "model": {"kind": "gaussian"}}).status_code == 201
        assert http.post("/v1/bandits", json={  # contextual: needs a context for its stats
            "name": "lin", "arms": ["p", "q", "r"],
            "model": {"kind": "linear", "n_features": 2}}).status_code == 201
    _reward(base, "credit_card_offers", "balance_transfer_0apr", 1, 3)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page, base)
    page.goto(base + "/dashboard")
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")

    # the bandits and the arms are listed
    assert page.locator("nav a").all_inner_texts() == ["credit_card_offers", "lin", "revenue"]
    rows = page.locator("#arms tbody tr")
    assert [rows.nth(i).get_attribute("data-arm") for i in range(rows.count())] == OFFERS
    # one density curve per arm, each a real polyline over the grid
    paths = page.locator("#density path.density")
    assert paths.count() == 5
    before = {paths.nth(i).get_attribute("data-arm"): paths.nth(i).get_attribute("d")
              for i in range(5)}
    assert all(d.count("L") >= 200 for d in before.values())
    assert "Exact Beta" in page.locator("#density-note").inner_text()
    version = page.evaluate("() => document.body.dataset.modelVersion")
    assert version == "3"
    # the A/B report endpoint answers for this bandit: its panel is shown
    page.wait_for_selector("#report-panel:not([hidden])")
    assert "P(best)" in page.locator("#report").inner_text()
    page.screenshot(path=str(tmp_path / "dashboard-before.png"), full_page=True)

    # rewards arrive: 40 successes for one offer, 40 failures for another
    _reward(base, "credit_card_offers", "travel_miles_3x", 1, 40)
    _reward(base, "credit_card_offers", "cashback_grocery_2pct", 0, 40)
    page.wait_for_function("() => document.body.dataset.modelVersion === '83'", timeout=15000)
    page.wait_for_function(
        "() => document.querySelector('#arms tr[data-arm=travel_miles_3x]').dataset.pulls"
        " === '40'", timeout=15000)
    after = {paths.nth(i).get_attribute("data-arm"): paths.nth(i).get_attribute("d")
             for i in range(5)}
    assert after["travel_miles_3x"] != before["travel_miles_3x"]
    assert after["cashback_grocery_2pct"] != before["cashback_grocery_2pct"]
    row = page.locator("#arms tr[data-arm=travel_miles_3x]")
    assert row.locator("td.best").count() == 1  # the winner's P(best) is highlighted
    # its bar is P(best): exactly, integral of f_T(x) prod_j F_j(x) dx over the Beta posteriors
    # Beta(41, 1), Beta(4, 1) (3 successes), Beta(1, 41) and Beta(1, 1) twice; the service
    # estimates it from 4000 draws, so within 4 standard errors
    posts = [stats.beta(41, 1), stats.beta(4, 1), stats.beta(1, 41), stats.beta(1, 1),
             stats.beta(1, 1)]
    exact = integrate.quad(lambda x: posts[0].pdf(x) * np.prod([p.cdf(x) for p in posts[1:]]),
                           0, 1)[0]
    bar = page.locator("#best rect.prob-best[data-arm=travel_miles_3x]")
    track = page.locator("#best rect").first
    shown = float(bar.get_attribute("width")) / float(track.get_attribute("width"))
    assert abs(shown - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000), (shown, exact)
    traffic_note = page.locator("#traffic-note")
    page.wait_for_function(
        "() => document.querySelector('#traffic-note').textContent.startsWith('83 decisions')",
        timeout=15000)
    assert page.locator("#traffic rect.share").count() >= 1, traffic_note.inner_text()
    desktop = tmp_path / "dashboard.png"
    page.screenshot(path=str(desktop), full_page=True)
    _artifact(desktop)

    # the other bandit: normal approximation, said so
    page.locator("nav a", has_text="revenue").click()
    page.wait_for_function("() => document.getElementById('main').dataset.bandit === 'revenue'")
    assert page.locator("#density path.density").count() == 2
    assert "Normal approximation" in page.locator("#density-note").inner_text()
    assert page.locator("#context-form").is_hidden()
    # a contextual bandit: drawn for a context (all ones by default, editable)
    page.locator("nav a", has_text="lin").click()
    page.wait_for_function("() => document.getElementById('main').dataset.bandit === 'lin'")
    assert page.locator("#context-form").is_visible()
    assert page.locator("#context").input_value() == "1, 1"
    assert page.locator("#density path.density").count() == 3
    assert page.locator("#report-panel").is_hidden()  # no A/B report for a linear model
    seen = _updates(page)
    page.locator("#context").fill("2, -1")
    page.locator("#context-form button").click()
    page.wait_for_function(f"() => Number(document.body.dataset.updates) > {seen}")
    assert "context=2%2C-1" in page.url or "context=2,-1" in page.url
    shot = tmp_path / "dashboard-contextual.png"
    page.screenshot(path=str(shot), full_page=True)
    _artifact(shot)
    watch.check()
    page.close()

    # a phone: one column, nothing wider than the screen
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    watch = Watch(phone, base)
    phone.goto(base + "/dashboard?bandit=credit_card_offers")
    phone.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    boxes = [phone.locator(f"#{i}").bounding_box() for i in ("density", "rate", "best")]
    assert all(b is not None and b["width"] <= 390 for b in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # stacked, not side by side
    shot = tmp_path / "dashboard-phone.png"
    phone.screenshot(path=str(shot), full_page=True)
    _artifact(shot)
    watch.check()
    phone.close()


def test_report_panel_hidden_on_404_and_srm_warning(browser, serve, tmp_path):
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'srm.db'}",
                    "TSBANDIT_DASHBOARD_REFRESH_SECONDS": "0.5",
                    "TSBANDIT_LOG_FORMAT": "none"})
    base = server.url
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    watch = Watch(page, base)
    mode = {"report": "missing"}

    def report(route: Any) -> None:
        if mode["report"] == "missing":  # a service without the report endpoint
            route.fulfill(status=404, content_type="application/json",
                          body=json.dumps({"error": {"code": "not_found", "detail": "x"}}))
            return
        rep = route.fetch().json()  # the real report, with an SRM mismatch injected
        rep["srm"].update(status="mismatch", method="split", p_value=1e-6,
                          reason="decisions per arm differ from the split",
                          observed=[900, 100, 0, 0, 0], expected=[200] * 5)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(rep))

    page.route("**/report*", report)
    page.goto(base + "/dashboard")
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 2")
    assert page.locator("#report-panel").is_hidden()
    assert page.locator("#srm-warning").is_hidden()
    assert page.locator("#density path.density").count() == 5  # the rest still renders
    mode["report"] = "mismatch"
    seen = _updates(page)
    page.wait_for_function(f"() => Number(document.body.dataset.updates) > {seen + 1}")
    assert page.locator("#report-panel").is_visible()
    warning = page.locator("#srm-warning")
    assert warning.is_visible() and "Sample ratio mismatch" in warning.inner_text()
    assert "900 / 100" in warning.inner_text()
    shot = tmp_path / "dashboard-srm.png"
    page.screenshot(path=str(shot), full_page=True)
    _artifact(shot)
    # the stubbed 404s (and the console line Chromium writes for each) are expected
    watch.failed = [f for f in watch.failed if not f.endswith("/report")]
    watch.errors = [e for e in watch.errors if "status of 404" not in e]
    watch.check()
    page.close()


def test_dashboard_asks_for_the_key_when_reads_need_it(browser, serve, tmp_path):
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'key.db'}",
                    "TSBANDIT_API_KEY": "s3cret", "TSBANDIT_OPEN_READS": "false",
                    "TSBANDIT_DASHBOARD_REFRESH_SECONDS": "0.5", "TSBANDIT_LOG_FORMAT": "none"})
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    watch = Watch(page, server.url)
    page.goto(server.url + "/dashboard")  # the page itself holds no data: open
    page.wait_for_selector("#auth:not([hidden])")
    assert page.locator("#main").is_hidden()
    page.locator("#key").fill("s3cret")
    page.locator("#auth button").click()
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    assert page.locator("#auth").is_hidden()
    assert page.locator("#density path.density").count() == 5
    # the 401s before the key was given are the expected ones
    watch.failed = [f for f in watch.failed if not f.startswith("401 ")]
    watch.errors = [e for e in watch.errors if "status of 401" not in e]
    watch.check()
    page.close()


def test_api_docs_render_with_no_network(browser, serve, tmp_path):
    """/docs (Swagger UI) and /redoc draw the API from assets the service serves itself, with
    every request that would leave the machine aborted. The one such request is ReDoc's footer
    logo (cdn.redoc.ly), which ReDoc drops from the page when it cannot load."""
    server = serve({"TSBANDIT_STORE": f"sqlite:///{tmp_path / 'docs.db'}",
                    "TSBANDIT_LOG_FORMAT": "none"})
    base = server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
               else route.abort())
    watch = Watch(page, base)
    page.goto(base + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "tsbandit" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.eval_on_selector_all(
        ".opblock-summary-path", "els => els.map(e => e.getAttribute('data-path'))")
    assert "/v1/bandits/{name}/decisions" in paths and "/recommend/{customer_id}" in paths
    shot = tmp_path / "docs-swagger.png"
    page.screenshot(path=str(shot))
    _artifact(shot)
    page.goto(base + "/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    assert "tsbandit" in page.inner_text("h1")
    page.wait_for_function(
        "() => document.body.innerText.includes('/v1/bandits/{name}/decisions')",
        timeout=20_000)
    shot = tmp_path / "docs-redoc.png"
    page.screenshot(path=str(shot))
    _artifact(shot)
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert watch.foreign in ([], [logo])
    assert set(watch.errors) <= {"Failed to load resource: net::ERR_FAILED"}
    assert page.locator("img[alt='redocly logo']").count() == 0  # dropped, not broken
    assert watch.failed == []
    page.close()


CARDS = {"name": "cards", "arms": ["A", "B", "C"],
         "metrics": {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"},
                     "risk": {"model": "beta", "given": "apply"}},
         "objective": {"revenue": 1.0}, "constraints": [{"metric": "risk", "max": 0.05}],
         "costs": {"A": 0.0}}


def _metric_rewards(http: httpx.Client, arm: str, rows: list[dict[str, float]]) -> None:
    ds = http.post("/v1/bandits/cards/decisions/batch",
                   json={"n": len(rows), "eligible_arms": [arm]}).json()["decisions"]
    for d, metrics in zip(ds, rows, strict=True):
        r = http.post("/v1/bandits/cards/rewards",
                      json={"decision_id": d["decision_id"], "metrics": metrics})
        assert r.status_code == 200, r.text


def _front(points: dict[str, tuple[float, float]]) -> dict[str, bool]:
    """Pareto front of (risk: lower is better, objective: higher is better)."""
    def dominated(a: str) -> bool:
        x, y = points[a]
        return any(q[0] <= x and q[1] >= y and q != (x, y) for b, q in points.items() if b != a)

    return {a: not dominated(a) for a in points}


def test_dashboard_shows_several_metrics_and_the_pareto_front(browser, serve, tmp_path):
    server = serve({"TSBANDIT_STORE": "memory://", "TSBANDIT_DASHBOARD_REFRESH_SECONDS": "0.5",
                    "TSBANDIT_LOG_FORMAT": "none"})
    base = server.url
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/v1/bandits", json=CARDS).status_code == 201
        no = {"apply": 0}
        # A: half apply, nobody defaults; B: a quarter apply, one in ten defaults; C: most
        # apply and spend most, a third default (the best objective, far over the risk limit)
        _metric_rewards(http, "A", [{"apply": 1, "revenue": 100.0, "risk": 0}] * 20 + [no] * 20)
        _metric_rewards(http, "B", [{"apply": 1, "revenue": 80.0, "risk": 0}] * 9
                        + [{"apply": 1, "revenue": 80.0, "risk": 1}] + [no] * 30)
        _metric_rewards(http, "C", [{"apply": 1, "revenue": 200.0, "risk": 1}] * 10
                        + [{"apply": 1, "revenue": 200.0, "risk": 0}] * 20 + [no] * 10)
        stats = http.get("/v1/bandits/cards/stats").json()
    points = {a: (stats["metrics"]["risk"][a]["mean"], stats["objective"][a]["mean"])
              for a in "ABC"}
    expected_front = _front(points)
    assert expected_front == {"A": True, "B": False, "C": True}  # the world is as intended

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page, base)
    page.goto(base + "/dashboard?bandit=cards")
    page.wait_for_function("() => document.getElementById('main').dataset.bandit === 'cards'")
    assert page.locator("#metrics-panel").is_visible()
    # the Pareto plot: one point per arm, the front filled and joined by a line
    dots = page.locator("#pareto circle.pareto-point")
    assert dots.count() == 3
    shown = {dots.nth(i).get_attribute("data-arm"): dots.nth(i).get_attribute("data-front")
             == "true" for i in range(3)}
    assert shown == expected_front
    assert page.locator("#pareto path.front").count() == 1
    assert page.locator("#pareto line.bound").count() == 1  # the risk limit
    # positions follow the means: C right of A (riskier) and above it (more objective)
    cx = {a: float(page.locator(f"#pareto circle[data-arm={a}]").get_attribute("cx"))
          for a in "ABC"}
    cy = {a: float(page.locator(f"#pareto circle[data-arm={a}]").get_attribute("cy"))
          for a in "ABC"}
    assert cx["A"] < cx["B"] < cx["C"] and cy["C"] < cy["A"] < cy["B"]
    assert "risk ≤ 0.05" in page.locator("#pareto-note").inner_text()
    # each constraint's probability per arm: a bar as long as the probability
    bars = page.locator("#constraints rect.constraint-prob")
    assert bars.count() == 3
    track = float(page.locator("#constraints rect").first.get_attribute("width"))
    probs = {}
    for i in range(3):
        bar = bars.nth(i)
        p = float(bar.get_attribute("data-probability"))
        probs[bar.get_attribute("data-arm")] = p
        assert float(bar.get_attribute("width")) == pytest.approx(max(track * p, p > 0), abs=0.01)
    assert probs["C"] < 0.01 and probs["A"] > probs["B"]
    # every metric per arm, and the objective
    rows = page.locator("#metrics-table tbody tr")
    assert [rows.nth(i).get_attribute("data-metric") for i in range(rows.count())] == [
        "apply", "revenue", "risk", "objective"]
    assert "n=20" in page.locator("#metrics-table tr[data-metric=risk] td[data-arm=A]").inner_text()
    # the report reads the objective, with each arm's probability of passing
    page.wait_for_selector("#report-panel:not([hidden])")
    assert "P(constraints hold)" in page.locator("#report").inner_text()
    shot = tmp_path / "dashboard-metrics.png"
    page.screenshot(path=str(shot), full_page=True)
    _artifact(shot)
    # a bandit with one reward per decision: the panel is hidden
    page.locator("nav a", has_text="credit_card_offers").click()
    page.wait_for_function(
        "() => document.getElementById('main').dataset.bandit === 'credit_card_offers'")
    assert page.locator("#metrics-panel").is_hidden()
    watch.check()
    page.close()

    # a phone: the metrics panel fits the screen (the table scrolls inside its box)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    watch = Watch(phone, base)
    phone.goto(base + "/dashboard?bandit=cards")
    phone.wait_for_function("() => document.getElementById('main').dataset.bandit === 'cards'")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    box = phone.locator("#pareto").bounding_box()
    assert box is not None and box["width"] <= 390
    assert phone.locator("#pareto circle.pareto-point").count() == 3
    shot = tmp_path / "dashboard-metrics-phone.png"
    phone.screenshot(path=str(shot), full_page=True)
    _artifact(shot)
    watch.check()
    phone.close()
