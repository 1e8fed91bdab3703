"""``GET /metrics``: Prometheus text for the whole service (HTTP and runner processes)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Every ``inf_*`` metric family (DESIGN §9), bounded labels only."""
    return Response(await runtime.metrics_exposition(), media_type=CONTENT_TYPE_LATEST)
