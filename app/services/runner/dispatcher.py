"""The dispatcher: claims runs with a lease, runs them, heartbeats, resumes after a crash.

It claims jobs of every registered run kind (:mod:`app.services.runner.kinds`) and runs each
through the durable-run core (:class:`~app.services.runner.core.DurableRun`).

Several processes can share one Postgres database: claiming uses ``SKIP LOCKED`` so no job
runs twice, each process renews the leases of its jobs every ``heartbeat_s`` (from a thread
of its own, so a stalled event loop keeps them: see :mod:`app.services.runner.leases`), and a job
whose lease expired is claimed by another. Each process also holds, for its life, an
advisory lock keyed by its owner id (:mod:`app.db.owner_locks`): a job whose owner's lock is
free (its process died) is taken over at the next claim, whatever its lease; while other
owners hold leases, claims run at least every ``TAKEOVER_POLL_S``. A runner never claims a job
it runs already, even if its lease lapsed: it renews it instead. SQLite serves one process, so
there a starting runner takes over every unfinished job at once.

``run_until_idle()`` runs everything claimable to the end and returns: tests use it instead
of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Job
from app.db.owner_locks import OwnerLock
from app.db.repositories import jobs as jobs_repo
from app.engine import ResourceManager
from app.lifecycle import JobStatus
from app.services.batches.kind import OpenAIBatchKind
from app.services.errors import is_outage
from app.services.evaluations.kind import EvaluationKind
from app.services.limits import output_limits
from app.services.observability.health import RunnerHealth
from app.services.observability.metrics import ServiceMetrics
from app.services.observability.tracing import run_tracing
from app.services.optimizations.kind import OptimizationKind
from app.services.programs import ProgramCache
from app.services.runner.batch import BatchKind
from app.services.runner.core import DurableRun
from app.services.runner.kinds import RUN_KINDS, RunDeps, kind_of, register
from app.services.runner.leases import LeaseKeeper
from app.services.runner.outages import backoff, reason, retrying
from app.services.runner.window import FairWindow
from app.services.runner.writer import ResultWriter
from app.settings import Settings

log = logging.getLogger(__name__)
TAKEOVER_POLL_S = 2.0  # the longest wait between claims while other owners hold leases
RELEASE_TRIES = 5  # about 1.5 s of retries: past them, the lease lapses instead
register(BatchKind())  # the first run kind; others register themselves the same way
register(EvaluationKind())
register(OptimizationKind())
register(OpenAIBatchKind())


class DispatchContext(Protocol):
    """What a runner uses from the process: settings, a database pool, endpoints, programs."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    resources: ResourceManager
    programs: ProgramCache
    metrics: ServiceMetrics


def new_owner() -> str:
    """A lease owner id unique to this process run."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunDispatcher:
    """Runs the jobs of a service process (see the module docstring)."""

    def __init__(self, context: DispatchContext, owner: str | None = None) -> None:
        settings = context.settings
        self.context = context
        self.settings = settings
        self.owner = owner or new_owner()
        metrics = context.metrics
        self.writer = ResultWriter(
            context.sessions,
            flush_interval_s=settings.flush_interval_s,
            flush_rows=settings.flush_rows,
            on_batch=_batch_observer(metrics),
        )
        metrics.result_queue.labels(metrics.process).set_function(lambda: self.writer.queued)
        metrics.result_queue_peak.labels(metrics.process).set_function(
            lambda: self.writer.stats.max_queued
        )
        self.deps = RunDeps(
            sessions=context.sessions,
            writer=self.writer,
            resources=context.resources,
            programs=context.programs,
            window=FairWindow(settings.runner_window),
            metrics=metrics,
            owner=self.owner,
            progress_s=settings.progress_interval_s,
            limits=output_limits(settings),
            tenant_weights=settings.tenant_weights,
            ledger_cache=settings.ledger_cache,
            tracing=run_tracing(settings, context.resources.config),
        )
        self.active: dict[str, DurableRun] = {}
        self._tasks: dict[str, asyncio.Task[str | None]] = {}
        self._wake = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        self.leases = LeaseKeeper(
            settings.database_url,
            self.owner,
            (settings.lease_s, settings.heartbeat_s),
            held=lambda: tuple(self.active),
            report=self._renewed,
        )
        self.owner_lock = OwnerLock(settings.database_url, self.owner)
        self._stopping = False
        self._until_idle = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Begin claiming and running jobs in the background."""
        await self.owner_lock.acquire()  # before any claim: our jobs must never look ownerless
        await self._take_over_if_single_process()
        self.writer.start()
        self.leases.start()
        loop = asyncio.get_running_loop()
        self._background = [loop.create_task(self._claim_loop(), name="runner-claim")]

    @property
    def health(self) -> RunnerHealth:
        """On the caller's own event loop (inline or in tests): up while it runs."""
        return RunnerHealth("up" if self.alive else "down", 0)

    @property
    def alive(self) -> bool:
        if not self.leases.alive:
            return False
        if self._until_idle:
            return True
        return bool(self._background) and not any(task.done() for task in self._background)

    def notify(self) -> None:
        """New work may be claimable (a job was submitted)."""
        self._wake.set()

    def cancel_local(self, job_id: str) -> None:
        """The job was cancelled through this process: stop it now, not at the next heartbeat."""
        execution = self.active.get(job_id)
        if execution is not None:
            execution.cancel()

    async def stop(self) -> None:
        """Stop claiming, abandon running jobs to the next owner, write what is queued."""
        self._stopping = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.leases.stop()
        for execution in self.active.values():
            execution.abandon()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.writer.close()
        async with self.context.sessions() as session:
            await jobs_repo.release_all(session, self.owner)
            await session.commit()
        await self.owner_lock.release()
        await self._flush_spans()

    async def run_until_idle(self) -> None:
        """Claim and run jobs until nothing is claimable; every result is written on return.

        Leases are renewed meanwhile, so cancellations and lost leases are noticed as in
        normal operation.
        """
        await self.owner_lock.acquire()
        self.writer.start()
        self.leases.start()
        self._until_idle = True
        try:
            while True:
                await self._claim()
                if not self._tasks:
                    break
                # A job whose items wait at human nodes runs long: claim new jobs meanwhile.
                await asyncio.wait(
                    list(self._tasks.values()),
                    timeout=self.settings.poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            self._until_idle = False
            await self.leases.stop()
            await self.writer.close()
            await self.owner_lock.release()
            await self._flush_spans()

    async def _flush_spans(self) -> None:
        if self.deps.tracing is not None:
            await self.deps.tracing.flush()

    # -- claiming ----------------------------------------------------------------------

    async def _take_over_if_single_process(self) -> None:
        if self.settings.is_sqlite:
            async with self.context.sessions() as session:
                await jobs_repo.expire_leases(session)
                await session.commit()

    async def _claim_loop(self) -> None:
        failures = 0  # in a row: the wait grows while the database is down
        while not self._stopping:
            others_leased = False
            try:
                others_leased = await self._claim()
                failures = 0
            except Exception as exc:
                _claim_failed(exc)
                failures += 1
            self._wake.clear()
            wait_s = self.settings.poll_s
            if others_leased:  # one of them may die: notice it soon
                wait_s = min(wait_s, TAKEOVER_POLL_S)
            if failures:
                wait_s = max(wait_s, backoff(failures - 1))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()

    async def _claim(self) -> bool:
        """Claim what this runner has room for; returns whether other owners hold leases."""
        free = self.settings.runner_max_jobs - len(self._tasks)
        if free <= 0 or self._stopping:
            return False
        await self.owner_lock.keep()
        async with self.context.sessions() as session:
            dead = await jobs_repo.dead_owners(session, self.owner, _now())
            claimed = await jobs_repo.claim_jobs(
                session,
                self.owner,
                self.settings.lease_s,
                free,
                _now(),
                running=self.active,
                kinds=tuple(RUN_KINDS),
                dead=dead,
            )
            others_leased = await jobs_repo.leased_elsewhere(session, self.owner, _now())
            await session.commit()
        for job in claimed:
            self._launch(job)
        return others_leased

    def _launch(self, job: Job) -> None:
        kind = kind_of(job.kind)
        assert kind is not None  # only jobs of registered kinds are claimed
        run = DurableRun(job, kind, self.deps)
        self.active[job.id] = run
        task = asyncio.get_running_loop().create_task(self._run_job(run), name=f"job-{job.id}")
        self._tasks[job.id] = task

    async def _run_job(self, execution: DurableRun) -> str | None:
        try:
            return await execution.run()
        except Exception:
            log.exception(
                "job %s crashed in the runner; leaving it for another attempt", execution.job_id
            )
            execution.abandon()  # its steps in flight must not outlive it
            return None
        finally:
            self.active.pop(execution.job_id, None)
            self._tasks.pop(execution.job_id, None)
            await self._release(execution.job_id)
            self._wake.set()

    async def _release(self, job_id: str) -> None:
        """Give the job back (after a crash or an abandon); if the database stays away, leave
        it: its lease lapses after ``lease_s`` as it would have."""
        try:
            await retrying(partial(self._release_once, job_id), f"job {job_id}", RELEASE_TRIES)
        except Exception as exc:
            log.warning("could not release job %s (%s); its lease will lapse", job_id, exc)

    async def _release_once(self, job_id: str) -> None:
        async with self.context.sessions() as session:
            await jobs_repo.release_lease(session, self.owner, job_id)
            await session.commit()

    # -- heartbeat ---------------------------------------------------------------------

    def _renewed(self, held: Sequence[str], statuses: dict[str, str]) -> None:
        """A renewal's outcome (from the lease keeper): stop what is lost or cancelled."""
        for job_id in held:
            execution = self.active.get(job_id)
            if execution is None or execution.ending:  # ending releases the lease
                continue
            if job_id not in statuses:
                log.warning("lost the lease of job %s; another process owns it now", job_id)
                execution.abandon()
            elif statuses[job_id] == JobStatus.CANCELLED:
                execution.cancel()


def _now() -> datetime:
    return datetime.now(UTC)


def _claim_failed(exc: Exception) -> None:
    """One line while the database is down (the loop retries with backoff), else the trace."""
    if is_outage(exc):
        log.warning("claiming jobs: database unavailable (%s); retrying", reason(exc))
    else:
        log.exception("claiming jobs failed; retrying")


def _batch_observer(metrics: ServiceMetrics) -> Callable[[float, int], None]:
    def observe(seconds: float, rows: int) -> None:
        metrics.checkpoint_write.observe(seconds)
        metrics.checkpoint_rows.inc(rows)

    return observe
