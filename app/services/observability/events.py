"""Job event streams: the stored events of a job after a given id, followed live until its last.

Events are stored with increasing ids (see ``app.db.repositories.events``), so a client that
lost its connection resumes exactly where it stopped by sending the last id it saw.

    async for event in runtime.events.follow(job_id, after=41):
        print(event.id, event.kind, event.data)

NOTE: [one poller per job] A stream never holds a database connection while it waits. The
process runs one poller per followed job (``_Feed``): every ``events_poll_s`` it reads the
job's new events in one short read and hands the batch to every stream of the job, so the
database sees O(jobs) reads, not O(streams). A stream first takes its backlog, the events
after its ``Last-Event-ID`` up to the poller's cursor: from the ``KEPT`` newest events the
poller keeps, or else in short reads of its own. Then it takes the poller's batches; because
the cursor only moves between awaits, "caught up with the cursor" and "joined the batches"
happen in one step, so nothing is missed, and ids below what the stream already sent are
dropped, so nothing is sent twice. A stream whose bounded queue overflows (a slow client) is
dropped from the batches and takes its backlog again.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.lifecycle import TERMINAL_EVENTS
from app.settings import Settings

log = logging.getLogger(__name__)
PAGE = 500
QUEUED_BATCHES = 64  # per stream; a stream further behind reads again
KEPT = 500  # a job's newest events, kept by its poller for streams that join or fall behind
OFFER_SLICE = 16  # streams woken per turn of the event loop


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    kind: str
    data: dict[str, Any]


class EventHub:
    """The pollers of the jobs whose events are being streamed from this process."""

    def __init__(self, reads: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._reads = reads
        self._settings = settings
        self._feeds: dict[str, _Feed] = {}

    async def follow(self, job_id: str, after: int) -> AsyncGenerator[list[JobEvent]]:
        """Every event of the job with an id above ``after``, in order and in batches (what
        arrived together), waiting for new ones; ends after the job's terminal event (at once
        if it was already sent) or if the job is deleted."""
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed(self, job_id)
        stream = _Stream(feed, after)
        feed.streams.add(stream)
        try:
            async for batch in stream.batches():
                yield batch
        finally:
            feed.streams.discard(stream)

    async def close(self) -> None:
        """Stop every poller (their streams end)."""
        feeds = list(self._feeds.values())
        for feed in feeds:
            feed.task.cancel()
        await asyncio.gather(*(feed.task for feed in feeds), return_exceptions=True)

    async def read(self, job_id: str, after: int) -> list[JobEvent]:
        """One short read: up to ``PAGE`` events of the job after ``after``."""
        async with self._reads() as session:
            stored = await events_repo.events_after(session, job_id, after, PAGE)
        return [JobEvent(event.id, event.kind, event.data) for event in stored]

    async def latest(self, job_id: str) -> list[JobEvent]:
        """One short read: the job's newest ``KEPT`` events."""
        async with self._reads() as session:
            stored = await events_repo.latest_events(session, job_id, KEPT)
        return [JobEvent(event.id, event.kind, event.data) for event in stored]

    async def ended_before(self, job_id: str, after: int) -> bool:
        """The job is gone, or its terminal event has an id no higher than ``after``."""
        async with self._reads() as session:
            if await jobs_repo.get_job_by_id(session, job_id) is None:
                return True
            last = await events_repo.last_event_id(session, job_id, tuple(TERMINAL_EVENTS))
        return 0 < last <= after

    def poll_s(self) -> float:
        return self._settings.events_poll_s

    def forget(self, feed: _Feed) -> None:
        if self._feeds.get(feed.job_id) is feed:
            del self._feeds[feed.job_id]


class _Feed:
    """One job's poller: reads the events after ``cursor`` and offers them to every stream."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self.streams: set[_Stream] = set()
        self.cursor = 0  # every event up to here was offered to the streams that had joined
        self.kept: list[JobEvent] = []  # every event of the job above ``floor``, to ``cursor``
        self.floor = 0
        self.primed = asyncio.Event()
        self.ended = False
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            latest = await self.hub.latest(self.job_id)
            self.floor = latest[0].id - 1 if len(latest) == KEPT else 0
            self._keep(latest)
            self.primed.set()
            while self.streams and not self.ended:
                full = await self._poll()
                if not full and not self.ended:
                    await asyncio.sleep(self.hub.poll_s())
        except Exception:
            log.exception("reading the events of job %s failed", self.job_id)
        finally:
            self._end()

    async def _poll(self) -> bool:
        """Read and offer the next batch; whether it was a full page (more may be waiting)."""
        batch = await self.hub.read(self.job_id, self.cursor)
        if not batch:
            self.ended = await self.hub.ended_before(self.job_id, self.cursor)
            return False
        self._keep(batch)
        self.ended = any(event.kind in TERMINAL_EVENTS for event in batch)
        await self._offer(batch)
        return len(batch) == PAGE

    async def _offer(self, batch: list[JobEvent]) -> None:
        """Hand the batch to each stream, a slice per turn of the event loop, so that other
        requests are served between the slices. A stream that joins meanwhile reads the batch
        from the database (the cursor has moved past it)."""
        streams = list(self.streams)
        for start in range(0, len(streams), OFFER_SLICE):
            if start:
                await asyncio.sleep(0)
            for stream in streams[start : start + OFFER_SLICE]:
                stream.offer(batch)

    def _keep(self, batch: list[JobEvent]) -> None:
        """Move the cursor past ``batch`` and keep it, forgetting the oldest beyond ``KEPT``."""
        if not batch:
            return
        self.cursor = batch[-1].id
        self.kept += batch
        if len(self.kept) > KEPT:
            self.floor = self.kept[-KEPT - 1].id
            self.kept = self.kept[-KEPT:]

    def kept_after(self, after: int) -> list[JobEvent] | None:
        """The events after ``after`` up to the cursor, if all of them are kept."""
        if after < self.floor:
            return None
        return self.kept[bisect.bisect_right(self.kept, after, key=lambda event: event.id) :]

    def _end(self) -> None:
        self.ended = True
        self.primed.set()
        self.hub.forget(self)
        for stream in list(self.streams):
            stream.offer(None)


class _Stream:
    """One subscriber: its backlog from the database, then the poller's batches."""

    def __init__(self, feed: _Feed, after: int) -> None:
        self.feed = feed
        self.last = after
        self.behind = True  # not offered batches until it has read up to the feed's cursor
        self.done = False
        self.queue: asyncio.Queue[list[JobEvent] | None] = asyncio.Queue(QUEUED_BATCHES)

    def offer(self, batch: list[JobEvent] | None) -> None:
        """Queue a batch (``None``: look at the feed); a full queue means reading it again."""
        if self.behind:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.behind = True

    async def batches(self) -> AsyncIterator[list[JobEvent]]:
        await self.feed.primed.wait()
        while not self.done:
            if self.behind and self.queue.empty():
                async for batch in self._catch_up():
                    yield batch
                continue
            if self.feed.ended and self.queue.empty():
                return
            fresh = self._fresh(await self.queue.get() or [])
            if fresh:
                yield fresh

    async def _catch_up(self) -> AsyncIterator[list[JobEvent]]:
        """Read up to the feed's cursor (what the feed keeps, else from the database), then
        join its batches."""
        while self.last < self.feed.cursor and not self.done:
            batch = self.feed.kept_after(self.last)
            if batch is None:
                batch = await self.feed.hub.read(self.feed.job_id, self.last)
            if not batch:  # the job and its events were deleted meanwhile
                self.done = True
                return
            fresh = self._fresh(batch)
            if fresh:
                yield fresh
        self.behind = False

    def _fresh(self, batch: list[JobEvent]) -> list[JobEvent]:
        """The events of ``batch`` this stream has not sent; a terminal event is its last."""
        fresh = [event for event in batch if event.id > self.last]
        self.last = max(self.last, batch[-1].id) if batch else self.last
        self.done = self.done or any(event.kind in TERMINAL_EVENTS for event in batch)
        return fresh
