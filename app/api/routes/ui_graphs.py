"""The dashboard's graphs and endpoints pages: the graph list, one graph drawn as its DAG with
its versions, parameter diffs and active version, and each endpoint alias's live limiter
state (never a secret). HTTP mapping only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from app.api.deps import ReadSessionDep, RuntimeDep
from app.api.schemas.common import INT32_MAX
from app.api.ui import PageRoute, UiUserDep, page
from app.dashboard.graph_svg import graph_svg
from app.services.endpoint_views import endpoint_items
from app.services.requests import graphs

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=PageRoute)
GRAPHS_SHOWN = 200


@router.get("/graphs")
async def graphs_list(
    request: Request,
    session: ReadSessionDep,
    user: UiUserDep,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The tenant's graphs by name, each with its active version."""
    found = await graphs.listing(session, user.tenant_id, GRAPHS_SHOWN, after)
    more = found[-1][0].name if len(found) == GRAPHS_SHOWN else None
    return page(request, "graphs.html", user, graphs=found, more=more)


@router.get("/graphs/{ref}")
async def graph_page(
    request: Request,
    ref: Annotated[str, Path(max_length=200)],
    session: ReadSessionDep,
    user: UiUserDep,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> HTMLResponse:
    """One graph: a version drawn as its DAG (the active one unless ``version``), its nodes
    and parameters, and every version with the parameters it changed."""
    stored = await graphs.get(session, user.tenant_id, ref, version)
    history = await graphs.versions(session, user.tenant_id, ref)
    definition = stored.version.definition
    return page(
        request, "graph.html", user, graph=stored.graph, shown=stored.version,
        definition=definition, svg=graph_svg(definition, {}), versions=history,
    )  # fmt: skip


@router.get("/endpoints")
async def endpoints_page(request: Request, runtime: RuntimeDep, user: UiUserDep) -> HTMLResponse:
    """Each alias: in flight against its maximum, RPM and TPM against the limits, the current
    adaptive rate, 429s and retries; the table refreshes itself."""
    items = await endpoint_items(runtime)
    name = "_endpoints_table.html" if request.headers.get("HX-Request") else "endpoints.html"
    return page(request, name, user, endpoints=items)
