"""The items of a retry job: the failed items of the job it retries, copied in one statement."""

from __future__ import annotations

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobItem
from app.db.session import rowcount
from app.lifecycle import ItemStatus

COPIED = ("job_id", "item_index", "input", "custom_id", "item_metadata", "status")


async def copy_failed_items(session: AsyncSession, source_id: str, target_id: str) -> int:
    """Store the items of ``source_id`` that ended failed, with their inputs and identities,
    as the pending items of ``target_id`` (numbered from 0 in their original order); how many.

    One INSERT ... SELECT: the rows never pass through the process, however many failed."""
    number = func.row_number().over(order_by=JobItem.item_index) - 1
    rows = select(
        literal(target_id),
        number,
        JobItem.input,
        JobItem.custom_id,
        JobItem.item_metadata,
        literal(ItemStatus.PENDING.value),
    ).where(JobItem.job_id == source_id, JobItem.status == ItemStatus.FAILED)
    return rowcount(await session.execute(insert(JobItem).from_select(COPIED, rows)))
