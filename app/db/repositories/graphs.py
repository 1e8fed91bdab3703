"""Named graphs and their immutable, numbered versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import new_id, utcnow
from app.db.models import GraphRecord, GraphVersion
from app.db.repositories.activations import activate as activate_version
from app.lifecycle import ActivationReason


async def find_graph(session: AsyncSession, tenant_id: str, id_or_name: str) -> GraphRecord | None:
    """A tenant's graph by id or, failing that, by name."""
    stmt = select(GraphRecord).where(
        GraphRecord.tenant_id == tenant_id,
        or_(GraphRecord.id == id_or_name, GraphRecord.name == id_or_name),
    )
    found = list(await session.scalars(stmt))
    for graph in found:
        if graph.id == id_or_name:
            return graph
    return found[0] if found else None


async def add_version(
    session: AsyncSession,
    tenant_id: str,
    name: str,
    definition: dict[str, Any],
    hash: str,
    *,
    activate: bool = True,
) -> tuple[GraphRecord, GraphVersion, bool]:
    """Store a version of the graph ``name`` (created if new); ``created`` is False when a
    version with this hash already exists, which is then returned as is.

    With ``activate`` (a user's upload) the version, new or old, becomes the active one;
    without it (a version an optimization run proposes) the active version stays, unless the
    graph had none. Versions are numbered 1, 2, ... per graph. Concurrent uploads to one graph
    take turns on the graph's row (its lock, or SQLite's single writer), so numbers are never
    duplicated.
    """
    graph = await _locked_graph(session, tenant_id, name)
    version, created = await _version_of(session, graph, definition, hash)
    if activate or graph.active_version is None:
        await activate_version(session, graph, version.version, ActivationReason.UPLOAD)
    return graph, version, created


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a version an optimization run created comes from: the version it was trained
    from, the run (a job id) and its step, and the step's parameter diffs (name -> diff)."""

    parent_version: int
    run_id: str
    run_step: int
    diff: dict[str, Any]


async def add_trained_version(
    session: AsyncSession,
    graph_id: str,
    definition: dict[str, Any],
    hash: str,
    provenance: Provenance,
) -> GraphVersion:
    """Store a version an optimization run accepted, not activated, with its provenance; a
    version with the same content is returned as it is (its provenance unchanged)."""
    graph = await _lock_graph_by_id(session, graph_id)
    version, created = await _version_of(session, graph, definition, hash)
    if created:
        version.parent_version = provenance.parent_version
        version.run_id, version.run_step = provenance.run_id, provenance.run_step
        version.diff = provenance.diff
        await session.flush()
    return version


async def _lock_graph_by_id(session: AsyncSession, graph_id: str) -> GraphRecord:
    stmt = select(GraphRecord).where(GraphRecord.id == graph_id)
    stmt = dialects.lock_rows(session, stmt).execution_options(populate_existing=True)
    return (await session.scalars(stmt)).one()


async def _version_of(
    session: AsyncSession, graph: GraphRecord, definition: dict[str, Any], hash: str
) -> tuple[GraphVersion, bool]:
    same = select(GraphVersion).where(GraphVersion.graph_id == graph.id, GraphVersion.hash == hash)
    existing = await session.scalar(same)
    if existing is not None:
        return existing, False
    latest = select(func.max(GraphVersion.version)).where(GraphVersion.graph_id == graph.id)
    number = (await session.scalar(latest) or 0) + 1
    version = GraphVersion(graph_id=graph.id, version=number, hash=hash, definition=definition)
    session.add(version)
    await session.flush()
    return version, True


async def _locked_graph(session: AsyncSession, tenant_id: str, name: str) -> GraphRecord:
    # The insert comes first so that on SQLite the unit of work holds the write lock from here.
    values = {"id": new_id(), "tenant_id": tenant_id, "name": name, "created_at": utcnow()}
    await session.execute(
        dialects.insert_ignore(session, GraphRecord, values, ["tenant_id", "name"])
    )
    stmt = select(GraphRecord).where(GraphRecord.tenant_id == tenant_id, GraphRecord.name == name)
    stmt = dialects.lock_rows(session, stmt).execution_options(populate_existing=True)
    return (await session.scalars(stmt)).one()


async def get_version(
    session: AsyncSession, graph_id: str, version: int | None = None
) -> GraphVersion | None:
    """A version of a graph by number; the latest when ``version`` is None."""
    stmt = select(GraphVersion).where(GraphVersion.graph_id == graph_id)
    if version is None:
        stmt = stmt.order_by(GraphVersion.version.desc()).limit(1)
    else:
        stmt = stmt.where(GraphVersion.version == version)
    return await session.scalar(stmt)


async def get_version_by_id(session: AsyncSession, version_id: str | None) -> GraphVersion | None:
    """The version of this id; ``None`` also for a job of no graph (a Batch API batch)."""
    return None if version_id is None else await session.get(GraphVersion, version_id)


async def list_graphs(
    session: AsyncSession, tenant_id: str, limit: int, after_name: str | None = None
) -> list[tuple[GraphRecord, GraphVersion]]:
    """A page of a tenant's graphs by name (those after ``after_name``), each with its active
    version."""
    newest = (
        select(func.max(GraphVersion.version))
        .where(GraphVersion.graph_id == GraphRecord.id)
        .correlate(GraphRecord)
        .scalar_subquery()
    )
    current = func.coalesce(GraphRecord.active_version, newest)
    active = and_(GraphVersion.graph_id == GraphRecord.id, GraphVersion.version == current)
    stmt = select(GraphRecord, GraphVersion).join(GraphVersion, active)
    stmt = stmt.where(GraphRecord.tenant_id == tenant_id)
    if after_name is not None:
        stmt = stmt.where(GraphRecord.name > after_name)
    rows = await session.execute(stmt.order_by(GraphRecord.name).limit(limit))
    return [(graph, version) for graph, version in rows]


async def list_versions(session: AsyncSession, graph_id: str) -> list[GraphVersion]:
    """Every version of a graph, oldest first."""
    stmt = select(GraphVersion).where(GraphVersion.graph_id == graph_id)
    return list(await session.scalars(stmt.order_by(GraphVersion.version)))
