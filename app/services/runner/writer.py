"""Batched persistence of item starts, node results, finished items and job events.

The runner hands rows to a :class:`ResultWriter` without waiting; one background task writes
them many rows per transaction, every ``flush_interval_s`` or as soon as ``flush_rows`` are
queued. Writes therefore never sit on the path of a model call, and the queue length shows
whether the database keeps up.

Every queued row takes the next number of a sequence; a batch takes every row queued so far,
and once it commits every row up to its last number is written. ``flush()`` waits for the
number queued when it was called, never for an empty queue: a job ending while another job of
the process keeps the writer busy waits for at most the batch being written and the next one.

A batch the database refuses for its data (a value it cannot store, a row that breaks a
constraint) is split in halves until the bad rows are alone; each is stored as a failure
instead (or, for an event, left out) and everything else is written. A batch that fails for
any other reason (the database unreachable, a lost connection, a lock) is put back and
retried whole, with a backoff from 0.1 s doubling to 2 s (:mod:`app.services.runner.outages`).
Every write is idempotent (node rows are upserted on (job, item, node), items move from
``running`` once), so a batch that was committed but whose answer was lost is harmless to
write again.

While the database is away rows wait in memory: at most ``max_queued_rows`` rows or
``max_queued_bytes`` of outputs (``MAX_QUEUED_ROWS``, ``MAX_QUEUED_BYTES`` unless told). Past
either
``room()`` holds dispatch (no new item starts); the steps already in flight still finish and
queue theirs, so the queue can pass the bound by the runner's window times its rows per
item. Nothing queued is dropped; a process that dies meanwhile loses it, and its items are
run again by whoever takes the job over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import events as events_repo
from app.db.repositories import results
from app.db.repositories.results import ItemRow, NodeRow
from app.lifecycle import EventKind, ItemStatus
from app.services.errors import is_outage
from app.services.runner import outages, storable

log = logging.getLogger(__name__)
MAX_QUEUED_ROWS = 50_000  # then dispatch waits until the queue is down to half
MAX_QUEUED_BYTES = 256 * 1024 * 1024  # of outputs (node and item), counted the same way
ITEM_SUCCEEDED = EventKind.ITEM_SUCCEEDED.value
ITEMS_SUCCEEDED = EventKind.ITEMS_SUCCEEDED.value
QueuedEvent = tuple[str, str, dict[str, Any]]  # (job id, kind, data)


@dataclass(frozen=True, slots=True)
class ItemStart:
    """An item's work has begun: it moves from pending to running (and is counted so)."""

    job_id: str
    item_index: int


Row = ItemStart | NodeRow | ItemRow | QueuedEvent
# SQLSTATE classes of errors caused by the data written: data exception, integrity violation.
DATA_ERROR_CLASSES = ("22", "23")


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
        max_queued_rows: int = MAX_QUEUED_ROWS,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self._sessions = sessions
        self._max_queued = max_queued_rows
        self._max_bytes = max_queued_bytes
        self._bytes = 0  # outputs queued, the batch being written included
        self._batch_bytes = 0  # of those, the batch being written
        self._interval = flush_interval_s
        self._rows = flush_rows
        self._on_batch = on_batch
        self._starts: list[ItemStart] = []
        self._nodes: list[NodeRow] = []
        self._items: list[ItemRow] = []
        self._events: list[QueuedEvent] = []
        self._wake = asyncio.Event()
        self._seq = 0  # rows ever queued: the last row's number
        self._taken = 0  # the last number in the batch being written
        self._written = 0  # every row up to this number is committed
        self._batch_done = asyncio.Event()  # set (and replaced) when a batch commits
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # failed writes in a row: the retry waits longer each time
        # Failed nodes (``node: type: error``) of items whose row has not been queued yet.
        self._unstorable: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
        self.stats = WriterStats()

    @property
    def queued(self) -> int:
        return len(self._starts) + len(self._nodes) + len(self._items) + len(self._events)

    def item_started(self, job_id: str, index: int) -> None:
        """Queue an item's start; it is written before (or with) any later row of that item."""
        self._starts.append(ItemStart(job_id, index))
        self._queued()

    def node(self, row: NodeRow) -> None:
        """Queue a node row; one whose output cannot be stored becomes the node's failure."""
        failure = storable.check_node(row)
        if failure is not None:
            self._unstorable[row.job_id, row.item_index].append(failure)
        self._bytes += storable.size(row.output)
        self._nodes.append(row)
        self._queued()

    def item(self, row: ItemRow) -> None:
        """Queue an item row. An item with a node that could not be stored, or an output that
        cannot be, is changed in place to ``failed``, so the caller reports what is stored."""
        storable.check_item(row, self._unstorable.pop((row.job_id, row.item_index), []))
        self._bytes += storable.size(row.output)
        self._items.append(row)
        self._queued()

    def event(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        if kind != ITEM_SUCCEEDED and storable.has_nul(data):
            data = storable.escaped_value(data)
        self._events.append((job_id, kind, data))
        self._queued()

    def item_succeeded(self, job_id: str, index: int) -> None:
        """Stored as part of one ``items_succeeded`` event per job and batch."""
        self.event(job_id, ITEM_SUCCEEDED, {"index": index})

    def _queued(self) -> None:
        queued = self.queued
        self._seq += 1
        self.stats.max_queued = max(self.stats.max_queued, queued)
        if queued >= self._rows:
            self._wake.set()
        if queued >= self._max_queued or self._bytes >= self._max_bytes:
            self._room.clear()

    async def room(self) -> None:
        """Wait while the queue is over its bound (back-pressure on dispatch)."""
        await self._room.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="result-writer")

    async def flush(self) -> None:
        """Return once every row queued before this call is committed (rows queued meanwhile
        are not waited for)."""
        target = self._seq
        if self._task is None:
            await self._write_all()
            return
        while self._written < target:
            done = self._batch_done
            self._wake.set()
            await done.wait()

    async def close(self) -> None:
        """Write everything queued, then stop the background task."""
        while self._written < self._seq:
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

    async def _write_batch(self) -> None:
        """Write what is queued, isolating rows the database refuses; on any other error put
        the unwritten rows back and wait before the next attempt."""
        pending = [self._take()]
        started, written = time.perf_counter(), 0
        while pending:
            part = pending.pop()
            try:
                written += await self._write_part(part, pending)
            except Exception as exc:
                rows = [row for rest in [part, *reversed(pending)] for row in rest]
                self._put_back(rows)
                await self._failed(exc, len(rows))
                return
        self._record(time.perf_counter() - started, written)

    async def _failed(self, exc: Exception, rows: int) -> None:
        """Log a failed write (one line when the database is down) and wait before the next."""
        wait_s = outages.backoff(self._failures)
        self._failures += 1
        if is_outage(exc):
            note = "writing %d rows: database unavailable (%s); %d rows kept, retrying in %.1fs"
            log.warning(note, rows, outages.reason(exc), self.queued, wait_s)
        else:
            log.exception("writing %d rows failed; retrying in %.1fs", rows, wait_s)
        await asyncio.sleep(wait_s)

    def _take(self) -> list[Row]:
        # Starts first: a batch split in halves writes its first half first (see _write_part).
        rows: list[Row] = [*self._starts, *self._nodes, *self._items, *self._events]
        self._starts, self._nodes, self._items, self._events = [], [], [], []
        self._batch_bytes = self._bytes
        self._taken = self._seq  # a batch holds every row queued so far (put back ones too)
        return rows

    def _put_back(self, rows: list[Row]) -> None:
        self._batch_bytes = 0  # their bytes were never taken off ``_bytes``
        starts, nodes, items, events = _by_kind(rows)
        self._starts[:0], self._nodes[:0] = starts, nodes
        self._items[:0], self._events[:0] = items, events

    async def _write_part(self, part: list[Row], pending: list[list[Row]]) -> int:
        """Write ``part``; if its data is refused, queue its halves on ``pending`` (first half
        on top), or store a lone row instead. The rows written; raises on other errors."""
        try:
            await self._write(part)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(part) == 1:
                return await self._write_instead(part[0], exc)
            middle = len(part) // 2
            pending += [part[middle:], part[:middle]]
            return 0
        return len(part)

    async def _write(self, rows: Sequence[Row]) -> None:
        starts, nodes, items, events = _by_kind(rows)
        for item in items:  # nodes refused by the database in an earlier write
            storable.check_item(item, self._unstorable.pop((item.job_id, item.item_index), []))
        async with self._sessions() as session:
            await results.write_batch(
                session, nodes, items, [(s.job_id, s.item_index) for s in starts]
            )
            if events:
                await events_repo.append_events(session, coalesce_successes(events))
            await session.commit()

    async def _write_instead(self, row: Row, exc: Exception) -> int:
        """Store a refused row as a failure (an event is left out); 1 if something was stored."""
        reason = refusal(exc)
        log.error("the database refused a row (%s): %s", reason, _describe(row))
        if isinstance(row, tuple | ItemStart):
            return 0
        error = f"result cannot be stored ({reason})"
        if isinstance(row, NodeRow):
            storable.fail_node(row, error, keep_usage=False)
            self._unstorable[row.job_id, row.item_index].append(storable.failure_line(row))
        else:  # an item that failed already keeps its error, which names its nodes
            known = row.error if row.status == ItemStatus.FAILED and row.error else None
            row.status, row.output, row.error = ItemStatus.FAILED.value, None, known or error
        try:
            await self._write([row])
        except Exception as again:
            if not is_data_error(again):
                raise
            log.error("the database refused the failure too; left out: %s", _describe(row))
            return 0
        return 1

    def _record(self, seconds: float, rows: int) -> None:
        self._failures = 0
        stats = self.stats
        stats.batches += 1
        stats.rows += rows
        stats.write_seconds += seconds
        stats.last_batch_seconds = seconds
        self._bytes -= self._batch_bytes
        self._batch_bytes = 0
        self._written = self._taken
        done, self._batch_done = self._batch_done, asyncio.Event()
        done.set()
        if self.queued < self._max_queued // 2 and self._bytes < self._max_bytes // 2:
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


def _by_kind(
    rows: Sequence[Row],
) -> tuple[list[ItemStart], list[NodeRow], list[ItemRow], list[QueuedEvent]]:
    starts = [row for row in rows if isinstance(row, ItemStart)]
    nodes = [row for row in rows if isinstance(row, NodeRow)]
    items = [row for row in rows if isinstance(row, ItemRow)]
    return starts, nodes, items, [row for row in rows if isinstance(row, tuple)]


def is_data_error(exc: BaseException) -> bool:
    """Whether the database refused a write for the data in it (which retrying cannot fix).

    A lost connection, an unreachable server, a lock or a timeout is not: those pass. asyncpg
    reports most data errors as a plain ``DBAPIError``, so the SQLSTATE decides.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        if isinstance(exc, DataError | IntegrityError):
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(code, str) and code[:2] in DATA_ERROR_CLASSES
    # Not sent at all: a parameter could not be bound (a value that is not JSON, say).
    return isinstance(exc, StatementError | TypeError | ValueError)


def refusal(exc: BaseException) -> str:
    """The database's reason in one short line."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return storable.escaped(lines[0][:300]) or type(cause).__name__


def _describe(row: Row) -> str:
    if isinstance(row, tuple):
        return f"event {row[1]} of job {row[0]}"
    if isinstance(row, ItemStart):
        return f"job {row.job_id} item {row.item_index} start"
    node = f" node {row.node_id}" if isinstance(row, NodeRow) else ""
    return f"job {row.job_id} item {row.item_index}{node}"
