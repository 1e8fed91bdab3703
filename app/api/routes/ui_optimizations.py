"""The dashboard's optimization pages: the runs and evaluations list, and one run (a live
score curve, budget use by role, accepted and rejected steps with their parameter diffs,
promote and rollback of the graph's active version). HTTP mapping only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import ReadSessionDep, RuntimeDep, SessionDep, ShortReadSessionDep
from app.api.schemas.common import INT32_MAX, INT64_MAX
from app.api.ui import CsrfUserDep, PageRoute, UiUser, UiUserDep, fragment, page
from app.dashboard.score_svg import score_svg
from app.services.requests import activation, dashboard_runs, optimizations
from app.services.runtime import Runtime

router = APIRouter(prefix="/ui/optimizations", include_in_schema=False, route_class=PageRoute)
RUNS_SHOWN = 50
RunId = Annotated[str, Path(max_length=64)]


@router.get("")
async def runs_list(request: Request, session: ReadSessionDep, user: UiUserDep) -> HTMLResponse:
    """The tenant's newest optimization runs and evaluations with their state and score."""
    listing = await dashboard_runs.runs_page(session, user.tenant_id, RUNS_SHOWN)
    return page(request, "optimizations.html", user, listing=listing)


@router.get("/{run_id}")
async def run_page(
    request: Request, run_id: RunId, session: ReadSessionDep, user: UiUserDep
) -> HTMLResponse:
    """A run: its score curve, budget by role and steps, live until it ends."""
    data = await dashboard_runs.run_page(session, user.tenant_id, run_id)
    curve = score_svg(data.points)
    return page(request, "optimization.html", user, data=data, run=data.run, curve=curve)


@router.get("/{run_id}/live")
async def run_live(
    run_id: RunId,
    runtime: RuntimeDep,
    session: ShortReadSessionDep,
    user: UiUserDep,
    after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> EventSourceResponse:
    """The run's live section (SSE event ``section``) re-rendered on each batch of its events,
    once more at the end, then ``done``."""
    await optimizations.find(session, user.tenant_id, run_id)
    sections = _live_sections(runtime, user, run_id, after)
    return EventSourceResponse(sections, ping=runtime.settings.sse_ping_s)


async def _live_sections(
    runtime: Runtime, user: UiUser, run_id: str, after: int
) -> AsyncIterator[ServerSentEvent]:
    stream = runtime.events.follow(run_id, after)
    async with aclosing(stream):
        async for batch in stream:
            yield await _section(runtime, user, run_id, batch[-1].id)
    yield await _section(runtime, user, run_id, None)
    yield ServerSentEvent(data="", event="done")


async def _section(
    runtime: Runtime, user: UiUser, run_id: str, event_id: int | None
) -> ServerSentEvent:
    async with runtime.reads() as session:
        data = await dashboard_runs.run_page(session, user.tenant_id, run_id)
    curve = score_svg(data.points)
    html = fragment("_optimization_live.html", run=data.run, csrf=user.csrf, curve=curve)
    return ServerSentEvent(
        data=html, event="section", id=None if event_id is None else str(event_id)
    )


@router.post("/{run_id}/promote")
async def promote(
    run_id: RunId,
    session: SessionDep,
    user: CsrfUserDep,
    version: Annotated[int, Form(ge=1, le=INT32_MAX)],
) -> RedirectResponse:
    """Make ``version`` (one the run created, or its seed) the graph's active version."""
    run = await optimizations.status(session, user.tenant_id, run_id)
    await activation.promote(session, user.tenant_id, run.graph_id, version)
    return RedirectResponse(f"/ui/optimizations/{run_id}", status_code=303)


@router.post("/{run_id}/rollback")
async def rollback(run_id: RunId, session: SessionDep, user: CsrfUserDep) -> RedirectResponse:
    """Move the graph's active version back to the one active before the last move."""
    run = await optimizations.status(session, user.tenant_id, run_id)
    await activation.rollback(session, user.tenant_id, run.graph_id)
    return RedirectResponse(f"/ui/optimizations/{run_id}", status_code=303)
