"""Retention: jobs that finished longer ago than ``retention_days`` are deleted, in bulk, with
their items, node results, events and webhook attempts (the foreign keys cascade); response
ledger entries older than ``ledger_retention_days`` go too.

Uploads abandoned mid-way (their process died before the job was published) are deleted too,
an hour after they began, whatever ``retention_days`` says: nobody can see or claim them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import ledger as ledger_repo
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.periodic import Periodic
from app.settings import Settings

log = logging.getLogger(__name__)
BATCH = 200  # jobs per transaction: each takes its whole subtree with it
ABANDONED_UPLOAD = timedelta(hours=1)
Deleter = Callable[[AsyncSession, datetime, int], Awaitable[int]]


class RetentionSweeper:
    """Deletes expired jobs and abandoned uploads every ``retention_interval_s``
    (``start``/``stop``), or once (``sweep``). ``retention_days = 0`` keeps every job."""

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
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete every job that finished before ``now - retention_days`` and every upload
        abandoned before ``now - 1 h``; returns how many finished jobs went."""
        now = now or utcnow()
        abandoned = await self._delete(jobs_repo.delete_abandoned_uploads, now - ABANDONED_UPLOAD)
        if abandoned:
            log.info("deleted %d abandoned uploads", abandoned)
        await self._expire_ledger(now)
        if self.settings.retention_days <= 0:
            return 0
        cutoff = now - timedelta(days=self.settings.retention_days)
        total = await self._delete(jobs_repo.delete_finished_jobs, cutoff)
        self.metrics.retention_deleted.inc(total)
        if total:
            log.info("deleted %d jobs that finished before %s", total, cutoff.isoformat())
        return total

    async def _expire_ledger(self, now: datetime) -> None:
        days = self.settings.ledger_retention_days
        if days > 0:
            expired = await self._delete(ledger_repo.delete_before, now - timedelta(days=days))
            if expired:
                log.info("deleted %d response ledger entries older than %g days", expired, days)

    async def _delete(self, deleter: Deleter, cutoff: datetime) -> int:
        total = 0
        while True:
            async with self.sessions() as session:
                deleted = await deleter(session, cutoff, BATCH)
                await session.commit()
            total += deleted
            if deleted < BATCH:
                return total
