"""``/v1/evaluations``: score a graph version (or two, paired) on a dataset; status and
result, list, events, cancel."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse

from app.api.bodies import JSON, inline_schema, read_body
from app.api.deps import (
    EventsAfter,
    LastEventId,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    ShortReadSessionDep,
    TenantDep,
)
from app.api.routes.jobs import as_sse, resume_after
from app.api.schemas.evaluations import EvaluationOut, EvaluationPage
from app.services.optimization.spec import EvaluationSpec
from app.services.requests import evaluations
from app.services.requests.documents import parse_json

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"])

SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": inline_schema(EvaluationSpec)}},
    }
}


@router.post("", status_code=202, response_model=EvaluationOut, openapi_extra=SUBMIT_BODY)
async def start_evaluation(
    request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> EvaluationOut:
    """Queue an evaluation. A body naming an unknown graph, version, dataset, alias or output
    is refused with one 422 naming each field; nothing is stored."""
    settings = runtime.settings
    raw = await read_body(request, JSON, settings.max_json_bytes)
    body: Any = await asyncio.to_thread(parse_json, raw, max_depth=settings.max_document_depth)
    job = await evaluations.accept(runtime, session, tenant, body)
    return EvaluationOut.model_validate(await evaluations.status(session, tenant, job.id))


@router.get("", response_model=EvaluationPage)
async def list_evaluations(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[
        str | None, Query(max_length=200, description="the 'next' of the previous page")
    ] = None,
) -> EvaluationPage:
    """The tenant's evaluations, newest first (read one for its result)."""
    views, nxt = await evaluations.listing(session, tenant, limit, before)
    return EvaluationPage(items=[EvaluationOut.model_validate(v) for v in views], next=nxt)


@router.get("/{evaluation_id}", response_model=EvaluationOut)
async def evaluation_status(
    evaluation_id: str, session: ReadSessionDep, tenant: TenantDep
) -> EvaluationOut:
    """State and counts; once completed, per version mean, n, failures and interval, and for
    two versions the paired delta (b - a) with its interval."""
    return EvaluationOut.model_validate(await evaluations.status(session, tenant, evaluation_id))


@router.get(
    "/{evaluation_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the event stream"}},
)
async def evaluation_events(
    evaluation_id: str,
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    tenant: TenantDep,
    after: EventsAfter = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Server-Sent Events, as a job's: state changes, scored items, ``progress``; resumable
    with ``Last-Event-ID``; the stream ends after the terminal event."""
    await evaluations.find(session, tenant, evaluation_id)
    stream = runtime.events.follow(evaluation_id, resume_after(last_event_id, after))
    return EventSourceResponse(as_sse(stream, runtime), ping=runtime.settings.sse_ping_s)


@router.post("/{evaluation_id}/cancel", response_model=EvaluationOut)
async def cancel_evaluation(
    evaluation_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> EvaluationOut:
    """Stop scoring new items now; no result is given for a cancelled evaluation."""
    await evaluations.cancel(runtime, session, tenant, evaluation_id)
    return EvaluationOut.model_validate(await evaluations.status(session, tenant, evaluation_id))
