"""Retention deletes exactly the jobs that finished before the cutoff, with all they own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import Job, JobEvent, JobItem, NodeResult, WebhookAttempt
from app.db.repositories import events, jobs, results
from app.db.repositories.results import NodeRow
from app.db.session import session_factory
from app.lifecycle import JobStatus
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.retention import RetentionSweeper
from app.settings import Settings
from tests.support.db import seed_job, seed_version

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


async def test_exactly_the_expired_jobs_go(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        tenant, version = await seed_version(session)
        ages = {"old": 8.0, "just_expired": 7.001, "recent": 6.9, "running": None, "queued": None}
        made = {name: await seed_job(session, tenant, version.id, [1, 2]) for name in ages}
        for name, days in ages.items():
            job = made[name]
            await own_everything(session, job.id)
            if days is not None:
                finished = NOW - timedelta(days=days)
                stmt = update(Job).where(Job.id == job.id)
                await session.execute(stmt.values(status="completed", finished_at=finished))
        await jobs.claim_jobs(session, "r", 30.0, 1, NOW)  # one of the unfinished is running
        await session.commit()

    metrics = ServiceMetrics("runner")
    sweeper = RetentionSweeper(sessions, Settings(retention_days=7), metrics)
    assert await sweeper.sweep(now=NOW) == 2

    async with sessions() as session:
        left = set(await session.scalars(select(Job.id)))
        assert left == {made[name].id for name in ("recent", "running", "queued")}
        for table in (JobItem, NodeResult, JobEvent, WebhookAttempt):
            owners = set(await session.scalars(select(table.job_id).distinct()))
            assert owners == left, table.__tablename__
    assert metrics.registry.get_sample_value("inf_retention_deleted_jobs_total") == 2
    assert await sweeper.sweep(now=NOW) == 0


async def own_everything(session: AsyncSession, job_id: str) -> None:
    """An event, a node result and a webhook attempt for the job (its items exist already)."""
    await events.append_events(session, [(job_id, "job_submitted", {})])
    row = NodeRow(job_id, 0, "n", "succeeded", "x", None, None, 1, None, None, 0, 0, 0.0,
                  0.1, None, None, 1.0)  # fmt: skip
    await results.write_batch(session, [row], [])
    session.add(WebhookAttempt(job_id=job_id, attempt=1, status_code=500, duration_s=0.1))


async def test_zero_days_keeps_everything(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        tenant, version = await seed_version(session)
        job = await seed_job(session, tenant, version.id, [1])
        await jobs.finish_job(session, job.id, "completed")
        await session.commit()
    sweeper = RetentionSweeper(sessions, Settings(retention_days=0), ServiceMetrics("runner"))
    assert await sweeper.sweep(now=NOW + timedelta(days=3650)) == 0
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 1


async def test_abandoned_uploads_go_after_an_hour_even_when_jobs_are_kept(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    ages = {"abandoned": (JobStatus.UPLOADING, 61), "uploading": (JobStatus.UPLOADING, 10)}
    ages["old_queued"] = (JobStatus.QUEUED, 600)
    async with sessions() as session:
        tenant, version = await seed_version(session)
        made = {}
        for name, (status, minutes) in ages.items():
            job = await jobs.create_job(session, tenant, version.id, 0, None, status)
            await jobs.add_items(session, job.id, 0, [1, 2])
            created = NOW - timedelta(minutes=minutes)
            await session.execute(update(Job).where(Job.id == job.id).values(created_at=created))
            made[name] = job.id
        await session.commit()
    sweeper = RetentionSweeper(sessions, Settings(retention_days=0), ServiceMetrics("runner"))
    assert await sweeper.sweep(now=NOW) == 0  # counts finished jobs only
    async with sessions() as session:
        assert set(await session.scalars(select(Job.id))) == {
            made["uploading"],
            made["old_queued"],
        }
        items = set(await session.scalars(select(JobItem.job_id).distinct()))
        assert made["abandoned"] not in items
