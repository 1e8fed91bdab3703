"""``POST /v1/runs``: one input, synchronously."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RuntimeDep, SessionDep, TenantDep
from app.api.schemas.runs import RunRequest, RunResponse
from app.services import runs

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post("", response_model=RunResponse)
async def run_graph(
    body: RunRequest, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> RunResponse:
    """Run a stored graph on one input and return its outputs and every node's record.

    Node failures are reported in the answer (``status: failed``), not as an HTTP error.
    """
    answer = await runs.run_once(runtime, session, tenant, body.graph_id, body.version, body.inputs)
    return RunResponse(**answer)
