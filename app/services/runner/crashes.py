"""What happens to the jobs of a runner process that died.

The HTTP process watches its runner child (:mod:`app.services.runner.process`). When the child dies,
every job whose lease it held is charged one crash. A job charged ``runner_job_max_crashes``
times is failed with the reason: its open items are closed, its terminal event and webhook
are written as for any other failed job, so it cannot kill the next runner too. The other
jobs are released at once and the restarted runner resumes them.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import jobs as jobs_repo
from app.lifecycle import ACTIVE_JOB_STATUSES, JobStatus
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.ending import end_run, runner_end

log = logging.getLogger(__name__)


def crash_reason(crashes: int, death: str) -> str:
    """The error a job is failed with.

    >>> crash_reason(2, "killed by signal SIGKILL")
    "the job's runner process died twice while running it (last: killed by signal SIGKILL)"
    """
    times = {1: "once", 2: "twice"}.get(crashes, f"{crashes} times")
    return f"the job's runner process died {times} while running it (last: {death})"


class CrashRecorder:
    """Charges a dead runner's jobs (the ``on_death`` of a ``RunnerProcess``)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], metrics: ServiceMetrics, max_crashes: int
    ) -> None:
        self.sessions = sessions
        self.metrics = metrics
        self.max_crashes = max_crashes

    async def __call__(self, owner: str, death: str) -> list[str]:
        """The runner with lease owner ``owner`` died (``death`` says how); returns the ids
        of the jobs this failed."""
        self.metrics.runner_deaths.inc()
        failed: list[str] = []
        async with self.sessions() as session:
            held = await jobs_repo.count_runner_crash(session, owner)
            for job_id, status, crashes in held:
                if status in ACTIVE_JOB_STATUSES and crashes >= self.max_crashes:
                    reason = crash_reason(crashes, death)
                    if await _fail(session, self.metrics, owner, job_id, reason):
                        failed.append(job_id)
            await jobs_repo.release_all(session, owner)
            await session.commit()
        resumed = len(held) - len(failed)
        log.warning(
            "the dead runner held %d job(s): %d failed, %d left to resume",
            len(held),
            len(failed),
            resumed,
            extra={"failed_jobs": sorted(failed)},
        )
        return sorted(failed)


async def _fail(
    session: AsyncSession, metrics: ServiceMetrics, owner: str, job_id: str, reason: str
) -> bool:
    """End the job as failed through the runner's own ending (one conditional UPDATE, then
    ``end_run``); False if it had ended or changed hands meanwhile."""
    ending = await jobs_repo.end_job(session, job_id, owner, JobStatus.FAILED, reason)
    if ending is None:
        return False
    closed = ending.closed
    if ending.status == JobStatus.FAILED:
        closed = await jobs_repo.cancel_open_items(session, job_id)
    job = await jobs_repo.get_job_by_id(session, job_id)
    assert job is not None  # just updated in this transaction
    await end_run(session, metrics, job, runner_end(ending.status, reason, closed))
    log.error("job %s failed: %s", job_id, reason, extra={"job_id": job_id})
    return True
