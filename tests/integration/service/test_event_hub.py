"""The event hub: one poller per job, streams that join late or fall behind miss nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.repositories import events as events_repo
from app.db.session import read_session_factory, session_factory
from app.services.observability.events import KEPT, QUEUED_BATCHES, EventHub, JobEvent
from app.settings import Settings
from tests.support.db import seed_job, seed_version


@pytest.fixture
async def hub(engine: AsyncEngine) -> AsyncIterator[EventHub]:
    hub = EventHub(read_session_factory(engine), Settings(events_poll_s=0.01))
    yield hub
    await hub.close()


@pytest.fixture
async def job_id(engine: AsyncEngine) -> str:
    async with session_factory(engine)() as session:
        tenant_id, version = await seed_version(session)
        job = await seed_job(session, tenant_id, version.id, [{"text": "x"}])
        await session.commit()
    await append(engine, job.id, "job_submitted")
    return job.id


async def append(engine: AsyncEngine, job_id: str, kind: str, **data: int) -> None:
    async with session_factory(engine)() as session:
        await events_repo.append_events(session, [(job_id, kind, data)])
        await session.commit()


async def next_batch(stream: AsyncGenerator[list[JobEvent]]) -> list[JobEvent]:
    async with asyncio.timeout(10):
        return await anext(stream)


async def rest(stream: AsyncGenerator[list[JobEvent]]) -> list[JobEvent]:
    async with asyncio.timeout(10):
        return [event async for batch in stream for event in batch]


async def test_a_stream_that_falls_behind_reads_again_and_misses_nothing(
    engine: AsyncEngine, hub: EventHub, job_id: str
) -> None:
    fast = hub.follow(job_id, 0)
    submitted = await next_batch(fast)
    slow = hub.follow(job_id, submitted[-1].id)
    slow_first = asyncio.ensure_future(next_batch(slow))
    await asyncio.sleep(0)  # one turn: it has joined the live batches and waits for one
    steps = QUEUED_BATCHES + 10  # a batch each: more than the slow stream may queue

    for step in range(steps):
        await append(engine, job_id, "progress", step=step)
        assert [event.data for event in await next_batch(fast)] == [{"step": step}]
    await append(engine, job_id, "job_completed")
    assert [event.kind for event in await rest(fast)] == ["job_completed"]

    late = await slow_first + await rest(slow)
    assert [event.data.get("step") for event in late] == [*range(steps), None]
    assert late[-1].kind == "job_completed"
    assert [event.id for event in late] == sorted({event.id for event in late})


async def test_a_stream_joining_a_followed_job_gets_its_backlog_then_live_events_once(
    engine: AsyncEngine, hub: EventHub, job_id: str
) -> None:
    first = hub.follow(job_id, 0)
    submitted = (await next_batch(first))[0]
    for step in range(3):
        await append(engine, job_id, "progress", step=step)
    live: list[JobEvent] = []
    while len(live) < 3:  # then the poller has read them: a joining stream's backlog
        live += await next_batch(first)
    resumed, ahead = hub.follow(job_id, submitted.id), hub.follow(job_id, 10**9)
    backlog = await next_batch(resumed)
    await append(engine, job_id, "progress", step=3)
    await append(engine, job_id, "job_completed")

    assert [e.data.get("step") for e in backlog + await rest(resumed)] == [0, 1, 2, 3, None]
    assert await rest(ahead) == []  # it has seen more than there is: it ends with the job
    assert [e.data.get("step") for e in await rest(first)] == [3, None]


async def test_a_stream_resuming_before_what_the_poller_keeps_reads_the_database(
    engine: AsyncEngine, hub: EventHub, job_id: str
) -> None:
    many = KEPT + 100
    async with session_factory(engine)() as session:
        progress = [(job_id, "progress", {"step": step}) for step in range(many)]
        await events_repo.append_events(session, progress)
        await session.commit()

    stream = hub.follow(job_id, 0)
    seen: list[JobEvent] = []
    while len(seen) < many + 1:
        seen += await next_batch(stream)
    await append(engine, job_id, "job_completed")
    seen += await rest(stream)

    assert seen[0].kind == "job_submitted"
    assert [event.data.get("step") for event in seen[1:]] == [*range(many), None]
