"""Job events: increasing ids per job, resumable after any id."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import events
from tests.support.db import seed_job, seed_version


async def test_events_are_read_back_in_order_after_an_id(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [0])
    other = await seed_job(session, tenant, version.id, [0])
    assert await events.last_event_id(session, job.id) == 0

    await events.append_events(
        session,
        [(job.id, "started", {}), (other.id, "started", {}), (job.id, "progress", {"n": 1})],
    )
    await events.append_events(session, [(job.id, "finished", {"status": "succeeded"})])
    await events.append_events(session, [])
    await session.commit()

    stream = await events.events_after(session, job.id, 0, 100)
    assert [(e.kind, e.data) for e in stream] == [
        ("started", {}),
        ("progress", {"n": 1}),
        ("finished", {"status": "succeeded"}),
    ]
    ids = [e.id for e in stream]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert await events.last_event_id(session, job.id) == ids[-1]
    assert [e.kind for e in await events.events_after(session, job.id, ids[0], 1)] == ["progress"]
    assert await events.events_after(session, job.id, ids[-1], 100) == []
    assert [e.kind for e in await events.events_after(session, other.id, 0, 100)] == ["started"]
    newest = await events.latest_events(session, job.id, 2)  # oldest first
    assert [e.kind for e in newest] == ["progress", "finished"]
    assert [e.kind for e in await events.latest_events(session, other.id, 5)] == ["started"]
