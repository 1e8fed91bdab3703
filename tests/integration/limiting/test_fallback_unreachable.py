"""``build_rate_store`` falls back, not fails, when its store refuses connections: the errors
each backend raises for an unreachable server are the ones its fallback expects."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from app.db.session import create_engine, session_factory
from app.engine import ResourceConfig
from app.services.limiting.backends import build_rate_store, close_rate_store
from app.services.limiting.fallback import FallbackRateStore
from app.settings import Settings
from tests.support.db import truncate_all
from tests.support.processes import free_port

CONFIG = ResourceConfig.from_dict(
    {"endpoints": {"m": {"provider": "simulated", "model": "m", "max_concurrent": 4}}}
)


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_a_store_that_refuses_connections_means_the_local_share(backend: str) -> None:
    port = free_port()  # nothing listens there
    database = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none"
    engine = create_engine(database if backend == "postgres" else "sqlite+aiosqlite:///:memory:")
    settings = Settings(
        limiter_backend=backend,  # type: ignore[arg-type]
        redis_url=f"redis://127.0.0.1:{port}/0",
        limiter_store_timeout_s=2.0,
    )
    store = build_rate_store(settings, session_factory(engine), CONFIG)
    assert isinstance(store, FallbackRateStore)
    try:
        taken = [await store.acquire_slot("m", f"p:{n}", ttl_s=30) for n in range(3)]
        assert (await store.acquire("m")).granted
        seen = await store.snapshot("m")
    finally:
        await close_rate_store(store)
        await engine.dispose()
    assert taken == [True, True, False]
    assert store.status.active
    assert seen.fallback


@pytest.mark.postgres
async def test_a_dropped_postgres_connection_falls_back_then_the_next_probe_resumes(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    await truncate_all(engine)  # the session's database: other tests' rate rows are gone
    settings = Settings(limiter_backend="postgres", limiter_probe_s=0.2)
    store = build_rate_store(settings, session_factory(engine), CONFIG)
    assert isinstance(store, FallbackRateStore)
    try:
        assert (await store.acquire("m")).granted
        async with engine.connect() as connection:  # the pooled connection the store uses
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate(postgres_url, pid)
        await store.acquire("m")
        dropped = store.status.active
        await asyncio.sleep(0.25)
        await store.acquire("m")
    finally:
        await close_rate_store(store)
        await engine.dispose()
    assert dropped
    assert not store.status.active
    assert store.status.entered == 1


async def _terminate(url: str, pid: int) -> None:
    """Close a backend's connection from the server side, as a database restart does."""
    other = create_engine(url)
    async with other.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await other.dispose()
