"""Human waits (``human_waits``): an item at a human node, and answers, kept as a mailbox.

Every write here first takes the job's row (an UPDATE that changes nothing), so a wait that
begins and an answer that arrives for it are serialized on both databases: whichever comes
second sees the other. An answer that comes first is stored as an ``answered`` row; the wait
that begins later finds it and does not wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import HumanWait, Job, JobItem
from app.db.repositories import events as events_repo
from app.db.session import FRESH, NO_SYNC, rowcount
from app.lifecycle import EventKind, ItemStatus, WaitStatus

SETTLED = (WaitStatus.ANSWERED, WaitStatus.TIMED_OUT)


async def _hold_job(session: AsyncSession, job_id: str) -> None:
    """Take the job row's write lock (Postgres) or the database's (SQLite) before reading."""
    stmt = update(Job).where(Job.id == job_id).values(waiting=Job.waiting)
    await session.execute(stmt.execution_options(**NO_SYNC))


async def _row(session: AsyncSession, job_id: str, index: int, node: str) -> HumanWait | None:
    stmt = select(HumanWait).where(
        HumanWait.job_id == job_id, HumanWait.item_index == index, HumanWait.node_id == node
    )
    return await session.scalar(stmt.execution_options(**FRESH))


async def settled_for(session: AsyncSession, job_id: str, index: int) -> list[HumanWait]:
    """The item's answered and timed-out waits: what its next run is given."""
    stmt = select(HumanWait).where(
        HumanWait.job_id == job_id,
        HumanWait.item_index == index,
        HumanWait.status.in_(SETTLED),
    )
    return list(await session.scalars(stmt.execution_options(**FRESH)))


async def begin_wait(
    session: AsyncSession,
    job_id: str,
    index: int,
    node: str,
    prompt: str,
    deadline: datetime | None,
) -> HumanWait:
    """The item starts waiting at ``node``, unless an answer is there already (returned as
    it is, ``answered``: the caller runs the item again with it). A new wait moves the item to
    ``waiting`` (out of ``running`` if it was counted there) and records ``item_waiting``."""
    await _hold_job(session, job_id)
    found = await _row(session, job_id, index, node)
    if found is not None and found.status != WaitStatus.WAITING:
        return found
    now = utcnow()
    if found is None:
        found = HumanWait(job_id=job_id, item_index=index, node_id=node)
        session.add(found)
    found.status, found.prompt, found.deadline, found.waited_at = (
        WaitStatus.WAITING.value, prompt, deadline, now
    )  # fmt: skip
    await session.flush()
    await _item_waits(session, job_id, index)
    data = {"index": index, "node": node, "wait_id": found.id, "prompt": prompt}
    await events_repo.append_events(session, [(job_id, EventKind.ITEM_WAITING.value, data)])
    return found


async def _item_waits(session: AsyncSession, job_id: str, index: int) -> None:
    status = await session.scalar(
        select(JobItem.status).where(JobItem.job_id == job_id, JobItem.item_index == index)
    )
    if status not in (ItemStatus.PENDING, ItemStatus.RUNNING):
        return
    move = (
        update(JobItem)
        .where(JobItem.job_id == job_id, JobItem.item_index == index)
        .values(status=ItemStatus.WAITING)
    )
    await session.execute(move.execution_options(**NO_SYNC))
    running = 1 if status == ItemStatus.RUNNING else 0
    count = update(Job).where(Job.id == job_id)
    count = count.values(waiting=Job.waiting + 1, running=Job.running - running)
    await session.execute(count.execution_options(**NO_SYNC))


async def answer(
    session: AsyncSession, job_id: str, index: int, node: str, value: Any
) -> tuple[HumanWait, bool]:
    """Store an answer: (the wait, ``True``) when it is new, either resuming a waiting item
    or kept for a wait to come; (the wait, ``False``) when it was answered or timed out
    before (nothing changes)."""
    await _hold_job(session, job_id)
    found = await _row(session, job_id, index, node)
    if found is not None and found.status != WaitStatus.WAITING:
        return found, False
    was_waiting = found is not None
    if found is None:
        found = HumanWait(job_id=job_id, item_index=index, node_id=node)
        session.add(found)
    found.status, found.answer, found.answered_at = WaitStatus.ANSWERED.value, value, utcnow()
    await session.flush()
    if was_waiting:
        await _resume(session, job_id, [index])
    data = {"index": index, "node": node, "wait_id": found.id, "early": not was_waiting}
    await events_repo.append_events(session, [(job_id, EventKind.ITEM_ANSWERED.value, data)])
    return found, True


async def _resume(session: AsyncSession, job_id: str, indexes: Sequence[int]) -> None:
    """Waiting items become pending again (the runner picks them up at its next look)."""
    move = (
        update(JobItem)
        .where(
            JobItem.job_id == job_id,
            JobItem.item_index.in_(indexes),
            JobItem.status == ItemStatus.WAITING,
        )
        .values(status=ItemStatus.PENDING)
    )
    moved = rowcount(await session.execute(move.execution_options(**NO_SYNC)))
    if moved:
        count = update(Job).where(Job.id == job_id).values(waiting=Job.waiting - moved)
        await session.execute(count.execution_options(**NO_SYNC))


async def expire_due(session: AsyncSession, job_id: str, now: datetime) -> list[HumanWait]:
    """Waits whose deadline passed become ``timed_out`` and their items pending again (with
    an ``item_answered`` event saying so); returns them."""
    await _hold_job(session, job_id)
    stmt = select(HumanWait).where(
        HumanWait.job_id == job_id,
        HumanWait.status == WaitStatus.WAITING,
        HumanWait.deadline <= now,
    )
    due = list(await session.scalars(stmt.execution_options(**FRESH)))
    if not due:
        return []
    for wait in due:
        wait.status, wait.answered_at = WaitStatus.TIMED_OUT.value, now
    await session.flush()
    await _resume(session, job_id, sorted({w.item_index for w in due}))
    events = [
        (job_id, EventKind.ITEM_ANSWERED.value, _timed_out(w)) for w in due
    ]  # fmt: skip
    await events_repo.append_events(session, events)
    return due


def _timed_out(wait: HumanWait) -> dict[str, Any]:
    return {"index": wait.item_index, "node": wait.node_id, "wait_id": wait.id, "timed_out": True}


async def waits_of(session: AsyncSession, job_id: str, limit: int = 1000) -> list[HumanWait]:
    """The job's waits and stored answers, by item and node."""
    stmt = (
        select(HumanWait)
        .where(HumanWait.job_id == job_id)
        .order_by(HumanWait.item_index, HumanWait.node_id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def waiting_count(session: AsyncSession, job_id: str) -> int:
    """How many of the job's items wait at a human node."""
    return int(await session.scalar(select(Job.waiting).where(Job.id == job_id)) or 0)


async def open_or_waiting(session: AsyncSession, job_id: str) -> int:
    """The job's items not yet ended: pending, running or waiting."""
    open_states = (ItemStatus.PENDING, ItemStatus.RUNNING, ItemStatus.WAITING)
    stmt = select(func.count()).where(JobItem.job_id == job_id, JobItem.status.in_(open_states))
    return int(await session.scalar(stmt) or 0)
