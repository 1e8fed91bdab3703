"""Batch API batches: the row beside each batch's job, found by id, key or request hash.

A batch is inserted unless it conflicts with one of the tenant's on ``idempotency_key`` or
``dedupe_hash`` (both unique per tenant): the database decides which of two identical creates
at once makes the batch, and the other finds it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.models import BatchRecord, Job, JobItem
from app.db.session import FRESH, NO_SYNC, rowcount

JsonPath = tuple[str, ...]


async def add_batch(session: AsyncSession, job: Job, batch: BatchRecord) -> bool:
    """Insert the batch's job (its id is the batch's) and the batch row; False, and neither,
    when the tenant has a batch of the same ``idempotency_key`` or ``dedupe_hash`` (on
    Postgres, one being created meanwhile is waited for)."""
    session.add(job)
    await session.flush()
    values = {
        column.key: value
        for column in BatchRecord.__table__.columns
        if (value := getattr(batch, column.key)) is not None
    }
    stmt = dialects.insert_ignore(session, BatchRecord, values, None).returning(BatchRecord.id)
    if await session.scalar(stmt) is not None:
        return True
    await session.execute(delete(Job).where(Job.id == job.id).execution_options(**NO_SYNC))
    session.expunge(job)
    return False


async def get_batch(
    session: AsyncSession, tenant_id: str, batch_id: str
) -> tuple[BatchRecord, Job] | None:
    """The tenant's batch and its job; ``None`` for an unknown id or another tenant's."""
    stmt = (
        select(BatchRecord, Job)
        .join(Job, Job.id == BatchRecord.id)
        .where(BatchRecord.id == batch_id, BatchRecord.tenant_id == tenant_id)
    )
    row = (await session.execute(stmt.execution_options(**FRESH))).first()
    return None if row is None else (row[0], row[1])


async def find_by_key(session: AsyncSession, tenant_id: str, key: str) -> BatchRecord | None:
    """The tenant's batch created with ``Idempotency-Key: key``."""
    stmt = select(BatchRecord).where(
        BatchRecord.tenant_id == tenant_id, BatchRecord.idempotency_key == key
    )
    return await session.scalar(stmt)


async def find_by_hash(
    session: AsyncSession, tenant_id: str, request_hash: str
) -> BatchRecord | None:
    """The tenant's batch holding ``dedupe_hash = request_hash``, if any."""
    stmt = select(BatchRecord).where(
        BatchRecord.tenant_id == tenant_id, BatchRecord.dedupe_hash == request_hash
    )
    return await session.scalar(stmt.execution_options(**FRESH))


async def release_hash(session: AsyncSession, batch_id: str, request_hash: str) -> None:
    """The batch stops holding its hash (its dedupe window passed): a new one may take it."""
    stmt = (
        update(BatchRecord)
        .where(BatchRecord.id == batch_id, BatchRecord.dedupe_hash == request_hash)
        .values(dedupe_hash=None)
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


async def list_batches(
    session: AsyncSession, tenant_id: str, limit: int, after: str | None
) -> list[tuple[BatchRecord, Job]]:
    """The tenant's batches newest first, after the batch ``after`` (an id) when given."""
    stmt = select(BatchRecord, Job).join(Job, Job.id == BatchRecord.id)
    stmt = stmt.where(BatchRecord.tenant_id == tenant_id)
    if after is not None:
        last = await get_batch(session, tenant_id, after)
        if last is not None:
            at, last_id = last[0].created_at, last[0].id
            older = (BatchRecord.created_at == at) & (BatchRecord.id < last_id)
            stmt = stmt.where((BatchRecord.created_at < at) | older)
    stmt = stmt.order_by(BatchRecord.created_at.desc(), BatchRecord.id.desc()).limit(limit)
    rows = await session.execute(stmt.execution_options(**FRESH))
    return [(row[0], row[1]) for row in rows]


async def mark_cancelling(session: AsyncSession, batch_id: str, now: datetime) -> None:
    stmt = (
        update(BatchRecord)
        .where(BatchRecord.id == batch_id, BatchRecord.cancelling_at.is_(None))
        .values(cancelling_at=now)
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


async def finalize(session: AsyncSession, batch_id: str, values: dict[str, Any]) -> bool:
    """Record the batch's files and counts once: False if another request did it first."""
    stmt = (
        update(BatchRecord)
        .where(BatchRecord.id == batch_id, BatchRecord.finalized_at.is_(None))
        .values(values)
    )
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC))) > 0


async def items_page(
    session: AsyncSession, job_id: str, after_index: int, limit: int
) -> list[tuple[int, str, Any, str | None]]:
    """``(index, status, output, custom_id)`` of the job's items after ``after_index``, in
    input order (not their inputs: a batch's are most of its bytes)."""
    stmt = _page(job_id, after_index, limit)
    rows = await session.execute(stmt)
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def unsized_page(
    session: AsyncSession, job_id: str, after_index: int, limit: int, statuses: Collection[str]
) -> list[tuple[int, str, Any, str | None]]:
    """:func:`items_page` of only the items in ``statuses`` stored without ``output_bytes``."""
    stmt = _page(job_id, after_index, limit)
    stmt = stmt.where(JobItem.output_bytes.is_(None), JobItem.status.in_(sorted(statuses)))
    rows = await session.execute(stmt)
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def _page(job_id: str, after_index: int, limit: int) -> Select[tuple[int, str, Any, str | None]]:
    return (
        select(JobItem.item_index, JobItem.status, JobItem.output, JobItem.custom_id)
        .where(JobItem.job_id == job_id, JobItem.item_index > after_index)
        .order_by(JobItem.item_index)
        .limit(limit)
    )


async def sized_totals(
    session: AsyncSession, job_id: str, statuses: Collection[str],
    number: tuple[str, JsonPath], match: tuple[str, JsonPath, str],
) -> list[tuple[str, int, int, int, int]]:  # fmt: skip
    """Per status, over the job's items in ``statuses`` stored with ``output_bytes``, in one
    statement (no output read out): ``(status, items, bytes, numbers, matches)``. For the
    items of status ``number[0]``, ``numbers`` sums the integers at the path ``number[1]`` of
    their outputs; for those of status ``match[0]``, ``matches`` counts the outputs holding
    ``match[2]`` at the path ``match[1]`` (each is 0 for the other statuses)."""
    (numbered, at), (matched, where, value) = number, match
    numbers = case((JobItem.status == numbered, JobItem.output[at].as_integer()), else_=0)
    found = (JobItem.status == matched) & (JobItem.output[where].as_string() == value)
    sums = func.sum(JobItem.output_bytes), func.sum(numbers), func.sum(case((found, 1), else_=0))
    stmt = (
        select(JobItem.status, func.count(), *sums)
        .where(JobItem.job_id == job_id, JobItem.status.in_(sorted(statuses)))
        .where(JobItem.output_bytes.is_not(None))
        .group_by(JobItem.status)
    )
    rows = await session.execute(stmt)
    return [(row[0], int(row[1]), int(row[2]), int(row[3] or 0), int(row[4])) for row in rows]
