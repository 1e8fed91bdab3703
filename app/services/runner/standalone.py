"""``inf-engine worker``: a process that runs jobs and answers no requests.

It supervises a runner child exactly as ``inf-engine serve`` does (restarts with backoff, a
dead child's jobs charged a crash, stalls killed), with no HTTP process beside it. Any number
of workers and of ``serve --no-runner`` processes share one Postgres database: jobs are
claimed with leases and ``SKIP LOCKED``, and a worker finds a job submitted elsewhere at its
next poll (``poll_s``). SIGTERM or SIGINT stops it cleanly: queued results are written and
its leases are given back, so another worker resumes its jobs at once.

    run_loop(run_worker(Settings(), on_ready=print))
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext

from app.db import migrate
from app.db.session import create_engine, session_factory
from app.services.observability.metrics import ServiceMetrics, merge_families
from app.services.runner.crashes import CrashRecorder
from app.services.runner.process import RunnerProcess
from app.settings import Settings

log = logging.getLogger(__name__)
Exposition = Callable[[], Awaitable[bytes]]
# Serves an exposition over HTTP while the context is open (``app.api.worker_metrics``).
MetricsServing = Callable[[Exposition], AbstractAsyncContextManager[object]]


def shared_database_refusal(settings: Settings) -> str | None:
    """Why the runner cannot live apart from the API on this database (``None``: it can).

    >>> shared_database_refusal(Settings(database_url="sqlite+aiosqlite:///x.sqlite"))[:22]
    'a separate API and wor'
    """
    if not settings.is_sqlite:
        return None
    return (
        "a separate API and worker need Postgres: a SQLite database serves one process, whose "
        "runner takes over every unfinished job at start (use `inf-engine serve` alone)"
    )


async def schema_refusal(settings: Settings) -> str | None:
    """Why the worker cannot start on this schema (``None``: it is at the head revision).

    A worker never migrates: the API process does (or ``inf-engine migrate``), so several
    processes starting at once never race one migration.
    """
    current = await asyncio.to_thread(migrate.current, settings.database_url)
    if current in migrate.heads():
        return None
    return (
        f"the database schema is at {current or 'no revision'}, not {migrate.heads()[0]}: "
        "run `inf-engine migrate` or start `inf-engine serve` first"
    )


async def run_worker(
    settings: Settings,
    on_ready: Callable[[], object] | None = None,
    serving: MetricsServing | None = None,
) -> None:
    """Run a supervised runner until SIGTERM or SIGINT, then stop it (leases given back).

    ``serving``: how to serve the worker's ``/metrics`` (its runner's families merged with its
    own) while it runs; ``None``: no HTTP.
    """
    engine = create_engine(settings.database_url)
    metrics = ServiceMetrics("worker")
    charge = CrashRecorder(session_factory(engine), metrics, settings.runner_job_max_crashes)
    runner = RunnerProcess(settings, on_death=charge)
    try:
        await runner.start()
        exposing = nullcontext() if serving is None else serving(exposition(metrics, runner))
        async with exposing:
            if on_ready is not None:
                on_ready()
            await _until_signalled()
            log.info("stopping: writing queued results and giving leases back")
    finally:
        await runner.stop()
        await engine.dispose()


def exposition(metrics: ServiceMetrics, runner: RunnerProcess) -> Exposition:
    """The worker's ``/metrics`` text: its own families and its runner's (limiter, jobs,
    calls); a runner that does not answer shows as ``inf_runner_up 0``."""

    async def render() -> bytes:
        from_runner = await runner.metrics_families()
        metrics.runner_up.set(0 if from_runner is None else 1)
        return merge_families([metrics.families(), from_runner or []])

    return render


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
