"""Migrations: one head; upgrading an empty database gives exactly the models; down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from app.db import migrate
from app.db.base import Base
from app.db.session import create_engine
from tests.support.db import BACKENDS, create_database, drop_database, require_server, sqlite_url

TABLES = {table.name for table in Base.metadata.sorted_tables}


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (migrations are tested from nothing)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "migrations.sqlite")
        return
    url = create_database(require_server())
    try:
        yield url
    finally:
        drop_database(url)


def inspect_sync(url: str, fn: Any) -> Any:
    """Run ``fn(connection)`` on a fresh connection to ``url``."""

    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def test_there_is_a_single_head() -> None:
    assert len(migrate.heads()) == 1


def test_upgrade_from_empty_matches_the_models(empty_url: str) -> None:
    assert migrate.current(empty_url) is None
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.heads()[0]
    assert inspect_sync(empty_url, schema_diff) == []


def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) is None
    assert inspect_sync(empty_url, table_names) == set()
    migrate.upgrade(empty_url)
    assert inspect_sync(empty_url, table_names) == TABLES
    assert inspect_sync(empty_url, schema_diff) == []


def test_urls_with_percent_escapes_reach_alembic_unchanged() -> None:
    url = "postgresql+asyncpg://user:p%40ss@db.example:5432/app"
    assert migrate.config(url).get_main_option("sqlalchemy.url") == url
