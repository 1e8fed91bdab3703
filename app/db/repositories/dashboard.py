"""The dashboard's reads that the API has no query for: filtered job pages, a tenant's job
counts, a job's per-node state counts and its failed items. Each is one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphVersion, Job, JobItem, NodeResult
from app.db.repositories.jobs import VISIBLE, newest_page
from app.lifecycle import ItemStatus


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which of a tenant's jobs a listing shows (every field optional)."""

    status: str | None = None
    graph_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def filtered_jobs(
    session: AsyncSession,
    tenant_id: str,
    kind: str,
    where: JobFilter,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[Job]:
    """A page of the tenant's jobs of ``kind`` matching ``where``, newest first; ``before`` is
    the (created_at, id) of the previous page's last job (keyset pagination)."""
    return await newest_page(session, _filtered(select(Job), tenant_id, kind, where), limit, before)


def _filtered(stmt: Select[tuple[Job]], tenant_id: str, kind: str, where: JobFilter) -> Select:  # type: ignore[type-arg]
    stmt = stmt.where(Job.tenant_id == tenant_id, Job.kind == kind, VISIBLE)
    if where.status is not None:
        stmt = stmt.where(Job.status == where.status)
    if where.graph_id is not None:
        versions = select(GraphVersion.id).where(GraphVersion.graph_id == where.graph_id)
        stmt = stmt.where(Job.graph_version_id.in_(versions))
    if where.since is not None:
        stmt = stmt.where(Job.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(Job.created_at < where.until)
    return stmt


async def status_counts(session: AsyncSession, tenant_id: str, kind: str) -> dict[str, int]:
    """How many of the tenant's jobs of ``kind`` each status has."""
    stmt = (
        select(Job.status, func.count())
        .where(Job.tenant_id == tenant_id, Job.kind == kind, VISIBLE)
        .group_by(Job.status)
    )
    return {status: count for status, count in await session.execute(stmt)}


async def node_state_counts(session: AsyncSession, job_id: str) -> dict[str, dict[str, int]]:
    """For each node of the job: how many of its stored results each status has."""
    stmt = (
        select(NodeResult.node_id, NodeResult.status, func.count())
        .where(NodeResult.job_id == job_id)
        .group_by(NodeResult.node_id, NodeResult.status)
    )
    found: dict[str, dict[str, int]] = {}
    for node, status, count in await session.execute(stmt):
        found.setdefault(node, {})[status] = count
    return found


async def failed_items(session: AsyncSession, job_id: str, limit: int) -> list[JobItem]:
    """The job's first ``limit`` failed items, in input order."""
    stmt = (
        select(JobItem)
        .where(JobItem.job_id == job_id, JobItem.status == ItemStatus.FAILED)
        .order_by(JobItem.item_index)
        .limit(limit)
    )
    return list(await session.scalars(stmt))
