"""The shared rate store chosen by ``INF_LIMITER_BACKEND``, for the HTTP process and the runner.

``local`` (the default) gives none: each process keeps its own limiter. ``auto`` uses the
service's database: Postgres, or the SQLite file (an in-memory SQLite database serves one
process: it gets none). ``postgres`` uses the service's database, ``redis`` the server at
``INF_REDIS_URL``; each store is wrapped in a
:class:`~app.services.limiting.fallback.FallbackRateStore`, which limits to a local share of
each budget while the store does not answer::

    store = build_rate_store(settings, sessions, load_endpoints(settings))
    resources = ResourceManager(config, shared_store=store)
    ...
    await close_rate_store(store)
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.dialects import is_memory_sqlite
from app.engine.resources.config import ResourceConfig
from app.engine.resources.learning import LearningPolicy
from app.engine.resources.shared import AliasLimits, SharedRateStore, limits_of
from app.engine.resources.slice_settings import SliceSettings
from app.services.limiting.fallback import FallbackRateStore
from app.services.limiting.postgres_store import PostgresRateStore
from app.services.limiting.sqlite_store import SqliteRateStore
from app.settings import Settings

log = logging.getLogger(__name__)
Backend = Literal["local", "postgres", "sqlite", "redis"]


def build_rate_store(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], config: ResourceConfig
) -> SharedRateStore | None:
    """The configured store for ``config``'s aliases (``None`` for ``local``)."""
    limits, policy = limits_of(config), learning_policy(settings)
    backend = store_backend(settings)
    if backend == "postgres":
        store = PostgresRateStore(sessions, limits, policy, url=settings.database_url)
        return with_fallback(store, limits, settings, (DBAPIError,), database_outage)
    if backend == "sqlite":
        file_store = SqliteRateStore(settings.database_url, limits, policy)
        return with_fallback(file_store, limits, settings, (sqlite3.Error,))
    if backend == "redis":
        from redis import exceptions as redis_errors
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from app.services.limiting.redis_store import RedisRateStore

        # NOTE: one immediate retry (a stale connection after a restart), no backoff: while
        # Redis is down the fallback answers, so waiting inside the client only stalls calls.
        timeout_s, retry = settings.limiter_store_timeout_s, Retry(NoBackoff(), 1)
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=timeout_s, retry=retry)
        prefix = settings.redis_prefix
        redis_store = RedisRateStore(client, limits, prefix=prefix, learning=policy)
        unreachable = (redis_errors.ConnectionError, redis_errors.TimeoutError)
        return with_fallback(redis_store, limits, settings, unreachable)
    return None


def store_backend(settings: Settings) -> Backend:
    """The store ``INF_LIMITER_BACKEND`` means: ``auto`` is the service's own database."""
    if settings.limiter_backend != "auto":
        return settings.limiter_backend
    if not settings.is_sqlite:
        return "postgres"
    if is_memory_sqlite(settings.database_url):
        log.info("limiter: an in-memory SQLite database serves one process: limits are local")
        return "local"
    return "sqlite"


def slice_settings(settings: Settings) -> SliceSettings | None:
    """How a process takes the shared store's budget and leases (``None``: call by call)."""
    if settings.limiter_slice_s <= 0 and settings.limiter_slot_hold_s <= 0:
        return None
    return SliceSettings(slice_s=settings.limiter_slice_s, hold_s=settings.limiter_slot_hold_s)


def learning_policy(settings: Settings) -> LearningPolicy:
    """How the shared store learns rates (``INF_LIMITER_LEARN_*``)."""
    return LearningPolicy(
        cut=settings.limiter_learn_cut,
        probe_per_min=settings.limiter_learn_probe,
        decay_s=settings.limiter_learn_decay_s,
    )


def with_fallback(
    store: SharedRateStore,
    limits: Mapping[str, AliasLimits],
    settings: Settings,
    unreachable: tuple[type[BaseException], ...],
    outage: Callable[[BaseException], bool] | None = None,
) -> FallbackRateStore:
    """``store`` limiting to ``INF_LIMITER_FALLBACK_SHARE`` while it does not answer."""
    return FallbackRateStore(
        store,
        limits,
        share=settings.limiter_fallback_share,
        timeout_s=settings.limiter_store_timeout_s,
        probe_s=settings.limiter_probe_s,
        outage_s=settings.limiter_store_outage_s,
        unreachable=unreachable,
        outage=outage,
        learning=learning_policy(settings),
    )


def database_outage(error: BaseException) -> bool:
    """Whether a database error means the database is out of reach, not a faulty statement.

    A connection the server closed shows as any of these (asyncpg's error depends on the
    moment it noticed), or as a plain ``DBAPIError`` that SQLAlchemy marked a disconnect.
    """
    if isinstance(error, OperationalError | InterfaceError | InternalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


async def close_rate_store(store: SharedRateStore | None) -> None:
    """Close the store's connections, if it holds any of its own."""
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()
