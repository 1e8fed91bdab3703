"""One contract for every shared rate store: in memory, Redis (local server), Postgres, SQLite."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from app.db.session import create_engine
from app.engine.resources.shared import (
    WANTED_S,
    AliasLimits,
    InMemoryRateStore,
    SharedRateStore,
)
from tests.support.db import copy_sqlite, truncate_all
from tests.support.redis import REDIS_URL, require_redis

StoreFactory = Callable[[Mapping[str, AliasLimits]], SharedRateStore]


async def _redis_factory() -> AsyncIterator[StoreFactory]:
    require_redis()
    from redis.asyncio import Redis

    from app.services.limiting.redis_store import RedisRateStore

    client = Redis.from_url(REDIS_URL)
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    yield lambda limits: RedisRateStore(client, limits, prefix=prefix)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _memory_factory() -> StoreFactory:
    """One in-memory store per test: "several processes" share it, as they share a server."""
    stores: list[SharedRateStore] = []

    def make(limits: Mapping[str, AliasLimits]) -> SharedRateStore:
        if not stores:
            stores.append(InMemoryRateStore(limits))
        return stores[0]

    return make


async def _postgres_factory(url: str) -> AsyncIterator[StoreFactory]:
    from app.db.session import create_engine, session_factory
    from app.services.limiting.postgres_store import PostgresRateStore

    engine = create_engine(url)
    await truncate_all(engine)
    sessions = session_factory(engine)
    yield lambda limits: PostgresRateStore(sessions, limits)
    await engine.dispose()


async def _sqlite_factory(url: str) -> AsyncIterator[StoreFactory]:
    """Each "process" a store with a connection of its own, on one database file."""
    from app.services.limiting.sqlite_store import SqliteRateStore

    stores: list[SqliteRateStore] = []

    def make(limits: Mapping[str, AliasLimits]) -> SharedRateStore:
        stores.append(SqliteRateStore(url, limits))
        return stores[-1]

    yield make
    for store in stores:
        await store.aclose()


@pytest.fixture(
    params=["memory", "redis", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store under test; for Postgres, the session database's URL (set up out of the loop);
    for SQLite, a migrated file's URL."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return copy_sqlite(template, tmp_path / "limits.sqlite")
    return str(request.param)


@pytest.fixture
async def make_store(backend: str) -> AsyncIterator[StoreFactory]:
    """Builds a store of the backend under test from per-alias limits."""
    if backend == "memory":
        yield _memory_factory()
        return
    async for factory in _factories(backend):
        yield factory


def _factories(backend: str) -> AsyncIterator[StoreFactory]:
    if backend == "redis":
        return _redis_factory()
    return _sqlite_factory(backend) if backend.startswith("sqlite") else _postgres_factory(backend)


async def _hammer(store: SharedRateStore, seconds: float) -> list[float]:
    """Grant times (store clock) of one task acquiring as fast as it is allowed to."""
    granted: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        admission = await store.acquire("m", tokens=0)
        if admission.granted:
            granted.append(admission.at_s)
        else:
            await asyncio.sleep(min(admission.retry_after_s, 0.02))
    return granted


def _most_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_concurrent_acquirers_never_exceed_the_budget(make_store: StoreFactory) -> None:
    # rpm=600: 10 per second plus a burst of 10, so any 1-s window holds at most 20 grants.
    limits = {"m": AliasLimits(rpm=600)}
    stores = [make_store(limits) for _ in range(4)]
    runs = await asyncio.gather(*(_hammer(stores[i % 4], 1.5) for i in range(20)))
    granted = [at for run in runs for at in run]
    assert _most_in_window(granted, 1.0) <= 20
    assert len(granted) >= 20  # the budget is actually handed out (burst + 1.5 s at 10/s = 25)


async def test_refused_attempts_spend_nothing(make_store: StoreFactory) -> None:
    # NOTE: one request a second, burst 4: the 30 refusals fit in the second on a busy host
    store = make_store({"m": AliasLimits(rpm=60, burst_s=4.0)})
    assert all([(await store.acquire("m")).granted for _ in range(4)])
    refused = [await store.acquire("m") for _ in range(30)]
    assert not any(admission.granted for admission in refused)
    await asyncio.sleep(refused[-1].retry_after_s + 0.02)
    assert (await store.acquire("m")).granted


async def test_a_call_refused_for_tokens_spends_no_request(make_store: StoreFactory) -> None:
    store = make_store({"m": AliasLimits(rpm=120, tpm=6000)})  # 2 requests, 100 tokens at once
    assert (await store.acquire("m", tokens=100)).granted
    refused = await store.acquire("m", tokens=100)
    assert not refused.granted
    assert refused.retry_after_s > 0.5
    assert (await store.acquire("m", tokens=0)).granted  # the second request is still there
    assert not (await store.acquire("m", tokens=0)).granted


async def test_refund_gives_tokens_back_and_overuse_is_charged(make_store: StoreFactory) -> None:
    store = make_store({"m": AliasLimits(tpm=6000)})  # 100 tokens per second, 100 at once
    assert (await store.acquire("m", tokens=100)).granted
    assert not (await store.acquire("m", tokens=50)).granted
    await store.refund("m", 60)
    assert (await store.acquire("m", tokens=50)).granted
    await store.refund("m", -200)  # the call used 200 more than it reserved
    refused = await store.acquire("m", tokens=1)
    assert not refused.granted
    assert refused.retry_after_s > 1.5


async def test_a_lease_expires_when_its_owner_stops_renewing(make_store: StoreFactory) -> None:
    store = make_store({"m": AliasLimits(max_concurrent=1)})
    assert await store.acquire_slot("m", "a", ttl_s=0.3)
    assert not await store.acquire_slot("m", "b", ttl_s=0.3)
    await asyncio.sleep(0.2)
    assert await store.acquire_slot("m", "a", ttl_s=0.3)  # renewed: still held after 0.4 s
    await asyncio.sleep(0.2)
    assert not await store.acquire_slot("m", "b", ttl_s=0.3)
    await asyncio.sleep(0.2)
    assert await store.acquire_slot("m", "b", ttl_s=5.0)  # a died: its lease ran out
    await store.release_slot("m", "b")
    assert await store.acquire_slot("m", "a", ttl_s=5.0)


async def test_one_renewal_extends_live_leases_and_names_the_lapsed(
    make_store: StoreFactory,
) -> None:
    store = make_store({"m": AliasLimits(max_concurrent=3)})
    assert await store.acquire_slot("m", "a", ttl_s=0.3)
    assert await store.acquire_slot("m", "b", ttl_s=0.3)
    assert await store.acquire_slot("m", "c", ttl_s=5.0)
    await store.release_slot("m", "c")
    await asyncio.sleep(0.2)
    assert await store.renew_slots("m", ["a", "b", "c", "never"], ttl_s=0.3) == {"c", "never"}
    await asyncio.sleep(0.2)  # 0.4 s after they were taken: held only because renewed
    assert await store.acquire_slot("m", "d", ttl_s=5.0)
    assert not await store.acquire_slot("m", "e", ttl_s=5.0), "a and b still count"
    await asyncio.sleep(0.2)
    assert await store.renew_slots("m", ["a", "b"], ttl_s=5.0) == {"a", "b"}, "lapsed, not taken"
    assert await store.acquire_slot("m", "e", ttl_s=5.0)


async def test_slots_count_owners_up_to_the_cap(make_store: StoreFactory) -> None:
    store = make_store({"m": AliasLimits(max_concurrent=3)})
    held = [await store.acquire_slot("m", f"w{i}", ttl_s=5.0) for i in range(5)]
    assert held == [True, True, True, False, False]


async def test_a_refused_slot_marks_the_alias_contended_for_a_moment(
    make_store: StoreFactory,
) -> None:
    limits = {"m": AliasLimits(max_concurrent=1)}
    holder, waiter = make_store(limits), make_store(limits)
    assert not (await holder.acquire("m")).contended, "nobody has asked for a slot yet"
    assert await holder.acquire_slot("m", "a", ttl_s=5.0)
    assert not (await holder.acquire("m")).contended, "a granted slot is no contention"
    assert not await waiter.acquire_slot("m", "b", ttl_s=5.0)
    assert (await holder.acquire("m")).contended, "the holder hears that a process waits"
    await asyncio.sleep(WANTED_S + 0.05)
    assert not (await holder.acquire("m")).contended, "the word fades once nobody asks"


async def test_a_block_refuses_every_process_until_it_ends(make_store: StoreFactory) -> None:
    limits = {"m": AliasLimits(rpm=6000)}
    first, second = make_store(limits), make_store(limits)
    await first.block("m", 0.3)
    await first.block("m", 0.1)  # a shorter block does not shorten the first
    refused = await second.acquire("m")
    assert not refused.granted
    assert 0.2 < refused.retry_after_s <= 0.3
    assert 0.2 < await second.blocked_for("m") <= 0.3
    await asyncio.sleep(refused.retry_after_s + 0.02)
    assert (await second.acquire("m")).granted
    assert await second.blocked_for("m") == 0.0


async def test_redis_store_works_with_decoded_responses() -> None:
    require_redis()
    from redis.asyncio import Redis

    from app.services.limiting.redis_store import RedisRateStore

    client = Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    store = RedisRateStore(client, {"m": AliasLimits(rpm=60)}, prefix=prefix)
    try:
        assert [(await store.acquire("m")).granted for _ in range(2)] == [True, False]
    finally:
        await client.delete(*[key async for key in client.scan_iter(f"{prefix}:*")])
        await client.aclose()


# A worker process: the same acquirers as above, started at one wall-clock instant.
_WORKER = """
import asyncio, json, sys, time
from app.engine.resources.shared import AliasLimits

async def main(backend, target, start_at):
    limits = {"m": AliasLimits(rpm=600)}
    if backend == "redis":
        from redis.asyncio import Redis
        from app.services.limiting.redis_store import RedisRateStore
        client = Redis.from_url(REDIS_URL)
        store = RedisRateStore(client, limits, prefix=target)
    elif backend == "sqlite":
        from app.services.limiting.sqlite_store import SqliteRateStore
        store = SqliteRateStore(target, limits)
    else:
        from app.db.session import create_engine, session_factory
        from app.services.limiting.postgres_store import PostgresRateStore
        engine = create_engine(target)
        store = PostgresRateStore(session_factory(engine), limits)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    runs = await asyncio.gather(*(hammer(store, 1.5) for _ in range(5)))
    print(json.dumps([at for run in runs for at in run]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    ["redis", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_four_processes_share_one_budget(backend: str) -> None:
    """Four worker processes, five acquirers each, on rpm=600: one budget, timed by the store."""
    if backend == "redis":
        require_redis()
        target = f"test:{uuid.uuid4().hex[:12]}"
    elif backend.startswith("sqlite"):
        target = backend
    else:
        target = backend
        engine = create_engine(target)
        await truncate_all(engine)
        await engine.dispose()
    source = inspect.getsource(_hammer).replace("_hammer", "hammer")
    script = f"REDIS_URL = {REDIS_URL!r}\n{_WORKER}\n{source}\n"
    kind = "sqlite" if backend.startswith("sqlite") else "postgres"
    kind = "redis" if backend == "redis" else kind
    script += f"asyncio.run(main({kind!r}, {target!r}, {time.time() + 3.0}))\n"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from __future__ import annotations\n" + script,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [(await worker.communicate())[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
    granted = [at for out in outputs for at in json.loads(out)]
    assert _most_in_window(granted, 1.0) <= 20
    assert len(granted) >= 20
