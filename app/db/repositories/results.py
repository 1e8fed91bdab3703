"""Node results (the checkpoint) and finished items, written in batches by the runner."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Float,
    String,
    bindparam,
    column,
    select,
    true,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import utcnow
from app.db.models import Job, JobItem, NodeResult, Timestamp
from app.db.repositories import node_counts
from app.db.repositories.jobs import lock_jobs, start_items
from app.db.session import NO_SYNC
from app.lifecycle import TERMINAL_ITEM_STATUSES, ItemStatus


@dataclass(slots=True)
class NodeRow:
    """How one node of one item ended, as the runner reports it."""

    job_id: str
    item_index: int
    node_id: str
    status: str
    output: Any
    error: str | None
    error_type: str | None
    attempts: int
    alias: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    duration_s: float | None
    latency_s: float | None
    queued_s: float | None
    ended_s: float | None = None
    finish_reason: str | None = None
    retries: list[str] | None = None
    inputs: dict[str, Any] | None = None


@dataclass(slots=True)
class ItemRow:
    """How one item ended: ``succeeded``, ``failed`` or ``cancelled``, with its totals."""

    job_id: str
    item_index: int
    status: str
    output: Any
    error: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    calls_saved: int = 0  # model calls answered from the response ledger
    output_bytes: int | None = None  # the output's bytes as a file line, if it is one


NODE_FIELDS = tuple(field.name for field in fields(NodeRow))
NODE_KEY = ("job_id", "item_index", "node_id")
FINAL = tuple(sorted(TERMINAL_ITEM_STATUSES))  # a stable order for the SQL


async def write_batch(
    session: AsyncSession,
    nodes: Sequence[NodeRow],
    items: Sequence[ItemRow],
    started: Sequence[tuple[str, int]] = (),
) -> None:
    """Store started items, node results and finished items, idempotently.

    ``started`` (job id, item index) move from ``pending`` to ``running`` first (see
    ``jobs.mark_running``), so an item can start and finish in one batch.

    Node rows are upserted (a repeated row replaces the stored one). Items move from
    ``running`` to their final status; an item that is not running (already written, or
    cancelled) is left alone and not counted again. Each job's counters then move by what
    changed: ``running`` down, the status counters, tokens and cost up; each node's counts
    (``node_counts``) move from a replaced row's status to the new one.

    The rows of every job touched are locked first, in id order (see ``lock_jobs``).
    """
    wrong = {item.status for item in items} - set(FINAL)
    if wrong:
        raise ValueError(f"an item ends as one of {sorted(map(str, FINAL))}, not {sorted(wrong)}")
    touched = _job_ids(nodes, items, started)
    if touched:
        await lock_jobs(session, touched)
    deltas: dict[str, _Delta] = defaultdict(_Delta)
    await _start(session, started, deltas)
    now = utcnow()
    if nodes:
        await _write_nodes(session, nodes, now)
    if items:
        for item in await _finish_items(session, items, now):
            deltas[item.job_id].add(item)
    if deltas:
        await _count(session, deltas)


def _job_ids(
    nodes: Sequence[NodeRow], items: Sequence[ItemRow], started: Sequence[tuple[str, int]]
) -> set[str]:
    ids = {node.job_id for node in nodes} | {item.job_id for item in items}
    return ids | {job_id for job_id, _ in started}


async def _start(
    session: AsyncSession, started: Sequence[tuple[str, int]], deltas: dict[str, _Delta]
) -> None:
    by_job: dict[str, list[int]] = defaultdict(list)
    for job_id, index in started:
        by_job[job_id].append(index)
    for job_id in sorted(by_job):  # one lock order for every writer
        changed = await start_items(session, job_id, sorted(set(by_job[job_id])))
        if changed:
            deltas[job_id].started += changed


NODE_COLUMNS = tuple((name, NodeResult.__table__.c[name].type) for name in NODE_FIELDS)
ITEM_COLUMNS = tuple(
    (name, JobItem.__table__.c[name].type)
    for name in ("job_id", "item_index", "status", "output", "output_bytes", "error")
)


async def _write_nodes(session: AsyncSession, nodes: Sequence[NodeRow], now: datetime) -> None:
    """Upsert the node rows (the last of each key) and move the node counts with them.

    NOTE: [node counts] The new statuses are counted before the stored ones are read: on
    SQLite that first write takes the database's write lock, so no other writer can change
    the stored rows between the read and the upsert (on Postgres the job rows locked by
    ``write_batch`` keep the job's other writers out). A replaced row's status is then
    counted down, so writing a batch again leaves every count as it was.
    """
    latest = {(n.job_id, n.item_index, n.node_id): n for n in nodes}
    await node_counts.add(session, _statuses(latest.values()))
    replaced = await node_counts.stored(session, latest.keys())
    await _upsert_nodes(session, latest.values(), now)
    if replaced:
        await node_counts.add(session, {key: -count for key, count in replaced.items()})


def _statuses(nodes: Iterable[NodeRow]) -> Counter[node_counts.StatusKey]:
    return Counter((node.job_id, node.node_id, node.status) for node in nodes)


async def _upsert_nodes(session: AsyncSession, nodes: Collection[NodeRow], now: datetime) -> None:
    rows = dialects.json_rows(session, "rows", NODE_COLUMNS)
    source = select(*rows.c, bindparam("now", type_=Timestamp)).where(true())
    updated = [name for name in (*NODE_FIELDS, "finished_at") if name not in NODE_KEY]
    stmt = dialects.upsert_from(
        session, NodeResult.__table__, [*NODE_FIELDS, "finished_at"], source, NODE_KEY, updated
    )
    await session.execute(stmt, {"rows": [_params(n) for n in nodes], "now": now})


def _params(row: NodeRow | ItemRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


async def _finish_items(
    session: AsyncSession, items: Sequence[ItemRow], now: datetime
) -> list[ItemRow]:
    """Finish the running items among ``items``; returns those that changed."""
    latest = {(item.job_id, item.item_index): item for item in items}
    rows = dialects.json_rows(session, "rows", ITEM_COLUMNS)
    stmt = (
        update(JobItem)
        .where(
            JobItem.job_id == rows.c.job_id,
            JobItem.item_index == rows.c.item_index,
            JobItem.status == ItemStatus.RUNNING,
        )
        .values(
            status=rows.c.status,
            output=rows.c.output,
            output_bytes=rows.c.output_bytes,
            error=rows.c.error,
            finished_at=bindparam("now", type_=Timestamp),
        )
        .returning(JobItem.job_id, JobItem.item_index)
    )
    params = {"rows": [_params(item) for item in latest.values()], "now": now}
    changed = await session.execute(stmt.execution_options(**NO_SYNC), params)
    return [latest[job_id, index] for job_id, index in changed]


async def _count(session: AsyncSession, deltas: dict[str, _Delta]) -> None:
    """One UPDATE for every job touched (locked by ``write_batch``): counters move by the
    items that started and ended."""
    source = values(
        column("job_id", String),
        *[column(name, BigInteger) for name in _Delta.COUNTS],
        column("cost", Float),
        name="deltas",
    ).data([(job_id, *deltas[job_id].row()) for job_id in sorted(deltas)])
    delta = source.cte("deltas")
    stmt = (
        update(Job)
        .where(Job.id == delta.c.job_id)
        .values(
            running=Job.running + delta.c.started - delta.c.finished,
            succeeded=Job.succeeded + delta.c.succeeded,
            failed=Job.failed + delta.c.failed,
            cancelled=Job.cancelled + delta.c.cancelled,
            input_tokens=Job.input_tokens + delta.c.input_tokens,
            output_tokens=Job.output_tokens + delta.c.output_tokens,
            calls_saved=Job.calls_saved + delta.c.calls_saved,
            cost=Job.cost + delta.c.cost,
        )
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


@dataclass(slots=True)
class _Delta:
    """How much one job's counters move."""

    COUNTS: ClassVar[tuple[str, ...]] = (
        "started",
        "finished",
        *FINAL,
        "input_tokens",
        "output_tokens",
        "calls_saved",
    )

    started: int = 0
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    calls_saved: int = 0
    cost: float = 0.0

    def add(self, item: ItemRow) -> None:
        self.finished += 1
        setattr(self, item.status, getattr(self, item.status) + 1)
        self.input_tokens += item.input_tokens
        self.output_tokens += item.output_tokens
        self.calls_saved += item.calls_saved
        self.cost += item.cost

    def row(self) -> tuple[Any, ...]:
        return (*(getattr(self, name) for name in self.COUNTS), self.cost)


async def node_results_for(
    session: AsyncSession, job_id: str, indexes: Sequence[int]
) -> dict[int, list[NodeResult]]:
    """The stored node results of these items (items without any are absent)."""
    if not indexes:
        return {}
    stmt = (
        select(NodeResult)
        .where(NodeResult.job_id == job_id, NodeResult.item_index.in_(indexes))
        .order_by(NodeResult.item_index, NodeResult.node_id)
    )
    found: dict[int, list[NodeResult]] = defaultdict(list)
    for row in await session.scalars(stmt):
        found[row.item_index].append(row)
    return dict(found)


async def nodes_at(
    session: AsyncSession, job_ids: Collection[str], index: int
) -> dict[str, list[NodeResult]]:
    """The stored node results of item ``index`` of each of these jobs, in one query."""
    if not job_ids:
        return {}
    stmt = (
        select(NodeResult)
        .where(NodeResult.job_id.in_(sorted(job_ids)), NodeResult.item_index == index)
        .order_by(NodeResult.job_id, NodeResult.node_id)
    )
    found: dict[str, list[NodeResult]] = defaultdict(list)
    for row in await session.scalars(stmt):
        found[row.job_id].append(row)
    return dict(found)


async def item_nodes(session: AsyncSession, job_id: str, index: int) -> list[NodeResult]:
    """Every stored node result of one item, by node id."""
    stmt = (
        select(NodeResult)
        .where(NodeResult.job_id == job_id, NodeResult.item_index == index)
        .order_by(NodeResult.node_id)
    )
    return list(await session.scalars(stmt))


async def nodes_of_items(
    session: AsyncSession, job_id: str, after_index: int, items: int
) -> list[NodeResult]:
    """The node results of items ``after_index + 1`` to ``after_index + items``, in item order."""
    stmt = (
        select(NodeResult)
        .where(
            NodeResult.job_id == job_id,
            NodeResult.item_index > after_index,
            NodeResult.item_index <= after_index + items,
        )
        .order_by(NodeResult.item_index, NodeResult.node_id)
    )
    return list(await session.scalars(stmt))
