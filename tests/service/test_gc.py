"""The app's lifespan moves the worker's long-lived objects out of the collector's reach
(TSBANDIT_GC_FREEZE) and gives them back at shutdown."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from tsbandit.service import Settings, create_app


@pytest.mark.parametrize("freeze", [True, False])
def test_lifespan_freezes_and_unfreezes(freeze: bool) -> None:
    gc.unfreeze()
    app = create_app(Settings(store="memory://", seed=0, gc_freeze=freeze))
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert client.post("/v1/bandits/credit_card_offers/decisions", json={}).status_code == 200
        if freeze:
            # the app, its routes and the store are among the frozen objects
            assert frozen > 10_000
            assert gc.get_freeze_count() <= frozen  # requests add nothing to it
        else:
            assert frozen == 0
    assert gc.get_freeze_count() == 0
