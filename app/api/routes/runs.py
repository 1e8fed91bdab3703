"""``POST /v1/runs``: one input, synchronously."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.bodies import json_body, read_model
from app.api.deps import RuntimeDep, TenantDep
from app.api.schemas.runs import RunRequest, RunResponse
from app.services.ledger.options import LedgerOptions
from app.services.requests import runs

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post("", response_model=RunResponse, openapi_extra=json_body(RunRequest))
async def run_graph(request: Request, runtime: RuntimeDep, tenant: TenantDep) -> RunResponse:
    """Run a stored graph on one input and return its outputs and every node's record.

    Node failures are reported in the answer (``status: failed``), not as an HTTP error.
    """
    # The body is read only once the caller is authenticated (TenantDep).
    body = await read_model(request, runtime.settings, RunRequest, "run request")
    ledger = LedgerOptions(body.cache, body.replay)
    answer = await runs.run_once(runtime, tenant, body.graph_id, body.version, body.inputs, ledger)
    return RunResponse(**answer)
