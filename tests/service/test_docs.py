"""/docs and /redoc reference only assets the service serves itself (the browser test renders
them with the network cut off)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tsbandit.service import Settings, create_app
from tsbandit.service.docs import ASSETS, assets_dir


@pytest.fixture
def client():
    with TestClient(create_app(Settings(store="memory://", log_format="none"))) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_only_local_assets(client, page):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert refs and all(ref.startswith("/docs/assets/") for ref in refs), refs
    assert "cdn.jsdelivr.net" not in r.text and "fonts.googleapis" not in r.text
    assert "/openapi.json" in r.text
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 1000, ref


def test_assets_are_packaged_and_unknown_ones_are_404(client):
    assert assets_dir() is not None  # the server extra installs fastapi-offline
    for name, media in ASSETS.items():
        r = client.get(f"/docs/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == media
    r = client.get("/docs/assets/..%2Fcore.py")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_docs_off_serves_no_pages():
    app = create_app(Settings(store="memory://", log_format="none", docs=False))
    with TestClient(app) as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
            assert c.get(path).status_code == 404
