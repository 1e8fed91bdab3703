"""Where the dashboard's files are, and the URLs of the vendored assets (see
``static/vendor/VERSIONS.md`` for their versions and licences)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
STATIC_URL = "/ui/static"

VENDOR = f"{STATIC_URL}/vendor"
HTMX_JS = f"{VENDOR}/htmx-2.0.11/htmx.min.js"
HTMX_SSE_JS = f"{VENDOR}/htmx-ext-sse-2.2.4/sse.min.js"
SWAGGER_JS = f"{VENDOR}/swagger-ui-dist-5.35.0/swagger-ui-bundle.js"
SWAGGER_CSS = f"{VENDOR}/swagger-ui-dist-5.35.0/swagger-ui.css"
SWAGGER_FAVICON = f"{VENDOR}/swagger-ui-dist-5.35.0/favicon-32x32.png"
REDOC_JS = f"{VENDOR}/redoc-2.5.4/redoc.standalone.js"
DASHBOARD_CSS = f"{STATIC_URL}/dashboard.css"
DASHBOARD_JS = f"{STATIC_URL}/dashboard.js"
SWAGGER_INIT_JS = f"{STATIC_URL}/swagger-init.js"
DOCS_CSS = f"{STATIC_URL}/docs.css"
