"""``/docs`` and ``/redoc``: Swagger UI and ReDoc from the package's vendored assets, so the
API's documentation works on a closed network (no CDN, no web fonts)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.dashboard import assets

router = APIRouter(include_in_schema=False)
# validatorUrl null: Swagger UI would otherwise send the document to an outside validator.
SWAGGER_PARAMETERS = {"validatorUrl": None}


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the service's OpenAPI document."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=assets.SWAGGER_JS,
        swagger_css_url=assets.SWAGGER_CSS,
        swagger_favicon_url=assets.SWAGGER_FAVICON,
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the service's OpenAPI document."""
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=assets.REDOC_JS,
        redoc_favicon_url=assets.SWAGGER_FAVICON,
        with_google_fonts=False,
    )
