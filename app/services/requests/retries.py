"""Retry of a job's failed items: a new job of the same graph version, priority, webhook and
ledger options on exactly the input rows (with their custom_id and metadata) that failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import jobs as repo
from app.db.repositories import retries as retries_repo
from app.lifecycle import TERMINAL_JOB_STATUSES
from app.services.commits import after_commit
from app.services.errors import Conflict
from app.services.requests.jobs import announce, finalize, find
from app.services.requests.kind_jobs import elsewhere
from app.services.runner.kinds import BATCH
from app.services.runner.webhooks import check_webhook_url

if TYPE_CHECKING:  # the runtime's runner imports the jobs requests
    from app.services.runtime import Runtime


async def retry(
    runtime: Runtime,
    session: AsyncSession,
    tenant_id: str,
    job_id: str,
    trace: dict[str, str] | None = None,
) -> Job:
    """The new job that runs the failed items of the tenant's ended job ``job_id`` again;
    ``Conflict`` while it runs or when none failed. The runner is woken once it commits."""
    original = await _retryable(session, tenant_id, job_id)
    await check_webhook_url(original.webhook_url, runtime.settings)
    job = await repo.create_job(
        session, tenant_id, str(original.graph_version_id), original.priority,
        original.webhook_url, cache=original.cache, replay=original.replay,
        spec={"trace": trace} if trace else None, retry_of=original.id,
    )  # fmt: skip
    job.item_count = await retries_repo.copy_failed_items(session, original.id, job.id)
    await finalize(session, job)
    after_commit(session, lambda: announce(runtime))
    return job


async def _retryable(session: AsyncSession, tenant_id: str, job_id: str) -> Job:
    original = await find(session, tenant_id, job_id)
    if original.kind != BATCH:
        raise elsewhere(original)
    if original.status not in TERMINAL_JOB_STATUSES:
        raise Conflict(f"job {job_id!r} is {original.status}: retry it once it has ended")
    if original.failed == 0:
        raise Conflict(f"job {job_id!r} has no failed items to retry")
    return original
