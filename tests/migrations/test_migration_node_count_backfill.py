"""Migration 0017 counts the node results of jobs stored before it: a job finished under an
older version shows the same per-node counts on its page as one written since."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import migrate
from app.db.repositories import jobs, node_counts, results
from app.db.repositories.results import NodeRow
from app.db.session import create_engine, session_factory
from tests.support.db import (
    BACKENDS,
    create_database,
    drop_database,
    require_server,
    seed_job,
    seed_version,
    sqlite_url,
)

STATUSES = ("succeeded", "failed", "skipped", "cancelled")


@pytest.fixture(params=BACKENDS)
def own_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own (this test moves its schema down and up)."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "backfill.sqlite")
    else:
        url = create_database(require_server())
    try:
        migrate.upgrade(url)
        yield url
    finally:
        if request.param != "sqlite":
            drop_database(url)


def node(job_id: str, index: int, node_id: str, status: str) -> NodeRow:
    return NodeRow(
        job_id, index, node_id, status, None, None, None, 1, None, None, 0, 0, 0.0,
        None, None, None,
    )  # fmt: skip


async def two_jobs(url: str) -> dict[str, dict[str, dict[str, int]]]:
    """Two jobs with node results of every status; each job's counts as the writer kept them."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            tenant, version = await seed_version(session)
            found = {}
            for size in (5, 9):
                job = await seed_job(session, tenant, version.id, list(range(size)))
                await jobs.mark_running(session, job.id, list(range(size)))
                rows = [node(job.id, i, n, STATUSES[(i + len(n)) % 4]) for i in range(size)
                        for n in ("a", "bb")]  # fmt: skip
                await results.write_batch(session, rows, [])
                await session.commit()
                found[job.id] = await node_counts.of_job(session, job.id)
            return found
    finally:
        await engine.dispose()


async def counts_of(url: str, job_ids: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return {job_id: await node_counts.of_job(session, job_id) for job_id in job_ids}
    finally:
        await engine.dispose()


def test_upgrading_counts_the_results_stored_before(own_url: str) -> None:
    written = asyncio.run(two_jobs(own_url))
    assert all(sum(c.values()) for counts in written.values() for c in counts.values())

    migrate.downgrade(own_url, "0018")  # as if the results were stored by an older version
    migrate.upgrade(own_url)

    assert asyncio.run(counts_of(own_url, list(written))) == written
