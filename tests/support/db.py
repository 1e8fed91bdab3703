"""Test databases: a migrated SQLite file per test, or a Postgres database per test session.

SQLite runs always. Postgres runs when ``TEST_DATABASE_URL`` points at a server (CI sets it): a
fresh database ``inf_test_<random>`` is created on that server, migrated once, emptied before each
test and dropped at the end of the session.

The fixtures below are imported by the ``conftest.py`` files that need them (or registered for the
whole suite with ``pytest_plugins = ["tests.support.db"]`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.db import migrate
from app.db.base import Base
from app.db.models import GraphVersion, Job
from app.db.repositories import graphs, jobs, tenants
from app.db.session import create_engine, session_factory

SERVER_ENV = "TEST_DATABASE_URL"
BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def server_url() -> str | None:
    """The Postgres server tests may create databases on, if configured."""
    return os.environ.get(SERVER_ENV) or None


def require_server() -> str:
    url = server_url()
    if url is None:
        pytest.skip(f"Postgres tests need {SERVER_ENV} (a postgresql+asyncpg:// URL)")
    return url


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# -- Postgres databases ---------------------------------------------------------------------


def create_database(server: str) -> str:
    """Create an empty database ``inf_test_<random>`` next to ``server``'s; return its URL."""
    name = f"inf_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database`` (closing whatever is still connected)."""
    name = make_url(url).database
    asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run in a transaction, nor while connected to that database.
    admin = make_url(url).set(database="postgres")
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the models (Postgres), restarting id sequences."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def empty_database(url: str) -> None:
    """``truncate_all`` from synchronous code (fixtures set up outside the test's loop)."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            await truncate_all(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


# -- SQLite files ---------------------------------------------------------------------------


def migrated_sqlite(path: Path) -> str:
    """A SQLite database file at ``path``, migrated to head; returns its URL."""
    url = sqlite_url(path)
    migrate.upgrade(url)
    return url


def copy_sqlite(template: Path, path: Path) -> str:
    """A copy of a migrated (and closed) SQLite file: much faster than migrating again."""
    shutil.copyfile(template, path)
    wal = template.with_name(template.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, path.with_name(path.name + "-wal"))
    return sqlite_url(path)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, copied by each test that needs a database."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    migrated_sqlite(path)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A Postgres database for this test session, migrated to head and dropped at the end."""
    url = create_database(require_server())
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database migrated to head: SQLite, and Postgres when configured.

    SQLite: a fresh file per test. Postgres: the session's database, emptied before the test.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return copy_sqlite(template, tmp_path / "test.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    empty_database(url)
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``db_url``, disposed after the test."""
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on ``engine``; the test commits what it wants other sessions to see."""
    async with session_factory(engine)() as session:
        yield session


# -- seed data ------------------------------------------------------------------------------


async def seed_version(
    session: AsyncSession, tenant: str = "acme", name: str = "g"
) -> tuple[str, GraphVersion]:
    """A tenant (created if new) and version 1 of a graph of it: (tenant id, version)."""
    owner = await tenants.get_or_create_tenant(session, tenant)
    definition = {"name": name, "nodes": []}
    digest = hashlib.sha256(name.encode()).hexdigest()
    _, version, _ = await graphs.add_version(session, owner.id, name, definition, digest)
    return owner.id, version


async def seed_job(
    session: AsyncSession,
    tenant_id: str,
    version_id: str,
    inputs: Sequence[Any] = (),
    priority: int = 0,
) -> Job:
    """A queued job with these inputs as its items."""
    job = await jobs.create_job(session, tenant_id, version_id, priority, None)
    await jobs.add_items(session, job.id, 0, list(inputs))
    await jobs.set_item_count(session, job.id, len(inputs))
    await session.refresh(job)
    return job
