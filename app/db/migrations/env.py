"""Alembic environment: the models' metadata, the async engine, batch mode on SQLite.

The URL comes from ``sqlalchemy.url`` when ``app.db.migrate`` sets it, else from the service
settings (``INF_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

import app.db.models  # noqa: F401  (registers the tables on the metadata)
from app.db import dialects
from app.db.base import Base, UTCDateTime
from app.db.session import create_engine
from app.settings import Settings

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def render_item(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Write the portable types as plain SQLAlchemy, so migrations never import app code."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        **options,
    )


def run_offline() -> None:
    url = database_url()
    backend = "sqlite" if dialects.is_sqlite_url(url) else "postgresql"
    configure(url=url, literal_binds=True, **dialects.migration_options(backend))
    with context.begin_transaction():
        context.run_migrations()


def migrate(connection: Connection) -> None:
    dialects.before_migration(connection)
    configure(connection=connection, **dialects.migration_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
