"""The durable-run core: one claimed run, step by step, to its one end.

What every run kind shares lives here: the steps (the job's unfinished items) are read in
index order with a cursor, taken into the runner's window (shared fairly between runs), and
each runs as a task of its own through its kind (:mod:`app.services.runner.kinds`); what an
earlier process stored for a step comes with it. Results, items and events go to the shared
:class:`ResultWriter` (batched, events with increasing ids); a ``progress`` event is
recorded every ``progress_s``; a cancel stops dispatch and cancels the steps in flight; a lost
lease abandons the run to its next owner; the end goes through
:func:`~app.services.runner.ending.end_run`. Its own database work (opening, the next page,
the start and the end) waits out an outage (:mod:`app.services.runner.outages`); the steps in
flight go on meanwhile.

    run = DurableRun(claimed_job, BatchKind(), deps)
    status = await run.run()  # "completed", "failed", "cancelled", or None if abandoned
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from app.db.base import utcnow
from app.db.models import Job, NodeResult
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import results
from app.db.repositories import waits as waits_repo
from app.db.repositories.jobs import Ending
from app.db.repositories.results import ItemRow
from app.lifecycle import EventKind, ItemStatus, JobStatus
from app.logs import job_context, set_item
from app.services.errors import is_outage
from app.services.observability.tracing import item_scope, job_scope
from app.services.progress import counts
from app.services.runner.ending import end_run, runner_end
from app.services.runner.kinds import CannotRun, KindRun, RunDeps, RunKind, Step, WaitsForInput
from app.services.runner.outages import reason, retrying

log = logging.getLogger(__name__)
PAGE_SIZE = 256


class DurableRun:
    """Runs one claimed job of any kind to its end, or until it is cancelled or abandoned."""

    def __init__(self, job: Job, kind: RunKind, deps: RunDeps) -> None:
        self.job = job
        self.job_id = job.id
        self.kind = kind
        self.deps = deps
        # By the user: in-flight steps end as "cancelled". A job claimed already cancelled was
        # left by a runner that died; it is only closed.
        self.cancelled = job.status == JobStatus.CANCELLED
        self.abandoned = False  # lease lost or runner stopping: leave steps for the next owner
        self.ending = False  # in ``_end``: the lease is being released with the job's end
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()  # indexes of the steps running now
        self._trace_root: str | None = None  # this run's span, to keep if none is kept yet

    async def run(self) -> str | None:
        """Run to the end; the final status, or ``None`` when the run was abandoned."""
        job = self.job
        with job_context(self.job_id), job_scope(self.deps.tracing, job) as scope:
            self._trace_root = None if job.trace_root is not None else scope.traceparent
            status = await self._run()
            scope.ended(status)
            return status

    async def _run(self) -> str | None:
        if self.cancelled:
            return await self._conclude()
        try:
            kind_run = await retrying(lambda: self.kind.open(self.job, self.deps), self._what)
        except CannotRun as exc:
            return await self._end(JobStatus.FAILED, str(exc))
        await self._started(kind_run.started)
        progress = asyncio.get_running_loop().create_task(self._report_progress())
        try:
            await self._dispatch_all(kind_run)
            await self._drain()
            if isinstance(kind_run, WaitsForInput) and kind_run.can_wait:
                await self._through_waits(kind_run)
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
        return await self._conclude()

    # -- events ------------------------------------------------------------------------

    @property
    def _what(self) -> str:
        return f"job {self.job_id}"

    async def _started(self, data: dict[str, Any]) -> None:
        await retrying(lambda: self._record_start(data), self._what)

    async def _record_start(self, data: dict[str, Any]) -> None:
        """``job_started``, once per run: not again when another runner resumes it; and the
        trace root a resumed run continues, when this run traces and none is kept."""
        async with self.deps.sessions() as session:
            if await jobs_repo.first_start(session, self.job_id, self.deps.owner):
                started = [(self.job_id, EventKind.JOB_STARTED.value, data)]
                await events_repo.append_events(session, started)
            if self._trace_root is not None:
                await jobs_repo.keep_trace_root(session, self.job_id, self._trace_root)
            await session.commit()

    async def _report_progress(self) -> None:
        """A ``progress`` event (counts, throughput, ETA, usage) every ``progress_s``."""
        while True:
            await asyncio.sleep(self.deps.progress_s)
            try:
                self.deps.writer.event(self.job_id, EventKind.PROGRESS, await self._counts())
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("reading the progress of job %s failed", self.job_id)
                else:  # the next report follows; nothing is owed for this one
                    log.warning("no progress for job %s: %s", self.job_id, reason(exc))

    async def _counts(self) -> dict[str, Any]:
        async with self.deps.sessions() as session:
            job = await jobs_repo.get_job_by_id(session, self.job_id)
        return {} if job is None else counts(job)

    # -- steps -------------------------------------------------------------------------

    async def _dispatch_all(self, kind_run: KindRun) -> None:
        cursor = -1
        while not self._stopping:
            page, stored = await retrying(partial(self._next_page, cursor), self._what)
            if not page:
                return
            cursor = page[-1][0]
            for index, raw in page:
                if index in self._in_flight:
                    continue
                if not await self._take_slot():
                    return
                begin = _Begin(self, index)
                self._spawn(kind_run, Step(index, raw, stored.get(index, []), begin), begin)

    async def _through_waits(self, kind_run: KindRun) -> None:
        """While items wait at human nodes (holding no slot), look every ``wait_poll_s``
        for items answered or timed out, and run them; return once no item is open."""
        while not self._stopping:
            if not self._tasks and not await retrying(self._unended, self._what):
                return
            await asyncio.sleep(self.deps.wait_poll_s)
            await retrying(self._expire_waits, self._what)
            await self.deps.writer.flush()  # steps that ended are stored: not paged again
            await self._dispatch_all(kind_run)

    async def _unended(self) -> int:
        async with self.deps.sessions() as session:
            return await waits_repo.open_or_waiting(session, self.job_id)

    async def _expire_waits(self) -> None:
        async with self.deps.sessions() as session:
            if await waits_repo.waiting_count(session, self.job_id):
                await waits_repo.expire_due(session, self.job_id, utcnow())
            await session.commit()

    async def _next_page(
        self, cursor: int
    ) -> tuple[list[tuple[int, Any]], dict[int, list[NodeResult]]]:
        """The next unfinished items and what is stored for them; they stay ``pending`` until
        their work begins (``Step.begin``)."""
        async with self.deps.sessions() as session:
            page = await jobs_repo.next_items(session, self.job_id, cursor, PAGE_SIZE)
            indexes = [index for index, _ in page]
            stored = await results.node_results_for(session, self.job_id, indexes)
        return page, stored

    async def _take_slot(self) -> bool:
        await self.deps.writer.room()
        await self.deps.window.acquire(self.job_id)
        if self._stopping:
            self.deps.window.release(self.job_id)
            return False
        return True

    def _spawn(self, kind_run: KindRun, step: Step, begin: _Begin) -> None:
        task = asyncio.get_running_loop().create_task(self._run_step(kind_run, step, begin))
        self._tasks.add(task)
        self._in_flight.add(step.index)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._in_flight.discard(step.index))

    async def _run_step(self, kind_run: KindRun, step: Step, begin: _Begin) -> None:
        set_item(step.index)
        with item_scope(self.deps.tracing, step.index) as scope:
            try:
                row = await kind_run.step(step)
            except asyncio.CancelledError:
                # A step that never began is still pending: the cancel (or the end) closes it.
                if self.cancelled and not self.abandoned and begin.begun:
                    self._stepped(_cancelled_row(self.job_id, step.index))
                raise
            finally:
                self.deps.window.release(self.job_id)
            scope.ended(row)
        if row.status == ItemStatus.WAITING:
            return  # written by the kind; the item left the window and holds no slot
        begin()  # a step that ends without having begun (no model call) began now
        self._stepped(row)

    def _stepped(self, row: ItemRow) -> None:
        """Queue a step's item row with its event, and count it."""
        writer = self.deps.writer
        writer.item(row)  # may turn it to failed: what cannot be stored fails the item
        self.deps.metrics.items_finished.labels(row.status).inc()
        if row.status == ItemStatus.SUCCEEDED:
            writer.item_succeeded(self.job_id, row.item_index)
        elif row.status == ItemStatus.FAILED:
            data = {"index": row.item_index, "error": row.error}
            writer.event(self.job_id, EventKind.ITEM_FAILED.value, data)

    # -- stopping and ending -----------------------------------------------------------

    @property
    def _stopping(self) -> bool:
        return self.cancelled or self.abandoned

    def cancel(self) -> None:
        """The user cancelled: stop dispatching and cancel in-flight steps now."""
        self.cancelled = True
        self._cancel_tasks()

    def abandon(self) -> None:
        """Stop without recording anything more (another process will take over)."""
        self.abandoned = True
        self._cancel_tasks()

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _conclude(self) -> str | None:
        if self.abandoned:
            return None
        return await self._end(JobStatus.CANCELLED if self.cancelled else JobStatus.COMPLETED)

    async def _end(self, status: JobStatus, error: str | None = None) -> str | None:
        """End the run if this runner still holds it: the final status (``cancelled`` if the
        user cancelled meanwhile), or ``None`` when another runner owns it now. The status and
        ``end_run`` (event, webhook, metrics) commit together, so they happen exactly once."""
        self.ending = True
        await self.deps.writer.flush()  # every item row lands before the job is final
        ending = await retrying(lambda: self._record_end(status, error), self._what)
        if ending is None:
            log.warning("job %s is no longer held by this runner; not ending it", self.job_id)
            return None
        return ending.status

    async def _record_end(self, status: JobStatus, error: str | None) -> Ending | None:
        """Move the job to its final status with its end (one transaction); ``None`` if this
        runner no longer holds it. Retried whole after an outage: it is conditional on the
        lease and on the job not being final, so a retry never ends a job twice."""
        async with self.deps.sessions() as session:
            ending = await jobs_repo.end_job(session, self.job_id, self.deps.owner, status, error)
            if ending is not None:
                end = runner_end(ending.status, error, ending.closed)
                await end_run(session, self.deps.metrics, ending.job, end)
            await session.commit()
        return ending


class _Begin:
    """A step's ``begin``: queues the item's start once."""

    __slots__ = ("begun", "index", "run")

    def __init__(self, run: DurableRun, index: int) -> None:
        self.run, self.index, self.begun = run, index, False

    def __call__(self) -> None:
        if not self.begun:
            self.begun = True
            self.run.deps.writer.item_started(self.run.job_id, self.index)


def _cancelled_row(job_id: str, index: int) -> ItemRow:
    cancelled = ItemStatus.CANCELLED.value
    return ItemRow(job_id, index, cancelled, None, cancelled, 0, 0, 0.0)
