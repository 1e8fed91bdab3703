"""A runner's owner lock outlives a Postgres restart: taken again once the database is back,
even after attempts that failed while it was down (else other runners would take its jobs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.db.owner_locks import OWNER_LOCK_CLASS, OwnerLock
from app.db.session import create_engine
from tests.support.pg_cluster import PgCluster, binaries

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("no Postgres binaries under /usr/lib/postgresql/*/bin")
    with PgCluster.create(bin_dir) as made:
        yield made


async def lock_is_free(url: str, owner: str) -> bool:
    """Whether another session could take ``owner``'s lock (it then lets it go at once)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            taken = text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:o))")
            return bool(
                (await connection.execute(taken, {"c": OWNER_LOCK_CLASS, "o": owner})).scalar()
            )
    finally:
        await engine.dispose()


async def test_the_owner_lock_is_taken_again_after_a_restart(cluster: PgCluster) -> None:
    lock = OwnerLock(cluster.url, "runner-a")
    await lock.acquire()
    assert not await lock_is_free(cluster.url, "runner-a")

    cluster.stop()
    for _ in range(2):  # claims made while the database is down fail, and so does the lock
        with pytest.raises(ConnectionRefusedError):
            await lock.keep()
    cluster.start()
    await lock.keep()

    assert not await lock_is_free(cluster.url, "runner-a")
    await lock.release()
    assert await lock_is_free(cluster.url, "runner-a")
