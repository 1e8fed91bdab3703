"""Slots of a killed process come back at once on Postgres, not after their lease lapses.

A Postgres rate store given the database URL marks its process alive with an advisory lock;
another process refused a slot frees the slots whose process's mark is gone. A real process
takes the slots and is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import create_engine, session_factory
from app.engine.resources.shared import AliasLimits
from app.engine.resources.store_state import lease_owner
from app.services.limiting.postgres_store import PostgresRateStore
from tests.support.db import truncate_all

pytestmark = pytest.mark.postgres

LIMITS = {"m": AliasLimits(max_concurrent=3)}
LEASE_S = 30.0
PROMPTLY_S = 3.0  # the dead check runs at most once a second: well under the 30-s lease

_HOLDER = """
import asyncio, sys
from app.db.session import create_engine, session_factory
from app.engine.resources.shared import AliasLimits
from app.engine.resources.store_state import lease_owner
from app.services.limiting.postgres_store import PostgresRateStore

async def main(url):
    engine = create_engine(url)
    limits = {"m": AliasLimits(max_concurrent=3)}
    store = PostgresRateStore(session_factory(engine), limits, url=url)
    for _ in range(2):
        assert await store.acquire_slot("m", lease_owner(), ttl_s=30.0)
    print("held", flush=True)
    await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await truncate_all(engine)
    yield engine
    await engine.dispose()


def store_on(engine: AsyncEngine, marked: bool) -> PostgresRateStore:
    url = engine.url.render_as_string(hide_password=False)
    return PostgresRateStore(session_factory(engine), LIMITS, url=url if marked else None)


async def holder_of_two_slots(url: str) -> asyncio.subprocess.Process:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, url, stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"held\n"
    return holder


async def took_within(store: PostgresRateStore, seconds: float) -> float | None:
    """Seconds until the store grants a slot, polling as a waiting call does; None if never."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if await store.acquire_slot("m", lease_owner(), ttl_s=LEASE_S):
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    return None


async def killed_holder_then_wait(
    engine: AsyncEngine, marked: bool
) -> tuple[PostgresRateStore, float | None]:
    """This process holds one slot, a live holder two; the holder is killed; how soon the
    third slot comes back (waiting at most ``PROMPTLY_S``)."""
    store = store_on(engine, marked)
    assert await store.acquire_slot("m", lease_owner(), ttl_s=LEASE_S)
    holder = await holder_of_two_slots(engine.url.render_as_string(hide_password=False))
    try:
        assert await took_within(store, 1.5) is None, "a live process's slots are never freed"
    finally:
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    return store, await took_within(store, PROMPTLY_S)


async def test_a_killed_processs_slots_come_back_at_once(engine: AsyncEngine) -> None:
    store, waited = await killed_holder_then_wait(engine, marked=True)
    assert waited is not None, "the killed process's slots came back"
    assert waited <= PROMPTLY_S
    snapshot = await store.snapshot("m")
    assert snapshot.slots_used == 2, "this process's own slot stayed taken beside the new one"
    await store.aclose()


async def test_without_the_mark_they_stay_taken_until_the_lease_lapses(
    engine: AsyncEngine,
) -> None:
    _, waited = await killed_holder_then_wait(engine, marked=False)
    assert waited is None
