"""Retention: jobs that finished longer ago than ``retention_days`` are deleted, in bulk, with
their items, node results, events and webhook attempts (the foreign keys cascade)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.repositories import jobs as jobs_repo
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.periodic import Periodic
from app.settings import Settings

log = logging.getLogger(__name__)
BATCH = 200  # jobs per transaction: each takes its whole subtree with it


class RetentionSweeper:
    """Deletes expired jobs every ``retention_interval_s`` (``start``/``stop``), or once
    (``sweep``). ``retention_days = 0`` keeps everything."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: ServiceMetrics,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.metrics = metrics
        self._loop = Periodic("retention", self.sweep, settings.retention_interval_s)

    def start(self) -> None:
        if self.settings.retention_days > 0:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete every job that finished before ``now - retention_days``; returns how many."""
        if self.settings.retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.settings.retention_days)
        total = 0
        while True:
            async with self.sessions() as session:
                deleted = await jobs_repo.delete_finished_jobs(session, cutoff, BATCH)
                await session.commit()
            total += deleted
            self.metrics.retention_deleted.inc(deleted)
            if deleted < BATCH:
                break
        if total:
            log.info("deleted %d jobs that finished before %s", total, cutoff.isoformat())
        return total
