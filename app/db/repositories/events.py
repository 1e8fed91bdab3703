"""Job events: state changes and progress, with increasing ids for resumable streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import JobEvent
from app.db.repositories.jobs import lock_jobs


async def append_events(
    session: AsyncSession, events: Sequence[tuple[str, str, dict[str, Any]]]
) -> None:
    """Store (job id, kind, data) events in order, in one multi-row INSERT.

    NOTE: [event order] A reader resumes after the last id it saw, so a job's events must
    become visible in id order. On Postgres two transactions could take ids 7 and 8 and commit
    8 first; a reader then skips 7 for ever. Writers of a job's events therefore hold the job's
    row lock while they insert (SQLite has a single writer, so ids follow commits anyway).
    """
    if not events:
        return
    await lock_jobs(session, {job_id for job_id, _, _ in events})
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


async def latest_events(session: AsyncSession, job_id: str, limit: int) -> list[JobEvent]:
    """A job's newest ``limit`` events, oldest first."""
    stmt = (
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(limit)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def last_event_id(
    session: AsyncSession, job_id: str, kinds: Sequence[str] | None = None
) -> int:
    """The id of the job's newest event (of one of ``kinds``, if given); 0 when it has none."""
    stmt = select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id)
    if kinds is not None:
        stmt = stmt.where(JobEvent.kind.in_(kinds))
    return await session.scalar(stmt) or 0
