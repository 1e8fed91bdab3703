"""``GET /metrics`` of an ``inf-engine worker`` (``INF_METRICS_PORT``): a one-route app on the
worker's event loop, so the runner's limiter, job and call metrics can be scraped from every
worker process. ``INF_METRICS_TOKEN`` protects it as it protects the API's ``/metrics``.

    async with serving(settings)(exposition):  # while the worker runs
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api import errors
from app.services.requests.auth import check_token
from app.settings import Settings

Exposition = Callable[[], Awaitable[bytes]]
STARTUP_TIMEOUT_S = 10.0


def metrics_app(settings: Settings, exposition: Exposition) -> FastAPI:
    """The app: ``GET /metrics`` only, answering errors as problem details."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    errors.install(app)
    token = settings.metrics_token

    @app.get("/metrics", response_class=Response)
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        if token is not None:
            check_token(token.get_secret_value(), authorization)
        return Response(await exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def serving(settings: Settings) -> Callable[[Exposition], AbstractAsyncContextManager[object]]:
    """What ``run_worker`` opens to serve its metrics on ``INF_HOST:INF_METRICS_PORT``."""
    return lambda exposition: _served(settings, exposition)


@contextlib.asynccontextmanager
async def _served(settings: Settings, exposition: Exposition) -> AsyncIterator[None]:
    assert settings.metrics_port is not None
    config = uvicorn.Config(
        metrics_app(settings, exposition),
        host=settings.host,
        port=settings.metrics_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(), name="worker-metrics")
    try:
        await _started(server, task)
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Wait until the port is open; raise if the server could not start (port taken)."""
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while not server.started:
            if task.done():
                task.result()  # its exception, if any
                raise RuntimeError("the metrics server stopped at start (port in use?)")
            await asyncio.sleep(0.02)


class _Server(uvicorn.Server):
    """Uvicorn without its signal handlers: the worker's own handle SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
