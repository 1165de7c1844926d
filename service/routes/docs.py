"""``/docs``: Swagger UI from the assets packaged in ``fastapi-offline`` (no CDN, so the page
works on a machine without internet)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    """The Swagger UI bundle, CSS and favicon; the app mounts this at ``ASSETS``."""
    return StaticFiles(directory=str(files("fastapi_offline") / "static"))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive API documentation."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title="litrag - API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
    )
