"""Batched persistence of node results, finished items and job events.

The runner hands rows to a :class:`ResultWriter` without waiting; one background task writes
them many rows per transaction, every ``flush_interval_s`` or as soon as ``flush_rows`` are
queued. Writes therefore never sit on the path of a model call, and the queue length shows
whether the database keeps up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import events as events_repo
from app.db.repositories import results
from app.db.repositories.results import ItemRow, NodeRow

log = logging.getLogger(__name__)
MAX_QUEUED_ROWS = 50_000
ITEM_SUCCEEDED = "item_succeeded"
ITEMS_SUCCEEDED = "items_succeeded"
QueuedEvent = tuple[str, str, dict[str, Any]]  # (job id, kind, data)


@dataclass
class WriterStats:
    """For metrics and benchmarks: batches written, rows, write latency, the largest queue."""

    batches: int = 0
    rows: int = 0
    write_seconds: float = 0.0
    max_queued: int = 0
    last_batch_seconds: float = 0.0


class ResultWriter:
    """Queues rows and writes them in batches from one task (``start``/``close``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        flush_interval_s: float,
        flush_rows: int,
        on_batch: Callable[[float, int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._interval = flush_interval_s
        self._rows = flush_rows
        self._on_batch = on_batch
        self._nodes: list[NodeRow] = []
        self._items: list[ItemRow] = []
        self._events: list[QueuedEvent] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()

    @property
    def queued(self) -> int:
        return len(self._nodes) + len(self._items) + len(self._events)

    def node(self, row: NodeRow) -> None:
        self._nodes.append(row)
        self._queued()

    def item(self, row: ItemRow) -> None:
        self._items.append(row)
        self._queued()

    def event(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        self._events.append((job_id, kind, data))
        self._queued()

    def item_succeeded(self, job_id: str, index: int) -> None:
        """Stored as part of one ``items_succeeded`` event per job and batch."""
        self.event(job_id, ITEM_SUCCEEDED, {"index": index})

    def _queued(self) -> None:
        queued = self.queued
        self._idle.clear()
        self.stats.max_queued = max(self.stats.max_queued, queued)
        if queued >= self._rows:
            self._wake.set()
        if queued >= MAX_QUEUED_ROWS:
            self._room.clear()

    async def room(self) -> None:
        """Wait while the queue is over its bound (back-pressure on dispatch)."""
        await self._room.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="result-writer")

    async def flush(self) -> None:
        """Return once everything queued so far is committed."""
        if self._task is None:
            await self._write_all()
            return
        self._wake.set()
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is queued, then stop the background task."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            await self._write_all()

    async def _write_all(self) -> None:
        while self.queued:
            await self._write_batch()
        self._idle.set()

    async def _write_batch(self) -> None:
        nodes, self._nodes = self._nodes, []
        items, self._items = self._items, []
        batch_events, self._events = self._events, []
        started = time.perf_counter()
        try:
            async with self._sessions() as session:
                await results.write_batch(session, nodes, items)
                if batch_events:
                    await events_repo.append_events(session, coalesce_successes(batch_events))
                await session.commit()
        except Exception:
            log.exception(
                "writing %d node rows and %d items failed; retrying", len(nodes), len(items)
            )
            self._nodes[:0], self._items[:0], self._events[:0] = nodes, items, batch_events
            await asyncio.sleep(min(5.0, self._interval * 10))
            return
        self._record(time.perf_counter() - started, len(nodes) + len(items) + len(batch_events))

    def _record(self, seconds: float, rows: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.rows += rows
        stats.write_seconds += seconds
        stats.last_batch_seconds = seconds
        if self.queued < MAX_QUEUED_ROWS // 2:
            self._room.set()
        if self._on_batch is not None:
            self._on_batch(seconds, rows)


def coalesce_successes(events: list[QueuedEvent]) -> list[QueuedEvent]:
    """One ``items_succeeded`` event (``{"indexes": [...]}``) per job in place of its
    ``item_succeeded`` events, at the first one's position; other events keep their order.

    A million-item job thus stores one success event per write batch, not per item.
    """
    coalesced: list[QueuedEvent] = []
    indexes: dict[str, list[int]] = {}
    for job_id, kind, data in events:
        if kind != ITEM_SUCCEEDED:
            coalesced.append((job_id, kind, data))
            continue
        if job_id not in indexes:
            indexes[job_id] = []
            coalesced.append((job_id, ITEMS_SUCCEEDED, {"indexes": indexes[job_id]}))
        indexes[job_id].append(data["index"])
    return coalesced
