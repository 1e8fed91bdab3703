"""``/v1/batches``: the OpenAI Batch API (create, retrieve, cancel, list), as the ``openai``
SDK calls it, plus the batch's event stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from app.api import deps
from app.api.bodies import json_body, read_model
from app.api.run_kinds import EVENT_STREAM, event_stream
from app.services.batches import batches
from app.services.batches.batches import BatchCreate
from app.services.batches.views import batch_object

router = APIRouter(prefix="/v1/batches", tags=["batches"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=256)]


@router.post("", openapi_extra=json_body(BatchCreate))
async def create_batch(
    request: Request, runtime: deps.RuntimeDep, session: deps.SessionDep, tenant: deps.TenantDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:  # fmt: skip
    """Create a batch from an uploaded ``batch`` file; every line is checked first (one 422
    naming each bad line, nothing stored). A repeated create (same ``Idempotency-Key``, or the
    same request within the dedupe window) answers the batch made first."""
    spec = await read_model(request, runtime.settings, BatchCreate, "batch request")
    return batch_object(*await batches.create(runtime, session, tenant, spec, idempotency_key))


@router.get("")
async def list_batches(
    session: deps.SessionDep, tenant: deps.TenantDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:  # fmt: skip
    """The tenant's batches, newest first: ``{object: "list", data, has_more}``."""
    found, more = await batches.listing(session, tenant, limit, after)
    data = [batch_object(batch, job) for batch, job in found]
    return {"object": "list", "data": data, "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}  # fmt: skip


@router.get("/{batch_id}")
async def retrieve_batch(
    batch_id: str, session: deps.SessionDep, tenant: deps.TenantDep
) -> dict[str, Any]:
    """The batch; once its run ended, with its output and error files."""
    return batch_object(*await batches.retrieve(session, tenant, batch_id))


@router.post("/{batch_id}/cancel")
async def cancel_batch(
    batch_id: str, runtime: deps.RuntimeDep, session: deps.SessionDep, tenant: deps.TenantDep
) -> dict[str, Any]:
    """Stop the batch: ``cancelling`` until its lines in flight stop, then ``cancelled`` with
    the lines that ended in its output and error files."""
    return batch_object(*await batches.cancel(runtime, session, tenant, batch_id))


@router.get("/{batch_id}/events", response_class=EventSourceResponse, responses=EVENT_STREAM)
async def batch_events(
    batch_id: str, runtime: deps.RuntimeDep, session: deps.ShortReadSessionDep,
    tenant: deps.TenantDep, after: deps.EventsAfter = None,
    last_event_id: deps.LastEventId = None,
) -> EventSourceResponse:  # fmt: skip
    """The batch's run events (as a job's), resumable with ``Last-Event-ID``."""
    await batches.find(session, tenant, batch_id)
    return event_stream(runtime, batch_id, last_event_id, after)
