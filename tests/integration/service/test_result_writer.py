"""The result writer on a real database: rows the database refuses are isolated and stored as
failures, everything else in their batch is written, and an outage is waited out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, func, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.models import Job, JobEvent, JobItem, NodeResult
from app.db.repositories import jobs
from app.db.repositories.results import ItemRow, NodeRow
from app.db.session import create_engine, session_factory
from app.services.runner.writer import ResultWriter
from tests.support.db import seed_job, seed_version

ITEMS = 30
WRITE_TIMEOUT_S = 30  # generous; a writer stuck on a bad row retries for ever instead


def node(job_id: str, index: int, output: Any, input_tokens: int = 3) -> NodeRow:
    return NodeRow(
        job_id, index, "answer", "succeeded", output, None, None, 1, "fast", "m",
        input_tokens, 2, 0.01, 0.5, 0.4, 0.0,
    )  # fmt: skip


def item(job_id: str, index: int, output: Any) -> ItemRow:
    return ItemRow(job_id, index, "succeeded", {"answer": output}, None, 3, 2, 0.01)


async def running_job(sessions: async_sessionmaker[AsyncSession], count: int = ITEMS) -> str:
    async with sessions() as session:
        tenant, version = await seed_version(session)
        job = await seed_job(session, tenant, version.id, list(range(count)))
        await jobs.mark_running(session, job.id, list(range(count)))
        await session.commit()
    return job.id


def queue_item(writer: ResultWriter, job_id: str, index: int, output: Any, tokens: int = 3) -> None:
    """What the runner queues for one finished item of a one-node graph."""
    writer.node(node(job_id, index, output, tokens))
    row = item(job_id, index, output)
    writer.item(row)
    if row.status == "succeeded":
        writer.item_succeeded(job_id, index)
    else:
        writer.event(job_id, "item_failed", {"index": index, "error": row.error})


async def flushed(writer: ResultWriter) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT_S):
        await writer.flush()


async def stored(
    sessions: async_sessionmaker[AsyncSession], job_id: str
) -> tuple[dict[int, NodeResult], dict[int, JobItem], Job]:
    async with sessions() as session:
        nodes = await session.scalars(select(NodeResult).where(NodeResult.job_id == job_id))
        items = await session.scalars(select(JobItem).where(JobItem.job_id == job_id))
        job = await jobs.get_job_by_id(session, job_id)
    assert job is not None
    return {n.item_index: n for n in nodes}, {i.item_index: i for i in items}, job


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[ResultWriter]:
    writer = ResultWriter(session_factory(engine), flush_interval_s=0.01, flush_rows=10_000)
    writer.start()
    yield writer
    await closed(writer)


async def closed(writer: ResultWriter) -> None:
    """Close the writer; one still stuck on a row is left behind rather than hang the run."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.close()


@pytest.mark.timeout(120)
async def test_a_value_that_cannot_be_encoded_fails_its_node_and_the_rest_is_written(
    engine: AsyncEngine, writer: ResultWriter
) -> None:
    """A lone surrogate is not UTF-8: no driver can send it, on any backend."""
    sessions = session_factory(engine)
    job_id = await running_job(sessions)
    for index in range(ITEMS):
        queue_item(writer, job_id, index, "\ud800 broken" if index == 7 else f"out {index}")

    await flushed(writer)

    nodes, items, job = await stored(sessions, job_id)
    assert len(nodes) == ITEMS
    assert all(nodes[i].output == f"out {i}" for i in range(ITEMS) if i != 7)
    assert (nodes[7].status, nodes[7].output, nodes[7].error_type) == (
        "failed",
        None,
        "UnstorableOutput",
    )
    assert nodes[7].error is not None
    assert nodes[7].error.startswith("result cannot be stored (str is not valid UTF-8")
    assert (items[7].status, items[7].output) == ("failed", None)
    assert items[7].error is not None
    assert items[7].error.startswith("answer: UnstorableOutput: result cannot be stored")
    assert all(items[i].status == "succeeded" for i in range(ITEMS) if i != 7)
    assert (job.running, job.succeeded, job.failed) == (0, ITEMS - 1, 1)


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_postgres_refusing_one_row_does_not_stop_the_others(
    engine: AsyncEngine, writer: ResultWriter
) -> None:
    """A token count beyond the column's range: Postgres refuses it (SQLite would store it)."""
    sessions = session_factory(engine)
    job_id = await running_job(sessions)
    for index in range(ITEMS):
        queue_item(writer, job_id, index, f"out {index}", 2**40 if index == 12 else 3)

    await flushed(writer)

    nodes, items, job = await stored(sessions, job_id)
    assert nodes[12].status == "failed"
    assert nodes[12].error is not None
    assert nodes[12].error.startswith("result cannot be stored (value ")
    assert "out of range" in nodes[12].error
    assert nodes[12].input_tokens == 0
    assert items[12].status == "failed"
    assert items[12].error is not None
    assert items[12].error.startswith("answer: UnstorableOutput")
    assert all(nodes[i].status == "succeeded" for i in range(ITEMS) if i != 12)
    assert (job.running, job.succeeded, job.failed) == (0, ITEMS - 1, 1)


@pytest.mark.timeout(120)
async def test_a_nul_in_an_output_fails_that_node_on_every_backend(
    engine: AsyncEngine, writer: ResultWriter
) -> None:
    sessions = session_factory(engine)
    job_id = await running_job(sessions, 3)
    queue_item(writer, job_id, 0, "ok")
    queue_item(writer, job_id, 1, {"text": "a\x00b"})
    queue_item(writer, job_id, 2, "also ok")
    writer.event(job_id, "progress", {"note": "nul \x00 here"})

    await flushed(writer)

    nodes, items, job = await stored(sessions, job_id)
    assert nodes[1].status == "failed"
    assert nodes[1].error is not None
    assert "NUL character" in nodes[1].error
    assert (items[1].status, items[1].output) == ("failed", {"answer": None})
    assert (job.succeeded, job.failed) == (2, 1)
    async with sessions() as session:
        data = await session.scalars(select(JobEvent.data).where(JobEvent.kind == "progress"))
        assert list(data) == [{"note": "nul \\u0000 here"}]


@pytest.mark.timeout(120)
async def test_rows_of_a_deleted_job_are_left_out_and_the_rest_is_written(
    engine: AsyncEngine, writer: ResultWriter
) -> None:
    """Retention may delete a job while rows of it are still queued."""
    sessions = session_factory(engine)
    gone, kept = await running_job(sessions, 2), await running_job(sessions, 2)
    async with sessions() as session:
        await session.execute(delete(Job).where(Job.id == gone))
        await session.commit()
    for job_id in (gone, kept):
        for index in range(2):
            queue_item(writer, job_id, index, f"out {index}")
        writer.event(job_id, "progress", {})

    await flushed(writer)

    nodes, _, job = await stored(sessions, kept)
    assert len(nodes) == 2
    assert (job.succeeded, job.running) == (2, 0)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(NodeResult)) == 2
        kinds = await session.scalars(select(JobEvent.kind).where(JobEvent.job_id == kept))
        assert set(kinds) == {"items_succeeded", "progress"}


# -- an outage is retried ----------------------------------------------------------------------


class Gate:
    """A TCP relay to the database that can be shut: its connections are cut and new ones are
    closed at once, as when the database is unreachable."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.is_open = True
        self.refused = asyncio.Event()  # set when a connection was turned away
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.shut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def shut(self) -> None:
        self.is_open = False
        for stream in list(self._streams):
            stream.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            writer.close()
            self.refused.set()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._streams |= {writer, up_writer}
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        self._streams -= {writer, up_writer}


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_while_the_database_is_unreachable_rows_wait_and_none_is_lost(
    db_url: str, engine: AsyncEngine
) -> None:
    url = make_url(db_url)
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    port = await gate.start()
    relayed = create_engine(url.set(host="127.0.0.1", port=port).render_as_string(False))
    writer = ResultWriter(session_factory(relayed), flush_interval_s=0.01, flush_rows=10_000)
    writer.start()
    sessions = session_factory(engine)
    try:
        job_id = await running_job(sessions)
        queue_item(writer, job_id, 0, "before")
        await flushed(writer)  # the writer now holds a pooled connection through the gate
        gate.shut()
        for index in range(1, ITEMS):
            queue_item(writer, job_id, index, f"out {index}")
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await gate.refused.wait()  # its connection was cut, and a new one refused
        gate.is_open = True
        await flushed(writer)
    finally:
        await closed(writer)
        await relayed.dispose()
        await gate.stop()

    nodes, _, job = await stored(sessions, job_id)
    assert sorted(nodes) == list(range(ITEMS))
    assert all(n.status == "succeeded" for n in nodes.values())
    assert (job.running, job.succeeded, job.failed) == (0, ITEMS, 0)


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_past_its_bound_the_writer_holds_dispatch_and_drops_nothing(
    db_url: str, engine: AsyncEngine
) -> None:
    """While the database is unreachable rows pile up to ``max_queued_rows``; past it ``room()``
    waits (no new item may start) until a write succeeds, and every row is then stored once."""
    url = make_url(db_url)
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    port = await gate.start()
    relayed = create_engine(url.set(host="127.0.0.1", port=port).render_as_string(False))
    bound = 3 * 10  # ten items of three rows each (node, item, event)
    writer = ResultWriter(
        session_factory(relayed), flush_interval_s=0.01, flush_rows=10_000, max_queued_rows=bound
    )
    writer.start()
    sessions = session_factory(engine)
    try:
        job_id = await running_job(sessions)
        queue_item(writer, job_id, 0, "before")
        await flushed(writer)
        gate.shut()
        for index in range(1, 10):  # 27 rows, under the bound: room for more
            await asyncio.wait_for(writer.room(), 1.0)
            queue_item(writer, job_id, index, f"out {index}")
        for index in range(10, ITEMS):  # steps in flight still queue theirs past it
            queue_item(writer, job_id, index, f"out {index}")
        assert writer.queued == 3 * (ITEMS - 1)  # kept, none dropped
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.room(), 1.0)  # held while the database is away
        gate.is_open = True
        await asyncio.wait_for(writer.room(), WRITE_TIMEOUT_S)
        await flushed(writer)
    finally:
        await closed(writer)
        await relayed.dispose()
        await gate.stop()

    nodes, items, job = await stored(sessions, job_id)
    assert sorted(nodes) == sorted(items) == list(range(ITEMS))
    assert (job.running, job.succeeded, job.failed) == (0, ITEMS, 0)


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_large_outputs_hold_dispatch_at_the_byte_bound(
    db_url: str, engine: AsyncEngine
) -> None:
    """Few rows but large outputs: ``max_queued_bytes`` holds dispatch before the row bound."""
    url = make_url(db_url)
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    port = await gate.start()
    relayed = create_engine(url.set(host="127.0.0.1", port=port).render_as_string(False))
    writer = ResultWriter(
        session_factory(relayed), flush_interval_s=0.01, flush_rows=10_000, max_queued_bytes=50_000
    )
    writer.start()
    sessions = session_factory(engine)
    try:
        job_id = await running_job(sessions)
        queue_item(writer, job_id, 0, "before")
        await flushed(writer)
        gate.shut()
        for index in range(1, 3):  # 2 items of 2 x 10 kB: 40 kB, under the bound
            await asyncio.wait_for(writer.room(), 1.0)
            queue_item(writer, job_id, index, "x" * 10_000)
        queue_item(writer, job_id, 3, "x" * 10_000)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.room(), 1.0)
        gate.is_open = True
        await asyncio.wait_for(writer.room(), WRITE_TIMEOUT_S)
        await flushed(writer)
    finally:
        await closed(writer)
        await relayed.dispose()
        await gate.stop()

    nodes, _, job = await stored(sessions, job_id)
    assert sorted(nodes) == [0, 1, 2, 3]
    assert nodes[3].output == "x" * 10_000
    assert (job.running, job.succeeded) == (ITEMS - 4, 4)


async def test_a_flush_waits_for_the_rows_queued_before_it_not_for_an_empty_queue(
    engine: AsyncEngine,
) -> None:
    """Another job queues a row whenever a batch commits, so the queue is never empty; a flush
    still returns once the rows queued before it are committed (before, it waited for the
    queue to empty, which a busy job in the same process could put off for as long as it ran)."""
    sessions = session_factory(engine)
    busy_id, job_id = await running_job(sessions), await running_job(sessions)
    keep_busy = True

    def requeue(_seconds: float, _rows: int) -> None:
        if keep_busy:
            busy.event(busy_id, "progress", {"n": 1})

    busy = ResultWriter(
        sessions,
        flush_interval_s=0.01,
        flush_rows=10_000,
        on_batch=requeue,
    )
    busy.start()
    try:
        busy.event(busy_id, "progress", {"n": 1})
        for index in range(ITEMS):
            queue_item(busy, job_id, index, f"out {index}")
        async with asyncio.timeout(10):
            await busy.flush()
        _, items, job = await stored(sessions, job_id)
        batches = busy.stats.batches
        await asyncio.sleep(0.2)
        assert busy.stats.batches > batches  # the busy job kept the writer writing all along
    finally:
        keep_busy = False
        await closed(busy)
    assert sorted(items) == list(range(ITEMS))
    assert (job.running, job.succeeded) == (0, ITEMS)
