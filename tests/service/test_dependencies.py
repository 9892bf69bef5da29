"""The service talks only to the engine, and gets it through dependencies tests can override."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import tsbandit.service
from tsbandit.engine import BanditSpec, Engine
from tsbandit.service import Settings, create_app
from tsbandit.service.deps import get_engine


@pytest.fixture
def other(clock) -> Engine:
    """An engine the app did not open, holding the only bandit ``x``."""
    engine = Engine.open("memory://", seed=1, clock=clock)
    engine.create_bandit(BanditSpec(name="x", arms=["a", "b"], reward_window=60))
    return engine


@pytest.fixture
def overridden(other: Engine):
    app = create_app(Settings(store="memory://", default_bandit=False, log_format="none"))
    with TestClient(app) as client:
        assert client.post("/v1/bandits/x/decisions", json={}).status_code == 404
        app.dependency_overrides[get_engine] = lambda: other
        yield client


def test_the_decide_route_takes_its_engine_from_the_dependency(overridden, other):
    r = overridden.post("/v1/bandits/x/decisions", json={})
    assert r.status_code == 200, r.text
    d = r.json()
    assert other.pending(d["decision_id"])["status"] == "pending"  # recorded in `other`


def test_every_route_uses_the_overridden_engine(overridden, other):
    d = overridden.post("/v1/bandits/x/decisions/batch", json={"n": 2}).json()["decisions"][0]
    r = overridden.post("/v1/bandits/x/rewards", json={"decision_id": d["decision_id"],
                                                        "reward": 1})
    assert r.json()["status"] == "applied"
    assert other.pending(d["decision_id"])["status"] == "rewarded"
    for path in ("/v1/bandits", "/v1/bandits/x", "/v1/bandits/x/stats", "/v1/bandits/x/report",
                 "/v1/bandits/x/events", "/v1/bandits/x/traffic",
                 f"/v1/decisions/{d['decision_id']}", "/healthz"):
        assert overridden.get(path).status_code == 200, path
    assert overridden.get("/v1/bandits").json()["bandits"] == ["x"]
    r = overridden.post("/v1/bandits/x/arms", json={"arm": "c"})
    assert r.status_code == 201 and other.get_bandit("x").arms == ("a", "b", "c")


# ----- imports ---------------------------------------------------------------------------------
SERVICE = Path(tsbandit.service.__file__).parent
FORBIDDEN = ("tsbandit.stores", "tsbandit.policies")


def _imports(path: Path) -> list[str]:
    """Every module an ``import`` anywhere in the file names (also inside functions and
    ``TYPE_CHECKING`` blocks), relative imports resolved."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "tsbandit.service".split(".")
            prefix = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (prefix, node.module or "") if p)
            out += [module] + [f"{module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", sorted(SERVICE.glob("*.py")), ids=lambda p: p.name)
def test_no_service_module_imports_stores_or_policies(path):
    bad = [m for m in _imports(path) if m.startswith(FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}: go through tsbandit.engine"
    examples = [line for line in path.read_text().splitlines()
                if line.lstrip().startswith((">>>", "...")) and any(f in line for f in FORBIDDEN)]
    assert not examples, f"{path.name}'s examples import {examples}"


def test_the_import_walk_resolves_relative_imports():
    found = _imports(SERVICE / "routes.py")
    assert "tsbandit.engine" in found and "tsbandit.service.deps" in found
