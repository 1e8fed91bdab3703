"""Claiming jobs with leases: order, takeover after expiry, renewal, release, and (on Postgres)
concurrent claimers that never share a job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.models import Job
from app.db.owner_locks import OWNER_LOCK_CLASS, OwnerLock
from app.db.repositories import jobs
from app.db.session import session_factory
from tests.support.db import seed_job, seed_version

LEASE_S = 30.0
T0 = datetime(2030, 1, 1, tzinfo=UTC)

# SQLite serves one process: it has one claimer at a time, so these concern Postgres alone.
POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def queued_jobs(session: AsyncSession, priorities: list[int]) -> list[Job]:
    tenant, version = await seed_version(session)
    made = [await seed_job(session, tenant, version.id, [0], p) for p in priorities]
    await session.commit()
    return made


async def test_claims_lowest_priority_value_first_then_oldest(session: AsyncSession) -> None:
    made = await queued_jobs(session, [5, 0, 5, 1])

    claimed = await jobs.claim_jobs(session, "a", LEASE_S, 3, T0)

    assert [j.id for j in claimed] == [made[1].id, made[3].id, made[0].id]
    for job in claimed:
        assert (job.status, job.lease_owner) == ("running", "a")
        assert job.lease_expires_at == T0 + timedelta(seconds=LEASE_S)
        assert job.started_at == T0
    assert await jobs.claim_jobs(session, "a", LEASE_S, 0, T0) == []


async def test_a_held_job_is_taken_over_only_after_its_lease_expires(session: AsyncSession) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 10, T0)

    assert await jobs.claim_jobs(session, "b", LEASE_S, 10, T0 + timedelta(seconds=29)) == []
    later = T0 + timedelta(seconds=31)
    [taken] = await jobs.claim_jobs(session, "b", LEASE_S, 10, later)

    assert (taken.id, taken.lease_owner, taken.status) == (job.id, "b", "running")
    assert taken.started_at == T0  # started once, by the first owner
    assert await jobs.renew_leases(session, "a", [job.id], LEASE_S, later) == {}
    assert await jobs.renew_leases(session, "b", [job.id], LEASE_S, later) == {job.id: "running"}


async def test_renew_reports_only_held_jobs_and_their_status(session: AsyncSession) -> None:
    first, second, unclaimed = await queued_jobs(session, [0, 0, 9])
    await jobs.claim_jobs(session, "a", LEASE_S, 2, T0)
    tenant = first.tenant_id
    await jobs.cancel_job(session, tenant, second.id)

    renewed = await jobs.renew_leases(
        session, "a", [first.id, second.id, unclaimed.id], LEASE_S, T0 + timedelta(seconds=20)
    )

    assert renewed == {first.id: "running", second.id: "cancelled"}
    job = await jobs.get_job_by_id(session, first.id)
    assert job is not None
    assert job.lease_expires_at == T0 + timedelta(seconds=50)
    assert await jobs.renew_leases(session, "a", [], LEASE_S, T0) == {}


async def test_finished_and_cancelled_jobs_are_never_claimed(session: AsyncSession) -> None:
    done, cancelled = await queued_jobs(session, [0, 0])
    await jobs.finish_job(session, done.id, "succeeded")
    await jobs.cancel_job(session, cancelled.tenant_id, cancelled.id)

    assert await jobs.claim_jobs(session, "a", LEASE_S, 10, T0 + timedelta(days=1)) == []


async def test_released_jobs_can_be_claimed_at_once(session: AsyncSession) -> None:
    first, second, third = await queued_jobs(session, [0, 1, 2])
    await jobs.claim_jobs(session, "a", LEASE_S, 2, T0)
    await jobs.claim_jobs(session, "c", LEASE_S, 1, T0)

    await jobs.release_lease(session, "someone-else", first.id)  # not theirs: no effect
    assert await jobs.claim_jobs(session, "b", LEASE_S, 10, T0) == []
    await jobs.release_lease(session, "a", first.id)
    assert [j.id for j in await jobs.claim_jobs(session, "b", LEASE_S, 10, T0)] == [first.id]
    assert await jobs.release_all(session, "b") == 1
    assert await jobs.expire_leases(session) == 2  # a's second job and c's third
    claimed = await jobs.claim_jobs(session, "d", LEASE_S, 10, T0)
    assert sorted(j.id for j in claimed) == sorted([first.id, second.id, third.id])


@POSTGRES_ONLY
async def test_concurrent_claimers_get_disjoint_jobs(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        made = await queued_jobs(session, [0] * 4)

    async with sessions() as first, sessions() as second:
        mine = await jobs.claim_jobs(first, "a", LEASE_S, 2, T0)  # rows stay locked: no commit
        theirs = await jobs.claim_jobs(second, "b", LEASE_S, 10, T0)
        await first.commit()
        await second.commit()

    assert len(mine) == 2
    assert len(theirs) == 2
    assert {j.id for j in mine} | {j.id for j in theirs} == {j.id for j in made}


@POSTGRES_ONLY
async def test_many_concurrent_claimers_never_share_a_job(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        made = await queued_jobs(session, [0] * 40)

    async def claim(owner: str) -> list[str]:
        taken: list[str] = []
        while True:
            async with sessions() as session:
                batch = await jobs.claim_jobs(session, owner, LEASE_S, 3, T0)
                await session.commit()
            if not batch:
                return taken
            taken += [job.id for job in batch]

    claims = await asyncio.gather(*(claim(f"owner-{n}") for n in range(6)))
    everything = [job_id for taken in claims for job_id in taken]
    assert sorted(everything) == sorted(j.id for j in made)


async def test_a_job_cancelled_under_a_dead_runner_is_claimed_to_be_closed(
    session: AsyncSession,
) -> None:
    held, freed = await queued_jobs(session, [0, 0])
    await jobs.claim_jobs(session, "dead", LEASE_S, 2, T0)
    cancelled_held = await jobs.cancel_job(session, held.tenant_id, held.id, T0)
    assert cancelled_held is not None
    assert cancelled_held.runner_holds

    later = T0 + timedelta(seconds=LEASE_S + 1)
    cancelled_freed = await jobs.cancel_job(session, freed.tenant_id, freed.id, later)
    assert cancelled_freed is not None
    assert not cancelled_freed.runner_holds

    claimed = await jobs.claim_jobs(session, "heir", LEASE_S, 10, later)
    assert [(job.id, job.status, job.lease_owner) for job in claimed] == [
        (held.id, "cancelled", "heir")
    ]


async def test_a_runner_never_claims_again_a_job_it_runs_and_renews_its_lapsed_lease(
    session: AsyncSession,
) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 10, T0)
    lapsed = T0 + timedelta(seconds=LEASE_S + 5)  # "a" stalled past its lease

    assert await jobs.claim_jobs(session, "a", LEASE_S, 10, lapsed, running={job.id}) == []
    assert await jobs.renew_leases(session, "a", [job.id], LEASE_S, lapsed) == {job.id: "running"}
    assert await jobs.claim_jobs(session, "b", LEASE_S, 10, lapsed) == []  # renewed: not free


async def test_only_the_lease_holder_ends_a_job_and_only_once(session: AsyncSession) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 10, T0)
    await jobs.claim_jobs(session, "b", LEASE_S, 10, T0 + timedelta(seconds=LEASE_S + 1))

    assert await jobs.end_job(session, job.id, "a", "completed") is None  # lost its lease
    ending = await jobs.end_job(session, job.id, "b", "completed")
    assert ending is not None
    assert (ending.status, ending.closed, ending.job.lease_owner) == ("completed", 0, None)
    assert await jobs.end_job(session, job.id, "b", "completed") is None
    again = await jobs.cancel_job(session, job.tenant_id, job.id)
    assert again is not None
    assert not again.stopped


async def test_a_job_cancelled_before_its_runner_ends_it_stays_cancelled(
    session: AsyncSession,
) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 10, T0)
    await jobs.mark_running(session, job.id, [0])
    cancelled = await jobs.cancel_job(session, job.tenant_id, job.id, T0)
    assert cancelled is not None
    assert cancelled.runner_holds

    ending = await jobs.end_job(session, job.id, "a", "completed")

    assert ending is not None
    assert (ending.status, ending.closed) == ("cancelled", 1)
    assert (ending.job.running, ending.job.cancelled) == (0, 1)
    assert await jobs.end_job(session, job.id, "a", "cancelled") is None


async def test_a_cancel_knowing_the_runner_gone_closes_its_running_items(
    session: AsyncSession,
) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 10, T0)
    await jobs.mark_running(session, job.id, [0])

    outcome = await jobs.cancel_job(session, job.tenant_id, job.id, T0, runner_gone=True)

    assert outcome is not None
    assert (outcome.stopped, outcome.runner_holds, outcome.items) == (True, False, 1)
    assert (outcome.job.running, outcome.job.cancelled, outcome.job.lease_owner) == (0, 1, None)


async def test_a_restarted_single_process_runner_closes_a_job_cancelled_under_its_predecessor(
    session: AsyncSession,
) -> None:
    [job] = await queued_jobs(session, [0])
    await jobs.claim_jobs(session, "dead", LEASE_S, 10, T0)
    cancelled = await jobs.cancel_job(session, job.tenant_id, job.id, T0)
    assert cancelled is not None
    assert cancelled.runner_holds

    await jobs.expire_leases(session)  # what a restarted runner on SQLite does first
    claimed = await jobs.claim_jobs(session, "heir", LEASE_S, 10, T0)

    assert [(j.id, j.status, j.lease_owner) for j in claimed] == [(job.id, "cancelled", "heir")]


async def claim_as(
    sessions: async_sessionmaker[AsyncSession], owner: str, now: datetime
) -> list[Job]:
    """One claim as a runner makes it, dead owners first; it must not wait for row locks."""
    async with asyncio.timeout(5), sessions() as session:
        dead = await jobs.dead_owners(session, owner, now)
        claimed = await jobs.claim_jobs(session, owner, LEASE_S, 10, now, dead=dead)
        await session.commit()
    return claimed


@POSTGRES_ONLY
async def test_a_dead_owners_live_lease_is_claimable_at_once(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    alive = OwnerLock(engine.url.render_as_string(hide_password=False), "a")
    await alive.acquire()
    async with sessions() as session:
        [job] = await queued_jobs(session, [0])
    assert len(await claim_as(sessions, "a", T0)) == 1
    soon = T0 + timedelta(seconds=1)  # a's lease has 29 s left

    async with sessions() as frozen:  # a, frozen mid-transaction, keeps the job's row locked
        await jobs.renew_leases(frozen, "a", [job.id], LEASE_S, T0)
        assert await claim_as(sessions, "b", soon) == []  # a lives
        async with sessions() as session:
            assert await jobs.leased_elsewhere(session, "b", soon)
    await alive.release()  # as a killed process's connection closes
    async with sessions() as session:
        assert await jobs.dead_owners(session, "a", soon) == []  # never itself
        assert await jobs.dead_owners(session, "b", soon) == ["a"]
    [taken] = await claim_as(sessions, "b", soon)

    assert (taken.id, taken.lease_owner) == (job.id, "b")


@POSTGRES_ONLY
async def test_an_owner_lock_lost_with_its_connection_is_taken_again(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    alive = OwnerLock(engine.url.render_as_string(hide_password=False), "a")
    await alive.acquire()
    async with sessions() as session:
        await queued_jobs(session, [0])
    await claim_as(sessions, "a", T0)
    holder = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :c"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with engine.connect() as connection:  # as a database restart would drop it
        pid = (await connection.execute(holder, {"c": OWNER_LOCK_CLASS})).scalar_one()
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    await alive.keep()

    async with sessions() as session:
        assert await jobs.dead_owners(session, "b", T0) == []
    await alive.release()


async def two_jobs_stored_in_descending_id_order(session: AsyncSession) -> tuple[str, str]:
    """Two held jobs, the one with the larger id stored first: a scan meets it first."""
    tenant, version = await seed_version(session)
    first = await seed_job(session, tenant, version.id, [0])
    second = await seed_job(session, tenant, version.id, [0])
    while second.id > first.id:
        second = await seed_job(session, tenant, version.id, [0])
    await jobs.claim_jobs(session, "a", LEASE_S, 100, T0)
    await session.commit()
    return first.id, second.id


@POSTGRES_ONLY
async def test_renewing_several_leases_locks_them_in_id_order(engine: AsyncEngine) -> None:
    """A renewal waiting for one job's row holds no lock on the others, so a transaction that
    takes them in id order (the writer's counters) cannot deadlock with it."""
    sessions = session_factory(engine)
    async with sessions() as session:
        scanned_first, smaller = await two_jobs_stored_in_descending_id_order(session)
    async with sessions() as holder, sessions() as renewer, sessions() as other:
        await holder.execute(update(Job).where(Job.id == smaller).values(priority=1))
        renewal = asyncio.create_task(
            jobs.renew_leases(renewer, "a", [scanned_first, smaller], LEASE_S, T0)
        )
        await asyncio.sleep(0.3)  # the renewal now waits for the holder's row
        await other.execute(text("SET LOCAL lock_timeout = '2s'"))
        try:
            await other.execute(update(Job).where(Job.id == scanned_first).values(priority=1))
            await other.commit()
            blocked = None
        except DBAPIError as exc:  # the renewal holds that row while it waits
            blocked = exc
        await holder.commit()
        renewed = await renewal
        await renewer.commit()
    assert blocked is None, blocked
    assert renewed == {scanned_first: "running", smaller: "running"}
