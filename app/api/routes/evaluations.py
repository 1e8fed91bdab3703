"""``/v1/evaluations``: score a graph version (or two, paired) on a dataset; status and
result, list, events, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.bodies import json_body, read_json
from app.api.deps import RuntimeDep, SessionDep, TenantDep
from app.api.run_kinds import RunKindRoutes
from app.api.schemas.evaluations import EvaluationOut, EvaluationPage
from app.services.observability.tracing import submitted_context
from app.services.optimization.spec import EvaluationSpec
from app.services.requests import evaluations

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"])


@router.post(
    "", status_code=202, response_model=EvaluationOut, openapi_extra=json_body(EvaluationSpec)
)
async def start_evaluation(
    request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> EvaluationOut:
    """Queue an evaluation. A body naming an unknown graph, version, dataset, alias or output
    is refused with one 422 naming each field; nothing is stored."""
    body = await read_json(request, runtime.settings)
    trace = submitted_context(runtime.tracing, request.headers)
    job = await evaluations.accept(runtime, session, tenant, body, trace)
    return EvaluationOut.model_validate(await evaluations.status(session, tenant, job.id))


RunKindRoutes(
    "evaluation", evaluations, EvaluationOut, EvaluationPage,
    list_doc="The tenant's evaluations, newest first (read one for its result).",
    status_doc="""
        State and counts; once completed, per version mean, n, failures and interval, and for
        two versions the paired delta (b - a) with its interval.""",
    events_doc="""
        Server-Sent Events, as a job's: state changes, scored items, ``progress``; resumable
        with ``Last-Event-ID``; the stream ends after the terminal event.""",
    cancel_doc="Stop scoring new items now; no result is given for a cancelled evaluation.",
).add_to(router)  # fmt: skip
