"""Jobs and their items: submission, reads, cancellation, and the runner's leases.

Counters: a job row carries ``item_count``, ``running``, ``succeeded``, ``failed`` and
``cancelled``; ``pending`` is what remains. Each counter moves in the statement that moves the
items it counts, by the number of rows that statement actually changed, so replays and races
leave them exact. Items go ``pending -> running`` (``mark_running``), then ``running ->
succeeded | failed | cancelled`` (``results.write_batch``); cancelling a job moves its pending
items straight to ``cancelled`` (one UPDATE over the unfinished-items index).

Locks, for Postgres: a statement that changes both a job and its pending items takes the job row
first (``cancel_job`` and ``mark_running``), so the two never deadlock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import UTCDateTime, utcnow
from app.db.models import OPEN_ITEMS, GraphVersion, HumanWait, Job, JobEvent, JobItem
from app.db.owner_locks import owner_key
from app.db.session import FRESH, NO_SYNC, rowcount
from app.lifecycle import ACTIVE_JOB_STATUSES, EventKind, ItemStatus, JobStatus, WaitStatus

ACTIVE = tuple(ACTIVE_JOB_STATUSES)
# Running items first: their count is also taken off the job's running count.
ACTIVE_ITEMS = (ItemStatus.RUNNING, ItemStatus.PENDING)

# -- submission and reads ------------------------------------------------------------------


async def create_job(
    session: AsyncSession,
    tenant_id: str,
    graph_version_id: str,
    priority: int = 0,
    webhook_url: str | None = None,
    status: JobStatus = JobStatus.QUEUED,
    kind: str = "batch",
    spec: dict[str, Any] | None = None,
    cache: str | None = None,
    replay: str | None = None,
    retry_of: str | None = None,
) -> Job:
    """A new job without items (add them, then ``set_item_count``); ``kind`` names the run
    kind that will run it, ``spec`` what that kind needs to open it, ``retry_of`` the job
    whose failed items it runs again. An ``uploading`` job is seen by no one until
    :func:`publish_job`."""
    job = Job(
        tenant_id=tenant_id,
        graph_version_id=graph_version_id,
        kind=kind,
        spec=spec,
        status=status,
        priority=priority,
        webhook_url=webhook_url,
        cache=cache,
        replay=replay,
        retry_of=retry_of,
    )
    session.add(job)
    await session.flush()
    return job


class NewItem(NamedTuple):
    """An input to store as an item, with the identity its submitter gave it (if any); a
    named tuple, since an upload makes one per row."""

    input: Any
    custom_id: str | None = None
    metadata: dict[str, str] | None = None


async def add_items(
    session: AsyncSession, job_id: str, start_index: int, inputs: Sequence[Any]
) -> None:
    """Store inputs as items ``start_index, start_index + 1, ...`` (one multi-row INSERT)."""
    await add_rows(session, job_id, start_index, [NewItem(value) for value in inputs])


async def add_rows(
    session: AsyncSession, job_id: str, start_index: int, items: Sequence[NewItem]
) -> None:
    """Store items ``start_index, start_index + 1, ...`` with their identities (one multi-row
    INSERT; the identity columns are written only when a row of the batch has one)."""
    identified = any(item.custom_id is not None or item.metadata for item in items)
    rows = [
        {
            "job_id": job_id,
            "item_index": start_index + offset,
            "input": item.input,
            "status": ItemStatus.PENDING,
            **({"custom_id": item.custom_id, "item_metadata": item.metadata} if identified else {}),
        }
        for offset, item in enumerate(items)
    ]
    if rows:
        await session.execute(insert(JobItem), rows)


async def set_item_count(session: AsyncSession, job_id: str, count: int) -> None:
    stmt = update(Job).where(Job.id == job_id).values(item_count=count)
    await session.execute(stmt.execution_options(**NO_SYNC))


async def publish_job(session: AsyncSession, job_id: str, count: int) -> None:
    """An ``uploading`` job with all its ``count`` items becomes ``queued``: listed from now on
    (``created_at`` is now, so pages already read do not miss it) and claimable."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.UPLOADING)
        .values(status=JobStatus.QUEUED, item_count=count, created_at=utcnow())
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


async def delete_job(session: AsyncSession, job_id: str) -> None:
    """Delete a job with everything it has (a failed upload); foreign keys cascade."""
    await session.execute(delete(Job).where(Job.id == job_id).execution_options(**NO_SYNC))


# Jobs the API shows: not an upload still in progress.
VISIBLE = Job.status != JobStatus.UPLOADING


async def get_job(session: AsyncSession, tenant_id: str, job_id: str) -> Job | None:
    """The tenant's job; ``None`` for an unknown id or another tenant's job."""
    stmt = select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id, VISIBLE)
    return await session.scalar(stmt.execution_options(**FRESH))


async def get_job_with_graph(
    session: AsyncSession, tenant_id: str, job_id: str
) -> tuple[Job, str, int] | None:
    """The tenant's job with its graph's id and version number, in one query."""
    params = {"job_id": job_id, "tenant_id": tenant_id}
    row = (await session.execute(JOB_WITH_GRAPH, params)).first()
    return None if row is None else (row[0], row[1], row[2])


# Built once: this is the status poll's query, the service's most frequent request.
JOB_WITH_GRAPH = (
    select(Job, GraphVersion.graph_id, GraphVersion.version)
    .join(GraphVersion, GraphVersion.id == Job.graph_version_id)
    .where(Job.id == bindparam("job_id"), Job.tenant_id == bindparam("tenant_id"), VISIBLE)
    .execution_options(**FRESH)
)


async def graph_versions_of(
    session: AsyncSession, version_ids: Collection[str]
) -> dict[str, tuple[str, int]]:
    """For each graph version id: its graph's id and its version number."""
    if not version_ids:
        return {}
    stmt = select(GraphVersion.id, GraphVersion.graph_id, GraphVersion.version).where(
        GraphVersion.id.in_(sorted(version_ids))
    )
    return {
        version_id: (graph_id, number)
        for version_id, graph_id, number in await session.execute(stmt)
    }


async def get_job_by_id(session: AsyncSession, job_id: str) -> Job | None:
    """Any tenant's job (for the runner)."""
    return await session.get(Job, job_id, populate_existing=True)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many jobs each status has, over every tenant (for metrics)."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: count for status, count in rows}


async def count_by_outcome(session: AsyncSession, kind: str) -> dict[tuple[str, str], int]:
    """How many jobs of ``kind`` each (job status, status of item 0) pair has (for metrics of
    run kinds with one item, whose outcome is that item's)."""
    first = and_(JobItem.job_id == Job.id, JobItem.item_index == 0)
    stmt = select(Job.status, JobItem.status, func.count()).join(JobItem, first)
    stmt = stmt.where(Job.kind == kind).group_by(Job.status, JobItem.status)
    return {(job, item): count for job, item, count in await session.execute(stmt)}


async def list_jobs(
    session: AsyncSession,
    tenant_id: str,
    limit: int,
    before: tuple[datetime, str] | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> list[Job]:
    """A page of the tenant's jobs (of ``kind`` if given), newest first; ``before`` is the
    (created_at, id) of the last job of the previous page."""
    stmt = select(Job).where(Job.tenant_id == tenant_id, VISIBLE)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return await newest_page(session, stmt, limit, before)


async def newest_page(
    session: AsyncSession,
    stmt: Select[Job],
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[Job]:
    """``limit`` jobs of ``stmt``, newest first, after ``before``: the (created_at, id) of the
    previous page's last job (keyset pagination)."""
    if before is not None:
        created_at, job_id = before
        older = and_(Job.created_at == created_at, Job.id < job_id)
        stmt = stmt.where(or_(Job.created_at < created_at, older))
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(await session.scalars(stmt.execution_options(**FRESH)))


async def output_sums(
    session: AsyncSession, job_ids: Collection[str], paths: Sequence[tuple[str, ...]]
) -> dict[str, list[float]]:
    """Per job of ``job_ids`` with items: for each JSON path of ``paths``, the sum over its
    items of the number at that path of their output (0 where an item has none)."""
    if not job_ids:
        return {}
    sums = [func.coalesce(func.sum(JobItem.output[path].as_float()), 0.0) for path in paths]
    stmt = select(JobItem.job_id, *sums).where(JobItem.job_id.in_(sorted(job_ids)))
    rows = await session.execute(stmt.group_by(JobItem.job_id))
    return {row[0]: [float(value) for value in row[1:]] for row in rows}


@dataclass(frozen=True, slots=True)
class Cancellation:
    """What ``cancel_job`` did: whether it stopped the job, how many items it cancelled, and
    whether a runner still holds the job (it then cancels the items it has in flight)."""

    job: Job
    stopped: bool
    items: int
    runner_holds: bool


async def cancel_job(
    session: AsyncSession,
    tenant_id: str,
    job_id: str,
    now: datetime | None = None,
    runner_gone: bool = False,
) -> Cancellation | None:
    """Cancel a queued or running job; ``None`` if the tenant has no such job.

    Pending items become ``cancelled`` at once. Running items are left to the runner that holds
    the job's lease (it sees the status at its next renewal); when no live lease is held, or
    the caller knows its holder is gone (``runner_gone``: a single-process database whose
    runner is not running), they are cancelled here too. A finished job is left unchanged
    (``stopped`` is False).
    """
    now = now or utcnow()
    mine = (
        select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id).execution_options(**FRESH)
    )
    found = await session.scalar(dialects.lock_rows(session, mine))
    if found is None:
        return None
    expires = found.lease_expires_at
    live = found.lease_owner is not None and expires is not None and expires > now
    held = live and not runner_gone
    stop = (  # the status is checked again: SQLite's SELECT above took no lock
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.CANCELLED, finished_at=now)
    )
    if not held:  # a lapsed lease must not make the job look orphaned to the runners
        stop = stop.values(lease_owner=None, lease_expires_at=None)
    if not rowcount(await session.execute(stop.execution_options(**NO_SYNC))):
        return Cancellation(found, False, 0, False)
    moved = {ItemStatus.PENDING: await _cancel_items(session, job_id, ItemStatus.PENDING, now)}
    moved[ItemStatus.WAITING] = await cancel_waiting(session, job_id, now)
    if not held:
        moved[ItemStatus.RUNNING] = await _cancel_items(session, job_id, ItemStatus.RUNNING, now)
    await _add(
        session,
        job_id,
        cancelled=sum(moved.values()),
        running=-moved.get(ItemStatus.RUNNING, 0),
        waiting=-moved[ItemStatus.WAITING],
    )
    job = await get_job(session, tenant_id, job_id)
    assert job is not None
    return Cancellation(job, True, sum(moved.values()), held)


async def _cancel_items(session: AsyncSession, job_id: str, state: str, now: datetime) -> int:
    stmt = (
        update(JobItem)
        .where(JobItem.job_id == job_id, OPEN_ITEMS, JobItem.status == state)
        .values(status=ItemStatus.CANCELLED, finished_at=now)
    )
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


async def cancel_waiting(session: AsyncSession, job_id: str, now: datetime) -> int:
    """Items waiting at a human node become ``cancelled``, and their waits with them; returns
    how many items changed (the caller moves ``jobs.waiting``)."""
    waits = (
        update(HumanWait)
        .where(HumanWait.job_id == job_id, HumanWait.status == WaitStatus.WAITING)
        .values(status=WaitStatus.CANCELLED)
    )
    await session.execute(waits.execution_options(**NO_SYNC))
    stmt = (
        update(JobItem)
        .where(JobItem.job_id == job_id, JobItem.status == ItemStatus.WAITING)
        .values(status=ItemStatus.CANCELLED, finished_at=now)
    )
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


async def cancel_open_items(session: AsyncSession, job_id: str) -> int:
    """After a cancelled job's runner has stopped: every item still open becomes ``cancelled``.

    These are items the runner had taken (``running``) but not started, and any still pending;
    the counters move with them. Returns how many items changed.
    """
    now = utcnow()
    moved = {state: await _cancel_items(session, job_id, state, now) for state in ACTIVE_ITEMS}
    waiting = await cancel_waiting(session, job_id, now)
    total = moved[ItemStatus.RUNNING] + moved[ItemStatus.PENDING] + waiting
    await _add(
        session, job_id, running=-moved[ItemStatus.RUNNING], waiting=-waiting, cancelled=total
    )
    return total


async def _add(session: AsyncSession, job_id: str, **deltas: int) -> None:
    values = {name: getattr(Job, name) + delta for name, delta in deltas.items() if delta}
    if values:
        stmt = update(Job).where(Job.id == job_id).values(values)
        await session.execute(stmt.execution_options(**NO_SYNC))


async def delete_finished_jobs(session: AsyncSession, finished_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs that finished before the cutoff, with their items, results and
    events (foreign keys cascade); returns how many jobs went (retention)."""
    old = select(Job.id).where(Job.finished_at < finished_before).limit(limit)
    stmt = delete(Job).where(Job.id.in_(old.scalar_subquery()))
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


async def delete_abandoned_uploads(
    session: AsyncSession, created_before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` ``uploading`` jobs created before the cutoff: uploads whose process
    died before it published or discarded them (nobody sees or claims them)."""
    old = (
        select(Job.id)
        .where(Job.status == JobStatus.UPLOADING, Job.created_at < created_before)
        .limit(limit)
    )
    stmt = delete(Job).where(Job.id.in_(old.scalar_subquery()))
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


# -- the runner: leases --------------------------------------------------------------------


def _claimable(now: datetime, dead: Collection[str] = ()) -> ColumnElement[bool]:
    lapsed = or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)
    if dead:  # their leases count as lapsed, whatever their expiry
        lapsed = or_(lapsed, Job.lease_owner.in_(sorted(dead)))
    # A job cancelled while a runner held it, whose runner then died: someone must still close
    # the items that runner had taken and write the job's last event.
    orphaned = and_(Job.status == JobStatus.CANCELLED, Job.lease_owner.is_not(None), lapsed)
    return or_(
        Job.status == JobStatus.QUEUED, and_(Job.status == JobStatus.RUNNING, lapsed), orphaned
    )


async def claim_jobs(
    session: AsyncSession,
    owner: str,
    lease_s: float,
    limit: int,
    now: datetime,
    running: Collection[str] = (),
    kinds: Collection[str] | None = None,
    dead: Collection[str] = (),
) -> list[Job]:
    """Lease up to ``limit`` jobs to ``owner``: queued ones, and running ones whose lease lapsed
    or whose owner is ``dead`` (see ``dead_owners``).

    Lowest ``priority`` first, then oldest. Claimed jobs become ``running`` (``started_at`` set
    once), except cancelled ones whose runner died, which stay ``cancelled`` (the new owner
    closes their items). On Postgres, concurrent claimers skip each other's rows, so no job goes
    to two. ``running`` are the jobs the claimer runs already: never claimed again, even when
    their lease lapsed (a stalled process renews them instead of running them twice).
    ``kinds``: only jobs of these run kinds (those the claimer can run); ``None`` for any.
    """
    if limit <= 0:
        return []
    pick = select(Job.id).where(_claimable(now, dead))
    if running:
        pick = pick.where(Job.id.not_in(sorted(running)))
    if kinds is not None:
        pick = pick.where(Job.kind.in_(sorted(kinds)))
    pick = pick.order_by(Job.priority, Job.created_at, Job.id).limit(limit)
    ids = list(await session.scalars(dialects.lock_rows(session, pick, skip_locked=True)))
    if not ids:
        return []
    stmt = (
        update(Job)
        .where(Job.id.in_(ids), _claimable(now, dead))  # re-checked: SQLite's select did not lock
        .values(
            status=case(
                (Job.status == JobStatus.CANCELLED, Job.status),
                else_=literal(JobStatus.RUNNING.value),
            ),
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            started_at=func.coalesce(Job.started_at, literal(now, UTCDateTime())),
        )
        .returning(Job)
    )
    jobs = await session.scalars(stmt.execution_options(**NO_SYNC, **FRESH))
    return sorted(jobs, key=lambda job: (job.priority, job.created_at, job.id))


async def lock_jobs(session: AsyncSession, job_ids: Collection[str]) -> None:
    """Take the row locks of these jobs in id order, before updating several of them.

    NOTE: [lock order] A multi-row UPDATE locks rows in scan order, so two transactions that
    update the same jobs (the result writer's counters, a lease renewal, event appends) could
    each hold one row and wait for the other's; Postgres then aborts one after its
    ``deadlock_timeout`` (a second of stalled results). Locking in one order first rules the
    cycle out. SQLite: nothing to do (one writer).
    """
    ids = select(Job.id).where(Job.id.in_(sorted(set(job_ids))))
    await dialects.lock_now(session, ids.order_by(Job.id))


async def renew_leases(
    session: AsyncSession, owner: str, job_ids: Sequence[str], lease_s: float, now: datetime
) -> dict[str, str]:
    """Extend the leases ``owner`` still holds; returns job id -> status for exactly those (a job
    another owner took over is absent; a ``cancelled`` status means stop)."""
    if not job_ids:
        return {}
    await lock_jobs(session, job_ids)
    stmt = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.lease_owner == owner)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(Job.id, Job.status)
    )
    rows = await session.execute(stmt.execution_options(**NO_SYNC))
    return {job_id: status for job_id, status in rows}


async def release_lease(session: AsyncSession, owner: str, job_id: str) -> None:
    """Give a job back; if it is unfinished, any runner may claim it at once."""
    await _release(session, and_(Job.id == job_id, Job.lease_owner == owner))


async def release_all(session: AsyncSession, owner: str) -> int:
    """Give back every job ``owner`` holds (at shutdown); returns how many."""
    return await _release(session, Job.lease_owner == owner)


async def dead_owners(session: AsyncSession, owner: str, now: datetime) -> list[str]:
    """Postgres: the other owners with live leases that hold no owner lock (their process
    died: see :mod:`app.db.owner_locks`); pass them to ``claim_jobs`` to claim their jobs now.
    Reads only, so a frozen owner's row locks never block it. Always empty on SQLite."""
    if dialects.is_sqlite(session):
        return []
    leased = select(Job.lease_owner).where(_leased_elsewhere(owner, now)).distinct().subquery()
    # Taken for this transaction only: it succeeds exactly when no live session holds the lock.
    free = func.pg_try_advisory_xact_lock(*owner_key(leased.c.lease_owner))
    return [found for found in await session.scalars(select(leased.c.lease_owner).where(free))]


async def leased_elsewhere(session: AsyncSession, owner: str, now: datetime) -> bool:
    """Whether another owner holds a live lease (its job may need taking over soon)."""
    found = await session.scalar(select(Job.id).where(_leased_elsewhere(owner, now)).limit(1))
    return found is not None


def _leased_elsewhere(owner: str, now: datetime) -> ColumnElement[bool]:
    return and_(Job.lease_owner.is_not(None), Job.lease_owner != owner, Job.lease_expires_at >= now)


async def expire_leases(session: AsyncSession) -> int:
    """Mark every lease lapsed, so any runner may claim its job at once. Only for a
    single-process database at start: their owner is gone. The owner stays recorded: a job
    cancelled under it still owes its closing, and is claimed for that (see ``_claimable``)."""
    stmt = update(Job).where(Job.lease_owner.is_not(None)).values(lease_expires_at=None)
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


async def _release(session: AsyncSession, where: ColumnElement[bool]) -> int:
    stmt = update(Job).where(where).values(lease_owner=None, lease_expires_at=None)
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


@dataclass(frozen=True, slots=True)
class Ending:
    """How ``end_job`` ended a job: its final status, the items it closed, the job after."""

    status: str
    closed: int
    job: Job


async def end_job(
    session: AsyncSession, job_id: str, owner: str, status: str, error: str | None = None
) -> Ending | None:
    """The runner's end of a job it holds, in one conditional UPDATE: ``None`` when ``owner``
    no longer holds the job (another process took it over, or it has ended already).

    A job cancelled meanwhile stays ``cancelled`` whatever ``status`` asks, and its open items
    are closed. The lease is released with it, so whoever wins writes the job's one terminal
    event; a second call, or a runner that lost the lease, gets ``None``.
    """
    was_cancelled = Job.status == JobStatus.CANCELLED
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.lease_owner == owner,
            Job.status.in_((*ACTIVE, JobStatus.CANCELLED)),
        )
        .values(
            status=case((was_cancelled, Job.status), else_=literal(status, Job.status.type)),
            error=case((was_cancelled, Job.error), else_=literal(error, Job.error.type)),
            finished_at=func.coalesce(Job.finished_at, literal(utcnow(), UTCDateTime())),
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Job.status)
    )
    ended = await session.scalar(stmt.execution_options(**NO_SYNC))
    if ended is None:
        return None
    closed = await cancel_open_items(session, job_id) if ended == JobStatus.CANCELLED else 0
    job = await get_job_by_id(session, job_id)
    assert job is not None  # updated just above, in this transaction
    return Ending(ended, closed, job)


async def finish_job(
    session: AsyncSession, job_id: str, status: str, error: str | None = None
) -> bool:
    """End a queued or running job with ``status``; a job already ended (for instance
    cancelled meanwhile) keeps its status and ``False`` is returned. The lease is kept until
    ``release_lease``."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status=status, error=error, finished_at=utcnow())
    )
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC))) > 0


async def first_start(session: AsyncSession, job_id: str, owner: str) -> bool:
    """Whether ``owner`` holds the job and it was never started before (no ``job_started``
    event): a job taken over after a crash or a lapsed lease is started once, not again.
    On Postgres the job's row stays locked until commit, so two owners never both see True."""
    held = select(Job.id).where(Job.id == job_id, Job.lease_owner == owner)
    if await session.scalar(dialects.lock_rows(session, held)) is None:
        return False
    started = select(JobEvent.id).where(
        JobEvent.job_id == job_id, JobEvent.kind == EventKind.JOB_STARTED
    )
    return await session.scalar(started.limit(1)) is None


async def keep_trace_root(session: AsyncSession, job_id: str, traceparent: str) -> None:
    """Keep ``traceparent`` as the job's trace root unless one is kept already."""
    stmt = update(Job).where(Job.id == job_id, Job.trace_root.is_(None))
    await session.execute(stmt.values(trace_root=traceparent).execution_options(**NO_SYNC))


# -- the runner: items ---------------------------------------------------------------------


async def next_items(
    session: AsyncSession, job_id: str, after_index: int, limit: int
) -> list[tuple[int, Any]]:
    """Unfinished (pending or running) items after ``after_index``: (index, input), in order."""
    stmt = (
        select(JobItem.item_index, JobItem.input)
        .where(JobItem.job_id == job_id, OPEN_ITEMS, JobItem.item_index > after_index)
        .order_by(JobItem.item_index)
        .limit(limit)
    )
    return [(index, value) for index, value in await session.execute(stmt)]


async def mark_running(session: AsyncSession, job_id: str, indexes: Sequence[int]) -> int:
    """Move these items from pending to running and count them into ``jobs.running``; items
    already running or finished are left alone. Returns how many changed."""
    changed = await start_items(session, job_id, indexes)
    await _add(session, job_id, running=changed)
    return changed


async def start_items(session: AsyncSession, job_id: str, indexes: Sequence[int]) -> int:
    """Like ``mark_running`` without the counter: the caller adds the returned number to
    ``jobs.running`` in its own statement (the result writer folds it into its counts)."""
    if not indexes:
        return 0
    await dialects.lock_now(session, select(Job.id).where(Job.id == job_id))
    stmt = (
        update(JobItem)
        .where(
            JobItem.job_id == job_id,
            JobItem.item_index.in_(indexes),
            JobItem.status == ItemStatus.PENDING,
        )
        .values(status=ItemStatus.RUNNING.value)
    )
    return rowcount(await session.execute(stmt.execution_options(**NO_SYNC)))


async def results_page(
    session: AsyncSession, job_id: str, after_index: int, limit: int
) -> list[JobItem]:
    """Items after ``after_index`` in input order, finished or not."""
    stmt = (
        select(JobItem)
        .where(JobItem.job_id == job_id, JobItem.item_index > after_index)
        .order_by(JobItem.item_index)
        .limit(limit)
    )
    return list(await session.scalars(stmt.execution_options(**FRESH)))


async def get_item(session: AsyncSession, job_id: str, index: int) -> JobItem | None:
    return await session.get(JobItem, (job_id, index), populate_existing=True)


async def items_at(
    session: AsyncSession, job_ids: Collection[str], index: int
) -> dict[str, JobItem]:
    """Item ``index`` of each of these jobs (jobs without one are absent), in one query."""
    if not job_ids:
        return {}
    stmt = select(JobItem).where(JobItem.job_id.in_(sorted(job_ids)), JobItem.item_index == index)
    found = await session.scalars(stmt.execution_options(**FRESH))
    return {item.job_id: item for item in found}


# -- runner crashes ------------------------------------------------------------------------


async def count_runner_crash(session: AsyncSession, owner: str) -> list[tuple[str, str, int]]:
    """``owner``'s process died: count it against every job it held. Returns (job id, status,
    crashes so far) of each; the leases stay until ``release_all``."""
    stmt = (
        update(Job)
        .where(Job.lease_owner == owner)
        .values(runner_crashes=Job.runner_crashes + 1)
        .returning(Job.id, Job.status, Job.runner_crashes)
    )
    rows = await session.execute(stmt.execution_options(**NO_SYNC))
    return [(job_id, status, crashes) for job_id, status, crashes in rows]
