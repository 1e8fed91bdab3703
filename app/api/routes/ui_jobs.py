"""The dashboard's job pages: the list, a job (live progress, graph, failures, cancel,
retry of the failed items, downloads) and an item. HTTP mapping only: the data comes from
``requests.dashboard``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import ReadSessionDep, RuntimeDep, SessionDep, ShortReadSessionDep
from app.api.schemas.common import INT32_MAX, INT64_MAX
from app.api.ui import CsrfUserDep, PageRoute, UiUser, UiUserDep, fragment, page
from app.dashboard.graph_svg import graph_svg
from app.lifecycle import TERMINAL_EVENTS, EventKind, JobStatus
from app.services.limits import output_limits
from app.services.observability import traces
from app.services.requests import dashboard, jobs, retries
from app.services.runtime import Runtime

router = APIRouter(prefix="/ui/jobs", include_in_schema=False, route_class=PageRoute)
PAGE_SIZE = 25
GRAPH_EVERY_S = 2.0  # the graph's counts (a grouped count) are redrawn at most this often
ITEMS_SHOWN = 50
LIVE_KINDS = frozenset(
    {EventKind.JOB_STARTED, EventKind.PROGRESS, EventKind.ITEMS_SUCCEEDED, EventKind.ITEM_FAILED}
) | frozenset(TERMINAL_EVENTS)
LISTED = [s.value for s in JobStatus if s is not JobStatus.UPLOADING]
Text = Annotated[str | None, Query(max_length=200)]


@router.get("")
async def jobs_list(
    request: Request,
    session: ReadSessionDep,
    user: UiUserDep,
    status: Text = None,
    graph: Text = None,
    since: Text = None,
    until: Text = None,
    before: Text = None,
) -> HTMLResponse:
    """The tenant's jobs, newest first, filtered by status, graph and time."""
    where, graph_ref = dashboard.job_filter(status or None, graph, since, until)
    listing = await dashboard.jobs_page(
        session, user.tenant_id, where, graph_ref, PAGE_SIZE, before
    )
    form = {"status": status, "graph": graph, "since": since, "until": until}
    older = _query(form, listing.next) if listing.next else None
    name = "_jobs_table.html" if request.headers.get("HX-Request") else "jobs.html"
    return page(
        request, name, user, listing=listing, statuses=LISTED, query=_query(form, before),
        older=older, live=before is None, form=form,
    )  # fmt: skip


def _query(form: dict[str, str | None], before: str | None) -> str:
    return urlencode({k: v for k, v in {**form, "before": before}.items() if v})


@router.get("/{job_id}")
async def job_page(
    request: Request,
    job_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    user: UiUserDep,
    after: Annotated[int, Query(ge=-1, le=INT32_MAX)] = -1,
) -> HTMLResponse:
    """A job: live progress, its graph with each node's state counts, failed items, cancel,
    results and trace downloads, and a page of its items."""
    data = await dashboard.job_page(session, user.tenant_id, job_id, after, ITEMS_SHOWN)
    svg = graph_svg(data.definition, data.node_counts)
    return page(request, "job.html", user, data=data, job=data.job, svg=svg, after=after)


@router.get("/{job_id}/nodes/{node_id}")
async def node_panel(
    request: Request,
    job_id: Annotated[str, Path(max_length=64)],
    node_id: Annotated[str, Path(max_length=128)],
    session: ReadSessionDep,
    user: UiUserDep,
) -> HTMLResponse:
    """The panel of one node of the job (fetched by a click on it in the graph): its
    duration percentiles and its first failures."""
    stats = await dashboard.node_stats(session, user.tenant_id, job_id, node_id)
    return page(request, "_node_panel.html", user, job_id=job_id, node_id=node_id, stats=stats)


@router.get("/{job_id}/progress")
async def job_progress(
    request: Request, job_id: Annotated[str, Path(max_length=64)], session: ReadSessionDep,
    user: UiUserDep,
) -> HTMLResponse:  # fmt: skip
    """The progress section alone."""
    view = await jobs.status(session, user.tenant_id, job_id)
    return page(request, "_progress.html", user, job=view)


@router.get("/{job_id}/live")
async def job_live(
    job_id: Annotated[str, Path(max_length=64)],
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    user: UiUserDep,
    after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> EventSourceResponse:
    """The progress section (SSE event ``section``), re-rendered on each of the job's events
    that moves it (from the job's event stream), the graph's counts (``graph``) at most every
    ``GRAPH_EVERY_S``; at the end both, then ``done``, so the page closes the stream before it
    ends."""
    await jobs.find(session, user.tenant_id, job_id)
    sections = _live_sections(runtime, user, job_id, after)
    return EventSourceResponse(sections, ping=runtime.settings.sse_ping_s)


async def _live_sections(
    runtime: Runtime, user: UiUser, job_id: str, after: int
) -> AsyncIterator[ServerSentEvent]:
    stream = runtime.events.follow(job_id, after)
    drawn = time.monotonic()
    async with aclosing(stream):
        async for batch in stream:
            if any(event.kind in LIVE_KINDS for event in batch):
                yield await _section(runtime, user, job_id, batch[-1].id)
                if time.monotonic() - drawn >= GRAPH_EVERY_S:
                    drawn = time.monotonic()
                    yield await _graph(runtime, user, job_id)
    yield await _section(runtime, user, job_id, None)
    yield await _graph(runtime, user, job_id)
    yield ServerSentEvent(data="", event="done")


async def _graph(runtime: Runtime, user: UiUser, job_id: str) -> ServerSentEvent:
    async with runtime.reads() as session:
        definition, counts = await dashboard.job_graph(session, user.tenant_id, job_id)
    return ServerSentEvent(data=graph_svg(definition, counts), event="graph")


async def _section(
    runtime: Runtime, user: UiUser, job_id: str, event_id: int | None
) -> ServerSentEvent:
    async with runtime.reads() as session:
        view = await jobs.status(session, user.tenant_id, job_id)
    html = fragment("_progress.html", job=view, csrf=user.csrf)
    return ServerSentEvent(
        data=html, event="section", id=None if event_id is None else str(event_id)
    )


@router.post("/{job_id}/cancel")
async def cancel(
    job_id: Annotated[str, Path(max_length=64)],
    runtime: RuntimeDep,
    session: SessionDep,
    user: CsrfUserDep,
) -> RedirectResponse:
    """Cancel the job (the form carries the session's CSRF token), then show it again."""
    await jobs.cancel(runtime, session, user.tenant_id, job_id)
    return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)


@router.post("/{job_id}/retry")
async def retry(
    job_id: Annotated[str, Path(max_length=64)],
    runtime: RuntimeDep,
    session: SessionDep,
    user: CsrfUserDep,
) -> RedirectResponse:
    """Run the job's failed items again as a new job (the form carries the session's CSRF
    token), then show the new job."""
    job = await retries.retry(runtime, session, user.tenant_id, job_id)
    return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)


@router.get("/{job_id}/results.jsonl")
async def results(
    job_id: Annotated[str, Path(max_length=64)],
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    user: UiUserDep,
) -> StreamingResponse:
    """Every item's result as JSONL, downloaded."""
    await jobs.find(session, user.tenant_id, job_id)
    lines = jobs.results_jsonl(runtime.reads, job_id, runtime.settings.max_page_size)
    headers = {"Content-Disposition": f'attachment; filename="{job_id}-results.jsonl"'}
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)


@router.get("/{job_id}/trace.json")
async def trace(
    job_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    user: UiUserDep,
    after: Annotated[int, Query(ge=-1, le=INT32_MAX)] = -1,
) -> JSONResponse:
    """The Chrome trace of the job's first 1,000 items (after ``after``), downloaded."""
    found = await traces.job_trace(session, user.tenant_id, job_id, after, 1_000)
    headers = {"Content-Disposition": f'attachment; filename="{job_id}-trace.json"'}
    return JSONResponse(found, headers=headers)


@router.get("/{job_id}/items/{index}")
async def item_page(
    request: Request,
    job_id: Annotated[str, Path(max_length=64)],
    index: Annotated[int, Path(ge=0, le=INT32_MAX)],
    session: ReadSessionDep,
    runtime: RuntimeDep,
    user: UiUserDep,
) -> HTMLResponse:
    """One item: its input, output or error, every node's record and every llm node's
    rendered prompt."""
    limits = output_limits(runtime.settings)
    key = (user.tenant_id, job_id, index)
    data = await dashboard.item_page(session, runtime.programs, limits, key)
    return page(request, "item.html", user, job_id=job_id, item=data.item, prompts=data.prompts)
