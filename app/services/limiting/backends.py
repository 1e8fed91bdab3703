"""The shared rate store chosen by ``INF_LIMITER_BACKEND``, for the HTTP process and the runner.

``local`` (the default) gives none: each process keeps its own limiter. ``postgres`` uses the
service's database, ``redis`` the server at ``INF_REDIS_URL``::

    store = build_rate_store(settings, sessions, load_endpoints(settings))
    resources = ResourceManager(config, shared_store=store)
    ...
    await close_rate_store(store)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine.resources.config import ResourceConfig
from app.engine.resources.shared import SharedRateStore, limits_of
from app.services.limiting.postgres_store import PostgresRateStore
from app.settings import Settings


def build_rate_store(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], config: ResourceConfig
) -> SharedRateStore | None:
    """The configured store for ``config``'s aliases (``None`` for ``local``)."""
    limits = limits_of(config)
    if settings.limiter_backend == "postgres":
        return PostgresRateStore(sessions, limits)
    if settings.limiter_backend == "redis":
        from redis.asyncio import Redis

        from app.services.limiting.redis_store import RedisRateStore

        client = Redis.from_url(settings.redis_url)
        return RedisRateStore(client, limits, prefix=settings.redis_prefix)
    return None


async def close_rate_store(store: SharedRateStore | None) -> None:
    """Close the store's connections, if it holds any of its own."""
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()
