"""The engine's :class:`~app.engine.ledger.LedgerStore` on the database, for one tenant.

Each lookup and each recording is a short session of its own (a run holds no connection
between calls). A tenant's store reads and writes only that tenant's rows.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import ledger as repo
from app.engine.ledger import LedgerEntry
from app.engine.ledger.store import NEAREST_SCAN


class DatabaseLedgerStore:
    """The ledger of tenant ``tenant_id`` in the service's database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], tenant_id: str) -> None:
        self.sessions = sessions
        self.tenant_id = tenant_id

    async def get(self, key: str) -> LedgerEntry | None:
        async with self.sessions() as session:
            return await repo.get_entry(session, self.tenant_id, key)

    async def put(self, entry: LedgerEntry) -> None:
        async with self.sessions() as session:
            await repo.add_entry(session, self.tenant_id, entry)
            await session.commit()

    async def recorded(self, node: str, limit: int = NEAREST_SCAN) -> list[LedgerEntry]:
        async with self.sessions() as session:
            return await repo.recorded_for(session, self.tenant_id, node, limit)
