"""A tenant's finished runs of one graph (any of its versions): what a new run's projection
learns from (``app.services.optimizations.calibration``)."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphVersion, Job, JobItem
from app.db.session import FRESH
from app.lifecycle import ItemStatus, JobStatus


async def finished_runs(
    session: AsyncSession, tenant_id: str, graph_id: str, kind: str, limit: int
) -> list[Job]:
    """Up to ``limit`` of the tenant's jobs of ``kind`` on graph ``graph_id`` that completed
    with their item 0 (the run) succeeded, the last finished first."""
    first = and_(JobItem.job_id == Job.id, JobItem.item_index == 0)
    stmt = (
        select(Job)
        .join(GraphVersion, GraphVersion.id == Job.graph_version_id)
        .join(JobItem, first)
        .where(
            Job.tenant_id == tenant_id,
            Job.kind == kind,
            Job.status == JobStatus.COMPLETED,
            GraphVersion.graph_id == graph_id,
            JobItem.status == ItemStatus.SUCCEEDED,
        )
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(stmt.execution_options(**FRESH)))
