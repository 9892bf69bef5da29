"""The service's background sweeper: expiries settled, consumed decisions purged, errors
survived."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tsbandit.engine import Engine
from tsbandit.errors import StoreUnavailableError
from tsbandit.stores.memory import MemoryStore


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def status_of(client: Any, decision_id: str) -> Any:
    r = client.get(f"/v1/decisions/{decision_id}")
    return r.json()["status"] if r.status_code == 200 else r.status_code


def test_service_settles_and_purges_in_the_background(make_client, clock):
    engine = Engine(MemoryStore(retention=50.0), seed=0, clock=clock)
    client = make_client(engine, sweep_interval=0.02, default_bandit=False)
    r = client.post("/v1/bandits", json={"name": "ads", "arms": ["a", "b"], "reward_window": 1,
                                         "default_reward": 0})
    assert r.status_code == 201
    silent = client.post("/v1/bandits/ads/decisions", json={}).json()
    rewarded = client.post("/v1/bandits/ads/decisions", json={}).json()
    client.post("/v1/bandits/ads/rewards", json={"decision_id": rewarded["decision_id"],
                                                 "reward": 1})
    time.sleep(0.1)  # several ticks: nothing is due yet
    assert status_of(client, silent["decision_id"]) == "pending"
    clock.advance(2)
    wait_for(lambda: status_of(client, silent["decision_id"]) == "expired")
    arms = client.get("/v1/bandits/ads/stats").json()["arms"]
    assert sum(a["pulls"] for a in arms) == 2  # the default reward was learned, once
    assert sum(a["rewards"] for a in arms) == 1
    line = f'tsbandit_decisions_expired_total{{arm="{silent["arm"]}",bandit="ads"}} 1.0'
    assert line in client.get("/metrics").text
    # within the retention a repeat is a duplicate; after it both are purged: 404
    body = {"decision_id": rewarded["decision_id"], "reward": 1}
    assert client.post("/v1/bandits/ads/rewards", json=body).json()["status"] == "duplicate"
    clock.advance(50)
    wait_for(lambda: status_of(client, rewarded["decision_id"]) == 404)
    wait_for(lambda: status_of(client, silent["decision_id"]) == 404)
    r = client.post("/v1/bandits/ads/rewards", json=body)
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"
    assert sum(a["pulls"] for a in client.get("/v1/bandits/ads/stats").json()["arms"]) == 2


def test_sweeper_survives_store_errors_and_stops_at_shutdown(make_client, clock, caplog):
    engine = Engine(MemoryStore(), seed=0, clock=clock)
    real_sweep = engine.sweep
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise StoreUnavailableError("store down (test)")
        return real_sweep(*args, **kwargs)

    engine.sweep = flaky  # type: ignore[method-assign]
    client = make_client(engine, sweep_interval=0.02, default_bandit=False)
    client.post("/v1/bandits", json={"name": "ads", "arms": ["a"], "reward_window": 1})
    d = client.post("/v1/bandits/ads/decisions", json={}).json()
    clock.advance(2)
    wait_for(lambda: status_of(client, d["decision_id"]) == "expired")
    sweeper = client.app.state.sweeper
    wait_for(lambda: sweeper.runs >= 1)  # counted once the settling sweep has returned
    assert sweeper.failures == 3 and sweeper.alive
    assert "sweep failed (StoreUnavailableError" in caplog.text
    assert client.get("/healthz").status_code == 200
    client.__exit__(None, None, None)  # shutdown (the fixture's exit is then a no-op)
    assert not sweeper.alive


def test_sweeper_off_with_zero_interval(make_client):
    client = make_client(sweep_interval=0)
    assert client.app.state.sweeper is None


@pytest.mark.parametrize("value", ["-1", "x"])
def test_bad_sweep_settings_are_refused(monkeypatch, value):
    from pydantic import ValidationError

    from tsbandit.service import Settings

    monkeypatch.setenv("TSBANDIT_SWEEP_INTERVAL", value)
    with pytest.raises(ValidationError):
        Settings()


def test_retention_and_events_maxlen_reach_the_store(tmp_path):
    from fastapi.testclient import TestClient

    from tsbandit.service import Settings, create_app

    settings = Settings(store=f"sqlite:///{tmp_path / 's.db'}", retention=60,
                        events_maxlen=100, default_bandit=False, log_format="none")
    with TestClient(create_app(settings)) as client:
        store = client.app.state.runtime.engine.store
        store = getattr(store, "inner", store)  # under the metrics wrapper
        assert (store.retention, store.events_maxlen) == (60.0, 100)
