"""The dashboard's evaluation pages: the tenant's evaluations, newest first, and one
evaluation (its result per version, spend by role, a page of its scored items). HTTP mapping
only: the data comes from ``requests.dashboard_evaluations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from app.api.deps import ReadSessionDep
from app.api.schemas.common import INT32_MAX
from app.api.ui import PageRoute, UiUserDep, page
from app.services.requests import dashboard_evaluations

router = APIRouter(prefix="/ui/evaluations", include_in_schema=False, route_class=PageRoute)
PAGE_SIZE = 50
ITEMS_SHOWN = 50


@router.get("")
async def evaluations_list(
    request: Request,
    session: ReadSessionDep,
    user: UiUserDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The tenant's evaluations, newest first, with their mean score per version."""
    listing = await dashboard_evaluations.evaluations_page(
        session, user.tenant_id, PAGE_SIZE, before or None
    )
    return page(request, "evaluations.html", user, listing=listing, first=before is None)


@router.get("/{evaluation_id}")
async def evaluation_page(
    request: Request,
    evaluation_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    user: UiUserDep,
    after: Annotated[int, Query(ge=-1, le=INT32_MAX)] = -1,
) -> HTMLResponse:
    """An evaluation: its state, dataset, graph versions, result, spend and scored items."""
    data = await dashboard_evaluations.evaluation_page(
        session, user.tenant_id, evaluation_id, after, ITEMS_SHOWN
    )
    return page(request, "evaluation.html", user, data=data, e=data.evaluation, after=after)
