"""A run's end, in one place: its terminal event, its webhook and its metrics.

Every way a job ends goes through :func:`end_run`: the runner concluding it (completed, failed,
or cancelled once its in-flight items stopped), the user cancelling it
(``requests.jobs.cancel``), and a job failed because its runner process kept dying
(:mod:`app.services.runner.crashes`). The caller has just won the job's move to its final
status in ``session`` (one conditional UPDATE); ``end_run`` writes the terminal event and
schedules the webhook in that same transaction, and counts the metrics once it commits, so
each happens exactly once whoever ends the job. A kind with an end-of-run hook
(:class:`~app.services.runner.kinds.FinishesRun`) has it called in that transaction too, before
the event, when the end is announced (no runner holds the job any more).

    ended = RunEnd(JobStatus.COMPLETED)
    await end_run(session, metrics, job, ended)
    await session.commit()  # inf_jobs_finished_total{status="completed"} moves now
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import events as events_repo
from app.db.repositories import webhooks as webhooks_repo
from app.lifecycle import ItemStatus, JobStatus, end_event
from app.services.commits import after_commit
from app.services.observability.metrics import ServiceMetrics
from app.services.progress import counts
from app.services.runner.kinds import FinishesRun, kind_of


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a job ends.

    ``moved``: the caller moved the job to ``status`` (it counts as a finished job); False when
    a runner closes a job the user cancelled, which was counted at the cancel. ``closed``: open
    items this ending closed (counted as cancelled items). ``announce``: write the terminal
    event and webhook now; False for a cancel while a runner holds the job, which announces the
    end once its in-flight items have stopped.
    """

    status: JobStatus
    error: str | None = None
    moved: bool = True
    closed: int = 0
    announce: bool = True


def runner_end(status: str, error: str | None, closed: int) -> RunEnd:
    """How a lease holder's ``end_job`` ended a job: one the user cancelled meanwhile was
    counted at the cancel and keeps no error.

    >>> end = runner_end("cancelled", "boom", 3)
    >>> (end.error, end.moved, end.closed)
    (None, False, 3)
    """
    final = JobStatus(status)
    cancelled = final is JobStatus.CANCELLED
    return RunEnd(final, None if cancelled else error, moved=not cancelled, closed=closed)


async def end_run(session: AsyncSession, metrics: ServiceMetrics, job: Job, end: RunEnd) -> None:
    """Record ``job``'s end (see the module docstring); ``job`` is the row after the move."""
    if end.announce:
        await _finish(session, job)
        data = counts(job)
        if end.error:
            data["error"] = end.error
        await events_repo.append_events(session, [(job.id, end_event(end.status), data)])
        await webhooks_repo.schedule(session, job.id)
    after_commit(session, lambda: _count(metrics, end))


async def _finish(session: AsyncSession, job: Job) -> None:
    kind = kind_of(job.kind)
    if isinstance(kind, FinishesRun):
        await kind.finish(session, job)


def _count(metrics: ServiceMetrics, end: RunEnd) -> None:
    if end.moved:
        metrics.jobs_finished.labels(end.status).inc()
    if end.closed:
        metrics.items_finished.labels(ItemStatus.CANCELLED).inc(end.closed)
