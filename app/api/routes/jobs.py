"""``/v1/jobs``: submit (JSON list or JSONL upload), list, status, results, items, cancel,
retry of the failed items."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.datastructures import FormData, UploadFile

from app.api.bodies import media_type, read_model, validated
from app.api.deps import (
    EventsAfter,
    LastEventId,
    PageBefore,
    PageLimit,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    ShortReadSessionDep,
    TenantDep,
)
from app.api.run_kinds import EVENT_STREAM, event_stream
from app.api.schemas.common import INT32_MAX, problem_response
from app.api.schemas.jobs import ItemDetail, JobForm, JobPage, JobRequest, JobStatus, ResultPage
from app.lifecycle import JobStatus as JobState
from app.services.errors import InvalidInput, Issue
from app.services.ledger.options import LedgerOptions
from app.services.observability import traces
from app.services.observability.tracing import submitted_context
from app.services.requests import jobs, retries
from app.services.requests.documents import check_value
from app.services.requests.jobs import JobSpec
from app.services.runtime import Runtime

# A job being uploaded is listed by no one, so no filter names its status.
LISTED_STATUSES = f"^({'|'.join(s for s in JobState if s is not JobState.UPLOADING)})$"
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JobRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["graph_id", "inputs"],
                    "properties": {
                        "graph_id": {"type": "string"},
                        "version": {"type": "integer", "minimum": 1, "maximum": INT32_MAX},
                        "priority": {"type": "integer", "minimum": -1_000, "maximum": 1_000},
                        "webhook_url": {"type": "string", "format": "uri"},
                        "cache": {"type": "string", "enum": ["off", "read", "read_write"]},
                        "replay": {"type": "string", "enum": ["strict"]},
                        "inputs": {"type": "string", "format": "binary", "description": "JSONL"},
                    },
                }
            },
        },
    }
}


@router.post("", status_code=202, response_model=JobStatus, openapi_extra=SUBMIT_BODY)
async def submit_job(
    request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> JobStatus:
    """Queue a job. Inputs come as ``inputs`` (a JSON list) or as a JSONL file in a multipart
    upload (one JSON object per line; a bad line is reported with its number)."""
    if media_type(request) == "multipart/form-data":
        job_id = await _submit_upload(request, runtime, tenant)
    else:
        body = await read_model(request, runtime.settings, JobRequest, "job request")
        spec = replace(_spec(body), trace=submitted_context(runtime.tracing, request.headers))
        job_id = (await jobs.accept(runtime, session, tenant, spec, body.inputs)).id
    return JobStatus.model_validate(await jobs.status(session, tenant, job_id))


def _url(value: Any) -> str | None:
    return str(value) if value is not None else None


async def _submit_upload(request: Request, runtime: Runtime, tenant: str) -> str:
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("inputs")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "upload the inputs as a file field named 'inputs'",
                [Issue("inputs", "missing file")],
            )
        spec = replace(_form_spec(form), trace=submitted_context(runtime.tracing, request.headers))
        return await jobs.accept_jsonl(runtime, tenant, spec, upload)
    finally:
        await form.close()


def _form_spec(form: FormData) -> JobSpec:
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    fields.pop("inputs", None)
    check_value(fields)
    checked = validated(JobForm, fields, "job request")
    return _spec(checked)


def _spec(body: JobRequest) -> JobSpec:
    ledger = LedgerOptions(body.cache, body.replay)
    return JobSpec(body.graph_id, body.version, body.priority, _url(body.webhook_url), ledger)


@router.get("", response_model=JobPage)
async def list_jobs(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: PageLimit = 50,
    before: PageBefore = None,
    status: Annotated[str | None, Query(pattern=LISTED_STATUSES)] = None,
) -> JobPage:
    """The tenant's jobs, newest first."""
    views, nxt = await jobs.listing(session, tenant, limit, before, status)
    return JobPage(items=[JobStatus.model_validate(view) for view in views], next=nxt)


@router.get("/{job_id}", response_model=JobStatus)
async def job_status(job_id: str, session: ReadSessionDep, tenant: TenantDep) -> Response:
    """Status with counts, throughput, ETA, tokens and cost."""
    status = JobStatus.model_validate(await jobs.status(session, tenant, job_id))
    # Serialized here, once: the most frequent request skips a second validation.
    return Response(status.model_dump_json(), media_type="application/json")


@router.get("/{job_id}/results", response_model=ResultPage)
async def job_results(
    job_id: str,
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    tenant: TenantDep,
    after: Annotated[
        int, Query(ge=-1, le=INT32_MAX, description="return items after this index")
    ] = -1,
    limit: PageLimit = 100,
    format: Annotated[str, Query(pattern="^(json|jsonl)$")] = "json",
    custom_id: Annotated[
        str | None,
        Query(min_length=1, max_length=512, description="only the item with this custom_id"),
    ] = None,
) -> Any:
    """Results in input order: pages of JSON, or (``format=jsonl``) every item streamed.
    With ``custom_id``, only the item submitted with it (none when no item has it)."""
    if custom_id is not None:
        return await _result_by_custom_id(session, tenant, job_id, custom_id, format)
    if format == "jsonl":
        await jobs.find(session, tenant, job_id)
        lines = jobs.results_jsonl(runtime.reads, job_id, runtime.settings.max_page_size)
        return StreamingResponse(lines, media_type="application/x-ndjson")
    return ResultPage.model_validate(await jobs.results_page(session, tenant, job_id, after, limit))


async def _result_by_custom_id(
    session: ShortReadSessionDep, tenant: str, job_id: str, custom_id: str, format: str
) -> Any:
    found = await jobs.result_by_custom_id(session, tenant, job_id, custom_id)
    if format == "jsonl":
        lines = b"".join(jobs.jsonl_line(item) for item in found.items)
        return Response(lines, media_type="application/x-ndjson")
    return ResultPage.model_validate(found)


@router.get("/{job_id}/items/{index}", response_model=ItemDetail)
async def job_item(
    job_id: str,
    index: Annotated[int, Path(ge=0, le=INT32_MAX)],
    session: ReadSessionDep,
    tenant: TenantDep,
) -> ItemDetail:
    """One item: its input, outputs or error, and every node's record."""
    return ItemDetail.model_validate(await jobs.item_detail(session, tenant, job_id, index))


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=EVENT_STREAM)
async def job_events(
    job_id: str,
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    tenant: TenantDep,
    after: EventsAfter = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Server-Sent Events: the job's state changes, item completions and failures, and periodic
    ``progress``, each with its id. Reconnect with ``Last-Event-ID`` to get every event missed;
    the stream ends after the job's terminal event."""
    await jobs.find(session, tenant, job_id)
    return event_stream(runtime, job_id, last_event_id, after)


@router.get("/{job_id}/trace")
async def job_trace(
    job_id: str,
    runtime: RuntimeDep,
    session: ReadSessionDep,
    tenant: TenantDep,
    after: Annotated[int, Query(ge=-1, le=INT32_MAX, description="items after this index")] = -1,
    items: Annotated[int, Query(ge=1, le=10_000, description="how many items")] = 1_000,
) -> dict[str, Any]:
    """The Chrome trace (open it in Perfetto) of a range of the job's items: a span per node,
    a lane group per endpoint alias with a thread per concurrency slot (each call from its slot
    to its answer; its wait for the slot is a ``queue`` slice of its own), in-flight counters."""
    slots = {alias: e.max_concurrent for alias, e in runtime.endpoints.endpoints.items()}
    # No item index is above INT32_MAX: a range reaching past it ends there.
    count = min(items, INT32_MAX - after)
    return await traces.job_trace(session, tenant, job_id, after, count, slots)


@router.post("/{job_id}/cancel", response_model=JobStatus)
async def cancel_job(
    job_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> JobStatus:
    """Stop dispatching new items now; finished results stay readable."""
    await jobs.cancel(runtime, session, tenant, job_id)
    return JobStatus.model_validate(await jobs.status(session, tenant, job_id))


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=JobStatus,
    responses={409: problem_response("the job has not ended, or none of its items failed")},
)
async def retry_job(
    job_id: str, request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> JobStatus:
    """Queue a new job on the same graph version that runs exactly the items of this ended
    job that failed (their inputs, custom_id and metadata); it names this job in
    ``retry_of``."""
    trace = submitted_context(runtime.tracing, request.headers)
    job = await retries.retry(runtime, session, tenant, job_id, trace)
    return JobStatus.model_validate(await jobs.status(session, tenant, job.id))
