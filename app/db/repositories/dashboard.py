"""The dashboard's reads that the API has no query for: filtered job pages, a tenant's job
counts, a node's timings and failures, and a job's failed items. Each is one statement (a
job's per-node state counts are ``node_counts.of_job``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphVersion, Job, JobItem, NodeResult
from app.db.repositories.jobs import VISIBLE, newest_page
from app.engine.records import NodeStatus
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


async def failed_items(session: AsyncSession, job_id: str, limit: int) -> list[JobItem]:
    """The job's first ``limit`` failed items, in input order."""
    stmt = (
        select(JobItem)
        .where(JobItem.job_id == job_id, JobItem.status == ItemStatus.FAILED)
        .order_by(JobItem.item_index)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """One failed item at a node."""

    item_index: int
    error: str | None
    error_type: str | None


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A node's duration percentiles (nearest rank, seconds) over its timed results, its
    failure count and its first failures in input order."""

    timed: int
    percentiles: dict[int, float]
    failures: int
    first_failures: list[NodeFailure]


async def node_stats(
    session: AsyncSession, tenant_id: str, job_id: str, node_id: str, shown: int
) -> NodeStats:
    """The node's stats in one statement: window functions rank the results by duration and
    the failures by item, and only the percentile ranks and the first ``shown`` failures come
    back (each row carrying the totals)."""
    ranked = _ranked(tenant_id, job_id, node_id).subquery()
    wanted = [ranked.c.rank == (p * ranked.c.timed + 99) // 100 for p in PERCENTILES]
    picked = or_(and_(ranked.c.duration_s.is_not(None), or_(*wanted)), ranked.c.frank <= shown)
    rows = (await session.execute(select(ranked).where(picked))).all()
    return _stats(rows, shown)


def _ranked(tenant_id: str, job_id: str, node_id: str) -> Select:  # type: ignore[type-arg]
    failed = NodeResult.status == NodeStatus.FAILED.value
    by_duration = func.row_number().over(
        partition_by=NodeResult.duration_s.is_(None), order_by=NodeResult.duration_s
    )
    by_item = func.row_number().over(partition_by=failed, order_by=NodeResult.item_index)
    columns = (
        NodeResult.item_index, NodeResult.error, NodeResult.error_type, NodeResult.duration_s,
        by_duration.label("rank"),
        func.count(NodeResult.duration_s).over().label("timed"),
        func.sum(case((failed, 1), else_=0)).over().label("failures"),
        case((failed, by_item), else_=None).label("frank"),
    )  # fmt: skip
    return (
        select(*columns)
        .join(Job, Job.id == NodeResult.job_id)
        .where(Job.tenant_id == tenant_id, NodeResult.job_id == job_id)
        .where(NodeResult.node_id == node_id)
    )


def _stats(rows: Sequence[Any], shown: int) -> NodeStats:
    if not rows:
        return NodeStats(0, {}, 0, [])
    timed, failures = int(rows[0].timed), int(rows[0].failures or 0)
    at = {int(r.rank): float(r.duration_s) for r in rows if r.duration_s is not None}
    percentiles = {p: at[(p * timed + 99) // 100] for p in PERCENTILES if timed}
    firsts = sorted((r for r in rows if r.frank is not None), key=lambda r: r.item_index)
    failed = [NodeFailure(r.item_index, r.error, r.error_type) for r in firsts[:shown]]
    return NodeStats(timed, percentiles, failures, failed)
