"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served with their assets from this machine.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, so behind a firewall (or on a
laptop on a plane) they are blank. The assets come instead from the ``fastapi-offline``
package (MIT; it ships Swagger UI's and ReDoc's own distribution files, which carry their
licenses) and are served under ``/docs/assets/``. The pages load nothing from elsewhere.
"""

from __future__ import annotations

from functools import cache
from importlib import util
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

__all__ = ["ASSETS", "assets_dir", "install_docs"]

#: asset name -> media type (the files of fastapi-offline's ``static`` folder)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_PREFIX = "/docs/assets"


def assets_dir() -> Path | None:
    """The folder of the packaged Swagger UI and ReDoc assets, or ``None`` when the
    ``fastapi-offline`` package is not installed (then the pages fall back to FastAPI's CDN
    defaults)."""
    spec = util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / name).is_file() for name in ASSETS) else None


@cache
def _read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


def install_docs(app: FastAPI, openapi_url: str, title: str) -> list[str]:
    """Add ``/docs``, ``/redoc`` and (when the assets are installed) ``/docs/assets/{name}``
    to ``app``. Returns the paths added (for the app's table of served routes)."""
    folder = assets_dir()
    if folder is not None:
        swagger = get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI",
            swagger_js_url=f"{_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{_PREFIX}/favicon.png")
        redoc = get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                               redoc_js_url=f"{_PREFIX}/redoc.standalone.js",
                               redoc_favicon_url=f"{_PREFIX}/favicon.png",
                               with_google_fonts=False)
    else:  # pragma: no cover - the server extra installs fastapi-offline
        swagger = get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - Swagger UI")
        redoc = get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc")
    swagger_body, redoc_body = bytes(swagger.body), bytes(redoc.body)

    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_body)

    async def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc_body)

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_ui, methods=["GET"], include_in_schema=False)
    paths = ["/docs", "/redoc"]
    if folder is not None:
        assets = folder

        async def asset(name: str) -> Response:
            media = ASSETS.get(name)
            if media is None:
                raise HTTPException(404, f"no docs asset {name!r}")
            return Response(_read(assets, name), media_type=media,
                            headers={"Cache-Control": "public, max-age=86400"})

        app.add_api_route(f"{_PREFIX}/{{name}}", asset, methods=["GET"],
                          include_in_schema=False)
        paths.append(f"{_PREFIX}/{{name}}")
    return paths
