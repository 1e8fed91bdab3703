"""A job's end is recorded once, in the transaction that ended it: its terminal event and
webhook are written with it, and its metrics move when (and only if) that transaction commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import events as events_repo
from app.db.repositories import jobs
from app.lifecycle import JobStatus
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.ending import RunEnd, end_run
from tests.support.db import seed_job, seed_version


def finished(metrics: ServiceMetrics, status: str) -> float:
    value = metrics.registry.get_sample_value("inf_jobs_finished_total", {"status": status})
    return value or 0.0


def cancelled_items(metrics: ServiceMetrics) -> float:
    labels = {"status": "cancelled"}
    return metrics.registry.get_sample_value("inf_items_finished_total", labels) or 0.0


async def test_the_end_counts_on_commit_and_not_on_rollback(session: AsyncSession) -> None:
    metrics = ServiceMetrics("runner")
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [{}, {}])
    job_id = job.id
    await session.commit()

    await end_run(session, metrics, job, RunEnd(JobStatus.CANCELLED, closed=2))
    assert finished(metrics, "cancelled") == 0  # not before the commit
    await session.rollback()
    await session.commit()  # a later transaction does not count a rolled-back end
    assert finished(metrics, "cancelled") == 0
    assert await events_repo.events_after(session, job_id, 0, 10) == []

    job = await jobs.get_job_by_id(session, job_id)
    assert job is not None
    await end_run(session, metrics, job, RunEnd(JobStatus.CANCELLED, closed=2))
    await session.commit()
    assert (finished(metrics, "cancelled"), cancelled_items(metrics)) == (1, 2)
    stored = [event.kind for event in await events_repo.events_after(session, job_id, 0, 10)]
    assert stored == ["job_cancelled"]


async def test_a_cancel_announced_later_counts_the_job_once(session: AsyncSession) -> None:
    """The user's cancel counts the job; the runner closing it afterwards only announces it."""
    metrics = ServiceMetrics("runner")
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [{}])
    await session.commit()

    await end_run(session, metrics, job, RunEnd(JobStatus.CANCELLED, announce=False))
    await session.commit()
    await end_run(session, metrics, job, RunEnd(JobStatus.CANCELLED, moved=False, closed=1))
    await session.commit()

    assert (finished(metrics, "cancelled"), cancelled_items(metrics)) == (1, 1)
    stored = [event.kind for event in await events_repo.events_after(session, job.id, 0, 10)]
    assert stored == ["job_cancelled"]
