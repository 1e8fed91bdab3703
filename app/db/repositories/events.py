"""Job events: state changes and progress, with increasing ids for resumable streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import JobEvent


async def append_events(
    session: AsyncSession, events: Sequence[tuple[str, str, dict[str, Any]]]
) -> None:
    """Store (job id, kind, data) events in order, in one multi-row INSERT."""
    if not events:
        return
    now = utcnow()
    rows = [
        {"job_id": job_id, "kind": kind, "data": data, "created_at": now}
        for job_id, kind, data in events
    ]
    await session.execute(insert(JobEvent), rows)


async def events_after(
    session: AsyncSession, job_id: str, after_id: int, limit: int
) -> list[JobEvent]:
    """A job's events with ids above ``after_id`` (a stream's ``Last-Event-ID``), oldest first."""
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def last_event_id(session: AsyncSession, job_id: str) -> int:
    """The id of the job's newest event; 0 when it has none."""
    stmt = select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id)
    return await session.scalar(stmt) or 0
