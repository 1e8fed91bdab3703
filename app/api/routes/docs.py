"""``/docs`` and ``/redoc``: Swagger UI and ReDoc from the package's vendored assets, so the
API's documentation works on a closed network (no CDN, no web fonts), under a strict
Content-Security-Policy: no inline script (Swagger UI starts from ``swagger-init.js``; ReDoc
from its ``<redoc spec-url>`` element)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.api.ui import SECURITY_HEADERS, templates

router = APIRouter(include_in_schema=False)

# The dashboard's policy, with two exceptions. Styles: Swagger UI sets style attributes and
# ReDoc injects <style> elements (styled-components) as they render, and neither can be given
# a nonce or a hash, so style-src allows 'unsafe-inline'. Workers: ReDoc builds its search
# index in a worker made from a blob: URL of its own bundled code. Scripts stay 'self' only.
DOCS_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    ),
}


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the service's OpenAPI document."""
    return _page(request, "docs_swagger.html", "Swagger UI")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the service's OpenAPI document."""
    return _page(request, "docs_redoc.html", "ReDoc")


def _page(request: Request, name: str, tool: str) -> HTMLResponse:
    context = {"title": f"{request.app.title} - {tool}", "openapi_url": request.app.openapi_url}
    response = templates.TemplateResponse(request, name, context)
    response.headers.update(DOCS_HEADERS)
    return response
