"""``GET /metrics``: Prometheus text for the whole service (HTTP and runner processes).

Open by default (Prometheus scrapes it); with ``INF_METRICS_TOKEN`` set it needs
``Authorization: Bearer <token>``, since it shows job counts, tokens and costs of every tenant.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import RuntimeDep
from app.services.requests.auth import check_token

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(
    runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Every ``inf_*`` metric family (DESIGN §9), bounded labels only."""
    token = runtime.settings.metrics_token
    if token is not None:
        check_token(token.get_secret_value(), authorization)
    return Response(await runtime.metrics_exposition(), media_type=CONTENT_TYPE_LATEST)
