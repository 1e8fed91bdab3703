"""``/v1/optimizations``: train a graph version's parameters on stored datasets (or project
the run with ``dry_run``); status, list, events, cancel."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
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
from app.api.schemas.optimizations import OptimizationOut, OptimizationPage, ProjectionOut
from app.services.optimization.spec import OptimizationSpec
from app.services.requests import optimizations
from app.services.requests.documents import parse_json

router = APIRouter(prefix="/v1/optimizations", tags=["optimizations"])

SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": inline_schema(OptimizationSpec)}},
    }
}


@router.post(
    "",
    status_code=202,
    response_model=OptimizationOut | ProjectionOut,
    openapi_extra=SUBMIT_BODY,
    responses={200: {"model": ProjectionOut, "description": "dry_run: the projection"}},
)
async def start_optimization(
    request: Request, response: Response, runtime: RuntimeDep, session: SessionDep,
    tenant: TenantDep,
) -> OptimizationOut | ProjectionOut:  # fmt: skip
    """Queue an optimization run (202), or with ``dry_run: true`` answer its projection per
    role (200) and store nothing. A body naming an unknown graph, version, parameter, dataset,
    alias or output, or a budget too small for a baseline and three steps, is refused with one
    422 naming each field; nothing is stored."""
    settings = runtime.settings
    raw = await read_body(request, JSON, settings.max_json_bytes)
    body: Any = await asyncio.to_thread(parse_json, raw, max_depth=settings.max_document_depth)
    accepted = await optimizations.accept(runtime, session, tenant, body)
    if accepted.job is None:
        assert accepted.projection is not None
        response.status_code = 200
        return ProjectionOut.model_validate(accepted.projection.to_dict())
    return OptimizationOut.model_validate(
        await optimizations.status(session, tenant, accepted.job.id)
    )


@router.get("", response_model=OptimizationPage)
async def list_optimizations(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[
        str | None, Query(max_length=200, description="the 'next' of the previous page")
    ] = None,
) -> OptimizationPage:
    """The tenant's optimization runs, newest first."""
    views, nxt = await optimizations.listing(session, tenant, limit, before)
    return OptimizationPage(items=[OptimizationOut.model_validate(v) for v in views], next=nxt)


@router.get("/{optimization_id}", response_model=OptimizationOut)
async def optimization_status(
    optimization_id: str, session: ReadSessionDep, tenant: TenantDep
) -> OptimizationOut:
    """State, stop reason and root error, counters per role, the best version with its score
    and interval, every step's proposals and decision, and the test result."""
    return OptimizationOut.model_validate(
        await optimizations.status(session, tenant, optimization_id)
    )


@router.get(
    "/{optimization_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the event stream"}},
)
async def optimization_events(
    optimization_id: str,
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    tenant: TenantDep,
    after: EventsAfter = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Server-Sent Events, as a job's: the training events (``step_started``, ``proposal``,
    ``accepted``/``rejected``, ``validated``, ``budget``, ``finished``, ...) and state changes;
    resumable with ``Last-Event-ID``; the stream ends after the terminal event."""
    await optimizations.find(session, tenant, optimization_id)
    stream = runtime.events.follow(optimization_id, resume_after(last_event_id, after))
    return EventSourceResponse(as_sse(stream, runtime), ping=runtime.settings.sse_ping_s)


@router.post("/{optimization_id}/cancel", response_model=OptimizationOut)
async def cancel_optimization(
    optimization_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> OptimizationOut:
    """Stop the run now; the versions its accepted steps created stay."""
    await optimizations.cancel(runtime, session, tenant, optimization_id)
    return OptimizationOut.model_validate(
        await optimizations.status(session, tenant, optimization_id)
    )
