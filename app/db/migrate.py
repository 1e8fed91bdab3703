"""Schema migrations from code: upgrade, downgrade and inspect with Alembic.

These are synchronous (Alembic drives its own event loop): call them from a CLI directly, or from
async code through ``asyncio.to_thread``. The scripts ship inside the package
(``app/db/migrations``), so an installed wheel migrates as a checkout does; ``alembic.ini`` at
the repository root serves the ``alembic`` command in development.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from app.db.session import create_engine

SCRIPTS = Path(__file__).resolve().parent / "migrations"


def config(url: str | None = None) -> Config:
    """The Alembic configuration, pointed at ``url`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ini interpolation
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    command.downgrade(config(url), revision)


def heads() -> list[str]:
    """The head revisions of the migration scripts (one, unless branches need merging)."""
    return list(ScriptDirectory.from_config(config()).get_heads())


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None``: never migrated)."""
    return asyncio.run(_current(url))


async def _current(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision)
    finally:
        await engine.dispose()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
