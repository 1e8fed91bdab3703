"""The response ledger's rows: a tenant's recorded model calls by request key.

Every statement names the tenant: one tenant's answers are never another's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.models import LedgerRecord
from app.engine.ledger import LedgerEntry

KEY = ("tenant_id", "key")


async def get_entry(session: AsyncSession, tenant_id: str, key: str) -> LedgerEntry | None:
    """The tenant's entry under ``key``, if recorded."""
    row = await session.get(LedgerRecord, (tenant_id, key))
    return None if row is None else _entry(row)


async def add_entry(session: AsyncSession, tenant_id: str, entry: LedgerEntry) -> None:
    """Record ``entry`` for the tenant unless its key already holds an answer (first kept)."""
    values = {
        "tenant_id": tenant_id,
        "key": entry.key,
        "node": entry.node[:128],
        "model": str(entry.request.get("model", ""))[:256],
        "sample": entry.sample,
        "twin": entry.twin,
        "request": entry.request,
        "response": entry.response,
    }
    await session.execute(dialects.insert_ignore(session, LedgerRecord, values, list(KEY)))


async def recorded_for(
    session: AsyncSession, tenant_id: str, node: str, limit: int
) -> list[LedgerEntry]:
    """The tenant's most recent entries of node ``node``, newest first."""
    stmt = (
        select(LedgerRecord)
        .where(LedgerRecord.tenant_id == tenant_id, LedgerRecord.node == node)
        .order_by(LedgerRecord.created_at.desc())
        .limit(limit)
    )
    return [_entry(row) for row in await session.scalars(stmt)]


async def delete_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` entries (of any tenant) recorded before ``cutoff``; how many."""
    found = (
        select(LedgerRecord.tenant_id, LedgerRecord.key)
        .where(LedgerRecord.created_at < cutoff)
        .order_by(LedgerRecord.created_at)
        .limit(limit)
    )
    keys = [tuple(row) for row in await session.execute(found)]
    if not keys:
        return 0
    pair = tuple_(LedgerRecord.tenant_id, LedgerRecord.key)
    await session.execute(delete(LedgerRecord).where(pair.in_(keys)))
    return len(keys)


def _entry(row: LedgerRecord) -> LedgerEntry:
    return LedgerEntry(
        row.key,
        row.node,
        dict(row.request),
        dict(row.response),
        row.sample,
        row.twin,
        row.created_at.timestamp(),
    )
