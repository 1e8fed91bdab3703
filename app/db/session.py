"""Engines and sessions: the only place connections are made.

A session is a unit of work: repositories add statements to it and its owner (a request, a runner
step) commits or rolls back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, cast

from sqlalchemy import CursorResult, Result, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool

from app.db import dialects


def create_engine(
    url: str, *, ping_after_idle_s: float = dialects.PING_AFTER_IDLE_S
) -> AsyncEngine:
    """An async engine for ``url`` (``postgresql+asyncpg://`` or ``sqlite+aiosqlite://``).

    Postgres gets a pool of 10 (+10 overflow) whose connections are checked before use when they
    sat idle ``ping_after_idle_s`` or longer; SQLite gets its folder created and, on every
    connection, WAL journaling, ``synchronous=NORMAL``, foreign keys and a busy timeout.
    """
    dialects.prepare(url)
    engine = _create_async_engine(url, **dialects.engine_options(url))
    dialects.install(engine, ping_after_idle_s)
    return engine


def dedicated_engine(url: str) -> AsyncEngine:
    """An engine without a pool whose statements autocommit: for one connection held for a
    process's life (an advisory lock), apart from the pool, never idle in a transaction."""
    return _create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def sqlite_file_connection(url: str) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection to ``url``'s database file in autocommit mode (the
    caller opens its own transactions), with the engine's pragmas, for use by one thread at a
    time (not necessarily the one that opened it)."""
    database = make_url(url).database or ""
    connection = sqlite3.connect(
        database, isolation_level=None, check_same_thread=False, uri=database.startswith("file:")
    )
    for pragma in dialects.SQLITE_PRAGMAS:
        connection.execute(pragma)
    return connection


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no reload on attribute access)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads alone: each statement stands on its own (autocommit), which spares the
    BEGIN and ROLLBACK round trips around every status poll. Never write through them."""
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(reads, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Whether the database answers ``SELECT 1`` within ``timeout_s`` (for readiness probes)."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True


# Execution options of the repositories' statements: a bulk UPDATE leaves the session's
# objects alone (NO_SYNC); a SELECT refreshes objects the session holds already (FRESH).
NO_SYNC: dict[str, Any] = {"synchronize_session": False}
FRESH: dict[str, Any] = {"populate_existing": True}


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE executed through a session."""
    return cast(CursorResult[Any], result).rowcount
