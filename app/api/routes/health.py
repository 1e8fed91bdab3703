"""Liveness, readiness and the configured endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import RuntimeDep, TenantDep
from app.services.endpoint_views import endpoint_items

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(runtime: RuntimeDep) -> dict[str, str | int]:
    """The HTTP process is up (always 200), with the job runner's last known state:
    ``runner`` is ``up``, ``stalled``, ``down``, ``restarting``, ... (see ``/readyz``)."""
    return {"status": "ok", **runtime.runner_health.as_dict()}


@router.get("/readyz", tags=["health"])
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    """The database answers and the runner (when enabled) is alive."""
    await runtime.check_ready()
    return {"status": "ready"}


@router.get("/v1/endpoints", tags=["endpoints"])
async def endpoints(runtime: RuntimeDep, _: TenantDep) -> dict[str, Any]:
    """Configured aliases with their limits, this process's live limiter state and, with
    ``INF_LIMITER_BACKEND=postgres|redis``, the shared limiter's state read from its store
    (``shared``: budgets, pause and slots by holding process; ``null`` with ``local``)."""
    return {"items": await endpoint_items(runtime)}
