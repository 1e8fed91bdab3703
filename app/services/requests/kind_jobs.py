"""Jobs of a run kind other than ``batch`` (evaluations, optimization runs): queued with their
spec and steps in one place, and found only by their own kind's routes.

>>> # job = await queue_kind_job(session, tenant, version_id, "evaluation", spec, items)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as repo
from app.lifecycle import EventKind
from app.services.errors import NotFound

PAGE = 1_000  # steps stored per statement


async def queue_kind_job(
    session: AsyncSession, tenant_id: str, version_id: str, kind: str, spec: dict[str, Any],
    steps: list[Any], trace: dict[str, str] | None = None,
) -> Job:  # fmt: skip
    """A queued job of ``kind`` holding ``spec``, one item per step, and its submitted event;
    ``trace``: the submitter's W3C trace context, the parent of the run's span."""
    spec = {**spec, "trace": trace} if trace else spec
    job = await repo.create_job(session, tenant_id, version_id, kind=kind, spec=spec)
    for start in range(0, len(steps), PAGE):
        await repo.add_items(session, job.id, start, steps[start : start + PAGE])
    await repo.set_item_count(session, job.id, len(steps))
    submitted = (job.id, EventKind.JOB_SUBMITTED, {"items": len(steps)})
    await events_repo.append_events(session, [submitted])
    return job


def elsewhere(job: Job) -> NotFound:
    """What the batch jobs' routes answer for a run of another kind: where to find it, as in
    ``job 'r1' not found: it is a run of kind 'optimization', at /v1/optimizations/r1``."""
    # Each kind's collection is its name in the plural: /v1/evaluations, /v1/optimizations.
    where = f"/v1/{job.kind}s/{job.id}"
    return NotFound(f"job {job.id!r} not found: it is a run of kind {job.kind!r}, at {where}")


async def find_kind_job(
    session: AsyncSession, tenant_id: str, job_id: str, kind: str, noun: str
) -> Job:
    """The tenant's job of ``kind``; another tenant's, or a job of another kind, is not found."""
    job = await repo.get_job(session, tenant_id, job_id)
    if job is None or job.kind != kind or job.spec is None:
        raise NotFound(f"{noun} {job_id!r} not found")
    return job
