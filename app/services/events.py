"""Job event streams: the stored events of a job after a given id, followed live until its last.

Events are stored with increasing ids (see ``app.db.repositories.events``), so a client that
lost its connection resumes exactly where it stopped by sending the last id it saw.

    async for event in follow(reads, job_id, after=41, poll_s=0.25):
        print(event.id, event.kind, event.data)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo

TERMINAL_EVENTS = ("job_completed", "job_failed", "job_cancelled")
PAGE = 500


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    kind: str
    data: dict[str, Any]


async def follow(
    reads: async_sessionmaker[AsyncSession], job_id: str, after: int, poll_s: float
) -> AsyncIterator[JobEvent]:
    """Every event of the job with an id above ``after``, in order, waiting for new ones; ends
    after the job's terminal event (at once if it was already sent) or if the job is deleted."""
    while True:
        async with reads() as session:
            batch = await events_repo.events_after(session, job_id, after, PAGE)
            ended = not batch and await _ended_before(session, job_id, after)
        for stored in batch:
            yield JobEvent(stored.id, stored.kind, stored.data)
            after = stored.id
            if stored.kind in TERMINAL_EVENTS:
                return
        if ended:
            return
        if len(batch) < PAGE:
            await asyncio.sleep(poll_s)


async def _ended_before(session: AsyncSession, job_id: str, after: int) -> bool:
    """The job is gone, or its terminal event has an id no higher than ``after``."""
    if await jobs_repo.get_job_by_id(session, job_id) is None:
        return True
    last = await events_repo.last_event_id(session, job_id, TERMINAL_EVENTS)
    return 0 < last <= after
