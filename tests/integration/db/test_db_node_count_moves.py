"""A job's per-node state counts, kept by the result writer beside its node results: equal to
the stored results counted by node and status after new rows, replaced rows, a batch written
twice, and two writers racing on the same rows."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import Job
from app.db.repositories import jobs, node_counts, results
from app.db.repositories.results import NodeRow
from app.db.session import session_factory
from tests.support.db import seed_job, seed_version
from tests.support.graph_counts import grouped, stored_counts_query


def node(job_id: str, index: int, node_id: str, status: str) -> NodeRow:
    error = None if status == "succeeded" else f"{node_id} {status}"
    return NodeRow(
        job_id, index, node_id, status, None, error, None, 1, None, None, 0, 0, 0.0,
        None, None, None,
    )  # fmt: skip


async def running_job(session: AsyncSession, count: int) -> Job:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(count)))
    await jobs.mark_running(session, job.id, list(range(count)))
    await session.commit()
    return job


async def counted(session: AsyncSession, job_id: str) -> dict[str, dict[str, int]]:
    """The truth: the job's stored node results grouped by node and status."""
    return grouped(await session.execute(stored_counts_query(job_id)))


async def test_counts_follow_new_rows_of_every_status(session: AsyncSession) -> None:
    job = await running_job(session, 6)
    rows = [node(job.id, i, "a", "succeeded" if i % 3 else "failed") for i in range(6)]
    rows += [node(job.id, i, "b", "skipped" if i % 2 else "cancelled") for i in range(6)]

    await results.write_batch(session, rows[:5], [])
    await results.write_batch(session, rows[5:], [])
    await session.commit()

    expected = {"a": {"succeeded": 4, "failed": 2}, "b": {"skipped": 3, "cancelled": 3}}
    assert await node_counts.of_job(session, job.id) == expected == await counted(session, job.id)


async def test_a_replaced_row_moves_its_count_to_the_new_status(session: AsyncSession) -> None:
    job = await running_job(session, 3)
    await results.write_batch(session, [node(job.id, i, "a", "failed") for i in range(3)], [])
    await session.commit()

    # item 1 run again (after a takeover) and now succeeding; item 2 twice in one batch
    again = [node(job.id, 1, "a", "succeeded"), node(job.id, 2, "a", "skipped")]
    await results.write_batch(session, [*again, node(job.id, 2, "a", "succeeded")], [])
    await session.commit()

    assert await node_counts.of_job(session, job.id) == {"a": {"failed": 1, "succeeded": 2}}
    assert await node_counts.of_job(session, job.id) == await counted(session, job.id)


async def test_writing_a_batch_again_leaves_the_counts(session: AsyncSession) -> None:
    job = await running_job(session, 4)
    rows = [node(job.id, i, n, "succeeded") for i in range(4) for n in ("a", "b")]

    for _ in range(3):  # a committed batch whose answer was lost is written again
        await results.write_batch(session, rows, [])
        await session.commit()

    assert await node_counts.of_job(session, job.id) == {
        "a": {"succeeded": 4},
        "b": {"succeeded": 4},
    }


async def test_two_writers_racing_on_the_same_rows_keep_exact_counts(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    job = await running_job(session, 40)
    sessions = session_factory(engine)

    async def write(index: int, status: str) -> None:
        async with sessions() as own:
            await results.write_batch(own, [node(job.id, index, "a", status)], [])
            await own.commit()

    for index in range(40):  # each row written by both at once, with different statuses
        await asyncio.gather(write(index, "succeeded"), write(index, "failed"))

    truth = await counted(session, job.id)
    assert sum(truth["a"].values()) == 40
    assert await node_counts.of_job(session, job.id) == truth


async def test_a_deleted_job_takes_its_counts_along(session: AsyncSession) -> None:
    job = await running_job(session, 1)
    await results.write_batch(session, [node(job.id, 0, "a", "succeeded")], [])
    await session.commit()

    await jobs.delete_job(session, job.id)
    await session.commit()

    assert await node_counts.of_job(session, job.id) == {}
