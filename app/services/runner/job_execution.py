"""One claimed job: its items, page by page, through the engine within the runner's window.

Items are read in index order with a cursor, marked running, and each runs as its own
engine execution. Nodes an earlier process already stored are restored, not re-run. Every
finished node, item and event is queued to the shared :class:`ResultWriter`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import GraphVersion, Job, NodeResult
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import results
from app.db.repositories.results import ItemRow
from app.engine import (
    EngineError,
    ExecutionSettings,
    InputError,
    OutputLimits,
    ResourceManager,
    RunResult,
)
from app.engine.execution.inputs import check_inputs
from app.engine.execution.runner import Execution
from app.lifecycle import EventKind, ItemStatus, JobStatus
from app.logs import job_context, set_item
from app.services.observability.metrics import ServiceMetrics
from app.services.programs import ProgramCache
from app.services.requests.jobs import counts, record_end
from app.services.runner.sink import FailedNodeLog, NodeSink, restored_records
from app.services.runner.writer import ResultWriter

log = logging.getLogger(__name__)
PAGE_SIZE = 256


@dataclass
class JobDeps:
    """What every job of a runner shares."""

    sessions: async_sessionmaker[AsyncSession]
    writer: ResultWriter
    resources: ResourceManager
    programs: ProgramCache
    window: asyncio.Semaphore
    metrics: ServiceMetrics
    owner: str  # the runner's lease owner id: only the lease holder may end a job
    progress_s: float = 2.0
    limits: OutputLimits | None = None


class JobExecution:
    """Runs one job to its end, or until it is cancelled or its lease is lost."""

    def __init__(self, job: Job, version: GraphVersion, deps: JobDeps) -> None:
        self.job_id = job.id
        self.priority = job.priority
        self.version = version
        self.deps = deps
        # By the user: in-flight items end as "cancelled". A job claimed already cancelled was
        # left by a runner that died; it is only closed.
        self.cancelled = job.status == JobStatus.CANCELLED
        self.abandoned = False  # lease lost or runner stopping: leave items for the next owner
        self.ending = False  # in ``_end``: the lease is being released with the job's end
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> str | None:
        """Run to the end; the final status, or ``None`` when the job was abandoned."""
        with job_context(self.job_id):
            return await self._run()

    async def _run(self) -> str | None:
        if self.cancelled:
            return await self._conclude()
        try:
            execution = self._prepare()
        except EngineError as exc:
            return await self._end(JobStatus.FAILED, f"the graph cannot run: {exc}")
        await self._started()
        progress = asyncio.get_running_loop().create_task(self._report_progress())
        try:
            await self._dispatch_all(execution)
            await self._drain()
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
        return await self._conclude()

    async def _started(self) -> None:
        """``job_started``, once per job: not again when another runner resumes it."""
        async with self.deps.sessions() as session:
            if await jobs_repo.first_start(session, self.job_id, self.deps.owner):
                data = {"graph_version": self.version.version}
                await events_repo.append_events(
                    session, [(self.job_id, EventKind.JOB_STARTED, data)]
                )
            await session.commit()

    async def _report_progress(self) -> None:
        """A ``progress`` event (counts, throughput, ETA, usage) every ``progress_s``."""
        while True:
            await asyncio.sleep(self.deps.progress_s)
            try:
                self.deps.writer.event(self.job_id, EventKind.PROGRESS, await self._counts())
            except Exception:
                log.exception("reading the progress of job %s failed", self.job_id)

    async def _counts(self) -> dict[str, Any]:
        async with self.deps.sessions() as session:
            job = await jobs_repo.get_job_by_id(session, self.job_id)
        return {} if job is None else counts(job)

    def _prepare(self) -> Execution:
        program = self.deps.programs.get(self.version.id, self.version.definition)
        for alias in program.plan.aliases:
            self.deps.resources.config.endpoint(alias)  # ConfigError if no longer configured
        sink = NodeSink(self.job_id, self.deps.writer)
        observers = (sink, self.deps.metrics.nodes, FailedNodeLog())
        settings = ExecutionSettings(
            resources=self.deps.resources,
            observers=observers,
            priority=self.priority,
            output_limits=self.deps.limits,
        )
        return Execution(program, settings)

    async def _dispatch_all(self, execution: Execution) -> None:
        cursor = -1
        while not self._stopping:
            page, stored = await self._next_page(cursor)
            if not page:
                return
            cursor = page[-1][0]
            for index, raw in page:
                if not await self._take_slot():
                    return
                self._spawn(execution, index, raw, stored.get(index, []))

    async def _next_page(
        self, cursor: int
    ) -> tuple[list[tuple[int, Any]], dict[int, list[NodeResult]]]:
        async with self.deps.sessions() as session:
            page = await jobs_repo.next_items(session, self.job_id, cursor, PAGE_SIZE)
            indexes = [index for index, _ in page]
            if not page:
                return [], {}
            await jobs_repo.mark_running(session, self.job_id, indexes)
            stored = await results.node_results_for(session, self.job_id, indexes)
            await session.commit()
        return page, stored

    async def _take_slot(self) -> bool:
        await self.deps.writer.room()
        await self.deps.window.acquire()
        if self._stopping:
            self.deps.window.release()
            return False
        return True

    def _spawn(self, execution: Execution, index: int, raw: Any, stored: list[NodeResult]) -> None:
        task = asyncio.get_running_loop().create_task(self._run_item(execution, index, raw, stored))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_item(
        self, execution: Execution, index: int, raw: Any, stored: list[NodeResult]
    ) -> None:
        set_item(index)
        try:
            row = await self._item_row(execution, index, raw, stored)
        except asyncio.CancelledError:
            if self.cancelled and not self.abandoned:
                self.deps.writer.item(
                    ItemRow(
                        self.job_id,
                        index,
                        ItemStatus.CANCELLED,
                        None,
                        ItemStatus.CANCELLED,
                        0,
                        0,
                        0.0,
                    )
                )
                self.deps.metrics.items_finished.labels(ItemStatus.CANCELLED).inc()
            raise
        finally:
            self.deps.window.release()
        self.deps.writer.item(row)
        self.deps.metrics.items_finished.labels(row.status).inc()
        if row.status == ItemStatus.SUCCEEDED:
            self.deps.writer.item_succeeded(self.job_id, index)
        else:
            self.deps.writer.event(
                self.job_id, EventKind.ITEM_FAILED, {"index": index, "error": row.error}
            )

    async def _item_row(
        self, execution: Execution, index: int, raw: Any, stored: list[NodeResult]
    ) -> ItemRow:
        try:
            inputs = check_inputs(execution.plan.graph.inputs, raw if isinstance(raw, dict) else {})
        except InputError as exc:
            return ItemRow(self.job_id, index, ItemStatus.FAILED, None, str(exc), 0, 0, 0.0)
        restored = restored_records(stored) if stored else None
        result = await execution.run(inputs, str(index), restored)
        return _item_row(self.job_id, index, result, stored)

    @property
    def _stopping(self) -> bool:
        return self.cancelled or self.abandoned

    def cancel(self) -> None:
        """The user cancelled: stop dispatching and cancel in-flight items now."""
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

    async def _end(self, status: str, error: str | None = None) -> str | None:
        """End the job if this runner still holds it: the final status (``cancelled`` if the
        user cancelled meanwhile), or ``None`` when another runner owns it now. The status,
        the terminal event and the webhook commit together, so they happen exactly once."""
        self.ending = True
        await self.deps.writer.flush()  # every item row lands before the job is final
        async with self.deps.sessions() as session:
            ending = await jobs_repo.end_job(session, self.job_id, self.deps.owner, status, error)
            if ending is not None:
                reason = error if ending.status == status else None
                await record_end(session, ending.job, ending.status, reason)
            await session.commit()
        if ending is None:
            log.warning("job %s is no longer held by this runner; not ending it", self.job_id)
            return None
        if ending.status == JobStatus.CANCELLED:  # the job itself was counted when it was cancelled
            self.deps.metrics.items_finished.labels(ItemStatus.CANCELLED).inc(ending.closed)
        else:
            self.deps.metrics.jobs_finished.labels(ending.status).inc()
        return ending.status


def _item_row(job_id: str, index: int, result: RunResult, stored: list[NodeResult]) -> ItemRow:
    """The item's row; its usage counts the nodes stored before a restart too."""
    tokens_in, tokens_out, cost = result.usage_totals()
    reused = [
        row
        for row in stored
        if row.node_id in result.records and result.records[row.node_id].restored
    ]
    tokens_in += sum(row.input_tokens for row in reused)
    tokens_out += sum(row.output_tokens for row in reused)
    cost += sum(row.cost for row in reused)
    error = None
    if not result.ok:
        failed = [result.records[node] for node in result.failed]
        error = "; ".join(f"{r.node}: {r.error_type}: {r.error}" for r in failed)
    status = ItemStatus.SUCCEEDED if result.ok else ItemStatus.FAILED
    return ItemRow(job_id, index, status, result.outputs, error, tokens_in, tokens_out, cost)
