"""``/v1/jobs/{id}/waits`` and ``/v1/jobs/{id}/items/{i}/input/{node}``: human input."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from app.api.bodies import read_model
from app.api.deps import ReadSessionDep, RuntimeDep, SessionDep, TenantDep
from app.api.schemas.common import INT32_MAX
from app.api.schemas.waits import AnswerRequest, Wait, WaitList
from app.services.requests import waits

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
NodeId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/{job_id}/waits", response_model=WaitList)
async def list_waits(job_id: str, session: ReadSessionDep, tenant: TenantDep) -> WaitList:
    """The job's waits at human nodes, with their rendered prompts, and answers kept."""
    rows = await waits.list_waits(session, tenant, job_id)
    return WaitList(data=[Wait.model_validate(row) for row in rows])


@router.post("/{job_id}/items/{index}/input/{node}", response_model=Wait)
async def answer(
    job_id: str,
    index: Annotated[int, Path(ge=0, le=INT32_MAX)],
    node: NodeId,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
) -> Wait:
    """Answer one wait: 422 naming the field when the answer does not match the node's
    schema, 409 when the wait was answered (or timed out) already. An answer sent before the
    item reaches the node is kept and used when it does."""
    body = await read_model(request, runtime.settings, AnswerRequest, "answer")
    row = await waits.answer(session, runtime.programs, tenant, (job_id, index, node), body.answer)
    return Wait.model_validate(row)
