"""Request metrics: every HTTP answer counted and timed by method, route template and status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.observability.metrics import ServiceMetrics


class RequestMetrics:
    """ASGI middleware feeding ``inf_http_requests_total`` and
    ``inf_http_request_duration_seconds`` (labelled by the route's template, never its path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            _record(scope, status, time.perf_counter() - started)


def _record(scope: Scope, status: int, seconds: float) -> None:
    runtime = getattr(scope["app"].state, "runtime", None)
    if runtime is None:
        return
    metrics: ServiceMetrics = runtime.metrics
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    metrics.http_requests.labels(scope["method"], route, str(status)).inc()
    metrics.http_duration.labels(scope["method"], route).observe(seconds)
