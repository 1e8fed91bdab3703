"""``build_rate_store`` falls back, not fails, when its store refuses connections: the errors
each backend raises for an unreachable server are the ones its fallback expects."""

from __future__ import annotations

import pytest

from app.db.session import create_engine, session_factory
from app.engine import ResourceConfig
from app.services.limiting.backends import build_rate_store, close_rate_store
from app.services.limiting.fallback import FallbackRateStore
from app.settings import Settings
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
