"""Fresh Postgres databases for the benchmarks: made on a server, dropped afterwards.

with postgres_database("postgresql+asyncpg://postgres@127.0.0.1/test", "inf_bench") as url:
    ...  # url names a new, empty database
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


@contextlib.contextmanager
def postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database named ``prefix`` + a random suffix on ``server_url``'s server."""
    url = make_url(server_url).set(database=f"{prefix}_{uuid.uuid4().hex[:10]}")
    rendered = url.render_as_string(hide_password=False)
    asyncio.run(_admin(rendered, f'CREATE DATABASE "{url.database}"'))
    try:
        yield rendered
    finally:
        asyncio.run(_admin(rendered, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
