"""Each live runner's mark on Postgres: a session-level advisory lock keyed by its lease owner.

The shared limiter's Postgres store marks its process the same way, in a lock class of its
own (``SLOT_HOLDER_LOCK_CLASS``), so that a dead process's slot leases are freed at once.
A runner takes the lock of its owner id on a connection of its own (outside the pool) and
holds it for its life. Postgres drops the lock the moment that connection closes, which a
killed process's does at once, so another runner can tell a dead owner from a live one
without waiting for its leases to lapse (see ``jobs.free_dead_owners``). A live process that
is frozen (``SIGSTOP``) keeps its connection and its lock; its leases lapse as before.

SQLite serves one process: there the lock is nothing and every lease is expired at start.

    lock = OwnerLock(database_url, owner)
    await lock.acquire()
    ...
    await lock.release()
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import QueryableAttribute

from app.db.dialects import is_sqlite_url
from app.db.session import dedicated_engine

# The first key of every owner lock, so they stay apart from other advisory locks; a
# process's slot leases of the shared limiter have locks of their own class.
OWNER_LOCK_CLASS = 0x1E5E
SLOT_HOLDER_LOCK_CLASS = 0x1E5F


def owner_key(
    owner: ColumnElement[Any] | QueryableAttribute[Any], lock_class: int = OWNER_LOCK_CLASS
) -> tuple[Any, Any]:
    """The two keys of ``owner``'s advisory lock (computed by Postgres, for any column)."""
    return literal(lock_class), func.hashtext(owner)


class OwnerLock:
    """Holds ``owner``'s advisory lock on a dedicated connection until ``release``."""

    def __init__(self, database_url: str, owner: str, lock_class: int = OWNER_LOCK_CLASS) -> None:
        self._url = database_url
        self._owner = owner
        self._class = lock_class
        self._wanted = False  # between acquire and release, whether the connection lives or not
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> None:
        """Take the lock (once; again after ``release``). Nothing on SQLite."""
        if is_sqlite_url(self._url) or self._connection is not None:
            return
        self._wanted = True
        await self._connect()

    async def keep(self) -> None:
        """Take the lock again if its connection was lost (the database restarted): until then
        other runners see this owner as dead and take its jobs over. Raises while the database
        is unreachable; the next call tries again."""
        if not self._wanted:
            return
        if self._connection is not None:
            try:
                await self._connection.execute(select(literal(1)))
                return
            except (SQLAlchemyError, OSError):
                await self._drop()
        await self._connect()

    async def release(self) -> None:
        """Close the connection, which drops the lock."""
        self._wanted = False
        await self._drop()

    async def _connect(self) -> None:
        engine = dedicated_engine(self._url)
        connection: AsyncConnection | None = None
        try:
            connection = await engine.connect()
            await connection.execute(
                select(func.pg_advisory_lock(*owner_key(literal(self._owner), self._class)))
            )
        except BaseException:
            self._engine, self._connection = engine, connection
            await self._drop()
            raise
        self._engine, self._connection = engine, connection

    async def _drop(self) -> None:
        connection, engine = self._connection, self._engine
        self._connection = self._engine = None
        with contextlib.suppress(SQLAlchemyError, OSError):  # closing a dead connection
            if connection is not None:
                await connection.close()
        if engine is not None:
            await engine.dispose()
