"""Engines: SQLite settings on every connection, readiness pings, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import Tenant
from app.db.session import create_engine, is_sqlite, ping, read_session_factory, session_factory


async def test_sqlite_gets_its_folder_and_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/app.sqlite")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert is_sqlite(engine)
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }
        assert (tmp_path / "nested" / "dir" / "app.sqlite").exists()
    finally:
        await engine.dispose()


async def test_ping_answers_for_a_live_database(engine: AsyncEngine) -> None:
    assert await ping(engine)


async def test_ping_is_false_when_nothing_listens() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    try:
        assert not is_sqlite(engine)
        assert not await ping(engine, timeout_s=5.0)
    finally:
        await engine.dispose()


async def test_timestamps_come_back_as_utc(session: AsyncSession) -> None:
    local = datetime(2030, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    session.add(Tenant(name="acme", created_at=local))
    await session.commit()
    session.expunge_all()

    tenant = (await session.scalars(select(Tenant))).one()
    assert tenant.created_at == local
    assert tenant.created_at.tzinfo == UTC


async def test_naive_timestamps_are_refused(session: AsyncSession) -> None:
    session.add(Tenant(name="acme", created_at=datetime(2030, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


@pytest.mark.postgres
async def test_a_connection_killed_while_idle_is_replaced_before_use(postgres_url: str) -> None:
    """A Postgres restart (here: the server ending our idle backend) costs no failed request."""
    engine, admin = create_engine(postgres_url, ping_after_idle_s=0.0), create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        async with engine.connect() as connection:
            second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_read_sessions_see_committed_writes_at_once(engine: AsyncEngine) -> None:
    reads = read_session_factory(engine)
    async with session_factory(engine)() as writer:
        writer.add(Tenant(name="fresh"))
        async with reads() as reader:
            assert await reader.scalar(select(Tenant).where(Tenant.name == "fresh")) is None
        await writer.commit()
    async with reads() as reader:
        assert await reader.scalar(select(Tenant.name).where(Tenant.name == "fresh")) == "fresh"
