"""``/v1/graphs``: upload (JSON or YAML), list, read, version history, DOT, promote, rollback."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from app.api.bodies import JSON, Model, json_body, media_type, read_body, validated
from app.api.deps import PageLimit, ReadSessionDep, RuntimeDep, SessionDep, TenantDep
from app.api.schemas.common import INT32_MAX
from app.api.schemas.graphs import (
    ActivationOut,
    GraphPage,
    GraphVersionOut,
    PromoteRequest,
    RollbackRequest,
    VersionEntry,
    VersionList,
)
from app.engine.resources.providers import refused_fields
from app.engine.tools import registered_tools
from app.services.limits import graph_limits
from app.services.requests import activation, graphs
from app.services.requests.activation import Move
from app.services.requests.documents import YAML_TYPES, parse_json
from app.services.requests.graphs import StoredGraph
from app.services.runtime import Runtime

router = APIRouter(prefix="/v1/graphs", tags=["graphs"])
GRAPH_TYPES = (*JSON, *YAML_TYPES)

GRAPH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _out(stored: StoredGraph, *, definition: bool = False) -> GraphVersionOut:
    return GraphVersionOut(
        id=stored.graph.id,
        name=stored.graph.name,
        version=stored.version.version,
        hash=stored.version.hash,
        created_at=stored.version.created_at,
        active_version=stored.graph.active_version,
        created=stored.created if not definition else None,
        definition=stored.version.definition if definition else None,
    )


@router.post("", status_code=201, response_model=GraphVersionOut, openapi_extra=GRAPH_BODY)
async def upload_graph(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
) -> GraphVersionOut:
    """Validate and store a graph. The same content again answers 200 with the same version."""
    settings = runtime.settings
    body = await read_body(request, GRAPH_TYPES, settings.max_json_bytes)
    upload = graphs.GraphUpload(
        body,
        media_type(request),
        aliases=refused_fields(runtime.endpoints),
        tools=tuple(registered_tools()),
        max_nodes=settings.max_graph_nodes,
        max_depth=settings.max_document_depth,
        limits=graph_limits(settings),
    )
    stored = await graphs.upload(session, tenant, upload)
    if not stored.created:
        response.status_code = 200
    return _out(stored)


@router.get("", response_model=GraphPage)
async def list_graphs(
    runtime: RuntimeDep,
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: PageLimit = 100,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> GraphPage:
    """Graphs by name with their active version; pass ``next`` as ``after`` for the next page."""
    rows = await graphs.listing(session, tenant, limit, after)
    items = [_out(StoredGraph(record, version)) for record, version in rows]
    return GraphPage(items=items, next=items[-1].name if len(items) == limit else None)


@router.get("/{graph_ref}", response_model=GraphVersionOut, response_model_exclude_none=True)
async def get_graph(
    graph_ref: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> GraphVersionOut:
    """One graph (by id or name), its active version or ``?version=``, with its definition."""
    return _out(await graphs.get(session, tenant, graph_ref, version), definition=True)


@router.get("/{graph_ref}/versions", response_model=VersionList)
async def graph_versions(graph_ref: str, session: ReadSessionDep, tenant: TenantDep) -> VersionList:
    """Version history, oldest first, with the parameters each version changed; ``active``
    marks the version a job runs when it names none."""
    stored = await graphs.get(session, tenant, graph_ref, None)
    entries = [
        VersionEntry.model_validate(entry)
        for entry in await graphs.versions(session, tenant, graph_ref)
    ]
    return VersionList(id=stored.graph.id, name=stored.graph.name, items=entries)


@router.get("/{graph_ref}/dot", response_class=PlainTextResponse)
async def graph_dot(
    graph_ref: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> PlainTextResponse:
    """The graph in Graphviz DOT."""
    stored = await graphs.get(session, tenant, graph_ref, version)
    text = await asyncio.to_thread(graphs.dot, stored.version)  # a large graph takes a while
    return PlainTextResponse(text, media_type="text/vnd.graphviz")


@router.post(
    "/{graph_ref}/promote",
    response_model=ActivationOut,
    openapi_extra=json_body(PromoteRequest),
)
async def promote_graph(
    graph_ref: str, request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> ActivationOut:
    """Make ``version`` the active one: what jobs and runs naming no version use from now on."""
    body = await _body(request, runtime, PromoteRequest, "promote request")
    return _moved(await activation.promote(session, tenant, graph_ref, body.version))


@router.post(
    "/{graph_ref}/rollback",
    response_model=ActivationOut,
    openapi_extra=json_body(RollbackRequest, required=False),
)
async def rollback_graph(
    graph_ref: str, request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> ActivationOut:
    """Move the active version back to the one active before the last move (an empty body), or
    to ``version``; 409 when there is nothing to go back to."""
    body = await _body(request, runtime, RollbackRequest, "rollback request")
    return _moved(await activation.rollback(session, tenant, graph_ref, body.version))


async def _body(request: Request, runtime: Runtime, model: type[Model], what: str) -> Model:
    settings = runtime.settings
    raw = b"{}"
    if request.headers.get("content-type") or request.headers.get("content-length", "0") != "0":
        raw = await read_body(request, JSON, settings.max_json_bytes) or b"{}"
    return validated(model, parse_json(raw, max_depth=settings.max_document_depth), what)


def _moved(move: Move) -> ActivationOut:
    return ActivationOut(
        id=move.graph.id,
        name=move.graph.name,
        active_version=move.active,
        previous_version=move.previous,
    )
