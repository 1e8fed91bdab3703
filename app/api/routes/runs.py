"""``POST /v1/runs``: one input, synchronously."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from app.api.bodies import JSON, read_body, validated
from app.api.deps import RuntimeDep, TenantDep
from app.api.schemas.runs import RunRequest, RunResponse
from app.services.requests import runs
from app.services.requests.documents import parse_json

router = APIRouter(prefix="/v1/runs", tags=["runs"])

RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RunRequest.model_json_schema()}},
    }
}


@router.post("", response_model=RunResponse, openapi_extra=RUN_BODY)
async def run_graph(request: Request, runtime: RuntimeDep, tenant: TenantDep) -> RunResponse:
    """Run a stored graph on one input and return its outputs and every node's record.

    Node failures are reported in the answer (``status: failed``), not as an HTTP error.
    """
    # The body is read only once the caller is authenticated (TenantDep).
    raw = await read_body(request, JSON, runtime.settings.max_json_bytes)
    body = await asyncio.to_thread(_run_request, raw, runtime.settings.max_document_depth)
    answer = await runs.run_once(runtime, tenant, body.graph_id, body.version, body.inputs)
    return RunResponse(**answer)


def _run_request(raw: bytes, max_depth: int) -> RunRequest:
    return validated(RunRequest, parse_json(raw, max_depth=max_depth), "run request")
