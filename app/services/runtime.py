"""What a service process holds while it runs: database, endpoints, caches, the job runner.

``start_runtime`` builds it (migrating the schema first when configured) and
``Runtime.close`` drains and releases it; the HTTP app and the CLI both use these. The job
runner runs in a child process by default (see :mod:`app.services.runner.process`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import migrate
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import tenants
from app.db.session import create_engine, ping, read_session_factory, session_factory
from app.engine import ResourceConfig, ResourceManager
from app.engine.resources.shared import SharedRateStore
from app.services.endpoints import load_endpoints
from app.services.errors import Unavailable, is_outage
from app.services.limiting.backends import build_rate_store, close_rate_store, slice_settings
from app.services.observability.events import EventHub
from app.services.observability.health import RunnerHealth
from app.services.observability.limiter_metrics import SharedStateCollector
from app.services.observability.live_metrics import process_metrics
from app.services.observability.metrics import ServiceMetrics, merge_families
from app.services.observability.tracing import RunTracing, run_tracing
from app.services.optimizations.plan import OPTIMIZATION
from app.services.optimizations.view import states as optimization_states
from app.services.programs import ProgramCache
from app.services.requests.auth import DEFAULT_TENANT, Authenticator
from app.services.runner.background import Background
from app.services.runner.calls import watched_clients
from app.services.runner.crashes import CrashRecorder
from app.services.runner.process import RunnerProcess, settle_heap
from app.services.runner.standalone import shared_database_refusal
from app.settings import Settings

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class RunnerHandle(Protocol):
    """The job runner as the rest of the service sees it."""

    @property
    def alive(self) -> bool: ...

    @property
    def health(self) -> RunnerHealth: ...

    def notify(self) -> None: ...

    def cancel_local(self, job_id: str) -> None: ...

    async def metrics_families(self) -> list[Metric] | None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: async_sessionmaker[AsyncSession]
    endpoints: ResourceConfig
    resources: ResourceManager
    auth: Authenticator
    metrics: ServiceMetrics
    events: EventHub
    programs: ProgramCache = field(default_factory=ProgramCache)
    runner: RunnerHandle | None = None
    rate_store: SharedRateStore | None = None
    shared_view: SharedStateCollector | None = None
    tracing: RunTracing | None = None  # OpenTelemetry, when the OTEL_* settings ask

    async def check_ready(self) -> None:
        """Raise ``Unavailable`` unless the database answers and the runner (if enabled) runs."""
        if not await ping(self.engine):
            raise Unavailable("the database does not answer")
        if self._runs_jobs and (self.runner is None or not self.runner.alive):
            raise Unavailable(f"the job runner is not running (it is {self.runner_health.state})")

    @property
    def _runs_jobs(self) -> bool:
        """Whether this process is meant to hold a runner (not disabled, not external)."""
        return self.settings.runner_enabled and self.settings.runner_mode != "none"

    @property
    def runner_health(self) -> RunnerHealth:
        """The runner's last known state, without waiting on it (for ``/healthz``)."""
        if self.runner is not None:
            return self.runner.health
        if not self.settings.runner_enabled:
            return RunnerHealth("disabled")
        return RunnerHealth("external" if self.settings.runner_mode == "none" else "down")

    async def metrics_exposition(self) -> bytes:
        """``/metrics``: this process's families, the job counts of the database and, when the
        runner is a process of its own, its families, merged into one exposition.

        A runner that does not answer in time is reported with ``inf_runner_up 0`` and its
        families are left out (until it answers again), never served stale. While the database
        is down the job counts keep their last values and the rest is served as usual (the
        runner's result queue shows what it holds for the database).
        """
        try:
            await self._read_job_counts()
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("/metrics: job counts not refreshed, database unavailable: %s", exc)
        if self.shared_view is not None:
            await self.shared_view.refresh()
        runner = self.runner
        from_runner = None if runner is None else await runner.metrics_families()
        self.metrics.runner_up.set(0 if from_runner is None else 1)
        if not from_runner:
            return self.metrics.exposition().encode()
        return merge_families([self.metrics.families(), from_runner])

    async def _read_job_counts(self) -> None:
        async with self.reads() as session:
            self.metrics.set_job_counts(await jobs_repo.count_by_status(session))
            outcomes = await jobs_repo.count_by_outcome(session, OPTIMIZATION)
            self.metrics.set_optimization_counts(optimization_states(outcomes))

    async def close(self) -> None:
        """Stop the event pollers and the runner (in-flight work is leased back), close clients
        and the pool."""
        await self.events.close()
        if self.runner is not None:
            await self.runner.stop()
        await self.resources.aclose()
        await close_rate_store(self.rate_store)
        await self.engine.dispose()
        if self.tracing is not None:
            await self.tracing.flush()


async def start_runtime(settings: Settings) -> Runtime:
    """Migrate (if enabled), connect, load endpoints and set up authentication."""
    if settings.runner_mode == "none" and (refusal := shared_database_refusal(settings)):
        raise RuntimeError(refusal)
    if settings.auto_migrate:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    endpoints = load_endpoints(settings)
    open_tenant = await _open_tenant(settings, sessions)
    store = build_rate_store(settings, sessions, endpoints)
    resources = ResourceManager(
        endpoints,
        client_factory=watched_clients(),
        shared_store=store,
        aging_s=settings.fair_aging_s,
        shared_lease_s=settings.limiter_lease_s,
        shared_slices=slice_settings(settings),
    )
    reads = read_session_factory(engine)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reads=reads,
        endpoints=endpoints,
        resources=resources,
        auth=Authenticator(sessions, open_tenant, settings),
        metrics=process_metrics("api", resources, engine, store),
        events=EventHub(reads, settings),
        rate_store=store,
        tracing=run_tracing(settings, endpoints),  # FastAPI's request spans go to it too
    )
    runtime.shared_view = _shared_view(runtime)
    runtime.runner = await _start_runner(runtime)
    settle_heap(settings.gc_young_threshold)
    return runtime


def _shared_view(runtime: Runtime) -> SharedStateCollector | None:
    """``inf_shared_*`` on ``/metrics``: the shared store's state of every alias."""
    if runtime.rate_store is None:
        return None
    view = SharedStateCollector(runtime.rate_store, runtime.endpoints.endpoints)
    runtime.metrics.add(view)
    return view


async def _start_runner(runtime: Runtime) -> RunnerHandle | None:
    """``process`` (the default): a child process; ``inline``: on this event loop; ``none``:
    no runner here, ``inf-engine worker`` processes run the jobs."""
    settings = runtime.settings
    if not settings.runner_enabled or settings.runner_mode == "none":
        return None
    runner: RunnerProcess | Background
    if settings.runner_mode == "inline":
        runner = Background(runtime)
    else:
        charge = CrashRecorder(runtime.sessions, runtime.metrics, settings.runner_job_max_crashes)
        runner = RunnerProcess(settings, on_death=charge)
    await runner.start()
    return runner


async def _open_tenant(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> str | None:
    if settings.auth_mode != "open":
        return None
    if settings.host not in LOOPBACK:
        raise RuntimeError(
            "auth_mode=open is only allowed on a loopback host; create API keys instead"
        )
    log.warning(
        "running WITHOUT API keys (auth_mode=open) on %s: every request is tenant 'default'",
        settings.host,
    )
    async with sessions() as session:
        tenant = await tenants.get_or_create_tenant(session, DEFAULT_TENANT)
        await session.commit()
    return tenant.id
