"""Jobs and items: tenant scoping, listing, cancellation, item paging and counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobEvent, JobItem, NodeResult
from app.db.repositories import events, jobs, results
from app.db.repositories.results import ItemRow
from tests.support.db import seed_job, seed_version


async def test_a_job_is_created_queued_with_its_items(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [{"x": 1}, None, "text"], priority=3)

    assert (job.status, job.item_count, job.priority) == ("queued", 3, 3)
    assert (job.running, job.succeeded, job.failed, job.cancelled) == (0, 0, 0, 0)
    assert job.created_at.tzinfo is not None
    items = await jobs.results_page(session, job.id, -1, 10)
    assert [(i.item_index, i.input, i.status) for i in items] == [
        (0, {"x": 1}, "pending"),
        (1, None, "pending"),
        (2, "text", "pending"),
    ]


async def test_another_tenants_job_is_not_found(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    other, _ = await seed_version(session, tenant="globex")
    job = await seed_job(session, tenant, version.id, [1])

    assert await jobs.get_job(session, tenant, job.id) is job
    assert await jobs.get_job(session, other, job.id) is None
    assert await jobs.get_job(session, tenant, "no-such-job") is None
    assert await jobs.cancel_job(session, other, job.id) is None
    assert await jobs.get_job_by_id(session, job.id) is job
    assert job.status == "queued"


async def test_list_jobs_is_newest_first_with_a_keyset_cursor(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    other, other_version = await seed_version(session, tenant="globex")
    made = [await seed_job(session, tenant, version.id, [i]) for i in range(5)]
    await seed_job(session, other, other_version.id, [0])
    newest_first = sorted(made, key=lambda j: (j.created_at, j.id), reverse=True)

    first = await jobs.list_jobs(session, tenant, 2, None, None)
    cursor = (first[-1].created_at, first[-1].id)
    second = await jobs.list_jobs(session, tenant, 10, cursor, None)
    assert [j.id for j in first + second] == [j.id for j in newest_first]


async def test_list_jobs_breaks_created_at_ties_by_id(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    made = [await seed_job(session, tenant, version.id, [i]) for i in range(3)]
    same = datetime(2030, 1, 1, tzinfo=UTC)
    for job in made:
        job.created_at = same
    await session.flush()

    pages, cursor = [], None
    while page := await jobs.list_jobs(session, tenant, 1, cursor, None):
        pages.append(page[0].id)
        cursor = (page[0].created_at, page[0].id)
    assert pages == sorted((j.id for j in made), reverse=True)


async def test_list_jobs_filters_by_status(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    queued = await seed_job(session, tenant, version.id, [1])
    done = await seed_job(session, tenant, version.id, [1])
    await jobs.finish_job(session, done.id, "succeeded")

    assert [j.id for j in await jobs.list_jobs(session, tenant, 10, None, "queued")] == [queued.id]
    assert [j.id for j in await jobs.list_jobs(session, tenant, 10, None, "succeeded")] == [done.id]


async def test_cancel_leaves_running_items_to_the_runner_that_holds_the_job(
    session: AsyncSession,
) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(5)))
    now = datetime.now(UTC)
    await jobs.claim_jobs(session, "runner-a", 30.0, 1, now)
    await jobs.mark_running(session, job.id, [0, 1])

    outcome = await jobs.cancel_job(session, tenant, job.id, now)

    assert outcome is not None
    assert (outcome.stopped, outcome.items, outcome.runner_holds) == (True, 3, True)
    cancelled = outcome.job
    assert cancelled.status == "cancelled"
    assert cancelled.finished_at is not None
    assert (cancelled.running, cancelled.cancelled) == (2, 3)
    statuses = [i.status for i in await jobs.results_page(session, job.id, -1, 10)]
    assert statuses == ["running", "running", "cancelled", "cancelled", "cancelled"]
    assert [index for index, _ in await jobs.next_items(session, job.id, -1, 10)] == [0, 1]


async def test_cancel_closes_every_item_when_the_lease_has_lapsed(session: AsyncSession) -> None:
    """The runner died: nobody else would ever close the items it had taken."""
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(4)))
    then = datetime.now(UTC) - timedelta(minutes=5)
    await jobs.claim_jobs(session, "dead-runner", 30.0, 1, then)
    await jobs.mark_running(session, job.id, [0, 1])

    outcome = await jobs.cancel_job(session, tenant, job.id)

    assert outcome is not None
    assert (outcome.stopped, outcome.items, outcome.runner_holds) == (True, 4, False)
    assert (outcome.job.running, outcome.job.cancelled) == (0, 4)
    assert await jobs.next_items(session, job.id, -1, 10) == []


async def test_cancelling_a_finished_job_changes_nothing(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [1, 2])
    assert await jobs.finish_job(session, job.id, "failed", "boom")

    again = await jobs.cancel_job(session, tenant, job.id)

    assert again is not None
    assert not again.stopped
    assert (again.job.status, again.job.error, again.job.cancelled) == ("failed", "boom", 0)
    assert not await jobs.finish_job(session, job.id, "succeeded")


async def test_mark_running_counts_only_items_that_changed(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(6)))

    assert await jobs.mark_running(session, job.id, [0, 1, 2]) == 3
    assert await jobs.mark_running(session, job.id, [1, 2, 3]) == 1
    assert await jobs.mark_running(session, job.id, []) == 0
    await results.write_batch(session, [], [ItemRow(job.id, 0, "succeeded", 1, None, 0, 0, 0.0)])
    assert await jobs.mark_running(session, job.id, [0]) == 0

    fresh = await jobs.get_job_by_id(session, job.id)
    assert fresh is not None
    assert (fresh.running, fresh.succeeded) == (3, 1)


async def test_next_items_pages_unfinished_items_in_order(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [f"in{i}" for i in range(8)])
    await jobs.mark_running(session, job.id, [1, 2, 5])
    finished = [ItemRow(job.id, i, "succeeded", None, None, 0, 0, 0.0) for i in (2, 5)]
    await results.write_batch(session, [], finished)

    page = await jobs.next_items(session, job.id, -1, 3)
    assert page == [(0, "in0"), (1, "in1"), (3, "in3")]
    assert await jobs.next_items(session, job.id, 3, 10) == [(4, "in4"), (6, "in6"), (7, "in7")]


async def test_results_page_and_get_item_follow_input_order(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(1000)))
    await jobs.mark_running(session, job.id, [998, 3])
    rows = [ItemRow(job.id, i, "succeeded", {"out": i}, None, 0, 0, 0.0) for i in (998, 3)]
    await results.write_batch(session, [], rows)

    seen, after = [], -1
    while page := await jobs.results_page(session, job.id, after, 300):
        seen += [item.item_index for item in page]
        after = page[-1].item_index
    assert seen == list(range(1000))
    item = await jobs.get_item(session, job.id, 998)
    assert item is not None
    assert (item.status, item.output) == ("succeeded", {"out": 998})
    assert item.finished_at is not None
    assert await jobs.get_item(session, job.id, 1000) is None


async def test_retention_deletes_finished_jobs_with_everything_they_own(
    session: AsyncSession,
) -> None:
    tenant, version = await seed_version(session)
    old = await seed_job(session, tenant, version.id, [1, 2])
    kept = await seed_job(session, tenant, version.id, [1])
    await jobs.cancel_job(session, tenant, old.id)
    await events.append_events(session, [(old.id, "cancelled", {})])
    await session.commit()
    later = datetime.now(UTC) + timedelta(seconds=1)

    assert await jobs.delete_finished_jobs(session, later, 100) == 1

    assert await jobs.get_job(session, tenant, old.id) is None
    assert await jobs.get_job(session, tenant, kept.id) is not None
    for model in (JobItem, NodeResult, JobEvent):
        count = select(func.count()).select_from(model).where(model.job_id == old.id)
        assert await session.scalar(count) == 0
