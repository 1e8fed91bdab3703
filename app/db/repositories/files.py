"""OpenAI-style files: uploads (kept on disk, a row here) and batch output files."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import StoredFile
from app.db.session import FRESH, rowcount


async def add_file(session: AsyncSession, stored: StoredFile) -> StoredFile:
    """Insert ``stored`` (its id already chosen) and return it."""
    session.add(stored)
    await session.flush()
    return stored


async def get_file(session: AsyncSession, tenant_id: str, file_id: str) -> StoredFile | None:
    """The tenant's file; ``None`` for an unknown id or another tenant's file."""
    stmt = select(StoredFile).where(StoredFile.id == file_id, StoredFile.tenant_id == tenant_id)
    return await session.scalar(stmt.execution_options(**FRESH))


async def list_files(
    session: AsyncSession, tenant_id: str, limit: int, purpose: str | None, after: str | None
) -> list[StoredFile]:
    """The tenant's files, newest first, after the file ``after`` (an id) when given."""
    stmt = select(StoredFile).where(StoredFile.tenant_id == tenant_id)
    if purpose is not None:
        stmt = stmt.where(StoredFile.purpose == purpose)
    if after is not None:
        last = await get_file(session, tenant_id, after)
        if last is not None:
            older = (StoredFile.created_at == last.created_at) & (StoredFile.id < last.id)
            stmt = stmt.where((StoredFile.created_at < last.created_at) | older)
    stmt = stmt.order_by(StoredFile.created_at.desc(), StoredFile.id.desc()).limit(limit)
    return list(await session.scalars(stmt))


async def delete_file(session: AsyncSession, tenant_id: str, file_id: str) -> bool:
    """Delete the tenant's file row; whether there was one."""
    stmt = delete(StoredFile).where(StoredFile.id == file_id, StoredFile.tenant_id == tenant_id)
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return rowcount(result) > 0
