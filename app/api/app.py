"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import logs
from app.api import errors
from app.api.limits import BodyLimit, NoNulInURL
from app.api.observe import RequestMetrics
from app.api.routes import (
    batches,
    datasets,
    docs,
    evaluations,
    files,
    graphs,
    health,
    jobs,
    metrics,
    optimizations,
    runs,
    ui_auth,
    ui_evaluations,
    ui_graphs,
    ui_jobs,
    ui_optimizations,
    waits,
    webhooks,
)
from app.api.schemas.common import PROBLEM_RESPONSES
from app.api.server import uvicorn_options
from app.dashboard import assets
from app.services.runtime import start_runtime
from app.settings import Settings

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def untraced(scope: MutableMapping[str, Any]) -> bool:
    """Requests FastAPI makes no span for: liveness and readiness probes, metrics scrapes."""
    return scope.get("path") in UNTRACED_PATHS


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service; the lifespan builds the runtime (database, endpoints, runner) and closes it."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="inf-engine",
        version="0.1.0",
        description="Run LLM pipeline graphs and batch jobs at scale.",
        lifespan=lifespan,
        docs_url=None,  # served from the package's assets (routes/docs.py), never a CDN
        redoc_url=None,
        # FastAPI's own OpenTelemetry spans (a no-op until a tracer provider is set, which the
        # OTEL_* settings do): every request but the probes and scrapes polled all day.
        telemetry={"exclude": untraced},
    )
    # An upload's multipart body is its file plus a little framing.
    uploads = {"/v1/files": max(settings.max_request_bytes, settings.max_file_bytes + 65_536)}
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, paths=uploads)
    app.add_middleware(NoNulInURL)
    app.add_middleware(RequestMetrics)
    errors.install(app)
    # Routes match in this order: status polls, the most frequent request, are matched first.
    modules = (
        jobs, waits, graphs, datasets, evaluations, optimizations, runs, files, batches, webhooks,
        metrics, health,
    )  # fmt: skip
    for module in modules:
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    # The dashboard's session cookies and CSRF tokens are signed with this.
    secret = settings.ui_session_secret
    app.state.ui_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
    for page in (docs, ui_auth, ui_jobs, ui_graphs, ui_optimizations, ui_evaluations):
        app.include_router(page.router)
    app.mount(assets.STATIC_URL, StaticFiles(directory=assets.STATIC_DIR), name="ui-static")
    # Every route with its methods, for the Allow header of a 405.
    pages = (*modules, docs, ui_auth, ui_jobs, ui_graphs, ui_optimizations, ui_evaluations)
    app.state.method_routes = [route for module in pages for route in module.router.routes]
    return app


def serve(settings: Settings, app: FastAPI | None = None) -> None:
    """Run the service (``app``, else ``create_app(settings)``) with uvicorn until stopped,
    logging as configured (``log_level``, ``log_format``)."""
    import uvicorn

    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        **uvicorn_options(settings),
    )
