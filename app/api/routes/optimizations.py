"""``/v1/optimizations``: train a graph version's parameters on stored datasets (or project
the run with ``dry_run``); status, list, events, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.bodies import json_body, read_json
from app.api.deps import RuntimeDep, SessionDep, TenantDep
from app.api.run_kinds import RunKindRoutes
from app.api.schemas.optimizations import OptimizationOut, OptimizationPage, ProjectionOut
from app.services.observability.tracing import submitted_context
from app.services.optimization.spec import OptimizationSpec
from app.services.requests import optimizations

router = APIRouter(prefix="/v1/optimizations", tags=["optimizations"])


@router.post(
    "",
    status_code=202,
    response_model=OptimizationOut | ProjectionOut,
    openapi_extra=json_body(OptimizationSpec),
    responses={200: {"model": ProjectionOut, "description": "dry_run: the bound, expected spend"}},
)
async def start_optimization(
    request: Request, response: Response, runtime: RuntimeDep, session: SessionDep,
    tenant: TenantDep,
) -> OptimizationOut | ProjectionOut:  # fmt: skip
    """Queue an optimization run (202), or with ``dry_run: true`` answer its projection per
    role (an upper bound) and the spend expected from earlier runs (200), and store nothing.
    A body naming an unknown graph, version, parameter, dataset, alias or output, or a budget
    too small for a baseline and three steps, is refused with one 422 naming each field;
    nothing is stored."""
    body = await read_json(request, runtime.settings)
    trace = submitted_context(runtime.tracing, request.headers)
    accepted = await optimizations.accept(runtime, session, tenant, body, trace)
    if accepted.job is None:
        assert accepted.projection is not None
        assert accepted.expected is not None
        response.status_code = 200
        shown = {**accepted.projection.to_dict(), "expected": accepted.expected.to_dict()}
        return ProjectionOut.model_validate(shown)
    return OptimizationOut.model_validate(
        await optimizations.status(session, tenant, accepted.job.id)
    )


RunKindRoutes(
    "optimization", optimizations, OptimizationOut, OptimizationPage,
    list_doc="The tenant's optimization runs, newest first.",
    status_doc="""
        State, stop reason and root error, counters per role, the best version with its score
        and interval, every step's proposals and decision, and the test result.""",
    events_doc="""
        Server-Sent Events, as a job's: the training events (``step_started``, ``proposal``,
        ``accepted``/``rejected``, ``validated``, ``budget``, ``finished``, ...) and state changes;
        resumable with ``Last-Event-ID``; the stream ends after the terminal event.""",
    cancel_doc="Stop the run now; the versions its accepted steps created stay.",
).add_to(router)  # fmt: skip
