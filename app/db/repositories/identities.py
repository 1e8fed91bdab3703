"""Items by the ``custom_id`` their submitter gave them (unique per job, a partial index)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobItem


async def taken(session: AsyncSession, job_id: str, custom_ids: Collection[str]) -> dict[str, int]:
    """Which of ``custom_ids`` the job's stored items already carry: custom_id -> item index."""
    if not custom_ids:
        return {}
    stmt = select(JobItem.custom_id, JobItem.item_index).where(
        JobItem.job_id == job_id,
        JobItem.custom_id.is_not(None),
        JobItem.custom_id.in_(list(custom_ids)),
    )
    return {str(custom_id): index for custom_id, index in await session.execute(stmt)}


async def item_by_custom_id(session: AsyncSession, job_id: str, custom_id: str) -> JobItem | None:
    """The job's item with this ``custom_id``, read fresh; ``None`` if no item has it."""
    stmt = select(JobItem).where(
        JobItem.job_id == job_id, JobItem.custom_id.is_not(None), JobItem.custom_id == custom_id
    )
    found = await session.scalars(stmt.execution_options(populate_existing=True))
    return found.first()
