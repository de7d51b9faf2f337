"""`/docs` (Swagger UI) and `/redoc` that work with no network: their scripts, styles and favicon are
served by this app from the `fastapi-offline` package (no CDN, no Google Fonts, no online validator).
A Content-Security-Policy keeps the pages on this server: ReDoc's sidebar credit links a logo on its
CDN, which the browser then never requests."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc...
SAME_ORIGIN = {"Content-Security-Policy": "default-src 'self' 'unsafe-inline' data: blob:"}


def install_docs(app: FastAPI) -> None:
    """Mount the assets and add the two pages (create the app with docs_url=None, redoc_url=None)."""
    app.mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "").rstrip("/")
        return root + app.openapi_url, root + ASSETS

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        page = get_swagger_ui_html(
            openapi_url=openapi, title=f"{app.title} - Swagger UI", oauth2_redirect_url=None,
            swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png", swagger_ui_parameters={"validatorUrl": None})
        page.headers.update(SAME_ORIGIN)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        page = get_redoc_html(openapi_url=openapi, title=f"{app.title} - ReDoc", with_google_fonts=False,
                              redoc_js_url=f"{assets}/redoc.standalone.js", redoc_favicon_url=f"{assets}/favicon.png")
        page.headers.update(SAME_ORIGIN)
        return page
